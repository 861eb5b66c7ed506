// mlist.h — mailing lists as spool files (SPEC §7): provisioning, members, moderators,
// the archive and the small state files the list processor (list_mail.h) keeps. Formats
// are documented in mailhost(5), LISTS. One list is the directory
//   lists/<name>/list.yaml   ListConfig (strict YAML, like account.yaml)
//                members     one address per line (the SPEC's format; '#' lines ignored)
//                bounces     "ADDR TIME…" or "ADDR disabled TIME" per line (bounce record)
//                posters     "ADDR blocked-until TIME…" per line (mail-bomb window)
//                seq         the last sequence number given out (never reused)
//                archive/    a Maildir: archive/new/<seq, 8 digits> per distributed post,
//                            with its own maildirsize (counted in the domain quota)
//                pending/    <id>.msg + <id>.yaml per post or unsubscribe awaiting a confirmation
//                jobs/       <queue-id> per distribution in progress (list_mail.cc)
// Writers hold Layout::list_lock(list); readers take none (every file is replaced
// atomically). create_list/delete_list hold the domain lock (delete_list then also the
// list lock: domain lock first, never the other way round). Names share the account
// namespace (accounts.h ensure_name_free). Files read back are size-limited (1 MiB;
// members 16 MiB) and parsed strictly: a bad line is Error(bad_config) naming FILE:LINE.
// The line files are rewritten whole by the tools: '#' comments in members are not kept.
// Errors: no_domain (68), no_account (67: no such list or pending id), exists (73),
// invalid_input (65: bad address, size, format), bad_config (78), other (1: --force).
#pragma once

#include "spool/layout.h"
#include "spool/names.h"
#include "spool/quota.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

enum class ListPolicy { members, anyone, moderators };
std::string_view policy_name(ListPolicy p);
// "members" | "anyone" | "moderators"; throws Error(invalid_input) otherwise.
ListPolicy parse_policy(std::string_view text);

inline constexpr std::uint64_t list_min_post_size = 1024;            // 1K
inline constexpr std::uint64_t list_max_post_size = 10000ull * 1024; // 10000K (SPEC §10)
inline constexpr std::int64_t list_max_bomb_block = 3600;            // seconds (SPEC §10)
inline constexpr const char* default_subject_tag = "[{list}:{seq}]";

struct ListConfig {
  ListPolicy policy = ListPolicy::members;
  std::string admin;                          // admin forward address; "" = none
  std::uint64_t max_size = list_max_post_size;
  std::string subject_tag = default_subject_tag;  // "" = no tag
  std::uint32_t bomb_posts = 3;               // the Nth post within bomb_age is a mail bomb
  std::chrono::seconds bomb_age{300};
  std::chrono::seconds bomb_block{3600};      // ≤ list_max_bomb_block
  std::chrono::seconds confirm_expiry{7 * 24 * 3600};  // confirmation tokens
  std::vector<std::string> moderators;        // canonical addresses (normalize_list_address)
  std::string created;                        // RFC 3339 UTC
};

// Why a setting cannot be used ("max size 20000K is outside 1K–10000K"), nullopt if fine.
// Checks max_size, subject_tag (only {list} and {seq} placeholders), bomb values, admin.
std::optional<std::string> list_config_problem(const ListConfig& config);

// An outside address as a list stores it (members, moderators, admin): "local@domain"
// with the domain in lower-case ASCII (IDN → punycode) and the local part kept as given
// (an RFC 5321 dot-atom; a quoted-string is refused: printable ASCII without space,
// '"', '@', '<', '>', '(', ')', ',', ';', ':', '\\', '[', ']', no leading, trailing or
// doubled '.', ≤ 64 octets; whole ≤ 254).
// nullopt when it is not such an address. Comparisons are case-insensitive (list_key).
std::optional<std::string> normalize_list_address(std::string_view input);
// The comparison key of a stored address: all lower case.
std::string list_key(std::string_view address);

// --- provisioning ---
bool list_exists(const Layout& layout, const Address& list);
// Makes lists/<name>/ (list.yaml, empty members, archive Maildir) atomically (temp dir +
// rename) under the domain lock after ensure_name_free(). Returns false (changing
// nothing) when the list exists and exist_ok is set. Throws invalid_input when
// list_config_problem(initial) says so.
bool create_list(const Layout& layout, const Address& list, const ListConfig& initial, bool exist_ok);
// Refuses (Errc::other, message names --force) while the list has members or archived posts.
void delete_list(const Layout& layout, const Address& list, bool force);
ListConfig read_list(const Layout& layout, const Address& list);
// Read-modify-write of list.yaml under the list lock; the change is validated before saving.
void update_list(const Layout& layout, const Address& list, const std::function<void(ListConfig&)>& change);

