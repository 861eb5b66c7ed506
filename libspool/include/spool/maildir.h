// maildir.h — Maildir per maildir.5 (tmp/ new/ cur/) plus Maildir++ maildirsize.
// Listing, reading and removing messages, and the exact per-Maildir usage. Message file
// names follow the qmail scheme "<secs>.M<usecs>P<pid>Q<n>R<hex>.<host>,S=<size>,W=<wire>[:2,FLAGS]";
// the UIDL is the part before the first ',' or ':' so it survives new/→cur/ and flags
// changes made by any reader (mutt, Dovecot, Python's mailbox). Delivery is delivery.h.
// Nothing below the Maildir is reached through a symlink: tmp/, new/, cur/, maildirsize
// and the messages are opened relative to the Maildir's directory fd with O_NOFOLLOW,
// and a symlink where one of them belongs makes the mailbox unavailable (throw_planted).
#pragma once

#include "spool/layout.h"
#include "spool/lock.h"
#include "spool/quota.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

struct MessageInfo {
  std::string uidl;           // stable id = file name up to the first ',' or ':' (unique part);
                              // unchanged when the file moves new/→cur/ or gets flags. ≤ 70 chars, 0x21–0x7E.
  std::string filename;       // current base name (in new/ or cur/)
  bool in_new = true;
  std::uint64_t size = 0;     // from ",S=<size>" in the name (stat only if missing)
  std::int64_t delivered = 0; // unix time: leading "<secs>." of the name (stat mtime if not parsable)
  // Size with CRLF line ends, as POP3 sends it, from ",W=<size>" in the name (Maildir++ /
  // Dovecot). 0 = unknown (mail delivered by someone else): the reader counts the LFs.
  std::uint64_t wire_size = 0;
};

// maildirsize grows by one line per delivery/removal; past this it is rebuilt (Maildir++).
inline constexpr std::uintmax_t maildirsize_max_bytes = 5120;
// tmp/ files older than this are leftovers of crashed deliveries (maildir.5: 36 hours).
inline constexpr std::int64_t stale_tmp_seconds = 36 * 3600;

// Creates dir with tmp/, new/, cur/ (mode 0700) and an initial maildirsize whose quota
// line carries `quota_bytes` (0 = no per-mailbox limit). Fails if dir exists.
void create_maildir(const fs::path& dir, std::uint64_t quota_bytes = 0);

// True when new/ or cur/ holds at least one message (dot files are not messages).
bool maildir_holds_mail(const fs::path& dir);

// UIDL of a message file name: the part before the first ',' or ':'.
std::string_view uidl_of(std::string_view filename);

class Maildir {
public:
  // Locking: "<dir>/.maildirsize.lock" (a dot file, never taken for a message; derived from
  // the directory alone so every process agrees on it). Writers (delivery, remove) hold it
  // shared around "link/unlink + maildirsize append"; recalc holds it exclusive, so a
  // rebuild never misses or double-counts a concurrent change.
  // `dir` itself is trusted (the caller checked the way to it); everything below it is
  // opened without following symlinks.
  explicit Maildir(fs::path dir);
  // `dir` is opened from the spool root with no symlink on the way (Layout::open_dir):
  // what delivery, POP3, mh-purge and recalc use.
  Maildir(const Layout& layout, fs::path dir);
  // The same, reached from the open directory `parent` (the account's, from
  // view_account()) instead of from the spool root: one lookup, not one per component.
  Maildir(const Layout& layout, fs::path dir, const DirFd& parent);

  const fs::path& path() const noexcept { return dir_; }
  // Whether the Maildir directory exists (a symlink in its place → throw_planted()).
  bool exists() const { return top_fd() >= 0; }

  // new/ + cur/, dot files skipped, oldest first (by delivery time, then UIDL). A name
  // whose UIDL would not be 1–70 printable ASCII characters (no Maildir writer makes one)
  // is not listed, but still counts in recalc(): it occupies the disk.
  std::vector<MessageInfo> list() const;
  std::optional<MessageInfo> find(std::string_view uidl) const;

  // Opens a message for reading (O_RDONLY|O_NOFOLLOW); if it moved new/→cur/ meanwhile it is
  // found again by uidl; nullopt if it is gone (purged). Caller closes the fd.
  std::optional<int> open_message(const MessageInfo& m) const;
  std::optional<std::string> read_message(const MessageInfo& m) const;   // whole message

