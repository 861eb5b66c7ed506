// spool_walk_test.cc — the walk from the spool root without following symlinks
// (Layout::open_dir, verify_no_symlinks, Maildir's folder fds; SPEC §8 "The spool walk"),
// and maildirsize kept under 5,120 bytes by the writers themselves (Maildir++).
#include "spool/error.h"
#include "spool/layout.h"
#include "spool/maildir.h"

#include "store_fixture.h"

#include <sys/stat.h>

namespace fs = std::filesystem;
using mhtest::StoreSpool;
using mhtest::TempDir;
using mhtest::write_text;

namespace {

const std::string planted = "refusing to follow symlink planted in the spool: ";

// The text of the Error(other) that `f` must throw.
template <class F>
std::string refusal(F&& f) {
  const spool::Error e = mhtest::error_from(std::forward<F>(f));
  CHECK(e.code() == spool::Errc::other);
  return e.what();
}

} // namespace

TEST_CASE("walk: open_dir opens real directories, an empty DirFd for missing ones", "[walk]") {
  TempDir tmp;
  const spool::Layout layout(tmp.path());
  fs::create_directories(tmp.path() / "a" / "b");
  CHECK(layout.open_dir(tmp.path() / "a" / "b"));
  CHECK(layout.open_dir(tmp.path()));
  CHECK_FALSE(layout.open_dir(tmp.path() / "a" / "missing" / "c"));
  CHECK_NOTHROW(layout.verify_no_symlinks(tmp.path() / "a" / "missing" / "c"));
}

TEST_CASE("walk: a symlink anywhere below the root is named, never followed", "[walk][hostile]") {
  TempDir tmp;
  const fs::path root = tmp.path() / "spool";
  const fs::path outside = tmp.path() / "outside";
  fs::create_directories(root / "a");
  fs::create_directories(outside / "b");
  fs::create_directory_symlink(outside, root / "a" / "lnk");
  const spool::Layout layout(root);
  // In the middle of the path, and as its last component.
  CHECK(refusal([&] { layout.open_dir(root / "a" / "lnk" / "b"); }) == planted + (root / "a" / "lnk").string());
  CHECK(refusal([&] { layout.open_dir(root / "a" / "lnk"); }) == planted + (root / "a" / "lnk").string());
  CHECK(refusal([&] { layout.verify_no_symlinks(root / "a" / "lnk" / "x"); }) ==
        planted + (root / "a" / "lnk").string());
  const spool::Error away = mhtest::error_from([&] { layout.open_dir(tmp.path() / "elsewhere"); });
  CHECK(std::string(away.what()).find("is outside the spool") != std::string::npos);
}

TEST_CASE("walk: the root itself may be a symlink", "[walk]") {
  TempDir tmp;
  fs::create_directories(tmp.path() / "real" / "domains");
  fs::create_directory_symlink(tmp.path() / "real", tmp.path() / "link");
  const spool::Layout layout(tmp.path() / "link");
  CHECK(layout.open_dir(tmp.path() / "link" / "domains"));
}

TEST_CASE("walk: Maildir folders replaced by symlinks make the mailbox unavailable", "[walk][hostile]") {
  StoreSpool s;
  const auto a = s.account("u@d.test");
  spool::deliver_bytes(s.layout(), mhtest::message_of_size(100), {a});
  const fs::path md = s.layout().maildir(a);
  TempDir outside;
  write_text(outside.path() / "1700000000.M1P1Q1R1.x,S=6", "secret");
  for (const char* sub : {"new", "cur", "tmp"}) {
    DYNAMIC_SECTION("Maildir/" << sub) {
      fs::rename(md / sub, md / (std::string(sub) + ".moved"));
      fs::create_directory_symlink(outside.path(), md / sub);
      const spool::Maildir m(s.layout(), md);
      const std::string expected = planted + (md / sub).string();
      if (std::string(sub) != "tmp") CHECK(refusal([&] { m.list(); }) == expected);
      CHECK(refusal([&] { spool::recalc_account(s.layout(), a); }) == expected);
      if (std::string(sub) == "tmp") {
        CHECK(refusal([&] { spool::deliver_bytes(s.layout(), "Subject: x\n\nx\n", {a}); }) == expected);
      } else {
        const auto out = spool::deliver_bytes(s.layout(), "Subject: x\n\nx\n", {a});
        REQUIRE(out.size() == 1);
        CHECK(out[0].status == spool::DeliveryOutcome::Status::failed_temporary);
        CHECK(out[0].detail == expected);
      }
      CHECK(spool::account_usage(s.layout(), a) == spool::Usage{100, 1});
      CHECK(mhtest::files_in(outside.path()).size() == 1);
    }
  }
}

TEST_CASE("walk: a symlinked message file is neither listed nor counted", "[walk][hostile]") {
  StoreSpool s;
  const auto a = s.account("u@d.test");
  spool::deliver_bytes(s.layout(), mhtest::message_of_size(100), {a});
  TempDir outside;
  write_text(outside.path() / "secret", "secret");
  const fs::path md = s.layout().maildir(a);
  fs::create_symlink(outside.path() / "secret", md / "cur" / "1700000000.M1P1Q1R1.x,S=6:2,S");
  const spool::Maildir m(s.layout(), md);
  const auto listed = m.list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].size == 100);
  CHECK(spool::recalc_account(s.layout(), a) == spool::Usage{100, 1});
}

TEST_CASE("maildirsize: the writer that pushes it past 5,120 bytes rewrites it", "[walk][quota]") {
  StoreSpool s;
  const auto a = s.account("u@d.test");
  const fs::path file = s.layout().maildir(a) / "maildirsize";
  std::uintmax_t largest = 0;
  for (int i = 0; i < 600; ++i) {
    spool::deliver_bytes(s.layout(), mhtest::message_of_size(1000), {a});
    largest = std::max(largest, fs::file_size(file));
  }
  CHECK(largest <= spool::maildirsize_max_bytes + 24);
  CHECK(spool::account_usage(s.layout(), a) == spool::Usage{600 * 1000, 600});
  // Removals append too: they shrink it the same way.
  spool::Maildir m(s.layout(), s.layout().maildir(a));
  for (const auto& msg : m.list()) {
    m.remove(msg);
    largest = std::max(largest, fs::file_size(file));
  }
  CHECK(largest <= spool::maildirsize_max_bytes + 24);
  CHECK(spool::account_usage(s.layout(), a) == spool::Usage{0, 0});
}