// --- members and moderators ---
struct MemberChange {
  std::size_t added = 0;        // add: new addresses, removed: del
  std::size_t already = 0;      // add: present before (a disabled one is enabled again: counted in `enabled`)
  std::size_t enabled = 0;      // add: disabled members enabled again
  std::size_t absent = 0;       // del: not a member
  std::size_t invalid = 0;      // not an address
  std::vector<std::string> invalid_inputs;  // the first 100 of them, as given
};
struct Member {
  std::string address;
  bool disabled = false;        // bounced list_bounce_limit times within list_bounce_window
  std::uint32_t bounces = 0;    // permanent bounces within the window
  std::int64_t disabled_since = 0;
};
inline constexpr std::uint32_t list_bounce_limit = 3;
inline constexpr std::int64_t list_bounce_window = 30 * 24 * 3600;

// File order; duplicates (case-insensitive) are not stored.
std::vector<std::string> read_members(const Layout& layout, const Address& list);
std::vector<Member> list_members(const Layout& layout, const Address& list, std::int64_t now);
// One atomic update of `members` (and of `bounces`, re-enabling) however many addresses.
MemberChange add_members(const Layout& layout, const Address& list, const std::vector<std::string>& addresses);
MemberChange remove_members(const Layout& layout, const Address& list, const std::vector<std::string>& addresses);
MemberChange add_moderators(const Layout& layout, const Address& list, const std::vector<std::string>& addresses);
MemberChange remove_moderators(const Layout& layout, const Address& list, const std::vector<std::string>& addresses);
bool is_member(const Layout& layout, const Address& list, std::string_view address);

// Records a permanent bounce of `address` at `now` (ignored for non-members); returns
// true when this bounce disabled the member.
bool record_member_bounce(const Layout& layout, const Address& list, std::string_view address, std::int64_t now);

// --- sequence numbers, mail-bomb window ---
// The last number given out (0 = none yet).
std::uint64_t last_sequence(const Layout& layout, const Address& list);
// Gives out the next number: the file is replaced (fsynced) before it returns, so a
// number is never handed out twice, even across a crash. Caller holds list_lock.
std::uint64_t next_sequence(const Layout& layout, const Address& list);

struct BombCheck {
  bool refused = false;          // a mail bomb (now or still blocked)
  std::int64_t blocked_until = 0;
};
// Counts one post of `poster` at `now` against the list's bomb rule and remembers it in
// `posters` (kept across restarts). Caller holds list_lock.
BombCheck count_post(const Layout& layout, const Address& list, const ListConfig& config, std::string_view poster,
                     std::int64_t now);

// --- archive ---
struct ArchivedPost {
  std::uint64_t seq = 0;
  std::uint64_t size = 0;
  std::int64_t date = 0;        // file mtime (unix seconds)
  std::string subject;          // raw header value, unfolded ("" when none)
  std::string from;
};
std::vector<ArchivedPost> list_archive_posts(const Layout& layout, const Address& list);
// The path of post `seq` (archive/new/<8 digits>, or in cur/ if a reader moved it); nullopt if absent.
std::optional<fs::path> archived_post_path(const Layout& layout, const Address& list, std::uint64_t seq);

// --- pending confirmations (moderation and unsubscribe) ---
struct PendingItem {
  std::string id;               // the token: 20 lower-case hex digits
  enum class Kind { post, unsubscribe } kind = Kind::post;
  std::string poster;           // post: the envelope sender; unsubscribe: the member
  std::string subject;          // post: its Subject (raw, unfolded)
  std::uint64_t size = 0;
  std::int64_t created = 0;
  std::int64_t expires = 0;
};
bool pending_id_ok(std::string_view id);
// Items with a readable <id>.yaml, oldest first (by created, then id).
std::vector<PendingItem> list_pending(const Layout& layout, const Address& list);
// nullopt when there is no such item (or `id` is not a pending id).
std::optional<PendingItem> read_pending(const Layout& layout, const Address& list, std::string_view id);
// Writes pending/<id>.yaml atomically (creating pending/, mode 0750); the <id>.msg beside
// it is the caller's to write first. Caller holds list_lock. Throws invalid_input for a
// bad id. A subject that is not UTF-8 is stored with U+FFFD for the bad bytes (YAML).
void write_pending(const Layout& layout, const Address& list, const PendingItem& item);
// Removes <id>.yaml, then <id>.msg: once the .yaml is gone the item is no longer
// pending, whatever a crash leaves. True when the .yaml existed. Caller holds list_lock.
bool remove_pending(const Layout& layout, const Address& list, std::string_view id);

// --- summary (show) ---
struct ListSummary {
  ListConfig config;
  std::size_t members = 0;
  std::size_t disabled_members = 0;
  std::size_t pending = 0;
  std::uint64_t last_sequence = 0;
  Usage archive;
};
ListSummary summarize_list(const Layout& layout, const Address& list, std::int64_t now);

} // namespace spool
