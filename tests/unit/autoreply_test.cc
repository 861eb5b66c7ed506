// autoreply_test.cc — vacation replies (autoreply.h, RFC 3834): each reason not to
// answer, in order; the per-account memory (once per N days, case-insensitive senders,
// bounded, damaged lines skipped, racing threads answer once); and the reply itself,
// parsed back: CRLF only, RFC 2047 words ≤ 75 characters that decode to the subject,
// a base64 UTF-8 body that decodes to the configured Japanese text, threading fields,
// and no header field smuggled in through the subject, display name or sender.
#include "spool/autoreply.h"

#include "spool/header_decode.h"
#include "store_fixture.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

using spool::Errc;
using spool::FilterMessage;
using spool::NoReplyReason;
using mhtest::error_from;
namespace fs = std::filesystem;

namespace Catch {
template <>
struct StringMaker<spool::NoReplyReason> {
  static std::string convert(spool::NoReplyReason r) { return std::string(spool::to_string(r)); }
};
} // namespace Catch

namespace {

constexpr std::int64_t t0 = 1700000000;
constexpr std::int64_t day = 86400;

const spool::Address alice = spool::Address::parse("alice@example.org");

FilterMessage message(const std::string& header, const std::string& sender = "bob@example.net") {
  return FilterMessage(header, header.size() + 100, sender);
}

NoReplyReason refusal(const std::string& header, const std::string& sender = "bob@example.net") {
  return spool::autoreply_refusal(alice, message(header, sender));
}

const std::string addressed = "From: Bob <bob@example.net>\nTo: Alice <alice@example.org>\nSubject: hi\n";

// --- a small reader for the reply ---

struct Parsed {
  std::vector<std::pair<std::string, std::string>> fields;  // name, unfolded value
  std::vector<std::string> header_lines;                    // physical lines, CRLF removed
  std::string body;                                         // as sent (base64 lines)

  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : fields)
      if (n == name) out.push_back(v);
    return out;
  }
  std::string one(const std::string& name) const {
    const auto v = all(name);
    if (v.size() != 1) FAIL("expected one " << name << " field, found " << v.size());
    return v.front();
  }
};

Parsed parse_reply(const std::string& m) {
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\n') REQUIRE((i > 0 && m[i - 1] == '\r'));
    if (m[i] == '\r') REQUIRE((i + 1 < m.size() && m[i + 1] == '\n'));
  }
  const auto end = m.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  Parsed p;
  p.body = m.substr(end + 4);
  std::string head = m.substr(0, end + 2);
  std::size_t pos = 0;
  while (pos < head.size()) {
    const auto nl = head.find("\r\n", pos);
    const std::string line = head.substr(pos, nl - pos);
    pos = nl + 2;
    p.header_lines.push_back(line);
    REQUIRE(!line.empty());
    if (line[0] == ' ' || line[0] == '\t') {
      REQUIRE(!p.fields.empty());
      p.fields.back().second += line;  // unfold: drop the CRLF, keep the whitespace
    } else {
      const auto colon = line.find(':');
      REQUIRE(colon != std::string::npos);
      std::string value = line.substr(colon + 1);
      p.fields.emplace_back(line.substr(0, colon), value);
    }
  }
  for (auto& f : p.fields) {
    const auto start = f.second.find_first_not_of(' ');
    f.second = start == std::string::npos ? std::string() : f.second.substr(start);
  }
  return p;
}

std::string base64_decode(const std::string& text) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '=') continue;
    const auto k = chars.find(c);
    REQUIRE(k != std::string::npos);
    v = (v << 6) | static_cast<unsigned>(k);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xff);
    }
  }
  return out;
}

// Every "=?...?=" encoded word in a header value.
std::vector<std::string> encoded_words(const std::string& value) {
  std::vector<std::string> words;
  std::size_t pos = 0;
  while ((pos = value.find("=?", pos)) != std::string::npos) {
    const auto q1 = value.find('?', pos + 2);
    const auto q2 = value.find('?', q1 + 1);
    const auto end = value.find("?=", q2 + 1);
    REQUIRE(end != std::string::npos);
    words.push_back(value.substr(pos, end + 2 - pos));
    pos = end + 2;
  }
  return words;
}

