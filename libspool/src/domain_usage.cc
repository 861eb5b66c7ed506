// domain_usage.cc — DOMAIN/domainsize: the domain's usage in one small file, kept by every
// maildirsize writer of the domain under its usage lock (domain_usage.h has the rules).
#include "domain_usage.h"

#include "spool/accounts.h"
#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/maildir.h"
#include "file_io.h"
#include "spool_dirs.h"
#include "usage_lines.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace spool {
namespace detail {
namespace {

// Like maildirsize: a planted giant is cut and then rebuilt as unparsable.
constexpr std::size_t record_read_limit = 1 << 20;
// A rebuild retries when a Maildir changed under it in a way it cannot count (an account
// removed between listing and reading); more than this is a busy spool, said as such.
constexpr int rebuild_attempts = 5;

// The record's text; nullopt when it does not exist. Callers hold the usage lock.
std::optional<std::string> read_record(const fs::path& record) {
  struct stat st;
  const Fd fd = open_regular_for_reading(record, st);
  if (fd.get() < 0) return std::nullopt;
  return read_at_most(fd.get(), record_read_limit, record);
}

// What the domain's Maildirs record now; nullopt when one of them has no valid maildirsize
// (it is being rebuilt or removed). Callers hold the usage lock, so no line is added
// meanwhile.
std::optional<Usage> sum_of_maildirs(const Layout& layout, const Domain& domain) {
  Usage total;
  auto add = [&total](const Maildir& md) {
    if (!md.exists()) return true;
    const auto u = md.recorded_usage();
    if (!u) return false;
    total.bytes += u->bytes;
    total.messages += u->messages;
    return true;
  };
  for (const LocalPart& name : list_accounts(layout, domain))
    if (!add(Maildir(layout, layout.maildir(Address(name, domain))))) return std::nullopt;
  for (const LocalPart& name : list_list_names(layout, domain)) {
    const Maildir archive(layout, layout.list_archive(Address(name, domain)));
    // An archive never written to (no new/, no maildirsize) counts as empty.
    if (archive.exists() && (archive.recorded_usage() || is_directory_nofollow(archive.new_dir())) && !add(archive))
      return std::nullopt;
  }
  return total;
}

// Every maildirsize of the domain valid, each rebuilt from its files under its own lock
// if not. Without the usage lock: a Maildir's lock is taken before it, never after.
void validate_maildirs(const Layout& layout, const Domain& domain) {
  for (const LocalPart& name : list_accounts(layout, domain)) (void)account_usage(layout, Address(name, domain));
  for (const LocalPart& name : list_list_names(layout, domain)) (void)list_archive_usage(layout, Address(name, domain));
}

} // namespace

DomainUsageWriter::DomainUsageWriter(const Layout& layout, const Domain& domain)
    : layout_(layout), domain_(domain), lock_(FileLock::acquire(layout.usage_lock(domain))) {}

void DomainUsageWriter::add(std::int64_t bytes, std::int64_t messages) {
  if (bytes == 0 && messages == 0) return;
  const fs::path record = layout_.domain_usage_record(domain_);
  const DirFd dir = layout_.find_dir(layout_.domain_dir(domain_));
  if (!dir) return;
  const Fd fd(::openat(dir.get(), "domainsize", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return;  // not kept (yet): the first reader builds it
    throw_errno("cannot append to", record, errno);
  }
  const std::string line = usage_line(bytes, messages);
  write_all(fd.get(), line, record);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || static_cast<std::uintmax_t>(st.st_size) <= maildirsize_max_bytes) return;
  // Maildir++'s bound, for the same reason: every quota check reads the whole file.
  const auto text = read_record(record);
  const auto sum = text ? sum_usage_lines(*text) : std::nullopt;
  if (!sum) {
    drop();
    return;
  }
  write_file_atomic(record, usage_line(*sum), 0600);
}

void DomainUsageWriter::drop() {
  const fs::path record = layout_.domain_usage_record(domain_);
  if (::unlink(record.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", record, errno);
}

void drop_domain_usage(const Layout& layout, const Domain& domain) { DomainUsageWriter(layout, domain).drop(); }

Usage rebuild_domain_usage(const Layout& layout, const Domain& domain) {
  for (int attempt = 0; attempt < rebuild_attempts; ++attempt) {
    validate_maildirs(layout, domain);
    const DomainUsageWriter writer(layout, domain);
    const auto sum = sum_of_maildirs(layout, domain);
    if (!sum) continue;
    write_file_atomic(layout.domain_usage_record(domain), usage_line(*sum), 0600);
    return *sum;
  }
  throw Error(Errc::busy, "cannot add up the usage of " + domain.str() +
                              ": its mailboxes kept changing; try again (mh-quota recalc " + domain.str() + ")");
}

} // namespace detail

Usage domain_usage(const Layout& layout, const Domain& domain) {
  {
    const detail::DomainUsageWriter reading(layout, domain);  // no half-appended line
    if (const auto text = detail::read_record(layout.domain_usage_record(domain)))
      if (const auto sum = detail::sum_usage_lines(*text)) return *sum;
  }
  return detail::rebuild_domain_usage(layout, domain);
}

Usage recalc_domain_usage(const Layout& layout, const Domain& domain) {
  return detail::rebuild_domain_usage(layout, domain);
}

} // namespace spool
