// file_io.cc — buffered tmp-file writes and streamed copies for delivery and the queue.
#include "file_io.h"

#include "spool/atomic_file.h"
#include "spool/error.h"

#include <unistd.h>

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

} // namespace spool::detail
