// session_test.cc — the POP3 session fed lines, with a fake Authenticator and a fake
// maildrop: every command and reply text of session.h, pipelining, both AUTH PLAIN forms,
// STLS, deletions only at QUIT, IN-USE, purged messages, limits, and random input.
#include "pop3/dot_stuffer.h"
#include "pop3/session.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <random>
#include <set>

using namespace mh::pop3;
using mh::auth::AuthOutcome;

namespace {

struct FakeAuth : mh::auth::Authenticator {
  std::map<std::string, std::string> passwords{{"alice@example.org", "secret pw"}, {"bob@example.org", "bobpw"}};
  std::set<std::string> suspended;
  bool throttled = false, temporary = false, throws = false;
  std::chrono::milliseconds failure_delay{1500};
  std::vector<std::string> seen;  // "ip login password"

  AuthOutcome authenticate(std::string_view ip, std::string_view login, const spool::Secret& pw) override {
    seen.push_back(std::string(ip) + " " + std::string(login) + " " + pw.reveal());
    if (throws) throw std::runtime_error("disk on fire");
    AuthOutcome o;
    std::string key(login);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (throttled) {
      o.kind = AuthOutcome::Kind::throttled;
      o.delay = failure_delay;
    } else if (temporary) {
      o.kind = AuthOutcome::Kind::temporary;
      o.detail = "account.yaml unreadable";
    } else if (!passwords.count(key) || passwords[key] != pw.reveal()) {
      o.kind = AuthOutcome::Kind::bad_credentials;
      o.delay = failure_delay;
      o.detail = "wrong password";
    } else if (suspended.count(key)) {
      o.kind = AuthOutcome::Kind::suspended;
    } else {
      o.kind = AuthOutcome::Kind::ok;
      o.address = key;
    }
    return o;
  }
};

// A maildrop in memory; open() hands out a pipe whose read end carries the message.
struct FakeStore {
  struct Message {
    std::string uidl, text;
    std::uint64_t size;
  };
  std::map<std::string, std::vector<Message>> boxes;
  std::set<std::string> locked;
  std::set<std::string> purged;      // uidls that vanished after the snapshot
  std::set<std::string> unremovable; // uidls whose removal fails
  std::vector<std::string> removed;
  bool open_throws = false;
};

class FakeDrop : public Maildrop {
public:
  FakeDrop(FakeStore& s, std::string address) : store_(s), address_(std::move(address)) {
    store_.locked.insert(address_);
    for (const auto& m : store_.boxes[address_]) messages_.push_back({m.uidl, m.size});
  }
  ~FakeDrop() override { store_.locked.erase(address_); }
  const std::vector<MaildropMessage>& messages() const override { return messages_; }
  std::optional<int> open(std::size_t i) override {
    const auto& m = store_.boxes[address_].at(i);
    if (store_.purged.count(m.uidl)) return std::nullopt;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], m.text.data(), m.text.size()) == static_cast<ssize_t>(m.text.size()));
    ::close(fds[1]);
    return fds[0];
  }
  bool remove(std::size_t i) override {
    const auto& m = store_.boxes[address_].at(i);
    if (store_.unremovable.count(m.uidl)) return false;
    store_.removed.push_back(m.uidl);
    return true;
  }

private:
  FakeStore& store_;
  std::string address_;
  std::vector<MaildropMessage> messages_;
};

struct FakeProvider : MaildropProvider {
  FakeStore& store;
  explicit FakeProvider(FakeStore& s) : store(s) {}
  std::unique_ptr<Maildrop> open(const std::string& address) override {
    if (store.open_throws) throw std::runtime_error("cannot list " + address);
    if (store.locked.count(address)) throw MaildropBusy("busy");
    return std::make_unique<FakeDrop>(store, address);
  }
};

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

