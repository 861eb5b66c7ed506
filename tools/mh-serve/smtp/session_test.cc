// session_test.cc — the SMTP session fed lines, with a fake backend: every reply text,
// pipelining, limits, the delivery outcomes, and random input that must not crash it.
#include "smtp/session.h"

#include <catch2/catch.hpp>

#include <map>
#include <random>

using namespace mh::smtp;

namespace {

struct FakeStore {
  std::map<std::string, RecipientCheck::Kind> mailboxes;  // lower-case address → kind
  std::map<std::string, DeliveryResult::Status> outcome;  // default delivered
  std::vector<std::string> messages;                      // delivered contents
  int aborted = 0;
  bool fail_begin = false;
};

class FakeSink : public MessageSink {
public:
  FakeSink(FakeStore& s, std::vector<std::string> r) : store_(s), rcpts_(std::move(r)) {}
  void append(std::string_view b) override { text_.append(b); }
  std::vector<DeliveryResult> deliver() override {
    std::vector<DeliveryResult> out;
    bool any = false;
    for (const auto& r : rcpts_) {
      DeliveryResult d;
      d.recipient = r;
      auto it = store_.outcome.find(r);
      d.status = it == store_.outcome.end() ? DeliveryResult::Status::delivered : it->second;
      any |= d.status == DeliveryResult::Status::delivered;
      out.push_back(d);
    }
    if (any) store_.messages.push_back(text_);
    done_ = true;
    return out;
  }
  void abort() noexcept override {
    if (!done_ && !aborted_) ++store_.aborted;
    aborted_ = true;
  }

private:
  FakeStore& store_;
  std::vector<std::string> rcpts_;
  std::string text_;
  bool done_ = false, aborted_ = false;
};

class FakeBackend : public MailBackend {
public:
  explicit FakeBackend(FakeStore& s) : store_(s) {}
  RecipientCheck check_recipient(std::string_view mailbox, std::uint64_t) override {
    std::string key(mailbox);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    RecipientCheck r;
    auto it = store_.mailboxes.find(key);
    if (it != store_.mailboxes.end()) {
      r.kind = it->second;
    } else {
      r.kind = key.size() > 12 && key.substr(key.size() - 12) == "@example.org" ? RecipientCheck::Kind::unknown_user
                                                                                 : RecipientCheck::Kind::not_local;
    }
    r.canonical = key;
    return r;
  }
  std::unique_ptr<MessageSink> begin_message(const std::vector<std::string>& r) override {
    if (store_.fail_begin) throw std::runtime_error("disk on fire");
    return std::make_unique<FakeSink>(store_, r);
  }
  std::string new_message_id() override { return "ID" + std::to_string(++n_); }
  std::int64_t now() override { return 1732765200; }  // Thu, 28 Nov 2024 03:40:00 +0000

private:
  FakeStore& store_;
  int n_ = 0;
};

struct Harness {
  FakeStore store;
  FakeBackend backend{store};
  SessionConfig config;
  std::unique_ptr<SmtpSession> session;
  std::vector<std::string> log;
  bool closed = false;

  explicit Harness(SessionConfig c = {}) : config(std::move(c)) {
    config.hostname = "mx.example.org";
    store.mailboxes["alice@example.org"] = RecipientCheck::Kind::local;
    store.mailboxes["bob@example.org"] = RecipientCheck::Kind::local;
    store.mailboxes["full@example.org"] = RecipientCheck::Kind::over_quota;
    store.mailboxes["off@example.org"] = RecipientCheck::Kind::disabled;
    session = std::make_unique<SmtpSession>(config, ClientInfo{"192.0.2.7", "", false}, backend);
  }

  // Sends `in`, running deliveries as the network layer would; returns all replies.
  std::string send(std::string_view in) {
    std::string replies;
    while (!in.empty() && !closed) {
      Output o = session->feed(in);
      replies += o.replies;
      log.insert(log.end(), o.log.begin(), o.log.end());
      in.remove_prefix(o.consumed);
      if (o.action == Action::deliver) {
        Output d = session->deliver();
        replies += d.replies;
        log.insert(log.end(), d.log.begin(), d.log.end());
        if (d.action == Action::close) closed = true;
      }
      if (o.action == Action::close) closed = true;
      if (o.consumed == 0 && o.action == Action::none) break;
    }
    return replies;
  }
};

const std::string ehlo_reply =
    "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 31457280\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n";

} // namespace

TEST_CASE("greeting and EHLO advertise exactly the extensions") {
  Harness h;
  CHECK(h.session->greeting().replies == "220 mx.example.org ESMTP mailhost\r\n");
  CHECK(h.send("EHLO client.example\r\n") == ehlo_reply);
  CHECK(h.send("HELO client.example\r\n") == "250 mx.example.org\r\n");
}

