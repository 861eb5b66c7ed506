// list_show.cc — mh-user list [DOMAIN] and show ADDRESS.
#include "commands.h"
#include "common/output.h"

#include <spool/accounts.h>
#include <spool/quota.h>
#include <spool/units.h>

#include <memory>

namespace mh::user {

nlohmann::json account_json(const spool::Address& a, const spool::AccountConfig& c) {
  return {{"address", a.str()},
          {"login", a.str()},
          {"display_name", c.display_name},
          {"state", c.suspended ? "suspended" : "active"},
          {"sending", c.sending_suspended ? "suspended" : "active"},
          {"sending_reason", c.sending_reason},
          {"created", c.created},
          {"quota", c.quota}};
}

namespace {

struct ListOptions {
  std::string target;
  bool names = false;
};

Result run_list(const Tool& tool, const ListOptions& o) {
  spool::Layout layout = tool.open_spool();
  std::vector<spool::Domain> domains;
  if (o.target.empty()) domains = spool::list_domains(layout);
  else domains.push_back(spool::Domain::parse(o.target));
  Result r;
  r.data["accounts"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"ADDRESS", "STATE", "SENDING", "CREATED", "NAME"}};
  for (const spool::Domain& d : domains) {
    for (const spool::LocalPart& name : spool::list_accounts(layout, d)) {
      spool::Address a(name, d);
      if (o.names) {
        r.data["accounts"].push_back(a.str());
        r.text += a.str() + "\n";
        continue;
      }
      spool::AccountConfig c = spool::read_account(layout, a);
      r.data["accounts"].push_back(account_json(a, c));
      rows.push_back({a.str(), c.suspended ? "suspended" : "active", c.sending_suspended ? "suspended" : "active",
                      c.created, c.display_name});
    }
  }
  if (!o.names) r.text = rows.size() > 1 ? format_table(rows) : "no accounts\n";
  return r;
}

// "1.50 MiB of 10.0 MiB used (15.0%)", or "1.50 MiB used, no quota".
std::string domain_quota_text(const spool::Usage& used, std::uint64_t quota) {
  if (quota == 0) return spool::format_size(used.bytes) + " used, no quota";
  char percent[32];
  std::snprintf(percent, sizeof percent, "%.1f%%", static_cast<double>(used.bytes) * 100.0 / static_cast<double>(quota));
  return spool::format_size(used.bytes) + " of " + spool::format_size(quota) + " used (" + percent + ")";
}

Result run_show(const Tool& tool, const ListOptions& o) {
  spool::Address a = spool::Address::parse(o.target);
  spool::Layout layout = tool.open_spool();
  spool::AccountConfig c = spool::read_account(layout, a);
  // Usage comes from maildirsize files (quota.h): exact and independent of mail volume.
  const spool::Usage usage = spool::account_usage(layout, a);
  const std::uint64_t domain_quota = spool::read_domain(layout, a.domain()).quota;
  const spool::Usage domain_usage = spool::domain_usage(layout, a.domain());
  Result r;
  r.data = account_json(a, c);
  r.data["pop_server"] = "pop." + a.domain().str();
  r.data["smtp_server"] = "smtp." + a.domain().str();
  r.data["usage_bytes"] = usage.bytes;
  r.data["usage_messages"] = usage.messages;
  r.data["domain_quota"] = domain_quota;
  r.data["domain_usage_bytes"] = domain_usage.bytes;
  std::string sending = c.sending_suspended ? "suspended" : "active";
  if (!c.sending_reason.empty()) sending += " (" + c.sending_reason + ")";
  r.text = format_fields({{"address", a.str()},
                          {"login name", a.str()},
                          {"POP3 server", "pop." + a.domain().str()},
                          {"SMTP server", "smtp." + a.domain().str()},
                          {"display name", c.display_name},
                          {"state", c.suspended ? "suspended" : "active"},
                          {"sending", sending},
                          {"created", c.created},
                          {"usage", spool::format_size(usage.bytes) + " in " + std::to_string(usage.messages) +
                                        (usage.messages == 1 ? " message" : " messages")},
                          {"account quota", c.quota == 0 ? "none (domain quota applies)" : spool::format_size(c.quota)},
                          {"domain quota", domain_quota_text(domain_usage, domain_quota)}});
  return r;
}

} // namespace

void setup_list(Tool& tool) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* list = tool.app().add_subcommand("list", "List accounts of one domain or of all domains");
  list->add_option("domain", o->target, "Domain (default: all)");
  list->add_flag("--names", o->names, "Print addresses only, one per line");
  tool.on(list, [&tool, o] { return run_list(tool, *o); });
}

void setup_show(Tool& tool) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* show = tool.app().add_subcommand("show", "Show an account: login name, servers, state, usage");
  show->add_option("address", o->target, "name@domain")->required();
  tool.on(show, [&tool, o] { return run_show(tool, *o); });
}

} // namespace mh::user
