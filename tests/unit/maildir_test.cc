// maildir_test.cc — Maildir listing, reading and removal (maildir.h): stable UIDLs across
// new/→cur/ and flag changes made by other readers, exact maildirsize after removals,
// and the rebuilds Maildir++ asks for (missing, partial last line, over 5,120 bytes).
#include "spool/maildir.h"

#include "store_fixture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

namespace fs = std::filesystem;
using mhtest::read_text;
using mhtest::TempDir;
using mhtest::write_text;
using spool::Maildir;
using spool::Usage;

namespace {

// A Maildir with hand-made message files, for tests that need exact names.
struct HandMaildir {
  TempDir tmp;
  fs::path dir = tmp.path() / "Maildir";
  HandMaildir() { spool::create_maildir(dir); }

  // Writes new/<name> with `size` bytes and counts it in maildirsize like a deliverer.
  void put(const std::string& sub, const std::string& name, std::size_t size) {
    write_text(dir / sub / name, mhtest::message_of_size(size, name));
    Maildir(dir).record(static_cast<std::int64_t>(size), 1);
  }
};

std::string text_of(const Maildir& md, const spool::MessageInfo& m) {
  auto content = md.read_message(m);
  REQUIRE(content.has_value());
  return *content;
}

} // namespace

TEST_CASE("create_maildir makes tmp/new/cur private and an empty maildirsize", "[maildir]") {
  TempDir tmp;
  spool::create_maildir(tmp / "Maildir", 5000);
  for (const char* sub : {"", "tmp", "new", "cur"}) {
    struct stat st;
    REQUIRE(::stat((tmp / "Maildir" / sub).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
  }
  CHECK(read_text(tmp / "Maildir" / "maildirsize") == "5000S\n0 0\n");
  CHECK(Maildir(tmp / "Maildir").quota() == 5000);
  CHECK(Maildir(tmp / "Maildir").usage() == Usage{0, 0});
  CHECK_FALSE(spool::maildir_holds_mail(tmp / "Maildir"));
  CHECK_THROWS_AS(spool::create_maildir(tmp / "Maildir"), spool::Error);
}

TEST_CASE("uidl_of is the name up to the first ',' or ':'", "[maildir]") {
  CHECK(spool::uidl_of("1700000000.M1P2Q3R4.host,S=120") == "1700000000.M1P2Q3R4.host");
  CHECK(spool::uidl_of("1700000000.M1P2Q3R4.host,S=120:2,S") == "1700000000.M1P2Q3R4.host");
  CHECK(spool::uidl_of("1700000000.M1P2.host:2,RS") == "1700000000.M1P2.host");
  CHECK(spool::uidl_of("plainname") == "plainname");
}

TEST_CASE("list reads size and time from the name, skips dot files, oldest first", "[maildir]") {
  HandMaildir h;
  h.put("new", "1700000200.M1P1Q1Rab.host,S=300", 300);
  h.put("cur", "1700000100.M1P1Q2Rab.host,S=200:2,S", 200);
  write_text(h.dir / "new" / ".hidden", "not a message");
  // A name without ,S= (e.g. written by another MUA): size comes from stat.
  h.put("cur", "1700000300.other.host:2,", 77);

  auto msgs = Maildir(h.dir).list();
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0].uidl == "1700000100.M1P1Q2Rab.host");
  CHECK_FALSE(msgs[0].in_new);
  CHECK(msgs[0].size == 200);
  CHECK(msgs[0].delivered == 1700000100);
  CHECK(msgs[1].uidl == "1700000200.M1P1Q1Rab.host");
  CHECK(msgs[1].in_new);
  CHECK(msgs[1].filename == "1700000200.M1P1Q1Rab.host,S=300");
  CHECK(msgs[2].uidl == "1700000300.other.host");
  CHECK(msgs[2].size == 77);
  CHECK(spool::maildir_holds_mail(h.dir));
}

