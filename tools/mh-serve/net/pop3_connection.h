// pop3_connection.h — one POP3 client connection (pop3 listener with STLS, or pop3s)
// served by one coroutine on its worker's io_context, like the SMTP one
// (connection.h). Logins run on the blocking pool (password hashing, maildrop lock and
// listing); RETR/TOP stream the message file in 64 KiB pieces through the dot-stuffer,
// so a 30 MB message costs no more memory than a small one.
#pragma once

#include "net/link.h"
#include "net/shared_state.h"
#include "serve_config.h"

namespace mh::net {

struct Pop3Connection : Link {
  Pop3Connection(SharedState& shared, Worker& worker, asio::ip::tcp::socket socket, std::string client_ip,
                 std::unique_ptr<ConnectionLimits::Ticket> ticket, serve::Service service);

  // For net/session_io.h: the log prefix and handshake name, and how long a reply may take.
  static constexpr const char* protocol = "pop3";
  std::chrono::milliseconds reply_timeout() const { return shared.timeout_pop3; }

  SharedState& shared;
  serve::Service service;
  pop3::Pop3Session session;
};

asio::awaitable<void> serve_pop3(std::shared_ptr<Pop3Connection> c);

} // namespace mh::net
