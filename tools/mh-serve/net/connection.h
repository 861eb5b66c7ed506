// connection.h — one SMTP client connection (smtp, submission or smtps listener) served
// by one coroutine (Asio C++20 coroutines, STYLE §10: parameters by value, spawned
// detached, no lambdas as coroutines) on its worker's single-threaded io_context. The
// blocking steps (delivery fsync, password hashing) run on the blocking pool while the
// coroutine waits. The client check (FCrDNS, client_check.h) runs on the resolver's
// thread while the greeting goes out; its verdict is posted back before the first command.
#pragma once

#include "net/link.h"
#include "net/shared_state.h"
#include "serve_config.h"

namespace mh::net {

struct Connection : Link {
  Connection(SharedState& shared, Worker& worker, asio::ip::tcp::socket socket, smtp::ClientInfo client,
             std::unique_ptr<ConnectionLimits::Ticket> ticket, serve::Service service);

  void wake() override { client_check_done.cancel(); }

  // For net/session_io.h: the log prefix and handshake name, and how long a reply may take.
  static constexpr const char* protocol = "smtp";
  std::chrono::milliseconds reply_timeout() const { return shared.timeout_command; }

  SharedState& shared;
  serve::Service service;
  smtp::SmtpSession session;
  bool client_checked = false;           // the session has its ClientVerdict
  asio::steady_timer client_check_done;  // cancelled when the verdict arrives (or to wake)
};

// Serves one connection to the end.
asio::awaitable<void> serve_smtp(std::shared_ptr<Connection> c);
// Gives the session its ClientVerdict: at once for a trusted client, else when DNS
// answers (the connection may be gone by then; the answer is dropped).
void start_client_check(const std::shared_ptr<Connection>& c);
// Tells a client it cannot be served now (connection limits) and closes, without waiting.
void refuse_connection(asio::ip::tcp::socket& socket, std::string_view reply);

} // namespace mh::net
