// delivery_test.cc — qmail-protocol delivery (delivery.h): unique names across processes,
// nothing visible before it is complete, one stored copy hard-linked to every recipient,
// quota refusals, exact usage under 4 racing processes, and a full filesystem (root only).
#include "spool/delivery.h"

#include "spool/quota.h"
#include "store_fixture.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using mhtest::files_in;
using mhtest::message_of_size;
using mhtest::read_text;
using mhtest::StoreSpool;
using mhtest::TempDir;
using spool::DeliveryOutcome;
using spool::Usage;
using Status = spool::DeliveryOutcome::Status;

namespace {

// Forks `n` children running body(i) concurrently; returns their exit statuses.
std::vector<int> run_children(int n, const std::function<int(int)>& body) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 99;
      try {
        code = body(i);
      } catch (...) {
      }
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<int> codes;
  for (pid_t pid : pids) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  return codes;
}

std::uint64_t sum_of_files(const std::vector<fs::path>& dirs, std::uint64_t* count = nullptr) {
  std::uint64_t bytes = 0, n = 0;
  for (const auto& d : dirs)
    for (const auto& name : files_in(d)) {
      bytes += fs::file_size(d / name);
      ++n;
    }
  if (count) *count = n;
  return bytes;
}

const std::regex unique_name_pattern(R"(^\d+\.M\d{6}P\d+Q\d+R[0-9a-f]{8}\.[!-~]+$)");

} // namespace

TEST_CASE("unique names follow the qmail scheme and fit a POP3 UIDL", "[delivery]") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string n = spool::unique_maildir_name();
    INFO(n);
    REQUIRE(n.size() <= 70);
    REQUIRE(std::regex_match(n, unique_name_pattern));
    REQUIRE(n.find_first_of(",:/") == std::string::npos);
    REQUIRE(seen.insert(n).second);
  }
}

TEST_CASE("unique names stay unique across forked processes", "[delivery]") {
  TempDir tmp;
  auto codes = run_children(4, [&](int i) {
    std::ofstream out(tmp / ("names-" + std::to_string(i)));
    for (int k = 0; k < 2000; ++k) out << spool::unique_maildir_name() << '\n';
    return out ? 0 : 1;
  });
  CHECK(codes == std::vector<int>{0, 0, 0, 0});
  std::set<std::string> all;
  std::size_t total = 0;
  for (int i = 0; i < 4; ++i) {
    std::ifstream in(tmp / ("names-" + std::to_string(i)));
    for (std::string line; std::getline(in, line); ++total) all.insert(line);
  }
  CHECK(total == 8000);
  CHECK(all.size() == 8000);
}

TEST_CASE("the host part is escaped per maildir.5 and cut at an escape boundary", "[delivery]") {
  CHECK(spool::maildir_safe_host("mail.example.org", 70) == "mail.example.org");
  CHECK(spool::maildir_safe_host("a/b:c,d", 70) == "a\\057b\\072c\\054d");
  CHECK(spool::maildir_safe_host("sp ace\\", 70) == "sp\\040ace\\134");
  CHECK(spool::maildir_safe_host("ab/cd", 5) == "ab"); // "\\057" would not fit whole
  CHECK(spool::maildir_safe_host("ab/cd", 6) == "ab\\057");
  CHECK(spool::maildir_safe_host(std::string(100, 'h'), 20) == std::string(20, 'h'));
}

