// domain_usage.h — libspool-internal: the domain's usage record, DOMAIN/domainsize
// (SPEC §4, §8). Maildir++-style "<bytes> <count>" lines whose sum is the usage of every
// account Maildir and list archive of the domain, so a quota check reads one small file
// whether the domain has 10 accounts or 10,000. It exists once something asked for the
// domain's usage (a domain with a quota); until then writers skip it.
//
// Exactness: every maildirsize change in the domain is mirrored here while holding
// Layout::usage_lock(domain) — additions before the Maildir's own line, removals after
// it — so a crash at any instant leaves an over-count, never an under-count, and the
// record is the exact sum whenever no writer is between its two lines. Whoever cannot
// say what changed (a maildirsize that was missing or unreadable, a removed account)
// drops the record; the next reader rebuilds it from the maildirsize files.
#pragma once

#include "spool/layout.h"
#include "spool/lock.h"
#include "spool/names.h"
#include "spool/quota.h"

#include <cstdint>

namespace spool::detail {

// Holds the domain's usage lock for its lifetime.
class DomainUsageWriter {
public:
  DomainUsageWriter(const Layout& layout, const Domain& domain);

  // Appends one line when the record exists; past 5,120 bytes it is rewritten as one line.
  void add(std::int64_t bytes, std::int64_t messages);
  // The record can no longer be kept exact: remove it (rebuilt by the next reader).
  void drop();
  // A Maildir's own record changing by (bytes, messages), made by `change`, mirrored here
  // in the order that leaves both over-counting after a crash: a rise is added here first,
  // a fall after. `change` returns false when the Maildir's record could not take it
  // (missing): the difference is then unknown and this record is dropped.
  template <typename Change>
  void follow(std::int64_t bytes, std::int64_t messages, Change change) {
    const bool rise = bytes > 0 || messages > 0;
    if (rise) add(bytes, messages);
    if (!change()) {
      drop();
      return;
    }
    if (!rise) add(bytes, messages);
  }

private:
  const Layout& layout_;
  Domain domain_;
  FileLock lock_;
};

// After an account or list is removed: its usage left the domain by a way no line records.
void drop_domain_usage(const Layout& layout, const Domain& domain);

// Rebuilds the record from the maildirsize files (each one first made valid under its
// Maildir's lock); mh-quota recalc uses it to correct the record's own over-counts.
Usage rebuild_domain_usage(const Layout& layout, const Domain& domain);

} // namespace spool::detail
