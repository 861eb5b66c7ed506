// file_io.cc — buffered tmp-file writes and streamed copies for delivery and the queue.
#include "file_io.h"

#include "spool/atomic_file.h"
#include "spool/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace spool::detail {

void buffered_write(int fd, std::string& buffer, std::string_view bytes, const std::filesystem::path& for_errors) {
  if (buffer.size() + bytes.size() < write_buffer_size) {
    buffer.append(bytes);
    return;
  }
  flush_buffer(fd, buffer, for_errors);
  if (bytes.size() >= write_buffer_size)
    write_all(fd, bytes, for_errors);
  else
    buffer.append(bytes);
}

void flush_buffer(int fd, std::string& buffer, const std::filesystem::path& for_errors) {
  write_all(fd, buffer, for_errors);
  buffer.clear();
}

void fsync_or_throw(int fd, const std::filesystem::path& for_errors) {
  if (::fsync(fd) != 0) throw_errno("cannot fsync", for_errors, errno);
}

void copy_contents(int in, const std::filesystem::path& source, int out, const std::filesystem::path& target) {
  char buf[write_buffer_size];
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read", source, errno);
    if (n == 0) return;
    write_all(out, std::string_view(buf, static_cast<std::size_t>(n)), target);
  }
}

Fd open_regular_for_reading(const std::filesystem::path& file, struct stat& st, std::optional<Errc> not_regular) {
  return open_regular_for_reading_at(AT_FDCWD, file.c_str(), file, st, not_regular);
}

Fd open_regular_for_reading_at(int dir, const char* name, const std::filesystem::path& file, struct stat& st,
                               std::optional<Errc> not_regular) {
  Fd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return fd;
    if (errno == ELOOP) throw Error::planted("refusing to read symlink " + file.string());
    throw_errno("cannot open", file, errno);
  }
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", file, errno);
  if (!S_ISREG(st.st_mode)) {
    const std::string msg = "refusing to read " + file.string() + ": not a regular file";
    throw not_regular ? Error(*not_regular, msg) : Error::planted(msg);
  }
  return fd;
}

Fd open_regular_or_skip(const std::filesystem::path& file, struct stat& st) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT || errno == ELOOP) return fd;
    throw_errno("cannot open", file, errno);
  }
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", file, errno);
  return S_ISREG(st.st_mode) ? std::move(fd) : Fd();
}

std::string read_at_most(int fd, std::size_t limit, const std::filesystem::path& for_errors) {
  std::string text;
  char buf[4096];
  while (text.size() <= limit) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit + 1 - text.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", for_errors, errno);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

} // namespace spool::detail
