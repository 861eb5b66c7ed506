// pop3_session.cc — libFuzzer target over the POP3 session (pop3/session.h; no sockets, no
// spool): bytes are fed in pieces whose sizes come from the input, logins, transfers (through
// DotStuffer, as the net layer streams them), STLS and UPDATE run when asked. One fixed
// login reaches TRANSACTION on an in-memory maildrop (dot lines, bare LF, bare CR and NUL, a
// message with no final line end, one purged, one that cannot be removed). Checked: every
// line sent is CRLF-terminated; status lines are "+OK", "-ERR" or "+ " (SASL) without CR,
// LF or NUL and at most 512 octets (RFC 2449 §4); a multi-line body only follows "+OK", is
// dot-stuffed and ends with "."; RETR sends the announced octets; messages are removed
// only in update(). Build and run: README.md here.
#include "pop3/dot_stuffer.h"
#include "pop3/session.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace mh::pop3;
using mh::auth::AuthOutcome;

namespace {

constexpr std::string_view password = "secret";

// Each login name (with the right password) leads to one outcome of authenticate() or of
// opening the maildrop; anything else is a wrong password.
class FuzzAuthenticator : public mh::auth::Authenticator {
public:
  AuthOutcome authenticate(std::string_view, std::string_view login, const spool::Secret& pw) override {
    if (login == "throw@fuzz.test") throw std::runtime_error("authenticator failed");
    AuthOutcome o;
    o.kind = AuthOutcome::Kind::bad_credentials;
    if (pw.reveal() != password) return o;
    o.address = std::string(login);
    if (login == "alice@fuzz.test" || login == "busy@fuzz.test" || login == "broken@fuzz.test") o.kind = AuthOutcome::Kind::ok;
    else if (login == "bob@fuzz.test") o.kind = AuthOutcome::Kind::suspended;
    else if (login == "slow@fuzz.test") o.kind = AuthOutcome::Kind::throttled;
    else if (login == "temp@fuzz.test") o.kind = AuthOutcome::Kind::temporary;
    return o;
  }
};

// No line of a message may start with '+' or '-': the transcript check tells status lines
// from body lines by that first byte.
struct FakeMessage {
  std::string uidl, text;
  bool purged = false, unremovable = false;
};

constexpr char with_nul[] = "Subject: three\n\nbare\rcr and nul \0 and no final newline";

const std::vector<FakeMessage>& fake_messages() {
  static const std::vector<FakeMessage> messages = {
      {"uidl-1", "Subject: one\n\n.dotted\nbody\n"},
      {"uidl-2", "Subject: two\r\n\r\n..double\r\n.\r\nend\r\n"},
      {"uidl-3", std::string(with_nul, sizeof with_nul - 1)},
      {"uidl-4", ""},
      {"uidl-5", "Subject: gone\n\nx\n", true, false},
      {"uidl-6", "Subject: stuck\n\nx\n", false, true},
      {"uidl-7", "X: y\n\nl1\nl2\n.\nl4\n..\nl6\nl7\nl8\nl9\nl10\n"},
  };
  return messages;
}

// The size POP3 announces: CRLF line ends, before dot-stuffing (maildrop.h).
std::uint64_t wire_size(std::string_view text) {
  std::uint64_t size = text.size();
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) ++size;
  return size;
}

class FakeMaildrop : public Maildrop {
public:
  explicit FakeMaildrop(const bool& updating) : updating_(updating) {
    for (const FakeMessage& m : fake_messages()) list_.push_back({m.uidl, wire_size(m.text)});
    removed_.assign(list_.size(), false);
  }
  const std::vector<MaildropMessage>& messages() const override { return list_; }
  std::optional<int> open(std::size_t index) override {
    const FakeMessage& m = fake_messages().at(index);
    if (m.purged) return std::nullopt;
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    // Every message is far below the pipe's buffer: the write never blocks.
    if (::write(fds[1], m.text.data(), m.text.size()) != static_cast<ssize_t>(m.text.size())) std::abort();
    ::close(fds[1]);
    return fds[0];
  }
  bool remove(std::size_t index) override {
    if (!updating_ || removed_.at(index)) std::abort();  // only in UPDATE, once each
    removed_[index] = true;
    return !fake_messages()[index].unremovable;
  }

private:
  const bool& updating_;
  std::vector<MaildropMessage> list_;
  std::vector<bool> removed_;
};

