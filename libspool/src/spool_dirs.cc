// spool_dirs.cc — building, publishing and removing spool directories (spool_dirs.h).
#include "spool_dirs.h"

#include "spool/atomic_file.h"
#include "spool/error.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

namespace spool::detail {

void make_dir(const fs::path& p, mode_t mode) {
  if (::mkdir(p.c_str(), mode) != 0) throw_errno("cannot create directory", p, errno);
}

bool is_directory_nofollow(const fs::path& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    throw_errno("cannot inspect", p, errno);
  }
  return S_ISDIR(st.st_mode);
}

void require_domain(const Layout& layout, const Domain& domain) {
  layout.verify_no_symlinks(layout.domain_config(domain));
  if (!is_directory_nofollow(layout.domain_dir(domain)))
    throw Error(Errc::no_domain, "no such domain: " + domain.str());
}

void sweep_leftovers(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".new-", 0) == 0 || name.rfind(".deleted-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
}

void sweep_temp_files(const fs::path& file) {
  const std::string prefix = "." + file.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(file.parent_path(), ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) fs::remove(entry.path(), ec);
}

void publish_dir(const fs::path& built, const fs::path& target, const std::string& what) {
  fsync_directory(built);
  if (::rename(built.c_str(), target.c_str()) != 0) {
    int err = errno;
    std::error_code ec;
    fs::remove_all(built, ec);
    if (err == EEXIST || err == ENOTEMPTY) throw Error(Errc::exists, what + " already exists");
    throw_errno("cannot create", target, err);
  }
  fsync_directory(target.parent_path());
}

void remove_tree_atomically(const fs::path& dir) {
  const fs::path parent = dir.parent_path();
  const fs::path doomed = parent / (".deleted-" + dir.filename().string() + unique_suffix());
  if (::rename(dir.c_str(), doomed.c_str()) != 0) throw_errno("cannot remove", dir, errno);
  fsync_directory(parent);
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) throw Error(Errc::other, "cannot remove " + doomed.string() + ": " + ec.message());
}

} // namespace spool::detail
