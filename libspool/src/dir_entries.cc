// dir_entries.cc — readdir() into a vector, errors as spool::Error.
#include "dir_entries.h"

#include "spool/error.h"

#include <dirent.h>

#include <cerrno>
#include <string_view>

namespace spool::detail {

std::vector<DirEntry> read_entries(const std::filesystem::path& dir, bool with_dot_files) {
  std::vector<DirEntry> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    throw_errno("cannot read directory", dir, errno);
  }
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    if (n[0] == '.' && !with_dot_files) continue;
    out.push_back({std::string(n), e->d_type, static_cast<std::uint64_t>(e->d_ino)});
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) throw_errno("cannot read directory", dir, err);
  return out;
}

} // namespace spool::detail
