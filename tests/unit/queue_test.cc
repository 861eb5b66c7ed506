// queue_test.cc — the outbound queue (queue.h): an entry is listed only once its .env is
// committed, a writer killed at any point leaves nothing listed and only sweepable
// garbage, the lock keeps runners and sweeps off an entry being written or delivered,
// and .env files are read strictly.
#include "spool/queue.h"

#include "spool/atomic_file.h"
#include "spool/delivery.h"
#include "store_fixture.h"

#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <set>

namespace fs = std::filesystem;
using mhtest::error_from;
using mhtest::files_in;
using mhtest::HoldingChild;
using mhtest::read_text;
using mhtest::run_in_child;
using mhtest::StoreSpool;
using mhtest::write_text;
using spool::QueueClaim;
using spool::QueueEnvelope;
using spool::QueueMessage;

namespace {

QueueEnvelope envelope(std::vector<std::string> rcpts = {"bob@remote.example"}) {
  QueueEnvelope e;
  e.sender = "alice@example.org";
  e.recipients = std::move(rcpts);
  e.auth = "alice@example.org";
  e.created = 1732765200;
  e.next_attempt = 1732765200;
  return e;
}

std::string enqueue(const spool::Layout& layout, const std::string& text, QueueEnvelope e = envelope()) {
  QueueMessage m = QueueMessage::begin(layout);
  m.append(text);
  m.commit(std::move(e));
  return m.id();
}

std::int64_t later() { return static_cast<std::int64_t>(std::time(nullptr)) + 2 * spool::queue_garbage_seconds; }

fs::path tmp_of(const spool::Layout& l) { return l.queue_dir() / "tmp"; }

} // namespace

