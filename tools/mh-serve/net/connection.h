// connection.h — one SMTP client connection served by one coroutine (Asio C++20
// coroutines, STYLE §10: parameters by value, spawned detached, no lambdas as
// coroutines). A second coroutine, the watchdog, enforces the command/data deadlines
// by cancelling the socket (Asio's timeout_watchdog example). Both run on the worker's
// single-threaded io_context, so the connection's fields need no locking; only the
// blocking delivery runs on the delivery pool, while the connection coroutine waits.
// The client check (FCrDNS, client_check.h) runs on the resolver's thread while the
// greeting goes out; its verdict is posted back to the worker before the first command.
#pragma once

#include "client_check.h"
#include "net/limits.h"
#include "smtp/session.h"

#include <asio.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>

namespace mh::net {

struct Connection;

// What all connections share; lives as long as the server.
struct SharedState {
  smtp::SessionConfig session;
  smtp::MailBackend* backend = nullptr;
  std::chrono::milliseconds timeout_command{300000};
  std::chrono::milliseconds timeout_data{600000};
  asio::thread_pool* delivery_pool = nullptr;
  serve::ClientCheck* client_check = nullptr;
  std::atomic<bool> stopping{false};
};

// One event-loop thread and the connections it serves (touched only on its thread).
struct Worker {
  asio::io_context ctx{1};
  std::set<Connection*> connections;

  // SIGTERM: idle connections (no transaction, waiting for a command) are woken to say
  // 421 at once; with `force`, every connection is.
  void request_stop(bool force);
};

struct Connection {
  Connection(SharedState& shared, Worker& worker, asio::ip::tcp::socket socket, smtp::ClientInfo client,
             std::unique_ptr<ConnectionLimits::Ticket> ticket);

  SharedState& shared;
  Worker& worker;
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  std::chrono::steady_clock::time_point deadline;
  smtp::SmtpSession session;
  std::unique_ptr<ConnectionLimits::Ticket> ticket;
  std::string client_ip;
  bool done = false;          // the connection coroutine has finished
  bool timed_out = false;     // the watchdog fired
  bool force_stop = false;    // shutdown grace is over
  bool waiting_idle = false;  // blocked reading, no transaction open
  bool client_checked = false;  // the session has its ClientVerdict
  asio::steady_timer client_check_done;  // cancelled when the verdict arrives (or to wake)
  std::array<char, 16384> buffer;
};

// Serves one connection to the end.
asio::awaitable<void> serve_smtp(std::shared_ptr<Connection> c);
// Gives the session its ClientVerdict: at once for a trusted client, else when DNS
// answers (the connection may be gone by then; the answer is dropped).
void start_client_check(const std::shared_ptr<Connection>& c);
// Tells a client it cannot be served now (connection limits) and closes, without waiting.
void refuse_connection(asio::ip::tcp::socket& socket, std::string_view reply);

} // namespace mh::net