bool valid_utf8_without_replacement(const std::string& s) {
  return s.find("\xEF\xBF\xBD") == std::string::npos;
}

spool::AutoReply settings(const std::string& text, const std::string& subject = "") {
  spool::AutoReply a;
  a.enabled = true;
  a.message = text;
  a.subject = subject;
  return a;
}

const std::string japanese_body = "お問い合わせありがとうございます。\n休暇中です。";

} // namespace

TEST_CASE("autoreply: a personal message in To or Cc may be answered", "[autoreply]") {
  CHECK(refusal(addressed) == NoReplyReason::none);
  CHECK(refusal("From: bob@example.net\nTo: carol@example.net\nCc: Carol <carol@example.net>,\n "
                "\"Alice A.\" <Alice@Example.ORG>\nSubject: hi\n") == NoReplyReason::none);
  CHECK(refusal("To: undisclosed-recipients:;\nCc: team: carol@example.net, alice@example.org;\n") ==
        NoReplyReason::none);
  CHECK(refusal(addressed + "Auto-Submitted: no (a person wrote this)\n") == NoReplyReason::none);
  CHECK(refusal(addressed + "Precedence: first-class\n") == NoReplyReason::none);
  CHECK(refusal(addressed + "Delivered-To: carol@example.org\n") == NoReplyReason::none);
  CHECK(refusal(addressed, "owner@example.net") == NoReplyReason::none);
  CHECK(refusal(addressed, "requester@example.net") == NoReplyReason::none);
}

TEST_CASE("autoreply: Delivered-To the account is a loop", "[autoreply]") {
  CHECK(refusal("Delivered-To: alice@example.org\n" + addressed) == NoReplyReason::loop);
  CHECK(refusal("Delivered-To: carol@example.org\nDelivered-To:  ALICE@example.ORG \n" + addressed) ==
        NoReplyReason::loop);
  // First in order: even a null-sender list message is reported as the loop.
  CHECK(refusal("Delivered-To: <alice@example.org>\nList-Id: x\n" + addressed, "") == NoReplyReason::loop);
}

TEST_CASE("autoreply: the null sender is never answered", "[autoreply]") {
  CHECK(refusal(addressed, "") == NoReplyReason::null_sender);
  CHECK(refusal(addressed + "List-Id: <x.example.net>\n", "") == NoReplyReason::null_sender);
}

TEST_CASE("autoreply: MAILER-DAEMON, postmaster and list-software senders", "[autoreply]") {
  for (const char* sender :
       {"MAILER-DAEMON@example.net", "mailer-daemon@example.net", "Postmaster@example.net", "mailer@example.net",
        "LISTSERV@example.net", "majordomo@example.net", "owner-staff@example.net", "staff-request@example.net",
        "staff-owner@example.net", "staff-bounces@example.net", "staff-bounces+alice=example.org@example.net",
        "noreply@example.net", "No-Reply@example.net", "MAILER-DAEMON"}) {
    INFO(sender);
    CHECK(refusal(addressed, sender) == NoReplyReason::mailer_daemon);
  }
}

TEST_CASE("autoreply: Auto-Submitted other than no", "[autoreply]") {
  CHECK(refusal(addressed + "Auto-Submitted: auto-generated\n") == NoReplyReason::auto_submitted);
  CHECK(refusal(addressed + "Auto-Submitted: auto-generated; foo\n") == NoReplyReason::auto_submitted);
  CHECK(refusal(addressed + "auto-submitted: Auto-Replied (vacation)\n") == NoReplyReason::auto_submitted);
  CHECK(refusal(addressed + "Auto-Submitted: (no) auto-notified\n") == NoReplyReason::auto_submitted);
  CHECK(refusal(addressed + "Auto-Submitted:\n") == NoReplyReason::auto_submitted);
  CHECK(refusal(addressed + "Auto-Submitted: NO\n") == NoReplyReason::none);
  // Before the list checks.
  CHECK(refusal(addressed + "Auto-Submitted: auto-generated\nList-Id: <x>\n") == NoReplyReason::auto_submitted);
}

