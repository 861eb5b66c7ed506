// commands.h — mh-quota's subcommands (one setup_* per file) and the usage view they
// share: a domain's quota with the usage of each account and list archive, read from
// their maildirsize files (never by walking messages), plus percent and bar rendering.
#pragma once

#include "common/cli.h"

#include <spool/names.h>
#include <spool/quota.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace mh::quota {

void setup_show(Tool& tool);
void setup_set(Tool& tool);
void setup_recalc(Tool& tool);
void setup_report(Tool& tool);

// One mailbox that counts against a domain's quota.
struct MailboxUsage {
  spool::Address address;
  bool is_list = false;        // a mailing list's archive rather than an account
  std::uint64_t own_quota = 0; // optional per-account limit (accounts only); 0 = none
  spool::Usage usage;
};

struct DomainUsage {
  spool::Domain domain;
  std::uint64_t quota = 0;     // 0 = unlimited
  spool::Usage usage;          // sum of `mailboxes`, so the breakdown always adds up
  std::vector<MailboxUsage> mailboxes;
};

// Reads domain.yaml and every account's and list archive's maildirsize once.
DomainUsage collect_domain(const spool::Layout& layout, const spool::Domain& domain);

// A command-line operand: an address has an '@', anything else is a domain.
using Target = std::variant<spool::Domain, spool::Address>;
Target parse_target(const std::string& text);

// used as a percentage of quota, rounded to one decimal; nullopt when quota is 0.
std::optional<double> percent_of(std::uint64_t used, std::uint64_t quota);
// "12.5%", or "-" without a quota.
std::string percent_text(std::uint64_t used, std::uint64_t quota);
// "[#####...............]" for a terminal; empty when stdout is not a TTY or no quota.
std::string percent_bar(std::uint64_t used, std::uint64_t quota);
// "none" or "2.00 GiB".
std::string quota_text(std::uint64_t quota);
// "1.50 MiB in 12 messages".
std::string usage_text(const spool::Usage& usage);

nlohmann::json domain_json(const DomainUsage& d, bool with_mailboxes);
nlohmann::json mailbox_json(const MailboxUsage& m, const DomainUsage& d);

} // namespace mh::quota