TEST_CASE("queue ids are safe file names, unique and roughly time-ordered") {
  CHECK(spool::queue_id_ok("674815F00A1B2P3E8Q1R0A1B2C3D"));
  CHECK_FALSE(spool::queue_id_ok(""));
  CHECK_FALSE(spool::queue_id_ok(".hidden"));
  CHECK_FALSE(spool::queue_id_ok("a/b"));
  CHECK_FALSE(spool::queue_id_ok("abc.msg"));
  CHECK_FALSE(spool::queue_id_ok(std::string(65, 'a')));
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = spool::new_queue_id();
    CHECK(spool::queue_id_ok(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("a committed entry is listed and reads back exactly") {
  StoreSpool s;
  const std::string body = "Return-Path: <alice@example.org>\nSubject: hi\n\n" + std::string(200000, 'x') + "\n";
  QueueEnvelope e = envelope({"bob@remote.example", "\"odd local\"@remote.example"});
  e.last_error = "";
  const std::string id = enqueue(s.layout(), body, e);
  CHECK(spool::list_queue(s.layout()) == std::vector<std::string>{id});
  CHECK(read_text(s.layout().queue_dir() / (id + ".msg")) == body);
  CHECK(files_in(tmp_of(s.layout())).empty());
  QueueEnvelope back = spool::load_queue_entry(s.layout(), id);
  CHECK(back.id == id);
  CHECK(back.sender == "alice@example.org");
  CHECK(back.recipients == e.recipients);
  CHECK(back.auth == "alice@example.org");
  CHECK(back.created == 1732765200);
  CHECK(back.attempts == 0);
  CHECK(back.next_attempt == 1732765200);
  CHECK(read_text(s.layout().queue_dir() / (id + ".env")) ==
        "format: 1\nid: " + id + "\ncreated: 1732765200\nsender: alice@example.org\nauth: alice@example.org\n"
        "attempts: 0\nnext_attempt: 1732765200\nrecipient: bob@remote.example\n"
        "recipient: \"odd local\"@remote.example\n");
}

TEST_CASE("the null sender and no auth round-trip") {
  StoreSpool s;
  QueueEnvelope e = envelope();
  e.sender = "";
  e.auth = "";
  const std::string id = enqueue(s.layout(), "x\n", e);
  QueueEnvelope back = spool::load_queue_entry(s.layout(), id);
  CHECK(back.sender.empty());
  CHECK(back.auth.empty());
}

TEST_CASE("an uncommitted message is invisible and an abandoned one leaves nothing") {
  StoreSpool s;
  {
    QueueMessage m = QueueMessage::begin(s.layout());
    m.append("partial");
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(files_in(tmp_of(s.layout())).size() == 1);
  }
  CHECK(files_in(tmp_of(s.layout())).empty());
  CHECK(files_in(s.layout().queue_dir()) == std::vector<std::string>{"tmp"});
}

TEST_CASE("envelope values that could break the .env format are refused") {
  StoreSpool s;
  const std::string bads[] = {"a@b\nrecipient: evil@x", "a@b\r", std::string("a\0b", 3), "\x7f"};
  for (const std::string& bad : bads) {
    QueueMessage m = QueueMessage::begin(s.layout());
    m.append("x\n");
    QueueEnvelope e = envelope({bad});
    CHECK(error_from([&] { m.commit(e); }).code() == spool::Errc::invalid_input);
  }
  QueueMessage m = QueueMessage::begin(s.layout());
  m.append("x\n");
  CHECK(error_from([&] { m.commit(envelope({})); }).code() == spool::Errc::invalid_input);
  CHECK(spool::list_queue(s.layout()).empty());
  CHECK(files_in(tmp_of(s.layout())).empty());
}

TEST_CASE("a writer killed at any point leaves nothing listed, and the sweep cleans up") {
  StoreSpool s;
  SECTION("killed while streaming into tmp/") {
    CHECK(run_in_child([&] {
            QueueMessage m = QueueMessage::begin(s.layout());
            m.append(std::string(100000, 'x'));
            ::raise(SIGKILL);
            return 0;
          }) == 128 + SIGKILL);
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(files_in(tmp_of(s.layout())).size() == 1);
    // Young leftovers are left alone (their writer may still be alive)...
    CHECK(spool::sweep_queue(s.layout(), std::time(nullptr)).tmp_removed == 0);
    // ...old unlocked ones are removed.
    CHECK(spool::sweep_queue(s.layout(), later()).tmp_removed == 1);
    CHECK(files_in(tmp_of(s.layout())).empty());
  }
  SECTION("killed after the .msg is in place, before the .env") {
    // State 3 of queue.cc, made by hand: a .msg without .env.
    const std::string id = spool::new_queue_id();
    write_text(s.layout().queue_dir() / (id + ".msg"), "x\n");
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK_FALSE(QueueClaim::try_claim(s.layout(), id).has_value());
    // Nobody holds it: removed however young (see sweep_lone_messages).
    CHECK(spool::sweep_queue(s.layout(), std::time(nullptr)).orphans_removed == 1);
    CHECK_FALSE(fs::exists(s.layout().queue_dir() / (id + ".msg")));
  }
  SECTION("killed while writing the .env temp file") {
    const std::string id = spool::new_queue_id();
    write_text(s.layout().queue_dir() / (id + ".msg"), "x\n");
    write_text(s.layout().queue_dir() / ("." + id + ".env.tmp.123.4.abcdef01"), "format: 1\nid: ");
    CHECK(spool::list_queue(s.layout()).empty());
    spool::QueueSweep sw = spool::sweep_queue(s.layout(), later());
    CHECK(sw.orphans_removed == 1);
    CHECK(sw.temps_removed == 1);
  }
  SECTION("a writer that is alive keeps its files, however old; a dead one's lone .msg goes at once") {
    const std::string kept = enqueue(s.layout(), "x\n");
    const std::string id = spool::new_queue_id();
    const fs::path msg = s.layout().queue_dir() / (id + ".msg");
    write_text(msg, "x\n");
    HoldingChild holder([&] {
      int fd = ::open(msg.c_str(), O_RDONLY);
      if (fd < 0 || ::flock(fd, LOCK_EX) != 0) throw std::runtime_error("lock");
    });
    REQUIRE(holder.ready());
    CHECK(spool::sweep_queue(s.layout(), later()).orphans_removed == 0);
    CHECK(spool::sweep_lone_messages(s.layout()) == 0);
    holder.kill_now();  // a kill between the two unlinks of a removal, or the two links of a commit
    CHECK(spool::sweep_lone_messages(s.layout()) == 1);
    CHECK_FALSE(fs::exists(msg));
    CHECK(spool::list_queue(s.layout()) == std::vector<std::string>{kept});
    CHECK(spool::sweep_lone_messages(s.layout()) == 0);
  }
  SECTION("a .msg whose .env is damaged (a directory, a symlink) is not lone: it stays for quarantine") {
    const std::string dir_id = spool::new_queue_id();
    const std::string link_id = spool::new_queue_id();
    write_text(s.layout().queue_dir() / (dir_id + ".msg"), "x\n");
    write_text(s.layout().queue_dir() / (link_id + ".msg"), "x\n");
    fs::create_directory(s.layout().queue_dir() / (dir_id + ".env"));
    fs::create_symlink("/nonexistent", s.layout().queue_dir() / (link_id + ".env"));
    CHECK(spool::sweep_lone_messages(s.layout()) == 0);
    CHECK(spool::sweep_queue(s.layout(), later()).orphans_removed == 0);
    CHECK(fs::exists(s.layout().queue_dir() / (dir_id + ".msg")));
    CHECK(fs::exists(s.layout().queue_dir() / (link_id + ".msg")));
  }
  SECTION("an old .env whose .msg is damaged (a directory) is not lone either") {
    const std::string id = spool::new_queue_id();
    write_text(s.layout().queue_dir() / (id + ".env"), "format: 1\n");
    fs::create_directory(s.layout().queue_dir() / (id + ".msg"));
    CHECK(spool::sweep_queue(s.layout(), later()).orphans_removed == 0);
    CHECK(fs::exists(s.layout().queue_dir() / (id + ".env")));
  }
  SECTION("committed entries are never swept") {
    const std::string id = enqueue(s.layout(), "x\n");
    spool::QueueSweep sw = spool::sweep_queue(s.layout(), later());
    CHECK(sw.orphans_removed + sw.tmp_removed + sw.temps_removed == 0);
    CHECK(spool::list_queue(s.layout()) == std::vector<std::string>{id});
  }
}

TEST_CASE("the writer's lock keeps the runner off until released; one runner at a time") {
  StoreSpool s;
  QueueMessage m = QueueMessage::begin(s.layout());
  m.append("hello\n");
  m.commit(envelope());
  const std::string id = m.id();
  CHECK(spool::list_queue(s.layout()) == std::vector<std::string>{id});
  CHECK_FALSE(QueueClaim::try_claim(s.layout(), id).has_value());  // still the writer's
  m.release();

  auto claim = QueueClaim::try_claim(s.layout(), id);
  REQUIRE(claim.has_value());
  CHECK(claim->envelope().recipients == std::vector<std::string>{"bob@remote.example"});
  char buf[16] = {};
  CHECK(::read(claim->message_fd(), buf, sizeof buf) == 6);
  CHECK(std::string(buf) == "hello\n");
  // Another process (runner) cannot claim it meanwhile.
  CHECK(run_in_child([&] { return QueueClaim::try_claim(s.layout(), id).has_value() ? 1 : 0; }) == 0);

  QueueEnvelope next = claim->envelope();
  next.attempts = 1;
  next.next_attempt = 1732766100;
  next.last_error = "451 4.4.1 relay.example: connection refused";
  claim->update(next);
  CHECK(spool::load_queue_entry(s.layout(), id).attempts == 1);
  CHECK(spool::load_queue_entry(s.layout(), id).last_error == next.last_error);
  claim->remove();
  CHECK(spool::list_queue(s.layout()).empty());
  CHECK(files_in(s.layout().queue_dir()) == std::vector<std::string>{"tmp"});
  CHECK_FALSE(QueueClaim::try_claim(s.layout(), id).has_value());
}

TEST_CASE("a committed entry can be withdrawn while the writer holds it") {
  StoreSpool s;
  QueueMessage m = QueueMessage::begin(s.layout());
  m.append("x\n");
  m.commit(envelope());
  CHECK(m.withdraw());
  CHECK(spool::list_queue(s.layout()).empty());
  CHECK(files_in(s.layout().queue_dir()) == std::vector<std::string>{"tmp"});
  CHECK_FALSE(m.withdraw());  // once
}

TEST_CASE("adopt() links a complete Maildir tmp file: one copy on disk for both") {
  StoreSpool s;
  spool::Address alice = s.account("alice@example.org");
  spool::PendingMessage pending = spool::PendingMessage::begin(s.layout(), s.layout().maildir(alice));
  pending.append("Subject: both\n\nbody\n");
  pending.finish();
  QueueMessage q = QueueMessage::adopt(s.layout(), pending.tmp_path());
  CHECK(q.size() == 20);
  q.commit(envelope());
  auto outcomes = spool::deliver(s.layout(), pending, {alice});
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0].status == spool::DeliveryOutcome::Status::delivered);
  q.release();
  const fs::path msg = s.layout().queue_dir() / (q.id() + ".msg");
  struct stat st;
  REQUIRE(::stat(msg.c_str(), &st) == 0);
  CHECK(st.st_nlink == 2);  // the Maildir's new/ file and the queue's .msg
  CHECK(read_text(msg) == "Subject: both\n\nbody\n");
  CHECK(files_in(s.layout().maildir(alice) / "tmp").empty());
  CHECK(spool::list_queue(s.layout()) == std::vector<std::string>{q.id()});
}

TEST_CASE("adopt() across file systems copies the file into queue/tmp/ first") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root to mount a tmpfs");
    return;
  }
  StoreSpool s;
  spool::Address alice = s.account("alice@example.org");
  const fs::path queue = s.layout().queue_dir();
  if (::mount("tmpfs", queue.c_str(), "tmpfs", 0, "size=1m,mode=0750") != 0) {
    WARN("skipped: cannot mount tmpfs here: " << std::strerror(errno));
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{queue};
  spool::PendingMessage pending = spool::PendingMessage::begin(s.layout(), s.layout().maildir(alice));
  pending.append("Subject: copied\n\nbody\n");
  pending.finish();
  QueueMessage q = QueueMessage::adopt(s.layout(), pending.tmp_path());
  q.commit(envelope());
  const std::string id = q.id();
  CHECK_FALSE(QueueClaim::try_claim(s.layout(), id).has_value());  // the copy is locked too
  q.release();
  struct stat st;
  REQUIRE(::stat((queue / (id + ".msg")).c_str(), &st) == 0);
  CHECK(st.st_nlink == 1);
  CHECK(read_text(queue / (id + ".msg")) == "Subject: copied\n\nbody\n");
  CHECK(files_in(tmp_of(s.layout())).empty());
  CHECK(spool::list_queue(s.layout()) == std::vector<std::string>{id});
  CHECK(QueueClaim::try_claim(s.layout(), id).has_value());
}

