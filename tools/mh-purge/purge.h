// purge.h — mh-purge's parts: which mailboxes (targets), which messages (selection: all
// given selectors must match), how a message is shown (--list / --dry-run, header only),
// the terminal progress bar, and the run that removes through Maildir::remove so
// maildirsize stays exact while deliveries and POP3 sessions go on.
#pragma once

#include "common/cli.h"

#include <spool/lock.h>
#include <spool/maildir.h>
#include <spool/names.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace mh::purge {

struct PurgeOptions {
  std::vector<std::string> targets; // ADDRESS or DOMAIN operands
  bool all_domains = false;
  std::string older_than;           // AGE, e.g. 90d
  std::string larger_than;          // SIZE, e.g. 10M
  std::vector<std::string> uids;    // UIDLs
  bool everything = false;
  bool dry_run = false;
  bool list = false;
};

// The selectors, parsed. A message is selected when it matches every selector given.
class Selection {
public:
  // Throws Error(usage) when no selector is given and `listing_allowed` is false, and
  // Error(invalid_input) for a bad age, size or UIDL. `now` is the reference for ages.
  static Selection from(const PurgeOptions& o, std::int64_t now, bool listing_allowed);

  bool matches(const spool::MessageInfo& m) const;
  const std::vector<std::string>& uids() const { return uid_list_; }

private:
  std::optional<std::int64_t> delivered_before_; // --older-than: delivered < this
  std::optional<std::uint64_t> larger_than_;
  std::unordered_set<std::string> uids_;
  std::vector<std::string> uid_list_;
};

// The accounts named by the operands (a domain = all its accounts) or every account of
// every domain; each at most once, in the order given. Throws Error(usage) when no target
// or both operands and --all-domains are given; no_domain / no_account for unknown ones.
std::vector<spool::Address> resolve_targets(const spool::Layout& layout, const PurgeOptions& o);

// One message as shown by --list and --dry-run.
struct ListedMessage {
  std::string mailbox;
  spool::MessageInfo info;
  std::string from;    // decoded to UTF-8
  std::string subject; // decoded to UTF-8
};

// Reads only the header of `m` (at most spool::max_header_block bytes); nullopt when the
// message is gone meanwhile.
std::optional<ListedMessage> describe_message(const spool::Maildir& md, const std::string& mailbox,
                                              const spool::MessageInfo& m);
std::string listing_table(const std::vector<ListedMessage>& messages, bool show_mailbox);
nlohmann::json listed_json(const ListedMessage& m);

// Removes messages of one Maildir in batches: the Maildir's writer lock (shared) is held
// across up to `max_batch_messages` unlinks or `max_batch_time`, then one maildirsize line
// records the whole batch — the same protocol as Maildir::remove (unlink + record under
// the writer lock, so a recalc never sees one without the other), without its six extra
// system calls per message. maildirsize lags the files by at most one batch while a run
// is in progress, and a kill -9 can leave at most one batch counted but gone (over-
// counted, the safe direction; the next run repairs it). Messages that a reader moved
// (new/ -> cur/, flags) are found again with one extra listing at finish(), not one per
// message. WORKAROUND: to be replaced by a Maildir::remove_many() in libspool.
class BatchRemover {
public:
  static constexpr std::size_t max_batch_messages = 256;
  static constexpr std::chrono::milliseconds max_batch_time{50};

  explicit BatchRemover(spool::Maildir& md);
  ~BatchRemover();
  BatchRemover(const BatchRemover&) = delete;
  BatchRemover& operator=(const BatchRemover&) = delete;

  // True when removed now; false when not found under its listed name (retried in finish()).
  bool remove(const spool::MessageInfo& m);
  // Records the open batch, then looks for the messages not found under their listed
  // names and removes those that only moved. Returns the ones removed that way.
  std::vector<spool::MessageInfo> finish();

private:
  void flush();

  spool::Maildir& md_;
  // new/ and cur/ opened once: unlinkat() by name, as find(1) does, walks no path per message.
  int new_fd_ = -1;
  int cur_fd_ = -1;
  spool::FileLock lock_;
  std::int64_t pending_bytes_ = 0;
  std::int64_t pending_messages_ = 0;
  std::chrono::steady_clock::time_point batch_started_;
  std::vector<spool::MessageInfo> not_found_;
};

// A one-line progress bar on stderr for long runs at a terminal; silent otherwise.
class Progress {
public:
  Progress(bool enabled, std::size_t mailboxes);
  ~Progress();
  void start_mailbox(std::size_t index, std::size_t selected);
  void removed_one(std::uint64_t bytes);
  void finish();

private:
  void draw(bool force);

  bool enabled_;
  bool drawn_ = false;
  std::size_t mailboxes_;
  std::size_t mailbox_index_ = 0;
  std::size_t selected_here_ = 0;
  std::size_t done_here_ = 0;
  std::uint64_t removed_ = 0;
  std::uint64_t removed_bytes_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_draw_;
};

void setup_purge(Tool& tool);

} // namespace mh::purge
