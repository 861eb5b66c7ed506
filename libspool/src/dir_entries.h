// dir_entries.h — libspool-internal: one directory's entries with their d_type, read
// with readdir (no stat per entry), for listing Maildirs and the queue; by path or
// relative to an open directory fd.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace spool::detail {

struct DirEntry {
  std::string name;
  unsigned char type;  // DT_REG, DT_DIR, … or DT_UNKNOWN (then the caller lstat()s)
  std::uint64_t inode = 0;
};

// "." and ".." are never listed; other dot files only when asked. A missing directory
// is empty; any other error throws spool::Error naming the directory.
std::vector<DirEntry> read_entries(const std::filesystem::path& dir, bool with_dot_files = false);
// The same for an open directory (the spool walk's fds); dirfd -1 = missing = empty. The
// fd is not consumed: the listing reads through a fresh openat(dirfd, ".").
std::vector<DirEntry> read_entries_at(int dirfd, const std::filesystem::path& for_errors,
                                      bool with_dot_files = false);

} // namespace spool::detail