TEST_CASE("deliver_bytes writes one complete 0600 file into new/ and counts it", "[delivery]") {
  StoreSpool s;
  auto a = s.account("alice@example.com");
  const std::string msg = message_of_size(1234, "hello");
  auto out = spool::deliver_bytes(s.layout(), msg, {a});
  REQUIRE(out.size() == 1);
  CHECK(out[0].status == Status::delivered);
  CHECK(out[0].recipient == a);
  CHECK(out[0].detail == "delivered to alice@example.com as " + out[0].uidl);

  const fs::path md = s.layout().maildir(a);
  auto names = files_in(md / "new");
  REQUIRE(names.size() == 1);
  // ",W=": the size with CRLF line ends (every line here ends in a bare LF).
  const auto lfs = std::count(msg.begin(), msg.end(), '\n');
  CHECK(names[0] == out[0].uidl + ",S=1234,W=" + std::to_string(1234 + lfs));
  CHECK(read_text(md / "new" / names[0]) == msg);
  struct stat st;
  REQUIRE(::stat((md / "new" / names[0]).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_nlink == 1);
  CHECK(files_in(md / "tmp").empty());
  CHECK(read_text(md / "maildirsize") == "0S\n0 0\n1234 1\n");
  CHECK(s.maildir(a).list().at(0).uidl == out[0].uidl);
}

TEST_CASE("one message to several accounts is stored once and hard-linked", "[delivery]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  auto c = s.account("c@other.example");
  auto out = spool::deliver_bytes(s.layout(), message_of_size(500), {a, b, c});
  REQUIRE(out.size() == 3);
  for (const auto& o : out) CHECK(o.status == Status::delivered);
  CHECK(out[0].uidl == out[1].uidl);

  std::set<ino_t> inodes;
  for (const auto& r : {a, b, c}) {
    auto names = files_in(s.layout().maildir(r) / "new");
    REQUIRE(names.size() == 1);
    struct stat st;
    REQUIRE(::stat((s.layout().maildir(r) / "new" / names[0]).c_str(), &st) == 0);
    CHECK(st.st_nlink == 3); // three links, the tmp/ one is gone
    inodes.insert(st.st_ino);
    CHECK(files_in(s.layout().maildir(r) / "tmp").empty());
    CHECK(spool::account_usage(s.layout(), r) == Usage{500, 1});
  }
  CHECK(inodes.size() == 1);
}

TEST_CASE("unknown and repeated recipients", "[delivery]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto ghost = spool::Address::parse("ghost@example.com");
  auto out = spool::deliver_bytes(s.layout(), "Subject: x\n\nbody\n", {ghost, a, a});
  REQUIRE(out.size() == 3);
  CHECK(out[0].status == Status::no_account);
  CHECK(out[0].detail == "no such account: ghost@example.com");
  CHECK(out[1].status == Status::delivered);
  CHECK(out[2].status == Status::delivered);
  CHECK(out[2].uidl == out[1].uidl);
  CHECK(files_in(s.layout().maildir(a) / "new").size() == 1);
  CHECK(spool::account_usage(s.layout(), a) == Usage{17, 1});

  auto none = spool::deliver_bytes(s.layout(), "x", {ghost});
  REQUIRE(none.size() == 1);
  CHECK(none[0].status == Status::no_account);
}

TEST_CASE("a pending message is invisible until delivered and gone when aborted", "[delivery]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  const fs::path md = s.layout().maildir(a);
  std::string expected;
  {
    auto pending = spool::PendingMessage::begin(s.layout(), md);
    // Many small pieces and one larger than the buffer: streamed, never held whole.
    for (int i = 0; i < 5000; ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      pending.append(line);
      expected += line;
    }
    std::string big(200000, 'z');
    pending.append(big);
    expected += big;
    CHECK(pending.size() == expected.size());
    CHECK(files_in(md / "new").empty());
    CHECK(files_in(md / "tmp").size() == 1);
    CHECK(s.maildir(a).list().empty());

    auto out = spool::deliver(s.layout(), pending, {a});
    REQUIRE(out.at(0).status == Status::delivered);
    CHECK(files_in(md / "tmp").empty());
    CHECK(*s.maildir(a).read_message(s.maildir(a).list().at(0)) == expected);
  }
  {
    auto pending = spool::PendingMessage::begin(s.layout(), md);
    pending.append("abandoned");
    CHECK(files_in(md / "tmp").size() == 1);
    pending.abort();
    CHECK(files_in(md / "tmp").empty());
  }
  {
    auto pending = spool::PendingMessage::begin(s.layout(), md);
    pending.append("dropped by the destructor");
  }
  CHECK(files_in(md / "tmp").empty());
  CHECK(spool::account_usage(s.layout(), a) == Usage{expected.size(), 1});
}

TEST_CASE("deliveries over the domain quota are refused for every address", "[delivery][quota]") {
  StoreSpool s;
  s.domain("example.com", 1000);
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  CHECK(spool::deliver_bytes(s.layout(), message_of_size(600), {a}).at(0).status == Status::delivered);
  CHECK(spool::deliver_bytes(s.layout(), message_of_size(400), {b}).at(0).status == Status::delivered);
  // Exactly full now (usage + size == quota was accepted); one more byte is refused.
  auto out = spool::deliver_bytes(s.layout(), message_of_size(20), {a, b});
  for (const auto& o : out) {
    CHECK(o.status == Status::over_quota);
    CHECK(o.detail == "Disk quota exceeded: domain example.com is full");
    CHECK(o.uidl.empty());
  }
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{1000, 2});
  CHECK(files_in(s.layout().maildir(a) / "tmp").empty());
}

