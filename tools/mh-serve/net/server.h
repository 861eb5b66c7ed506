// server.h — the network daemon: SMTP listeners, one event loop per thread, connection
// limits, timeouts, graceful stop. Declared without Asio so main.cc stays light; all
// Asio code is in net/*.cc (STYLE: only net/ includes Asio).
#pragma once

#include "serve_config.h"
#include "smtp/backend.h"

#include <spool/layout.h>

#include <chrono>

namespace mh::net {

struct ServerOptions {
  serve::Settings settings;
  unsigned threads = 0;                         // event-loop threads; 0 = one per core
  unsigned delivery_threads = 0;                // blocking fsync work; 0 = 4 per core
  std::chrono::milliseconds shutdown_grace{10000};  // SIGTERM: time for open transactions
};

// Binds every listener, then (when root) drops to the spool owner, then serves until
// SIGTERM/SIGINT. Returns the exit code: 0 after a clean stop. Throws spool::Error when
// a listener cannot be bound.
int run_server(const ServerOptions& options, const spool::Layout& layout, smtp::MailBackend& backend);

} // namespace mh::net
