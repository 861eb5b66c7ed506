// mapped_file.h — a read-only mapping of a whole file given as a descriptor (owned and
// closed here): the content check reads a message of up to limits.message_size without
// copying it, and the cleaned copy is written from the same mapping.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mh::content {

class MappedFile {
public:
  explicit MappedFile(int fd) : fd_(fd) {
    struct stat st;
    if (::fstat(fd_, &st) != 0) fail("fstat");
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) fail("mmap");
    data_ = static_cast<const char*>(p);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
    ::close(fd_);
  }
  std::string_view bytes() const noexcept { return {data_ ? data_ : "", size_}; }

private:
  [[noreturn]] void fail(const char* what) {
    const int e = errno;
    ::close(fd_);
    throw std::runtime_error(std::string("cannot map the message (") + what + "): " + std::strerror(e));
  }
  int fd_;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

} // namespace mh::content
