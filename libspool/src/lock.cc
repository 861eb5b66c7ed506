// lock.cc — flock with a bounded, backing-off wait, behind an in-process gate for
// exclusive locks.
#include "spool/lock.h"

#include "spool/error.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace spool {

// A binary semaphore built on a condition variable, so a waiter sleeps in the kernel and
// is woken by the release. (libstdc++ 12's std::binary_semaphore::try_acquire_until
// polls with growing sleeps instead: under contention the next holder overslept the
// release by milliseconds, which serialised mh-serve's deliveries to one domain.)
class LockGate {
public:
  bool try_acquire() {
    std::lock_guard guard(mutex_);
    if (held_) return false;
    held_ = true;
    return true;
  }
  bool try_acquire_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock guard(mutex_);
    if (!released_.wait_until(guard, deadline, [this] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  void release() {
    {
      std::lock_guard guard(mutex_);
      held_ = false;
    }
    released_.notify_one();
  }

private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool held_ = false;
};

namespace {

// `name` in `dir`; AT_FDCWD with the whole path as the name for a lock found by path.
struct LockFile {
  int dir;
  const char* name;
  const std::filesystem::path& path;
};

int open_lock_file(const LockFile& f) {
  int fd = ::openat(f.dir, f.name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) throw_errno("cannot open lock file", f.path, errno);
  return fd;
}

// The in-process gate of a lock file. Entries live as long as the process: one lock file
// per domain and mailbox in use plus a few fixed ones, so the map stays small.
LockGate* gate_for(const std::filesystem::path& p) {
  static std::mutex registry_mutex;
  static std::map<std::string, std::unique_ptr<LockGate>> registry;
  std::lock_guard guard(registry_mutex);
  auto& slot = registry[p.string()];
  if (!slot) slot = std::make_unique<LockGate>();
  return slot.get();
}

int try_flock(const LockFile& lock_file, FileLock::Mode mode) {
  int fd = open_lock_file(lock_file);
  int op = (mode == FileLock::Mode::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return -1;
    throw_errno("cannot lock", lock_file.path, err);
  }
  return fd;
}

[[noreturn]] void busy(const std::filesystem::path& lock_file, std::chrono::milliseconds timeout) {
  throw Error(Errc::busy, "spool is busy: could not lock " + lock_file.string() + " within " +
                              std::to_string(timeout.count()) + " ms; try again");
}

} // namespace

std::chrono::milliseconds default_lock_timeout() {
  if (const char* env = std::getenv("MH_LOCK_TIMEOUT"); env && *env) {
    char* end = nullptr;
    double s = std::strtod(env, &end);
    if (end != env && s >= 0 && s < 86400) return std::chrono::milliseconds(static_cast<long>(s * 1000));
  }
  return std::chrono::seconds(10);
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = other.fd_;
    other.fd_ = -1;
    gate_ = other.gate_;
    other.gate_ = nullptr;
  }
  return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() noexcept {
  if (fd_ >= 0) {
    ::close(fd_); // closing the only descriptor drops the flock
    fd_ = -1;
  }
  if (gate_) gate_->release();  // after the flock: the next thread finds it free
  gate_ = nullptr;
}

FileLock FileLock::try_acquire(const std::filesystem::path& lock_file, Mode mode) {
  LockGate* gate = nullptr;
  if (mode == Mode::exclusive) {
    gate = gate_for(lock_file);
    if (!gate->try_acquire()) return FileLock();
  }
  int fd = -1;
  try {
    fd = try_flock({AT_FDCWD, lock_file.c_str(), lock_file}, mode);
  } catch (...) {
    if (gate) gate->release();
    throw;
  }
  if (fd < 0) {
    if (gate) gate->release();
    return FileLock();
  }
  return FileLock(fd, gate);
}

FileLock FileLock::acquire(const std::filesystem::path& lock_file, Mode mode,
                           std::chrono::milliseconds timeout) {
  return acquire_at(AT_FDCWD, lock_file, mode, timeout);
}

FileLock FileLock::acquire_at(int dir, const std::filesystem::path& lock_file, Mode mode,
                              std::chrono::milliseconds timeout) {
  const std::string name = dir == AT_FDCWD ? lock_file.string() : lock_file.filename().string();
  const LockFile file{dir, name.c_str(), lock_file};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  LockGate* gate = nullptr;
  if (mode == Mode::exclusive) {
    gate = gate_for(lock_file);
    if (!gate->try_acquire_until(deadline)) busy(lock_file, timeout);
  }
  // From here the gate is held: a FileLock owns it (and gives it back) from the start.
  FileLock held(-1, gate);
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    held.fd_ = try_flock(file, mode);
    if (held.fd_ >= 0) return held;
    if (std::chrono::steady_clock::now() >= deadline) busy(lock_file, timeout);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000)); // short: a busy lock is held for milliseconds
  }
}

} // namespace spool