// A session plus a driver that behaves like the net layer: runs authenticate(), streams
// transfers (their bytes are appended to the replies, as the client would see them).
struct Harness {
  FakeAuth auth;
  FakeStore store;
  FakeProvider provider{store};
  SessionConfig config;
  std::unique_ptr<Pop3Session> session;
  std::vector<std::string> log;
  std::chrono::milliseconds last_delay{0};
  std::vector<Action> actions;
  int open_fds = 0;

  Harness() {
    config.hostname = "mx.test";
    config.plaintext_allowed = true;
    config.max_errors = 100;  // tests of the limit set their own
    store.boxes["alice@example.org"] = {
        {"uidl-one", "Subject: one\n\n.dotted\nbody\n", 31},
        {"uidl-two", "Subject: two\n\nline 1\nline 2\nline 3\n", 40},
        {"uidl-three", "Subject: three\n\nx\n", 21},
    };
    store.boxes["bob@example.org"] = {};
  }

  Pop3Session& s() {
    if (!session) session = std::make_unique<Pop3Session>(config, "192.0.2.7", auth, provider);
    return *session;
  }

  std::string greet() { return s().greeting().replies; }

  // Feeds `in` completely, performing every action; returns all bytes sent back.
  std::string feed(std::string_view in) {
    std::string sent;
    while (true) {
      Output o = s().feed(in);
      in.remove_prefix(o.consumed);
      sent += o.replies;
      log.insert(log.end(), o.log.begin(), o.log.end());
      actions.push_back(o.action);
      if (o.action == Action::authenticate) {
        Output a = s().authenticate();
        last_delay = a.delay;
        sent += a.replies;
        log.insert(log.end(), a.log.begin(), a.log.end());
        actions.push_back(a.action);
        if (a.action == Action::close) break;
        continue;
      }
      if (o.action == Action::update) {
        Output u = s().update();
        sent += u.replies;
        log.insert(log.end(), u.log.begin(), u.log.end());
        actions.push_back(u.action);
        break;
      }
      if (o.action == Action::transfer) {
        DotStuffer d(o.transfer.top_lines);
        sent += d.feed(read_all(o.transfer.fd));
        sent += d.finish();
        ::close(o.transfer.fd);
        continue;
      }
      if (o.action == Action::starttls) {
        s().tls_started();
        in = {};  // the net layer drops what came after STLS
        break;
      }
      if (o.action == Action::close || in.empty() || o.consumed == 0) break;
    }
    return sent;
  }

  std::string login(const std::string& user = "alice@example.org", const std::string& pw = "secret pw") {
    return feed("USER " + user + "\r\nPASS " + pw + "\r\n");
  }
};

const std::string greeting = "+OK mailhost POP3 ready.\r\n";
const std::string plaintext_refused =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n";

std::string b64(std::string_view in) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    for (int k = 18; k >= 0; k -= 6) out += alphabet[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

using namespace std::string_literals;

} // namespace

TEST_CASE("greeting and CAPA depend on TLS and on the plaintext rule", "[pop3][session]") {
  Harness h;
  CHECK(h.greet() == greeting);
  CHECK(h.feed("CAPA\r\n") ==
        "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n");

  Harness tls;
  tls.config.plaintext_allowed = false;
  tls.config.tls_available = true;
  CHECK(tls.feed("CAPA\r\n") == "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\n.\r\n");

  Harness pop3s;
  pop3s.config.plaintext_allowed = false;
  pop3s.config.tls_available = true;
  pop3s.config.tls_active = true;
  CHECK(pop3s.feed("capa\r\n") ==
        "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n");

  // After login: nothing that only works before it.
  h.login();
  CHECK(h.feed("CAPA\r\n") == "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n");
}

