// shared_state.h — what every connection of the server shares: session settings per
// protocol, the backends (spool, logins, maildrops), the blocking pool, the client
// check, the TLS contexts and the stop flag. Lives as long as the server; the
// backends are thread-safe, the rest is read-only once serving starts.
#pragma once

#include "auth/authenticator.h"
#include "client_check.h"
#include "net/tls.h"
#include "pop3/maildrop.h"
#include "pop3/session.h"
#include "smtp/session.h"

#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mh::net {

struct SharedState {
  smtp::SessionConfig smtp;
  pop3::SessionConfig pop3;
  smtp::MailBackend* backend = nullptr;
  auth::Authenticator* authenticator = nullptr;
  pop3::MaildropProvider* maildrops = nullptr;
  serve::ClientCheck* client_check = nullptr;
  TlsStore* tls = nullptr;
  std::chrono::milliseconds timeout_command{300000};
  std::chrono::milliseconds timeout_data{600000};
  std::chrono::milliseconds greet_wait{300};        // timeouts.greet_wait (smtp listener only)
  std::chrono::milliseconds timeout_pop3{600000};  // POP3 idle time (RFC 1939: ≥ 10 min by default)
  std::uint32_t min_data_rate = 500;               // limits.min_data_rate (net/deadline.h); 0 = off
  asio::thread_pool* blocking_pool = nullptr;  // fsync of deliveries, password hashing
  std::atomic<bool> stopping{false};
};

} // namespace mh::net
