// layout.h — where everything lives in the spool (SPEC §2). The only place paths are joined.
// Every path below the root is built from validated names (names.h) or fixed strings,
// so no input reaches outside the spool. Names read back from disk (directory listings)
// are re-validated by the caller before use. Symlinks planted inside the spool are never
// followed (SPEC §8 "The spool walk"): paths are resolved from the root's directory fd by
// one openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and whatever works on a Maildir
// keeps the DirFd it got from open_dir() and goes on with openat()/O_NOFOLLOW from there.
#pragma once

#include "spool/names.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace spool {

namespace fs = std::filesystem;

inline constexpr const char* default_spool_root = "/var/spool/mailhost";

// --spool DIR, else $MH_SPOOL, else /var/spool/mailhost. The result is absolute.
fs::path resolve_spool_root(const std::optional<std::string>& from_command_line);

// Owns one open directory file descriptor (-1 = none, e.g. a directory that does not
// exist); closes it unless released.
class DirFd {
public:
  DirFd() = default;
  explicit DirFd(int fd) noexcept : fd_(fd) {}
  DirFd(DirFd&& other) noexcept : fd_(other.release()) {}
  DirFd& operator=(DirFd&& other) noexcept;
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  ~DirFd();

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

private:
  int fd_ = -1;
};

// Error(permission) "refusing to follow symlink planted in the spool: <path>" — the one
// text for every symlink (or other non-directory) found where the spool walk expects a
// directory or a message file.
[[noreturn]] void throw_planted(const std::filesystem::path& where);

class Layout {
public:
  explicit Layout(fs::path root);

  const fs::path& root() const noexcept { return root_; }
  fs::path server_config() const { return root_ / "mailhost.yaml"; }
  fs::path tls_dir() const { return root_ / "tls"; }
  fs::path queue_dir() const { return root_ / "queue"; }
  fs::path run_dir() const { return root_ / "run"; }
  fs::path locks_dir() const { return run_dir() / "locks"; }
  fs::path domains_dir() const { return root_ / "domains"; }
  // The server's own postmaster mailbox (SPEC §8): made on first use, in no quota.
  fs::path postmaster_maildir() const { return root_ / "postmaster" / "Maildir"; }

  fs::path domain_dir(const Domain& d) const { return domains_dir() / d.str(); }
  fs::path domain_config(const Domain& d) const { return domain_dir(d) / "domain.yaml"; }
  fs::path accounts_dir(const Domain& d) const { return domain_dir(d) / "accounts"; }
  fs::path lists_dir(const Domain& d) const { return domain_dir(d) / "lists"; }
  // The domain's usage record (domain_usage.h): the sum of its Maildirs' maildirsize.
  fs::path domain_usage_record(const Domain& d) const { return domain_dir(d) / "domainsize"; }

  fs::path account_dir(const Address& a) const { return accounts_dir(a.domain()) / a.local().str(); }
  fs::path account_config(const Address& a) const { return account_dir(a) / "account.yaml"; }
  fs::path filters_config(const Address& a) const { return account_dir(a) / "filters.yaml"; }
  fs::path maildir(const Address& a) const { return account_dir(a) / "Maildir"; }
  // The account's hourly sending window (sending_rate.h). Beside account.yaml rather than
  // under run/: it is shared by every mh-serve on the spool (run/HOSTNAME/ is per host),
  // and it goes away with the account, so a re-created name starts with an empty window.
  fs::path sending_record(const Address& a) const { return account_dir(a) / "sending.rate"; }

  fs::path list_dir(const Address& l) const { return lists_dir(l.domain()) / l.local().str(); }
  fs::path list_config(const Address& l) const { return list_dir(l) / "list.yaml"; }
  fs::path list_members(const Address& l) const { return list_dir(l) / "members"; }
  fs::path list_archive(const Address& l) const { return list_dir(l) / "archive"; }
  // The list processor's state files (mlist.h has the formats).
  fs::path list_bounces(const Address& l) const { return list_dir(l) / "bounces"; }
  fs::path list_posters(const Address& l) const { return list_dir(l) / "posters"; }
  fs::path list_sequence(const Address& l) const { return list_dir(l) / "seq"; }
  fs::path list_pending(const Address& l) const { return list_dir(l) / "pending"; }
  fs::path list_jobs(const Address& l) const { return list_dir(l) / "jobs"; }

  // Lock files: one for spool-wide structure (domains), one per domain (its accounts,
  // lists and config), one per domain for quota accounting, one per domain for sending rates.
  fs::path spool_lock() const { return locks_dir() / "spool.lock"; }
  // Held while mh-serve makes the self-signed pair in tls/, so daemons starting together
  // make it once.
  fs::path tls_lock() const { return locks_dir() / "tls.lock"; }
  fs::path domain_lock(const Domain& d) const { return locks_dir() / (d.str() + ".lock"); }
  fs::path quota_lock(const Domain& d) const { return locks_dir() / (d.str() + ".quota.lock"); }
  // Held around every append to a maildirsize of the domain and to its usage record; the
  // innermost lock (after quota_lock() and a Maildir's writer lock, never before them).
  fs::path usage_lock(const Domain& d) const { return locks_dir() / (d.str() + ".usage.lock"); }
  // Held by every writer of the domain's sending records; taken before domain_lock().
  fs::path sending_lock(const Domain& d) const { return locks_dir() / (d.str() + ".sending.lock"); }
  // One per list: its members, state files and sequence numbers. The '@' keeps it apart
  // from every domain's lock names (a domain name never holds one).
  fs::path list_lock(const Address& l) const { return locks_dir() / (l.local().str() + "@" + l.domain().str() + ".list.lock"); }

  // The domain whose quota a Maildir counts in: an account's Maildir or a list's archive.
  // nullopt for any other (the server's postmaster mailbox is in no quota).
  std::optional<Domain> quota_domain_of(const fs::path& maildir) const;

  // Throws Error(permission) when any existing component of `p` below the root is a
  // symlink (the root itself may be one). Missing trailing components are fine. One
  // openat2() from the root's fd, not an lstat() per component.
  void verify_no_symlinks(const fs::path& p) const;

  // Opens the directory `p` (the root or below it) read-only, following no symlink below
  // the root. An empty DirFd when `p` (or a directory on the way) does not exist; a
  // symlink or a file on the way → throw_planted() naming the first offending component.
  DirFd open_dir(const fs::path& p) const;
  // An O_PATH descriptor of the directory `p`, walked like open_dir() but from the open
  // directory `from` (whose path is `from_path`, a prefix of `p`), or from the root. Empty
  // when `p` is missing or not a directory (lstat's "is it a directory?"); a symlink on
  // the way → throw_planted(). What reads a domain's or account's files and holds its
  // locks walks once and goes on relative to it: on a network file system every path
  // component is a round trip.
  DirFd find_dir(const fs::path& p) const;
  DirFd find_dir(const DirFd& from, const fs::path& from_path, const fs::path& p) const;

  // Creates the fixed top-level directories (domains/, queue/, run/locks/, tls/).
  void ensure_skeleton() const;

private:
  struct RootFd;
  // The root's directory fd, opened on first use (the root may be created after this
  // Layout, by ensure_skeleton()) and shared by copies. -1 when it does not exist yet.
  int root_fd() const;

  fs::path root_;
  std::shared_ptr<RootFd> root_fd_;
};

} // namespace spool
