// list_mail.h — what happens to mail for a list (SPEC §7). SMTP queues it (the list
// address is a queue recipient like a remote one); the queue runner hands it here:
//   LIST@D                 a post: posting rules (list_message.h), then moderation or
//                          distribution, or a refusal mail to the poster
//   LIST+bounces@D         a DSN: permanent failures counted per member (mlist.h)
//   LIST+confirm-TOKEN@D   any mail from a person confirms the pending post or
//                          unsubscribe TOKEN, once (not <>, system senders, Auto-Submitted)
//   LIST+unsubscribe@D     a member asks to leave: a confirmation request goes back
//   LIST+approved-TOKEN@D  internal only (never accepted over SMTP): an approved post
// Distribution is resumable: the post's sequence number, Maildir name and remote queue
// ids are written to lists/<name>/jobs/<queue-id> before anything is delivered, so the
// runner retrying after a crash finishes the same distribution — local members get the
// one stored copy exactly once (hard links under a fixed name), remote members at least
// once (queue entries under fixed ids, ≤ 100 recipients each, each with its own copy) — and the number is never
// reused. The caller removes the queue entry only after "done".
#pragma once

#include "spool/filtered_delivery.h"
#include "spool/layout.h"
#include "spool/mlist.h"
#include "spool/names.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

struct ListTarget {
  enum class Kind { post, bounces, confirm, unsubscribe, approved } kind = Kind::post;
  Address list;
  std::string token;            // confirm / approved
  std::string str() const;      // the address it was found under, canonical
};

// `local` (as written, any case) at a hosted `domain`: a list or one of its control
// addresses when the list exists. `internal` allows +approved- (the runner only).
std::optional<ListTarget> find_list_target(const Layout& layout, std::string_view local, const Domain& domain,
                                           bool internal = false);

// The queued message as the runner holds it (QueueClaim).
struct QueuedMail {
  std::string queue_id;
  int fd = -1;                  // read-only, may start with a Return-Path line
  std::uint64_t size = 0;
  fs::path path;                // queue/<id>.msg (hard-linked into pending/ on moderation)
  std::string sender;           // envelope sender, "" = <>
};

struct ListServices {
  std::string hostname = "localhost";
  FilterServices filters;       // local members' filters; filters.queued is told of every entry
};

struct ListMailResult {
  enum class Fate { done, deferred, bounced } fate = Fate::deferred;
  std::string detail;           // log text; for bounced/deferred an SMTP-style reply
};

// Never throws: I/O trouble is `deferred` (the runner retries), a list that has gone is
// `bounced` (550 5.1.1).
ListMailResult handle_list_mail(const Layout& layout, const ListTarget& target, const QueuedMail& mail,
                                const ListServices& services, std::int64_t now);

// mh-list approve: the pending post is queued to LIST+approved-ID (the runner distributes
// it) or, for an unsubscribe, the member removed. Returns what was done, for people.
// Error(no_account) when there is no such pending id or it has expired.
std::string approve_pending(const Layout& layout, const Address& list, std::string_view id,
                            const std::string& hostname, std::int64_t now);
// mh-list reject: drops it; a post's poster gets a "rejected by the moderator" mail.
std::string reject_pending(const Layout& layout, const Address& list, std::string_view id,
                           const std::string& hostname, std::int64_t now);
// Removes pending items past their expiry (and jobs/ records of finished distributions).
std::size_t sweep_list(const Layout& layout, const Address& list, std::int64_t now);

} // namespace spool