TEST_CASE("the optional account quota refuses only that account", "[delivery][quota]") {
  StoreSpool s;
  auto small = s.account("small@example.com", 700);
  auto big = s.account("big@example.com");
  auto first = spool::deliver_bytes(s.layout(), message_of_size(500), {small, big});
  CHECK(first.at(0).status == Status::delivered);
  auto second = spool::deliver_bytes(s.layout(), message_of_size(500), {small, big});
  CHECK(second.at(0).status == Status::over_quota);
  CHECK(second.at(0).detail == "Disk quota exceeded: mailbox small@example.com is full");
  CHECK(second.at(1).status == Status::delivered);
  CHECK(spool::account_usage(s.layout(), small) == Usage{500, 1});
  CHECK(spool::account_usage(s.layout(), big) == Usage{1000, 2});
}

// 4 processes × 100 deliveries of 1000 bytes into one domain (two accounts) whose quota
// holds 150: exactly 150 are accepted, files, maildirsize and recalc agree.
void race_for_the_last_bytes(StoreSpool& s) {
  constexpr std::uint64_t size = 1000;
  constexpr std::uint64_t quota = 150 * size + size / 2; // room for 150 of 400
  s.domain("example.com", quota);
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  TempDir counts;

  auto codes = run_children(4, [&](int i) {
    int delivered = 0, refused = 0;
    for (int k = 0; k < 100; ++k) {
      auto rcpt = (k % 2 == 0) ? a : b;
      auto out = spool::deliver_bytes(s.layout(), message_of_size(size, std::to_string(i)), {rcpt});
      if (out.at(0).status == Status::delivered) ++delivered;
      else if (out.at(0).status == Status::over_quota) ++refused;
      else return 2;
    }
    std::ofstream(counts / std::to_string(i)) << delivered << ' ' << refused << '\n';
    return 0;
  });
  REQUIRE(codes == std::vector<int>{0, 0, 0, 0});

  int delivered = 0, refused = 0;
  for (int i = 0; i < 4; ++i) {
    std::ifstream in(counts / std::to_string(i));
    int d = 0, r = 0;
    in >> d >> r;
    delivered += d;
    refused += r;
  }
  CHECK(delivered == 150);
  CHECK(refused == 250);
  std::uint64_t files = 0;
  const auto on_disk = sum_of_files({s.layout().maildir(a) / "new", s.layout().maildir(b) / "new"}, &files);
  CHECK(files == 150);
  CHECK(on_disk == 150 * size);
  const Usage usage = spool::domain_usage(s.layout(), a.domain());
  CHECK(usage.bytes <= quota);
  CHECK(usage == Usage{on_disk, files});
  for (const auto& r : {a, b}) {
    const Usage recorded = spool::account_usage(s.layout(), r);
    CHECK(spool::recalc_account(s.layout(), r) == recorded);
    CHECK(files_in(s.layout().maildir(r) / "tmp").empty());
  }
}

TEST_CASE("4 processes racing for the last free bytes never exceed the domain quota",
          "[delivery][quota][concurrency]") {
  SECTION("on the test disk (real fsyncs)") {
    StoreSpool s;
    race_for_the_last_bytes(s);
  }
  SECTION("on tmpfs, where fsync is free and the check-to-link window is widest") {
    if (!fs::is_directory("/dev/shm")) {
      WARN("skipped: no /dev/shm");
      return;
    }
    mhtest::TempDirUnder shm("/dev/shm");
    StoreSpool s(shm.path() / "spool");
    race_for_the_last_bytes(s);
  }
}

