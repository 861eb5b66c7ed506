// lock.cc — flock with a bounded, backing-off wait.
#include "spool/lock.h"

#include "spool/error.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

namespace spool {
namespace {

int open_lock_file(const std::filesystem::path& p) {
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) throw_errno("cannot open lock file", p, errno);
  return fd;
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
  }
  return *this;
}

FileLock::~FileLock() { release(); }

void FileLock::release() noexcept {
  if (fd_ >= 0) {
    ::close(fd_); // closing the only descriptor drops the flock
    fd_ = -1;
  }
}

FileLock FileLock::try_acquire(const std::filesystem::path& lock_file, Mode mode) {
  int fd = open_lock_file(lock_file);
  int op = (mode == Mode::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return FileLock();
    throw_errno("cannot lock", lock_file, err);
  }
  return FileLock(fd);
}

FileLock FileLock::acquire(const std::filesystem::path& lock_file, Mode mode,
                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    FileLock lock = try_acquire(lock_file, mode);
    if (lock.holds()) return lock;
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error(Errc::busy, "spool is busy: could not lock " + lock_file.string() + " within " +
                                  std::to_string(timeout.count()) + " ms; try again");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000)); // short: a busy lock is held for milliseconds
  }
}

} // namespace spool
