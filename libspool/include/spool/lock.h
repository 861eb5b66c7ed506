// lock.h — advisory whole-file locks (flock) on files under SPOOL/run/locks.
// Config files are replaced by rename, so the lock lives in a separate, never-replaced
// file. flock locks belong to the open file description: they are released when the
// process dies (kill -9 included), so a crashed tool never leaves the spool locked.
// Acquisition waits up to a timeout, then throws Error(busy) (exit 75).
// Exclusive locks are also taken on a gate per lock file inside the process first, so
// the threads of one process (mh-serve's delivery pool racing for a domain's quota lock)
// hand the lock over the moment it is released instead of polling flock; flock still
// orders them against other processes.
#pragma once

#include <chrono>
#include <filesystem>

namespace spool {

class LockGate; // lock.cc: the in-process gate of one lock file

// $MH_LOCK_TIMEOUT (seconds, may be fractional) or 10 s.
std::chrono::milliseconds default_lock_timeout();

class FileLock {
public:
  enum class Mode { shared, exclusive };

  static FileLock acquire(const std::filesystem::path& lock_file, Mode mode = Mode::exclusive,
                          std::chrono::milliseconds timeout = default_lock_timeout());
  // The same for a lock file opened by its name in `dir`, the open directory that holds
  // it (`lock_file` is its path, for the in-process gate and errors): no path walk.
  static FileLock acquire_at(int dir, const std::filesystem::path& lock_file, Mode mode = Mode::exclusive,
                             std::chrono::milliseconds timeout = default_lock_timeout());
  // Returns an unlocked FileLock (holds() == false) instead of waiting.
  static FileLock try_acquire(const std::filesystem::path& lock_file, Mode mode = Mode::exclusive);

  FileLock() = default;
  FileLock(FileLock&& other) noexcept : fd_(other.fd_), gate_(other.gate_) {
    other.fd_ = -1;
    other.gate_ = nullptr;
  }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  bool holds() const noexcept { return fd_ >= 0; }
  void release() noexcept;

private:
  FileLock(int fd, LockGate* gate) : fd_(fd), gate_(gate) {}
  int fd_ = -1;
  // Exclusive locks: the in-process gate, held with the flock. Not a std::mutex, because
  // a lock may be released on another thread than the one that took it (a POP3 session's
  // mailbox lock).
  LockGate* gate_ = nullptr;
};

} // namespace spool
