// pop3_connection.cc — the POP3 connection coroutine: TLS (POP3S, STLS), logins on the
// blocking pool, and streamed message transfers.
#include "net/pop3_connection.h"

#include "net/log.h"
#include "net/session_io.h"
#include "pop3/dot_stuffer.h"

#include <unistd.h>

#include <cerrno>

namespace mh::net {
namespace {

using std::chrono::steady_clock;

constexpr std::size_t transfer_chunk = 64 * 1024;

pop3::SessionConfig config_for(const SharedState& shared, serve::Service service, const std::string& ip) {
  pop3::SessionConfig config = shared.pop3;
  config.tls_active = service == serve::Service::pop3s;
  config.tls_available = shared.tls != nullptr;  // on POP3S, STLS gets "TLS is already active"
  config.plaintext_allowed = shared.client_check->plaintext_login_allowed(ip);
  return config;
}

// Streams one message (RETR/TOP) into `out`, which holds the replies not yet sent (its
// "+OK" line among them): written whenever it reaches transfer_chunk, so a batch of
// pipelined RETRs of small messages leaves in a few large writes (one TLS record each),
// not three per message, and memory stays flat for a large one. The file is read on the
// worker thread: a 64 KiB pread from the page cache costs less than a hop to the pool.
asio::awaitable<bool> transfer(std::shared_ptr<Pop3Connection> c, pop3::Transfer t, std::string& out) {
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{t.fd};
  pop3::DotStuffer stuffer(t.top_lines);
  std::string chunk(transfer_chunk, '\0');
  for (;;) {
    const ssize_t n = ::read(t.fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // RFC 1939 has no way to take back a "+OK": all that is left is to end the
      // connection, so the client sees a broken transfer, not a short message.
      log_line("pop3: client=" + c->client_ip + " read error during transfer");
      co_return false;
    }
    if (n == 0) break;
    stuffer.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)), out);
    if (out.size() >= transfer_chunk && !co_await send_reply(c, std::exchange(out, {}))) co_return false;
    if (stuffer.done()) break;
  }
  out += stuffer.finish();
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
    log_output<Pop3Connection>(o);
    switch (o.action) {
    case pop3::Action::starttls:
      // Bytes pipelined behind STLS are dropped with the rest of this read.
    {
      const bool secured = co_await start_tls(c, std::move(replies));
      co_return secured;
    }
    case pop3::Action::authenticate: {
      pop3::Output a = co_await on_blocking_pool(c, &pop3::Pop3Session::authenticate);
      log_output<Pop3Connection>(a);
      if (a.delay.count() > 0) {
        const bool waited = co_await send_then_pause(c, std::exchange(replies, {}), a.delay);
        if (!waited) co_return false;
      }
      replies += a.replies;
      if (a.action == pop3::Action::close) {
        co_await send_reply(c, std::move(replies));
        co_return false;
      }
      break;
    }
    case pop3::Action::update: {
      pop3::Output u = co_await on_blocking_pool(c, &pop3::Pop3Session::update);
      log_output<Pop3Connection>(u);
      replies += u.replies;
      co_await send_reply(c, std::move(replies));
      co_return false;
    }
    case pop3::Action::transfer: {
      const bool streamed = co_await transfer(c, o.transfer, replies);
      if (!streamed) co_return false;
      break;
    }
    case pop3::Action::close:
      co_await send_reply(c, std::move(replies));
      co_return false;
    case pop3::Action::none:
      if (o.consumed == 0) in = {};  // never spin
      break;
    }
  }
  co_return co_await send_reply(c, std::move(replies));
}

asio::awaitable<void> session_loop(std::shared_ptr<Pop3Connection> c) {
  const bool secured = co_await secure_from_first_byte(c, c->service == serve::Service::pop3s, "pop3s");
  if (!secured) co_return;
  std::string greeting = c->session.greeting().replies;
  const bool greeted = co_await send_reply(c, std::move(greeting));
  if (!greeted) co_return;
  while (!c->session.closed()) {
    // POP3 has no transaction to finish: every session is told at once on a stop, and
    // nothing marked for deletion is deleted (RFC 1939: only QUIT enters UPDATE).
    if (must_stop(*c, c->shared, /*busy=*/false)) {
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
      const bool go_on = co_await read_failed(c, r.ec);
      if (go_on) continue;
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