TEST_CASE("USER/PASS login, its log line, then STAT LIST UIDL", "[pop3][session]") {
  Harness h;
  h.greet();
  CHECK(h.feed("USER alice@example.org\r\n") == "+OK\r\n");
  CHECK(h.feed("PASS secret pw\r\n") == "+OK Logged in.\r\n");  // spaces belong to the password
  CHECK(h.auth.seen.back() == "192.0.2.7 alice@example.org secret pw");
  REQUIRE(h.log.size() == 1);
  CHECK(h.log[0] == "login client=192.0.2.7 user=alice@example.org method=USER messages=3 bytes=92");
  CHECK(h.feed("STAT\r\n") == "+OK 3 92\r\n");
  CHECK(h.feed("LIST\r\n") == "+OK 3 messages:\r\n1 31\r\n2 40\r\n3 21\r\n.\r\n");
  CHECK(h.feed("LIST 2\r\n") == "+OK 2 40\r\n");
  CHECK(h.feed("UIDL\r\n") == "+OK\r\n1 uidl-one\r\n2 uidl-two\r\n3 uidl-three\r\n.\r\n");
  CHECK(h.feed("UIDL 3\r\n") == "+OK 3 uidl-three\r\n");
  CHECK(h.feed("NOOP\r\n") == "+OK\r\n");
}

TEST_CASE("RETR streams the dot-stuffed message; TOP the header and N lines", "[pop3][session]") {
  Harness h;
  h.login();
  CHECK(h.feed("RETR 1\r\n") == "+OK 31 octets\r\nSubject: one\r\n\r\n..dotted\r\nbody\r\n.\r\n");
  CHECK(h.actions.back() == Action::none);
  CHECK(h.feed("TOP 2 1\r\n") == "+OK\r\nSubject: two\r\n\r\nline 1\r\n.\r\n");
  CHECK(h.feed("TOP 2 0\r\n") == "+OK\r\nSubject: two\r\n\r\n.\r\n");
  CHECK(h.feed("TOP 2 99999999999\r\n") == "-ERR Invalid number of lines.\r\n");
  CHECK(h.feed("TOP 2 9999999999\r\n") == "+OK\r\nSubject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\n.\r\n");
  CHECK(h.feed("TOP 2\r\n") == "-ERR Syntax: TOP <message> <lines>\r\n");
  CHECK(h.feed("TOP 2 x\r\n") == "-ERR Invalid number of lines.\r\n");
  CHECK(h.feed("TOP 2 -1\r\n") == "-ERR Invalid number of lines.\r\n");
  CHECK(h.feed("RETR\r\n") == "-ERR Syntax: RETR <message>\r\n");
  CHECK(h.feed("RETR 1 2\r\n") == "-ERR Syntax: RETR <message>\r\n");
}

TEST_CASE("the session stops after an action, with consumed up to that command", "[pop3][session]") {
  Harness h;
  h.login();
  Pop3Session& s = h.s();
  const std::string in = "RETR 3\r\nSTAT\r\n";
  Output o = s.feed(in);
  CHECK(o.replies == "+OK 21 octets\r\n");
  CHECK(o.action == Action::transfer);
  CHECK(o.transfer.top_lines == -1);
  CHECK(o.consumed == 8);
  CHECK(read_all(o.transfer.fd) == "Subject: three\n\nx\n");
  ::close(o.transfer.fd);
  Output rest = s.feed(std::string_view(in).substr(o.consumed));
  CHECK(rest.replies == "+OK 3 92\r\n");
  CHECK(rest.consumed == 6);
}

TEST_CASE("pipelined commands in one feed, login included (RFC 2449 PIPELINING)", "[pop3][session]") {
  Harness h;
  h.greet();
  const std::string out =
      h.feed("CAPA\r\nUSER alice@example.org\r\nPASS secret pw\r\nSTAT\r\nDELE 1\r\nLIST\r\nRETR 2\r\nUIDL 2\r\nQUIT\r\n");
  CHECK(out ==
        "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
        "+OK\r\n+OK Logged in.\r\n+OK 3 92\r\n+OK Marked to be deleted.\r\n"
        "+OK 2 messages:\r\n2 40\r\n3 21\r\n.\r\n"
        "+OK 40 octets\r\nSubject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\n.\r\n"
        "+OK 2 uidl-two\r\n+OK Logging out, messages deleted.\r\n");
  CHECK(h.store.removed == std::vector<std::string>{"uidl-one"});
  CHECK(h.s().closed());
  REQUIRE(h.log.size() == 2);
  CHECK(h.log[1] ==
        "logout client=192.0.2.7 user=alice@example.org retrieved=1 retrieved_bytes=40 deleted=1 deleted_bytes=31 "
        "result=\"quit\"");
}

