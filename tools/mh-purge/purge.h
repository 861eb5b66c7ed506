// purge.h — mh-purge's parts: which mailboxes (targets), which messages (selection: all
// given selectors must match), how a message is shown (--list / --dry-run, header only),
// the terminal progress bar, and the run that removes through Maildir::remove so
// maildirsize stays exact while deliveries and POP3 sessions go on.
#pragma once

#include "common/cli.h"

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
