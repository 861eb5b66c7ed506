// client_check.cc — trusted networks and the FCrDNS verdict for mh-serve's SMTP clients.
#include "client_check.h"

#include <stdexcept>

namespace mh::serve {
namespace {

std::vector<dns::Network> parse_networks(const spool::Layout& layout, const Settings& settings,
                                         const std::vector<std::string>& texts, const std::string& key) {
  std::vector<dns::Network> out;
  for (const auto& text : texts) {
    std::string why;
    auto network = dns::Network::parse(text, &why);
    // libspool checked the syntax at load; this parser is stricter (host bits).
    if (!network) bad_config(layout, settings.config, key, "'" + text + "' is not a network: " + why);
    out.push_back(*network);
  }
  return out;
}

// The checker's constructor throws std::runtime_error on a server it cannot use; that
// is the administrator's mistake in dns.servers (or dns.timeout), reported like others.
dns::FcrdnsChecker make_checker(const spool::Layout& layout, const Settings& settings) {
  dns::ResolverConfig rc;
  rc.servers = settings.config.dns_servers;
  rc.timeout = settings.config.dns_timeout;
  if (rc.timeout.count() <= 0) bad_config(layout, settings.config, "dns.timeout", "must be more than 0");
  try {
    return dns::FcrdnsChecker(rc);
  } catch (const std::runtime_error& e) {
    bad_config(layout, settings.config, "dns.servers", e.what());
  }
}

} // namespace

ClientCheck::ClientCheck(const spool::Layout& layout, const Settings& settings)
    : trusted_(parse_networks(layout, settings, settings.config.trusted_networks, "trusted_networks")),
      plaintext_(parse_networks(layout, settings, settings.config.auth_plaintext_networks, "auth.allow_plaintext")),
      plaintext_any_(settings.config.auth_plaintext_any),
      timeout_(settings.config.dns_timeout),
      checker_(make_checker(layout, settings)) {}

std::optional<smtp::ClientVerdict> ClientCheck::trusted_verdict(const std::string& client_ip) const {
  for (const auto& network : trusted_)
    if (network.contains(client_ip))
      return smtp::ClientVerdict{smtp::ClientVerdict::Kind::accepted, "", "", "trusted network " + network.text()};
  return std::nullopt;
}

bool ClientCheck::plaintext_login_allowed(const std::string& client_ip) const {
  return plaintext_any_ || dns::in_networks(plaintext_, client_ip);
}

void ClientCheck::check(const std::string& client_ip, std::function<void(smtp::ClientVerdict)> done) {
  checker_.check(client_ip, [ip = client_ip, done = std::move(done)](dns::Result r) { done(verdict_for(r, ip)); });
}

smtp::ClientVerdict ClientCheck::check_blocking(const std::string& client_ip) {
  if (auto v = trusted_verdict(client_ip)) return *v;
  return verdict_for(checker_.check_blocking(client_ip), client_ip);
}

smtp::ClientVerdict verdict_for(const dns::Result& result, const std::string& client_ip) {
  using Kind = smtp::ClientVerdict::Kind;
  smtp::ClientVerdict v;
  v.detail = std::string(dns::verdict_name(result.verdict)) + ": " + result.detail;
  switch (result.verdict) {
  case dns::Verdict::confirmed:
    v.kind = Kind::accepted;
    v.rdns_name = result.name;
    return v;
  case dns::Verdict::no_ptr:
  case dns::Verdict::forged:
    v.kind = Kind::rejected;
    break;
  case dns::Verdict::temporary_failure:
    v.kind = Kind::temporary;
    break;
  }
  v.reply = dns::smtp_reply_for(result, client_ip);
  return v;
}

} // namespace mh::serve
