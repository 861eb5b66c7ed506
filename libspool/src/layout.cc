// layout.cc — spool root resolution and the symlink-free walk from the root's fd.
#include "spool/layout.h"

#include "spool/error.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <vector>

namespace spool {

fs::path resolve_spool_root(const std::optional<std::string>& from_command_line) {
  std::string root;
  if (from_command_line && !from_command_line->empty()) {
    root = *from_command_line;
  } else if (const char* env = std::getenv("MH_SPOOL"); env && *env) {
    root = env;
  } else {
    root = default_spool_root;
  }
  if (root.find('\0') != std::string::npos) throw Error(Errc::usage, "spool path contains NUL");
  return fs::absolute(fs::path(root)).lexically_normal();
}

DirFd& DirFd::operator=(DirFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

DirFd::~DirFd() {
  if (fd_ >= 0) ::close(fd_);
}

void throw_planted(const fs::path& where) {
  throw Error::planted("refusing to follow symlink planted in the spool: " + where.string());
}

namespace {

// Fallback for kernels (or seccomp filters) without openat2: the same walk one component
// at a time, each opened with O_NOFOLLOW relative to the previous one.
int open_beneath_by_components(int root, const fs::path& rel, int flags) {
  DirFd dir;
  int at = root;
  auto it = rel.begin();
  for (auto next = std::next(it); next != rel.end(); it = next, ++next) {
    dir = DirFd(::openat(at, it->c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return -1;
    at = dir.get();
  }
  return ::openat(at, it->c_str(), flags | O_NOFOLLOW);
}

// open(root/rel) where no component below the root may be a symlink (RESOLVE_NO_SYMLINKS
// also refuses a trailing one) nor lead out of it (RESOLVE_BENEATH). -1 with errno set:
// ELOOP for a symlink on the way, ENOTDIR for a file where a directory belongs.
int open_beneath(int root, const fs::path& rel, int flags) {
  struct open_how how = {};
  how.flags = static_cast<std::uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  const long fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return static_cast<int>(fd);
  return open_beneath_by_components(root, rel, flags);
}

} // namespace

struct Layout::RootFd {
  std::mutex mutex;
  int fd = -1;
  ~RootFd() {
    if (fd >= 0) ::close(fd);
  }
};

Layout::Layout(fs::path root) : root_(std::move(root)), root_fd_(std::make_shared<RootFd>()) {}

int Layout::root_fd() const {
  std::lock_guard guard(root_fd_->mutex);
  if (root_fd_->fd < 0) {
    // The root itself may be a symlink (e.g. /var/spool/mailhost → /srv/mail): followed.
    root_fd_->fd = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_->fd < 0 && errno != ENOENT) throw_errno("cannot open spool", root_, errno);
  }
  return root_fd_->fd;
}

namespace {

// `p` below `root` as a relative path ("." for the root itself); Error when outside.
fs::path relative_to_root(const fs::path& p, const fs::path& root) {
  fs::path rel = p.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..")
    throw Error(Errc::permission, "path " + p.string() + " is outside the spool " + root.string());
  return rel;
}

// Only on the error path: names the first component of root/rel that is a symlink (or
// not a directory where one belongs), so the refusal and the log say which one.
[[noreturn]] void explain_walk_failure(const fs::path& root, const fs::path& rel, int err) {
  fs::path cur = root;
  for (const auto& part : rel) {
    cur /= part;
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0) break;
    if (S_ISLNK(st.st_mode)) throw_planted(cur);
    if (!S_ISDIR(st.st_mode) && cur != root / rel) throw_errno("cannot open directory", cur, ENOTDIR);
  }
  if (err == ELOOP) throw_planted(root / rel);  // replaced meanwhile: still refused
  throw_errno("cannot open", root / rel, err);
}

} // namespace

void Layout::verify_no_symlinks(const fs::path& p) const {
  const fs::path rel = relative_to_root(p, root_);
  const int root = root_fd();
  if (root < 0) return;  // no spool yet: nothing below it can be a symlink
  const int fd = open_beneath(root, rel, O_PATH | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  if (errno == ENOENT) return;
  explain_walk_failure(root_, rel, errno);
}

DirFd Layout::open_dir(const fs::path& p) const {
  const fs::path rel = relative_to_root(p, root_);
  const int root = root_fd();
  if (root < 0) return DirFd();
  DirFd fd(open_beneath(root, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd || errno == ENOENT) return fd;
  explain_walk_failure(root_, rel, errno);
}

namespace {

DirFd find_dir_at(int from, const fs::path& from_path, const fs::path& p) {
  const fs::path rel = relative_to_root(p, from_path);
  DirFd fd(open_beneath(from, rel, O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd || errno == ENOENT || errno == ENOTDIR) return fd;
  explain_walk_failure(from_path, rel, errno);
}

} // namespace

DirFd Layout::find_dir(const fs::path& p) const {
  const int root = root_fd();
  if (root < 0) return DirFd();
  return find_dir_at(root, root_, p);
}

DirFd Layout::find_dir(const DirFd& from, const fs::path& from_path, const fs::path& p) const {
  return find_dir_at(from.get(), from_path, p);
}

std::optional<Domain> Layout::quota_domain_of(const fs::path& maildir) const {
  const fs::path rel = maildir.lexically_relative(domains_dir());
  std::vector<std::string> parts;
  for (const auto& p : rel) parts.push_back(p.string());
  // D/accounts/NAME/Maildir or D/lists/NAME/archive, D as the spool spells it (A-labels).
  if (parts.size() != 4) return std::nullopt;
  const bool account = parts[1] == "accounts" && parts[3] == "Maildir";
  const bool archive = parts[1] == "lists" && parts[3] == "archive";
  if (!account && !archive) return std::nullopt;
  try {
    Domain d = Domain::parse(parts[0]);
    if (d.str() != parts[0]) return std::nullopt;
    return d;
  } catch (const Error&) {
    return std::nullopt;
  }
}

void Layout::ensure_skeleton() const {
  for (const fs::path& d : {root_, domains_dir(), queue_dir(), run_dir(), locks_dir(), tls_dir()}) {
    if (::mkdir(d.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create directory", d, errno);
  }
  verify_no_symlinks(locks_dir());
}

} // namespace spool
