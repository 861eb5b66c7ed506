// tmp_file.cc — create, buffered write, fsync, copy and discard of a spool tmp/ file,
// every step relative to the open tmp/ directory.
#include "spool/tmp_file.h"

#include "spool/error.h"
#include "file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace spool {

TmpFile TmpFile::create(DirFd dir, fs::path dir_path, std::string name) {
  TmpFile f;
  f.fd_ = ::openat(dir.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (f.fd_ < 0) throw_errno("cannot create", dir_path / name, errno);
  f.dir_ = std::move(dir);
  f.path_ = std::move(dir_path) / name;
  f.name_ = std::move(name);
  f.buffer_.reserve(detail::write_buffer_size);
  return f;
}

TmpFile TmpFile::copy_of(const fs::path& source, DirFd dir, fs::path dir_path, std::string name) {
  const detail::Fd in(::open(source.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) throw_errno("cannot open", source, errno);
  TmpFile f = create(std::move(dir), std::move(dir_path), std::move(name));
  try {
    detail::copy_contents(in.get(), source, f.fd_, f.path());
    struct stat st;
    if (::fstat(f.fd_, &st) == 0) f.size_ = static_cast<std::uint64_t>(st.st_size);
    f.sync();
  } catch (...) {
    f.discard();
    throw;
  }
  return f;
}

TmpFile::TmpFile(TmpFile&& o) noexcept
    : dir_(std::move(o.dir_)), path_(std::move(o.path_)), name_(std::move(o.name_)),
      buffer_(std::move(o.buffer_)), size_(o.size_), fd_(o.fd_) {
  o.fd_ = -1;
  o.name_.clear();
}

TmpFile& TmpFile::operator=(TmpFile&& o) noexcept {
  if (this != &o) {
    discard();
    dir_ = std::move(o.dir_);
    path_ = std::move(o.path_);
    name_ = std::move(o.name_);
    buffer_ = std::move(o.buffer_);
    size_ = o.size_;
    fd_ = o.fd_;
    o.fd_ = -1;
    o.name_.clear();
  }
  return *this;
}

void TmpFile::append(std::string_view bytes) {
  if (fd_ < 0) throw Error(Errc::other, "file is no longer open for writing: " + path().string());
  size_ += bytes.size();
  try {
    detail::buffered_write(fd_, buffer_, bytes, path());
  } catch (...) {
    discard();  // disk full: nothing may stay behind in tmp/
    throw;
  }
}

void TmpFile::flush() {
  if (fd_ < 0) throw Error(Errc::other, "file was discarded: " + path().string());
  try {
    detail::flush_buffer(fd_, buffer_, path());
  } catch (...) {
    discard();
    throw;
  }
}

void TmpFile::sync() {
  flush();
  try {
    detail::fsync_or_throw(fd_, path());
  } catch (...) {
    discard();
    throw;
  }
}

void TmpFile::close() {
  const int fd = fd_;
  fd_ = -1;
  if (fd >= 0 && ::close(fd) != 0) {
    const int err = errno;
    discard();
    throw_errno("cannot close", path(), err);  // NFS reports write errors here
  }
}

int TmpFile::open_for_reading() {
  if (!named()) throw Error(Errc::other, "message was discarded");
  if (fd_ >= 0) flush();
  const int fd = ::openat(dir_.get(), name_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open", path(), errno);
  return fd;
}

void TmpFile::unlink() noexcept {
  if (named()) ::unlinkat(dir_.get(), name_.c_str(), 0);
  name_.clear();
}

void TmpFile::discard() noexcept {
  unlink();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

int TmpFile::release_fd() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

} // namespace spool