TEST_CASE("autoreply: list mail and bulk precedence", "[autoreply]") {
  CHECK(refusal(addressed + "List-Id: Staff <staff.example.net>\n") == NoReplyReason::list_mail);
  CHECK(refusal(addressed + "List-Unsubscribe: <mailto:staff-leave@example.net>\n") == NoReplyReason::list_mail);
  CHECK(refusal(addressed + "List-Post: <mailto:staff@example.net>\n") == NoReplyReason::list_mail);
  CHECK(refusal(addressed + "Precedence: bulk\n") == NoReplyReason::list_mail);
  CHECK(refusal(addressed + "Precedence: List\n") == NoReplyReason::list_mail);
  CHECK(refusal(addressed + "Precedence: junk (spam)\n") == NoReplyReason::list_mail);
  // Before the To/Cc check: a list post names the list, not the member.
  CHECK(refusal("To: staff@example.net\nList-Id: <staff.example.net>\n") == NoReplyReason::list_mail);
}

TEST_CASE("autoreply: the account must be named in To or Cc", "[autoreply]") {
  CHECK(refusal("From: bob@example.net\nTo: carol@example.net\n") == NoReplyReason::not_addressed);
  CHECK(refusal("From: bob@example.net\nTo: carol@example.net\nBcc: alice@example.org\n") ==
        NoReplyReason::not_addressed);
  CHECK(refusal("From: bob@example.net\nTo: \"alice@example.org\" <carol@example.net>\n") ==
        NoReplyReason::not_addressed);
  CHECK(refusal("From: bob@example.net\nTo: alice@example.org.evil\n") == NoReplyReason::not_addressed);
  CHECK(refusal("From: bob@example.net\n") == NoReplyReason::not_addressed);
}