TEST_CASE(".env files are read strictly, naming file and line") {
  StoreSpool s;
  const std::string id = enqueue(s.layout(), "x\n");
  const fs::path env = s.layout().queue_dir() / (id + ".env");
  const std::string good = read_text(env);
  auto error_for = [&](const std::string& text) {
    write_text(env, text);
    spool::Error e = error_from([&] { spool::load_queue_entry(s.layout(), id); });
    CHECK(e.code() == spool::Errc::bad_config);
    return std::string(e.what());
  };
  const std::string f = env.string();
  CHECK(error_for(good + "colour: blue\n") == f + ":9: unknown key 'colour'");
  CHECK(error_for(good + "sender: x@y\n") == f + ":9: key 'sender' given twice");
  CHECK(error_for("id: " + id + "\n" + good) == f + ":1: the first line must be 'format: 1'");
  CHECK(error_for("format: 2\n") == f + ":1: key 'format': version 2 is not known");
  CHECK(error_for(good.substr(0, good.size() - 1)) == f + ":1: last line is not complete");
  CHECK(error_for("format: 1\nid: OTHER\n") == f + ":2: key 'id': 'OTHER' does not match the file name");
  CHECK(error_for("format: 1\nid: " + id + "\ncreated: soon\n") == f + ":3: key 'created': 'soon' is not a number");
  std::string no_rcpt = good.substr(0, good.find("recipient:"));
  CHECK(error_for(no_rcpt) == f + ":7: no 'recipient' line");
  CHECK(error_for("format: 1\nid: " + id + "\nrecipient: a@b\n") == f + ":3: required key 'created' is missing");
  CHECK(error_for(good + "no colon here\n") == f + ":9: expected 'key: value'");
  CHECK(error_from([&] { spool::load_queue_entry(s.layout(), "NOSUCHID"); }).code() == spool::Errc::other);
  CHECK(error_from([&] { spool::load_queue_entry(s.layout(), "../x"); }).code() == spool::Errc::invalid_input);
}

