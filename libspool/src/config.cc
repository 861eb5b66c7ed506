// config.cc — strict YAML loading/saving of mailhost.yaml, domain.yaml and account.yaml.
// The strict reader, the parse cache and save_yaml() live in yaml_reader.h, shared with
// filters.cc (filters.yaml); no YAML type leaves these files.
#include "spool/config.h"

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/units.h"

#include "yaml_reader.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

namespace spool {
namespace {

namespace fs = std::filesystem;
using detail::ParsedCache;
using detail::Reader;
using detail::save_yaml;

std::optional<std::string> network_problem(const std::string& net) {
  auto slash = net.find('/');
  std::string addr = net.substr(0, slash);
  unsigned char buf[sizeof(in6_addr)];
  int max_prefix = 0;
  if (::inet_pton(AF_INET, addr.c_str(), buf) == 1) max_prefix = 32;
  else if (::inet_pton(AF_INET6, addr.c_str(), buf) == 1) max_prefix = 128;
  else return std::string("expected an IPv4 or IPv6 address with an optional /prefix");
  if (slash == std::string::npos) return std::nullopt;
  const std::string prefix = net.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 3 || prefix.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(prefix) > max_prefix)
    return "prefix length must be 0.." + std::to_string(max_prefix);
  return std::nullopt;
}

// CIDR networks ("127.0.0.0/8", "::1/128", or a bare address): checked here, so a typo
// is a config error at load, not a network that silently matches nothing.
std::vector<std::string> networks(const Reader& r, const YAML::Node& n, const std::string& key) {
  std::vector<std::string> out = r.str_list(n, key);
  for (const std::string& net : out)
    if (auto why = network_problem(net)) r.fail(n, key, "'" + net + "' is not a network: " + *why);
  return out;
}

// Records the line of every key of a mapping and of its sub-mappings ("a.b").
void record_key_lines(const YAML::Node& map, const std::string& prefix, std::map<std::string, int>& out) {
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) continue;
    const std::string key = prefix + kv.first.Scalar();
    out[key] = kv.first.Mark().line + 1;
    if (kv.second.IsMap()) record_key_lines(kv.second, key + ".", out);
  }
}

// A postmaster destination: one plain address (local@domain), nothing that could name a
// path or smuggle a line (SPEC §8 "Addresses").
std::string postmaster_address(const Reader& r, const YAML::Node& n, const std::string& key) {
  std::string a = r.str(n, key);
  const auto at = a.rfind('@');
  const bool plain = std::none_of(a.begin(), a.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u <= 0x20 || u == 0x7f || ch == '/' || ch == '\\' || ch == '<' || ch == '>';
  });
  if (!plain || at == std::string::npos || at == 0 || at + 1 == a.size() || a.size() > 254)
    r.fail(n, key, "expected an address local@domain, got '" + a + "'");
  return a;
}

DomainConfig parse_domain_config(const fs::path& file, const std::string& text) {
  Reader r(file);
  YAML::Node root = r.parse(text);
  r.only_keys(root, {"created", "state", "quota", "postmaster"});
  DomainConfig c;
  if (root["created"]) c.created = r.str(root["created"], "created");
  if (root["state"]) c.suspended = r.state(root["state"], "state", "active", "suspended") == "suspended";
  if (root["quota"]) c.quota = r.size(root["quota"], "quota");
  if (root["postmaster"]) c.postmaster = postmaster_address(r, root["postmaster"], "postmaster");
  r.require_keys(root, {"created"});
  return c;
}

// Shared by the path and the descriptor-relative loaders: one key space (the path).
ParsedCache<DomainConfig>& domain_configs() {
  static ParsedCache<DomainConfig> cache;
  return cache;
}

} // namespace

DomainConfig load_domain_config(const fs::path& file) {
  return load_domain_config_at(AT_FDCWD, file);
}

DomainConfig load_domain_config_at(int dir, const fs::path& file) {
  const std::string name = dir == AT_FDCWD ? file.string() : file.filename().string();
  return domain_configs().load_at(dir, name.c_str(), file,
                                  [&](const std::string& text) { return parse_domain_config(file, text); });
}

void save_domain_config(const fs::path& file, const DomainConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "created" << YAML::Value << c.created;
  out << YAML::Key << "state" << YAML::Value << (c.suspended ? "suspended" : "active");
  out << YAML::Key << "quota" << YAML::Value << format_size_exact(c.quota);
  if (!c.postmaster.empty()) out << YAML::Key << "postmaster" << YAML::Value << c.postmaster;
  out << YAML::EndMap;
  save_yaml(file, out, "domain.yaml");
}

