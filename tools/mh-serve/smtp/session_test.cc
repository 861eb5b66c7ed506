// session_test.cc — the SMTP session fed lines, with a fake backend and a fake
// authenticator: every reply text (AUTH and STARTTLS included), pipelining, limits, the
// delivery outcomes, relaying for authenticated clients, and random input that must not
// crash it.
#include "auth/sasl.h"
#include "smtp/session.h"

#include <catch2/catch.hpp>

#include <map>
#include <random>

using namespace mh::smtp;
using mh::auth::AuthOutcome;

namespace {

struct FakeStore {
  std::map<std::string, RecipientCheck::Kind> mailboxes;  // lower-case address → kind
  std::map<std::string, DeliveryResult::Status> outcome;  // default delivered
  std::vector<std::string> messages;                      // delivered contents
  std::vector<Envelope> envelopes;                        // of every begin_message
  std::vector<std::string> queued;                        // contents queued for remote recipients
  std::map<std::string, SenderState> senders;             // default active
  SendingCharge charge{SendingCharge::Kind::allowed, {}, {}};   // what charge_sending answers
  std::vector<std::pair<std::string, std::size_t>> charged;     // account, recipients
  bool fail_charge = false;
  ContentVerdict content;                                  // what check_content answers
  bool content_throws = false;
  int content_checks = 0;
  int aborted = 0;
  bool fail_begin = false;
};

class FakeSink : public MessageSink {
public:
  FakeSink(FakeStore& s, Envelope e) : store_(s), envelope_(std::move(e)) {}
  void append(std::string_view b) override { text_.append(b); }
  std::vector<DeliveryResult> deliver() override {
    std::vector<DeliveryResult> out;
    bool any = false, temporary = false;
    for (const auto& r : envelope_.local) {
      DeliveryResult d;
      d.recipient = r;
      auto it = store_.outcome.find(r);
      d.status = it == store_.outcome.end() ? DeliveryResult::Status::delivered : it->second;
      any |= d.status == DeliveryResult::Status::delivered;
      temporary |= d.status == DeliveryResult::Status::temporary;
      out.push_back(d);
    }
    for (const auto& r : envelope_.remote) {
      DeliveryResult d;
      d.recipient = r;
      d.uidl = "Q1";
      d.status = temporary ? DeliveryResult::Status::temporary : DeliveryResult::Status::queued;
      out.push_back(d);
    }
    if (any) store_.messages.push_back(text_);
    if (!envelope_.remote.empty() && !temporary) store_.queued.push_back(text_);
    done_ = true;
    return out;
  }
  ContentVerdict check_content() override {
    ++store_.content_checks;
    if (store_.content_throws) throw StorageFull("No space left on device");
    if (store_.content.kind == ContentVerdict::Kind::cleaned) text_ += "[cleaned]\n";
    return store_.content;
  }
  void abort() noexcept override {
    if (!done_ && !aborted_) ++store_.aborted;
    aborted_ = true;
  }

private:
  FakeStore& store_;
  Envelope envelope_;
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
  std::unique_ptr<MessageSink> begin_message(const Envelope& e) override {
    if (store_.fail_begin) throw std::runtime_error("disk on fire");
    store_.envelopes.push_back(e);
    return std::make_unique<FakeSink>(store_, e);
  }
  SenderState sender_state(std::string_view account) override {
    auto it = store_.senders.find(std::string(account));
    if (it != store_.senders.end()) return it->second;
    SenderState st;
    st.kind = SenderState::Kind::active;
    return st;
  }
  SendingCharge charge_sending(std::string_view account, std::size_t recipients) override {
    if (store_.fail_charge) throw std::runtime_error("rate record on fire");
    store_.charged.emplace_back(std::string(account), recipients);
    return store_.charge;
  }
  std::string new_message_id() override { return "ID" + std::to_string(++n_); }
  std::int64_t now() override { return 1732765200; }  // Thu, 28 Nov 2024 03:40:00 +0000

private:
  FakeStore& store_;
  int n_ = 0;
};

// Passwords by login; a login in `outcomes` gets that outcome whatever the password.
class FakeAuthenticator : public mh::auth::Authenticator {
public:
  std::map<std::string, std::string> passwords{{"alice@example.org", "secret"}};
  std::map<std::string, AuthOutcome> outcomes;
  std::vector<std::string> calls;  // "ip login password"

  AuthOutcome authenticate(std::string_view ip, std::string_view login, const spool::Secret& password) override {
    calls.push_back(std::string(ip) + " " + std::string(login) + " " + password.reveal());
    if (auto it = outcomes.find(std::string(login)); it != outcomes.end()) return it->second;
    AuthOutcome o;
    auto it = passwords.find(std::string(login));
    if (it != passwords.end() && it->second == password.reveal()) {
      o.kind = AuthOutcome::Kind::ok;
      o.address = std::string(login);
    } else {
      o.kind = AuthOutcome::Kind::bad_credentials;
      o.delay = std::chrono::milliseconds(2000);
      o.detail = "wrong password";
    }
    return o;
  }
};

struct Harness {
  FakeStore store;
  FakeBackend backend{store};
  FakeAuthenticator authenticator;
  SessionConfig config;
  std::unique_ptr<SmtpSession> session;
  std::vector<std::string> log;
  bool closed = false;
  std::chrono::milliseconds delay{0};   // summed Output::delay
  std::vector<std::string> dropped;     // bytes the "network layer" discarded at STARTTLS
  bool tls_handshake = true;            // what send() does at Action::starttls