TEST_CASE("autoreply: a sender is answered once per N days", "[autoreply]") {
  mhtest::StoreSpool spool;
  const auto a = spool.account("alice@example.org");
  const auto& layout = spool.layout();
  const fs::path seen = layout.account_dir(a) / "autoreply.seen";

  CHECK(spool::autoreply_would_send(layout, a, "bob@example.net", 7, t0));
  CHECK_FALSE(fs::exists(seen));  // a read-only check writes nothing
  CHECK(spool::autoreply_claim(layout, a, "bob@example.net", 7, t0));
  CHECK_FALSE(spool::autoreply_would_send(layout, a, "bob@example.net", 7, t0 + 1));
  CHECK_FALSE(spool::autoreply_claim(layout, a, "bob@example.net", 7, t0 + 1));
  CHECK_FALSE(spool::autoreply_claim(layout, a, "Bob@EXAMPLE.net", 7, t0 + 7 * day - 1));
  CHECK(spool::autoreply_claim(layout, a, "carol@example.net", 7, t0 + 2));

  struct stat st;
  REQUIRE(::stat(seen.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(mhtest::read_text(seen) ==
        std::to_string(t0) + " bob@example.net\n" + std::to_string(t0 + 2) + " carol@example.net\n");

  // Exactly N days later: answered again.
  CHECK(spool::autoreply_would_send(layout, a, "bob@example.net", 7, t0 + 7 * day));
  CHECK(spool::autoreply_claim(layout, a, "BOB@example.net", 7, t0 + 7 * day));
  CHECK_FALSE(spool::autoreply_claim(layout, a, "bob@example.net", 7, t0 + 7 * day + 5));
  CHECK(mhtest::read_text(seen) ==
        std::to_string(t0 + 2) + " carol@example.net\n" + std::to_string(t0 + 7 * day) + " bob@example.net\n");
  // A shorter interval takes effect at once; carol, past her 7 days, is forgotten by the rewrite.
  CHECK(spool::autoreply_claim(layout, a, "bob@example.net", 1, t0 + 8 * day));
  CHECK(mhtest::read_text(seen) == std::to_string(t0 + 8 * day) + " bob@example.net\n");
}

TEST_CASE("autoreply: damaged memory lines are skipped, never an error", "[autoreply]") {
  mhtest::StoreSpool spool;
  const auto a = spool.account("alice@example.org");
  const fs::path seen = spool.layout().account_dir(a) / "autoreply.seen";
  mhtest::write_text(seen, "garbage\n\n-5 x@y\n" + std::to_string(t0 - 10) + "  two-spaces@example.net\n" +
                               std::to_string(t0 + 30 * day) + " future@example.net\n" + std::to_string(t0 - 10) +
                               " bob@example.net\n" + "007 zero@example.net\n" + std::to_string(t0 - 5) +
                               " UPPER@example.net\n" + std::to_string(t0) + " torn@example.net");
  CHECK_FALSE(spool::autoreply_claim(spool.layout(), a, "bob@example.net", 7, t0));
  CHECK(spool::autoreply_claim(spool.layout(), a, "future@example.net", 7, t0));
  CHECK(spool::autoreply_claim(spool.layout(), a, "torn@example.net", 7, t0));
  CHECK(mhtest::read_text(seen) == std::to_string(t0 - 10) + " bob@example.net\n" + std::to_string(t0) +
                                       " future@example.net\n" + std::to_string(t0) + " torn@example.net\n");
}

TEST_CASE("autoreply: the memory keeps the newest max_autoreply_memory entries", "[autoreply]") {
  mhtest::StoreSpool spool;
  const auto a = spool.account("alice@example.org");
  const fs::path seen = spool.layout().account_dir(a) / "autoreply.seen";
  constexpr std::size_t extra = 50;
  const std::size_t n = spool::max_autoreply_memory + extra;
  std::string text;
  for (std::size_t i = 0; i < n; ++i)  // oldest first, all within the interval
    text += std::to_string(t0 - static_cast<std::int64_t>(n) + static_cast<std::int64_t>(i)) + " s" +
            std::to_string(i) + "@example.net\n";
  mhtest::write_text(seen, text);

  CHECK_FALSE(spool::autoreply_claim(spool.layout(), a, "s" + std::to_string(n - 1) + "@example.net", 7, t0));
  CHECK(spool::autoreply_claim(spool.layout(), a, "new@example.net", 7, t0));
  const std::string after = mhtest::read_text(seen);
  CHECK(std::count(after.begin(), after.end(), '\n') == static_cast<long>(spool::max_autoreply_memory));
  CHECK(after.find(" s" + std::to_string(extra) + "@") == std::string::npos);  // the 51 oldest went
  CHECK(after.find(" s" + std::to_string(extra + 1) + "@") != std::string::npos);
  CHECK(after.ends_with("\n" + std::to_string(t0) + " new@example.net\n"));
  // The forgotten ones are answered again; the kept ones are not.
  CHECK(spool::autoreply_would_send(spool.layout(), a, "s0@example.net", 7, t0));
  CHECK_FALSE(spool::autoreply_would_send(spool.layout(), a, "s5000@example.net", 7, t0));
}

TEST_CASE("autoreply: threads claiming the same sender answer exactly once", "[autoreply]") {
  mhtest::StoreSpool spool;
  const auto a = spool.account("alice@example.org");
  for (int round = 0; round < 5; ++round) {
    const std::string sender = "racer" + std::to_string(round) + "@example.net";
    std::atomic<int> ready{0};
    std::atomic<int> answered{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&] {
        ++ready;
        while (ready.load() < 4) std::this_thread::yield();
        try {
          if (spool::autoreply_claim(spool.layout(), a, sender, 7, t0)) ++answered;
        } catch (...) {
          ++failed;
        }
      });
    for (auto& t : threads) t.join();
    CHECK(failed.load() == 0);
    CHECK(answered.load() == 1);
  }
}

TEST_CASE("autoreply: processes claiming the same sender answer exactly once", "[autoreply]") {
  mhtest::StoreSpool spool;
  const auto a = spool.account("alice@example.org");
  int gate[2];
  REQUIRE(::pipe(gate) == 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 4; ++i) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      }  // EOF when the parent closes its end: all start together
      int code = 99;
      try {
        code = spool::autoreply_claim(spool.layout(), a, "forked@example.net", 7, t0) ? 10 : 11;
      } catch (...) {
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);
  int answered = 0;
  for (pid_t pid : children) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    REQUIRE(WIFEXITED(status));
    CHECK((WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11));
    answered += WEXITSTATUS(status) == 10;
  }
  CHECK(answered == 1);
}