namespace {

AccountConfig parse_account_config(const fs::path& file, const std::string& text) {
  Reader r(file);
  YAML::Node root = r.parse(text);
  r.only_keys(root, {"password", "display_name", "created", "state", "sending", "sending_reason", "quota"});
  AccountConfig c;
  if (root["password"]) c.password_hash = r.str(root["password"], "password");
  if (root["display_name"]) c.display_name = r.str(root["display_name"], "display_name");
  if (root["created"]) c.created = r.str(root["created"], "created");
  if (root["state"]) c.suspended = r.state(root["state"], "state", "active", "suspended") == "suspended";
  if (root["sending"])
    c.sending_suspended = r.state(root["sending"], "sending", "active", "suspended") == "suspended";
  if (root["sending_reason"]) c.sending_reason = r.str(root["sending_reason"], "sending_reason");
  if (root["quota"]) c.quota = r.size(root["quota"], "quota");
  // An account without these was not written by us (an empty or truncated file).
  r.require_keys(root, {"password", "created"});
  return c;
}

} // namespace

AccountConfig load_account_config(const fs::path& file) {
  return load_account_config_at(AT_FDCWD, file);
}

AccountConfig load_account_config_at(int dir, const fs::path& file) {
  static ParsedCache<AccountConfig> cache;
  const std::string name = dir == AT_FDCWD ? file.string() : file.filename().string();
  return cache.load_at(dir, name.c_str(), file,
                       [&](const std::string& text) { return parse_account_config(file, text); });
}

void save_account_config(const fs::path& file, const AccountConfig& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "password" << YAML::Value << YAML::DoubleQuoted << c.password_hash;
  out << YAML::Key << "display_name" << YAML::Value << YAML::DoubleQuoted << c.display_name;
  out << YAML::Key << "created" << YAML::Value << c.created;
  out << YAML::Key << "state" << YAML::Value << (c.suspended ? "suspended" : "active");
  out << YAML::Key << "sending" << YAML::Value << (c.sending_suspended ? "suspended" : "active");
  if (!c.sending_reason.empty())
    out << YAML::Key << "sending_reason" << YAML::Value << YAML::DoubleQuoted << c.sending_reason;
  out << YAML::Key << "quota" << YAML::Value << format_size_exact(c.quota);
  out << YAML::EndMap;
  save_yaml(file, out, "account.yaml");
}

