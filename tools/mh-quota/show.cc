// show.cc — mh-quota show [DOMAIN|ADDRESS]: every domain, one domain with the usage of
// each account and list archive, or one account together with its domain.
#include "commands.h"
#include "common/output.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/units.h>

#include <memory>

namespace mh::quota {
namespace {

struct ShowOptions {
  std::string target;
};

std::vector<std::string> domain_row(const DomainUsage& d) {
  std::vector<std::string> row{d.domain.str(), spool::format_size(d.usage.bytes), std::to_string(d.usage.messages),
                               quota_text(d.quota), percent_text(d.usage.bytes, d.quota)};
  std::string bar = percent_bar(d.usage.bytes, d.quota);
  if (!bar.empty()) row.push_back(bar);
  return row;
}

Result show_all(const spool::Layout& layout) {
  Result r;
  r.data["domains"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"DOMAIN", "USED", "MESSAGES", "QUOTA", "USE%"}};
  for (const spool::Domain& domain : spool::list_domains(layout)) {
    DomainUsage d = collect_domain(layout, domain);
    r.data["domains"].push_back(domain_json(d, true));
    rows.push_back(domain_row(d));
  }
  r.text = rows.size() > 1 ? format_table(rows) : "no domains\n";
  return r;
}

std::string domain_summary(const DomainUsage& d) {
  std::string use = percent_text(d.usage.bytes, d.quota);
  std::string bar = percent_bar(d.usage.bytes, d.quota);
  if (!bar.empty()) use += "  " + bar;
  std::vector<std::pair<std::string, std::string>> fields{
      {"domain", d.domain.str() == d.domain.unicode() ? d.domain.str() : d.domain.str() + " (" + d.domain.unicode() + ")"},
      {"used", usage_text(d.usage) + " (" + std::to_string(d.usage.bytes) + " bytes)"},
      {"quota", quota_text(d.quota)},
      {"use", use}};
  if (d.quota != 0) fields.push_back({"free", spool::format_size(d.quota > d.usage.bytes ? d.quota - d.usage.bytes : 0)});
  return format_fields(fields);
}

Result show_domain(const spool::Layout& layout, const spool::Domain& domain) {
  DomainUsage d = collect_domain(layout, domain);
  Result r;
  r.data = domain_json(d, true);
  r.text = domain_summary(d);
  if (d.mailboxes.empty()) return r;
  std::vector<std::vector<std::string>> rows{{"MAILBOX", "KIND", "USED", "MESSAGES", "OF DOMAIN", "OWN QUOTA"}};
  for (const MailboxUsage& m : d.mailboxes)
    rows.push_back({m.address.str(), m.is_list ? "list" : "account", spool::format_size(m.usage.bytes),
                    std::to_string(m.usage.messages), percent_text(m.usage.bytes, d.quota),
                    m.is_list ? "-" : quota_text(m.own_quota)});
  r.text += "\n" + format_table(rows);
  return r;
}

Result show_account(const spool::Layout& layout, const spool::Address& address) {
  (void)spool::read_account(layout, address); // no such domain (68) or account (67)
  DomainUsage d = collect_domain(layout, address.domain());
  const MailboxUsage* mine = nullptr;
  for (const MailboxUsage& m : d.mailboxes)
    if (!m.is_list && m.address == address) mine = &m;
  if (!mine) throw spool::Error(spool::Errc::no_account, "no such account: " + address.str());
  Result r;
  r.data = mailbox_json(*mine, d);
  r.data["domain"] = domain_json(d, false);
  std::string own = quota_text(mine->own_quota);
  if (mine->own_quota != 0) own += " (" + percent_text(mine->usage.bytes, mine->own_quota) + " used)";
  r.text = format_fields({{"address", address.str()},
                          {"used", usage_text(mine->usage) + " (" + std::to_string(mine->usage.bytes) + " bytes)"},
                          {"of domain quota", percent_text(mine->usage.bytes, d.quota)},
                          {"account quota", own}}) +
           "\n" + domain_summary(d);
  return r;
}

Result run_show(const Tool& tool, const ShowOptions& o) {
  std::optional<Target> target;
  if (!o.target.empty()) target = parse_target(o.target);
  spool::Layout layout = tool.open_spool();
  if (!target) return show_all(layout);
  if (auto* d = std::get_if<spool::Domain>(&*target)) return show_domain(layout, *d);
  return show_account(layout, std::get<spool::Address>(*target));
}

} // namespace

void setup_show(Tool& tool) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* show = tool.app().add_subcommand("show", "Show usage and quota of all domains, one domain or one account");
  show->add_option("target", o->target, "DOMAIN or ADDRESS (default: every domain)");
  tool.on(show, [&tool, o] { return run_show(tool, *o); });
}

} // namespace mh::quota
