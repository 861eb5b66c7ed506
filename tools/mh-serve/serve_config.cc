// serve_config.cc — listener addresses, defaults and host name for mh-serve.
#include "serve_config.h"

#include "content/clamd.h"

#include <spool/error.h>
#include <spool/host_state.h>
#include <spool/names.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace mh::serve {
namespace {

struct ServiceInfo {
  Service service;
  const char* name;
  const char* privileged_default;
  const char* user_default;
};
constexpr ServiceInfo services[] = {
    {Service::smtp, "smtp", "*:25", "*:2525"},          {Service::submission, "submission", "*:587", "*:2587"},
    {Service::smtps, "smtps", "*:465", "*:2465"},       {Service::pop3, "pop3", "*:110", "*:2110"},
    {Service::pop3s, "pop3s", "*:995", "*:2995"},
};

const ServiceInfo& info(Service s) {
  for (const auto& i : services)
    if (i.service == s) return i;
  return services[0];
}

// --listen SERVICE=ADDR:PORT, given once or more: this daemon's listeners instead of
// mailhost.yaml's `listen:` map.
std::vector<Listener> listeners_from_command_line(const std::vector<std::string>& specs) {
  std::vector<Listener> listeners;
  for (const std::string& spec : specs) {
    const auto eq = spec.find('=');
    const ServiceInfo* found = nullptr;
    for (const auto& i : services)
      if (eq != std::string::npos && spec.compare(0, eq, i.name) == 0 && std::string_view(i.name).size() == eq) found = &i;
    if (!found)
      throw spool::Error(spool::Errc::usage, "--listen " + spec +
                                                 ": expected SERVICE=ADDRESS:PORT, SERVICE one of smtp, submission, "
                                                 "smtps, pop3, pop3s");
    auto endpoints = parse_endpoint(std::string_view(spec).substr(eq + 1));
    if (endpoints.empty())
      throw spool::Error(spool::Errc::usage, "--listen " + spec +
                                                 ": not an address:port (e.g. 127.0.0.1:2525, [::1]:2525, *:25)");
    for (auto& ep : endpoints) listeners.push_back({found->service, std::move(ep)});
  }
  return listeners;
}

} // namespace

const char* service_name(Service s) { return info(s).name; }
bool is_pop3(Service s) { return s == Service::pop3 || s == Service::pop3s; }
bool implicit_tls(Service s) { return s == Service::smtps || s == Service::pop3s; }

bool Settings::serves(Service s) const {
  for (const auto& l : listeners)
    if (l.service == s) return true;
  return false;
}

std::chrono::milliseconds Settings::pop3_timeout() const {
  if (config.key_lines.count("timeouts.command")) return config.timeout_command;
  return std::max<std::chrono::milliseconds>(config.timeout_command, std::chrono::minutes(10));
}

void bad_config(const spool::Layout& layout, const spool::ServerConfig& config, const std::string& key,
                const std::string& what) {
  std::string where = layout.server_config().string();
  auto line = config.key_lines.find(key);
  if (line != config.key_lines.end() && line->second > 0) where += ":" + std::to_string(line->second);
  throw spool::Error(spool::Errc::bad_config, where + ": key '" + key + "': " + what);
}

bool ip_literal_ok(const std::string& ip) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, ip.c_str(), buf) == 1 || ::inet_pton(AF_INET6, ip.c_str(), buf) == 1;
}

std::string Endpoint::text() const {
  return (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

std::vector<Endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return {};
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) return {};
  const auto p = static_cast<std::uint16_t>(port);
  if (host == "*" || host.empty()) return {{"0.0.0.0", p}, {"::", p}};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    std::string ip(host.substr(1, host.size() - 2));
    if (ip.find(':') == std::string::npos || !ip_literal_ok(ip)) return {};
    return {{ip, p}};
  }
  std::string ip(host);
  if (ip.find(':') != std::string::npos || !ip_literal_ok(ip)) return {};  // IPv6 needs brackets
  return {{ip, p}};
}

