// accounts.h — provisioning: domains and accounts as directories of the spool.
// Creation is atomic: the new domain/account is built in a dot-named temp directory
// and renamed into place, so a crash never leaves a half-made one (leftovers are
// swept under the same lock later). Deletion renames away first, then removes.
// Writers hold the spool lock (domains) or the domain lock (accounts, lists, configs);
// readers take no lock: every file is replaced atomically.
// Account and list names share one namespace per domain (SPEC §3): a clash is Error(exists).
// Errors: no_domain (68), no_account (67), exists (73), busy (75), bad_config (78), other (1).
#pragma once

#include "spool/config.h"
#include "spool/layout.h"
#include "spool/names.h"

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace spool {

// --- domains ---
bool domain_exists(const Layout& layout, const Domain& domain);
// Returns false (and changes nothing) when it exists and exist_ok is set.
bool add_domain(const Layout& layout, const Domain& domain, const DomainConfig& initial, bool exist_ok);
// Refuses (Errc::other, message names --force) when the domain still holds mail.
void delete_domain(const Layout& layout, const Domain& domain, bool force);
std::vector<Domain> list_domains(const Layout& layout);
DomainConfig read_domain(const Layout& layout, const Domain& domain);
void update_domain(const Layout& layout, const Domain& domain, const std::function<void(DomainConfig&)>& change);

// --- accounts ---
bool account_exists(const Layout& layout, const Address& address);
bool add_account(const Layout& layout, const Address& address, const AccountConfig& initial, bool exist_ok);
// Refuses (Errc::other, names --force) when the Maildir still holds messages.
void delete_account(const Layout& layout, const Address& address, bool force);
std::vector<LocalPart> list_accounts(const Layout& layout, const Domain& domain);
AccountConfig read_account(const Layout& layout, const Address& address);
void update_account(const Layout& layout, const Address& address, const std::function<void(AccountConfig&)>& change);

// What delivery needs of one account, by one walk: the domain's and the account's
// directories (O_PATH, no symlink on the way) and both files read relative to them.
// Error(no_domain) / Error(no_account) when missing. On a network file system each path
// component is a round trip, so the caller goes on from `account_dir` (its Maildir).
struct AccountView {
  DirFd domain_dir;
  DirFd account_dir;
  DomainConfig domain;
  AccountConfig account;
};
AccountView view_account(const Layout& layout, const Address& address);

// The existing account an address delivers to: NAME@D or NAME+ANYTHING@D (SPEC §7's
// recipient delimiter) at a hosted domain D; nullopt for anything else (a list, a
// remote or malformed address).
std::optional<Address> account_for_address(const Layout& layout, std::string_view address);

// --- postmaster (RFC 5321 §4.5.1, SPEC §8 "postmaster") ---
// Where mail to postmaster@D goes: the account `postmaster` of D, else D's domain.yaml
// `postmaster:`, else the server's own mailbox (Layout::postmaster_maildir(), in no
// quota). The bare <postmaster> goes to mailhost.yaml's `postmaster:` (`configured`),
// else the server's mailbox. A configured address at a hosted domain must be an account
// (else the server's mailbox: queueing it would only come back here); any other address
// goes out through the queue.
struct PostmasterRoute {
  enum class Kind { account, remote, server_mailbox } kind = Kind::server_mailbox;
  std::string address;   // account: canonical "local@domain"; remote: as configured; else ""
  std::string source;    // why: "account", "domain.yaml", "mailhost.yaml" or "default"
  std::string describe() const;  // one line for mh-user show / mh-serve --check-config
};
bool is_postmaster(std::string_view local_part);  // "postmaster", any case
PostmasterRoute postmaster_route(const Layout& layout, const Domain& domain);
PostmasterRoute bare_postmaster_route(const Layout& layout, const std::string& configured);

// --- lists (names only here; mlist.h owns their content) ---
std::vector<LocalPart> list_list_names(const Layout& layout, const Domain& domain);
// Throws Error(exists) when `name` is taken by an account or list in `domain`.
void ensure_name_free(const Layout& layout, const Domain& domain, const LocalPart& name);

// Names of valid entries in a spool directory: skips dot files (temp/leftover), anything
// that fails re-validation (a name read back from disk is not trusted) and anything that
// is not a real directory (a planted symlink, a stray file).
std::vector<LocalPart> read_name_dir(const fs::path& dir);

} // namespace spool
