// server.h — the network daemon: SMTP, submission, SMTPS, POP3 and POP3S listeners, one
// event loop per thread, TLS, connection limits, timeouts, graceful stop. Declared without Asio so main.cc stays light; all
// Asio code is in net/*.cc (STYLE: only net/ includes Asio).
#pragma once

#include "serve_config.h"
#include "auth/authenticator.h"
#include "pop3/maildrop.h"
#include "smtp/backend.h"

#include <spool/layout.h>

#include <chrono>
#include <functional>

namespace mh::net {

struct ServerOptions {
  serve::Settings settings;
  unsigned threads = 0;                         // event-loop threads; 0 = one per core
  unsigned delivery_threads = 0;                // blocking work (fsync, hashing); 0 = 4 per core
  std::chrono::milliseconds shutdown_grace{10000};  // SIGTERM: time for open transactions
  // Work beside the listeners (the outbound queue runner): started once privileges are
  // dropped and the listeners are ready, stopped after the last connection has ended.
  std::function<void()> start_background;
  std::function<void()> stop_background;
};

// What the sessions ask of the spool; all thread-safe, shared by every connection.
struct Backends {
  smtp::MailBackend& mail;
  auth::Authenticator& logins;
  pop3::MaildropProvider& maildrops;
};

// --check-config: the TLS certificate and key can be used (or will be made at the first
// start). Throws spool::Error(bad_config) naming the file otherwise.
void check_tls(const spool::Layout& layout, const serve::Settings& settings);

// Binds every listener, then (when root) drops to the spool owner, loads (or first
// makes) the TLS certificate, then serves until SIGTERM/SIGINT; SIGHUP reloads the
// certificate. Returns the exit code: 0 after a clean stop. Throws spool::Error when a
// listener cannot be bound or the certificate cannot be used.
int run_server(const ServerOptions& options, const spool::Layout& layout, Backends backends);

} // namespace mh::net
