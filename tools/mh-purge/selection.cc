// selection.cc — what mh-purge removes: selectors (all given must match) and targets.
// Every operand is parsed and every target checked before the first message is touched,
// so a typo in the third operand never leaves a half-done purge behind.
#include "purge.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/units.h>

#include <algorithm>
#include <set>
#include <string_view>
#include <variant>

namespace mh::purge {
namespace {

// RFC 1939 §7: a UIDL is 1–70 characters 0x21–0x7E; ours also never hold ',' or ':'
// (they end the unique part of a Maildir name), nor '/' or ".." (SPEC §8: a value that
// could name a path is refused, 65, before anything is looked at).
constexpr std::size_t max_uidl_length = 70;

bool uidl_syntax_ok(std::string_view text) {
  return !text.empty() && text.size() <= max_uidl_length && text.find("..") == std::string_view::npos &&
         std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= 0x21 && c <= 0x7e && c != ',' && c != ':' && c != '/'; });
}

std::string checked_uidl(const std::string& text) {
  if (uidl_syntax_ok(text)) return text;
  // Echo the value only when it is plain ASCII: it must not drive the terminal.
  const bool echo = text.size() <= 200 && std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
  throw spool::Error(spool::Errc::invalid_input,
                     "invalid UIDL" + (echo ? " '" + text + "'" : std::string()) +
                         ": a UIDL is 1-70 characters 0x21-0x7E without ',', ':', '/' or '..' "
                         "(as 'mh-purge --list' shows them)");
}

} // namespace

Selection Selection::from(const PurgeOptions& o, std::int64_t now, bool listing_allowed) {
  const bool any = !o.older_than.empty() || !o.larger_than.empty() || !o.uids.empty() || o.everything;
  if (!any && !listing_allowed)
    throw spool::Error(spool::Errc::usage,
                       "no selector given: use --older-than, --larger-than, --uid or --everything "
                       "(see mh-purge --help)");
  Selection s;
  if (!o.older_than.empty()) s.delivered_before_ = now - spool::parse_age(o.older_than).count();
  if (!o.larger_than.empty()) s.larger_than_ = spool::parse_size(o.larger_than);
  for (const std::string& u : o.uids) {
    if (s.uids_.insert(checked_uidl(u)).second) s.uid_list_.push_back(u);
  }
  return s;
}

bool Selection::matches(const spool::MessageInfo& m) const {
  if (delivered_before_ && !(m.delivered < *delivered_before_)) return false;
  if (larger_than_ && !(m.size > *larger_than_)) return false;
  if (!uids_.empty() && !uids_.contains(m.uidl)) return false;
  return true; // --everything, or every given selector matched
}

std::vector<spool::Address> resolve_targets(const spool::Layout& layout, const PurgeOptions& o) {
  if (o.targets.empty() && !o.all_domains)
    throw spool::Error(spool::Errc::usage, "no target given: name an ADDRESS or a DOMAIN, or use --all-domains");
  if (!o.targets.empty() && o.all_domains)
    throw spool::Error(spool::Errc::usage, "--all-domains takes no ADDRESS or DOMAIN operands");

  // Parse every operand first (65 for a malformed one) before looking at the spool.
  std::vector<std::variant<spool::Domain, spool::Address>> parsed;
  for (const std::string& t : o.targets) {
    if (t.find('@') != std::string::npos) parsed.emplace_back(spool::Address::parse(t));
    else parsed.emplace_back(spool::Domain::parse(t));
  }
  if (o.all_domains) {
    for (const spool::Domain& d : spool::list_domains(layout)) parsed.emplace_back(d);
  }

  std::vector<spool::Address> out;
  std::set<spool::Address> seen;
  auto add = [&](const spool::Address& a) {
    if (seen.insert(a).second) out.push_back(a);
  };
  for (const auto& p : parsed) {
    if (const auto* d = std::get_if<spool::Domain>(&p)) {
      // list_accounts() throws no_domain (68) for an unknown domain.
      for (const spool::LocalPart& name : spool::list_accounts(layout, *d)) add(spool::Address(name, *d));
    } else {
      const auto& a = std::get<spool::Address>(p);
      (void)spool::read_account(layout, a); // no such domain (68) or account (67)
      add(a);
    }
  }
  return out;
}

} // namespace mh::purge