ServerConfig load_server_config(const fs::path& file) {
  ServerConfig c;
  Reader r(file);
  auto text = detail::read_small_file_if_exists(file, nullptr);
  if (!text) return c;
  YAML::Node root = r.parse(*text);
  r.only_keys(root, {"hostname", "listen", "tls", "dns", "trusted_networks", "auth", "relay", "outbound",
                     "limits", "timeouts", "clamd", "spam", "srs", "submission", "postmaster"});
  record_key_lines(root, "", c.key_lines);
  if (root["hostname"]) c.hostname = r.str(root["hostname"], "hostname");
  if (auto listen = root["listen"]) {
    if (!listen.IsMap()) r.fail(listen, "listen", "expected a mapping of service: address");
    r.only_keys(listen, {"smtp", "submission", "smtps", "pop3", "pop3s"}, "listen.");
    c.listen_given = true;
    for (const auto& kv : listen) {
      std::string svc = kv.first.Scalar();
      c.listen[svc] = r.str_list(kv.second, "listen." + svc);
    }
  }
  if (auto tls = root["tls"]) {
    if (!tls.IsMap()) r.fail(tls, "tls", "expected a mapping");
    r.only_keys(tls, {"cert", "key"}, "tls.");
    if (tls["cert"]) c.tls_cert = r.str(tls["cert"], "tls.cert");
    if (tls["key"]) c.tls_key = r.str(tls["key"], "tls.key");
  }
  if (auto dns = root["dns"]) {
    if (!dns.IsMap()) r.fail(dns, "dns", "expected a mapping");
    r.only_keys(dns, {"servers", "timeout"}, "dns.");
    if (dns["servers"]) c.dns_servers = r.str_list(dns["servers"], "dns.servers");
    if (dns["timeout"]) c.dns_timeout = r.duration(dns["timeout"], "dns.timeout");
  }
  if (root["trusted_networks"]) c.trusted_networks = networks(r, root["trusted_networks"], "trusted_networks");
  if (auto auth = root["auth"]) {
    if (!auth.IsMap()) r.fail(auth, "auth", "expected a mapping");
    r.only_keys(auth, {"allow_plaintext"}, "auth.");
    if (auto ap = auth["allow_plaintext"]) {
      static const std::set<std::string> yes{"true", "yes", "on"}, no{"false", "no", "off"};
      if (ap.IsScalar() && (yes.count(ap.Scalar()) || no.count(ap.Scalar()))) {
        c.auth_plaintext_any = yes.count(ap.Scalar()) > 0;
        c.auth_plaintext_networks.clear();
      } else {
        c.auth_plaintext_networks = networks(r, ap, "auth.allow_plaintext");
      }
    }
  }
  if (auto relay = root["relay"]) {
    if (!relay.IsMap()) r.fail(relay, "relay", "expected a mapping");
    r.only_keys(relay, {"host", "tls"}, "relay.");
    if (relay["host"]) c.relay_host = r.str(relay["host"], "relay.host");
    if (auto tls = relay["tls"]) {
      const std::string v = r.str(tls, "relay.tls");
      if (v == "opportunistic") c.relay_tls = ServerConfig::OutboundTls::opportunistic;
      else if (v == "required") c.relay_tls = ServerConfig::OutboundTls::required;
      else if (v == "none") c.relay_tls = ServerConfig::OutboundTls::none;
      else r.fail(tls, "relay.tls", "expected 'opportunistic', 'required' or 'none', got '" + v + "'");
    }
  }
  if (auto out = root["outbound"]) {
    if (!out.IsMap()) r.fail(out, "outbound", "expected a mapping");
    r.only_keys(out, {"hold", "port", "concurrency", "per_destination", "retry", "give_up", "timeout", "connect_timeout"},
                "outbound.");
    if (out["hold"]) c.outbound_hold = r.boolean(out["hold"], "outbound.hold");
    if (out["port"]) {
      const std::uint32_t port = r.count(out["port"], "outbound.port");
      if (port == 0 || port > 65535) r.fail(out["port"], "outbound.port", "expected a port number 1..65535");
      c.outbound_port = static_cast<std::uint16_t>(port);
    }
    if (out["concurrency"]) c.outbound_concurrency = r.count(out["concurrency"], "outbound.concurrency");
    if (out["per_destination"]) c.outbound_per_destination = r.count(out["per_destination"], "outbound.per_destination");
    if (c.outbound_concurrency == 0) r.fail(out["concurrency"], "outbound.concurrency", "must be at least 1");
    if (out["per_destination"] && c.outbound_per_destination == 0)
      r.fail(out["per_destination"], "outbound.per_destination", "must be at least 1");
    if (auto retry = out["retry"]) {
      if (!retry.IsSequence() || retry.size() == 0)
        r.fail(retry, "outbound.retry", "expected a non-empty list of durations like [5m, 15m, 1h]");
      c.outbound_retry.clear();
      for (const auto& step : retry) {
        const auto d = std::chrono::duration_cast<std::chrono::seconds>(r.duration(step, "outbound.retry"));
        if (d.count() < 1) r.fail(step, "outbound.retry", "a retry step must be at least 1s");
        c.outbound_retry.push_back(d);
      }
    }
    if (out["give_up"])
      c.outbound_give_up = std::chrono::duration_cast<std::chrono::seconds>(r.duration(out["give_up"], "outbound.give_up"));
    if (out["timeout"]) c.outbound_timeout = r.duration(out["timeout"], "outbound.timeout");
    if (out["connect_timeout"]) c.outbound_connect_timeout = r.duration(out["connect_timeout"], "outbound.connect_timeout");
    if (c.outbound_timeout.count() < 100) r.fail(out["timeout"], "outbound.timeout", "must be at least 100ms");
    if (c.outbound_connect_timeout.count() < 100)
      r.fail(out["connect_timeout"], "outbound.connect_timeout", "must be at least 100ms");
  }
  if (auto limits = root["limits"]) {
    if (!limits.IsMap()) r.fail(limits, "limits", "expected a mapping");
    r.only_keys(limits,
                {"message_size", "recipients", "connections", "connections_per_ip", "sending_per_hour", "min_data_rate",
                 "expanded_content", "archive_depth", "mime_parts", "mime_depth"},
                "limits.");
    if (limits["min_data_rate"]) c.limit_min_data_rate = r.count(limits["min_data_rate"], "limits.min_data_rate");
    if (limits["sending_per_hour"])
      c.limit_sending_per_hour = r.count(limits["sending_per_hour"], "limits.sending_per_hour");
    if (limits["message_size"]) c.limit_message_size = r.size(limits["message_size"], "limits.message_size");
    if (limits["expanded_content"])
      c.limit_expanded_content = r.size(limits["expanded_content"], "limits.expanded_content");
    if (limits["archive_depth"]) c.limit_archive_depth = r.count(limits["archive_depth"], "limits.archive_depth");
    if (limits["mime_parts"]) c.limit_mime_parts = r.count(limits["mime_parts"], "limits.mime_parts");
    if (limits["mime_depth"]) c.limit_mime_depth = r.count(limits["mime_depth"], "limits.mime_depth");
    if (limits["recipients"]) c.limit_recipients = r.count(limits["recipients"], "limits.recipients");
    if (limits["connections"]) c.limit_connections = r.count(limits["connections"], "limits.connections");
    if (limits["connections_per_ip"])
      c.limit_connections_per_ip = r.count(limits["connections_per_ip"], "limits.connections_per_ip");
  }
  if (auto t = root["timeouts"]) {
    if (!t.IsMap()) r.fail(t, "timeouts", "expected a mapping");
    r.only_keys(t, {"command", "data", "greet_wait"}, "timeouts.");
    if (t["command"]) c.timeout_command = r.duration(t["command"], "timeouts.command");
    if (t["data"]) c.timeout_data = r.duration(t["data"], "timeouts.data");
    if (t["greet_wait"]) c.timeout_greet_wait = r.duration(t["greet_wait"], "timeouts.greet_wait");
  }
  if (auto spam = root["spam"]) {
    if (!spam.IsMap()) r.fail(spam, "spam", "expected a mapping");
    r.only_keys(spam, {"rspamd", "timeout"}, "spam.");
    if (spam["rspamd"]) {
      c.spam_rspamd = r.str(spam["rspamd"], "spam.rspamd");
      if (c.spam_rspamd.rfind("http://", 0) != 0 && c.spam_rspamd.rfind("https://", 0) != 0)
        r.fail(spam["rspamd"], "spam.rspamd", "expected an http:// or https:// URL, got '" + c.spam_rspamd + "'");
      while (!c.spam_rspamd.empty() && c.spam_rspamd.back() == '/') c.spam_rspamd.pop_back();
    }
    if (spam["timeout"]) c.spam_timeout = r.duration(spam["timeout"], "spam.timeout");
  }
  if (auto srs = root["srs"]) {
    if (!srs.IsMap()) r.fail(srs, "srs", "expected a mapping");
    r.only_keys(srs, {"domain"}, "srs.");
    if (srs["domain"]) c.srs_domain = r.str(srs["domain"], "srs.domain");
  }
  if (auto sub = root["submission"]) {
    if (!sub.IsMap()) r.fail(sub, "submission", "expected a mapping");
    r.only_keys(sub, {"from_header"}, "submission.");
    if (sub["from_header"]) {
      const std::string v = r.str(sub["from_header"], "submission.from_header");
      using P = ServerConfig::FromHeaderPolicy;
      if (v == "any") c.submission_from_header = P::any;
      else if (v == "own-domain") c.submission_from_header = P::own_domain;
      else if (v == "own-address") c.submission_from_header = P::own_address;
      else r.fail(sub["from_header"], "submission.from_header",
                  "expected 'any', 'own-domain' or 'own-address', got '" + v + "'");
    }
  }
  if (root["postmaster"]) c.postmaster = postmaster_address(r, root["postmaster"], "postmaster");
  if (auto clamd = root["clamd"]) {
    if (!clamd.IsMap()) r.fail(clamd, "clamd", "expected a mapping");
    r.only_keys(clamd, {"address", "timeout"}, "clamd.");
    if (clamd["address"]) c.clamd_address = r.str(clamd["address"], "clamd.address");
    if (clamd["timeout"]) c.clamd_timeout = r.duration(clamd["timeout"], "clamd.timeout");
  }
  return c;
}

std::string machine_hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) return "localhost";
  std::string host = name;
  if (host.find('.') != std::string::npos) return host;
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) == 0 && res) {
    if (res->ai_canonname && std::strchr(res->ai_canonname, '.')) host = res->ai_canonname;
    ::freeaddrinfo(res);
  }
  return host;
}

std::string server_hostname(const ServerConfig& config) {
  return config.hostname.empty() ? machine_hostname() : config.hostname;
}

} // namespace spool