TEST_CASE("the size in the name wins over the file size (no stat needed)", "[maildir]") {
  HandMaildir h;
  write_text(h.dir / "new" / "1700000000.M1P1Q1R1.h,S=999", "short");
  auto msgs = Maildir(h.dir).list();
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0].size == 999);
}

TEST_CASE("a message moved to cur/ with flags keeps its UIDL and can still be opened", "[maildir]") {
  HandMaildir h;
  const std::string name = "1700000000.M5P6Q7R8.host,S=150";
  h.put("new", name, 150);
  Maildir md(h.dir);
  auto before = md.list().at(0);

  // What mutt/Dovecot/Python do when a message is seen: rename into cur/ with ":2,S".
  fs::rename(h.dir / "new" / name, h.dir / "cur" / (name + ":2,S"));

  auto after = md.list();
  REQUIRE(after.size() == 1);
  CHECK(after[0].uidl == before.uidl);
  CHECK_FALSE(after[0].in_new);
  CHECK(after[0].filename == name + ":2,S");
  REQUIRE(md.find(before.uidl).has_value());
  CHECK(md.find(before.uidl)->filename == name + ":2,S");
  CHECK_FALSE(md.find("nope").has_value());

  // The stale MessageInfo still finds the message by UIDL.
  CHECK(text_of(md, before) == mhtest::message_of_size(150, name));
  auto fd = md.open_message(before);
  REQUIRE(fd.has_value());
  char c = 0;
  CHECK(::read(*fd, &c, 1) == 1);
  CHECK(c == 'F');
  ::close(*fd);
}

TEST_CASE("open_message refuses a symlink and reports a purged message as gone", "[maildir]") {
  HandMaildir h;
  write_text(h.tmp / "secret", "secret");
  fs::create_symlink(h.tmp / "secret", h.dir / "new" / "1700000000.M1P1Q1R1.h,S=6");
  Maildir md(h.dir);
  spool::MessageInfo link{"1700000000.M1P1Q1R1.h", "1700000000.M1P1Q1R1.h,S=6", true, 6, 1700000000};
  auto err = mhtest::error_from([&] { (void)md.open_message(link); });
  CHECK(err.code() == spool::Errc::other);

  spool::MessageInfo gone{"1700000001.M1P1Q1R1.h", "1700000001.M1P1Q1R1.h,S=6", true, 6, 1700000001};
  CHECK_FALSE(md.open_message(gone).has_value());
  CHECK_FALSE(md.read_message(gone).has_value());
}

TEST_CASE("remove keeps maildirsize exact and counts a message only once", "[maildir]") {
  HandMaildir h;
  h.put("new", "1700000001.M1P1Q1R1.h,S=100", 100);
  h.put("new", "1700000002.M1P1Q2R1.h,S=250", 250);
  h.put("cur", "1700000003.M1P1Q3R1.h,S=40:2,S", 40);
  Maildir md(h.dir);
  CHECK(md.usage() == Usage{390, 3});

  auto msgs = md.list();
  CHECK(md.remove(msgs[1]));
  CHECK(md.usage() == Usage{140, 2});
  CHECK_FALSE(md.remove(msgs[1])); // already gone: nothing recorded
  CHECK(md.usage() == Usage{140, 2});
  CHECK(read_text(h.dir / "maildirsize") == "0S\n0 0\n100 1\n250 1\n40 1\n-250 -1\n");

  // Removal follows a message that a reader moved meanwhile.
  fs::rename(h.dir / "new" / msgs[0].filename, h.dir / "cur" / (msgs[0].filename + ":2,RS"));
  CHECK(md.remove(msgs[0]));
  CHECK(md.usage() == Usage{40, 1});
  CHECK(md.recalc() == md.usage());
}

