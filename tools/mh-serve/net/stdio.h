// stdio.h — `mh-serve --stdio smtp`: one session on stdin/stdout, inetd-style, for
// dialogue tests and for running under a super-server. Plain blocking I/O with poll()
// for the command/data timeouts; no Asio.
#pragma once

#include "smtp/backend.h"
#include "smtp/session.h"

#include <chrono>

namespace mh::net {

struct StdioOptions {
  smtp::SessionConfig session;
  smtp::ClientInfo client;
  smtp::ClientVerdict verdict;  // the client check's (client_check.h)
  std::chrono::milliseconds timeout_command{300000};
  std::chrono::milliseconds timeout_data{600000};
};

// Runs the session until QUIT, EOF, an error limit or a timeout. Returns the exit code (0).
int run_stdio_smtp(const StdioOptions& options, smtp::MailBackend& backend);

// The peer address of fd 0 when it is a TCP socket (inetd), else "".
std::string stdin_peer_ip();

} // namespace mh::net
