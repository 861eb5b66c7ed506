// layout.h — where everything lives in the spool (SPEC §2). The only place paths are joined.
// Every path below the root is built from validated names (names.h) or fixed strings,
// so no input reaches outside the spool. Names read back from disk (directory listings)
// are re-validated by the caller before use. Symlinks planted inside the spool are
// refused by verify_no_symlinks() before a path is written to or removed.
#pragma once

#include "spool/names.h"

#include <filesystem>
#include <optional>
#include <string>

namespace spool {

namespace fs = std::filesystem;

inline constexpr const char* default_spool_root = "/var/spool/mailhost";

// --spool DIR, else $MH_SPOOL, else /var/spool/mailhost. The result is absolute.
fs::path resolve_spool_root(const std::optional<std::string>& from_command_line);

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

  fs::path domain_dir(const Domain& d) const { return domains_dir() / d.str(); }
  fs::path domain_config(const Domain& d) const { return domain_dir(d) / "domain.yaml"; }
  fs::path accounts_dir(const Domain& d) const { return domain_dir(d) / "accounts"; }
  fs::path lists_dir(const Domain& d) const { return domain_dir(d) / "lists"; }

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
  fs::path domain_lock(const Domain& d) const { return locks_dir() / (d.str() + ".lock"); }
  fs::path quota_lock(const Domain& d) const { return locks_dir() / (d.str() + ".quota.lock"); }
  // Held by every writer of the domain's sending records; taken before domain_lock().
  fs::path sending_lock(const Domain& d) const { return locks_dir() / (d.str() + ".sending.lock"); }
  // One per list: its members, state files and sequence numbers. The '@' keeps it apart
  // from every domain's lock names (a domain name never holds one).
  fs::path list_lock(const Address& l) const { return locks_dir() / (l.local().str() + "@" + l.domain().str() + ".list.lock"); }

  // Throws Error(permission) when any existing component of `p` below the root is a
  // symlink (the root itself may be one). Missing trailing components are fine.
  void verify_no_symlinks(const fs::path& p) const;

  // Creates the fixed top-level directories (domains/, queue/, run/locks/, tls/).
  void ensure_skeleton() const;

private:
  fs::path root_;
};

} // namespace spool
