// file_io.h — libspool-internal: the write path shared by Maildir delivery and the
// outbound queue: buffered appends to a tmp file, fsync with context, and the streamed
// copy used when a hard link would cross file systems.
#pragma once

#include "spool/error.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace spool::detail {

inline constexpr std::size_t write_buffer_size = 64 * 1024;

// Owns one file descriptor (-1 = none); closes it unless released.
class Fd {
public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }

private:
  int fd_;
};

// Opens a small spool file to read it: never through a symlink (Error(other), exit 1
// naming the path: SPEC §8 "The spool walk", Error::planted), never hanging on a planted
// FIFO (O_NONBLOCK), and only a regular file (else Error(`not_regular`), by default
// planted: "refusing to read FILE: not a regular file"). An Fd of -1 when the file does
// not exist. `st` receives its fstat().
Fd open_regular_for_reading(const std::filesystem::path& file, struct stat& st,
                            std::optional<Errc> not_regular = std::nullopt);
// The same for `name` in the open directory `dir` (AT_FDCWD: a path); `file` names it
// in errors.
Fd open_regular_for_reading_at(int dir, const char* name, const std::filesystem::path& file, struct stat& st,
                               std::optional<Errc> not_regular = std::nullopt);
// The same, for a directory entry that is only wanted if it is a real file (an archived
// post): an Fd of -1 for a file that is gone, a symlink or anything not regular.
Fd open_regular_or_skip(const std::filesystem::path& file, struct stat& st);
// Reads from fd until its end, but never more than limit + 1 bytes: a result longer than
// `limit` means "too big", without reading a planted huge file whole.
std::string read_at_most(int fd, std::size_t limit, const std::filesystem::path& for_errors);

// Appends `bytes` to `buffer`, writing the buffer to fd when it would grow past
// write_buffer_size; a piece that large goes straight to fd. Throws spool::Error on a
// failed write (a full disk): the caller then discards the file.
void buffered_write(int fd, std::string& buffer, std::string_view bytes, const std::filesystem::path& for_errors);
// Writes out and empties `buffer`; throws like buffered_write.
void flush_buffer(int fd, std::string& buffer, const std::filesystem::path& for_errors);
void fsync_or_throw(int fd, const std::filesystem::path& for_errors);
// Reads `in` to its end and writes everything to `out` (no fsync). Throws spool::Error.
void copy_contents(int in, const std::filesystem::path& source, int out, const std::filesystem::path& target);

} // namespace spool::detail
