// domain.cc — mh-user domain add|del|list|show.
#include "commands.h"
#include "common/output.h"

#include <spool/accounts.h>
#include <spool/units.h>

#include <memory>

namespace mh::user {
namespace {

struct DomainOptions {
  std::string domain;
  std::string quota;
  bool exist_ok = false;
  bool force = false;
  bool names = false;
};

nlohmann::json domain_json(const spool::Domain& d, const spool::DomainConfig& c) {
  return {{"domain", d.str()}, {"unicode", d.unicode()}, {"state", c.suspended ? "suspended" : "active"},
          {"created", c.created}, {"quota", c.quota}};
}

std::string quota_text(std::uint64_t q) { return q == 0 ? "none" : spool::format_size(q); }

// Where postmaster@D goes (SPEC §8), stable for --json: kind account | remote |
// server_mailbox, the address (or the server mailbox's path) and why.
nlohmann::json postmaster_json(const spool::Layout& layout, const spool::PostmasterRoute& p) {
  using K = spool::PostmasterRoute::Kind;
  const char* kind = p.kind == K::account ? "account" : p.kind == K::remote ? "remote" : "server_mailbox";
  return {{"kind", kind},
          {"address", p.kind == K::server_mailbox ? layout.postmaster_maildir().string() : p.address},
          {"source", p.source}};
}

Result run_add(const Tool& tool, const DomainOptions& o) {
  spool::Domain d = spool::Domain::parse(o.domain);
  spool::DomainConfig c;
  if (!o.quota.empty()) c.quota = spool::parse_size(o.quota);
  spool::Layout layout = tool.open_spool();
  bool created = spool::add_domain(layout, d, c, o.exist_ok);
  Result r;
  r.data = {{"domain", d.str()}, {"unicode", d.unicode()}, {"created", created}};
  r.text = created ? "domain " + d.str() + " added\n" : "domain " + d.str() + " already exists (kept)\n";
  return r;
}

Result run_del(const Tool& tool, const DomainOptions& o) {
  spool::Domain d = spool::Domain::parse(o.domain);
  spool::Layout layout = tool.open_spool();
  spool::delete_domain(layout, d, o.force);
  Result r;
  r.data = {{"domain", d.str()}, {"deleted", true}};
  r.text = "domain " + d.str() + " deleted\n";
  return r;
}

Result run_list(const Tool& tool, const DomainOptions& o) {
  spool::Layout layout = tool.open_spool();
  Result r;
  r.data["domains"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"DOMAIN", "STATE", "QUOTA", "ACCOUNTS", "CREATED"}};
  for (const spool::Domain& d : spool::list_domains(layout)) {
    if (o.names) {
      r.text += d.str() + "\n";
      r.data["domains"].push_back(d.str());
      continue;
    }
    spool::DomainConfig c = spool::read_domain(layout, d);
    std::size_t accounts = spool::list_accounts(layout, d).size();
    nlohmann::json j = domain_json(d, c);
    j["accounts"] = accounts;
    r.data["domains"].push_back(j);
    std::string name = d.str() == d.unicode() ? d.str() : d.str() + " (" + d.unicode() + ")";
    rows.push_back({name, c.suspended ? "suspended" : "active", quota_text(c.quota), std::to_string(accounts),
                    c.created});
  }
  if (!o.names) r.text = rows.size() > 1 ? format_table(rows) : "no domains\n";
  return r;
}

Result run_show(const Tool& tool, const DomainOptions& o) {
  spool::Domain d = spool::Domain::parse(o.domain);
  spool::Layout layout = tool.open_spool();
  spool::DomainConfig c = spool::read_domain(layout, d);
  auto accounts = spool::list_accounts(layout, d);
  auto lists = spool::list_list_names(layout, d);
  const spool::PostmasterRoute postmaster = spool::postmaster_route(layout, d);
  Result r;
  r.data = domain_json(d, c);
  r.data["accounts"] = nlohmann::json::array();
  for (const auto& a : accounts) r.data["accounts"].push_back(a.str());
  r.data["lists"] = nlohmann::json::array();
  for (const auto& l : lists) r.data["lists"].push_back(l.str());
  r.data["pop_server"] = "pop." + d.str();
  r.data["smtp_server"] = "smtp." + d.str();
  r.data["postmaster"] = postmaster_json(layout, postmaster);
  r.text = format_fields({{"domain", d.str()},
                          {"unicode", d.unicode()},
                          {"state", c.suspended ? "suspended" : "active"},
                          {"created", c.created},
                          {"quota", quota_text(c.quota)},
                          {"accounts", std::to_string(accounts.size())},
                          {"lists", std::to_string(lists.size())},
                          {"postmaster", postmaster.describe()},
                          {"POP3 server", "pop." + d.str()},
                          {"SMTP server", "smtp." + d.str()}});
  return r;
}

} // namespace

void setup_domain(Tool& tool) {
  auto o = std::make_shared<DomainOptions>();
  CLI::App* group = add_group(tool.app(), "domain", "Add, delete, list and show domains");

  CLI::App* add = group->add_subcommand("add", "Add a domain (Unicode names are stored as punycode)");
  add->add_option("domain", o->domain, "Domain name")->required();
  add->add_option("--quota", o->quota, "Disk quota shared by the domain (e.g. 500M, 2G; default none)")
      ->type_name("SIZE");
  add->add_flag("--exist-ok", o->exist_ok, "Succeed without change when the domain exists");
  tool.on(add, [&tool, o] { return run_add(tool, *o); });

  CLI::App* del = group->add_subcommand("del", "Delete a domain with its accounts and lists");
  del->add_option("domain", o->domain, "Domain name")->required();
  del->add_flag("--force", o->force, "Delete even if mailboxes still hold mail");
  tool.on(del, [&tool, o] { return run_del(tool, *o); });

  CLI::App* list = group->add_subcommand("list", "List domains");
  list->add_flag("--names", o->names, "Print names only, one per line");
  tool.on(list, [&tool, o] { return run_list(tool, *o); });

  CLI::App* show = group->add_subcommand("show", "Show a domain's settings, accounts and lists");
  show->add_option("domain", o->domain, "Domain name")->required();
  tool.on(show, [&tool, o] { return run_show(tool, *o); });
}

} // namespace mh::user
