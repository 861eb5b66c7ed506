// dir_entries.cc — readdir() into a vector, errors as spool::Error.
#include "dir_entries.h"

#include "spool/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace spool::detail {

namespace {

// Reads and closes `d`; "." and ".." are skipped, dot files unless asked for.
std::vector<DirEntry> drain(DIR* d, const std::filesystem::path& dir, bool with_dot_files) {
  std::vector<DirEntry> out;
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

} // namespace

std::vector<DirEntry> read_entries(const std::filesystem::path& dir, bool with_dot_files) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return {};
    throw_errno("cannot read directory", dir, errno);
  }
  return drain(d, dir, with_dot_files);
}

std::vector<DirEntry> read_entries_at(int dirfd, const std::filesystem::path& for_errors, bool with_dot_files) {
  if (dirfd < 0) return {};
  // A new open file description: readdir's position is never shared with another user
  // of dirfd (copies of one Maildir, several threads).
  const int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot read directory", for_errors, errno);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    const int err = errno;
    ::close(fd);
    throw_errno("cannot read directory", for_errors, err);
  }
  return drain(d, for_errors, with_dot_files);
}

} // namespace spool::detail
