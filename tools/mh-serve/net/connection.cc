// connection.cc — the per-connection coroutine, its watchdog and the delivery hand-off.
#include "net/connection.h"

#include "net/log.h"

namespace mh::net {
namespace {

using std::chrono::steady_clock;
using namespace std::chrono_literals;

// After a timeout or forced stop, how long the 421 reply may take to be written.
constexpr auto last_words_time = 2s;

void log_output(const smtp::Output& o) { log_lines("smtp: ", o.log); }

// Closes the socket when the deadline passes, unless the connection moved it on.
// First expiry: cancel pending I/O so the connection can say 421; second: close.
asio::awaitable<void> watchdog(std::shared_ptr<Connection> c) {
  while (!c->done) {
    c->timer.expires_at(c->deadline);
    asio::error_code ec;
    co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (c->done) break;
    if (c->deadline > steady_clock::now()) continue;
    if (!c->timed_out) {
      c->timed_out = true;
      c->deadline = steady_clock::now() + last_words_time;
      c->socket.cancel(ec);
      c->client_check_done.cancel();
    } else {
      c->socket.close(ec);
      break;
    }
  }
}

// Writes `text` completely; false when the client is gone or too slow.
asio::awaitable<bool> send(std::shared_ptr<Connection> c, std::string text) {
  if (text.empty()) co_return true;
  if (!c->timed_out) c->deadline = steady_clock::now() + c->shared.timeout_command;
  asio::error_code ec;
  co_await asio::async_write(c->socket, asio::buffer(text), asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

// Runs the blocking part of a delivery (fsync) off the event loop.
asio::awaitable<void> run_delivery(std::shared_ptr<Connection> c, smtp::Output* out) {
  *out = c->session.deliver();
  co_return;
}

// Feeds one read's worth of bytes to the session; replies are written once per read
// (RFC 2920: a pipelined group gets its replies together). False: close.
asio::awaitable<bool> process(std::shared_ptr<Connection> c, std::size_t n) {
  std::string_view in(c->buffer.data(), n);
  std::string replies;
  while (!in.empty()) {
    smtp::Output o = c->session.feed(in);
    in.remove_prefix(o.consumed);
    replies += o.replies;
    log_output(o);
    if (o.action == smtp::Action::deliver) {
      c->deadline = steady_clock::now() + c->shared.timeout_data;
      smtp::Output d;
      co_await asio::co_spawn(*c->shared.delivery_pool, run_delivery(c, &d), asio::use_awaitable);
      replies += d.replies;
      log_output(d);
      if (d.action == smtp::Action::close) o.action = smtp::Action::close;
    }
    if (o.action == smtp::Action::close) {
      co_await send(c, std::move(replies));
      co_return false;
    }
    if (o.consumed == 0 && o.action == smtp::Action::none) break;  // cannot happen; never spin
  }
  co_return co_await send(c, std::move(replies));
}

// Waits for the client check's verdict, which must be known before the first command
// is processed (RCPT needs it; delaying HELO/MAIL costs nothing). The wait counts as the
// server's time, not the client's: the deadline covers the longest check. False when
// woken by a timeout or a stop instead.
asio::awaitable<bool> wait_for_client_check(std::shared_ptr<Connection> c) {
  c->deadline = steady_clock::now() + c->shared.timeout_command + c->shared.client_check->longest_check();
  while (!c->client_checked && !c->timed_out && !c->force_stop && !c->shared.stopping) {
    c->client_check_done.expires_at(steady_clock::time_point::max());
    asio::error_code ec;
    co_await c->client_check_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return c->client_checked;
}

asio::awaitable<void> session_loop(std::shared_ptr<Connection> c) {
  if (!co_await send(c, c->session.greeting().replies)) co_return;
  while (!c->session.closed()) {
    if (c->force_stop || (c->shared.stopping && !c->session.in_transaction())) {
      smtp::Output o = c->session.shutdown();
      log_output(o);
      c->deadline = steady_clock::now() + last_words_time;
      co_await send(c, o.replies);
      co_return;
    }
    c->deadline = steady_clock::now() + (c->session.in_data() ? c->shared.timeout_data : c->shared.timeout_command);
    c->waiting_idle = !c->session.in_transaction();
    asio::error_code ec;
    const std::size_t n =
        co_await c->socket.async_read_some(asio::buffer(c->buffer), asio::redirect_error(asio::use_awaitable, ec));
    c->waiting_idle = false;
    if (ec) {
      if (c->timed_out) {
        smtp::Output o = c->session.timeout();
        log_output(o);
        co_await send(c, o.replies);
        co_return;
      }
      if (ec == asio::error::operation_aborted && (c->shared.stopping || c->force_stop)) continue;
      log_output(c->session.disconnected());
      co_return;
    }
    if (!c->client_checked && !co_await wait_for_client_check(c)) {
      smtp::Output o = c->timed_out ? c->session.timeout() : c->session.shutdown();
      log_output(o);
      if (!c->timed_out) c->deadline = steady_clock::now() + last_words_time;
      co_await send(c, o.replies);
      co_return;
    }
    if (!co_await process(c, n)) co_return;
  }
}

} // namespace

void Worker::request_stop(bool force) {
  for (Connection* c : connections) {
    asio::error_code ec;
    c->client_check_done.cancel();  // no transaction can be open while it waits
    if (force) {
      c->force_stop = true;
      c->socket.cancel(ec);
    } else if (c->waiting_idle) {
      c->socket.cancel(ec);
    }
  }
}

Connection::Connection(SharedState& shared_state, Worker& owner, asio::ip::tcp::socket s, smtp::ClientInfo client,
                       std::unique_ptr<ConnectionLimits::Ticket> t)
    : shared(shared_state),
      worker(owner),
      socket(std::move(s)),
      timer(socket.get_executor()),
      deadline(std::chrono::steady_clock::now() + shared_state.timeout_command),
      session(shared_state.session, client, *shared_state.backend),
      ticket(std::move(t)),
      client_ip(client.ip),
      client_check_done(socket.get_executor()) {}

asio::awaitable<void> serve_smtp(std::shared_ptr<Connection> c) {
  c->worker.connections.insert(c.get());
  asio::co_spawn(c->socket.get_executor(), watchdog(c), asio::detached);
  try {
    co_await session_loop(c);
  } catch (const std::exception& e) {
    log_line("smtp: client=" + c->client_ip + " internal error: " + e.what());
  }
  c->done = true;
  asio::error_code ec;
  c->timer.cancel();
  c->socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  c->socket.close(ec);
  c->worker.connections.erase(c.get());
}

void start_client_check(const std::shared_ptr<Connection>& c) {
  if (auto verdict = c->shared.client_check->trusted_verdict(c->client_ip)) {
    c->session.set_verdict(std::move(*verdict));
    c->client_checked = true;
    return;
  }
  // The answer comes on the resolver's thread: hand it to the connection's own thread.
  // A weak_ptr, so a client that left does not keep its slot (ticket) until DNS answers.
  // The server destroys the resolver before the workers' io_contexts, so the executor
  // is still valid when the last answers ("resolver stopped") are posted.
  std::weak_ptr<Connection> weak = c;
  auto executor = c->socket.get_executor();
  c->shared.client_check->check(c->client_ip, [weak, executor](smtp::ClientVerdict verdict) {
    asio::post(executor, [weak, verdict = std::move(verdict)]() mutable {
      auto conn = weak.lock();
      if (!conn || conn->done) return;
      conn->session.set_verdict(std::move(verdict));
      conn->client_checked = true;
      conn->client_check_done.cancel();
    });
  });
}

void refuse_connection(asio::ip::tcp::socket& socket, std::string_view reply) {
  // The reply is a few dozen bytes: it fits the socket buffer, so this never waits on
  // a client that does not read.
  asio::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(reply), ec);
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

} // namespace mh::net
