// lock_test.cc — flock-based spool locks (lock.h) across real processes: exclusive
// excludes, shared shares, a busy lock gives Errc::busy within the timeout, and a
// holder killed with SIGKILL never leaves the lock taken. Between threads of one
// process, exclusive locks pass through the in-process gate.
#include "spool/lock.h"

#include "test_support.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

using namespace std::chrono_literals;
using spool::Errc;
using spool::FileLock;
using Mode = spool::FileLock::Mode;
using mhtest::error_from;
using mhtest::HoldingChild;
using mhtest::TempDir;

namespace {

// Exit status of a child that tries `mode` without waiting: 0 = got it, 1 = did not.
int child_try(const std::filesystem::path& file, Mode mode) {
  return mhtest::run_in_child([&] { return FileLock::try_acquire(file, mode).holds() ? 0 : 1; });
}

// Restores an environment variable when the test ends.
class EnvGuard {
public:
  explicit EnvGuard(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
  }
  ~EnvGuard() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

private:
  const char* name_;
  std::optional<std::string> old_;
};

} // namespace

TEST_CASE("lock: exclusive excludes exclusive and shared in another process", "[lock]") {
  TempDir dir;
  const auto file = dir / "spool.lock";
  {
    FileLock held = FileLock::acquire(file, Mode::exclusive, 1s);
    REQUIRE(held.holds());
    CHECK(child_try(file, Mode::exclusive) == 1);
    CHECK(child_try(file, Mode::shared) == 1);
  }
  // Released by the destructor: another process gets it now.
  CHECK(child_try(file, Mode::exclusive) == 0);
}

TEST_CASE("lock: a lock held by a child keeps the parent out until released", "[lock]") {
  TempDir dir;
  const auto file = dir / "d.lock";
  HoldingChild holder([&] {
    static FileLock lock; // lives until the child is killed
    lock = FileLock::acquire(file, Mode::exclusive, 1s);
  });
  REQUIRE(holder.ready());
  CHECK_FALSE(FileLock::try_acquire(file).holds());
  CHECK_FALSE(FileLock::try_acquire(file, Mode::shared).holds());
  holder.kill_now();
  CHECK(FileLock::try_acquire(file).holds());
}

TEST_CASE("lock: shared locks coexist, exclusive waits for them", "[lock]") {
  TempDir dir;
  const auto file = dir / "spool.lock";
  FileLock reader = FileLock::acquire(file, Mode::shared, 1s);
  REQUIRE(reader.holds());
  CHECK(child_try(file, Mode::shared) == 0);
  CHECK(child_try(file, Mode::exclusive) == 1);
  reader.release();
  CHECK_FALSE(reader.holds());
  CHECK(child_try(file, Mode::exclusive) == 0);
}

TEST_CASE("lock: a busy lock throws Errc::busy within the timeout", "[lock]") {
  TempDir dir;
  const auto file = dir / "spool.lock";
  HoldingChild holder([&] {
    static FileLock lock;
    lock = FileLock::acquire(file, Mode::exclusive, 1s);
  });
  REQUIRE(holder.ready());

  const auto start = std::chrono::steady_clock::now();
  spool::Error e = error_from([&] { (void)FileLock::acquire(file, Mode::exclusive, 300ms); });
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(e.code() == Errc::busy);
  CHECK(e.exit_code() == 75);
  CHECK(e.temporary());
  CHECK(std::string(e.what()) == "spool is busy: could not lock " + file.string() + " within 300 ms; try again");
  CHECK(waited >= 300ms);
  CHECK(waited < 1300ms); // gave up at the deadline, not much later

  // A zero timeout is one try, no waiting.
  const auto start0 = std::chrono::steady_clock::now();
  CHECK(error_from([&] { (void)FileLock::acquire(file, Mode::shared, 0ms); }).code() == Errc::busy);
  CHECK(std::chrono::steady_clock::now() - start0 < 200ms);
}

TEST_CASE("lock: a waiter gets the lock as soon as the holder dies", "[lock]") {
  TempDir dir;
  const auto file = dir / "spool.lock";
  HoldingChild holder([&] {
    static FileLock lock;
    lock = FileLock::acquire(file, Mode::exclusive, 1s);
  });
  REQUIRE(holder.ready());
  CHECK_FALSE(FileLock::try_acquire(file).holds());
  holder.kill_now(); // SIGKILL: no destructor, no unlock — the kernel drops the flock
  FileLock mine = FileLock::acquire(file, Mode::exclusive, 2s);
  CHECK(mine.holds());
}