TEST_CASE("per-recipient errors round-trip and are checked against the recipients") {
  StoreSpool s;
  QueueEnvelope e = envelope({"a@remote.example", "b@remote.example"});
  e.recipient_errors = {"", "451 4.2.0 try later"};
  const std::string id = enqueue(s.layout(), "x\n", e);
  const fs::path env = s.layout().queue_dir() / (id + ".env");
  CHECK(read_text(env).find("recipient_error: 2 451 4.2.0 try later\n") != std::string::npos);
  CHECK(spool::load_queue_entry(s.layout(), id).recipient_errors == e.recipient_errors);
  const std::string good = read_text(env);
  write_text(env, good + "recipient_error: 3 nobody\n");
  CHECK(std::string(error_from([&] { spool::load_queue_entry(s.layout(), id); }).what()).find("no recipient 3") !=
        std::string::npos);
  QueueEnvelope bad = envelope({"a@remote.example"});
  bad.recipient_errors = {"x", "y"};
  CHECK(error_from([&] { enqueue(s.layout(), "x\n", bad); }).code() == spool::Errc::invalid_input);
}

TEST_CASE("scan_queue lists committed entries with their .env inode and names planted non-files") {
  StoreSpool s;
  const auto& l = s.layout();
  CHECK(spool::scan_queue(l).entries.empty());  // no queue/ yet is an empty queue
  const std::string a = enqueue(l, "a\n");
  const std::string b = enqueue(l, "b\n");
  write_text(l.queue_dir() / "LONEMSG.msg", "being written\n");                  // no .env: not listed
  fs::create_symlink("/etc/passwd", l.queue_dir() / "PLANTED.env");             // symlink: suspect
  write_text(l.queue_dir() / "PLANTED.msg", "x\n");
  write_text(l.queue_dir() / "not-an-id!.env", "x\n");                          // never a queue name
  const spool::QueueScan scan = spool::scan_queue(l);
  REQUIRE(scan.entries.size() == 2);
  CHECK(scan.entries[0].id == std::min(a, b));
  CHECK(scan.entries[1].id == std::max(a, b));
  struct stat st;
  REQUIRE(::lstat((l.queue_dir() / (a + ".env")).c_str(), &st) == 0);
  const auto& ea = scan.entries[0].id == a ? scan.entries[0] : scan.entries[1];
  CHECK(ea.env_inode == st.st_ino);
  CHECK(scan.suspect == std::vector<std::string>{"PLANTED"});
  // Replacing the .env (what retry and the runner do) changes the inode the scan reports.
  auto claim = QueueClaim::try_claim(l, a);
  REQUIRE(claim);
  QueueEnvelope e = claim->envelope();
  e.attempts = 1;
  claim->update(e);
  CHECK(claim->env_inode() != ea.env_inode);
  const spool::QueueScan again = spool::scan_queue(l);
  const auto& ea2 = again.entries[0].id == a ? again.entries[0] : again.entries[1];
  CHECK(ea2.env_inode == claim->env_inode());
}

