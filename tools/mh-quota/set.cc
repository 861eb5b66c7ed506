// set.cc — mh-quota set DOMAIN SIZE | --add SIZE: the quota shared by a domain.
// The change is a read-modify-write of domain.yaml under the domain lock (update_domain),
// so two admins adding space at the same time both get what they paid for.
#include "commands.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/units.h>

#include <limits>
#include <memory>

namespace mh::quota {
namespace {

struct SetOptions {
  std::string domain;
  std::string size;
  std::string add;
};

// "none" / "unlimited" read as 0 (no quota), anything else as a binary size.
std::uint64_t parse_quota(const std::string& text) {
  if (text == "none" || text == "unlimited") return 0;
  return spool::parse_size(text);
}

Result run_set(const Tool& tool, const SetOptions& o) {
  if (o.size.empty() == o.add.empty())
    throw spool::Error(spool::Errc::usage, "give either SIZE or --add SIZE (see mh-quota set --help)");
  spool::Domain domain = spool::Domain::parse(o.domain);
  const bool adding = !o.add.empty();
  const std::uint64_t amount = adding ? spool::parse_size(o.add) : parse_quota(o.size);
  spool::Layout layout = tool.open_spool();

  std::uint64_t previous = 0, now = 0;
  spool::update_domain(layout, domain, [&](spool::DomainConfig& c) {
    previous = c.quota;
    if (adding && c.quota == 0)
      // Adding to "unlimited" would turn it into a small limit: surely not what was meant.
      throw spool::Error(spool::Errc::other, "domain " + domain.str() +
                                                 " has no quota (unlimited); use 'mh-quota set " + domain.str() +
                                                 " SIZE' to set one");
    if (adding && amount > std::numeric_limits<std::uint64_t>::max() - c.quota)
      throw spool::Error(spool::Errc::invalid_input, "invalid size '" + o.add + "': the quota would be too large");
    c.quota = adding ? c.quota + amount : amount;
    now = c.quota;
  });

  DomainUsage d = collect_domain(layout, domain);
  Result r;
  r.data = domain_json(d, false);
  r.data["previous_quota"] = previous;
  r.text = "quota of " + domain.str() + " set to " + quota_text(now) + " (was " + quota_text(previous) + "); used " +
           spool::format_size(d.usage.bytes) + (now != 0 ? " (" + percent_text(d.usage.bytes, now) + ")" : "") + "\n";
  if (now != 0 && d.usage.bytes >= now)
    r.text += "warning: " + domain.str() + " is full: mail to all of its addresses is refused until usage drops\n";
  return r;
}

} // namespace

void setup_set(Tool& tool) {
  auto o = std::make_shared<SetOptions>();
  CLI::App* set = tool.app().add_subcommand("set", "Set a domain's quota (SIZE like 500M, 2G; 0 or none = unlimited)");
  set->add_option("domain", o->domain, "Domain")->required();
  set->add_option("size", o->size, "New quota (binary: K = 1024, M = 1024², G = 1024³)")->type_name("SIZE");
  set->add_option("--add", o->add, "Add SIZE to the current quota (buying more space)")->type_name("SIZE");
  tool.on(set, [&tool, o] { return run_set(tool, *o); });
}

} // namespace mh::quota