  explicit Harness(SessionConfig c = {}) : config(std::move(c)) {
    config.hostname = "mx.example.org";
    store.mailboxes["alice@example.org"] = RecipientCheck::Kind::local;
    store.mailboxes["bob@example.org"] = RecipientCheck::Kind::local;
    store.mailboxes["full@example.org"] = RecipientCheck::Kind::over_quota;
    store.mailboxes["off@example.org"] = RecipientCheck::Kind::disabled;
    session = std::make_unique<SmtpSession>(config, ClientInfo{"192.0.2.7", ""}, backend, authenticator);
  }

  // Sends `in`, running deliveries, logins and STARTTLS as the network layer would;
  // returns all replies.
  std::string send(std::string_view in) {
    std::string replies;
    while (!in.empty() && !closed) {
      Output o = session->feed(in);
      replies += o.replies;
      log.insert(log.end(), o.log.begin(), o.log.end());
      in.remove_prefix(o.consumed);
      if (o.action == Action::deliver || o.action == Action::authenticate) {
        Output d = o.action == Action::deliver ? session->deliver() : session->authenticate();
        replies += d.replies;
        delay += d.delay;
        log.insert(log.end(), d.log.begin(), d.log.end());
        if (d.action == Action::close) closed = true;
      }
      if (o.action == Action::starttls) {
        // RFC 3207 §5: what the client pipelined after STARTTLS is thrown away.
        dropped.emplace_back(in);
        in = {};
        if (tls_handshake) session->tls_started();
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
  CHECK(h.log[0] == "client=192.0.2.7 helo=\"c.example\" tls=no from=<s@sender.example> to=<alice@example.org> size=21 "
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
  CHECK(h.send("HELP\r\n") == "214 2.0.0 Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n");
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

// --- STARTTLS ------------------------------------------------------------------------

namespace {

using mh::auth::encode_base64;

std::string plain(const std::string& login, const std::string& password, const std::string& authzid = "") {
  return encode_base64(authzid + std::string(1, '\0') + login + std::string(1, '\0') + password);
}

SessionConfig tls_offered() {
  SessionConfig c;
  c.tls_available = true;
  return c;
}

SessionConfig plaintext_ok() {
  SessionConfig c;
  c.plaintext_auth_allowed = true;
  return c;
}

const std::string ehlo_head = "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 31457280\r\n250-8BITMIME\r\n";

// A session logged in as alice@example.org (plaintext allowed).
struct LoggedIn : Harness {
  explicit LoggedIn(SessionConfig c = plaintext_ok()) : Harness(c) {
    REQUIRE(send("EHLO c\r\n").find("250-AUTH PLAIN LOGIN\r\n") != std::string::npos);
    REQUIRE(send("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n") ==
            "235 2.7.0 Authentication successful\r\n");
  }
};

} // namespace

TEST_CASE("EHLO offers STARTTLS with a certificate and AUTH only where passwords may go") {
  SECTION("certificate, no TLS yet, not a plaintext network: STARTTLS only") {
    Harness h(tls_offered());
    CHECK(h.send("EHLO c\r\n") == ehlo_head + "250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n");
  }
  SECTION("implicit TLS: AUTH, no STARTTLS") {
    SessionConfig c = tls_offered();
    c.tls_active = true;
    Harness h(c);
    CHECK(h.send("EHLO c\r\n") == ehlo_head + "250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n");
  }
  SECTION("plaintext network with a certificate: both") {
    SessionConfig c = plaintext_ok();
    c.tls_available = true;
    Harness h(c);
    CHECK(h.send("EHLO c\r\n") ==
          ehlo_head + "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n");
  }
  SECTION("no longer AUTH once authenticated") {
    LoggedIn h;
    CHECK(h.send("EHLO c\r\n") == ehlo_reply);
  }
}

TEST_CASE("STARTTLS refusals") {
  Harness none;
  none.send("EHLO c\r\n");
  CHECK(none.send("STARTTLS\r\n") == "502 5.5.1 Command not implemented\r\n");
  Harness h(tls_offered());
  CHECK(h.send("STARTTLS\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  h.send("EHLO c\r\n");
  CHECK(h.send("STARTTLS now\r\n") == "501 5.5.4 Syntax: STARTTLS\r\n");
  CHECK(h.send("MAIL FROM:<a@b>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK(h.send("STARTTLS\r\n") == "503 5.5.1 Error: MAIL transaction in progress\r\n");
  SessionConfig c = tls_offered();
  c.tls_active = true;
  Harness active(c);
  active.send("EHLO c\r\n");
  CHECK(active.send("STARTTLS\r\n") == "503 5.5.1 Error: TLS already active\r\n");
}

TEST_CASE("STARTTLS: bytes pipelined behind it are not the session's (CVE-2011-0411)") {
  Harness h(tls_offered());
  const std::string in = "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<alice@example.org>\r\n";
  Output o = h.session->feed(in);
  CHECK(o.replies == ehlo_head + "250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n220 2.0.0 Ready to start TLS\r\n");
  CHECK(o.action == Action::starttls);
  CHECK(o.consumed == std::string("EHLO c\r\nSTARTTLS\r\n").size());
  // Until the handshake is done the session reads nothing.
  Output again = h.session->feed(in.substr(o.consumed));
  CHECK(again.consumed == 0);
  CHECK(again.action == Action::starttls);
  CHECK(again.replies.empty());
  h.session->tls_started();
  CHECK(h.session->tls_active());
  // The session starts over: no HELO/EHLO known, so the smuggled MAIL (had the network
  // layer kept it) would be refused; a fresh EHLO offers AUTH, not STARTTLS.
  CHECK(h.send("MAIL FROM:<evil@x.example>\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  CHECK(h.send("EHLO c\r\n") == ehlo_head + "250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n");
}

TEST_CASE("STARTTLS forgets an earlier AUTH; TLS shows in Received and the log") {
  SessionConfig c = plaintext_ok();
  c.tls_available = true;
  LoggedIn h(c);
  h.send("STARTTLS\r\nRCPT TO:<x@y>\r\n");
  REQUIRE(h.dropped.size() == 1);
  CHECK(h.dropped[0] == "RCPT TO:<x@y>\r\n");
  CHECK(h.session->authenticated_as().empty());
  h.send("EHLO c\r\nMAIL FROM:<s@sender.example>\r\n");
  CHECK(h.send("RCPT TO:<bob@remote.example>\r\n") == "550 5.7.1 Relaying denied\r\n");
  h.send("RCPT TO:<alice@example.org>\r\nDATA\r\nx\r\n.\r\n");
  REQUIRE(h.store.messages.size() == 1);
  CHECK(h.store.messages[0].find("\tby mx.example.org (mailhost) with ESMTPS id ID1\n") != std::string::npos);
  REQUIRE(h.log.size() == 2);  // the login, the transaction
  CHECK(h.log[1].find(" tls=yes from=<s@sender.example> ") != std::string::npos);
}

// --- AUTH ----------------------------------------------------------------------------

TEST_CASE("AUTH PLAIN with and without an initial response") {
  {
    Harness h(plaintext_ok());
    h.send("EHLO c\r\n");
    CHECK(h.send("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n") ==
          "235 2.7.0 Authentication successful\r\n");
    CHECK(h.session->authenticated_as() == "alice@example.org");
    CHECK(h.authenticator.calls == std::vector<std::string>{"192.0.2.7 alice@example.org secret"});
    CHECK(h.delay.count() == 0);
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0] == "client=192.0.2.7 tls=no auth=alice@example.org result=\"235 2.7.0 Authentication successful\"");
  }
  {
    Harness h(plaintext_ok());
    h.send("EHLO c\r\n");
    CHECK(h.send("auth plain\r\n") == "334 \r\n");
    CHECK(h.send(plain("alice@example.org", "secret", "alice@example.org") + "\r\n") ==
          "235 2.7.0 Authentication successful\r\n");
  }
}

TEST_CASE("AUTH LOGIN, also with the user name as initial response") {
  Harness h(plaintext_ok());
  h.send("EHLO c\r\n");
  CHECK(h.send("AUTH LOGIN\r\n") == "334 VXNlcm5hbWU6\r\n");
  CHECK(h.send(encode_base64("alice@example.org") + "\r\n") == "334 UGFzc3dvcmQ6\r\n");
  CHECK(h.send(encode_base64("wrong") + "\r\n") == "535 5.7.8 Authentication credentials invalid\r\n");
  CHECK(h.send("AUTH LOGIN " + encode_base64("alice@example.org") + "\r\n") == "334 UGFzc3dvcmQ6\r\n");
  CHECK(h.send(encode_base64("secret") + "\r\n") == "235 2.7.0 Authentication successful\r\n");
}

TEST_CASE("AUTH failures: every reply") {
  Harness h(plaintext_ok());
  h.send("EHLO c\r\n");
  SECTION("wrong password: 535 after the authenticator's delay, no login logged") {
    CHECK(h.send("AUTH PLAIN " + plain("alice@example.org", "guess") + "\r\n") ==
          "535 5.7.8 Authentication credentials invalid\r\n");
    CHECK(h.delay == std::chrono::milliseconds(2000));
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0] == "client=192.0.2.7 tls=no result=\"535 5.7.8 Authentication credentials invalid\" "
                      "detail=\"wrong password\"");
    CHECK(h.session->authenticated_as().empty());
  }
  SECTION("cancelled with *") {
    CHECK(h.send("AUTH PLAIN\r\n*\r\n") == "334 \r\n501 5.0.0 Authentication cancelled\r\n");
    CHECK(h.send("AUTH LOGIN\r\n" + encode_base64("alice@example.org") + "\r\n*\r\n") ==
          "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n501 5.0.0 Authentication cancelled\r\n");
    CHECK(h.authenticator.calls.empty());
  }
  SECTION("not base64") {
    CHECK(h.send("AUTH PLAIN not*base64\r\n") == "501 5.5.2 Cannot decode response\r\n");
    CHECK(h.send("AUTH PLAIN\r\nAGFsaWNl=\r\n") == "334 \r\n501 5.5.2 Cannot decode response\r\n");
    CHECK(h.send("NOOP\r\n") == "250 2.0.0 Ok\r\n");  // back to commands
  }
  SECTION("malformed PLAIN: someone else's authorization identity, no password") {
    CHECK(h.send("AUTH PLAIN " + plain("alice@example.org", "secret", "bob@example.org") + "\r\n") ==
          "535 5.7.8 Authentication credentials invalid\r\n");
    CHECK(h.send("AUTH PLAIN " + plain("alice@example.org", "") + "\r\n") ==
          "535 5.7.8 Authentication credentials invalid\r\n");
    CHECK(h.send("AUTH PLAIN =\r\n") == "535 5.7.8 Authentication credentials invalid\r\n");
    CHECK(h.authenticator.calls.empty());
  }
  SECTION("unknown mechanism and syntax") {
    CHECK(h.send("AUTH CRAM-MD5\r\n") == "504 5.5.4 Unrecognized authentication type\r\n");
    CHECK(h.send("AUTH\r\n") == "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
    CHECK(h.send("AUTH PLAIN a b\r\n") == "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
  }
  SECTION("suspended, throttled, temporary") {
    AuthOutcome suspended;
    suspended.kind = AuthOutcome::Kind::suspended;
    h.authenticator.outcomes["off@example.org"] = suspended;
    AuthOutcome temporary;
    temporary.kind = AuthOutcome::Kind::temporary;
    h.authenticator.outcomes["io@example.org"] = temporary;
    AuthOutcome throttled;
    throttled.kind = AuthOutcome::Kind::throttled;
    throttled.delay = std::chrono::milliseconds(15000);
    h.authenticator.outcomes["many@example.org"] = throttled;
    CHECK(h.send("AUTH PLAIN " + plain("off@example.org", "x") + "\r\n") == "535 5.7.8 Account suspended\r\n");
    CHECK(h.send("AUTH PLAIN " + plain("io@example.org", "x") + "\r\n") ==
          "454 4.7.0 Temporary authentication failure\r\n");
    CHECK(h.send("AUTH PLAIN " + plain("many@example.org", "x") + "\r\nNOOP\r\n") ==
          "421 4.7.0 Too many failed authentications, closing connection\r\n");
    CHECK(h.closed);
    CHECK(h.delay == std::chrono::milliseconds(15000));
  }
  SECTION("a response line over 12288 octets") {
    CHECK(h.send("AUTH PLAIN\r\n" + std::string(13000, 'A') + "\r\n") ==
          "334 \r\n500 5.5.6 Authentication Exchange line is too long\r\n");
  }
}

TEST_CASE("AUTH is refused in the clear, twice, before EHLO and inside a transaction") {
  Harness clear;
  clear.send("EHLO c\r\n");
  CHECK(clear.send("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n") ==
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n");
  CHECK(clear.authenticator.calls.empty());
  Harness early(plaintext_ok());
  CHECK(early.send("AUTH PLAIN\r\n") == "503 5.5.1 Error: send HELO/EHLO first\r\n");
  LoggedIn h;
  CHECK(h.send("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n") == "503 5.5.1 Already authenticated\r\n");
  Harness tx(plaintext_ok());
  tx.send("EHLO c\r\nMAIL FROM:<a@b>\r\n");
  CHECK(tx.send("AUTH LOGIN\r\n") == "503 5.5.1 Error: MAIL transaction in progress\r\n");
}

TEST_CASE("a long AUTH line (511-byte password) is accepted; other long lines are not") {
  Harness h(plaintext_ok());
  const std::string password(511, 'p');
  h.authenticator.passwords["alice@example.org"] = password;
  h.send("EHLO c\r\n");
  const std::string line = "AUTH PLAIN " + plain("alice@example.org", password) + "\r\n";
  REQUIRE(line.size() > 512);
  CHECK(h.send(line) == "235 2.7.0 Authentication successful\r\n");
  CHECK(h.send("NOOP " + std::string(520, 'x') + "\r\n") == "500 5.5.2 Line too long\r\n");
}

TEST_CASE("pipelining: nothing after a complete AUTH is read before authenticate()") {
  Harness h(plaintext_ok());
  h.send("EHLO c\r\n");
  const std::string auth_line = "AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n";
  const std::string rest = "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@remote.example>\r\n";
  Output o = h.session->feed(auth_line + rest);
  CHECK(o.action == Action::authenticate);
  CHECK(o.consumed == auth_line.size());
  CHECK(o.replies.empty());
  Output waiting = h.session->feed(rest);
  CHECK(waiting.consumed == 0);
  CHECK(waiting.action == Action::authenticate);
  Output a = h.session->authenticate();
  CHECK(a.replies == "235 2.7.0 Authentication successful\r\n");
  // Now the relay is allowed: the pipelined MAIL/RCPT were judged as authenticated.
  CHECK(h.send(rest) == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
}

// --- authenticated clients -----------------------------------------------------------

TEST_CASE("an authenticated client relays through the queue") {
  LoggedIn h;
  std::string r = h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<Bob@Remote.Example>\r\n"
                         "RCPT TO:<Bob@remote.example>\r\nDATA\r\nSubject: out\r\n\r\nhi\r\n.\r\n");
  CHECK(r == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
             "250 2.0.0 Ok: queued as ID1\r\n");
  REQUIRE(h.store.envelopes.size() == 1);
  CHECK(h.store.envelopes[0].remote == std::vector<std::string>{"Bob@remote.example"});
  CHECK(h.store.envelopes[0].local.empty());
  CHECK(h.store.envelopes[0].auth == "alice@example.org");
  CHECK(h.store.envelopes[0].sender == "alice@example.org");
  REQUIRE(h.store.queued.size() == 1);
  CHECK(h.store.queued[0] ==
        "Return-Path: <alice@example.org>\n"
        "Received: from c (unknown [192.0.2.7])\n"
        "\tby mx.example.org (mailhost) with ESMTPA id ID1\n"
        "\tfor <Bob@remote.example>; Thu, 28 Nov 2024 03:40:00 +0000\n"
        "Subject: out\n\nhi\n");
  REQUIRE(h.log.size() == 2);
  CHECK(h.log[1] == "client=192.0.2.7 helo=\"c\" tls=no auth=alice@example.org from=<alice@example.org> "
                    "to=<Bob@remote.example> size=20 id=ID1 result=\"250 2.0.0 Ok: queued as ID1\" "
                    "queued=Bob@remote.example:Q1");
}

TEST_CASE("local and remote recipients in one message") {
  SECTION("stored for both") {
    LoggedIn h;
    std::string r = h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                           "RCPT TO:<carol@remote.example>\r\nDATA\r\nx\r\n.\r\n");
    CHECK(r.substr(r.find("354") + 37) == "250 2.0.0 Ok: queued as ID1\r\n");
    REQUIRE(h.store.envelopes.size() == 1);
    CHECK(h.store.envelopes[0].local == std::vector<std::string>{"bob@example.org"});
    CHECK(h.store.envelopes[0].remote == std::vector<std::string>{"carol@remote.example"});
    REQUIRE(h.store.messages.size() == 1);
    CHECK(h.store.messages[0].find("Delivered-To") == std::string::npos);
    CHECK(h.store.messages[0].find("\tfor <") == std::string::npos);
    CHECK(h.store.queued.size() == 1);
  }
  SECTION("a local temporary failure: 451, and nothing stays queued") {
    LoggedIn h;
    h.store.outcome["bob@example.org"] = DeliveryResult::Status::temporary;
    std::string r = h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                           "RCPT TO:<carol@remote.example>\r\nDATA\r\nx\r\n.\r\n");
    CHECK(r.substr(r.find("354") + 37) == "451 4.3.0 Error: local delivery failed, try again later\r\n");
    CHECK(h.store.queued.empty());
  }
  SECTION("one local recipient over quota, the remote one queued: 250 naming the one left out") {
    LoggedIn q;
    q.store.outcome["bob@example.org"] = DeliveryResult::Status::over_quota;
    std::string r = q.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
               "RCPT TO:<carol@remote.example>\r\nDATA\r\nx\r\n.\r\n");
    CHECK(r.substr(r.find("354") + 37) ==
          "250-2.0.0 <bob@example.org>: Disk quota exceeded, not delivered\r\n250 2.0.0 Ok: queued as ID1\r\n");
  }
}

TEST_CASE("an authenticated sender must be the account itself; never the null sender") {
  LoggedIn h;
  CHECK(h.send("MAIL FROM:<bob@other.example>\r\n") ==
        "553 5.7.1 <bob@other.example>: Sender address rejected: not owned by user alice@example.org\r\n");
  CHECK(h.send("MAIL FROM:<>\r\n") == "553 5.7.1 <>: Sender address rejected: not owned by user alice@example.org\r\n");
  CHECK(h.send("MAIL FROM:<Info@EXAMPLE.org>\r\n") ==  // SPEC §8: not another user of the domain
        "553 5.7.1 <Info@EXAMPLE.org>: Sender address rejected: not owned by user alice@example.org\r\n");
  CHECK(h.send("MAIL FROM:<Alice@EXAMPLE.org>\r\n") == "250 2.1.0 Ok\r\n");
  SessionConfig c = plaintext_ok();
  c.sender_must_be_account = false;
  LoggedIn free(c);
  CHECK(free.send("MAIL FROM:<bob@other.example>\r\n") == "250 2.1.0 Ok\r\n");
  CHECK(free.send("RSET\r\nMAIL FROM:<>\r\n") ==
        "250 2.0.0 Ok\r\n553 5.7.1 <>: Sender address rejected: not owned by user alice@example.org\r\n");
}

TEST_CASE("the account's sending state is asked at every MAIL") {
  LoggedIn h;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\nRSET\r\n") == "250 2.1.0 Ok\r\n250 2.0.0 Ok\r\n");
  SenderState st;
  st.kind = SenderState::Kind::sending_suspended;
  st.reason = "sent 5000 messages in an hour\r\n421 fake";
  h.store.senders["alice@example.org"] = st;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\n") ==
        "550 5.7.1 Sending suspended for alice@example.org: sent 5000 messages in an hour??421 fake "
        "(ask your administrator: mh-user resume --sending)\r\n");
  h.store.senders["alice@example.org"].reason = "";
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\n") ==
        "550 5.7.1 Sending suspended for alice@example.org (ask your administrator: mh-user resume --sending)\r\n");
  h.store.senders["alice@example.org"].kind = SenderState::Kind::disabled;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\n") == "550 5.7.1 Account suspended: alice@example.org\r\n");
  h.store.senders["alice@example.org"].kind = SenderState::Kind::temporary;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\n") == "451 4.3.0 Temporary lookup failure, try again later\r\n");
}

TEST_CASE("sending_rate: a message is charged once, after DATA, with every recipient") {
  LoggedIn h;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<carol@remote.example>\r\n"
               "RCPT TO:<BOB@example.org>\r\nRCPT TO:<dave@remote.example>\r\nRCPT TO:<nobody@example.org>\r\n"
               "DATA\r\n") ==
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
        "550 5.1.1 <nobody@example.org>: User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(h.store.charged.empty());  // not before the message is complete
  CHECK(h.send("x\r\n.\r\n") == "250 2.0.0 Ok: queued as ID1\r\n");
  // Local and remote alike, each once; refused recipients are not counted.
  CHECK(h.store.charged == std::vector<std::pair<std::string, std::size_t>>{{"alice@example.org", 3}});
  REQUIRE(h.store.messages.size() == 1);
  CHECK(h.store.queued.size() == 1);
}

TEST_CASE("sending_rate: unauthenticated mail is never charged") {
  Harness h;
  h.store.charge.kind = SendingCharge::Kind::suspended;
  h.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
  CHECK(h.send("x\r\n.\r\n") == "250 2.0.0 Ok: queued as ID1\r\n");
  CHECK(h.store.charged.empty());
}

TEST_CASE("sending_rate: past the limit the message is refused whole with the MAIL-time 550") {
  LoggedIn h;
  h.store.charge = {SendingCharge::Kind::suspended, "rate",
                    "sending suspended: 499 + 2 recipients in the last hour exceed 500"};
  std::string r = h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                         "RCPT TO:<carol@remote.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
  const std::string refusal =
      "550 5.7.1 Sending suspended for alice@example.org: rate (ask your administrator: mh-user resume --sending)";
  CHECK(r == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n" +
                 refusal + "\r\n");
  // Nothing stored, nothing queued: the sink was discarded.
  CHECK(h.store.messages.empty());
  CHECK(h.store.queued.empty());
  CHECK(h.store.aborted == 1);
  REQUIRE(h.log.size() == 2);
  CHECK(h.log[1] == "client=192.0.2.7 helo=\"c\" tls=no auth=alice@example.org from=<alice@example.org> "
                    "to=<bob@example.org> to=<carol@remote.example> size=18 id=ID1 result=\"" + refusal + "\" "
                    "rate=\"sending suspended: 499 + 2 recipients in the last hour exceed 500\"");
  // The next MAIL sees the suspension the charge recorded, and says the same.
  SenderState st;
  st.kind = SenderState::Kind::sending_suspended;
  st.reason = "rate";
  h.store.senders["alice@example.org"] = st;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\n") == refusal + "\r\n");
}

TEST_CASE("sending_rate: a charge that cannot be made is temporary, nothing is stored") {
  LoggedIn h;
  SECTION("the backend says so") { h.store.charge = {SendingCharge::Kind::temporary, {}, "spool is busy"}; }
  SECTION("the backend throws") { h.store.fail_charge = true; }
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\n")
            .find("354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Temporary lookup failure, try again later\r\n") !=
        std::string::npos);
  CHECK(h.store.messages.empty());
  CHECK(h.store.aborted == 1);
  REQUIRE(h.log.size() == 2);
  CHECK(h.log[1].find(" rate=\"") != std::string::npos);
  // The session goes on: the next message may pass.
  h.store.charge = {SendingCharge::Kind::allowed, {}, {}};
  h.store.fail_charge = false;
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\n")
            .find("250 2.0.0 Ok: queued as ID2\r\n") != std::string::npos);
}

TEST_CASE("submission requires AUTH before MAIL") {
  SessionConfig c = plaintext_ok();
  c.submission = true;
  Harness h(c);
  h.send("EHLO c\r\n");
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\n") == "530 5.7.0 Authentication required\r\n");
  CHECK(h.send("AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\nMAIL FROM:<alice@example.org>\r\n") ==
        "235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n");
}

TEST_CASE("the FCrDNS verdict is not consulted for authenticated clients") {
  LoggedIn h;
  h.session->set_verdict({ClientVerdict::Kind::rejected, "550 5.7.1 Relaying denied. IP name lookup failed", "", ""});
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n") == "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
}

TEST_CASE("the recipient limit counts local and remote recipients together") {
  SessionConfig c = plaintext_ok();
  c.max_recipients = 3;
  LoggedIn h(c);
  CHECK(h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<x@remote.example>\r\n"
               "RCPT TO:<y@remote.example>\r\nRCPT TO:<z@remote.example>\r\nRCPT TO:<alice@example.org>\r\n") ==
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Too many recipients\r\n"
        "452 4.5.3 Too many recipients\r\n");
}

TEST_CASE("random input with AUTH and STARTTLS never breaks the session") {
  std::mt19937 rng(54321);
  const std::string pieces[] = {"EHLO x\r\n", "MAIL FROM:<alice@example.org>\r\n", "RCPT TO:<a@remote.example>\r\n",
                                "DATA\r\n", ".\r\n", "\r\n", "\n", "*\r\n", "AUTH PLAIN\r\n", "AUTH LOGIN\r\n",
                                "STARTTLS\r\n", plain("alice@example.org", "secret") + "\r\n", "=\r\n",
                                "AUTH PLAIN " + plain("alice@example.org", "secret") + "\r\n", "x", "RSET\r\n"};
  for (int round = 0; round < 2000; ++round) {
    SessionConfig c = plaintext_ok();
    c.tls_available = true;
    c.submission = round % 2 == 0;
    Harness h(c);
    h.tls_handshake = round % 3 != 0;
    std::string in;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      if (rng() % 5 == 0) in += static_cast<char>(rng() % 256);
      else in += pieces[rng() % std::size(pieces)];
    }
    std::string replies = h.send(in);
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

// --- protocol synchronization (RFC 2920 §3.1, SPEC §8) --------------------------------

namespace {
SessionConfig synchronized() {
  SessionConfig c;
  c.sync_required = true;
  return c;
}
const std::string sync_error = "554 5.5.0 Error: SMTP protocol synchronization\r\n";
const std::string forged_tail =
    "MAIL FROM:<b@x.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: forged\r\n\r\nx\r\n.\r\n";
} // namespace

TEST_CASE("bytes pipelined after a refused DATA: 554 5.5.0, none of them run") {
  Harness h(synchronized());
  std::string r = h.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n" + forged_tail);
  CHECK(r == ehlo_reply + "250 2.1.0 Ok\r\n550 5.1.1 <nobody@example.org>: User unknown\r\n" + sync_error);
  CHECK(h.closed);
  CHECK(h.session->closed());
  CHECK(h.store.envelopes.empty());
  CHECK(h.store.messages.empty());
}

TEST_CASE("bytes pipelined after an acceptable DATA: 554 5.5.0, nothing stored") {
  Harness h(synchronized());
  std::string r = h.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nx\r\n.\r\n");
  CHECK(r == ehlo_reply + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n" + sync_error);
  CHECK(h.store.envelopes.empty());  // no sink was even opened
  CHECK(h.store.messages.empty());
  REQUIRE_FALSE(h.log.empty());
  CHECK(h.log.back().find("result=\"aborted: 554 5.5.0") != std::string::npos);
}

TEST_CASE("DATA as the last line with more bytes at the socket is a synchronization error") {
  Harness h(synchronized());
  h.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@example.org>\r\n");
  Output o = h.session->feed("DATA\r\n", /*more_pending=*/true);
  CHECK(o.replies == sync_error);
  CHECK(o.action == Action::close);
  CHECK(h.store.messages.empty());
}

TEST_CASE("a well-behaved pipelining client is not affected") {
  Harness h(synchronized());
  CHECK(h.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n") ==
        ehlo_reply + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  // After the 354, the message and the next commands may come in one write.
  CHECK(h.send("x\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n") ==
        "250 2.0.0 Ok: queued as ID1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  CHECK(h.store.messages.size() == 1);
}

TEST_CASE("without sync_required (--stdio scripts) pipelined DATA is read as before") {
  Harness h;
  h.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nx\r\n.\r\n");
  CHECK(h.store.messages.size() == 1);
}

TEST_CASE("protocol_sync_error before the greeting") {
  Harness h(synchronized());
  Output o = h.session->protocol_sync_error("bytes before the greeting");
  CHECK(o.replies == sync_error);
  CHECK(o.action == Action::close);
  CHECK(o.log == std::vector<std::string>{"client=192.0.2.7 protocol synchronization error: bytes before the greeting"});
}

// --- submission From: policy (SPEC §8) ------------------------------------------------

TEST_CASE("an authenticated sender's From: header is held to submission.from_header") {
  const std::string refused = "550 5.7.1 From: header does not match the authenticated sender\r\n";
  const std::string envelope = "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n";
  const std::string accepted = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
  SessionConfig c = plaintext_ok();
  c.from_header = FromPolicy::own_domain;
  SECTION("own domain") {
    LoggedIn h(c);
    CHECK(h.send(envelope + "From: Bob <bob@example.org>\r\n\r\nhi\r\n.\r\n") ==
          accepted + "250 2.0.0 Ok: queued as ID1\r\n");
    CHECK(h.store.messages.size() == 1);
  }
  SECTION("a foreign domain, a missing From: and a dot-stuffed From: line are refused") {
    LoggedIn h(c);
    CHECK(h.send(envelope + "From: ceo@other.test\r\n\r\nhi\r\n.\r\n") == accepted + refused);
    CHECK(h.send(envelope + "Subject: no from\r\n\r\nhi\r\n.\r\n") == accepted + refused);
    CHECK(h.send(envelope + "..From: alice@example.org\r\n\r\nhi\r\n.\r\n") == accepted + refused);
    CHECK(h.store.messages.empty());
    CHECK(h.store.charged.empty());  // refused before it counts against the hourly limit
    CHECK(h.store.aborted == 3);
  }
  SECTION("own-address") {
    c.from_header = FromPolicy::own_address;
    LoggedIn h(c);
    CHECK(h.send(envelope + "From: bob@example.org\r\n\r\nhi\r\n.\r\n") == accepted + refused);
    CHECK(h.send(envelope + "From: =?UTF-8?Q?Alice?= <ALICE@example.org>\r\n\r\nhi\r\n.\r\n") ==
          accepted + "250 2.0.0 Ok: queued as ID2\r\n");
  }
  SECTION("unauthenticated mail is not checked") {
    Harness h(c);
    h.send("EHLO c\r\n");
    CHECK(h.send("MAIL FROM:<x@other.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nFrom: ceo@other.test\r\n\r\nhi\r\n.\r\n") ==
          accepted + "250 2.0.0 Ok: queued as ID1\r\n");
  }
}

TEST_CASE("content check: each verdict's reply, before the sending charge") {
  const std::string tx = "EHLO c\r\nMAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nx\r\n.\r\n";
  const std::string head = ehlo_reply + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
  SECTION("rejected: 550 5.7.1, nothing stored, the reason logged") {
    Harness h;
    h.store.content = {ContentVerdict::Kind::rejected, "archive contents pass 104857600 bytes"};
    CHECK(h.send(tx) == head + "550 5.7.1 Error: message content rejected\r\n");
    CHECK(h.store.messages.empty());
    CHECK(h.store.aborted == 1);
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0].find("content=\"archive contents pass 104857600 bytes\"") != std::string::npos);
  }
  SECTION("temporary: 451 4.3.0, nothing stored") {
    Harness h;
    h.store.content = {ContentVerdict::Kind::temporary, "clamd unix:/x: connect: No such file or directory"};
    CHECK(h.send(tx) == head + "451 4.3.0 Error: virus scanner unavailable, try again later\r\n");
    CHECK(h.store.messages.empty());
  }
  SECTION("cleaned: delivered as the sink now holds it, the removal logged") {
    Harness h;
    h.store.content = {ContentVerdict::Kind::cleaned, "Eicar-Test-Signature:eicar.com"};
    CHECK(h.send(tx) == head + "250 2.0.0 Ok: queued as ID1\r\n");
    REQUIRE(h.store.messages.size() == 1);
    CHECK(h.store.messages[0].find("[cleaned]") != std::string::npos);
    CHECK(h.log[0].find("virus=\"Eicar-Test-Signature:eicar.com\"") != std::string::npos);
  }
  SECTION("the cleaned copy cannot be written: 452 4.3.1") {
    Harness h;
    h.store.content_throws = true;
    CHECK(h.send(tx) == head + "452 4.3.1 Insufficient system storage\r\n");
    CHECK(h.store.messages.empty());
  }
  SECTION("refused content is not charged to an authenticated sender") {
    LoggedIn h;
    h.store.content = {ContentVerdict::Kind::rejected, "too deep"};
    h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nFrom: alice@example.org\r\n\r\nx\r\n.\r\n");
    CHECK(h.store.content_checks == 1);
    CHECK(h.store.charged.empty());
  }
}
