// maildir_wire_size_test.cc — the ",W=<size>" of Maildir names (Maildir++/Dovecot): the
// message's size with CRLF line ends, which POP3 reports. Delivery writes it, counting the
// LFs without a CR before them as the bytes stream in (also when a CR LF pair is split
// between two appends); list() reads it back, 0 when absent or impossible; the UIDL and
// the ",S=" size are unchanged by it.
#include "spool/maildir.h"

#include "store_fixture.h"

#include <algorithm>

namespace fs = std::filesystem;
using mhtest::files_in;
using mhtest::StoreSpool;
using mhtest::TempDir;
using mhtest::write_text;
using spool::Maildir;

TEST_CASE("list reads W= next to S=, before or after other fields and flags", "[maildir][wire]") {
  TempDir tmp;
  const fs::path dir = tmp.path() / "Maildir";
  spool::create_maildir(dir);
  write_text(dir / "new" / "1700000001.M1P1Q1R1.h,S=10,W=12", "0123456789");
  write_text(dir / "cur" / "1700000002.M1P1Q2R1.h,W=7,S=5:2,S", "abcde");
  write_text(dir / "cur" / "1700000003.M1P1Q3R1.h,S=5:2,W=99", "abcde");  // after ':' is flags
  write_text(dir / "new" / "1700000004.M1P1Q4R1.h,S=5,W=4", "abcde");     // W < S: nonsense
  write_text(dir / "new" / "1700000005.M1P1Q5R1.h,S=5,W=x", "abcde");
  write_text(dir / "new" / "1700000006.M1P1Q6R1.h", "abcde");

  const auto msgs = Maildir(dir).list();
  REQUIRE(msgs.size() == 6);
  CHECK(msgs[0].size == 10);
  CHECK(msgs[0].wire_size == 12);
  CHECK(msgs[0].uidl == "1700000001.M1P1Q1R1.h");
  CHECK(msgs[1].size == 5);
  CHECK(msgs[1].wire_size == 7);
  CHECK(msgs[1].uidl == "1700000002.M1P1Q2R1.h");
  for (std::size_t i = 2; i < 6; ++i) {
    INFO(msgs[i].filename);
    CHECK(msgs[i].wire_size == 0);  // unknown: the reader counts
    CHECK(msgs[i].size == 5);
  }
  // find() describes a message the same way.
  CHECK(Maildir(dir).find("1700000001.M1P1Q1R1.h")->wire_size == 12);
}

TEST_CASE("W= keeps the UIDL: the part before the first ',' or ':'", "[maildir][wire]") {
  CHECK(spool::uidl_of("1700000000.M1P2Q3R4.host,S=120,W=124") == "1700000000.M1P2Q3R4.host");
  CHECK(spool::uidl_of("1700000000.M1P2Q3R4.host,S=120,W=124:2,S") == "1700000000.M1P2Q3R4.host");
}

TEST_CASE("delivery names the file with S= and W= (CRLF size)", "[maildir][wire][delivery]") {
  StoreSpool s;
  auto a = s.account("alice@example.com");
  SECTION("LF line ends") {
    const std::string msg = "Subject: x\n\nline 1\nline 2\n";
    auto out = spool::deliver_bytes(s.layout(), msg, {a});
    REQUIRE(out.at(0).status == spool::DeliveryOutcome::Status::delivered);
    auto names = files_in(s.layout().maildir(a) / "new");
    REQUIRE(names.size() == 1);
    CHECK(names[0] == out[0].uidl + ",S=" + std::to_string(msg.size()) + ",W=" + std::to_string(msg.size() + 4));
    const auto listed = s.maildir(a).list();
    CHECK(listed.at(0).wire_size == msg.size() + 4);
    CHECK(listed.at(0).uidl == out[0].uidl);
  }
  SECTION("CRLF already there, a bare LF, a bare CR, no final newline") {
    const std::string msg = "A: 1\r\n\r\nmixed\nbare\rcr";  // 2 CRLF, 1 bare LF
    auto out = spool::deliver_bytes(s.layout(), msg, {a});
    REQUIRE(out.at(0).status == spool::DeliveryOutcome::Status::delivered);
    CHECK(s.maildir(a).list().at(0).wire_size == msg.size() + 1);
  }
}

TEST_CASE("a CR LF pair split between two appends is not counted as a bare LF", "[maildir][wire][delivery]") {
  StoreSpool s;
  auto a = s.account("bob@example.com");
  auto pending = spool::PendingMessage::begin(s.layout(), s.layout().maildir(a));
  pending.append("A: 1\r");
  pending.append("\nB: 2\n");  // one CRLF (split), one bare LF
  pending.append("\n");        // blank line: bare LF
  pending.append("");
  pending.append("body\r");
  pending.append("\r\n");      // CR CR LF: the LF has a CR before it
  CHECK(pending.size() == 19);
  CHECK(pending.wire_size() == 21);
  auto out = spool::deliver(s.layout(), pending, {a});
  REQUIRE(out.at(0).status == spool::DeliveryOutcome::Status::delivered);
  CHECK(s.maildir(a).list().at(0).filename == out[0].uidl + ",S=19,W=21");
}

TEST_CASE("a large message streamed in pieces gets the exact W=", "[maildir][wire][delivery]") {
  StoreSpool s;
  auto a = s.account("carol@example.com");
  std::string msg = "Subject: big\n\n";
  while (msg.size() < 300000) msg += (msg.size() % 3) ? "a line of text\n" : "a CRLF line\r\n";
  auto pending = spool::PendingMessage::begin(s.layout(), s.layout().maildir(a));
  for (std::size_t i = 0; i < msg.size(); i += 4093) pending.append(std::string_view(msg).substr(i, 4093));
  std::uint64_t bare = 0;
  for (std::size_t i = 0; i < msg.size(); ++i)
    if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r')) ++bare;
  CHECK(pending.wire_size() == msg.size() + bare);
  auto out = spool::deliver(s.layout(), pending, {a});
  REQUIRE(out.at(0).status == spool::DeliveryOutcome::Status::delivered);
  CHECK(s.maildir(a).list().at(0).wire_size == msg.size() + bare);
}

TEST_CASE("the POP3 lock file is a dot file beside the Maildir's other locks", "[maildir][wire]") {
  Maildir md("/spool/domains/d/accounts/u/Maildir");
  CHECK(md.pop3_lock_path() == fs::path("/spool/domains/d/accounts/u/Maildir/.pop3.lock"));
  TempDir tmp;
  const fs::path dir = tmp.path() / "Maildir";
  spool::create_maildir(dir);
  write_text(Maildir(dir).pop3_lock_path(), "");
  CHECK(Maildir(dir).list().empty());
  CHECK_FALSE(spool::maildir_holds_mail(dir));
  CHECK(Maildir(dir).recalc().messages == 0);
}
