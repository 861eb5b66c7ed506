// spool_maildrop_test.cc — SpoolMaildrop on a real temp spool: CRLF sizes from ",W=" and
// counted when it is missing, one session per mailbox (also within one process), a purged
// message, removal keeping maildirsize exact, and a whole session over it.
#include "pop3/dot_stuffer.h"
#include "pop3/session.h"
#include "pop3/spool_maildrop.h"

#include <spool/accounts.h>
#include <spool/delivery.h>
#include <spool/maildir.h>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

namespace fs = std::filesystem;
using namespace mh::pop3;

namespace {

struct TempSpool {
  fs::path root;
  spool::Layout layout;
  spool::Address alice = spool::Address::parse("alice@example.org");

  TempSpool() : root(make_root()), layout(root / "spool") {
    fs::create_directories(layout.root());
    layout.ensure_skeleton();
    spool::add_domain(layout, alice.domain(), {}, /*exist_ok=*/true);
    spool::add_account(layout, alice, {}, /*exist_ok=*/false);
  }
  ~TempSpool() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  TempSpool(const TempSpool&) = delete;
  TempSpool& operator=(const TempSpool&) = delete;

  static fs::path make_root() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/mh-pop3-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    return pattern;
  }

  fs::path maildir() const { return layout.maildir(alice); }

  std::string deliver(const std::string& text) {
    auto out = spool::deliver_bytes(layout, text, {alice});
    REQUIRE(out.at(0).status == spool::DeliveryOutcome::Status::delivered);
    return out[0].uidl;
  }

  // A file put there by other software: no ",W=", counted in maildirsize like a deliverer.
  void put_foreign(const std::string& name, const std::string& text) {
    std::ofstream(maildir() / "cur" / name, std::ios::binary) << text;
    spool::Maildir(maildir()).record(static_cast<std::int64_t>(text.size()), 1);
  }
};

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

struct AcceptAll : mh::auth::Authenticator {
  mh::auth::AuthOutcome authenticate(std::string_view, std::string_view login, const spool::Secret&) override {
    mh::auth::AuthOutcome o;
    o.kind = mh::auth::AuthOutcome::Kind::ok;
    o.address = std::string(login);
    return o;
  }
};

} // namespace

TEST_CASE("sizes are CRLF sizes: from W= when delivered by us, counted otherwise", "[pop3][maildrop]") {
  TempSpool s;
  s.deliver("Subject: a\n\nline\n");                      // 17 bytes, 3 LFs
  s.put_foreign("1.M1P1Q1R1.other:2,S", "A: 1\r\n\r\nmixed\nend");  // 2 CRLF, 1 bare LF
  s.put_foreign("2.M1P1Q1R1.other,S=3:2,", "a\nb");               // S= but no W=
  SpoolMaildropProvider provider(s.layout);
  auto drop = provider.open("alice@example.org");
  const auto& msgs = drop->messages();
  REQUIRE(msgs.size() == 3);
  CHECK(msgs[0].size == 18);  // oldest first: "1." then "2." then our delivery (now)
  CHECK(msgs[0].uidl == "1.M1P1Q1R1.other");
  CHECK(msgs[1].size == 4);
  CHECK(msgs[2].size == 20);
  // Our delivery named the file with both sizes, so no file was read for it.
  const auto names = spool::Maildir(s.maildir()).list();
  CHECK(names[2].filename == names[2].uidl + ",S=17,W=20");
}