TEST_CASE("autoreply: unusable senders and missing accounts are errors", "[autoreply]") {
  mhtest::StoreSpool spool;
  const auto a = spool.account("alice@example.org");
  for (const std::string& bad : {std::string(), std::string("a b@example.net"), std::string("a@b\nc"),
                                std::string(600, 'x') + "@example.net"}) {
    CHECK(error_from([&] { (void)spool::autoreply_claim(spool.layout(), a, bad, 7, t0); }).code() ==
          Errc::invalid_input);
  }
  spool.domain("example.org");
  const auto ghost = spool::Address::parse("ghost@example.org");
  CHECK(error_from([&] { (void)spool::autoreply_claim(spool.layout(), ghost, "bob@example.net", 7, t0); }).code() ==
        Errc::no_account);
}

TEST_CASE("autoreply: the reply to a Japanese message", "[autoreply]") {
  const std::string header =
      "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <taro@example.jp>\r\n"
      "To: alice@example.org\r\n"
      "Subject: =?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEGyhC?=\r\n"
      "Message-ID: <orig.1@example.jp>\r\n"
      "References: <a.1@example.jp>\r\n <b.2@example.jp>\r\n";
  const FilterMessage original(header, 1000, "taro@example.jp");
  const std::string reply =
      spool::build_autoreply(alice, "", settings(japanese_body), original, "mx.example.org", t0);
  INFO(reply);
  const Parsed p = parse_reply(reply);

  CHECK(p.one("From") == "<alice@example.org>");
  CHECK(p.one("To") == "<taro@example.jp>");
  const std::string subject = p.one("Subject");
  CHECK(spool::decode_header_value(subject) == "Auto: 【重要】会議");
  for (const auto& w : encoded_words(subject)) {
    INFO(w);
    CHECK(w.size() <= 75);
    CHECK(w.rfind("=?UTF-8?B?", 0) == 0);
  }
  CHECK(p.one("Date") == "Tue, 14 Nov 2023 22:13:20 +0000");
  const std::string id = p.one("Message-ID");
  CHECK(id.front() == '<');
  CHECK(id.substr(id.size() - 16) == "@mx.example.org>");
  CHECK(p.one("In-Reply-To") == "<orig.1@example.jp>");
  CHECK(p.one("References") == "<a.1@example.jp> <b.2@example.jp> <orig.1@example.jp>");
  CHECK(p.one("Auto-Submitted") == "auto-replied");
  CHECK(p.all("Precedence").empty());
  CHECK(p.one("MIME-Version") == "1.0");
  CHECK(p.one("Content-Type") == "text/plain; charset=UTF-8");
  CHECK(p.one("Content-Transfer-Encoding") == "base64");

  for (const auto& line : p.header_lines) CHECK(line.size() <= 78);
  std::size_t pos = 0;
  while (pos < p.body.size()) {
    const auto nl = p.body.find("\r\n", pos);
    REQUIRE(nl != std::string::npos);
    CHECK(nl - pos <= 76);
    pos = nl + 2;
  }
  const std::string text = base64_decode(p.body);
  CHECK(text == "お問い合わせありがとうございます。\r\n休暇中です。");
  std::string lf = text;
  lf.erase(std::remove(lf.begin(), lf.end(), '\r'), lf.end());
  CHECK(lf == japanese_body);

  // A fresh Message-ID each time.
  const Parsed again = parse_reply(spool::build_autoreply(alice, "", settings(japanese_body), original, "mx", t0));
  CHECK(again.one("Message-ID") != id);
}

