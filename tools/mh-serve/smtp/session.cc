// session.cc — the SMTP state machine: its verb table, reading commands, the replies
// common to every phase, HELO/EHLO and the commands without a phase (RSET, NOOP, QUIT…).
// Every reply text lives in session*.cc (STYLE §7: error → reply mapped in one place):
// MAIL/RCPT in session_envelope.cc, DATA and delivery in session_data.cc, STARTTLS and
// AUTH (with the mapping of auth::AuthOutcome to RFC 4954 replies) in session_auth.cc.
#include "smtp/session.h"

#include "smtp/session_internal.h"
#include "text.h"

namespace mh::smtp {

namespace {

using State = SmtpSession::State;

constexpr unsigned bit(State s) { return static_cast<unsigned>(s); }
constexpr unsigned command_states = bit(State::connected) | bit(State::greeted) | bit(State::mail) | bit(State::rcpt);

const std::string mail_in_progress = "503 5.5.1 Error: MAIL transaction in progress";
const std::string sync_error_reply = "554 5.5.0 Error: SMTP protocol synchronization";

// The DATA command, whatever follows the verb (a malformed DATA is still answered, so
// bytes behind it were still sent before its reply).
bool is_data_line(std::string_view line) {
  return line.size() >= 4 && text::upper(line.substr(0, 4)) == "DATA" && (line.size() == 4 || line[4] == ' ');
}

// A command line other than AUTH may not exceed RFC 5321's 512 octets with CRLF; the
// line reader itself allows AUTH's 12288 (RFC 4954 §4).
constexpr std::size_t max_command_text = max_command_line - 2;

using text::quoted;
using text::upper;
using session_detail::too_many_recipients;

} // namespace

struct SmtpSession::VerbEntry {
  std::string_view verb;
  unsigned allowed;  // bits of State
  std::optional<std::string> (SmtpSession::*check)(Command&) const;
  void (SmtpSession::*proceed)(const Command&, Output&);
};

// The verb table (OpenSMTPD smtp_session.c `commands[]`): allowed states, check, proceed.
// A verb outside its states gets out_of_sequence(); a failed check gets its reply.
const SmtpSession::VerbEntry* SmtpSession::find_verb(std::string_view verb) {
  static const VerbEntry table[] = {
    {"HELO", command_states, &SmtpSession::check_helo, &SmtpSession::proceed_helo},
    {"EHLO", command_states, &SmtpSession::check_helo, &SmtpSession::proceed_ehlo},
    {"MAIL", bit(State::greeted), &SmtpSession::check_mail, &SmtpSession::proceed_mail},
    {"RCPT", bit(State::mail) | bit(State::rcpt), &SmtpSession::check_rcpt, &SmtpSession::proceed_rcpt},
    {"DATA", bit(State::rcpt), &SmtpSession::check_no_args, &SmtpSession::proceed_data},
    // RFC 3207 §4 / RFC 4954 §4: not inside a mail transaction; both after HELO/EHLO.
    {"STARTTLS", bit(State::greeted), &SmtpSession::check_starttls, &SmtpSession::proceed_starttls},
    {"AUTH", bit(State::greeted), &SmtpSession::check_auth, &SmtpSession::proceed_auth},
    {"RSET", command_states, &SmtpSession::check_no_args, &SmtpSession::proceed_rset},
    {"NOOP", command_states, &SmtpSession::check_any, &SmtpSession::proceed_noop},
    {"QUIT", command_states, &SmtpSession::check_no_args, &SmtpSession::proceed_quit},
    {"VRFY", command_states, &SmtpSession::check_any, &SmtpSession::proceed_vrfy},
    {"HELP", command_states, &SmtpSession::check_any, &SmtpSession::proceed_help},
    // Known but not offered (not advertised in EHLO): a clear 502, not "unrecognized".
    {"EXPN", command_states, &SmtpSession::check_any, &SmtpSession::proceed_not_implemented},
    {"BDAT", command_states, &SmtpSession::check_any, &SmtpSession::proceed_not_implemented},
    {"ETRN", command_states, &SmtpSession::check_any, &SmtpSession::proceed_not_implemented},
    {"TURN", command_states, &SmtpSession::check_any, &SmtpSession::proceed_not_implemented},
  };
  for (const VerbEntry& e : table)
    if (e.verb == verb) return &e;
  return nullptr;
}

SmtpSession::SmtpSession(SessionConfig config, ClientInfo client, MailBackend& backend,
                         auth::Authenticator& authenticator)
    : config_(std::move(config)), client_(std::move(client)), backend_(backend), authenticator_(authenticator) {}

SmtpSession::~SmtpSession() = default;

void SmtpSession::set_verdict(ClientVerdict verdict) {
  if (!verdict.rdns_name.empty()) client_.rdns_name = verdict.rdns_name;
  verdict_ = std::move(verdict);
}

bool SmtpSession::in_transaction() const noexcept { return tx_ != nullptr; }

Output SmtpSession::greeting() {
  Output out;
  out.replies = "220 " + config_.hostname + " ESMTP mailhost\r\n";
  return out;
}

// --- replies -------------------------------------------------------------------------

void SmtpSession::reply(Output& out, std::string line) {
  // Every 4xx/5xx counts towards max_errors, except 452 4.5.3: a client sending more
  // than 100 recipients is expected to go on with the accepted ones (RFC 5321 §4.5.3.1.10).
  if ((line[0] == '4' || line[0] == '5') && line != too_many_recipients) ++errors_;
  out.replies += line;
  out.replies += "\r\n";
}

void SmtpSession::reply_lines(Output& out, const std::vector<std::string>& lines, int code) {
  if (code >= 400) ++errors_;
  for (std::size_t i = 0; i < lines.size(); ++i)
    out.replies += std::to_string(code) + (i + 1 < lines.size() ? "-" : " ") + lines[i] + "\r\n";
}

void SmtpSession::close_with(Output& out, std::string line) {
  if (tx_) finish_transaction(out, "aborted: " + line);
  out.replies += line + "\r\n";
  out.action = Action::close;
  state_ = State::closed;
}

// One log line per transaction: who, envelope, size, outcome, id.
void SmtpSession::finish_transaction(Output& out, const std::string& result, const std::string& details) {
  if (!tx_) return;
  std::string line = "client=" + client_.ip;
  if (!client_.rdns_name.empty()) line += "(" + client_.rdns_name + ")";
  line += " helo=" + quoted(helo_) + " tls=" + (config_.tls_active ? "yes" : "no");
  if (!auth_address_.empty()) line += " auth=" + auth_address_;
  line += " from=<" + tx_->sender + ">";
  for (const auto& r : tx_->recipients) line += " to=<" + r + ">";
  for (const auto& r : tx_->postmaster) line += " to=<" + r + ">";
  for (const auto& r : tx_->remote) line += " to=<" + r + ">";
  for (const auto& r : tx_->refused) line += " refused=" + r;
  if (tx_->data) line += " size=" + std::to_string(tx_->data->size());
  if (!tx_->id.empty()) line += " id=" + tx_->id;
  line += " result=" + quoted(result);
  if (!verdict_.detail.empty()) line += " rdns=" + quoted(verdict_.detail);
  if (!details.empty()) line += " " + details;
  out.log.push_back(std::move(line));
  if (tx_->sink) tx_->sink->abort();
  tx_.reset();
  if (state_ != State::closed) state_ = State::greeted;
}

std::string SmtpSession::out_of_sequence(std::string_view verb) const {
  if (state_ == State::connected) return "503 5.5.1 Error: send HELO/EHLO first";
  if (verb == "AUTH" || verb == "STARTTLS") return mail_in_progress;
  if (verb == "MAIL") return "503 5.5.1 Error: nested MAIL command";
  if (verb == "RCPT" || !tx_) return "503 5.5.1 Error: need MAIL command";
  if (!tx_->refused.empty()) return "554 5.5.1 Error: no valid recipients";
  return "503 5.5.1 Error: need RCPT command";
}

// --- input ---------------------------------------------------------------------------

Output SmtpSession::feed(std::string_view in, bool more_pending) {
  Output out;
  more_pending_ = more_pending;
  // Owed work first: nothing more is read until the network layer has done it.
  if (state_ == State::delivering || state_ == State::authenticating || state_ == State::starttls) {
    out.action = state_ == State::delivering       ? Action::deliver
                 : state_ == State::authenticating ? Action::authenticate
                                                   : Action::starttls;
    return out;
  }
  while (out.action == Action::none && state_ != State::closed && out.consumed < in.size()) {
    const std::string_view rest = in.substr(out.consumed);
    out.consumed += state_ == State::data   ? feed_data(rest, out)
                    : state_ == State::auth ? feed_auth(rest, out)
                                            : feed_command(rest, out);
    if (errors_ >= config_.max_errors && state_ != State::closed) close_with(out, "421 4.7.0 Too many errors");
  }
  if (state_ == State::closed) out.consumed = in.size();  // nothing after QUIT/421 is read
  return out;
}

std::size_t SmtpSession::feed_command(std::string_view in, Output& out) {
  const LineReader::Result r = lines_.next(in);
  switch (r.status) {
  case LineReader::Status::need_more:
    break;
  case LineReader::Status::too_long:
    reply(out, "500 5.5.2 Line too long");
    break;
  case LineReader::Status::bare_line_ending:
    reply(out, "500 5.5.2 Bare LF or CR in command line");
    break;
  case LineReader::Status::line:
    // RFC 2920 §3.1: DATA ends a pipelined group; the client must wait for its reply.
    // Bytes already behind it would be taken as message text by us but as commands by
    // a client expecting a refusal (or the reverse): nothing of them is run or stored.
    if (config_.sync_required && is_data_line(r.line) && (r.consumed < in.size() || more_pending_)) {
      sync_error(out, "bytes after DATA before its reply");
      break;
    }
    dispatch(r.line, out);
    break;
  }
  return r.consumed;
}

void SmtpSession::dispatch(std::string_view line, Output& out) {
  if (line.empty()) {
    reply(out, "500 5.5.2 Error: bad syntax");
    return;
  }
  const auto space = line.find(' ');
  const std::string verb = upper(line.substr(0, space));
  if (line.size() > max_command_text && verb != "AUTH") {
    reply(out, "500 5.5.2 Line too long");
    return;
  }
  const VerbEntry* entry = find_verb(verb);
  if (!entry) {
    reply(out, "502 5.5.2 Error: command not recognized");
    return;
  }
  Command c;
  c.verb = entry->verb;
  c.args = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  if (!(entry->allowed & bit(state_))) {
    reply(out, out_of_sequence(c.verb));
    return;
  }
  if (auto problem = (this->*entry->check)(c)) {
    reply(out, std::move(*problem));
    return;
  }
  (this->*entry->proceed)(c, out);
}

Output SmtpSession::shutdown() {
  Output out;
  if (state_ != State::closed)
    close_with(out, "421 4.3.2 " + config_.hostname + " Service shutting down, closing transmission channel");
  return out;
}

Output SmtpSession::timeout() {
  Output out;
  if (state_ != State::closed) close_with(out, "421 4.4.2 " + config_.hostname + " Error: timeout exceeded");
  return out;
}

Output SmtpSession::disconnected() {
  Output out;
  if (tx_) finish_transaction(out, state_ == State::data ? "aborted: lost connection in DATA"
                                                          : "aborted: lost connection");
  state_ = State::closed;
  return out;
}

Output SmtpSession::protocol_sync_error(std::string_view when) {
  Output out;
  if (state_ != State::closed) sync_error(out, when);
  return out;
}

void SmtpSession::sync_error(Output& out, std::string_view when) {
  out.log.push_back("client=" + client_.ip + " protocol synchronization error: " + std::string(when));
  close_with(out, sync_error_reply);  // aborts an open transaction: nothing is stored
}

// --- checks --------------------------------------------------------------------------

std::optional<std::string> SmtpSession::check_helo(Command& c) const {
  if (c.args.empty() || c.args.find_first_not_of(' ') == std::string_view::npos)
    return "501 5.5.4 Syntax: " + std::string(c.verb) + " hostname";
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_no_args(Command& c) const {
  if (c.args.find_first_not_of(' ') != std::string_view::npos) return "501 5.5.4 Syntax: " + std::string(c.verb);
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_any(Command&) const { return std::nullopt; }

// --- proceeds ------------------------------------------------------------------------

void SmtpSession::proceed_helo(const Command& c, Output& out) {
  if (tx_) finish_transaction(out, "reset by HELO");  // RFC 5321 §4.1.4
  helo_ = std::string(c.args);
  esmtp_ = false;
  state_ = State::greeted;
  reply(out, "250 " + config_.hostname);
}

void SmtpSession::proceed_ehlo(const Command& c, Output& out) {
  if (tx_) finish_transaction(out, "reset by EHLO");
  helo_ = std::string(c.args);
  esmtp_ = true;
  state_ = State::greeted;
  out.replies += "250-" + config_.hostname + "\r\n" + "250-PIPELINING\r\n" + "250-SIZE " +
                 std::to_string(config_.message_size_limit) + "\r\n" + "250-8BITMIME\r\n";
  if (config_.tls_available && !config_.tls_active) out.replies += "250-STARTTLS\r\n";
  if (auth_offered() && auth_address_.empty()) out.replies += "250-AUTH PLAIN LOGIN\r\n";
  out.replies += "250 ENHANCEDSTATUSCODES\r\n";
}

void SmtpSession::proceed_rset(const Command&, Output& out) {
  if (tx_) finish_transaction(out, "reset by RSET");
  reply(out, "250 2.0.0 Ok");
}

void SmtpSession::proceed_noop(const Command&, Output& out) { reply(out, "250 2.0.0 Ok"); }

void SmtpSession::proceed_quit(const Command&, Output& out) {
  if (tx_) finish_transaction(out, "aborted by QUIT");
  out.replies += "221 2.0.0 Bye\r\n";
  out.action = Action::close;
  state_ = State::closed;
}

void SmtpSession::proceed_vrfy(const Command&, Output& out) {
  // RFC 5321 §3.5.3: 252 — neither confirms nor denies, so accounts cannot be enumerated.
  reply(out, "252 2.5.2 Cannot VRFY user");
}

void SmtpSession::proceed_help(const Command&, Output& out) {
  reply(out, "214 2.0.0 Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

void SmtpSession::proceed_not_implemented(const Command&, Output& out) {
  reply(out, "502 5.5.1 Command not implemented");
}

} // namespace mh::smtp