Settings load_settings(const spool::Layout& layout, bool privileged, const Identity& identity) {
  Settings s;
  s.config = spool::load_server_config(layout.server_config());
  s.hostname = identity.hostname ? *identity.hostname : spool::server_hostname(s.config);
  try {
    spool::check_host_name(s.hostname);
  } catch (const spool::Error& e) {
    if (identity.hostname) throw spool::Error(spool::Errc::usage, std::string("--hostname: ") + e.what());
    bad_config(layout, s.config, "hostname", e.what());
  }
  if (s.config.limit_message_size == 0) bad_config(layout, s.config, "limits.message_size", "must be more than 0");
  if (s.config.limit_recipients == 0) bad_config(layout, s.config, "limits.recipients", "must be at least 1");
  if (s.config.limit_connections == 0) bad_config(layout, s.config, "limits.connections", "must be at least 1");
  if (s.config.limit_connections_per_ip == 0) bad_config(layout, s.config, "limits.connections_per_ip", "must be at least 1");
  if (s.config.timeout_command.count() <= 0) bad_config(layout, s.config, "timeouts.command", "must be more than 0");
  if (s.config.timeout_data.count() <= 0) bad_config(layout, s.config, "timeouts.data", "must be more than 0");
  if (!s.config.clamd_address.empty()) {
    try {
      (void)content::ClamdAddress::parse(s.config.clamd_address);
    } catch (const std::invalid_argument& e) {
      bad_config(layout, s.config, "clamd.address", e.what());
    }
    if (s.config.clamd_timeout.count() <= 0) bad_config(layout, s.config, "clamd.timeout", "must be more than 0");
  }

  if (!identity.listen.empty()) {
    s.listeners = listeners_from_command_line(identity.listen);
    s.config.listen_given = true;  // exactly these: no default "*" to skip quietly
    return s;
  }
  for (const auto& i : services) {
    std::vector<std::string> addresses;
    if (!s.config.listen_given) {
      addresses.push_back(privileged ? i.privileged_default : i.user_default);
    } else if (auto it = s.config.listen.find(i.name); it != s.config.listen.end()) {
      addresses = it->second;
    }
    for (const auto& text : addresses) {
      auto endpoints = parse_endpoint(text);
      if (endpoints.empty())
        bad_config(layout, s.config, std::string("listen.") + i.name,
                   "'" + text + "' is not an address:port (e.g. 127.0.0.1:2525, [::1]:2525, *:25)");
      for (auto& ep : endpoints) s.listeners.push_back({i.service, std::move(ep)});
    }
  }
  if (s.listeners.empty()) bad_config(layout, s.config, "listen", "no service to serve (name at least one of smtp, submission, smtps, pop3, pop3s)");
  return s;
}

smtp::SessionConfig session_config(const Settings& settings) {
  smtp::SessionConfig c;
  c.hostname = settings.hostname;
  c.message_size_limit = settings.config.limit_message_size;
  c.max_recipients = settings.config.limit_recipients;
  using Policy = spool::ServerConfig::FromHeaderPolicy;
  switch (settings.config.submission_from_header) {
  case Policy::any: c.from_header = smtp::FromPolicy::any; break;
  case Policy::own_domain: c.from_header = smtp::FromPolicy::own_domain; break;
  case Policy::own_address: c.from_header = smtp::FromPolicy::own_address; break;
  }
  return c;
}

spool::FilterServices filter_services(const spool::Layout& layout, const Settings& settings) {
  spool::FilterServices f;
  f.hostname = settings.hostname;
  if (settings.config.srs_domain.empty()) {
    f.srs_domain = settings.hostname;
    for (char& c : f.srs_domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else {
    try {
      f.srs_domain = spool::Domain::parse(settings.config.srs_domain).str();  // lower case, punycode
    } catch (const spool::Error& e) {
      bad_config(layout, settings.config, "srs.domain", e.what());
    }
  }
  layout.ensure_skeleton();  // tls/ may not exist yet (a --stdio session makes no certificate)
  f.srs = spool::SrsKey::load_or_create(layout);
  f.rspamd_url = settings.config.spam_rspamd;
  f.spam_timeout = settings.config.spam_timeout;
  return f;
}

smtp::ContentCheck content_check(const Settings& settings) {
  smtp::ContentCheck c;
  const spool::ServerConfig& config = settings.config;
  if (config.clamd_address.empty()) return c;
  c.scanner = std::make_shared<content::ClamdScanner>(content::ClamdAddress::parse(config.clamd_address),
                                                      config.clamd_timeout);
  c.limits.expanded_content = config.limit_expanded_content;
  c.limits.archive_depth = config.limit_archive_depth;
  c.limits.mime_parts = config.limit_mime_parts;
  c.limits.mime_depth = config.limit_mime_depth;
  return c;
}

} // namespace mh::serve