TEST_CASE("quarantine moves an entry aside, never follows a link, and leaves a held entry alone") {
  StoreSpool s;
  const auto& l = s.layout();
  const std::string id = enqueue(l, "m\n");
  write_text(l.queue_dir() / (id + ".env"), "garbage\x01\n");
  const auto moved = spool::quarantine_queue_entry(l, id);
  CHECK(moved.size() == 2);
  CHECK(read_text(l.queue_dir() / "corrupt" / (id + ".msg")) == "m\n");
  CHECK(read_text(l.queue_dir() / "corrupt" / (id + ".env")) == "garbage\x01\n");
  CHECK(spool::list_queue(l).empty());
  // A planted symlink moves as a link; its target is untouched.
  const fs::path outside = l.root().parent_path() / "target";
  write_text(outside, "secret\n");
  fs::create_symlink(outside, l.queue_dir() / "LINKED.env");
  CHECK(spool::quarantine_queue_entry(l, "LINKED").size() == 1);
  CHECK(fs::is_symlink(l.queue_dir() / "corrupt" / "LINKED.env"));
  CHECK(read_text(outside) == "secret\n");
  // Held by its writer: not ours to move.
  QueueMessage held = QueueMessage::begin(l);
  held.append("x\n");
  held.commit(envelope());
  CHECK(spool::quarantine_queue_entry(l, held.id()).empty());
  CHECK(spool::list_queue(l) == std::vector<std::string>{held.id()});
}