  // Unlinks the message, then records "-<size> -1" in maildirsize (O_APPEND single write):
  // a crash in between over-counts, never under-counts. Returns false (and records
  // nothing) if it was already gone.
  bool remove(const MessageInfo& m);
  // The same for many messages at once (POP3's UPDATE state): one writer lock, one
  // unlinkat() per message through the open folders, one maildirsize line for all of
  // them after the unlinks. Per message: removed now, already gone, or failed (I/O).
  enum class Removal { removed, gone, failed };
  std::vector<Removal> remove_all(const std::vector<MessageInfo>& messages);

  // From maildirsize (recalculated under lock if missing, unparsable or over 5120 bytes).
  Usage usage() const;
  // Rebuilds maildirsize from the files, under the maildir's lock; also removes stale tmp/
  // files. The quota line is kept unless `quota_line` gives a new one.
  Usage recalc(std::optional<std::uint64_t> quota_line = std::nullopt);

  // What maildirsize records (whatever its size), without rebuilding it: nullopt when it
  // is missing or unparsable.
  std::optional<Usage> recorded_usage() const;

  // The quota line of maildirsize ("<n>S"), 0 when none/unlimited.
  std::uint64_t quota() const;

  // Appends one "<bytes> <count>\n" line to maildirsize with a single O_APPEND write,
  // under a lock no other appender shares: the domain's usage lock for an account's
  // Maildir or a list archive (the change is mirrored in the domain's usage record), else
  // the Maildir's own append lock. Callers hold writer_lock(). A missing maildirsize is left missing: the next usage()
  // rebuilds it from the files, which already include this change. Returns true when the
  // file is now past maildirsize_max_bytes: the caller then releases writer_lock() and
  // calls shrink_maildirsize() (Maildir++: whichever writer sees it rewrites it).
  bool record(std::int64_t bytes, std::int64_t messages);
  // Rebuilds maildirsize from the files when it is past maildirsize_max_bytes (or missing
  // or unparsable), under the exclusive lock: callers must not hold writer_lock().
  void shrink_maildirsize() const { (void)usage(); }

  // The lock every writer holds (shared) around "change a file + record()"; recalc holds it
  // exclusive. Returned lock is released by its destructor.
  FileLock writer_lock() const;

  // The open tmp/, new/, cur/ (owned by this Maildir and its copies), for linkat(),
  // unlinkat(), fsync(). Error when the folder does not exist; throw_planted() when a
  // symlink stands in its place.
  int tmp_fd() const { return required_fd(Folder::tmp); }
  int new_fd() const { return required_fd(Folder::fresh); }
  int cur_fd() const { return required_fd(Folder::cur); }
  // What a delivery checks before it links: new/ opened, and cur/ a real directory (a
  // symlink there makes the whole mailbox unavailable: throw_planted()), without opening
  // cur/ (on a network file system an open directory costs two more round trips).
  void require_deliverable() const;

  fs::path new_dir() const { return dir_ / "new"; }
  fs::path cur_dir() const { return dir_ / "cur"; }
  fs::path tmp_dir() const { return dir_ / "tmp"; }
  fs::path maildirsize_path() const { return dir_ / "maildirsize"; }
  fs::path lock_path() const { return dir_ / ".maildirsize.lock"; }
  fs::path append_lock_path() const { return dir_ / ".maildirsize.append.lock"; }
  // Held exclusively by the one POP3 session of this mailbox for its whole life (RFC 1939
  // §8: the maildrop is locked). A dot file, so never taken for a message.
  fs::path pop3_lock_path() const { return dir_ / ".pop3.lock"; }

private:
  enum class Folder { tmp, fresh, cur };
  struct Dirs;

  Usage rebuild_maildirsize(std::optional<std::uint64_t> quota_line) const;
  void write_recount(std::uint64_t quota, const Usage& total) const;
  enum class Appended { no_file, ok, oversized };
  Appended append_maildirsize(std::int64_t bytes, std::int64_t messages);
  // Unlinks one message, found again by UIDL if it moved; its size, or nullopt when it
  // is gone. Callers hold writer_lock().
  std::optional<std::uint64_t> unlink_message(const MessageInfo& m);
  // The Maildir's own fd, or a folder's; -1 when it does not exist (opened on first use,
  // a missing one is tried again next time).
  int top_fd() const;
  int folder_fd(Folder f) const;
  int required_fd(Folder f) const;
  fs::path folder_path(Folder f) const;
  std::optional<std::string> read_maildirsize() const;

  fs::path dir_;
  std::shared_ptr<Dirs> dirs_;
};

} // namespace spool
