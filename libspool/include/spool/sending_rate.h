// sending_rate.h — limits.sending_per_hour (SPEC §8): recipients per authenticated
// account per hour, as a sliding window shared by every mh-serve on the spool (several
// hosts included) and kept across restarts. Past the limit the account's sending is
// suspended with reason "rate", as `mh-user suspend --sending --reason rate` records it.
//
// The record, Layout::sending_record() (SPOOL/domains/D/accounts/A/sending.rate), is
// text of at most 2 + 121 lines (8 KiB; anything longer is malformed):
//     mailhost-sending-rate 1
//     suspended no            ("yes": this module suspended the account, see below)
//     29045412 3              minute since the epoch, recipients charged in it
// Minutes are per-minute buckets, strictly increasing, so the record stays small whatever
// the rate: a charge counts for at least 60 and less than 61 minutes (over-count, never
// under). A bucket more than an hour ahead of the reader's clock (a host whose clock ran
// ahead) is pulled back to an hour ahead, keeping its count.
//
// Every reader-writer holds Layout::sending_lock(domain) (flock, works across hosts), then
// — to suspend — the domain lock through update_account(); never the other order. The
// record is replaced by rename, never appended to. It is NOT fsynced: it is not mail and
// a per-message fsync would cost as much as the delivery's own. A killed process leaves
// the old or the new record (rename is atomic); only a power loss can leave it empty or
// torn. A malformed record (that, or a hand edit) is never trusted nor silently
// forgiven: it counts as a full window — over-count-safe, like maildirsize (SPEC §8) —
// so the message is refused, the account's sending is suspended with reason "rate", and
// the record is replaced by an empty window marked suspended, for the resume below.
//
// Resume: when the record says "suspended yes" but account.yaml says sending is active,
// an administrator has resumed the account since (`mh-user resume --sending`, or any
// edit of account.yaml): the window is cleared before the charge, so the next message is
// not suspended again by the same hour's count. No tool has to know about this file.
// Errors: spool::Error — no_account / no_domain (gone meanwhile), busy (lock, 75),
// permission (a symlink planted in the spool), temporary I/O failures.
#pragma once

#include "spool/layout.h"
#include "spool/names.h"

#include <cstdint>
#include <string>

namespace spool {

// The reason recorded in account.yaml's sending_reason when the limit suspends sending.
inline constexpr const char* sending_rate_reason = "rate";

struct RateCheck {
  enum class Kind {
    allowed,    // charged: the recipients now count in the window
    over,       // the message would pass the limit: nothing charged, sending now suspended
    suspended,  // sending was already suspended (this module or an administrator): nothing charged
  } kind = Kind::suspended;
  std::uint64_t in_window = 0;  // recipients counted in the last hour after this call
  std::string reason;           // over / suspended: the account's sending_reason
  std::string detail;           // for the log: a malformed record, a window cleared by a resume
};

// Charges `recipients` to `account` at `now` (seconds since the epoch) against
// `per_hour` (0 = no limit: nothing is read or written). A message whose recipients
// would take the window past `per_hour` is refused as a whole (Kind::over): the limit is
// exact, `per_hour` recipients pass, one more does not.
[[nodiscard]] RateCheck charge_sending(const Layout& layout, const Address& account, std::uint32_t recipients,
                                       std::uint32_t per_hour, std::int64_t now);

// Recipients counted in the hour before `now`, read without the lock (the record is
// replaced atomically); 0 when there is no record. A malformed record throws
// Error(bad_config) naming the file and line. For tools and tests; it changes nothing.
std::uint64_t sending_in_window(const Layout& layout, const Address& account, std::int64_t now);

} // namespace spool
