// queue.h — the durable outbound queue, SPOOL/queue/ (SPEC §2, §8; format in mailhost(5),
// QUEUE). One entry is two files named by its id:
//   queue/<id>.msg   the message as received (LF line ends, our trace headers on top);
//                    never changed once in place
//   queue/<id>.env   the envelope ("key: value" lines, QueueEnvelope); written LAST: the commit
//                    point, and the only file ever replaced (atomically)
// plus queue/tmp/<id> while a message streams in (never listed). Every state a crash can
// leave is safe: tmp/ files and a .msg without .env are unacknowledged garbage that
// sweep_queue() removes; an entry is acknowledged (SMTP 250) only after commit() has
// fsynced the .env and the directory.
// Locking: whoever holds flock(LOCK_EX) on an entry's .msg owns the entry. The writer
// holds it from the first byte until it lets go (so it can still withdraw the entry);
// the delivery runner takes it with QueueClaim::try_claim() and never waits for it.
// Names read back from the directory are re-validated (queue_id_ok) and .env files are
// parsed strictly (unknown key, bad value → Error(bad_config) naming file:line); nothing
// from them is trusted to be a path. Errors are spool::Error (I/O errors temporary).
#pragma once

#include "spool/layout.h"
#include "spool/tmp_file.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

inline constexpr int queue_format = 1;                 // the .env "format:" line
inline constexpr std::size_t max_queue_id_length = 64;
inline constexpr std::size_t max_queue_recipients = 10000;
inline constexpr std::size_t max_queue_env_size = 1024 * 1024;  // a .env larger is refused
// tmp/ files, orphan .msg and stale .env temp files younger than this are left to their
// writer (which holds the lock anyway); older unlocked ones are crash leftovers.
inline constexpr std::int64_t queue_garbage_seconds = 3600;

// The envelope of one entry (queue/<id>.env).
struct QueueEnvelope {
  std::string id;                       // set by commit(); re-validated on load
  std::string sender;                   // envelope sender; "" = null sender <>
  std::vector<std::string> recipients;  // still to be delivered, as given in RCPT
  std::string auth;                     // submitting account ("user@domain"), "" = none
  std::int64_t created = 0;             // unix seconds
  std::uint32_t attempts = 0;           // delivery attempts made
  std::int64_t next_attempt = 0;        // unix seconds; not before this
  std::string last_error;               // the last attempt's failure, for people
  // Per recipient (same index as `recipients`, or empty = none known): the last reply or
  // failure seen for it ("451 4.2.0 try later", "connection refused"), for queue show.
  std::vector<std::string> recipient_errors;
};

// 1–64 characters of [0-9A-Za-z]: safe as a file name, never a dot file.
bool queue_id_ok(std::string_view id);
// "<secs><usecs>P<pid>Q<n>R<random>" in hex digits and capitals: unique across
// processes, roughly time-ordered when sorted.
std::string new_queue_id();
// An envelope address or text value: printable ASCII and spaces, no line breaks, ≤ 998.
bool queue_value_ok(std::string_view value);

// A message entering the queue. Created by begin() (the bytes stream into
// queue/tmp/<id>) or adopt() (the bytes already sit, complete and fsynced, in another
// file of the spool — a Maildir tmp/ file — which commit() hard-links, or copies across
// file systems). The entry's lock is held from creation until release() or destruction.
class QueueMessage {
public:
  // `id`: one from new_queue_id() announced earlier (a cleaned copy of a message takes
  // the place of the first one, content/ in mh-serve); empty = a new one.
  static QueueMessage begin(const Layout& layout, std::string id = {});
  // `id`: one from new_queue_id() chosen earlier (so it can be announced before the
  // message is complete); empty = a new one.
  static QueueMessage adopt(const Layout& layout, const fs::path& complete_file, std::string id = {});

  QueueMessage(QueueMessage&& other) noexcept;
  QueueMessage& operator=(QueueMessage&& other) noexcept;
  QueueMessage(const QueueMessage&) = delete;
  QueueMessage& operator=(const QueueMessage&) = delete;
  ~QueueMessage();  // abort() unless committed; releases the lock

  const std::string& id() const noexcept { return id_; }
  void append(std::string_view bytes);   // begin() only; buffered, never whole in memory
  std::uint64_t size() const noexcept { return adopted_.empty() ? file_.size() : adopted_size_; }
  // A new read-only descriptor of the message as written so far (buffer flushed, no
  // fsync), for the content check; the caller closes it.
  int open_for_reading();

  // Makes the entry durable: data fsync, rename (or link) to <id>.msg, then the .env
  // written atomically (temp, fsync, rename, fsync queue/). `envelope.id` is ignored.
  // Throws spool::Error; nothing of the entry is left then (tmp file removed).
  void commit(QueueEnvelope envelope);
  // Takes a committed entry back (another part of the delivery failed and the sender
  // will retry): .env first, then .msg, then fsync queue/. False if it failed (the entry
  // then stays and will be delivered: the safe side).
  bool withdraw() noexcept;
  // Discards an uncommitted message.
  void abort() noexcept;
  // Lets the runner have the entry.
  void release() noexcept;

private:
  QueueMessage() = default;
  // The descriptor whose flock is the entry's lock: the tmp file's while it is written,
  // the adopted file's, or the one kept once the entry has its queue name.
  int lock_fd() const noexcept { return lock_fd_ >= 0 ? lock_fd_ : file_.fd(); }

