// queue_admin.h — what an administrator does to the outbound queue (`mh-serve queue`,
// SPEC §8 "Queue administration"; mh-serve(8), QUEUE ADMINISTRATION): list, show, retry
// now, delete (optionally bouncing to the sender first). Everything goes through the
// queue's own files and locks (queue.h), so it works whether or not a daemon runs, and a
// running runner sees the change at its next rescan (≤ 1 s): a retry replaces the .env
// (new inode, which the runner re-reads), a delete removes the entry.
// An entry a runner holds mid-delivery is waited for until a deadline, then Error(busy).
// Ids come from the command line: anything but queue-id syntax is Error(invalid_input)
// before any path is built. Errors: invalid_input (bad id), no_account (no such entry, or
// it went away — was delivered — while we waited), busy, bad_config (an .env that does
// not parse), and spool::Error from the queue's I/O.
#pragma once

#include "spool/layout.h"
#include "spool/queue.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// How long retry/delete wait for an entry a runner is delivering (a delivery attempt
// normally ends well within this; when it does not, the caller says "try again").
inline constexpr std::chrono::milliseconds queue_admin_wait{5000};
// `show` reads at most this much of a message: its header block, never the body.
inline constexpr std::size_t max_queue_show_headers = 64 * 1024;
// The reply a --bounce DSN gives for every recipient left (RFC 3463 5.0.0: "other").
inline constexpr const char* queue_deleted_reply = "554 5.0.0 deleted by the administrator";

// One entry as `list` shows it. An .env that cannot be read (malformed, or not a
// regular file) does not stop the listing: the entry comes with `error` instead.
struct QueueListEntry {
  std::string id;
  std::optional<QueueEnvelope> envelope;  // nullopt: unreadable, see error
  std::string error;                      // why the envelope could not be read
  std::uint64_t size = 0;                 // of the .msg (0 when unreadable)
};

struct QueueListing {
  std::vector<QueueListEntry> entries;  // sorted by id (roughly by arrival)
  std::size_t corrupt = 0;              // entries quarantined in queue/corrupt/ (not queued)
};

// Every committed entry; one .env read and one stat per entry. Entries delivered while
// the listing runs are left out.
QueueListing list_queue_entries(const Layout& layout);

// The ids of the queue (committed entries, and entries whose files are not regular
// files), from one readdir: cheap enough for shell completion.
std::vector<std::string> queue_entry_ids(const Layout& layout);

struct QueueEntryDetails {
  QueueEnvelope envelope;
  std::uint64_t size = 0;
  // The message's header block (never the body), at most max_queue_show_headers,
  // cut after a whole line; LF line ends, valid UTF-8, controls other than tab replaced
  // by U+FFFD (the text came from the network and goes to a terminal).
  std::string headers;
  bool headers_cut = false;  // the header block was longer than the limit
  std::string from;          // From: and Subject: unfolded and RFC 2047-decoded ("" = none)
  std::string subject;
};

// Reads an entry without taking its lock (.msg never changes; .env is replaced atomically).
QueueEntryDetails show_queue_entry(const Layout& layout, std::string_view id);

// Makes an entry due now: next_attempt = now, the .env replaced under the entry's lock.
// Attempts and errors are kept (the give-up time still counts from `created`).
void queue_retry(const Layout& layout, std::string_view id, std::int64_t now,
                 std::chrono::steady_clock::time_point wait_until);

struct QueueDeleteOptions {
  bool bounce = false;        // queue a DSN to the sender first (none for the null sender)
  std::string reporting_mta;  // our host name, for the DSN
  std::int64_t now = 0;       // unix seconds, for the DSN
  std::chrono::steady_clock::time_point wait_until{};
};

// Removes an entry under its lock. With `bounce`, first queues a DSN (queue_deleted_reply,
// plus the recipient's last error when known) to the sender for every recipient left,
// and returns its queue id ("" when none is due). An entry whose .env does not parse is
// removed all the same (bad_config only when a bounce was asked: there is no sender to
// send it to).
std::string queue_delete(const Layout& layout, std::string_view id, const QueueDeleteOptions& options);

} // namespace spool
