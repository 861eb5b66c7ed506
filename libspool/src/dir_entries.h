// dir_entries.h — libspool-internal: one directory's entries with their d_type, read
// with readdir (no stat per entry), for listing Maildirs and the queue.
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

} // namespace spool::detail