TEST_CASE("a full filesystem fails the delivery cleanly (root only: tmpfs)", "[delivery][fullfs]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to mount a small tmpfs");
    return;
  }
  TempDir tmp;
  const fs::path mnt = tmp / "mnt";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
    WARN("skipped: cannot mount tmpfs here: " << std::strerror(errno));
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};

  StoreSpool s(mnt / "spool");
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  const fs::path md = s.layout().maildir(a);
  bool failed = false;
  int delivered = 0;
  for (int i = 0; i < 100 && !failed; ++i) {
    try {
      auto out = spool::deliver_bytes(s.layout(), message_of_size(20000, std::to_string(i)), {a, b});
      for (const auto& o : out) {
        if (o.status == Status::failed_temporary) {
          failed = true;
          INFO(o.detail);
          CHECK(o.detail.find("No space left on device") != std::string::npos);
        } else {
          REQUIRE(o.status == Status::delivered);
        }
      }
      if (!failed) ++delivered;
    } catch (const spool::Error& e) {
      failed = true;
      INFO(e.what());
      CHECK(e.temporary());
      CHECK(std::string(e.what()).find("No space left on device") != std::string::npos);
    }
  }
  REQUIRE(failed);
  CHECK(delivered > 0);
  for (const auto& r : {a, b}) {
    const fs::path dir = s.layout().maildir(r);
    CHECK(files_in(dir / "tmp").empty());
    for (const auto& name : files_in(dir / "new")) // nothing partial in new/
      CHECK(fs::file_size(dir / "new" / name) == 20000);
    std::uint64_t files = 0;
    const std::uint64_t bytes = sum_of_files({dir / "new", dir / "cur"}, &files);
    CHECK(spool::account_usage(s.layout(), r) == Usage{bytes, files});
  }
  // Making room makes delivery work again.
  auto md_a = s.maildir(a);
  auto md_b = s.maildir(b);
  for (const auto& m : md_a.list()) md_a.remove(m);
  for (const auto& m : md_b.list()) md_b.remove(m);
  auto out = spool::deliver_bytes(s.layout(), message_of_size(20000), {a});
  CHECK(out.at(0).status == Status::delivered);
  CHECK(spool::account_usage(s.layout(), a) == Usage{20000, 1});
}

TEST_CASE("no space for the maildirsize line: the link is taken back (root only: tmpfs)",
          "[delivery][fullfs]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to mount a small tmpfs");
    return;
  }
  TempDir tmp;
  const fs::path mnt = tmp / "mnt";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
    WARN("skipped: cannot mount tmpfs here: " << std::strerror(errno));
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};

  StoreSpool s(mnt / "spool");
  auto a = s.account("a@example.com");
  const fs::path md = s.layout().maildir(a);
  // A valid maildirsize of exactly one page (3 + 5 + 1022 * 4 bytes): the next line
  // needs a new page, which a full tmpfs cannot give.
  std::string page = "0S\n00 0\n";
  while (page.size() < 4096) page += "0 0\n";
  REQUIRE(page.size() == 4096);
  mhtest::write_text(md / "maildirsize", page);

  auto pending = spool::PendingMessage::begin(s.layout(), md);
  pending.append(message_of_size(3000));
  pending.finish(); // data on disk before the disk fills up
  {
    std::ofstream filler(mnt / "filler", std::ios::binary);
    const std::string chunk(4096, 'f');
    while (filler.write(chunk.data(), chunk.size()) && filler.flush()) {
    }
  }
  auto out = spool::deliver(s.layout(), pending, {a});
  REQUIRE(out.size() == 1);
  INFO(out[0].detail);
  CHECK(out[0].status == Status::failed_temporary);
  CHECK(out[0].detail.find("No space left on device") != std::string::npos);
  CHECK(files_in(md / "new").empty());
  CHECK(files_in(md / "tmp").empty());
  CHECK(read_text(md / "maildirsize") == page);

  fs::remove(mnt / "filler");
  CHECK(spool::deliver_bytes(s.layout(), message_of_size(3000), {a}).at(0).status == Status::delivered);
  CHECK(spool::account_usage(s.layout(), a) == Usage{3000, 1});
}

// Deliveries, removals and recalcs running at once on one Maildir: writers hold the
// Maildir's lock shared around "change a file + append a line" and recalc holds it
// exclusive, so no change is lost in (or counted twice by) a rebuild.
TEST_CASE("recalc racing deliveries and removals keeps maildirsize exact", "[delivery][concurrency]") {
  std::optional<mhtest::TempDirUnder> shm;
  if (fs::is_directory("/dev/shm")) shm.emplace("/dev/shm"); // no fsync cost: widest window
  StoreSpool s(shm ? shm->path() / "spool" : fs::path());
  auto a = s.account("a@example.com");
  const fs::path stop = s.layout().root() / "stop";

  auto codes = run_children(4, [&](int i) {
    spool::Maildir md = s.maildir(a);
    if (i < 2) { // deliverers
      for (int k = 0; k < 500; ++k)
        if (spool::deliver_bytes(s.layout(), message_of_size(100 + k, "r"), {a}).at(0).status != Status::delivered)
          return 2;
      std::ofstream(stop.string() + std::to_string(i)) << "done\n";
      return 0;
    }
    auto deliverers_done = [&] { return fs::exists(stop.string() + "0") && fs::exists(stop.string() + "1"); };
    while (!deliverers_done()) {
      if (i == 2) { // remover: every other listed message
        auto msgs = md.list();
        for (std::size_t k = 0; k < msgs.size(); k += 2) md.remove(msgs[k]);
      } else { // recalc
        md.recalc();
      }
      ::usleep(200); // flock waiters poll: leave them a gap, as real recalcs (rare) do
    }
    return 0;
  });
  REQUIRE(codes == std::vector<int>{0, 0, 0, 0});
  const fs::path dir = s.layout().maildir(a);
  std::uint64_t files = 0;
  const std::uint64_t bytes = sum_of_files({dir / "new", dir / "cur"}, &files);
  CHECK(spool::account_usage(s.layout(), a) == Usage{bytes, files});
  CHECK(s.maildir(a).recalc() == Usage{bytes, files});
}

