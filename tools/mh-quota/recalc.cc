// recalc.cc — mh-quota recalc [DOMAIN|ADDRESS]: rebuild maildirsize from the message
// files (Maildir++), for one account, every mailbox of a domain, or every domain. Each
// rebuild holds that Maildir's lock exclusively, so deliveries and removals running
// meanwhile are neither missed nor counted twice. Reports what changed.
#include "commands.h"
#include "common/output.h"

#include <spool/accounts.h>
#include <spool/quota.h>
#include <spool/units.h>

#include <memory>

namespace mh::quota {
namespace {

struct RecalcOptions {
  std::string target;
};

struct Recalculated {
  spool::Address address;
  bool is_list = false;
  spool::Usage before;
  spool::Usage after;
};

Recalculated recalc_one(const spool::Layout& layout, const spool::Address& a, bool is_list) {
  Recalculated r{a, is_list, {}, {}};
  r.before = is_list ? spool::list_archive_usage(layout, a) : spool::account_usage(layout, a);
  r.after = is_list ? spool::recalc_list_archive(layout, a) : spool::recalc_account(layout, a);
  return r;
}

void recalc_domain(const spool::Layout& layout, const spool::Domain& d, std::vector<Recalculated>& out) {
  for (const spool::LocalPart& name : spool::list_accounts(layout, d))
    out.push_back(recalc_one(layout, spool::Address(name, d), false));
  for (const spool::LocalPart& name : spool::list_list_names(layout, d))
    out.push_back(recalc_one(layout, spool::Address(name, d), true));
  // Now that every maildirsize is exact, the domain's record becomes their sum: this
  // drops what crashes left it over-counting.
  (void)spool::recalc_domain_usage(layout, d);
}

std::string signed_count(std::int64_t n) { return (n > 0 ? "+" : "") + std::to_string(n); }

Result report(const std::vector<Recalculated>& done) {
  Result r;
  r.data["mailboxes"] = nlohmann::json::array();
  spool::Usage total;
  std::size_t changed = 0;
  for (const Recalculated& m : done) {
    total.bytes += m.after.bytes;
    total.messages += m.after.messages;
    r.data["mailboxes"].push_back({{"address", m.address.str()},
                                   {"kind", m.is_list ? "list" : "account"},
                                   {"usage_bytes", m.after.bytes},
                                   {"usage_messages", m.after.messages},
                                   {"previous_bytes", m.before.bytes},
                                   {"previous_messages", m.before.messages}});
    if (m.before == m.after) continue;
    ++changed;
    auto diff = static_cast<std::int64_t>(m.after.messages) - static_cast<std::int64_t>(m.before.messages);
    r.text += m.address.str() + ": " + usage_text(m.after) + " (was " + usage_text(m.before) + ", " +
              signed_count(diff) + " messages)\n";
  }
  r.data["usage_bytes"] = total.bytes;
  r.data["usage_messages"] = total.messages;
  r.text += "recalculated " + std::to_string(done.size()) + (done.size() == 1 ? " mailbox" : " mailboxes") + ": " +
            usage_text(total) + "; " + std::to_string(changed) + " corrected\n";
  return r;
}

Result run_recalc(const Tool& tool, const RecalcOptions& o) {
  std::optional<Target> target;
  if (!o.target.empty()) target = parse_target(o.target);
  spool::Layout layout = tool.open_spool();
  std::vector<Recalculated> done;
  if (!target) {
    for (const spool::Domain& d : spool::list_domains(layout)) recalc_domain(layout, d, done);
  } else if (auto* d = std::get_if<spool::Domain>(&*target)) {
    (void)spool::read_domain(layout, *d); // no such domain → 68
    recalc_domain(layout, *d, done);
  } else {
    done.push_back(recalc_one(layout, std::get<spool::Address>(*target), false));
  }
  return report(done);
}

} // namespace

void setup_recalc(Tool& tool) {
  auto o = std::make_shared<RecalcOptions>();
  CLI::App* recalc =
      tool.app().add_subcommand("recalc", "Rebuild usage (maildirsize) from the message files");
  recalc->add_option("target", o->target, "DOMAIN or ADDRESS (default: every domain)");
  tool.on(recalc, [&tool, o] { return run_recalc(tool, *o); });
}

} // namespace mh::quota
