// test_support.h — helpers shared by the libspool unit tests: a private temp directory
// per test, capturing a spool::Error to check its code and exact message, and running
// code in a forked child (for locks, which are per process, and for rlimit faults).
#pragma once

#include "spool/error.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mhtest {

namespace fs = std::filesystem;

// A fresh directory from mkdtemp(), removed with everything in it when the test ends.
// Tests run in parallel under ctest -j, so nothing is ever shared between them.
class TempDir {
public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/mh-unit-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = fs::path(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

private:
  fs::path path_;
};

// Runs `action`, which must throw spool::Error, and returns that error so the test can
// check code() and the exact what(). Anything else fails the test.
template <class Action>
spool::Error error_from(Action&& action) {
  try {
    action();
  } catch (const spool::Error& e) {
    return e;
  }
  FAIL("expected a spool::Error, but nothing was thrown");
  throw std::logic_error("unreachable");
}

inline void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool is_symlink(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

inline std::size_t entries_in(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

// Runs `body` in a forked child and returns its exit status (or 128 + signal).
// The child never returns into Catch: it leaves with _exit(), and an exception
// escaping `body` becomes exit status 99, so a broken child cannot pass a test.
inline int run_in_child(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

// A child process that runs `setup` (e.g. takes a lock), reports readiness through a
// pipe, then waits until killed. The destructor kills it, so no test leaves one behind.
class HoldingChild {
public:
  explicit HoldingChild(const std::function<void()>& setup) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(fds[0]);
      char ok = 'n';
      try {
        setup();
        ok = 'y';
      } catch (...) {
      }
      (void)!::write(fds[1], &ok, 1);
      if (ok != 'y') ::_exit(99);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char ok = 0;
    ssize_t n;
    while ((n = ::read(fds[0], &ok, 1)) < 0 && errno == EINTR) {
    }
    ::close(fds[0]);
    ready_ = n == 1 && ok == 'y';
  }
  ~HoldingChild() { kill_now(); }
  HoldingChild(const HoldingChild&) = delete;
  HoldingChild& operator=(const HoldingChild&) = delete;

  bool ready() const { return ready_; }

  // SIGKILL, then reap: once this returns the child and its descriptors are gone.
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

} // namespace mhtest
