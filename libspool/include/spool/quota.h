// quota.h — disk usage and the one place quota decisions are made (SPEC §4).
// Usage is read from Maildir++ `maildirsize` files (one per account Maildir and per list
// archive) and from the domain's usage record (their sum), never by walking message
// files, so it costs the same for 10 or 100,000 messages and for 10 or 10,000 accounts.
// Every writer appends "<bytes> <count>" lines under the domain's usage lock (a network
// filesystem tears concurrent O_APPEND writes), so the sum is exact whenever no writer is
// mid-change, and over-counts, never under-counts, after a crash; when a limit applies,
// deliver() serializes check + link + append per domain under Layout::quota_lock(domain),
// so racing deliveries never push a domain over its quota.
#pragma once

#include "spool/layout.h"
#include "spool/names.h"

#include <cstdint>

namespace spool {

struct Usage {
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  auto operator<=>(const Usage&) const = default;
};

// Reads the account's maildirsize only (recalculated under lock if missing/oversized).
Usage account_usage(const Layout& layout, const Address& account);
// A list's archive Maildir; a list without an archive counts as empty.
Usage list_archive_usage(const Layout& layout, const Address& list);
// The domain's usage record: the sum over its accounts and list archives, built from
// their maildirsize files the first time it is asked for (domain_usage.h).
Usage domain_usage(const Layout& layout, const Domain& domain);
// Rebuilds the record from the maildirsize files, correcting its crash over-counts;
// mh-quota recalc runs it after recalculating the domain's Maildirs.
Usage recalc_domain_usage(const Layout& layout, const Domain& domain);

enum class QuotaVerdict { fits, domain_full, account_full };

// The limits that bind one account (0 = unlimited): domain.yaml's quota and, if the
// address is an account (lists have no account.yaml), account.yaml's.
struct QuotaLimits {
  std::uint64_t domain = 0;
  std::uint64_t account = 0;
  bool any() const noexcept { return domain != 0 || account != 0; }
};

// The one place quota decisions are made (daemon RCPT/DATA checks, list archiving,
// deliver()). A message fits when usage + bytes <= quota for the domain and, if the
// account has one, for the account (quota 0 = unlimited). bytes = 0 asks "is there any
// room at all" (RCPT time): refused when usage >= quota. Takes no lock: callers that must
// be exact against concurrent writers hold FileLock(layout.quota_lock(domain)) around the
// check and the write (deliver() does).
QuotaVerdict check_quota(const Layout& layout, const Address& account, std::uint64_t bytes);
// The same against limits the caller already has from the two files (the RCPT check,
// deliver() before it takes the lock): each read re-walks the path's symlink checks.
QuotaVerdict check_quota(const Layout& layout, const Address& account, const QuotaLimits& limits,
                         std::uint64_t bytes);

// Rebuilds the account's maildirsize from its message files (under the Maildir's lock).
Usage recalc_account(const Layout& layout, const Address& account);
// Rebuilds a list archive's maildirsize; an archive that does not exist is empty.
Usage recalc_list_archive(const Layout& layout, const Address& list);

// Sets domain.yaml `quota` (0 = unlimited) via update_domain (under the domain lock).
void set_domain_quota(const Layout& layout, const Domain& domain, std::uint64_t bytes);

} // namespace spool
