// serve_config.h — mh-serve's settings: mailhost.yaml (spool::load_server_config, which
// rejects unknown keys with file:line) plus what only the daemon checks: listener
// addresses ("ip:port", "[v6]:port", "*:port"), the defaults of SPEC §8 (port 25 as
// root, 2525 otherwise, on all addresses) and the host name (default: this machine's).
// A bad value throws spool::Error(bad_config) naming the file and key (exit 78).
#pragma once

#include "smtp/session.h"
#include "smtp/spool_backend.h"

#include <spool/config.h>
#include <spool/filtered_delivery.h>
#include <spool/layout.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::serve {

struct Endpoint {
  std::string ip;        // "0.0.0.0", "::", "127.0.0.1", "::1"
  std::uint16_t port = 0;
  std::string text() const;  // as written back: "127.0.0.1:2525", "[::1]:2525"
};

// "127.0.0.1:2525", "[::1]:2525", "*:25" (= 0.0.0.0 and ::). Empty when malformed.
std::vector<Endpoint> parse_endpoint(std::string_view text);

// True for an IPv4 or IPv6 address literal (no brackets, no name).
bool ip_literal_ok(const std::string& ip);

// The listeners of SPEC §8, in the order mailhost.yaml names them.
enum class Service { smtp, submission, smtps, pop3, pop3s };
inline constexpr Service all_services[] = {Service::smtp, Service::submission, Service::smtps, Service::pop3,
                                           Service::pop3s};
const char* service_name(Service s);
bool is_pop3(Service s);
bool implicit_tls(Service s);  // smtps, pop3s: TLS from the first byte

struct Listener {
  Service service;
  Endpoint endpoint;
};

struct Settings {
  spool::ServerConfig config;
  std::string hostname;
  std::vector<Listener> listeners;              // empty: nothing to serve
  bool serves(Service s) const;
  // POP3's idle time: RFC 1939 §3 wants at least 10 minutes, so the SMTP default (5)
  // is raised; a timeouts.command set on purpose (tests) is taken as it is.
  std::chrono::milliseconds pop3_timeout() const;
};

// Throws spool::Error(bad_config) "FILE:LINE: key 'KEY': WHAT", like the loader's own
// errors (config.h), for checks made after loading.
[[noreturn]] void bad_config(const spool::Layout& layout, const spool::ServerConfig& config, const std::string& key,
                             const std::string& what);

// One daemon's own identity on a spool that several share (SPEC §8 "Several daemons on
// one spool"): --hostname and --listen SERVICE=ADDR:PORT replace mailhost.yaml's
// `hostname` and `listen:` for this process only.
struct Identity {
  std::optional<std::string> hostname;
  std::vector<std::string> listen;  // "smtp=127.0.0.1:2525"; empty: mailhost.yaml's
};

// Reads and validates SPOOL/mailhost.yaml. `privileged` selects the default ports
// (25/587/465/110/995 as root, 2525/2587/2465/2110/2995 otherwise, on all addresses).
// A malformed `identity` value throws spool::Error(usage) (exit 64).
Settings load_settings(const spool::Layout& layout, bool privileged, const Identity& identity = {});

smtp::SessionConfig session_config(const Settings& settings);

// What local delivery needs for filters (SPEC §6, §8 spam/srs): host name, rspamd, and
// the SRS key — made in the spool on first use, so call this as the spool owner.
spool::FilterServices filter_services(const spool::Layout& layout, const Settings& settings);

// Virus scanning and content limits (SPEC §8): a clamd scanner when `clamd.address` is set.
smtp::ContentCheck content_check(const Settings& settings);

} // namespace mh::serve
