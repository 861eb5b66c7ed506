// atomic_file.cc — temp + fsync + rename + directory fsync.
#include "spool/atomic_file.h"

#include "spool/error.h"

#include "file_io.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

namespace spool {
namespace {

using detail::Fd;

} // namespace

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  unsigned rnd = 0;
  if (::getrandom(&rnd, sizeof rnd, 0) != sizeof rnd) rnd = static_cast<unsigned>(::getpid());
  char buf[64];
  std::snprintf(buf, sizeof buf, ".%d.%u.%08x", static_cast<int>(::getpid()), counter.fetch_add(1), rnd);
  return buf;
}

void write_all(int fd, std::string_view data, const std::filesystem::path& for_errors) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", for_errors, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void fsync_directory(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) throw_errno("cannot fsync directory", dir, errno);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content, mode_t mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error::planted("refusing to replace " + path.string() + ": not a regular file");

  const std::filesystem::path dir = path.parent_path();
  const std::filesystem::path tmp = dir / ("." + path.filename().string() + ".tmp" + unique_suffix());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) throw_errno("cannot create", tmp, errno);
  try {
    write_all(fd.get(), content, tmp);
    if (::fsync(fd.get()) != 0) throw_errno("cannot fsync", tmp, errno);
    if (::close(fd.release()) != 0) throw_errno("cannot close", tmp, errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot rename into place", path, errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  fsync_directory(dir);
}

std::optional<std::string> read_file_if_exists(const std::filesystem::path& path, FileIdentity* identity) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    if (errno == ELOOP) throw Error::planted("refusing to read symlink " + path.string());
    throw_errno("cannot open", path, errno);
  }
  if (identity) {
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat", path, errno);
    *identity = FileIdentity{st.st_dev, st.st_ino, st.st_size,
                             st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                             st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string read_file(const std::filesystem::path& path, FileIdentity* identity) {
  auto content = read_file_if_exists(path, identity);
  if (!content) throw_errno("cannot open", path, ENOENT);
  return *content;
}

} // namespace spool