  const Layout* layout_ = nullptr;
  std::string id_;
  TmpFile file_;           // begin() (or adopt()'s copy across file systems): queue/tmp/<id>
  fs::path adopted_;       // adopt(): the complete file elsewhere
  std::uint64_t adopted_size_ = 0;
  int lock_fd_ = -1;       // adopt(), and after commit: the descriptor holding the lock
  bool committed_ = false;
};

// Ids of committed entries (both files present, valid names), sorted. Entries still in
// tmp/ or without .env are not listed.
std::vector<std::string> list_queue(const Layout& layout);

// One readdir of queue/, no stat per entry (100,000 entries take milliseconds): what the
// runner needs to notice new, changed (replaced .env → new inode) and removed entries.
struct QueueScan {
  struct Entry {
    std::string id;
    std::uint64_t env_inode = 0;   // changes whenever the .env is replaced
  };
  std::vector<Entry> entries;        // both files present as regular files; sorted by id
  std::vector<std::string> suspect;  // ids whose .msg or .env is not a regular file (a planted symlink …)
};
QueueScan scan_queue(const Layout& layout);

// Moves what exists of an entry (.msg, .env — regular files or not, never followed) to
// queue/corrupt/, where no runner looks, and returns the new paths. Used for entries that
// cannot be delivered as they are: truncated, malformed, unreadable. Skips (returns {})
// an entry whose .msg someone holds locked. Never deletes anything.
std::vector<fs::path> quarantine_queue_entry(const Layout& layout, std::string_view id);

// Convenience for mail made by the server itself (DSNs, later auto-replies and
// forwards): the whole message in memory, committed and released at once. Returns the id.
std::string enqueue_message(const Layout& layout, QueueEnvelope envelope, std::string_view message);

// Reads queue/<id>.env strictly: Error(bad_config, "file:line: …") when malformed,
// Error(other) when it does not exist, Error(invalid_input) for a bad id.
QueueEnvelope load_queue_entry(const Layout& layout, std::string_view id);

// The envelope as written to <id>.env (exposed for tests and tools).
std::string format_queue_envelope(const QueueEnvelope& envelope);

// The runner's hold on one entry: the lock on its .msg, the envelope and the open file.
class QueueClaim {
public:
  // nullopt when the entry is locked by someone else (being written or delivered) or
  // does not exist (any more) / is not committed. Never waits.
  static std::optional<QueueClaim> try_claim(const Layout& layout, std::string_view id);

  QueueClaim(QueueClaim&& other) noexcept;
  QueueClaim& operator=(QueueClaim&& other) noexcept;
  QueueClaim(const QueueClaim&) = delete;
  QueueClaim& operator=(const QueueClaim&) = delete;
  ~QueueClaim();  // releases the lock

  const QueueEnvelope& envelope() const noexcept { return envelope_; }
  int message_fd() const noexcept { return fd_; }     // read-only, positioned at 0
  std::uint64_t message_size() const noexcept { return size_; }
  std::uint64_t env_inode() const noexcept { return env_inode_; }  // as scan_queue() reports it
  fs::path message_path() const;
  // Replaces the .env atomically (e.g. attempts+1, next_attempt, fewer recipients).
  void update(QueueEnvelope envelope);
  // Removes the entry (delivered or bounced): .env first, then .msg, then fsync queue/
  // unless `sync` is false. The runner passes false after a delivery: a removal lost
  // to a power failure only means the message is sent once more (at-least-once), and
  // the directory fsync would cost one disk flush per delivered message.
  void remove(bool sync = true);

private:
  QueueClaim() = default;
  const Layout* layout_ = nullptr;
  QueueEnvelope envelope_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t env_inode_ = 0;
  void stat_env();
};

struct QueueSweep {
  std::size_t tmp_removed = 0;       // queue/tmp/ files of dead writers
  std::size_t orphans_removed = 0;   // .msg without .env, .env without .msg
  std::size_t temps_removed = 0;     // .<id>.env.tmp.* of interrupted envelope writes
};
// Removes crash leftovers older than queue_garbage_seconds (relative to `now`, unix
// seconds) that nobody holds locked. Safe to run at any time, by any process.
// (A .msg without .env is removed at once when nobody holds it: see sweep_lone_messages.)
QueueSweep sweep_queue(const Layout& layout, std::int64_t now);
// Removes every .msg without .env that nobody holds locked, whatever its age: a writer
// links the .msg only while it holds the entry's lock and writes the .env before letting
// go, and every remover takes the .env first under the lock, so such a file is what a
// process killed between those two steps left. One readdir of queue/ and one lock try
// per lone .msg: the runner calls it at start, so a restart after a crash leaves no
// debris. Returns how many were removed.
std::size_t sweep_lone_messages(const Layout& layout);

} // namespace spool
