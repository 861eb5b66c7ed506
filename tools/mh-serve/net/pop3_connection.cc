// pop3_connection.cc — the POP3 connection coroutine: TLS (POP3S, STLS), logins on the
// blocking pool, and streamed message transfers.
#include "net/pop3_connection.h"

#include "net/log.h"
#include "pop3/dot_stuffer.h"

#include <unistd.h>

#include <cerrno>

namespace mh::net {
namespace {

using std::chrono::steady_clock;

constexpr std::size_t transfer_chunk = 64 * 1024;

void log_output(const pop3::Output& o) { log_lines("pop3: ", o.log); }

asio::awaitable<bool> send(std::shared_ptr<Pop3Connection> c, std::string text) {
  const auto timeout = c->shared.timeout_pop3;
  co_return co_await send_all(std::move(c), std::move(text), timeout);
}

asio::awaitable<void> run_authentication(std::shared_ptr<Pop3Connection> c, pop3::Output* out) {
  *out = c->session.authenticate();
  co_return;
}

asio::awaitable<void> run_update(std::shared_ptr<Pop3Connection> c, pop3::Output* out) {
  *out = c->session.update();
  co_return;
}

pop3::SessionConfig config_for(const SharedState& shared, serve::Service service, const std::string& ip) {
  pop3::SessionConfig config = shared.pop3;
  config.tls_active = service == serve::Service::pop3s;
  config.tls_available = shared.tls != nullptr;  // on POP3S, STLS gets "TLS is already active"
  config.plaintext_allowed = shared.client_check->plaintext_login_allowed(ip);
  return config;
}

// Streams one message (RETR/TOP) after its "+OK" line. The file is read on the worker
// thread: a 64 KiB pread from the page cache costs less than a hop to the pool.
asio::awaitable<bool> transfer(std::shared_ptr<Pop3Connection> c, pop3::Transfer t) {
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{t.fd};
  pop3::DotStuffer stuffer(t.top_lines);
  std::string chunk(transfer_chunk, '\0');
  std::string out;  // one buffer for the whole message: memory stays flat
  for (;;) {
    const ssize_t n = ::read(t.fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // The "+OK" is out; all that is left is to end the connection (RFC 1939 has no
      // way to take it back), so the client sees a broken transfer, not a short message.
      log_line("pop3: client=" + c->client_ip + " read error during transfer");
      co_return false;
    }
    if (n == 0) break;
    out.clear();
    stuffer.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)), out);
    if (!out.empty()) {
      if (!c->timed_out) c->deadline = steady_clock::now() + c->shared.timeout_pop3;
      const IoResult w = co_await c->stream.write_all(asio::buffer(out));
      if (w.ec) co_return false;
    }
    if (stuffer.done()) break;
  }
  std::string end = stuffer.finish();
  const bool sent = co_await send(c, std::move(end));
  co_return sent;
}

asio::awaitable<bool> start_tls(std::shared_ptr<Pop3Connection> c, std::string replies) {
  const bool sent = co_await send(c, std::move(replies));
  if (!sent) co_return false;
  auto context = c->shared.tls->current();
  // SPEC §8: a TLS handshake is bounded by timeouts.command, not POP3's longer idle time.
  const bool secured = co_await handshake(c, std::move(context), c->shared.timeout_command, "pop3");
  if (!secured) co_return false;
  c->session.tls_started();
  co_return true;
}