TEST_CASE("remove_all unlinks many under one lock and records them in one line", "[maildir]") {
  HandMaildir h;
  h.put("new", "1700000001.M1P1Q1R1.h,S=100", 100);
  h.put("new", "1700000002.M1P1Q2R1.h,S=250", 250);
  h.put("cur", "1700000003.M1P1Q3R1.h,S=40:2,S", 40);
  h.put("cur", "1700000004.M1P1Q4R1.h,S=7:2,S", 7);
  Maildir md(h.dir);
  REQUIRE(md.usage() == Usage{397, 4});
  auto msgs = md.list();
  REQUIRE(msgs.size() == 4);
  // One was removed by someone else, one moved to cur/ since the listing.
  REQUIRE(md.remove(msgs[3]));
  fs::rename(h.dir / "new" / msgs[0].filename, h.dir / "cur" / (msgs[0].filename + ":2,RS"));
  const auto outcome = md.remove_all({msgs[0], msgs[1], msgs[3]});
  CHECK(outcome == std::vector<Maildir::Removal>{Maildir::Removal::removed, Maildir::Removal::removed,
                                                 Maildir::Removal::gone});
  CHECK(md.usage() == Usage{40, 1});
  CHECK(md.recalc() == Usage{40, 1});
  CHECK(md.remove_all({}).empty());
}

TEST_CASE("remove_all records the batch in one maildirsize line", "[maildir]") {
  HandMaildir h;
  h.put("new", "1700000001.M1P1Q1R1.h,S=100", 100);
  h.put("new", "1700000002.M1P1Q2R1.h,S=250", 250);
  Maildir md(h.dir);
  REQUIRE(md.usage() == Usage{350, 2});
  const auto before = read_text(h.dir / "maildirsize");
  md.remove_all(md.list());
  CHECK(read_text(h.dir / "maildirsize") == before + "-350 -2\n");
}

TEST_CASE("recalc equals the sum of the files and keeps the quota line", "[maildir]") {
  TempDir tmp;
  spool::create_maildir(tmp / "M", 12345);
  Maildir md(tmp / "M");
  write_text(tmp / "M" / "new" / "1700000001.a.h,S=10", "0123456789");
  write_text(tmp / "M" / "cur" / "1700000002.b.h:2,S", "abc"); // no S=: stat
  write_text(tmp / "M" / "cur" / ".dotfile", "ignored");
  CHECK(md.usage() == Usage{0, 0}); // nobody recorded them
  CHECK(md.recalc() == Usage{13, 2});
  CHECK(read_text(tmp / "M" / "maildirsize") == "12345S\n13 2\n");
  CHECK(md.recalc(500) == Usage{13, 2});
  CHECK(read_text(tmp / "M" / "maildirsize") == "500S\n13 2\n");
}

TEST_CASE("maildirsize over 5120 bytes is compacted by the next usage()", "[maildir]") {
  HandMaildir h;
  Maildir md(h.dir);
  for (int i = 0; i < 300; ++i) h.put("new", "1700000000.M" + std::to_string(i) + "P1Q1R1.h,S=10", 10);
  // 300 lines of "10 1\n" = 1500 bytes: below the limit, still appended.
  CHECK(fs::file_size(h.dir / "maildirsize") > 1500);
  while (fs::file_size(h.dir / "maildirsize") <= spool::maildirsize_max_bytes) md.record(0, 0);
  CHECK(md.usage() == Usage{3000, 300});
  CHECK(read_text(h.dir / "maildirsize") == "0S\n3000 300\n");
  // At exactly the limit nothing is rebuilt: it is "past" 5,120 bytes that counts.
  std::string at_limit = "0S\n3000 300\n";
  while (at_limit.size() < spool::maildirsize_max_bytes) at_limit += "0 0\n"; // 12 + 4k = 5120
  REQUIRE(at_limit.size() == spool::maildirsize_max_bytes);
  write_text(h.dir / "maildirsize", at_limit);
  CHECK(md.usage() == Usage{3000, 300});
  CHECK(fs::file_size(h.dir / "maildirsize") == spool::maildirsize_max_bytes);
}

