// usage_view.cc — collecting a domain's usage breakdown and showing usage to people
// (units, percent, a bar on terminals) and to scripts (JSON with exact byte counts).
#include "commands.h"

#include <spool/accounts.h>
#include <spool/units.h>

#include <unistd.h>

#include <cmath>

namespace mh::quota {
namespace {

constexpr int bar_width = 20;

void add_usage(spool::Usage& total, const spool::Usage& u) {
  total.bytes += u.bytes;
  total.messages += u.messages;
}

} // namespace

DomainUsage collect_domain(const spool::Layout& layout, const spool::Domain& domain) {
  DomainUsage d{domain, spool::read_domain(layout, domain).quota, {}, {}};
  for (const spool::LocalPart& name : spool::list_accounts(layout, domain)) {
    spool::Address a(name, domain);
    MailboxUsage m{a, false, spool::read_account(layout, a).quota, spool::account_usage(layout, a)};
    add_usage(d.usage, m.usage);
    d.mailboxes.push_back(std::move(m));
  }
  for (const spool::LocalPart& name : spool::list_list_names(layout, domain)) {
    spool::Address l(name, domain);
    MailboxUsage m{l, true, 0, spool::list_archive_usage(layout, l)};
    add_usage(d.usage, m.usage);
    d.mailboxes.push_back(std::move(m));
  }
  return d;
}

Target parse_target(const std::string& text) {
  if (text.find('@') != std::string::npos) return spool::Address::parse(text);
  return spool::Domain::parse(text);
}

std::optional<double> percent_of(std::uint64_t used, std::uint64_t quota) {
  if (quota == 0) return std::nullopt;
  return std::round(static_cast<double>(used) * 1000.0 / static_cast<double>(quota)) / 10.0;
}

std::string percent_text(std::uint64_t used, std::uint64_t quota) {
  auto p = percent_of(used, quota);
  if (!p) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", *p);
  return buf;
}

std::string percent_bar(std::uint64_t used, std::uint64_t quota) {
  // Bars are for people at a terminal; a pipe or a file gets the plain table.
  if (quota == 0 || ::isatty(STDOUT_FILENO) != 1) return "";
  double fraction = std::min(1.0, static_cast<double>(used) / static_cast<double>(quota));
  int filled = static_cast<int>(std::lround(fraction * bar_width));
  if (filled == 0 && used > 0) filled = 1; // some use is never shown as none
  return "[" + std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(bar_width - filled), '.') + "]";
}

std::string quota_text(std::uint64_t quota) { return quota == 0 ? "none" : spool::format_size(quota); }

std::string usage_text(const spool::Usage& u) {
  return spool::format_size(u.bytes) + " in " + std::to_string(u.messages) +
         (u.messages == 1 ? " message" : " messages");
}

nlohmann::json mailbox_json(const MailboxUsage& m, const DomainUsage& d) {
  nlohmann::json j = {{"address", m.address.str()},
                      {"kind", m.is_list ? "list" : "account"},
                      {"usage_bytes", m.usage.bytes},
                      {"usage_messages", m.usage.messages},
                      {"domain_quota", d.quota},
                      {"percent_of_domain", nullptr}};
  if (auto p = percent_of(m.usage.bytes, d.quota)) j["percent_of_domain"] = *p;
  if (!m.is_list) {
    j["quota"] = m.own_quota;
    j["percent"] = nullptr;
    if (auto p = percent_of(m.usage.bytes, m.own_quota)) j["percent"] = *p;
  }
  return j;
}

nlohmann::json domain_json(const DomainUsage& d, bool with_mailboxes) {
  nlohmann::json j = {{"domain", d.domain.str()},
                      {"unicode", d.domain.unicode()},
                      {"quota", d.quota},
                      {"usage_bytes", d.usage.bytes},
                      {"usage_messages", d.usage.messages},
                      {"percent", nullptr},
                      {"free_bytes", nullptr}};
  if (auto p = percent_of(d.usage.bytes, d.quota)) j["percent"] = *p;
  if (d.quota != 0) j["free_bytes"] = d.quota > d.usage.bytes ? d.quota - d.usage.bytes : 0;
  if (with_mailboxes) {
    j["accounts"] = nlohmann::json::array();
    j["lists"] = nlohmann::json::array();
    for (const MailboxUsage& m : d.mailboxes) j[m.is_list ? "lists" : "accounts"].push_back(mailbox_json(m, d));
  }
  return j;
}

} // namespace mh::quota