TEST_CASE("commands split across feeds, bare LF accepted, verbs in any case", "[pop3][session]") {
  Harness h;
  h.greet();
  CHECK(h.feed("US") == "");
  CHECK(h.feed("ER alice@example.org\r") == "");
  CHECK(h.feed("\n") == "+OK\r\n");
  CHECK(h.feed("pass secret pw\n") == "+OK Logged in.\r\n");
  CHECK(h.feed("stat\n") == "+OK 3 92\r\n");
}

TEST_CASE("wrong password, unknown user, suspended, temporary, throttled", "[pop3][session]") {
  Harness h;
  h.auth.suspended.insert("bob@example.org");
  h.greet();
  CHECK(h.login("alice@example.org", "nope") == "+OK\r\n-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.last_delay == std::chrono::milliseconds(1500));
  CHECK(h.log.back() ==
        "login failed client=192.0.2.7 method=USER result=bad_credentials detail=\"wrong password\"");
  CHECK(h.log.back().find("nope") == std::string::npos);
  CHECK(h.login("nobody@example.org", "x") == "+OK\r\n-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.login("bob@example.org", "bobpw") == "+OK\r\n-ERR [AUTH] Account is suspended.\r\n");
  // A failed PASS forgets the user: PASS alone again needs USER first.
  CHECK(h.feed("PASS bobpw\r\n") == "-ERR No username given.\r\n");

  h.auth.temporary = true;
  CHECK(h.login() == "+OK\r\n-ERR [SYS/TEMP] Temporary authentication failure, try again later.\r\n");
  h.auth.temporary = false;
  h.auth.throws = true;
  CHECK(h.login() == "+OK\r\n-ERR [SYS/TEMP] Temporary authentication failure, try again later.\r\n");
  CHECK(h.log.back().find("detail=\"disk on fire\"") != std::string::npos);
  h.auth.throws = false;

  h.auth.throttled = true;
  CHECK(h.login() == "+OK\r\n-ERR [SYS/TEMP] Too many failed logins, try again later.\r\n");
  CHECK(h.actions.back() == Action::close);
  CHECK(h.s().closed());
}

TEST_CASE("plaintext logins are refused without TLS outside allow_plaintext", "[pop3][session]") {
  Harness h;
  h.config.plaintext_allowed = false;
  h.greet();
  CHECK(h.feed("USER alice@example.org\r\n") == plaintext_refused);
  CHECK(h.feed("PASS secret pw\r\n") == plaintext_refused);
  CHECK(h.feed("AUTH PLAIN " + b64("\0alice@example.org\0secret pw"s) + "\r\n") == plaintext_refused);
  CHECK(h.feed("AUTH PLAIN\r\n") == plaintext_refused);
  CHECK(h.feed("AUTH\r\n") == "+OK\r\n.\r\n");
  CHECK(h.auth.seen.empty());
  CHECK(h.feed("STLS\r\n") == "-ERR TLS support isn't enabled.\r\n");
}

TEST_CASE("STLS, then a plaintext login is allowed; nothing pipelined behind STLS is run", "[pop3][session]") {
  Harness h;
  h.config.plaintext_allowed = false;
  h.config.tls_available = true;
  h.greet();
  CHECK(h.feed("USER alice@example.org\r\n") == plaintext_refused);
  Output o = h.s().feed("STLS\r\nUSER alice@example.org\r\n");
  CHECK(o.replies == "+OK Begin TLS negotiation now.\r\n");
  CHECK(o.action == Action::starttls);
  CHECK(o.consumed == 6);
  CHECK(h.s().feed("USER x\r\n").consumed == 0);  // waiting for the handshake
  h.s().tls_started();
  CHECK(h.feed("STLS\r\n") == "-ERR TLS is already active.\r\n");
  CHECK(h.feed("CAPA\r\n") ==
        "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
  CHECK(h.login() == "+OK\r\n+OK Logged in.\r\n");
  CHECK(h.feed("STLS\r\n") == "-ERR Already logged in.\r\n");
}

TEST_CASE("USER given before STLS is forgotten after it", "[pop3][session]") {
  Harness h;
  h.config.plaintext_allowed = true;
  h.config.tls_available = true;
  h.greet();
  CHECK(h.feed("USER alice@example.org\r\n") == "+OK\r\n");
  CHECK(h.feed("STLS\r\n") == "+OK Begin TLS negotiation now.\r\n");
  CHECK(h.feed("PASS secret pw\r\n") == "-ERR No username given.\r\n");
}

TEST_CASE("AUTH PLAIN with an initial response and with a continuation", "[pop3][session]") {
  Harness h;
  h.greet();
  CHECK(h.feed("AUTH\r\n") == "+OK\r\nPLAIN\r\n.\r\n");
  CHECK(h.feed("AUTH PLAIN " + b64("\0alice@example.org\0secret pw"s) + "\r\n") == "+OK Logged in.\r\n");
  CHECK(h.auth.seen.back() == "192.0.2.7 alice@example.org secret pw");
  CHECK(h.log.back().find("method=PLAIN") != std::string::npos);

  Harness c;
  c.greet();
  CHECK(c.feed("auth plain\r\n") == "+ \r\n");
  CHECK(c.feed(b64("alice@example.org\0alice@example.org\0secret pw"s) + "\r\n") == "+OK Logged in.\r\n");

  Harness cancel;
  cancel.greet();
  CHECK(cancel.feed("AUTH PLAIN\r\n") == "+ \r\n");
  CHECK(cancel.feed("*\r\n") == "-ERR Authentication aborted by client.\r\n");
  CHECK(cancel.feed("NOOP\r\n") == "+OK\r\n");  // back to normal commands
  CHECK(cancel.auth.seen.empty());
}

TEST_CASE("AUTH PLAIN with bad base64 or a malformed message", "[pop3][session]") {
  Harness h;
  h.greet();
  CHECK(h.feed("AUTH PLAIN AGFsaWNl!\r\n") == "-ERR Invalid base64 data.\r\n");
  CHECK(h.feed("AUTH PLAIN AGFsaWNl\r\n") == "-ERR [AUTH] Authentication failed.\r\n");  // "\0alice": no password
  CHECK(h.feed("AUTH PLAIN AGFsaWN\r\n") == "-ERR Invalid base64 data.\r\n");           // not whole quads
  CHECK(h.feed("AUTH PLAIN A=FsaWNl\r\n") == "-ERR Invalid base64 data.\r\n");          // '=' inside
  CHECK(h.feed("AUTH PLAIN AGF=\r\n") == "-ERR Invalid base64 data.\r\n");              // pad bits set
  CHECK(h.feed("AUTH PLAIN =\r\n") == "-ERR [AUTH] Authentication failed.\r\n");         // empty response
  CHECK(h.feed("AUTH PLAIN " + b64("\0\0pw"s) + "\r\n") == "-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.feed("AUTH PLAIN " + b64("\0a\0b\0c"s) + "\r\n") == "-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.feed("AUTH PLAIN\r\n") == "+ \r\n");
  CHECK(h.feed("not base64 at all\r\n") == "-ERR Invalid base64 data.\r\n");
  // Someone else's authorization identity: refused without asking the authenticator.
  CHECK(h.feed("AUTH PLAIN " + b64("ALICE@example.org\0alice@example.org\0secret pw"s) + "\r\n") ==
        "-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.feed("AUTH PLAIN " + b64("bob@example.org\0alice@example.org\0secret pw"s) + "\r\n") ==
        "-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.feed("AUTH LOGIN\r\n") == "-ERR Unsupported authentication mechanism.\r\n");
  CHECK(h.feed("AUTH PLAIN a b c\r\n") == "-ERR Syntax: AUTH <mechanism> [<initial response>]\r\n");
  CHECK(h.auth.seen.empty());
}

TEST_CASE("commands out of state and unknown commands", "[pop3][session]") {
  Harness h;
  h.greet();
  CHECK(h.feed("STAT\r\n") == "-ERR Not logged in.\r\n");
  CHECK(h.feed("RETR 1\r\n") == "-ERR Not logged in.\r\n");
  CHECK(h.feed("PASS x\r\n") == "-ERR No username given.\r\n");
  CHECK(h.feed("USER\r\n") == "-ERR Syntax: USER <name>\r\n");
  CHECK(h.feed("APOP a b\r\n") == "-ERR Unknown command.\r\n");
  CHECK(h.feed("\r\n") == "-ERR Unknown command.\r\n");
  CHECK(h.feed("RETRIEVE 1\r\n") == "-ERR Unknown command.\r\n");
  CHECK(h.feed("NOOP extra\r\n") == "-ERR Syntax: NOOP\r\n");
  h.login();
  CHECK(h.feed("USER alice@example.org\r\n") == "-ERR Already logged in.\r\n");
  CHECK(h.feed("AUTH PLAIN\r\n") == "-ERR Already logged in.\r\n");
  CHECK(h.feed("XTND\r\n") == "-ERR Unknown command.\r\n");
}

TEST_CASE("message numbers: unknown, zero, deleted, not a number", "[pop3][session]") {
  Harness h;
  h.login();
  CHECK(h.feed("RETR 4\r\n") == "-ERR There's no message 4.\r\n");
  CHECK(h.feed("LIST 0\r\n") == "-ERR There's no message 0.\r\n");
  CHECK(h.feed("UIDL 007\r\n") == "-ERR There's no message 7.\r\n");
  CHECK(h.feed("DELE x\r\n") == "-ERR Invalid message number.\r\n");
  CHECK(h.feed("RETR -1\r\n") == "-ERR Invalid message number.\r\n");
  CHECK(h.feed("RETR 99999999999\r\n") == "-ERR Invalid message number.\r\n");
  CHECK(h.feed("DELE 2\r\n") == "+OK Marked to be deleted.\r\n");
  CHECK(h.feed("DELE 2\r\n") == "-ERR There's no message 2.\r\n");
  CHECK(h.feed("RETR 2\r\n") == "-ERR There's no message 2.\r\n");
  CHECK(h.feed("TOP 2 1\r\n") == "-ERR There's no message 2.\r\n");
  CHECK(h.feed("LIST 2\r\n") == "-ERR There's no message 2.\r\n");
  CHECK(h.feed("UIDL 2\r\n") == "-ERR There's no message 2.\r\n");
  CHECK(h.feed("STAT\r\n") == "+OK 2 52\r\n");
  CHECK(h.feed("LIST\r\n") == "+OK 2 messages:\r\n1 31\r\n3 21\r\n.\r\n");
  CHECK(h.feed("UIDL\r\n") == "+OK\r\n1 uidl-one\r\n3 uidl-three\r\n.\r\n");
}

TEST_CASE("DELE then RSET unmarks everything", "[pop3][session]") {
  Harness h;
  h.login();
  h.feed("DELE 1\r\nDELE 3\r\n");
  CHECK(h.feed("STAT\r\n") == "+OK 1 40\r\n");
  CHECK(h.feed("RSET\r\n") == "+OK\r\n");
  CHECK(h.feed("STAT\r\n") == "+OK 3 92\r\n");
  CHECK(h.feed("QUIT\r\n") == "+OK Logging out.\r\n");
  CHECK(h.store.removed.empty());
}

TEST_CASE("DELE then a dropped connection, timeout or shutdown deletes nothing", "[pop3][session]") {
  for (int how = 0; how < 3; ++how) {
    Harness h;
    h.login();
    h.feed("DELE 1\r\nRETR 2\r\n");
    Output o = how == 0 ? h.s().disconnected() : how == 1 ? h.s().timeout() : h.s().shutdown();
    CHECK(o.replies == (how == 0 ? "" : how == 1 ? "-ERR Disconnected for inactivity.\r\n"
                                                 : "-ERR [SYS/TEMP] mx.test shutting down.\r\n"));
    CHECK(o.action == (how == 0 ? Action::none : Action::close));
    CHECK(h.s().closed());
    CHECK(h.store.removed.empty());
    CHECK(h.store.locked.empty());  // the maildrop is unlocked
    REQUIRE(o.log.size() == 1);
    CHECK(o.log[0] == "logout client=192.0.2.7 user=alice@example.org retrieved=1 retrieved_bytes=40 deleted=1 "
                      "deleted_bytes=31 result=\"" + std::string(how == 0 ? "disconnected" : how == 1 ? "timeout" : "shutdown") + "\"");
    CHECK(h.s().disconnected().log.empty());  // once
  }
  Harness before_login;
  before_login.greet();
  Output o = before_login.s().timeout();
  CHECK(o.replies == "-ERR Disconnected for inactivity.\r\n");
  CHECK(o.log.empty());
}

TEST_CASE("QUIT removes the marked messages; a failed removal still closes", "[pop3][session]") {
  Harness h;
  h.login();
  h.store.unremovable.insert("uidl-three");
  h.feed("DELE 1\r\nDELE 3\r\n");
  CHECK(h.feed("QUIT\r\n") == "-ERR [SYS/TEMP] Some deleted messages could not be removed.\r\n");
  CHECK(h.actions.back() == Action::close);
  CHECK(h.store.removed == std::vector<std::string>{"uidl-one"});
  CHECK(h.store.locked.empty());
  CHECK(h.log.back().find("result=\"quit, 1 removals failed\"") != std::string::npos);

  Harness a;
  a.greet();
  CHECK(a.feed("QUIT\r\nNOOP\r\n") == "+OK Logging out.\r\n");  // nothing is read after QUIT
}

TEST_CASE("a second session on the same mailbox gets IN-USE", "[pop3][session]") {
  Harness h;
  h.login();
  Pop3Session second(h.config, "192.0.2.8", h.auth, h.provider);
  Output o = second.feed("USER alice@example.org\r\nPASS secret pw\r\n");
  CHECK(o.action == Action::authenticate);
  Output a = second.authenticate();
  CHECK(a.replies == "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n");
  CHECK(a.action == Action::none);
  CHECK(a.log.back() == "login refused client=192.0.2.8 user=alice@example.org result=in_use");
  h.feed("QUIT\r\n");
  // Once the first session ends, the second may log in.
  CHECK(second.feed("USER alice@example.org\r\nPASS secret pw\r\n").action == Action::authenticate);
  CHECK(second.authenticate().replies == "+OK Logged in.\r\n");
}

TEST_CASE("the maildrop cannot be opened: internal error, session goes on", "[pop3][session]") {
  Harness h;
  h.store.open_throws = true;
  h.greet();
  CHECK(h.login() ==
        "+OK\r\n-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.\r\n");
  CHECK(h.log.back().find("cannot list alice@example.org") != std::string::npos);
  CHECK(h.feed("NOOP\r\n") == "+OK\r\n");
}

TEST_CASE("a message purged during the session", "[pop3][session]") {
  Harness h;
  h.login();
  h.store.purged.insert("uidl-two");
  CHECK(h.feed("RETR 2\r\n") == "-ERR Message 2 is no longer available.\r\n");
  CHECK(h.feed("TOP 2 0\r\n") == "-ERR Message 2 is no longer available.\r\n");
  CHECK(h.feed("RETR 3\r\n") == "+OK 21 octets\r\nSubject: three\r\n\r\nx\r\n.\r\n");
  CHECK(h.feed("DELE 2\r\nQUIT\r\n") == "+OK Marked to be deleted.\r\n+OK Logging out, messages deleted.\r\n");
}

TEST_CASE("an over-long line is refused and skipped, memory bounded", "[pop3][session]") {
  Harness h;
  h.greet();
  const std::string huge(max_pop3_line, 'A');
  CHECK(h.feed(huge + "\r\nNOOP\r\n") == "-ERR Line too long.\r\n+OK\r\n");
  // Over several feeds, with no LF for a long time.
  for (int i = 0; i < 100; ++i) CHECK(h.feed(huge) == "");
  CHECK(h.feed("\r\nNOOP\r\n") == "-ERR Line too long.\r\n+OK\r\n");
  // The longest line accepted: max_pop3_line octets with its CRLF.
  const std::string pw(max_pop3_line - std::string("PASS \r\n").size(), 'p');
  CHECK(h.feed("USER alice@example.org\r\nPASS " + pw + "\r\n") == "+OK\r\n-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.auth.seen.back() == "192.0.2.7 alice@example.org " + pw);
  // An over-long SASL response ends the AUTH exchange.
  CHECK(h.feed("AUTH PLAIN\r\n") == "+ \r\n");
  CHECK(h.feed(huge + "\r\nNOOP\r\n") == "-ERR Line too long.\r\n+OK\r\n");
}

TEST_CASE("too many bad commands close the session, deleting nothing", "[pop3][session]") {
  Harness h;
  h.config.max_errors = 3;
  h.login();
  h.feed("DELE 1\r\n");
  CHECK(h.feed("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n") ==
        "-ERR Unknown command.\r\n-ERR Unknown command.\r\n-ERR Unknown command.\r\n-ERR Too many bad commands.\r\n");
  CHECK(h.s().closed());
  CHECK(h.store.removed.empty());
  CHECK(h.log.back().find("result=\"too many bad commands\"") != std::string::npos);

  Harness p;  // failed logins count too
  p.config.max_errors = 2;
  p.greet();
  p.login("alice@example.org", "bad");
  CHECK(p.login("alice@example.org", "bad") ==
        "+OK\r\n-ERR [AUTH] Authentication failed.\r\n-ERR Too many bad commands.\r\n");
  CHECK(p.actions.back() == Action::close);

  Harness s;  // server-side failures do not count
  s.config.max_errors = 2;
  s.login();
  s.store.purged.insert("uidl-one");
  CHECK(s.feed("RETR 1\r\nRETR 1\r\nRETR 1\r\nNOOP\r\n") ==
        "-ERR Message 1 is no longer available.\r\n-ERR Message 1 is no longer available.\r\n"
        "-ERR Message 1 is no longer available.\r\n+OK\r\n");
}

TEST_CASE("random input never crashes the session and never grows its buffers", "[pop3][session]") {
  std::mt19937 rng(42);
  const std::vector<std::string> words = {"USER alice@example.org", "PASS secret pw", "AUTH PLAIN", "*", "STAT",
                                          "LIST",  "RETR 1", "TOP 1 1", "DELE 2", "RSET", "UIDL", "NOOP", "CAPA",
                                          "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldCBwdw==", "RETR 99"};
  for (int round = 0; round < 200; ++round) {
    Harness h;
    h.config.max_errors = 1000;
    h.greet();
    std::string in;
    for (int i = 0; i < 40; ++i) {
      switch (rng() % 4) {
      case 0: in += words[rng() % words.size()] + "\r\n"; break;
      case 1: in += words[rng() % words.size()] + "\n"; break;
      case 2:
        for (int k = rng() % 50; k > 0; --k) in += static_cast<char>(rng() % 256);
        break;
      default: in += std::string(rng() % 3000, 'x') + "\n"; break;
      }
    }
    for (std::size_t i = 0; i < in.size() && !h.s().closed();) {
      const std::size_t n = 1 + rng() % 200;
      h.feed(std::string_view(in).substr(i, n));
      i += n;
    }
    h.s().disconnected();
    CHECK(h.store.removed.empty());  // never without QUIT
  }
}
