// layout.cc — spool root resolution and the symlink guard.
#include "spool/layout.h"

#include "spool/error.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

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

Layout::Layout(fs::path root) : root_(std::move(root)) {}

void Layout::verify_no_symlinks(const fs::path& p) const {
  fs::path rel = p.lexically_relative(root_);
  if (rel.empty() || *rel.begin() == "..")
    throw Error(Errc::permission, "path " + p.string() + " is outside the spool " + root_.string());
  fs::path cur = root_;
  for (const auto& part : rel) {
    cur /= part;
    struct stat st;
    if (::lstat(cur.c_str(), &st) != 0) {
      if (errno == ENOENT) return;
      throw_errno("cannot inspect", cur, errno);
    }
    if (S_ISLNK(st.st_mode))
      throw Error(Errc::permission, "refusing to follow symlink planted in the spool: " + cur.string());
  }
}

void Layout::ensure_skeleton() const {
  for (const fs::path& d : {root_, domains_dir(), queue_dir(), run_dir(), locks_dir(), tls_dir()}) {
    if (::mkdir(d.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create directory", d, errno);
  }
  verify_no_symlinks(locks_dir());
}

} // namespace spool
