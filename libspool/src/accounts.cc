// accounts.cc — atomic creation/deletion of domain and account directories.
#include "spool/accounts.h"

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/lock.h"
#include "spool/maildir.h"
#include "spool/units.h"

#include "domain_usage.h"
#include "spool_dirs.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>

namespace spool {
namespace {

using detail::is_directory_nofollow;
using detail::make_dir;
using detail::publish_dir;
using detail::remove_tree_atomically;
using detail::require_domain;
using detail::sweep_leftovers;
using detail::sweep_temp_files;

void require_account(const Layout& layout, const Address& address) {
  require_domain(layout, address.domain());
  layout.verify_no_symlinks(layout.account_config(address));
  if (!is_directory_nofollow(layout.account_dir(address)))
    throw Error(Errc::no_account, "no such account: " + address.str());
}

} // namespace

std::vector<LocalPart> read_name_dir(const fs::path& dir) {
  std::vector<LocalPart> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    throw_errno("cannot list", dir, errno);
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    if (local_part_problem(name)) continue;
    // Accounts and lists are directories: a symlink planted under a valid name (or a
    // stray file) is not one, as list_domains() already ignores them.
    if (e->d_type != DT_DIR && (e->d_type != DT_UNKNOWN || !is_directory_nofollow(dir / name))) continue;
    out.push_back(LocalPart::parse(name));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// --- domains ---

bool domain_exists(const Layout& layout, const Domain& domain) {
  return is_directory_nofollow(layout.domain_dir(domain));
}

bool add_domain(const Layout& layout, const Domain& domain, const DomainConfig& initial, bool exist_ok) {
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.spool_lock());
  layout.verify_no_symlinks(layout.domain_dir(domain));
  if (domain_exists(layout, domain)) {
    if (exist_ok) return false;
    throw Error(Errc::exists, "domain " + domain.str() + " already exists");
  }
  sweep_leftovers(layout.domains_dir());
  const fs::path built = layout.domains_dir() / (".new-" + domain.str() + unique_suffix());
  make_dir(built);
  try {
    make_dir(built / "accounts");
    make_dir(built / "lists");
    DomainConfig c = initial;
    if (c.created.empty()) c.created = now_utc();
    save_domain_config(built / "domain.yaml", c);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(built, ec);
    throw;
  }
  publish_dir(built, layout.domain_dir(domain), "domain " + domain.str());
  return true;
}

void delete_domain(const Layout& layout, const Domain& domain, bool force) {
  require_domain(layout, domain); // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock spool_lock = FileLock::acquire(layout.spool_lock());
  FileLock domain_lock = FileLock::acquire(layout.domain_lock(domain));
  require_domain(layout, domain);
  if (!force) {
    for (const LocalPart& name : list_accounts(layout, domain)) {
      Address a(name, domain);
      if (maildir_holds_mail(layout.maildir(a)))
        throw Error(Errc::other, "domain " + domain.str() + " still holds mail (account " + a.str() +
                                     "); use --force to delete it with its mail");
    }
    for (const LocalPart& name : list_list_names(layout, domain)) {
      Address l(name, domain);
      if (maildir_holds_mail(layout.list_archive(l)))
        throw Error(Errc::other, "domain " + domain.str() + " still holds mail (list archive " + l.str() +
                                     "); use --force to delete it with its mail");
    }
  }
  remove_tree_atomically(layout.domain_dir(domain));
}

std::vector<Domain> list_domains(const Layout& layout) {
  std::vector<Domain> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(layout.domains_dir(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    try {
      Domain d = Domain::parse(name);
      if (d.str() == name && entry.is_directory() && !entry.is_symlink()) out.push_back(d);
    } catch (const Error&) {
      // not a name we would have created: ignore it, as Postfix ignores foreign queue files
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// The domain's directory by one walk from the root; Error(no_domain) when missing.
DirFd find_domain_dir(const Layout& layout, const Domain& domain) {
  DirFd dir = layout.find_dir(layout.domain_dir(domain));
  if (!dir) throw Error(Errc::no_domain, "no such domain: " + domain.str());
  return dir;
}

} // namespace

DomainConfig read_domain(const Layout& layout, const Domain& domain) {
  const DirFd dir = find_domain_dir(layout, domain);
  return load_domain_config_at(dir.get(), layout.domain_config(domain));
}

void update_domain(const Layout& layout, const Domain& domain, const std::function<void(DomainConfig&)>& change) {
  require_domain(layout, domain); // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.domain_lock(domain));
  DomainConfig c = read_domain(layout, domain);
  change(c);
  sweep_temp_files(layout.domain_config(domain));
  save_domain_config(layout.domain_config(domain), c);
}

// --- accounts ---

bool account_exists(const Layout& layout, const Address& address) {
  return is_directory_nofollow(layout.account_dir(address));
}

void ensure_name_free(const Layout& layout, const Domain& domain, const LocalPart& name) {
  Address a(name, domain);
  if (is_directory_nofollow(layout.list_dir(a)))
    throw Error(Errc::exists, "the name " + name.str() + " is used by the mailing list " + a.str());
  if (is_directory_nofollow(layout.account_dir(a)))
    throw Error(Errc::exists, "account " + a.str() + " already exists");
}

bool add_account(const Layout& layout, const Address& address, const AccountConfig& initial, bool exist_ok) {
  require_domain(layout, address.domain()); // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.domain_lock(address.domain()));
  require_domain(layout, address.domain());
  layout.verify_no_symlinks(layout.account_dir(address));
  if (account_exists(layout, address)) {
    if (exist_ok) return false;
    throw Error(Errc::exists, "account " + address.str() + " already exists");
  }
  ensure_name_free(layout, address.domain(), address.local());
  const fs::path accounts = layout.accounts_dir(address.domain());
  sweep_leftovers(accounts);
  const fs::path built = accounts / (".new-" + address.local().str() + unique_suffix());
  make_dir(built);
  try {
    AccountConfig c = initial;
    if (c.created.empty()) c.created = now_utc();
    save_account_config(built / "account.yaml", c);
    create_maildir(built / "Maildir", c.quota);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(built, ec);
    throw;
  }
  publish_dir(built, layout.account_dir(address), "account " + address.str());
  return true;
}

void delete_account(const Layout& layout, const Address& address, bool force) {
  require_domain(layout, address.domain()); // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.domain_lock(address.domain()));
  require_account(layout, address);
  if (!force && maildir_holds_mail(layout.maildir(address)))
    throw Error(Errc::other, "account " + address.str() + " still holds mail; use --force to delete it with its mail");
  remove_tree_atomically(layout.account_dir(address));
  detail::drop_domain_usage(layout, address.domain());  // its mail left the domain unrecorded
}

std::vector<LocalPart> list_accounts(const Layout& layout, const Domain& domain) {
  require_domain(layout, domain);
  return read_name_dir(layout.accounts_dir(domain));
}

namespace {

// Walked from the open domain directory: Error(no_account) when missing.
DirFd find_account_dir(const Layout& layout, const DirFd& domain, const Address& address) {
  DirFd dir = layout.find_dir(domain, layout.domain_dir(address.domain()), layout.account_dir(address));
  if (!dir) throw Error(Errc::no_account, "no such account: " + address.str());
  return dir;
}

} // namespace

AccountConfig read_account(const Layout& layout, const Address& address) {
  // Walked once to the domain and from there to the account: no_domain before no_account.
  const DirFd domain = find_domain_dir(layout, address.domain());
  const DirFd account = find_account_dir(layout, domain, address);
  return load_account_config_at(account.get(), layout.account_config(address));
}

AccountView view_account(const Layout& layout, const Address& address) {
  AccountView v;
  v.domain_dir = find_domain_dir(layout, address.domain());
  v.domain = load_domain_config_at(v.domain_dir.get(), layout.domain_config(address.domain()));
  v.account_dir = find_account_dir(layout, v.domain_dir, address);
  v.account = load_account_config_at(v.account_dir.get(), layout.account_config(address));
  return v;
}

void update_account(const Layout& layout, const Address& address, const std::function<void(AccountConfig&)>& change) {
  require_domain(layout, address.domain()); // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.domain_lock(address.domain()));
  AccountConfig c = read_account(layout, address);
  change(c);
  sweep_temp_files(layout.account_config(address));
  save_account_config(layout.account_config(address), c);
}

std::vector<LocalPart> list_list_names(const Layout& layout, const Domain& domain) {
  return read_name_dir(layout.lists_dir(domain));
}

std::optional<Address> account_for_address(const Layout& layout, std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  try {
    const Domain domain = Domain::parse(address.substr(at + 1));
    if (!domain_exists(layout, domain)) return std::nullopt;
    std::string_view local = address.substr(0, at);
    local = local.substr(0, local.find('+'));
    const Address a(LocalPart::parse(local), domain);
    if (account_exists(layout, a)) return a;
  } catch (const Error&) {
  }
  return std::nullopt;
}


// --- postmaster ---------------------------------------------------------------------

namespace {

// A configured postmaster address (already checked by the config loader to be a plain
// local@domain): an account of ours, someone outside, or — hosted domain, no such
// account — nothing we could deliver to.
std::optional<PostmasterRoute> configured_route(const Layout& layout, const std::string& configured,
                                                const std::string& source) {
  PostmasterRoute r;
  r.source = source;
  if (auto account = account_for_address(layout, configured)) {
    r.kind = PostmasterRoute::Kind::account;
    r.address = account->str();
    return r;
  }
  try {
    if (domain_exists(layout, Domain::parse(configured.substr(configured.rfind('@') + 1)))) return std::nullopt;
  } catch (const Error&) {
    return std::nullopt;  // not a domain name we could send to either
  }
  r.kind = PostmasterRoute::Kind::remote;
  r.address = configured;
  return r;
}

PostmasterRoute server_mailbox(std::string source) {
  PostmasterRoute r;
  r.source = std::move(source);
  return r;
}

} // namespace

bool is_postmaster(std::string_view local_part) {
  constexpr std::string_view name = "postmaster";
  return local_part.size() == name.size() &&
         std::equal(name.begin(), name.end(), local_part.begin(),
                    [](char n, char c) { return n == (c >= 'A' && c <= 'Z' ? c + 32 : c); });
}

std::string PostmasterRoute::describe() const {
  switch (kind) {
  case Kind::account: return "account " + address + " (" + source + ")";
  case Kind::remote: return "queued for " + address + " (" + source + ")";
  case Kind::server_mailbox: break;
  }
  return "server mailbox SPOOL/postmaster/Maildir (" + source + ")";
}

PostmasterRoute postmaster_route(const Layout& layout, const Domain& domain) {
  const Address own(LocalPart::parse("postmaster"), domain);
  if (account_exists(layout, own)) return {PostmasterRoute::Kind::account, own.str(), "account"};
  const DomainConfig config = read_domain(layout, domain);
  if (!config.postmaster.empty())
    if (auto r = configured_route(layout, config.postmaster, "domain.yaml")) return *r;
  // A configured address at a hosted domain without that account: still "domain.yaml",
  // so the admin sees which setting did not lead anywhere.
  return server_mailbox(config.postmaster.empty() ? "default" : "domain.yaml");
}

PostmasterRoute bare_postmaster_route(const Layout& layout, const std::string& configured) {
  if (!configured.empty())
    if (auto r = configured_route(layout, configured, "mailhost.yaml")) return *r;
  return server_mailbox(configured.empty() ? "default" : "mailhost.yaml");
}

} // namespace spool
