// link.h — what every client connection has, whatever it speaks (SMTP or POP3): its
// stream (plain or TLS), its worker thread, its slot in the connection limits, the
// deadline and the watchdog coroutine that enforces it (Asio's timeout_watchdog
// example), and the flags the graceful stop looks at. Touched only on its worker's
// single-threaded io_context, so no locking.
#pragma once

#include "net/limits.h"
#include "net/stream.h"

#include <array>
#include <chrono>
#include <memory>
#include <set>
#include <string>

namespace mh::net {

struct Link;

// One event-loop thread and the connections it serves (touched only on its thread).
struct Worker {
  asio::io_context ctx{1};
  std::set<Link*> links;

  // SIGTERM: idle connections (nothing open, waiting for a command) are woken to say
  // goodbye at once; with `force`, every connection is.
  void request_stop(bool force);
};

struct Link {
  Link(Worker& worker, asio::ip::tcp::socket socket, std::string client_ip,
       std::unique_ptr<ConnectionLimits::Ticket> ticket, std::chrono::milliseconds first_deadline);
  virtual ~Link() = default;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Wakes waits other than the socket's (the SMTP client check); called on stop/timeout.
  virtual void wake() {}

  Worker& worker;
  Stream stream;
  asio::steady_timer timer;
  std::chrono::steady_clock::time_point deadline;
  std::unique_ptr<ConnectionLimits::Ticket> ticket;
  std::string client_ip;
  bool done = false;          // the connection coroutine has finished
  bool timed_out = false;     // the watchdog fired
  bool force_stop = false;    // shutdown grace is over
  bool waiting_idle = false;  // blocked reading, nothing open
  bool replied = false;       // send_all wrote a reply: the next command's deadline starts now
  std::array<char, 16384> buffer;
};

// After a timeout or forced stop, how long the last reply may take to be written.
inline constexpr std::chrono::seconds last_words_time{2};

// Registers the link with its worker and starts its watchdog.
void open_link(const std::shared_ptr<Link>& link);
// Moves the deadline, waking the watchdog when it is now earlier than the one it waits for.
void set_deadline(Link& link, std::chrono::steady_clock::time_point when);
// Writes `text` completely, first moving the deadline `timeout` ahead (unless the
// watchdog already fired), and marks the link `replied`; false when the client is gone
// or too slow.
asio::awaitable<bool> send_all(std::shared_ptr<Link> link, std::string text, std::chrono::milliseconds timeout);
// A last reply (shutdown, timeout) within last_words_time; errors ignored: we are closing.
asio::awaitable<void> say_last(std::shared_ptr<Link> link, std::string text);
// Reads what the client sent; the deadline must be set by the caller.
asio::awaitable<IoResult> read_some(std::shared_ptr<Link> link);
// Waits `delay` (failed-login slow-down); false if woken by a stop or the watchdog.
asio::awaitable<bool> pause(std::shared_ptr<Link> link, std::chrono::milliseconds delay);
// Waits up to `delay` for the client to send something or hang up (the socket becomes
// readable): Readiness::readable at once when it does, ::quiet when the time passed
// without a sound, ::stopped if woken by a stop or the watchdog.
enum class Readiness { quiet, readable, stopped };
asio::awaitable<Readiness> wait_for_client(std::shared_ptr<Link> link, std::chrono::milliseconds delay);
// TLS handshake within `timeout`, from the current context; false = failed (logged).
asio::awaitable<bool> handshake(std::shared_ptr<Link> link, std::shared_ptr<asio::ssl::context> context,
                                std::chrono::milliseconds timeout, const char* service);
// Ends the connection: TLS close_notify (bounded), TCP close, unregistered.
asio::awaitable<void> close_link(std::shared_ptr<Link> link);

} // namespace mh::net