// Feeds one read's worth of bytes to the session (POP3 clients may pipeline, RFC 2449).
// False: close.
asio::awaitable<bool> process(std::shared_ptr<Pop3Connection> c, std::size_t n) {
  std::string_view in(c->buffer.data(), n);
  std::string replies;
  while (!in.empty()) {
    pop3::Output o = c->session.feed(in);
    in.remove_prefix(o.consumed);
    replies += o.replies;
    log_output(o);
    switch (o.action) {
    case pop3::Action::starttls:
      // Bytes pipelined behind STLS are dropped with the rest of this read.
    {
      const bool secured = co_await start_tls(c, std::move(replies));
      co_return secured;
    }
    case pop3::Action::authenticate: {
      pop3::Output a;
      co_await asio::co_spawn(*c->shared.blocking_pool, run_authentication(c, &a), asio::use_awaitable);
      log_output(a);
      if (a.delay.count() > 0) {
        std::string before = std::exchange(replies, {});
        const bool sent = co_await send(c, std::move(before));
        if (!sent) co_return false;
        const bool waited = co_await pause(c, a.delay);
        if (!waited) co_return false;
      }
      replies += a.replies;
      if (a.action == pop3::Action::close) {
        co_await send(c, std::move(replies));
        co_return false;
      }
      break;
    }
    case pop3::Action::update: {
      pop3::Output u;
      co_await asio::co_spawn(*c->shared.blocking_pool, run_update(c, &u), asio::use_awaitable);
      log_output(u);
      replies += u.replies;
      co_await send(c, std::move(replies));
      co_return false;
    }
    case pop3::Action::transfer:
    {
      std::string before = std::exchange(replies, {});
      const bool sent = co_await send(c, std::move(before));
      if (!sent) {
        ::close(o.transfer.fd);
        co_return false;
      }
      const bool streamed = co_await transfer(c, o.transfer);
      if (!streamed) co_return false;
      break;
    }
    case pop3::Action::close:
      co_await send(c, std::move(replies));
      co_return false;
    case pop3::Action::none:
      if (o.consumed == 0) in = {};  // never spin
      break;
    }
  }
  co_return co_await send(c, std::move(replies));
}

asio::awaitable<void> last_words(std::shared_ptr<Pop3Connection> c, pop3::Output o) {
  log_output(o);
  co_await say_last(std::move(c), std::move(o.replies));
}

asio::awaitable<void> session_loop(std::shared_ptr<Pop3Connection> c) {
  if (c->service == serve::Service::pop3s) {
    auto context = c->shared.tls->current();
    const bool secured = co_await handshake(c, std::move(context), c->shared.timeout_command, "pop3s");
    if (!secured) co_return;
  }
  std::string greeting = c->session.greeting().replies;
  const bool greeted = co_await send(c, std::move(greeting));
  if (!greeted) co_return;
  while (!c->session.closed()) {
    // POP3 has no transaction to finish: every session is told at once on a stop, and
    // nothing marked for deletion is deleted (RFC 1939: only QUIT enters UPDATE).
    if (c->force_stop || c->shared.stopping) {
      pop3::Output bye = c->session.shutdown();
      co_await last_words(c, std::move(bye));
      co_return;
    }
    // A deadline per command line from the previous reply (SPEC §8): bytes of an
    // unfinished line do not move it, so a client trickling a line is cut like a silent one.
    if (std::exchange(c->replied, false)) set_deadline(*c, steady_clock::now() + c->shared.timeout_pop3);
    c->waiting_idle = true;
    const IoResult r = co_await read_some(c);
    c->waiting_idle = false;
    if (r.ec) {
      if (c->timed_out) {
        pop3::Output bye = c->session.timeout();
        co_await last_words(c, std::move(bye));
        co_return;
      }
      if (r.ec == asio::error::operation_aborted && (c->shared.stopping || c->force_stop)) continue;
      log_output(c->session.disconnected());
      co_return;
    }
    const bool go_on = co_await process(c, r.bytes);
    if (!go_on) co_return;
  }
}

} // namespace

Pop3Connection::Pop3Connection(SharedState& shared_state, Worker& owner, asio::ip::tcp::socket s, std::string ip,
                               std::unique_ptr<ConnectionLimits::Ticket> t, serve::Service svc)
    : Link(owner, std::move(s), ip, std::move(t), shared_state.timeout_pop3),
      shared(shared_state),
      service(svc),
      session(config_for(shared_state, svc, ip), ip, *shared_state.authenticator, *shared_state.maildrops) {}

asio::awaitable<void> serve_pop3(std::shared_ptr<Pop3Connection> c) {
  open_link(c);
  try {
    co_await session_loop(c);
  } catch (const std::exception& e) {
    log_line("pop3: client=" + c->client_ip + " internal error: " + e.what());
  }
  co_await close_link(c);
}

} // namespace mh::net
