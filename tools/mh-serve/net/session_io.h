// session_io.h — the I/O scaffolding the SMTP and POP3 connection coroutines share
// (connection.cc, pop3_connection.cc): replies written within the protocol's timeout,
// the session's last words, TLS from the first byte or after STARTTLS/STLS, blocking
// session steps on the pool, the late answer to a failed login, and the ways a failed
// read ends. Templates over the connection type rather than a base class: the two
// sessions share no interface (their Output and Action types differ), and a template
// keeps each loop's calls direct. A connection type `Conn` derives from Link and has
// `shared` (SharedState&), `session`, `static constexpr const char* protocol` ("smtp",
// "pop3": log prefix and handshake name) and `reply_timeout()`.
#pragma once

#include "net/link.h"
#include "net/log.h"
#include "net/shared_state.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>

namespace mh::net {

template <class Conn, class Out>
void log_output(const Out& o) {
  log_lines(std::string(Conn::protocol) + ": ", o.log);
}

// Writes replies; false when the client is gone or too slow.
template <class Conn>
asio::awaitable<bool> send_reply(std::shared_ptr<Conn> c, std::string text) {
  const auto timeout = c->reply_timeout();
  co_return co_await send_all(std::move(c), std::move(text), timeout);
}

// The session's goodbye (shutdown, timeout, protocol error): logged, then said within
// last_words_time.
template <class Conn, class Out>
asio::awaitable<void> last_words(std::shared_ptr<Conn> c, Out o) {
  log_output<Conn>(o);
  co_await say_last(std::move(c), std::move(o.replies));
}

// SMTPS, POP3S: the handshake comes before the greeting. True when `implicit_tls` is
// false or the handshake worked (a failure is logged under `service`).
template <class Conn>
asio::awaitable<bool> secure_from_first_byte(std::shared_ptr<Conn> c, bool implicit_tls, const char* service) {
  if (!implicit_tls) co_return true;
  auto context = c->shared.tls->current();
  const auto timeout = c->shared.timeout_command;
  co_return co_await handshake(std::move(c), std::move(context), timeout, service);
}

// STARTTLS/STLS accepted: its positive reply goes out (with the replies before it), the
// handshake follows, and the session starts over. The caller drops whatever the client
// pipelined behind the command with the rest of that read (RFC 3207 §5, CVE-2011-0411).
template <class Conn>
asio::awaitable<bool> start_tls(std::shared_ptr<Conn> c, std::string replies) {
  const bool sent = co_await send_reply(c, std::move(replies));
  if (!sent) co_return false;
  auto context = c->shared.tls->current();
  // SPEC §8: a TLS handshake is bounded by timeouts.command, not POP3's longer idle time.
  const bool secured = co_await handshake(c, std::move(context), c->shared.timeout_command, Conn::protocol);
  if (!secured) co_return false;
  c->session.tls_started();
  co_return true;
}

template <class Conn, class Session, class Out>
asio::awaitable<void> run_step(std::shared_ptr<Conn> c, Out (Session::*step)(), Out* out) {
  *out = (c->session.*step)();
  co_return;
}

// Runs a blocking session step (delivery fsync, password hashing, maildrop update) on
// the blocking pool while the connection's coroutine waits: the event loop stays free.
template <class Conn, class Session, class Out>
asio::awaitable<Out> on_blocking_pool(std::shared_ptr<Conn> c, Out (Session::*step)()) {
  Out out;
  co_await asio::co_spawn(*c->shared.blocking_pool, run_step(c, step, &out), asio::use_awaitable);
  co_return out;
}

// A failed login is answered after the throttle's delay; `before` (the replies to what
// came before it) need not wait. False when the client is gone or a stop or the
// watchdog cut the wait.
template <class Conn>
asio::awaitable<bool> send_then_pause(std::shared_ptr<Conn> c, std::string before, std::chrono::milliseconds delay) {
  const bool sent = co_await send_reply(c, std::move(before));
  if (!sent) co_return false;
  co_return co_await pause(std::move(c), delay);
}

// Whether the session must say goodbye now: the shutdown grace is over, or the server
// stops and the session has nothing open (`busy`: an SMTP transaction may finish first).
inline bool must_stop(const Link& c, const SharedState& shared, bool busy) {
  return c.force_stop || (shared.stopping && !busy);
}

// A read from the client failed: true when a stop woke an idle read (the loop goes on
// and its stop check says goodbye); false when the connection ends because the watchdog
// fired (the session's timeout reply is said) or the client left (logged). Called only
// on failure: a coroutine frame per read would cost memory under load (and ASan).
template <class Conn>
asio::awaitable<bool> read_failed(std::shared_ptr<Conn> c, asio::error_code ec) {
  if (c->timed_out) {
    auto bye = c->session.timeout();
    co_await last_words(c, std::move(bye));
    co_return false;
  }
  if (ec == asio::error::operation_aborted && (c->shared.stopping || c->force_stop)) co_return true;
  log_output<Conn>(c->session.disconnected());
  co_return false;
}

} // namespace mh::net