TEST_CASE("lock: a holder that exits without releasing leaves nothing locked", "[lock]") {
  TempDir dir;
  const auto file = dir / "spool.lock";
  int status = mhtest::run_in_child([&] {
    FileLock* leaked = new FileLock(FileLock::acquire(file, Mode::exclusive, 1s)); // never destroyed
    return leaked->holds() ? 0 : 1;
  });
  REQUIRE(status == 0);
  CHECK(FileLock::acquire(file, Mode::exclusive, 0ms).holds());
}

TEST_CASE("lock: release and move keep exactly one owner", "[lock]") {
  TempDir dir;
  const auto file = dir / "spool.lock";
  FileLock a = FileLock::acquire(file, Mode::exclusive, 1s);
  FileLock b(std::move(a));
  CHECK_FALSE(a.holds()); // NOLINT(bugprone-use-after-move)
  CHECK(b.holds());
  CHECK(child_try(file, Mode::exclusive) == 1);
  FileLock c;
  c = std::move(b);
  CHECK(c.holds());
  CHECK(child_try(file, Mode::exclusive) == 1);
  c = FileLock(); // move-assigning an empty lock releases the old one
  CHECK(child_try(file, Mode::exclusive) == 0);
}

TEST_CASE("lock: a symlink at the lock file is refused", "[lock][hostile]") {
  TempDir dir;
  mhtest::write_text(dir / "target", "");
  std::filesystem::create_symlink(dir / "target", dir / "spool.lock");
  spool::Error e = error_from([&] { (void)FileLock::acquire(dir / "spool.lock", Mode::exclusive, 0ms); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()) ==
        "cannot open lock file " + (dir / "spool.lock").string() + ": Too many levels of symbolic links");
}

TEST_CASE("lock: a missing lock directory is an error, not a hang", "[lock]") {
  TempDir dir;
  const auto file = dir / "run" / "locks" / "spool.lock";
  spool::Error e = error_from([&] { (void)FileLock::acquire(file, Mode::exclusive, 1s); });
  CHECK(std::string(e.what()) == "cannot open lock file " + file.string() + ": No such file or directory");
}

TEST_CASE("lock: MH_LOCK_TIMEOUT sets the default timeout in seconds", "[lock]") {
  EnvGuard guard("MH_LOCK_TIMEOUT");
  ::unsetenv("MH_LOCK_TIMEOUT");
  CHECK(spool::default_lock_timeout() == 10s);
  ::setenv("MH_LOCK_TIMEOUT", "0.5", 1);
  CHECK(spool::default_lock_timeout() == 500ms);
  ::setenv("MH_LOCK_TIMEOUT", "3", 1);
  CHECK(spool::default_lock_timeout() == 3s);
  ::setenv("MH_LOCK_TIMEOUT", "0", 1);
  CHECK(spool::default_lock_timeout() == 0ms);
  for (const char* bad : {"", "soon", "-1", "1e9"}) {
    INFO("MH_LOCK_TIMEOUT=" << bad);
    ::setenv("MH_LOCK_TIMEOUT", bad, 1);
    CHECK(spool::default_lock_timeout() == 10s);
  }
}

TEST_CASE("lock: threads of one process exclude each other and hand over at release", "[lock][threads]") {
  TempDir dir;
  const auto file = dir.path() / "gate.lock";
  FileLock held = FileLock::acquire(file);
  CHECK_FALSE(FileLock::try_acquire(file).holds());
  CHECK(error_from([&] { (void)FileLock::acquire(file, Mode::exclusive, 50ms); }).code() == Errc::busy);

  std::atomic<bool> got{false};
  std::thread waiter([&] {
    FileLock mine = FileLock::acquire(file, Mode::exclusive, 5000ms);
    got = mine.holds();
  });
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(got.load());  // still waiting while we hold it
  held.release();
  waiter.join();
  CHECK(got.load());
  // The waiter released it when its FileLock went away: free again.
  CHECK(FileLock::try_acquire(file).holds());
}

TEST_CASE("lock: an exclusive lock may be released on another thread", "[lock][threads]") {
  // A POP3 session takes its mailbox lock on the blocking pool and may drop it on the
  // event-loop thread.
  TempDir dir;
  const auto file = dir.path() / "handover.lock";
  FileLock lock = FileLock::acquire(file);
  std::thread([l = std::move(lock)]() mutable { l.release(); }).join();
  FileLock again = FileLock::try_acquire(file);
  CHECK(again.holds());
}

TEST_CASE("lock: many threads, each exclusive section alone", "[lock][threads]") {
  TempDir dir;
  const auto file = dir.path() / "counter.lock";
  int inside = 0, max_inside = 0, total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        FileLock l = FileLock::acquire(file);
        max_inside = std::max(max_inside, ++inside);
        ++total;
        --inside;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(max_inside == 1);
  CHECK(total == 1600);
}
