// stdio.h — `mh-serve --stdio smtp|pop3`: one session on stdin/stdout, inetd-style, for
// dialogue tests and for running under a super-server. Plain blocking I/O with poll()
// for the command/data timeouts; no Asio. The blocking steps the daemon runs on its pool
// (delivery, POP3 login) run inline here: there is only one session to wait.
#pragma once

#include "auth/authenticator.h"
#include "pop3/maildrop.h"
#include "pop3/session.h"
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
// options.session.tls_available must be false: there is no STARTTLS on a pipe.
int run_stdio_smtp(const StdioOptions& options, smtp::MailBackend& backend, auth::Authenticator& authenticator);

struct StdioPop3Options {
  pop3::SessionConfig session;       // tls_available stays false: no STLS on a pipe
  std::string client_ip;
  std::chrono::milliseconds timeout{600000};  // RFC 1939 §3: at least 10 minutes
};

// One POP3 session on fds 0/1 until QUIT, EOF, an error limit or the timeout. RETR/TOP
// stream the message file in 64 KiB pieces through DotStuffer. Returns the exit code (0).
int run_stdio_pop3(const StdioPop3Options& options, auth::Authenticator& authenticator,
                   pop3::MaildropProvider& maildrops);

// The peer address of fd 0 when it is a TCP socket (inetd), else "".
std::string stdin_peer_ip();

} // namespace mh::net
