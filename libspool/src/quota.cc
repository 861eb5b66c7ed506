// quota.cc — usage from maildirsize files and the quota decision (SPEC §4).
// Nothing here walks message files except the explicit recalc functions; a domain's
// usage is one small read of its usage record (domain_usage.h), whatever its size.
#include "spool/quota.h"

#include "spool/accounts.h"
#include "spool/error.h"
#include "spool/maildir.h"

#include <sys/stat.h>

namespace spool {
namespace {

bool is_real_directory(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A list archive is a Maildir with its own maildirsize; one that was never written to
// (no new/ and no maildirsize) counts as empty and gets no files planted in it.
bool archive_is_maildir(const fs::path& dir) {
  struct stat st;
  return is_real_directory(dir / "new") || ::lstat((dir / "maildirsize").c_str(), &st) == 0;
}

// bytes = 0 asks whether there is any room at all (RCPT time).
bool exceeds(std::uint64_t quota, std::uint64_t used, std::uint64_t bytes) {
  if (quota == 0) return false;
  return bytes == 0 ? used >= quota : used + bytes > quota;
}

// Lists have no account.yaml: only the domain's quota applies to their archives.
QuotaLimits quota_limits(const Layout& layout, const Address& account) {
  QuotaLimits limits;
  limits.domain = read_domain(layout, account.domain()).quota;
  if (account_exists(layout, account)) limits.account = read_account(layout, account).quota;
  return limits;
}

} // namespace

// Maildirs are reached by the spool walk (Layout::open_dir): a symlink on the way, or
// in place of maildirsize, throws instead of being read.
Usage account_usage(const Layout& layout, const Address& account) {
  const Maildir md(layout, layout.maildir(account));
  if (!md.exists()) return {};
  return md.usage();
}

Usage list_archive_usage(const Layout& layout, const Address& list) {
  const Maildir md(layout, layout.list_archive(list));
  if (!md.exists() || !archive_is_maildir(md.path())) return {};
  return md.usage();
}

// domain_usage(): domain_usage.cc, from the domain's usage record.

QuotaVerdict check_quota(const Layout& layout, const Address& account, const QuotaLimits& limits,
                         std::uint64_t bytes) {
  if (limits.domain != 0 && exceeds(limits.domain, domain_usage(layout, account.domain()).bytes, bytes))
    return QuotaVerdict::domain_full;
  if (limits.account != 0 && exceeds(limits.account, account_usage(layout, account).bytes, bytes))
    return QuotaVerdict::account_full;
  return QuotaVerdict::fits;
}

QuotaVerdict check_quota(const Layout& layout, const Address& account, std::uint64_t bytes) {
  return check_quota(layout, account, quota_limits(layout, account), bytes);
}

Usage recalc_account(const Layout& layout, const Address& account) {
  const AccountConfig config = read_account(layout, account); // throws no_account / no_domain
  // The quota line follows account.yaml, the source of truth for the per-account limit.
  return Maildir(layout, layout.maildir(account)).recalc(config.quota);
}

Usage recalc_list_archive(const Layout& layout, const Address& list) {
  Maildir md(layout, layout.list_archive(list));
  if (!md.exists() || !archive_is_maildir(md.path())) return {};
  return md.recalc();
}

void set_domain_quota(const Layout& layout, const Domain& domain, std::uint64_t bytes) {
  update_domain(layout, domain, [bytes](DomainConfig& c) { c.quota = bytes; });
}

} // namespace spool