TEST_CASE("autoreply: long non-ASCII subjects become several words, none splitting a character", "[autoreply]") {
  std::string long_subject;
  for (int i = 0; i < 30; ++i) long_subject += "会議室😀";  // 3- and 4-byte characters
  const FilterMessage original("To: alice@example.org\nSubject: x\n", 100, "bob@example.net");
  const Parsed p =
      parse_reply(spool::build_autoreply(alice, "", settings("x", long_subject), original, "mx.example.org", t0));
  const std::string subject = p.one("Subject");
  const auto words = encoded_words(subject);
  CHECK(words.size() > 5);
  for (const auto& w : words) {
    INFO(w);
    CHECK(w.size() <= 75);
    CHECK(valid_utf8_without_replacement(spool::decode_header_value(w)));  // each decodes alone
  }
  CHECK(spool::decode_header_value(subject) == long_subject);
  for (const auto& line : p.header_lines) CHECK(line.size() <= 76);
}

TEST_CASE("autoreply: From carries the display name, quoted or encoded as needed", "[autoreply]") {
  const FilterMessage original("To: alice@example.org\nSubject: hello\n", 100, "bob@example.net");
  auto from = [&](const std::string& name) {
    return parse_reply(spool::build_autoreply(alice, name, settings("x"), original, "mx", t0)).one("From");
  };
  CHECK(from("Alice Example") == "Alice Example <alice@example.org>");
  CHECK(from("Example, Alice") == "\"Example, Alice\" <alice@example.org>");
  CHECK(from("A. \"Al\" Ex") == "\"A. \\\"Al\\\" Ex\" <alice@example.org>");
  const std::string jp = from("山田 太郎");
  CHECK(jp.find("=?UTF-8?B?") == 0);
  CHECK(spool::decode_header_value(jp) == "山田 太郎 <alice@example.org>");

  const Parsed p = parse_reply(spool::build_autoreply(alice, "", settings("x"), original, "mx", t0));
  CHECK(p.one("Subject") == "Auto: hello");
}

TEST_CASE("autoreply: threading fields follow RFC 5322 §3.6.4", "[autoreply]") {
  auto reply_to = [](const std::string& header) {
    return parse_reply(spool::build_autoreply(alice, "", settings("x"),
                                              FilterMessage(header, 100, "bob@example.net"), "mx", t0));
  };
  // No Message-ID: neither field.
  const Parsed none = reply_to("To: alice@example.org\nReferences: <a@x>\n");
  CHECK(none.all("In-Reply-To").empty());
  CHECK(none.all("References").empty());
  // No References: the parent's single In-Reply-To, then its id.
  CHECK(reply_to("Message-ID: <m@x>\nIn-Reply-To: <p@x>\n").one("References") == "<p@x> <m@x>");
  CHECK(reply_to("Message-ID:   <m@x> (comment)\n").one("In-Reply-To") == "<m@x>");
  // At most 10 ids, the last ones.
  std::string refs = "References:";
  for (int i = 0; i < 15; ++i) refs += " <r" + std::to_string(i) + "@x>";
  const Parsed many = reply_to("Message-ID: <m@x>\n" + refs + "\n");
  CHECK(many.one("References") == "<r6@x> <r7@x> <r8@x> <r9@x> <r10@x> <r11@x> <r12@x> <r13@x> <r14@x> <m@x>");
  for (const auto& line : many.header_lines) CHECK(line.size() <= 76);
}

TEST_CASE("autoreply: no header field can be injected through the inputs", "[autoreply]") {
  const FilterMessage original("To: alice@example.org\nSubject: =?UTF-8?B?aGkNCkJjYzogZXZpbEBleGFtcGxlLmNvbQ==?=\n",
                               100, "bob@example.net>\r\nBcc: evil@example.com");
  for (const std::string& subject : {std::string(), std::string("Hi\r\nBcc: evil@example.com\r\n")}) {
    const std::string reply = spool::build_autoreply(alice, "Alice\r\nBcc: evil@example.com", settings("x\r\n.\r\n", subject),
                                                     original, "mx\r\nBcc: x", t0);
    INFO(reply);
    const Parsed p = parse_reply(reply);
    CHECK(p.all("Bcc").empty());
    for (const auto& [name, value] : p.fields) CHECK(name.find(' ') == std::string::npos);
  }
  // A configured subject is used as it is, its line break made a space.
  const Parsed p = parse_reply(spool::build_autoreply(alice, "", settings("x", "Away\nuntil Monday"), original, "mx", t0));
  CHECK(p.one("Subject") == "Away until Monday");
}
