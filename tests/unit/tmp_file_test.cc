// tmp_file_test.cc — the write path delivery and the queue share (tmp_file.h): a file is
// made only under a new name, never through a symlink, written through its buffer, and
// gone after discard() or a failed write (a full disk, RLIMIT_FSIZE in a child), so
// nothing stays behind in tmp/; a lock on its descriptor outlives its name.
#include "spool/tmp_file.h"

#include "spool/atomic_file.h"
#include "test_support.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

namespace fs = std::filesystem;
using mhtest::TempDir;

namespace {

spool::DirFd open_dir(const fs::path& p) {
  spool::DirFd d(::open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(d);
  return d;
}

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

} // namespace

TEST_CASE("tmp_file: written through the buffer, readable before the fsync, gone after discard", "[tmp_file]") {
  TempDir dir;
  auto f = spool::TmpFile::create(open_dir(dir.path()), dir.path(), "msg");
  const std::string big(100000, 'b');  // larger than the buffer: goes straight through
  f.append("head\n");
  f.append(big);
  f.append("tail\n");
  CHECK(f.size() == 5 + big.size() + 5);
  const int reader = f.open_for_reading();  // flushes what the buffer holds
  CHECK(read_fd(reader) == "head\n" + big + "tail\n");
  ::close(reader);
  f.sync();
  CHECK(f.path() == dir / "msg");
  CHECK(spool::read_file(dir / "msg") == "head\n" + big + "tail\n");
  f.discard();
  CHECK(mhtest::entries_in(dir.path()) == 0);
  f.discard();  // idempotent
}

TEST_CASE("tmp_file: only a new name, never through a symlink", "[tmp_file][hostile]") {
  TempDir dir;
  mhtest::write_text(dir / "taken", "precious\n");
  std::filesystem::create_symlink(dir / "outside", dir / "planted");
  CHECK_THROWS_AS(spool::TmpFile::create(open_dir(dir.path()), dir.path(), "taken"), spool::Error);
  CHECK_THROWS_AS(spool::TmpFile::create(open_dir(dir.path()), dir.path(), "planted"), spool::Error);
  CHECK(spool::read_file(dir / "taken") == "precious\n");
  CHECK_FALSE(std::filesystem::exists(dir / "outside"));
}

TEST_CASE("tmp_file: a failed write removes the file", "[tmp_file][disk_full]") {
  TempDir dir;
  const int status = mhtest::run_in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit small{64 * 1024, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) return 3;
    auto f = spool::TmpFile::create(open_dir(dir.path()), dir.path(), "msg");
    try {
      for (int i = 0; i < 64; ++i) f.append(std::string(8192, 'x'));
      f.sync();
    } catch (const spool::Error& e) {
      return std::string(e.what()).find("cannot write") != std::string::npos ? 0 : 2;
    }
    return 1;  // 512 KiB under a 64 KiB limit should have failed
  });
  REQUIRE(status == 0);
  CHECK(mhtest::entries_in(dir.path()) == 0);
}

TEST_CASE("tmp_file: copy_of makes an fsynced copy; the lock stays with the descriptor", "[tmp_file]") {
  TempDir dir;
  mhtest::write_text(dir / "source", "the message\n");
  auto copy = spool::TmpFile::copy_of(dir / "source", open_dir(dir.path()), dir.path(), "copy");
  CHECK(copy.size() == 12);
  CHECK(spool::read_file(dir / "copy") == "the message\n");
  REQUIRE(::flock(copy.fd(), LOCK_EX | LOCK_NB) == 0);
  REQUIRE(::link((dir / "copy").c_str(), (dir / "queued").c_str()) == 0);
  copy.unlink();  // the name goes; the descriptor, and its lock, stay
  CHECK_FALSE(std::filesystem::exists(dir / "copy"));
  const int other = ::open((dir / "queued").c_str(), O_RDONLY);
  REQUIRE(other >= 0);
  CHECK(::flock(other, LOCK_EX | LOCK_NB) != 0);
  const int held = copy.release_fd();
  ::close(held);
  CHECK(::flock(other, LOCK_EX | LOCK_NB) == 0);
  ::close(other);
  CHECK_THROWS_AS(spool::TmpFile::copy_of(dir / "missing", open_dir(dir.path()), dir.path(), "c2"), spool::Error);
  CHECK_FALSE(std::filesystem::exists(dir / "c2"));
}
