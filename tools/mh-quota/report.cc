// report.cc — mh-quota report [--warn-percent N] [--warn-messages N]: the accounts (and
// list archives) using more than N percent of their domain's quota or holding more than
// N messages. Made for cron: prints nothing and exits 0 when nothing is over; exits 1
// when something is listed, so cron mails the list.
#include "commands.h"
#include "common/output.h"

#include <spool/accounts.h>
#include <spool/units.h>

#include <memory>

namespace mh::quota {
namespace {

// Without either threshold, report mailboxes over 90% of their domain's quota.
constexpr double default_warn_percent = 90.0;

struct ReportOptions {
  double warn_percent = -1;       // < 0: not given
  std::uint64_t warn_messages = 0;
  bool messages_given = false;
};

// "More than N percent", exactly: bytes / quota > N / 100.
bool over_percent(std::uint64_t bytes, std::uint64_t quota, double percent) {
  return quota != 0 && static_cast<long double>(bytes) * 100.0L > static_cast<long double>(percent) * quota;
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Result run_report(const Tool& tool, ReportOptions o) {
  if (o.warn_percent < 0 && !o.messages_given) o.warn_percent = default_warn_percent;
  spool::Layout layout = tool.open_spool();
  Result r;
  r.data["warn_percent"] = o.warn_percent < 0 ? nlohmann::json(nullptr) : nlohmann::json(o.warn_percent);
  r.data["warn_messages"] = o.messages_given ? nlohmann::json(o.warn_messages) : nlohmann::json(nullptr);
  r.data["mailboxes"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"MAILBOX", "USED", "MESSAGES", "DOMAIN QUOTA", "OF DOMAIN", "OVER"}};
  for (const spool::Domain& domain : spool::list_domains(layout)) {
    DomainUsage d = collect_domain(layout, domain);
    for (const MailboxUsage& m : d.mailboxes) {
      std::vector<std::string> reasons;
      if (o.warn_percent >= 0 && over_percent(m.usage.bytes, d.quota, o.warn_percent)) reasons.push_back("percent");
      if (o.messages_given && m.usage.messages > o.warn_messages) reasons.push_back("messages");
      if (reasons.empty()) continue;
      nlohmann::json j = mailbox_json(m, d);
      j["reasons"] = reasons;
      r.data["mailboxes"].push_back(j);
      std::string over;
      for (const std::string& why : reasons) {
        if (!over.empty()) over += ", ";
        over += why == "percent" ? number_text(o.warn_percent) + "% of domain"
                                 : std::to_string(o.warn_messages) + " messages";
      }
      rows.push_back({m.address.str(), spool::format_size(m.usage.bytes), std::to_string(m.usage.messages),
                      quota_text(d.quota), percent_text(m.usage.bytes, d.quota), over});
    }
  }
  // Silence when all is well: cron mails any output.
  if (rows.size() > 1) {
    r.text = format_table(rows);
    r.exit_code = 1;
  }
  return r;
}

} // namespace

void setup_report(Tool& tool) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* report = tool.app().add_subcommand(
      "report", "List mailboxes over a usage threshold; exit 1 when any is listed (for cron)");
  report->add_option("--warn-percent", o->warn_percent, "Over N percent of the domain's quota (default 90)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  CLI::Option* messages = report->add_option("--warn-messages", o->warn_messages, "Holding more than N messages")
                              ->type_name("N");
  tool.on(report, [&tool, o, messages] {
    ReportOptions given = *o;
    given.messages_given = messages->count() > 0;
    return run_report(tool, given);
  });
}

} // namespace mh::quota
