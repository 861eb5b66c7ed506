// maildir.cc — Maildir listing, reading, removal and the Maildir++ maildirsize file.
// Names read from new/ and cur/ are not trusted: a UIDL is used only when it is 1–70
// printable ASCII characters (RFC 1939 §7), and everything is reached through the
// Maildir's directory fds with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW (SPEC §8, the spool walk).
#include "spool/maildir.h"

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "dir_entries.h"
#include "domain_usage.h"
#include "file_io.h"
#include "usage_lines.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <mutex>

namespace spool {

std::optional<Usage> detail::sum_usage_lines(std::string_view text) {
  std::int64_t bytes = 0, count = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    std::int64_t b = 0, c = 0;
    const char* p = line.data();
    const char* end = line.data() + line.size();
    while (p < end && *p == ' ') ++p;
    auto r1 = std::from_chars(p, end, b);
    if (r1.ec != std::errc()) return std::nullopt;
    p = r1.ptr;
    if (p == end || *p != ' ') return std::nullopt;
    while (p < end && *p == ' ') ++p;
    auto r2 = std::from_chars(p, end, c);
    if (r2.ec != std::errc()) return std::nullopt;
    p = r2.ptr;
    while (p < end && *p == ' ') ++p;
    if (p != end) return std::nullopt;
    bytes += b;
    count += c;
  }
  if (bytes < 0 || count < 0) return std::nullopt;
  return Usage{static_cast<std::uint64_t>(bytes), static_cast<std::uint64_t>(count)};
}

std::string detail::usage_line(std::int64_t bytes, std::int64_t messages) {
  return std::to_string(bytes) + " " + std::to_string(messages) + "\n";
}

