// client_check.h — who an inbound SMTP client is, decided before it may hand us mail
// (SPEC §8): a client in trusted_networks skips the forward-confirmed reverse-DNS check
// (and only that: relaying still needs AUTH); every other one gets the verdict of
// mh::dns::FcrdnsChecker, turned here — and only here — into the session's ClientVerdict.
// No Asio and no c-ares: net/ (server, stdio) and main.cc share it.
#pragma once

#include "serve_config.h"
#include "smtp/backend.h"

#include "dns/fcrdns.h"
#include "dns/networks.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mh::serve {

class ClientCheck {
public:
  // Sets up the resolver from dns.servers / dns.timeout and reads trusted_networks. A bad
  // value throws spool::Error(bad_config) naming file:line and key (exit 78).
  ClientCheck(const spool::Layout& layout, const Settings& settings);

  // The verdict for a trusted client, at once; nullopt when DNS must be asked (check()).
  std::optional<smtp::ClientVerdict> trusted_verdict(const std::string& client_ip) const;
  // Asks DNS. `done` is called exactly once, from the resolver's own thread: it must be
  // quick (post the verdict to where it is needed) and must not call check_blocking().
  void check(const std::string& client_ip, std::function<void(smtp::ClientVerdict)> done);
  // trusted_verdict() or the DNS verdict, waiting for it (--stdio mode).
  smtp::ClientVerdict check_blocking(const std::string& client_ip);

  // The longest a check() can take before `done` is called (fcrdns.h: two steps of
  // timeout × tries each), so a connection waiting for it can bound its wait.
  std::chrono::milliseconds longest_check() const { return 2 * dns::kTries * timeout_; }

  const std::vector<dns::Network>& trusted_networks() const { return trusted_; }

  // auth.allow_plaintext: may this client send a password without TLS (SMTP AUTH,
  // POP3 USER/PASS)? Default: 127.0.0.1 and ::1 only.
  bool plaintext_login_allowed(const std::string& client_ip) const;

private:
  std::vector<dns::Network> trusted_;
  std::vector<dns::Network> plaintext_;
  bool plaintext_any_ = false;
  std::chrono::milliseconds timeout_;
  dns::FcrdnsChecker checker_;
};

// The session's verdict for a DNS result: confirmed → accepted with the verified name;
// no PTR or forged → rejected (550); DNS trouble → temporary (451), with sendmail's texts.
smtp::ClientVerdict verdict_for(const dns::Result& result, const std::string& client_ip);

} // namespace mh::serve
