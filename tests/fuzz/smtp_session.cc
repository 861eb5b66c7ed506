// smtp_session.cc — libFuzzer target over the SMTP session (no sockets, no spool):
// arbitrary bytes are fed in pieces whose sizes come from the input itself (so pipelined
// commands, and DATA with its body, arrive in one piece or split anywhere), deliveries,
// logins and STARTTLS run when asked (AUTH and STARTTLS are offered), and every reply
// must be well-formed CRLF lines with a 3-digit code. Protocol synchronization (RFC 2920,
// SessionConfig::sync_required) is on for most inputs. Build and run: README.md here.
#include "smtp/session.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace mh::smtp;

namespace {

class NullSink : public MessageSink {
public:
  explicit NullSink(const Envelope& e) : rcpts_(e.local) { rcpts_.insert(rcpts_.end(), e.remote.begin(), e.remote.end()); }
  void append(std::string_view b) override { size_ += b.size(); }
  std::vector<DeliveryResult> deliver() override {
    std::vector<DeliveryResult> out;
    for (std::size_t i = 0; i < rcpts_.size(); ++i) {
      DeliveryResult d;
      d.recipient = rcpts_[i];
      // Vary outcomes so every reply path of deliver() is reachable.
      d.status = static_cast<DeliveryResult::Status>((size_ + i) % 5);
      out.push_back(d);
    }
    return out;
  }
  void abort() noexcept override {}

private:
  std::vector<std::string> rcpts_;
  std::size_t size_ = 0;
};

class FuzzBackend : public MailBackend {
public:
  RecipientCheck check_recipient(std::string_view mailbox, std::uint64_t) override {
    RecipientCheck r;
    r.kind = static_cast<RecipientCheck::Kind>(mailbox.size() % 6);
    r.canonical = std::string(mailbox);
    return r;
  }
  std::unique_ptr<MessageSink> begin_message(const Envelope& e) override {
    if (e.local.size() + e.remote.size() == 7) throw std::runtime_error("store unavailable");
    return std::make_unique<NullSink>(e);
  }
  SenderState sender_state(std::string_view account) override {
    SenderState s;
    s.kind = static_cast<SenderState::Kind>(account.size() % 4);
    s.reason = "reason\r\nwith a line break";
    return s;
  }
  std::string new_message_id() override { return "FUZZ"; }
  std::int64_t now() override { return 0; }
};

// Every outcome, chosen by the login's length.
class FuzzAuthenticator : public mh::auth::Authenticator {
public:
  mh::auth::AuthOutcome authenticate(std::string_view, std::string_view login, const spool::Secret&) override {
    mh::auth::AuthOutcome o;
    o.kind = static_cast<mh::auth::AuthOutcome::Kind>(login.size() % 5);
    o.address = std::string(login);
    return o;
  }
};

void check_replies(const std::string& replies) {
  std::size_t pos = 0;
  while (pos < replies.size()) {
    const auto end = replies.find("\r\n", pos);
    if (end == std::string::npos || end - pos < 3) std::abort();
    for (std::size_t i = pos; i < pos + 3; ++i)
      if (replies[i] < '0' || replies[i] > '9') std::abort();
    for (std::size_t i = pos; i < end; ++i)
      if (replies[i] == '\r' || replies[i] == '\n' || replies[i] == '\0') std::abort();
    pos = end + 2;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;  // feed in pieces of 1..64 bytes
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  FuzzBackend backend;
  FuzzAuthenticator authenticator;
  SessionConfig config;
  config.hostname = "fuzz.test";
  config.message_size_limit = 200;
  config.max_recipients = 3;
  config.tls_available = true;
  config.plaintext_auth_allowed = data[0] & 0x80;
  config.submission = data[0] & 0x40;
  config.from_header = config.submission ? FromPolicy::own_domain : FromPolicy::any;
  // The listeners' RFC 2920 synchronization rule; one input in four runs exempt, as
  // --stdio does. Bytes after the current piece count as already sent (more_pending).
  config.sync_required = size % 4 != 0;
  SmtpSession session(config, ClientInfo{"192.0.2.1", ""}, backend, authenticator);
  check_replies(session.greeting().replies);
  while (!in.empty() && !session.closed()) {
    std::string_view chunk = in.substr(0, piece);
    in.remove_prefix(chunk.size());
    while (!chunk.empty() && !session.closed()) {
      Output o = session.feed(chunk, !in.empty());
      check_replies(o.replies);
      if (o.consumed > chunk.size()) std::abort();
      chunk.remove_prefix(o.consumed);
      if (o.action == Action::deliver) check_replies(session.deliver().replies);
      else if (o.action == Action::authenticate) check_replies(session.authenticate().replies);
      else if (o.action == Action::starttls) {
        chunk = {};  // dropped, as the network layer does (RFC 3207 §5)
        session.tls_started();
      } else if (o.consumed == 0) std::abort();  // no progress without an action
    }
  }
  // Bytes out of turn seen by the network layer (before the greeting, or after DATA)
  // end the session there; otherwise the client just goes away.
  if (size % 3 == 0) check_replies(session.protocol_sync_error("fuzz").replies);
  check_replies(session.disconnected().replies);
  return 0;
}