TEST_CASE("a whole transaction, pipelined in one write") {
  Harness h;
  std::string r = h.send(
      "EHLO c.example\r\nMAIL FROM:<s@sender.example> SIZE=20\r\nRCPT TO:<Alice@Example.org>\r\nDATA\r\n"
      "Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
  CHECK(r == ehlo_reply + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                          "250 2.0.0 Ok: queued as ID1\r\n221 2.0.0 Bye\r\n");
  REQUIRE(h.store.messages.size() == 1);
  CHECK(h.store.messages[0] ==
        "Return-Path: <s@sender.example>\n"
        "Received: from c.example (unknown [192.0.2.7])\n"
        "\tby mx.example.org (mailhost) with ESMTP id ID1\n"
        "\tfor <alice@example.org>; Thu, 28 Nov 2024 03:40:00 +0000\n"
        "Delivered-To: alice@example.org\n"
        "Subject: hi\n\n.dot\n");
  REQUIRE(h.log.size() == 1);
  CHECK(h.log[0] == "client=192.0.2.7 helo=\"c.example\" from=<s@sender.example> to=<alice@example.org> size=21 "
                    "id=ID1 result=\"250 2.0.0 Ok: queued as ID1\" stored=alice@example.org:");
}

TEST_CASE("several recipients: no 'for' and no Delivered-To, duplicates once") {
  Harness h;
  h.send("HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
         "RCPT TO:<ALICE@example.org>\r\nDATA\r\nx\r\n.\r\n");
  REQUIRE(h.store.messages.size() == 1);
  CHECK(h.store.messages[0] == "Return-Path: <>\nReceived: from c (unknown [192.0.2.7])\n"
                               "\tby mx.example.org (mailhost) with SMTP id ID1; Thu, 28 Nov 2024 03:40:00 +0000\nx\n");
}

TEST_CASE("sequence errors") {
  Harness h;
  CHECK(h.send("MAIL FROM:<a@b>\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  h.send("HELO c\r\n");
  CHECK(h.send("RCPT TO:<alice@example.org>\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  CHECK(h.send("DATA\r\n") == "503 5.5.1 Error: need MAIL command\r\n");
  CHECK(h.send("MAIL FROM:<a@b>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK(h.send("MAIL FROM:<a@b>\r\n") == "503 5.5.1 Error: nested MAIL command\r\n");
  CHECK(h.send("DATA\r\n") == "503 5.5.1 Error: need RCPT command\r\n");
  CHECK(h.send("RCPT TO:<nobody@example.org>\r\n") == "550 5.1.1 <nobody@example.org>: User unknown\r\n");
  CHECK(h.send("DATA\r\n") == "554 5.5.1 Error: no valid recipients\r\n");
  CHECK(h.send("RSET\r\n") == "250 2.0.0 Ok\r\n");
}

TEST_CASE("every RCPT refusal") {
  Harness h;
  h.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  CHECK(h.send("RCPT TO:<someone@elsewhere.example>\r\n") == "550 5.7.1 Relaying denied\r\n");
  CHECK(h.send("RCPT TO:<x@[127.0.0.1]>\r\n") == "550 5.7.1 Relaying denied\r\n");
  CHECK(h.send("RCPT TO:<full@example.org>\r\n") == "552 5.2.2 <full@example.org>: Disk quota exceeded\r\n");
  CHECK(h.send("RCPT TO:<off@example.org>\r\n") == "550 5.2.1 <off@example.org>: Mailbox disabled\r\n");
  CHECK(h.send("RCPT TO:<bad address>\r\n") == "501 5.1.3 Bad recipient address syntax\r\n");
  CHECK(h.send("RCPT TO:alice@example.org\r\n") == "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
  CHECK(h.send("RCPT TO:<alice@example.org> NOTIFY=NEVER\r\n") == "555 5.5.4 Unsupported option: NOTIFY\r\n");
}

TEST_CASE("the client verdict hook refuses local recipients") {
  Harness h;
  h.session->set_verdict({ClientVerdict::Kind::rejected, "550 5.7.1 Relaying denied. IP name lookup failed", "", ""});
  h.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  CHECK(h.send("RCPT TO:<alice@example.org>\r\n") == "550 5.7.1 Relaying denied. IP name lookup failed\r\n");
}

TEST_CASE("a temporary verdict gives its 451 at RCPT; relaying is refused before it") {
  Harness h;
  const std::string temp = "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for 192.0.2.7";
  h.session->set_verdict({ClientVerdict::Kind::temporary, temp, "", "PTR lookup: timeout"});
  h.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  CHECK(h.send("RCPT TO:<someone@elsewhere.example>\r\n") == "550 5.7.1 Relaying denied\r\n");
  CHECK(h.send("RCPT TO:<alice@example.org>\r\n") == temp + "\r\n");
  CHECK(h.send("RCPT TO:<nobody@example.org>\r\n") == temp + "\r\n");  // no user enumeration
  h.send("QUIT\r\n");
  REQUIRE(h.log.size() == 1);
  CHECK(h.log[0].find(" rdns=\"PTR lookup: timeout\"") != std::string::npos);
}

TEST_CASE("an accepted verdict's name goes into Received and the log") {
  Harness h;
  h.session->set_verdict({ClientVerdict::Kind::accepted, "", "good.example.test", "PTR good.example.test has A 192.0.2.7"});
  h.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
  CHECK(h.send("Subject: x\r\n\r\nbody\r\n.\r\n").substr(0, 4) == "250 ");
  REQUIRE(h.store.messages.size() == 1);
  CHECK(h.store.messages[0].find("Received: from c (good.example.test [192.0.2.7])") != std::string::npos);
  REQUIRE(h.log.size() == 1);
  CHECK(h.log[0].rfind("client=192.0.2.7(good.example.test) ", 0) == 0);
  CHECK(h.log[0].find(" rdns=\"PTR good.example.test has A 192.0.2.7\"") != std::string::npos);
}

TEST_CASE("MAIL parameters and SIZE") {
  Harness h;
  h.send("EHLO c\r\n");
  CHECK(h.send("MAIL FROM:<a@b> SIZE=31457281\r\n") == "552 5.3.4 Message size exceeds fixed limit\r\n");
  CHECK(h.send("MAIL FROM:<a@b> SIZE=99999999999999999999999\r\n") == "552 5.3.4 Message size exceeds fixed limit\r\n");
  CHECK(h.send("MAIL FROM:<a@b> SIZE=x\r\n") == "501 5.5.4 Bad SIZE syntax\r\n");
  CHECK(h.send("MAIL FROM:<a@b> BODY=BINARYMIME\r\n") == "501 5.5.4 Unsupported BODY type\r\n");
  CHECK(h.send("MAIL FROM:<a@b> SMTPUTF8\r\n") == "555 5.5.4 Unsupported option: SMTPUTF8\r\n");
  CHECK(h.send("MAIL FROM:<a b>\r\n") == "501 5.1.7 Bad sender address syntax\r\n");
  CHECK(h.send("MAIL FROM:<a@b> SIZE=31457280 BODY=8BITMIME\r\n") == "250 2.1.0 Ok\r\n");
}

TEST_CASE("the 101st recipient is refused with 452 and does not count as an error") {
  Harness h;
  h.store.mailboxes.clear();
  std::string cmds = "EHLO c\r\nMAIL FROM:<a@b>\r\n";
  for (int i = 0; i < 120; ++i) {
    std::string a = "u" + std::to_string(i) + "@example.org";
    h.store.mailboxes[a] = RecipientCheck::Kind::local;
    cmds += "RCPT TO:<" + a + ">\r\n";
  }
  std::string r = h.send(cmds);
  std::string expected = ehlo_reply + "250 2.1.0 Ok\r\n";
  for (int i = 0; i < 100; ++i) expected += "250 2.1.5 Ok\r\n";
  for (int i = 0; i < 20; ++i) expected += "452 4.5.3 Too many recipients\r\n";
  CHECK(r == expected);
  CHECK(h.send("DATA\r\n") == "354 End data with <CR><LF>.<CR><LF>\r\n");
}

TEST_CASE("data over the limit is read to the end, then refused") {
  SessionConfig c;
  c.message_size_limit = 10;
  Harness h(c);
  h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
  CHECK(h.send("0123456789\r\n.\r\nNOOP\r\n") == "552 5.3.4 Message size exceeds fixed limit\r\n250 2.0.0 Ok\r\n");
  CHECK(h.store.messages.empty());
  CHECK(h.store.aborted == 1);
  CHECK(h.send("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n01234567\r\n.\r\n") ==
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as ID2\r\n");
}

TEST_CASE("smuggled end-of-data does not start a second transaction") {
  const char* variants[] = {"\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n"};
  for (const char* v : variants) {
    Harness h;
    h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
    std::string r = h.send(std::string("hello") + v + "MAIL FROM:<evil@x>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                                                        "smuggled\r\n.\r\nQUIT\r\n");
    CHECK(r == "554 5.6.0 Bare LF or CR in message; see RFC 5321 section 2.3.8\r\n221 2.0.0 Bye\r\n");
    CHECK(h.store.messages.empty());
  }
}

TEST_CASE("command line problems") {
  Harness h;
  CHECK(h.send("NOOP\n") == "500 5.5.2 Bare LF or CR in command line\r\n");
  CHECK(h.send("NO\rOP\r\n") == "500 5.5.2 Bare LF or CR in command line\r\n");
  CHECK(h.send(std::string(600, 'x') + "\r\n") == "500 5.5.2 Line too long\r\n");
  CHECK(h.send("\r\n") == "500 5.5.2 Error: bad syntax\r\n");
  CHECK(h.send("FOO\r\n") == "502 5.5.2 Error: command not recognized\r\n");
  CHECK(h.send("EXPN staff\r\n") == "502 5.5.1 Command not implemented\r\n");
  CHECK(h.send("VRFY alice\r\n") == "252 2.5.2 Cannot VRFY user\r\n");
  CHECK(h.send("HELP\r\n") == "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
  CHECK(h.send("HELO\r\n") == "501 5.5.4 Syntax: HELO hostname\r\n");
  CHECK(h.send("noop whatever\r\n") == "250 2.0.0 Ok\r\n");
}

TEST_CASE("the tenth error closes the session") {
  Harness h;
  std::string r = h.send("A\r\nB\r\nC\r\nD\r\nE\r\nF\r\nG\r\nH\r\nI\r\nJ\r\nK\r\n");
  std::string expected;
  for (int i = 0; i < 10; ++i) expected += "502 5.5.2 Error: command not recognized\r\n";
  expected += "421 4.7.0 Too many errors\r\n";
  CHECK(r == expected);
  CHECK(h.closed);
}

TEST_CASE("delivery outcomes") {
  SECTION("some over quota: 250 with a line per recipient left out") {
    Harness h;
    h.store.outcome["bob@example.org"] = DeliveryResult::Status::over_quota;
    std::string r = h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                           "DATA\r\nx\r\n.\r\n");
    CHECK(r.substr(r.find("354")) == "354 End data with <CR><LF>.<CR><LF>\r\n"
                                     "250-2.0.0 <bob@example.org>: Disk quota exceeded, not delivered\r\n"
                                     "250 2.0.0 Ok: queued as ID1\r\n");
  }
  SECTION("one recipient over quota: 552 5.2.2") {
    Harness h;
    h.store.outcome["bob@example.org"] = DeliveryResult::Status::over_quota;
    std::string r = h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\n");
    CHECK(r.substr(r.find("354") + 37) == "552 5.2.2 <bob@example.org>: Disk quota exceeded\r\n");
  }
  SECTION("a temporary failure: 451 for all") {
    Harness h;
    h.store.outcome["bob@example.org"] = DeliveryResult::Status::temporary;
    std::string r = h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                           "DATA\r\nx\r\n.\r\n");
    CHECK(r.substr(r.find("354") + 37) == "451 4.3.0 Error: local delivery failed, try again later\r\n");
  }
  SECTION("the store cannot start a message") {
    Harness h;
    h.store.fail_begin = true;
    std::string r = h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
    CHECK(r.substr(r.rfind("\r\n", r.size() - 3) + 2) ==
          "451 4.3.0 Error: cannot store the message now, try again later\r\n");
  }
}

TEST_CASE("shutdown, timeout and disconnect log an unfinished transaction") {
  Harness h;
  h.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\npartial");
  CHECK(h.session->in_transaction());
  Output o = h.session->shutdown();
  CHECK(o.replies == "421 4.3.2 mx.example.org Service shutting down, closing transmission channel\r\n");
  CHECK(o.action == Action::close);
  REQUIRE(o.log.size() == 1);
  CHECK(h.store.aborted == 1);
  Harness t;
  CHECK(t.session->timeout().replies == "421 4.4.2 mx.example.org Error: timeout exceeded\r\n");
}

TEST_CASE("random input never breaks the session") {
  std::mt19937 rng(12345);
  const std::string pieces[] = {"EHLO x\r\n", "MAIL FROM:<a@b>\r\n", "RCPT TO:<alice@example.org>\r\n", "DATA\r\n",
                                ".\r\n", "\r\n", "\n", "\r", ".", "\0", "\xff", "RSET\r\n", "x", "BDAT 1\r\n"};
  for (int round = 0; round < 2000; ++round) {
    Harness h;
    std::string in;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      if (rng() % 4 == 0) {
        in += static_cast<char>(rng() % 256);
      } else {
        const std::string& p = pieces[rng() % std::size(pieces)];
        in += p.empty() ? std::string(1, '\0') : p;
      }
    }
    std::string replies = h.send(in);
    // Every reply line is CRLF-terminated and starts with a 3-digit code.
    std::size_t pos = 0;
    while (pos < replies.size()) {
      auto end = replies.find("\r\n", pos);
      REQUIRE(end != std::string::npos);
      REQUIRE(end - pos >= 4);
      CHECK((replies[pos] >= '2' && replies[pos] <= '5'));
      pos = end + 2;
    }
  }
}
