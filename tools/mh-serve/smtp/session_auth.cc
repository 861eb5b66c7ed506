// session_auth.cc — the SMTP security commands: STARTTLS (RFC 3207) and AUTH (RFC 4954)
// with its SASL exchange, and the mapping of login outcomes (auth::AuthOutcome) to
// RFC 4954 replies.
#include "smtp/session.h"

#include "smtp/session_internal.h"
#include "text.h"

namespace mh::smtp {

namespace {
using text::quoted;
} // namespace

// --- checks --------------------------------------------------------------------------

std::optional<std::string> SmtpSession::check_starttls(Command& c) const {
  if (!config_.tls_available) return "502 5.5.1 Command not implemented";
  if (config_.tls_active) return "503 5.5.1 Error: TLS already active";
  // RFC 3207 §4: "501 Syntax error (no parameters allowed)".
  if (c.args.find_first_not_of(' ') != std::string_view::npos) return "501 5.5.4 Syntax: STARTTLS";
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_auth(Command& c) const {
  // RFC 4954 §4: "After a successful AUTH command completes, a server MUST reject any
  // further AUTH commands with a 503 reply."
  if (!auth_address_.empty()) return "503 5.5.1 Already authenticated";
  // RFC 4954 §6 defines 538 for exactly this: the mechanisms exist, but this channel
  // must be encrypted first (STARTTLS) unless the client is in auth.allow_plaintext.
  if (!auth_offered()) return "538 5.7.11 Encryption required for requested authentication mechanism";
  const std::string_view mechanism = c.args.substr(0, c.args.find(' '));
  const std::string_view initial =
      mechanism.size() < c.args.size() ? c.args.substr(mechanism.size() + 1) : std::string_view();
  if (mechanism.empty() || initial.find(' ') != std::string_view::npos ||
      (mechanism.size() < c.args.size() && initial.empty()))
    return "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
  if (!auth::SaslExchange::mechanism(mechanism)) return "504 5.5.4 Unrecognized authentication type";
  return std::nullopt;
}

// --- proceeds ------------------------------------------------------------------------

void SmtpSession::proceed_starttls(const Command&, Output& out) {
  // `consumed` ends right after this line (feed stops at an action): the network layer
  // drops whatever the client pipelined behind it, which was sent in the clear and must
  // not be taken as if it came through TLS (RFC 3207 §5, CVE-2011-0411).
  out.replies += "220 2.0.0 Ready to start TLS\r\n";
  state_ = State::starttls;
  out.action = Action::starttls;
}

void SmtpSession::proceed_auth(const Command& c, Output& out) {
  const std::string_view mechanism = c.args.substr(0, c.args.find(' '));
  std::optional<std::string_view> initial;
  if (mechanism.size() < c.args.size()) initial = c.args.substr(mechanism.size() + 1);
  sasl_ = std::make_unique<auth::SaslExchange>(*auth::SaslExchange::mechanism(mechanism));
  sasl_step(sasl_->start(initial), out);
}

// --- after the command: the password check, the TLS handshake, the SASL exchange -----

Output SmtpSession::authenticate() {
  Output out;
  if (state_ != State::authenticating || !credentials_) return out;
  const auth::Credentials credentials = std::move(*credentials_);
  credentials_.reset();
  state_ = State::greeted;
  auth::AuthOutcome o;
  try {
    o = authenticator_.authenticate(client_.ip, credentials.login, credentials.password);
  } catch (const std::exception& e) {
    o = {};
    o.kind = auth::AuthOutcome::Kind::temporary;
    o.detail = e.what();
  }
  using Kind = auth::AuthOutcome::Kind;
  std::string line;
  switch (o.kind) {
  case Kind::ok:
    auth_address_ = o.address.empty() ? credentials.login : o.address;
    line = "235 2.7.0 Authentication successful";
    break;
  case Kind::bad_credentials: line = "535 5.7.8 Authentication credentials invalid"; break;
  case Kind::suspended: line = "535 5.7.8 Account suspended"; break;
  case Kind::throttled: line = "421 4.7.0 Too many failed authentications, closing connection"; break;
  case Kind::temporary: line = "454 4.7.0 Temporary authentication failure"; break;
  }
  // Only failures wait (the throttle's delay); a success is answered at once.
  if (o.kind != Kind::ok) out.delay = o.delay;
  // The login itself is logged only once it is a verified account: a user who typed the
  // password into the user name field must not find it in the log.
  std::string log = "client=" + client_.ip;
  if (!client_.rdns_name.empty()) log += "(" + client_.rdns_name + ")";
  log += std::string(" tls=") + (config_.tls_active ? "yes" : "no");
  if (o.kind == Kind::ok) log += " auth=" + auth_address_;
  log += " result=" + quoted(line);
  if (!o.detail.empty() && o.kind != Kind::ok) log += " detail=" + quoted(o.detail);
  out.log.push_back(std::move(log));
  if (o.kind == Kind::throttled) {
    close_with(out, line);
    return out;
  }
  reply(out, line);
  if (errors_ >= config_.max_errors) close_with(out, "421 4.7.0 Too many errors");
  return out;
}

void SmtpSession::tls_started() {
  if (state_ != State::starttls) return;
  // RFC 3207 §4.2: "the server MUST discard any knowledge obtained from the client,
  // such as the argument to the EHLO command, which was not obtained from the TLS
  // negotiation itself". The client's address and its DNS verdict are ours, not its.
  config_.tls_active = true;
  helo_.clear();
  esmtp_ = false;
  auth_address_.clear();
  sasl_.reset();
  credentials_.reset();
  lines_ = LineReader(auth::max_response);
  state_ = State::connected;
}

bool SmtpSession::auth_offered() const noexcept {
  // SPEC §8: passwords only under TLS, or from auth.allow_plaintext networks.
  return config_.tls_active || config_.plaintext_auth_allowed;
}

std::size_t SmtpSession::feed_auth(std::string_view in, Output& out) {
  const LineReader::Result r = lines_.next(in);
  switch (r.status) {
  case LineReader::Status::need_more:
    break;
  case LineReader::Status::too_long:
    end_auth(out, "500 5.5.6 Authentication Exchange line is too long");
    break;
  case LineReader::Status::bare_line_ending:
    end_auth(out, "500 5.5.2 Bare LF or CR in command line");
    break;
  case LineReader::Status::line:
    if (r.line == "*") {
      end_auth(out, "501 5.0.0 Authentication cancelled");  // RFC 4954 §4
    } else {
      sasl_step(sasl_->respond(r.line), out);
    }
    break;
  }
  return r.consumed;
}

void SmtpSession::sasl_step(const auth::SaslExchange::Step& step, Output& out) {
  using Kind = auth::SaslExchange::Step::Kind;
  switch (step.kind) {
  case Kind::challenge:
    out.replies += "334 " + step.challenge + "\r\n";
    state_ = State::auth;
    return;
  case Kind::done:
    // Nothing after this line is read until authenticate() has answered (RFC 4954 §4:
    // AUTH ends a pipelined group).
    credentials_ = sasl_->take();
    sasl_.reset();
    state_ = State::authenticating;
    out.action = Action::authenticate;
    return;
  case Kind::bad_base64:
    end_auth(out, "501 5.5.2 Cannot decode response");
    return;
  case Kind::malformed:
    // Not a login attempt the authenticator could judge (no user, no password, or
    // someone else's authorization identity): refused without a check.
    end_auth(out, "535 5.7.8 Authentication credentials invalid");
    return;
  }
}

void SmtpSession::end_auth(Output& out, std::string line) {
  sasl_.reset();
  state_ = State::greeted;
  reply(out, std::move(line));
}

} // namespace mh::smtp