namespace {

constexpr std::size_t max_uidl_length = 70;

bool uidl_ok(std::string_view uidl) {
  if (uidl.empty() || uidl.size() > max_uidl_length) return false;
  return std::all_of(uidl.begin(), uidl.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// ",S=<digits>" (or another "<field><digits>") in the part before the ':' info suffix
// (Dovecot/Courier convention: "name,S=123,W=130:2,S").
std::optional<std::uint64_t> number_from_name(std::string_view name, std::string_view field) {
  std::string_view base = name.substr(0, name.find(':'));
  for (std::size_t pos = base.find(field); pos != std::string_view::npos; pos = base.find(field, pos + 1)) {
    std::string_view digits = base.substr(pos + field.size());
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec == std::errc() && end != digits.data() && (end == digits.data() + digits.size() || *end == ','))
      return value;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> size_from_name(std::string_view name) { return number_from_name(name, ",S="); }

// The leading "<secs>." of a qmail-style name.
std::optional<std::int64_t> time_from_name(std::string_view name) {
  std::int64_t secs = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), secs);
  if (ec != std::errc() || end == name.data() || end == name.data() + name.size() || *end != '.') return std::nullopt;
  return secs;
}

using detail::DirEntry;
using detail::read_entries_at;

// A message file that is a symlink (or anything but a regular file) is not a message: it
// is neither listed nor counted, so its target is never served.
// Fills size/delivered from the name, falling back to fstatat() (no follow). False when
// the entry is not a regular file or vanished meanwhile.
bool describe(int dirfd, const DirEntry& e, MessageInfo& m) {
  auto size = size_from_name(e.name);
  auto when = time_from_name(e.name);
  bool regular_known = e.type == DT_REG;
  if (!size || !when || !regular_known) {
    struct stat st;
    if (::fstatat(dirfd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return false;
    if (!size) size = static_cast<std::uint64_t>(st.st_size);
    if (!when) when = st.st_mtime;
  }
  m.size = *size;
  m.delivered = *when;
  // A W= smaller than S= cannot be (CRLF only adds bytes): treat it as unknown.
  const auto wire = number_from_name(e.name, ",W=");
  m.wire_size = wire && *wire >= m.size ? *wire : 0;
  return true;
}

struct ParsedSize {
  std::uint64_t quota = 0;
  Usage usage;
};

// Parses maildirsize; nullopt when it must be rebuilt: a line that is not "<n> <n>\n"
// (e.g. a partial last line), a negative total, or an empty file.
std::optional<ParsedSize> parse_maildirsize(std::string_view text) {
  std::size_t eol = text.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  ParsedSize out;
  std::string_view first = text.substr(0, eol);
  // Maildir++: "<bytes>S[,<count>C]" or empty; only the byte quota is used here.
  if (!first.empty()) {
    auto [end, ec] = std::from_chars(first.data(), first.data() + first.size(), out.quota);
    if (ec != std::errc() || end == first.data() + first.size() || *end != 'S') out.quota = 0;
  }
  text.remove_prefix(eol + 1);
  auto usage = detail::sum_usage_lines(text);
  if (!usage) return std::nullopt;
  out.usage = *usage;
  return out;
}

std::string maildirsize_text(std::uint64_t quota, const Usage& u) {
  return std::to_string(quota) + "S\n" + detail::usage_line(u);
}

// The parsed maildirsize when it exists, is at most maildirsize_max_bytes and valid.
std::optional<ParsedSize> valid_maildirsize(const std::optional<std::string>& text) {
  if (!text || text->size() > maildirsize_max_bytes) return std::nullopt;
  return parse_maildirsize(*text);
}

// maildir.5: a tmp/ file untouched for 36 hours is a leftover of a crashed delivery.
void remove_stale_tmp_files(int tmp, const fs::path& for_errors) {
  const std::time_t now = std::time(nullptr);
  for (const auto& e : read_entries_at(tmp, for_errors)) {
    struct stat st;
    if (::fstatat(tmp, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        now - st.st_mtime > stale_tmp_seconds)
      ::unlinkat(tmp, e.name.c_str(), 0);
  }
}

bool is_symlink_at(int dirfd, const char* name) {
  struct stat st;
  return ::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

// openat(dirfd, name, flags | O_NOFOLLOW); -1 when it does not exist; a symlink in its
// place → throw_planted(path).
int open_nofollow(int dirfd, const char* name, int flags, const fs::path& path) {
  const int fd = ::openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 || errno == ENOENT) return fd;
  const int err = errno;
  if (err == ELOOP || is_symlink_at(dirfd, name)) throw_planted(path);
  throw_errno("cannot open", path, err);
}

// maildirsize is a few KB; a planted giant is cut here and then rebuilt as unparsable.
constexpr std::size_t maildirsize_read_limit = 1 << 20;

} // namespace

// The open directories of one Maildir, shared by its copies. Opened on first use under
// the mutex; a folder that is missing is looked for again next time.
struct Maildir::Dirs {
  std::optional<Layout> layout;  // set: the Maildir itself is found by the spool walk
  std::optional<Domain> quota_domain;  // set: every maildirsize change is mirrored there
  std::mutex mutex;
  DirFd top;
  DirFd folders[3];  // Folder::tmp, fresh (new/), cur
};

std::string_view uidl_of(std::string_view filename) {
  return filename.substr(0, filename.find_first_of(",:"));
}

void create_maildir(const fs::path& dir, std::uint64_t quota_bytes) {
  for (const auto& d : {dir, dir / "tmp", dir / "new", dir / "cur"})
    if (::mkdir(d.c_str(), 0700) != 0) throw_errno("cannot create directory", d, errno);
  write_file_atomic(dir / "maildirsize", maildirsize_text(quota_bytes, {}), 0600);
}

bool maildir_holds_mail(const fs::path& dir) {
  // A symlink in place of new/ or cur/ is not followed: what it points to is not mail here.
  for (const char* sub : {"new", "cur"}) {
    const DirFd d(::open((dir / sub).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d && !read_entries_at(d.get(), dir / sub).empty()) return true;
  }
  return false;
}

Maildir::Maildir(fs::path dir) : dir_(std::move(dir)), dirs_(std::make_shared<Dirs>()) {}

Maildir::Maildir(const Layout& layout, fs::path dir) : Maildir(std::move(dir)) {
  dirs_->layout = layout;
  dirs_->quota_domain = layout.quota_domain_of(dir_);
}

Maildir::Maildir(const Layout& layout, fs::path dir, const DirFd& parent) : Maildir(layout, std::move(dir)) {
  dirs_->top = layout.find_dir(parent, dir_.parent_path(), dir_);
}

fs::path Maildir::folder_path(Folder f) const {
  return f == Folder::tmp ? tmp_dir() : f == Folder::fresh ? new_dir() : cur_dir();
}

int Maildir::top_fd() const {
  std::lock_guard guard(dirs_->mutex);
  if (!dirs_->top) {
    if (dirs_->layout) dirs_->top = dirs_->layout->open_dir(dir_);
    else dirs_->top = DirFd(open_nofollow(AT_FDCWD, dir_.c_str(), O_RDONLY | O_DIRECTORY, dir_));
  }
  return dirs_->top.get();
}

int Maildir::folder_fd(Folder f) const {
  const int top = top_fd();
  if (top < 0) return -1;
  static constexpr const char* names[] = {"tmp", "new", "cur"};
  const auto i = static_cast<std::size_t>(f);
  std::lock_guard guard(dirs_->mutex);
  DirFd& fd = dirs_->folders[i];
  if (!fd) fd = DirFd(open_nofollow(top, names[i], O_RDONLY | O_DIRECTORY, folder_path(f)));
  return fd.get();
}

int Maildir::required_fd(Folder f) const {
  const int fd = folder_fd(f);
  if (fd < 0) throw_errno("cannot open directory", folder_path(f), ENOENT);
  return fd;
}

void Maildir::require_deliverable() const {
  (void)new_fd();
  struct stat st;
  if (::fstatat(top_fd(), "cur", &st, AT_SYMLINK_NOFOLLOW) != 0)
    throw_errno("cannot open directory", cur_dir(), errno);
  if (S_ISLNK(st.st_mode)) throw_planted(cur_dir());
  if (!S_ISDIR(st.st_mode)) throw_errno("cannot open directory", cur_dir(), ENOTDIR);
}

std::optional<std::string> Maildir::read_maildirsize() const {
  const int top = top_fd();
  if (top < 0) return std::nullopt;
  detail::Fd fd(open_nofollow(top, "maildirsize", O_RDONLY | O_NONBLOCK, maildirsize_path()));
  if (fd.get() < 0) return std::nullopt;
  return detail::read_at_most(fd.get(), maildirsize_read_limit, maildirsize_path());
}

FileLock Maildir::writer_lock() const {
  // Relative to the open Maildir: the lock file is the Maildir's own, wherever it is.
  const int top = top_fd();
  if (top < 0) return FileLock::acquire(lock_path(), FileLock::Mode::shared);  // reports the missing Maildir
  return FileLock::acquire_at(top, lock_path(), FileLock::Mode::shared);
}

std::vector<MessageInfo> Maildir::list() const {
  std::vector<MessageInfo> out;
  for (bool in_new : {true, false}) {
    const int dir = folder_fd(in_new ? Folder::fresh : Folder::cur);
    for (const auto& e : read_entries_at(dir, in_new ? new_dir() : cur_dir())) {
      MessageInfo m;
      m.uidl = std::string(uidl_of(e.name));
      if (!uidl_ok(m.uidl)) continue; // see list() in maildir.h
      m.filename = e.name;
      m.in_new = in_new;
      if (describe(dir, e, m)) out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(), [](const MessageInfo& a, const MessageInfo& b) {
    return a.delivered != b.delivered ? a.delivered < b.delivered : a.uidl < b.uidl;
  });
  return out;
}

std::optional<MessageInfo> Maildir::find(std::string_view uidl) const {
  for (bool in_new : {true, false}) {
    const int dir = folder_fd(in_new ? Folder::fresh : Folder::cur);
    for (const auto& e : read_entries_at(dir, in_new ? new_dir() : cur_dir())) {
      if (uidl_of(e.name) != uidl) continue;
      MessageInfo m;
      m.uidl = std::string(uidl);
      m.filename = e.name;
      m.in_new = in_new;
      if (describe(dir, e, m)) return m;
    }
  }
  return std::nullopt;
}

std::optional<int> Maildir::open_message(const MessageInfo& m) const {
  // A reader (mutt, Dovecot, our POP3) may move new/→cur/ or change flags at any time:
  // each rename keeps the UIDL, so look it up again. Bounded against a pathological
  // renamer; losing every race means "gone".
  MessageInfo current = m;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const Folder f = current.in_new ? Folder::fresh : Folder::cur;
    // O_NONBLOCK: a FIFO planted under a message's name must not hang the reader.
    const int fd = open_nofollow(required_fd(f), current.filename.c_str(), O_RDONLY | O_NONBLOCK,
                                 folder_path(f) / current.filename);
    if (fd >= 0) return fd;
    auto again = find(m.uidl);
    if (!again) return std::nullopt;
    current = *again;
  }
  return std::nullopt;
}

std::optional<std::string> Maildir::read_message(const MessageInfo& m) const {
  auto fd = open_message(m);
  if (!fd) return std::nullopt;
  std::string out;
  out.reserve(static_cast<std::size_t>(m.size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(*fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(*fd);
      throw_errno("cannot read message", dir_ / m.filename, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(*fd);
  return out;
}

bool Maildir::remove(const MessageInfo& m) {
  FileLock lock = writer_lock();
  const auto size = unlink_message(m);
  if (!size) return false;
  // Only the process whose unlink succeeded records the removal, so two purges
  // racing for one message subtract it once.
  const bool oversized = record(-static_cast<std::int64_t>(*size), -1);
  lock.release();
  if (oversized) shrink_maildirsize();
  return true;
}

std::vector<Maildir::Removal> Maildir::remove_all(const std::vector<MessageInfo>& messages) {
  std::vector<Removal> result(messages.size(), Removal::gone);
  if (messages.empty()) return result;
  FileLock lock = writer_lock();
  std::int64_t bytes = 0;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    try {
      if (const auto size = unlink_message(messages[i])) {
        bytes += static_cast<std::int64_t>(*size);
        ++count;
        result[i] = Removal::removed;
      }
    } catch (const Error&) {
      result[i] = Removal::failed;
    }
  }
  // One line for the batch, after the unlinks: a crash in between over-counts, never
  // under-counts. Only what this process unlinked is subtracted, as in remove().
  const bool oversized = count > 0 && record(-bytes, -count);
  lock.release();
  if (oversized) shrink_maildirsize();
  return result;
}

std::optional<std::uint64_t> Maildir::unlink_message(const MessageInfo& m) {
  MessageInfo current = m;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const Folder f = current.in_new ? Folder::fresh : Folder::cur;
    if (::unlinkat(required_fd(f), current.filename.c_str(), 0) == 0) return current.size;
    if (errno != ENOENT) throw_errno("cannot remove message", folder_path(f) / current.filename, errno);
    // Moved new/ → cur/ (or flagged) since it was listed: find it again by UIDL.
    auto again = find(m.uidl);
    if (!again) return std::nullopt;
    current = *again;
  }
  return std::nullopt;
}

bool Maildir::record(std::int64_t bytes, std::int64_t messages) {
  if (!dirs_->quota_domain) {
    // Appends from two clients of a network filesystem can tear a line (SPEC §8): one
    // appender at a time, even among writers that share writer_lock().
    const FileLock one_appender = FileLock::acquire(append_lock_path());
    return append_maildirsize(bytes, messages) == Appended::oversized;
  }
  // The domain's lock serializes appends as well, and keeps the two files in step.
  detail::DomainUsageWriter domain(*dirs_->layout, *dirs_->quota_domain);
  Appended appended = Appended::no_file;
  domain.follow(bytes, messages, [&] {
    appended = append_maildirsize(bytes, messages);
    return appended != Appended::no_file;
  });
  return appended == Appended::oversized;
}

Maildir::Appended Maildir::append_maildirsize(std::int64_t bytes, std::int64_t messages) {
  const int top = top_fd();
  if (top < 0) return Appended::no_file;
  // No O_CREAT: a missing file is rebuilt from the files by the next usage().
  const int fd = open_nofollow(top, "maildirsize", O_WRONLY | O_APPEND, maildirsize_path());
  if (fd < 0) return Appended::no_file;
  // One write() of one short line; callers hold a lock no other appender shares.
  const std::string line = detail::usage_line(bytes, messages);
  ssize_t n;
  do n = ::write(fd, line.data(), line.size());
  while (n < 0 && errno == EINTR);
  int err = errno;
  struct stat st;
  const bool oversized = n > 0 && ::fstat(fd, &st) == 0 && static_cast<std::uintmax_t>(st.st_size) > maildirsize_max_bytes;
  ::close(fd);
  if (n < 0) throw_errno("cannot append to", maildirsize_path(), err);
  if (static_cast<std::size_t>(n) != line.size())
    // A short write leaves a partial line; the next usage() sees it and rebuilds.
    throw Error(Errc::other, "short write to " + maildirsize_path().string(), /*temporary=*/true);
  return oversized ? Appended::oversized : Appended::ok;
}

std::optional<Usage> Maildir::recorded_usage() const {
  const auto text = read_maildirsize();
  if (!text) return std::nullopt;
  const auto parsed = parse_maildirsize(*text);
  if (!parsed) return std::nullopt;
  return parsed->usage;
}

std::uint64_t Maildir::quota() const {
  auto text = read_maildirsize();
  if (!text) return 0;
  auto parsed = parse_maildirsize(*text);
  return parsed ? parsed->quota : 0;
}

Usage Maildir::usage() const {
  if (auto parsed = valid_maildirsize(read_maildirsize())) return parsed->usage;
  // Missing, oversized or unparsable: rebuild (Maildir++ lets any reader do it). Several
  // readers may notice at once; the first rebuilds, the others find a valid file.
  FileLock lock = FileLock::acquire(lock_path(), FileLock::Mode::exclusive);
  if (auto parsed = valid_maildirsize(read_maildirsize())) return parsed->usage;
  return rebuild_maildirsize(std::nullopt);
}

Usage Maildir::recalc(std::optional<std::uint64_t> quota_line) {
  FileLock lock = FileLock::acquire(lock_path(), FileLock::Mode::exclusive);
  return rebuild_maildirsize(quota_line);
}

// Caller holds the exclusive lock, so no writer changes files or maildirsize meanwhile.
Usage Maildir::rebuild_maildirsize(std::optional<std::uint64_t> quota_line) const {
  std::uint64_t quota = 0;
  if (auto text = read_maildirsize()) {
    if (auto parsed = parse_maildirsize(*text)) quota = parsed->quota;
  }
  if (quota_line) quota = *quota_line;

  remove_stale_tmp_files(folder_fd(Folder::tmp), tmp_dir());
  Usage total;
  for (const Folder f : {Folder::fresh, Folder::cur}) {
    const int dir = folder_fd(f);
    for (const auto& e : read_entries_at(dir, folder_path(f))) {
      MessageInfo m;
      if (!describe(dir, e, m)) continue;
      total.bytes += m.size;
      total.messages += 1;
    }
  }
  write_recount(quota, total);
  return total;
}

// The new maildirsize, and the difference it makes mirrored in the domain's record.
void Maildir::write_recount(std::uint64_t quota, const Usage& total) const {
  const auto write = [&] {
    write_file_atomic(maildirsize_path(), maildirsize_text(quota, total), 0600);
    return true;
  };
  if (!dirs_->quota_domain) {
    write();
    return;
  }
  detail::DomainUsageWriter domain(*dirs_->layout, *dirs_->quota_domain);
  const auto before = recorded_usage();
  if (!before) domain.drop();  // what the domain counted for it is unknown
  const Usage was = before.value_or(total);
  const auto diff = [](std::uint64_t now, std::uint64_t then) {
    return static_cast<std::int64_t>(now) - static_cast<std::int64_t>(then);
  };
  domain.follow(diff(total.bytes, was.bytes), diff(total.messages, was.messages), write);
}


} // namespace spool
