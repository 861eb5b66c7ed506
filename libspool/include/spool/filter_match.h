// filter_match.h — deciding what an account's filters do with one message (SPEC §6), with
// no I/O: the caller supplies the header block, the size and the spam verdict, and gets
// back which step fires. Delivery (filtered_delivery.h) and `mh-filter test` both call
// evaluate_filters(), so the tool shows exactly what delivery will do.
// Matching: header fields are unfolded, RFC 2047-decoded to Unicode (header_decode.h),
// then NFKC case-folded with ICU, as is the condition's TEXT; `contains` and `is` compare
// the folded strings, `matches` is a glob (`*`, `?`) run in time linear in the field.
// from/to/cc match the whole decoded field or any one address in it; `header NAME` the
// whole field only. Any occurrence of a repeated field may match; an absent one never does.
#pragma once

#include "spool/filters.h"
#include "spool/names.h"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// Bytes of header read for matching; fields past this are not seen (Postfix's
// header_size_limit is 100 KiB; 1 MiB leaves room for 10,000 encoded words).
inline constexpr std::size_t max_filter_header_block = 1024 * 1024;

// NFKC case folding of UTF-8 text (ICU's NFKC_Casefold): "ＡＢＣ" and "abc" fold equal.
// Invalid UTF-8 becomes U+FFFD first. Pure ASCII is lower-cased without ICU; other text
// loads ICU (Error(other) when it cannot be loaded). Text past max_fold_input is dropped.
inline constexpr std::size_t max_fold_input = 16 * 1024 * 1024;
std::string fold_text(std::string_view utf8);

// `pattern` (folded) against `text` (folded): `*` any run, `?` one code point, all else
// literal; the whole text must match. Linear-time in text size for a pattern of bounded
// size; no backtracking blow-up: the pieces between stars have a fixed length in code
// points, so each is found leftmost-first by a bit-parallel scan (Shift-And), the first
// anchored at the start and the last at the end. Invalid UTF-8 bytes are single units.
bool glob_match(std::string_view pattern, std::string_view text);

// One message as the filters see it. Built once per message, shared by all recipients;
// fields are decoded and folded on first use.
class FilterMessage {
public:
  // `header_block`: the message's header as received (up to max_filter_header_block, more
  // is cut; LF or CRLF; cut again at an empty line), without the Delivered-To this
  // delivery adds, or every message would look like a loop.
  // `size`: the whole message in bytes. `sender`: the envelope sender ("" = <>).
  FilterMessage(std::string header_block, std::uint64_t size, std::string sender);

  std::uint64_t size() const noexcept { return size_; }
  const std::string& sender() const noexcept { return sender_; }
  const std::string& header_block() const noexcept { return header_; }
  // Every field called `name` (case-insensitive), unfolded and trimmed, not decoded, in
  // order. A line that is neither a field nor a continuation is skipped.
  std::vector<std::string> raw_fields(std::string_view name) const;
  // Every field called `name`, decoded and folded (cached).
  const std::vector<std::string>& folded_fields(std::string_view name) const;
  // The addr-specs in every field called `name` (From/To/Cc: group syntax, comments and
  // display names skipped, `<>` and a mailbox without '@' outside <> ignored), folded.
  const std::vector<std::string>& folded_addresses(std::string_view name) const;

private:
  // Where each field of header_ lies (built once by the constructor, in order).
  struct FieldSpan {
    std::size_t name_pos, name_len, value_pos, value_len;
  };

  std::string header_;
  std::uint64_t size_;
  std::string sender_;
  std::vector<FieldSpan> fields_;
  // Keyed by the lower-case name. A deque, as the references handed out must survive
  // the next name being added.
  mutable std::deque<std::pair<std::string, std::vector<std::string>>> folded_cache_;
  mutable std::deque<std::pair<std::string, std::vector<std::string>>> address_cache_;
};

bool condition_matches(const Condition& condition, const FilterMessage& message);

// The spam scanner's verdict for the message (spam_check.h); `unknown` when no scanner is
// configured or it failed (spam is a preference, not a safety check: deliver untagged).
enum class SpamVerdict { unknown, ham, spam };

// Why an auto-reply is not sent although the step fired (RFC 3834 §2, SPEC §6).
enum class NoReplyReason {
  none,              // a reply is due (subject to the once-per-N-days memory)
  null_sender,
  mailer_daemon,     // MAILER-DAEMON, postmaster-like senders of bounces
  list_mail,         // List-Id / List-* / Precedence: bulk|list|junk
  auto_submitted,    // Auto-Submitted other than "no"
  not_addressed,     // the account is not named in To/Cc (Bcc, lists, aliases)
  loop,              // Delivered-To: <account> already present
};
std::string_view to_string(NoReplyReason reason);

struct FilterDecision {
  enum class Step { none, spam, rule, autoreply, forward } step = Step::none;
  std::size_t index = 0;              // 0-based rule/profile index when step is rule/forward
  enum class Action {
    deliver,        // no step fired, or the step keeps it: store in the Maildir
    tag,            // spam: store with the tag and X-Spam-Flag: YES
    discard,        // spam delete / rule delete: not stored, logged
    bounce,         // rule bounce: a DSN to the sender, not stored
    autoreply,      // stored, and answered unless no_reply says why not
    forward,        // queued to `destinations`; stored too when `keep`
  } action = Action::deliver;
  NoReplyReason no_reply = NoReplyReason::none;       // autoreply only
  std::vector<std::string> destinations;              // forward only
  bool keep = true;                                   // forward: keep a local copy
  bool loop = false;                                  // forward/autoreply suppressed: Delivered-To seen
  std::string detail;                                 // one line for the log / `mh-filter test`
};

// Order, first match wins (SPEC §6): spam (when enabled and the verdict is spam) → rules
// → auto-reply (when on: stored and answered; forwards never run) → forward profiles
// (the first whose condition matches; so profiles after an `all` one never fire).
// A forward or reply for a message that already carries `Delivered-To: <account>` is
// suppressed (loop = true; a forward then keeps the local copy, so nothing is lost).
// The auto-reply split: this function judges only that loop (no_reply = loop). The other
// RFC 3834 refusals (null sender, MAILER-DAEMON, lists, Auto-Submitted, not addressed)
// are autoreply_refusal()'s and the once-per-N-days memory (spool I/O) is
// autoreply_claim()'s (autoreply.h): for Action::autoreply with no_reply == none, the
// caller (delivery, `mh-filter test`) asks both before answering, and `detail` cannot say
// what they will answer. So this file stays pure and free of the auto-reply module.
FilterDecision evaluate_filters(const FilterConfig& config, const Address& account, const FilterMessage& message,
                                SpamVerdict verdict);

} // namespace spool