class FakeProvider : public MaildropProvider {
public:
  explicit FakeProvider(const bool& updating) : updating_(updating) {}
  std::unique_ptr<Maildrop> open(const std::string& address) override {
    if (address == "busy@fuzz.test") throw MaildropBusy("locked");
    if (address == "broken@fuzz.test") throw std::runtime_error("cannot list the maildrop");
    return std::make_unique<FakeMaildrop>(updating_);
  }

private:
  const bool& updating_;
};

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

bool status_like(std::string_view line) { return !line.empty() && (line[0] == '+' || line[0] == '-'); }

bool status_ok(std::string_view line) {
  const auto word = [&](std::string_view w) {
    return line.substr(0, w.size()) == w && (line.size() == w.size() || line[w.size()] == ' ');
  };
  if (line.size() > 512 - 2) return false;
  for (char c : line)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return word("+OK") || word("-ERR") || line.substr(0, 2) == "+ ";
}

// Everything the client received, read as a client does; aborts on the first violation.
void check_transcript(std::string_view sent) {
  std::vector<std::string_view> lines;
  while (!sent.empty()) {
    const auto end = sent.find("\r\n");
    if (end == std::string_view::npos) std::abort();  // a line without CRLF
    if (sent.substr(0, end).find('\n') != std::string_view::npos) std::abort();  // bare LF
    lines.push_back(sent.substr(0, end));
    sent.remove_prefix(end + 2);
  }
  for (std::size_t i = 0; i < lines.size();) {
    const std::string_view status = lines[i++];
    if (!status_ok(status)) std::abort();
    if (i == lines.size() || status_like(lines[i])) continue;  // single-line
    if (status.substr(0, 3) != "+OK") std::abort();          // a body after -ERR or "+ "
    std::uint64_t body = 0;
    while (true) {
      if (i == lines.size()) std::abort();  // no terminating "."
      const std::string_view line = lines[i++];
      if (line == ".") break;
      if (status_like(line)) std::abort();  // no message line starts so
      if (line[0] == '.' && line.substr(0, 2) != "..") std::abort();  // not dot-stuffed
      body += line.size() - (line[0] == '.') + 2;
    }
    // RETR: "+OK <n> octets"; the CRLF added to a message without one is not counted.
    const auto octets = status.find(" octets");
    if (octets != std::string_view::npos && octets + 7 == status.size()) {
      const std::uint64_t announced = std::strtoull(std::string(status.substr(4)).c_str(), nullptr, 10);
      if (body != announced && body != announced + 2) std::abort();
    }
  }
}

// Drives the session as net/pop3_connection.cc does, collecting what would be sent.
struct Driver {
  bool updating = false;
  FuzzAuthenticator authenticator;
  FakeProvider provider{updating};
  std::string sent;

  void take(const Output& o, std::string_view chunk) {
    if (o.consumed > chunk.size()) std::abort();
    sent += o.replies;
  }
  void transfer(const Transfer& t) {
    DotStuffer stuffer(t.top_lines);
    sent += stuffer.feed(read_all(t.fd));
    sent += stuffer.finish();
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;  // feed in pieces of 1..64 bytes
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  SessionConfig config;
  config.hostname = "fuzz.test";
  config.plaintext_allowed = !(data[0] & 0x80);  // else a login needs STLS first
  config.tls_available = data[0] & 0x40;
  Driver d;
  Pop3Session session(config, "192.0.2.1", d.authenticator, d.provider);
  d.sent += session.greeting().replies;
  while (!in.empty() && !session.closed()) {
    std::string_view chunk = in.substr(0, piece);
    in.remove_prefix(chunk.size());
    while (!chunk.empty() && !session.closed()) {
      const Output o = session.feed(chunk);
      d.take(o, chunk);
      chunk.remove_prefix(o.consumed);
      if (o.action == Action::authenticate) {
        d.sent += session.authenticate().replies;
      } else if (o.action == Action::transfer) {
        d.transfer(o.transfer);
      } else if (o.action == Action::update) {
        d.updating = true;
        d.sent += session.update().replies;
        d.updating = false;
        if (!session.closed()) std::abort();
      } else if (o.action == Action::starttls) {
        chunk = {};  // dropped, as the network layer does (RFC 2595 §4)
        session.tls_started();
      } else if (o.action == Action::close) {
        if (!session.closed()) std::abort();
      } else if (o.consumed == 0) {
        std::abort();  // no progress without an action
      }
    }
  }
  // The three ends without QUIT; none deletes anything (remove() aborts outside update()).
  switch (size % 3) {
  case 0: d.sent += session.disconnected().replies; break;
  case 1: d.sent += session.timeout().replies; break;
  default: d.sent += session.shutdown().replies; break;
  }
  check_transcript(d.sent);
  return 0;
}
