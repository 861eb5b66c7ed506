// lock.h — advisory whole-file locks (flock) on files under SPOOL/run/locks.
// Config files are replaced by rename, so the lock lives in a separate, never-replaced
// file. flock locks belong to the open file description: they are released when the
// process dies (kill -9 included), so a crashed tool never leaves the spool locked.
// Acquisition waits up to a timeout, then throws Error(busy) (exit 75).
#pragma once

#include <chrono>
#include <filesystem>

namespace spool {

// $MH_LOCK_TIMEOUT (seconds, may be fractional) or 10 s.
std::chrono::milliseconds default_lock_timeout();

class FileLock {
public:
  enum class Mode { shared, exclusive };

  static FileLock acquire(const std::filesystem::path& lock_file, Mode mode = Mode::exclusive,
                          std::chrono::milliseconds timeout = default_lock_timeout());
  // Returns an unlocked FileLock (holds() == false) instead of waiting.
  static FileLock try_acquire(const std::filesystem::path& lock_file, Mode mode = Mode::exclusive);

  FileLock() = default;
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  bool holds() const noexcept { return fd_ >= 0; }
  void release() noexcept;

private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

} // namespace spool
