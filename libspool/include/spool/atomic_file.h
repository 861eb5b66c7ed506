// atomic_file.h — whole-file reads and crash-safe replacement of small spool files.
// write_file_atomic() follows the qmail/chasquid recipe: write a temp file in the same
// directory, check every write, fsync, rename over the target, fsync the directory.
// A crash leaves either the old or the new content, never a mix; a leftover temp file
// (dot-prefixed, never a valid name) is ignored by every reader.
// Refuses to write through a symlink at the target. Errors are spool::Error.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace spool {

void write_file_atomic(const std::filesystem::path& path, std::string_view content, mode_t mode = 0640);

// Which content a path held when it was read: spool files are replaced by rename, never
// rewritten in place, so equal identities mean equal content (an edit in place changes
// size or times).
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  long long mtime_ns = 0;
  long long ctime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

// Reads the whole file (no partial reads: loops until EOF). nullopt when it does not exist.
// `identity`, when given, receives the identity of the file that was read.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path, FileIdentity* identity = nullptr);
std::string read_file(const std::filesystem::path& path, FileIdentity* identity = nullptr);

// fsync() a directory so a rename/link/unlink inside it is durable.
void fsync_directory(const std::filesystem::path& dir);

// Writes all of `data` to fd, retrying short writes and EINTR; throws on failure.
void write_all(int fd, std::string_view data, const std::filesystem::path& for_errors);

// A process-unique suffix for temp names: ".<pid>.<counter>.<random>".
std::string unique_suffix();

} // namespace spool