TEST_CASE("count_wire_size counts only LFs without a CR before them, across chunks", "[pop3][maildrop]") {
  TempSpool s;
  std::string big;
  for (int i = 0; i < 20000; ++i) big += (i % 2) ? "crlf line\r\n" : "lf line\n";
  const fs::path p = s.root / "big";
  std::ofstream(p, std::ios::binary) << big;
  const int fd = ::open(p.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK(count_wire_size(fd, p) == big.size() + 10000);
  ::close(fd);
}

TEST_CASE("one POP3 session per mailbox, also between threads of one process", "[pop3][maildrop]") {
  TempSpool s;
  s.deliver("Subject: a\n\nx\n");
  SpoolMaildropProvider provider(s.layout);
  auto first = provider.open("alice@example.org");
  CHECK_THROWS_AS(provider.open("alice@example.org"), MaildropBusy);
  CHECK(fs::exists(s.maildir() / ".pop3.lock"));
  CHECK(spool::Maildir(s.maildir()).list().size() == 1);  // the lock file is no message
  first.reset();
  CHECK_NOTHROW(provider.open("alice@example.org"));
}

TEST_CASE("open and remove; a purged message is gone, maildirsize stays exact", "[pop3][maildrop]") {
  TempSpool s;
  s.deliver("Subject: one\n\n.dot\n");
  s.deliver("Subject: two\n\nbody\n");
  s.deliver("Subject: three\n\nbody\n");
  SpoolMaildropProvider provider(s.layout);
  auto drop = provider.open("alice@example.org");
  REQUIRE(drop->messages().size() == 3);
  auto fd = drop->open(0);
  REQUIRE(fd);
  CHECK(read_fd(*fd) == "Subject: one\n\n.dot\n");

  // Another reader purges message 2 behind the session's back.
  spool::Maildir md(s.maildir());
  REQUIRE(md.remove(md.list().at(1)));
  CHECK_FALSE(drop->open(1).has_value());
  CHECK(drop->remove(1));  // already gone: fine
  CHECK(drop->remove(0));
  CHECK(md.list().size() == 1);
  const spool::Usage before = md.usage();
  CHECK(before.messages == 1);
  CHECK(before.bytes == std::string("Subject: three\n\nbody\n").size());
  const spool::Usage recalc = md.recalc();
  CHECK(recalc.bytes == before.bytes);
  CHECK(recalc.messages == before.messages);
}

TEST_CASE("a bad address never becomes a path", "[pop3][maildrop]") {
  TempSpool s;
  SpoolMaildropProvider provider(s.layout);
  CHECK_THROWS(provider.open("../../etc@example.org"));
  CHECK_THROWS(provider.open("not an address"));
}

TEST_CASE("a whole POP3 session over the real spool: RETR, DELE, QUIT", "[pop3][maildrop][session]") {
  TempSpool s;
  s.deliver("Subject: one\n\n.dot\nend\n");
  s.deliver("Subject: two\n\nbody\n");
  AcceptAll auth;
  SpoolMaildropProvider provider(s.layout);
  SessionConfig config;
  config.plaintext_allowed = true;
  Pop3Session session(config, "127.0.0.1", auth, provider);
  CHECK(session.feed("USER alice@example.org\r\nPASS x\r\n").action == Action::authenticate);
  CHECK(session.authenticate().replies == "+OK Logged in.\r\n");
  CHECK(session.feed("LIST\r\n").replies == "+OK 2 messages:\r\n1 27\r\n2 22\r\n.\r\n");
  Output r = session.feed("RETR 1\r\n");
  REQUIRE(r.action == Action::transfer);
  CHECK(r.replies == "+OK 27 octets\r\n");
  DotStuffer d;
  std::string sent = d.feed(read_fd(r.transfer.fd));
  sent += d.finish();
  CHECK(sent == "Subject: one\r\n\r\n..dot\r\nend\r\n.\r\n");
  CHECK(sent.size() == 27 + 1 + 3);  // the size told, plus the stuffed dot and ".\r\n"

  // While the session holds it, another cannot get in.
  Pop3Session other(config, "127.0.0.2", auth, provider);
  other.feed("USER alice@example.org\r\nPASS x\r\n");
  CHECK(other.authenticate().replies == "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n");

  const Output quit = session.feed("DELE 1\r\nQUIT\r\n");
  CHECK(quit.replies == "+OK Marked to be deleted.\r\n");
  REQUIRE(quit.action == Action::update);
  CHECK(session.update().replies == "+OK Logging out, messages deleted.\r\n");
  spool::Maildir md(s.maildir());
  REQUIRE(md.list().size() == 1);
  CHECK(md.usage().messages == 1);
  CHECK(md.usage().bytes == std::string("Subject: two\n\nbody\n").size());
  other.feed("USER alice@example.org\r\nPASS x\r\n");
  CHECK(other.authenticate().replies == "+OK Logged in.\r\n");  // unlocked at QUIT
}