TEST_CASE("a delivery that cannot get its locks fails temporarily and leaves nothing", "[delivery]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  const fs::path md = s.layout().maildir(a);
  mhtest::ScopedEnv timeout("MH_LOCK_TIMEOUT", "0.2");

  SECTION("the domain's quota lock (taken when a limit applies)") {
    spool::set_domain_quota(s.layout(), a.domain(), 1 << 30);
    mhtest::HoldingChild other([&] {
      static spool::FileLock held = spool::FileLock::acquire(s.layout().quota_lock(a.domain()));
    });
    REQUIRE(other.ready());
    auto out = spool::deliver_bytes(s.layout(), "Subject: x\n\nx\n", {a});
    CHECK(out.at(0).status == Status::failed_temporary);
    CHECK(out.at(0).detail.rfind("spool is busy: could not lock " + s.layout().quota_lock(a.domain()).string(), 0) == 0);
  }
  SECTION("the Maildir's lock, held by a recalc") {
    mhtest::HoldingChild other([&] {
      static spool::FileLock held = spool::FileLock::acquire(spool::Maildir(md).lock_path());
    });
    REQUIRE(other.ready());
    auto out = spool::deliver_bytes(s.layout(), "Subject: x\n\nx\n", {a});
    CHECK(out.at(0).status == Status::failed_temporary);
    CHECK(out.at(0).detail.rfind("spool is busy", 0) == 0);
  }
  CHECK(files_in(md / "new").empty());
  CHECK(files_in(md / "tmp").empty());
  CHECK(spool::account_usage(s.layout(), a) == Usage{0, 0});
}

TEST_CASE("without any quota limit a delivery takes no domain-wide lock", "[delivery][quota]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  mhtest::ScopedEnv timeout("MH_LOCK_TIMEOUT", "0.2");
  mhtest::HoldingChild other([&] {
    static spool::FileLock held = spool::FileLock::acquire(s.layout().quota_lock(a.domain()));
  });
  REQUIRE(other.ready());
  auto out = spool::deliver_bytes(s.layout(), "Subject: x\n\nx\n", {a});
  CHECK(out.at(0).status == Status::delivered);
  CHECK(spool::account_usage(s.layout(), a).messages == 1);
}

TEST_CASE("a recipient on another filesystem gets a copy (root only: tmpfs)", "[delivery][fullfs]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to mount a tmpfs");
    return;
  }
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  const fs::path md_b = s.layout().maildir(b);
  if (::mount("tmpfs", md_b.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
    WARN("skipped: cannot mount tmpfs here: " << std::strerror(errno));
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{md_b};
  for (const char* sub : {"tmp", "new", "cur"}) fs::create_directory(md_b / sub);
  mhtest::write_text(md_b / "maildirsize", "0S\n0 0\n");

  const std::string msg = message_of_size(100000, "exdev");
  auto out = spool::deliver_bytes(s.layout(), msg, {a, b});
  CHECK(out.at(0).status == Status::delivered);
  CHECK(out.at(1).status == Status::delivered);
  for (const auto& r : {a, b}) {
    const fs::path dir = s.layout().maildir(r);
    auto names = files_in(dir / "new");
    REQUIRE(names.size() == 1);
    CHECK(read_text(dir / "new" / names[0]) == msg);
    CHECK(fs::hard_link_count(dir / "new" / names[0]) == 1);
    CHECK(files_in(dir / "tmp").empty());
    CHECK(spool::account_usage(s.layout(), r) == Usage{100000, 1});
  }
}
