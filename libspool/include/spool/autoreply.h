// autoreply.h — vacation replies (SPEC §6 step 3, RFC 3834): who may be answered, the
// per-account memory of whom was answered when, and the reply message itself.
// The memory lives beside account.yaml (accounts/<name>/autoreply.seen, one line
// "<unix-seconds> <folded sender>"), is shared by every mh-serve on the spool under the
// domain's auto-reply lock, and is bounded (oldest entries dropped past
// max_autoreply_memory lines, and entries older than the interval are forgotten).
#pragma once

#include "spool/filter_match.h"
#include "spool/filters.h"
#include "spool/layout.h"
#include "spool/names.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spool {

inline constexpr std::size_t max_autoreply_memory = 10000;

// RFC 3834 §2 and SPEC §6: NoReplyReason::none when `message` (to `account`) may be
// answered. Checks, in order: Delivered-To loop, null sender, MAILER-DAEMON/postmaster-
// like senders (also "owner-*", "*-request", as RFC 3834 §2 suggests), Auto-Submitted
// other than "no", List-Id / List-Unsubscribe / Precedence bulk|list|junk, and that the
// account's address appears in To or Cc.
NoReplyReason autoreply_refusal(const Address& account, const FilterMessage& message);

// Records `sender` as answered at `now` unless it was answered less than `days` days
// ago; true when the caller should send the reply now. Atomic across processes (lock +
// atomic replace). Throws spool::Error on I/O failure (the caller logs it; no reply).
bool autoreply_claim(const Layout& layout, const Address& account, std::string_view sender, std::uint32_t days,
                     std::int64_t now);
// Whether a reply to `sender` would be sent now (reads the memory, records nothing):
// for `mh-filter test`.
bool autoreply_would_send(const Layout& layout, const Address& account, std::string_view sender,
                          std::uint32_t days, std::int64_t now);

// The reply: From the account (display name from account.yaml when given), To the
// sender, Subject (settings.subject, else "Auto: " + the decoded original subject)
// RFC 2047-encoded when not ASCII, Auto-Submitted: auto-replied, In-Reply-To and
// References from the original's Message-ID, a fresh Message-ID and Date, and the text
// as text/plain; charset=UTF-8 in base64 (any script round-trips). CRLF line ends.
std::string build_autoreply(const Address& account, std::string_view display_name, const AutoReply& settings,
                            const FilterMessage& original, std::string_view hostname, std::int64_t now);

} // namespace spool