TEST_CASE("a missing or damaged maildirsize is rebuilt from the files", "[maildir]") {
  HandMaildir h;
  h.put("new", "1700000001.M1P1Q1R1.h,S=100", 100);
  h.put("new", "1700000002.M1P1Q2R1.h,S=20", 20);
  Maildir md(h.dir);

  SECTION("partial last line") {
    write_text(h.dir / "maildirsize", "0S\n100 1\n20 1\n-1");
    CHECK(md.usage() == Usage{120, 2});
    CHECK(read_text(h.dir / "maildirsize") == "0S\n120 2\n");
  }
  SECTION("garbage line") {
    write_text(h.dir / "maildirsize", "0S\n100 1\nhello\n");
    CHECK(md.usage() == Usage{120, 2});
  }
  SECTION("negative total") {
    write_text(h.dir / "maildirsize", "0S\n-500 -3\n");
    CHECK(md.usage() == Usage{120, 2});
  }
  SECTION("missing: record() leaves it missing, usage() rebuilds including that change") {
    fs::remove(h.dir / "maildirsize");
    write_text(h.dir / "new" / "1700000003.M1P1Q3R1.h,S=5", "12345");
    md.record(5, 1);
    CHECK_FALSE(fs::exists(h.dir / "maildirsize"));
    CHECK(md.usage() == Usage{125, 3});
    CHECK(read_text(h.dir / "maildirsize") == "0S\n125 3\n");
  }
}

TEST_CASE("recalc removes tmp/ files older than 36 hours and keeps fresh ones", "[maildir]") {
  HandMaildir h;
  write_text(h.dir / "tmp" / "old", "left by a crash");
  write_text(h.dir / "tmp" / "fresh", "being delivered");
  const std::time_t old = std::time(nullptr) - spool::stale_tmp_seconds - 60;
  struct timespec times[2] = {{old, 0}, {old, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (h.dir / "tmp" / "old").c_str(), times, 0) == 0);
  Maildir(h.dir).recalc();
  CHECK_FALSE(fs::exists(h.dir / "tmp" / "old"));
  CHECK(fs::exists(h.dir / "tmp" / "fresh"));
}

TEST_CASE("names that are no valid UIDL are not listed but still count as usage", "[maildir]") {
  HandMaildir h;
  write_text(h.dir / "new" / std::string(80, 'a'), "x"); // UIDL over 70 characters
  Maildir md(h.dir);
  CHECK(md.list().empty());
  CHECK(md.recalc() == Usage{1, 1});
}

TEST_CASE("recalc excludes writers and writers exclude recalc, via the Maildir's lock", "[maildir]") {
  HandMaildir h;
  h.put("new", "1700000001.M1P1Q1R1.h,S=100", 100);
  Maildir md(h.dir);
  auto msg = md.list().at(0);
  mhtest::ScopedEnv timeout("MH_LOCK_TIMEOUT", "0.2");

  SECTION("a writer between its change and its maildirsize line holds off recalc") {
    mhtest::HoldingChild writer([&] { static spool::FileLock held = Maildir(h.dir).writer_lock(); });
    REQUIRE(writer.ready());
    auto err = mhtest::error_from([&] { md.recalc(); });
    CHECK(err.code() == spool::Errc::busy);
    // Other writers share the lock; readers of a valid maildirsize need none.
    CHECK(md.remove(msg));
    CHECK(md.usage() == Usage{0, 0});
  }
  SECTION("a running recalc holds off writers") {
    mhtest::HoldingChild recalc([&] {
      static spool::FileLock held = spool::FileLock::acquire(Maildir(h.dir).lock_path());
    });
    REQUIRE(recalc.ready());
    auto err = mhtest::error_from([&] { md.remove(msg); });
    CHECK(err.code() == spool::Errc::busy);
    CHECK(fs::exists(h.dir / "new" / msg.filename)); // nothing changed without its line
    CHECK(md.usage() == Usage{100, 1});
  }
}
