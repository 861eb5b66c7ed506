// atomic_file_test.cc — whole-file reads and crash-safe replacement (atomic_file.h):
// a replace that fails half-way (write refused by RLIMIT_FSIZE in a child) leaves the
// old content and no temp file; symlinks are never written through or read.
#include "spool/atomic_file.h"

#include "test_support.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <set>

using spool::Errc;
using mhtest::error_from;
using mhtest::TempDir;

TEST_CASE("atomic_file: write then read back, binary-safe", "[atomic_file]") {
  TempDir dir;
  const auto file = dir / "data";
  std::string content("line 1\n\0binary\xff\n", 16);
  content += std::string(100000, 'x'); // several read() calls
  spool::write_file_atomic(file, content, 0600);
  CHECK(spool::read_file(file) == content);
  CHECK(spool::read_file_if_exists(file) == content);
  CHECK(mhtest::entries_in(dir.path()) == 1);

  struct stat st;
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  spool::write_file_atomic(dir / "empty", "");
  CHECK(spool::read_file(dir / "empty").empty());
}

TEST_CASE("atomic_file: replace swaps the content and leaves no temp file", "[atomic_file]") {
  TempDir dir;
  const auto file = dir / "domain.yaml";
  spool::write_file_atomic(file, "old\n");
  struct stat before;
  REQUIRE(::stat(file.c_str(), &before) == 0);
  spool::write_file_atomic(file, "new\n");
  CHECK(spool::read_file(file) == "new\n");
  // A new inode: the old file was replaced by rename(), not truncated and rewritten.
  struct stat after;
  REQUIRE(::stat(file.c_str(), &after) == 0);
  CHECK(after.st_ino != before.st_ino);
  CHECK(mhtest::entries_in(dir.path()) == 1);
}

TEST_CASE("atomic_file: a replace that fails mid-write keeps the old content", "[atomic_file]") {
  TempDir dir;
  const auto file = dir / "account.yaml";
  const std::string old_content = "password: \"$y$old\"\n";
  spool::write_file_atomic(file, old_content);

  // In a child, limit file size to 64 bytes so write() of the temp file fails (EFBIG)
  // after the temp file exists: the failure happens between "temp created" and rename.
  int status = mhtest::run_in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit small{64, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) return 3;
    try {
      spool::write_file_atomic(file, std::string(4096, 'n'));
    } catch (const spool::Error& e) {
      return std::string(e.what()).find("cannot write") != std::string::npos ? 0 : 2;
    }
    return 1; // the write should not have succeeded
  });
  REQUIRE(status == 0);
  CHECK(spool::read_file(file) == old_content);
  CHECK(mhtest::entries_in(dir.path()) == 1); // the temp file was removed
}

TEST_CASE("atomic_file: refuses to replace a symlink or a directory", "[atomic_file][hostile]") {
  TempDir dir;
  const auto target = dir / "outside";
  mhtest::write_text(target, "precious\n");
  const auto link = dir / "account.yaml";
  std::filesystem::create_symlink(target, link);

  spool::Error e = error_from([&] { spool::write_file_atomic(link, "evil\n"); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()) == "refusing to replace " + link.string() + ": not a regular file");
  CHECK(mhtest::read_text(target) == "precious\n");
  CHECK(mhtest::is_symlink(link));
  CHECK(mhtest::entries_in(dir.path()) == 2);

  std::filesystem::create_directory(dir / "subdir");
  spool::Error d = error_from([&] { spool::write_file_atomic(dir / "subdir", "x"); });
  CHECK(d.code() == Errc::other);
}

TEST_CASE("atomic_file: refuses to read through a symlink", "[atomic_file][hostile]") {
  TempDir dir;
  mhtest::write_text(dir / "real", "secret\n");
  std::filesystem::create_symlink(dir / "real", dir / "link");
  spool::Error e = error_from([&] { (void)spool::read_file(dir / "link"); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()) == "refusing to read symlink " + (dir / "link").string());
}

TEST_CASE("atomic_file: reading a missing file", "[atomic_file]") {
  TempDir dir;
  const auto missing = dir / "missing.yaml";
  CHECK_FALSE(spool::read_file_if_exists(missing).has_value());
  spool::Error e = error_from([&] { (void)spool::read_file(missing); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()) == "cannot open " + missing.string() + ": No such file or directory");
}

TEST_CASE("atomic_file: writing into a missing directory fails cleanly", "[atomic_file]") {
  TempDir dir;
  const auto file = dir / "nope" / "file";
  spool::Error e = error_from([&] { spool::write_file_atomic(file, "x"); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()).rfind("cannot create " + (dir / "nope").string() + "/.file.tmp.", 0) == 0);
  CHECK(mhtest::entries_in(dir.path()) == 0);
}

TEST_CASE("atomic_file: fsync_directory of a bad path throws", "[atomic_file]") {
  TempDir dir;
  CHECK_NOTHROW(spool::fsync_directory(dir.path()));

  const auto missing = dir / "missing";
  spool::Error e = error_from([&] { spool::fsync_directory(missing); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()) == "cannot open directory " + missing.string() + ": No such file or directory");

  mhtest::write_text(dir / "file", "x");
  spool::Error f = error_from([&] { spool::fsync_directory(dir / "file"); });
  CHECK(std::string(f.what()) == "cannot open directory " + (dir / "file").string() + ": Not a directory");
}

TEST_CASE("atomic_file: write_all reports a bad descriptor", "[atomic_file]") {
  spool::Error e = error_from([] { spool::write_all(-1, "data", "/nowhere"); });
  CHECK(std::string(e.what()) == "cannot write /nowhere: Bad file descriptor");
  CHECK_NOTHROW(spool::write_all(-1, "", "/nowhere")); // nothing to write, no syscall
}

TEST_CASE("atomic_file: unique_suffix never repeats and names the process", "[atomic_file]") {
  std::set<std::string> seen;
  const std::string prefix = "." + std::to_string(::getpid()) + ".";
  for (int i = 0; i < 1000; ++i) {
    std::string s = spool::unique_suffix();
    CHECK(s.rfind(prefix, 0) == 0);
    CHECK(s.find('/') == std::string::npos);
    seen.insert(s);
  }
  CHECK(seen.size() == 1000);
}
