// session.cc — the SMTP state machine, its verb table and every reply text.
// All reply texts live in this file (STYLE §7: error → reply mapped in one place),
// including the mapping of login outcomes (auth::AuthOutcome) to RFC 4954 replies.
#include "smtp/session.h"

#include "smtp/path.h"
#include "smtp/trace.h"
#include "text.h"

#include <algorithm>
#include <charconv>

namespace mh::smtp {

struct SmtpSession::Command {
  std::string_view verb;   // upper case
  std::string_view args;   // after the first space
  PathCommand path;        // MAIL / RCPT
  std::uint64_t size = 0;  // MAIL SIZE=
};

struct SmtpSession::Transaction {
  std::string sender;
  std::uint64_t declared_size = 0;
  std::vector<std::string> recipients;  // local, canonical, each once
  std::vector<std::string> remote;      // relayed (authenticated only), each once
  std::vector<std::string> postmaster;  // RFC 5321 §4.5.1 destinations (Envelope::postmaster)
  std::vector<std::string> refused;     // "<addr>(550 5.1.1)" for the log
  std::unique_ptr<MessageSink> sink;
  std::unique_ptr<DataReader> data;
  std::string id;
  std::string write_error;              // set when appending to the sink failed
  bool storage_full = false;            // ... because the disk is full (StorageFull)
  std::string head;                     // the message's first bytes, for the From: policy
  bool keep_head = false;               // authenticated, and the policy is not `any`
};

namespace {

using State = SmtpSession::State;

constexpr unsigned bit(State s) { return static_cast<unsigned>(s); }
constexpr unsigned command_states = bit(State::connected) | bit(State::greeted) | bit(State::mail) | bit(State::rcpt);

const std::string too_many_recipients = "452 4.5.3 Too many recipients";
const std::string mail_in_progress = "503 5.5.1 Error: MAIL transaction in progress";
// SPEC §8 "Disk full": ENOSPC/EDQUOT while storing (the backend throws StorageFull).
const std::string storage_full_reply = "452 4.3.1 Insufficient system storage";

bool is_storage_full(const std::exception& e) { return dynamic_cast<const StorageFull*>(&e) != nullptr; }
// The temporary refusal of a message we could not store: the disk's own reply when full.
std::string delivery_failed_reply(bool storage_full) {
  return storage_full ? storage_full_reply : "451 4.3.0 Error: local delivery failed, try again later";
}
const std::string sync_error_reply = "554 5.5.0 Error: SMTP protocol synchronization";

// The From: policy reads at most this much of a message: a header block longer than
// this without a From: counts as having none (the bound keeps memory flat).
constexpr std::size_t max_head_capture = 64 * 1024;

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

// Administrator text (a suspension reason, maybe Japanese) inside a reply line: replies
// are ASCII (RFC 5321 §2.4), and a line break would end the reply early.
std::string reply_text(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

// The refusal for an account whose sending is suspended, at MAIL and — when the hourly
// limit (SPEC §8 limits.sending_per_hour) suspends it — after DATA: one text for both.
std::string sending_suspended_reply(const std::string& account, std::string_view reason) {
  return "550 5.7.1 Sending suspended for " + account + (reason.empty() ? std::string() : ": " + reply_text(reason)) +
         " (ask your administrator: mh-user resume --sending)";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

// The domain of an address as the client wrote it, lower case ("" for <>).
std::string domain_of(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : lower(address.substr(at + 1));
}

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

std::size_t SmtpSession::feed_data(std::string_view in, Output& out) {
  const std::size_t used = tx_->data->feed(in);
  if (tx_->data->finished()) end_of_data(out);
  return used;
}

void SmtpSession::end_of_data(Output& out) {
  const DataReader& d = *tx_->data;
  std::string problem;
  if (d.bare_line_ending()) {
    problem = "554 5.6.0 Bare LF or CR in message; see RFC 5321 section 2.3.8";
  } else if (d.too_big()) {
    problem = "552 5.3.4 Message size exceeds fixed limit";
  } else if (!tx_->write_error.empty()) {
    problem = delivery_failed_reply(tx_->storage_full);
  } else if (!from_header_allowed()) {
    problem = "550 5.7.1 From: header does not match the authenticated sender";
  }
  if (!problem.empty()) {
    reply(out, problem);
    finish_transaction(out, problem, tx_->write_error.empty() ? "" : "error=" + quoted(tx_->write_error));
    return;
  }
  state_ = State::delivering;
  out.action = Action::deliver;
}

// --- delivery ------------------------------------------------------------------------

// The hourly limit of an authenticated account (SPEC §8), charged with every recipient
// of the message, local and remote, once the whole message is in and before any of it
// is stored. Past the limit the message is refused as a whole — the sink discards it,
// nothing reaches a Maildir or the queue — with the same 550 as MAIL gives a suspended
// account. Unauthenticated mail is never charged. A charge is not given back when the
// delivery then fails with 451: the retry counts again (over-count, never under).
// Returns false when the transaction is over.
bool SmtpSession::charge_sending(Output& out) {
  SendingCharge charge;
  try {
    charge = backend_.charge_sending(auth_address_, tx_->recipients.size() + tx_->remote.size());
  } catch (const std::exception& e) {
    charge.kind = SendingCharge::Kind::temporary;
    charge.detail = e.what();
  }
  std::string line;
  switch (charge.kind) {
  case SendingCharge::Kind::allowed:
    return true;
  case SendingCharge::Kind::suspended:
    line = sending_suspended_reply(auth_address_, charge.reason);
    break;
  case SendingCharge::Kind::temporary:
    line = "451 4.3.0 Temporary lookup failure, try again later";
    break;
  }
  reply(out, line);
  finish_transaction(out, line, charge.detail.empty() ? "" : "rate=" + quoted(charge.detail));  // aborts the sink
  return false;
}

// The content check (SPEC §8): before the sending charge and before anything is stored.
// Refused content costs the sender nothing; a scanner failure is a 451 like any other
// temporary failure, so unscanned mail is never delivered. Returns false when the
// transaction is over; `virus_log` gets what a cleaned message lost.
bool SmtpSession::check_content(Output& out, std::string& virus_log) {
  ContentVerdict verdict;
  try {
    verdict = tx_->sink->check_content();
  } catch (const std::exception& e) {
    const std::string line = delivery_failed_reply(is_storage_full(e));
    reply(out, line);
    finish_transaction(out, line, "error=" + quoted(e.what()));
    return false;
  }
  std::string line;
  switch (verdict.kind) {
  case ContentVerdict::Kind::clean:
    return true;
  case ContentVerdict::Kind::cleaned:
    virus_log = "virus=" + quoted(verdict.detail);
    return true;
  case ContentVerdict::Kind::rejected:
    line = "550 5.7.1 Error: message content rejected";
    break;
  case ContentVerdict::Kind::temporary:
    line = "451 4.3.0 Error: virus scanner unavailable, try again later";
    break;
  }
  reply(out, line);
  finish_transaction(out, line, "content=" + quoted(verdict.detail));
  return false;
}

Output SmtpSession::deliver() {
  Output out;
  if (state_ != State::delivering || !tx_) return out;
  std::string virus_log;
  if (!check_content(out, virus_log)) return out;
  if (!auth_address_.empty() && !charge_sending(out)) return out;
  std::vector<DeliveryResult> results;
  try {
    results = tx_->sink->deliver();
  } catch (const std::exception& e) {
    const std::string line = delivery_failed_reply(is_storage_full(e));
    reply(out, line);
    finish_transaction(out, line, "error=" + quoted(e.what()));
    return out;
  }
  std::vector<std::string> failed_lines;
  bool temporary = false, over_quota = false;
  std::size_t delivered = 0;
  std::string stored, queued, failed, filtered;  // for the log: where each copy went, why others did not
  for (const auto& r : results) {
    if (!r.filter.empty()) filtered += (filtered.empty() ? "filters=" : ",") + r.recipient + ":" + quoted(r.filter);
    switch (r.status) {
    case DeliveryResult::Status::delivered:
      ++delivered;
      if (r.stored) stored += (stored.empty() ? "stored=" : ",") + r.recipient + ":" + r.uidl;
      continue;
    case DeliveryResult::Status::queued:
      ++delivered;
      queued += (queued.empty() ? "queued=" : ",") + r.recipient + ":" + r.uidl;
      continue;
    case DeliveryResult::Status::over_quota:
      over_quota = true;
      failed_lines.push_back("<" + r.recipient + ">: Disk quota exceeded");
      break;
    case DeliveryResult::Status::no_account:
      failed_lines.push_back("<" + r.recipient + ">: User unknown");
      break;
    case DeliveryResult::Status::temporary:
      temporary = true;
      break;
    }
    failed += (failed.empty() ? "failed=" : ",") + r.recipient + ":" + quoted(r.detail);
  }
  const std::string ok_text = "Ok: queued as " + tx_->id;
  std::string result;
  if (temporary) {
    // A local Maildir could not take it: the only safe answer is "try again". The
    // client then resends to everyone, so local recipients already served may get the
    // message twice — a duplicate is better than a silent loss. The backend has taken
    // the queued copy back, so remote recipients do not (backend.h).
    const bool full = std::any_of(results.begin(), results.end(), [](const DeliveryResult& r) { return r.storage_full; });
    result = delivery_failed_reply(full);
    reply(out, result);
  } else if (failed_lines.empty()) {
    result = "250 2.0.0 " + ok_text;
    reply(out, result);
  } else if (delivered > 0) {
    // Delivered to some: 250 for the transaction, one line per recipient left out
    // (SMTP has no per-recipient reply after DATA; the sender is told here).
    std::vector<std::string> lines;
    for (const auto& f : failed_lines) lines.push_back("2.0.0 " + f + ", not delivered");
    lines.push_back("2.0.0 " + ok_text);
    reply_lines(out, lines, 250);
    result = "250 2.0.0 " + ok_text + " (" + std::to_string(failed_lines.size()) + " not delivered)";
  } else {
    const int code = over_quota ? 552 : 550;
    std::vector<std::string> lines;
    for (const auto& r : results)
      lines.push_back((r.status == DeliveryResult::Status::over_quota ? "5.2.2 " : "5.1.1 ") +
                      std::string("<") + r.recipient + ">: " +
                      (r.status == DeliveryResult::Status::over_quota ? "Disk quota exceeded" : "User unknown"));
    reply_lines(out, lines, code);
    result = std::to_string(code) + " " + lines.back();
  }
  std::string details;
  for (const std::string* part : {&stored, &queued, &failed, &filtered, &virus_log})
    if (!part->empty()) details += (details.empty() ? "" : " ") + *part;
  finish_transaction(out, result, details);
  if (errors_ >= config_.max_errors) close_with(out, "421 4.7.0 Too many errors");
  return out;
}

// --- AUTH and STARTTLS ---------------------------------------------------------------

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

// SPEC §8 submission.from_header: only authenticated mail is held to it.
bool SmtpSession::from_header_allowed() const {
  if (!tx_->keep_head) return true;
  return from_header_ok(config_.from_header, tx_->head, auth_address_);
}

// --- checks --------------------------------------------------------------------------

std::optional<std::string> SmtpSession::check_helo(Command& c) const {
  if (c.args.empty() || c.args.find_first_not_of(' ') == std::string_view::npos)
    return "501 5.5.4 Syntax: " + std::string(c.verb) + " hostname";
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_mail(Command& c) const {
  // RFC 4954 §6 / RFC 6409 §4.3: a submission server wants to know who sends.
  if (config_.submission && auth_address_.empty()) return "530 5.7.0 Authentication required";
  c.path = parse_path_command(c.args, "FROM:", /*allow_null_path=*/true);
  if (c.path.problem == PathCommand::Problem::syntax) return "501 5.5.4 Syntax: MAIL FROM:<address>";
  if (c.path.problem == PathCommand::Problem::bad_address) return "501 5.1.7 Bad sender address syntax";
  for (const auto& [key, value] : c.path.params) {
    if (key == "SIZE") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), c.size);
      if (ec == std::errc::result_out_of_range) return "552 5.3.4 Message size exceeds fixed limit";
      if (ec != std::errc() || value.empty() || end != value.data() + value.size())
        return "501 5.5.4 Bad SIZE syntax";
      // RFC 1870 §6: refuse at MAIL when the declared size is already too big.
      if (c.size > config_.message_size_limit) return "552 5.3.4 Message size exceeds fixed limit";
    } else if (key == "BODY") {
      const std::string body = upper(value);
      if (body != "7BIT" && body != "8BITMIME") return "501 5.5.4 Unsupported BODY type";
    } else {
      return "555 5.5.4 Unsupported option: " + sanitize_for_header(key, 40);
    }
  }
  // An authenticated user sends as the account itself (SPEC §8; RFC 6409 §6.1 lets the
  // server enforce this), in any letter case. The null sender is for bounces, which
  // users do not send.
  if (!auth_address_.empty() &&
      (c.path.address.empty() || (config_.sender_must_be_account && lower(c.path.address) != lower(auth_address_))))
    return "553 5.7.1 <" + c.path.address + ">: Sender address rejected: not owned by user " +
           sanitize_for_header(auth_address_);  // whatever an authenticator returned: never a CRLF (fuzzing)
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_rcpt(Command& c) const {
  c.path = parse_path_command(c.args, "TO:", /*allow_null_path=*/false, /*allow_bare_postmaster=*/true);
  if (c.path.problem == PathCommand::Problem::syntax) return "501 5.5.4 Syntax: RCPT TO:<address>";
  if (c.path.problem == PathCommand::Problem::bad_address) return "501 5.1.3 Bad recipient address syntax";
  if (!c.path.params.empty()) return "555 5.5.4 Unsupported option: " + sanitize_for_header(c.path.params[0].first, 40);
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_no_args(Command& c) const {
  if (c.args.find_first_not_of(' ') != std::string_view::npos) return "501 5.5.4 Syntax: " + std::string(c.verb);
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_any(Command&) const { return std::nullopt; }

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

void SmtpSession::proceed_mail(const Command& c, Output& out) {
  if (!auth_address_.empty()) {
    // Asked at every MAIL, not at AUTH: a suspension counts for the next message of a
    // session that is already logged in (SPEC §2: changes count within a second).
    SenderState st;
    try {
      st = backend_.sender_state(auth_address_);
    } catch (const std::exception& e) {
      st.kind = SenderState::Kind::temporary;
      st.detail = e.what();
    }
    switch (st.kind) {
    case SenderState::Kind::active:
      break;
    case SenderState::Kind::sending_suspended:
      reply(out, sending_suspended_reply(auth_address_, st.reason));
      return;
    case SenderState::Kind::disabled:
      reply(out, "550 5.7.1 Account suspended: " + auth_address_);
      return;
    case SenderState::Kind::temporary:
      reply(out, "451 4.3.0 Temporary lookup failure, try again later");
      return;
    }
  }
  tx_ = std::make_unique<Transaction>();
  tx_->sender = c.path.address;
  tx_->declared_size = c.size;
  state_ = State::mail;
  reply(out, "250 2.1.0 Ok");
}

void SmtpSession::proceed_rcpt(const Command& c, Output& out) {
  const std::string shown = "<" + c.path.address + ">";
  if (tx_->recipients.size() + tx_->remote.size() + tx_->postmaster.size() >= config_.max_recipients) {
    reply(out, too_many_recipients);
    return;
  }
  RecipientCheck check;
  try {
    check = backend_.check_recipient(c.path.address, tx_->declared_size);
  } catch (const std::exception& e) {
    check.kind = RecipientCheck::Kind::temporary;
    check.detail = e.what();
  }
  std::string refusal;
  using Kind = RecipientCheck::Kind;
  const bool authenticated = !auth_address_.empty();
  if (check.kind == Kind::not_local && authenticated) {
    // Relaying for an authenticated user: through the outbound queue. The domain is
    // case-insensitive, the local part is the remote server's business (RFC 5321 §2.4).
    const auto at = c.path.address.rfind('@');
    const std::string remote = c.path.address.substr(0, at + 1) + domain_of(c.path.address);
    if (std::find(tx_->remote.begin(), tx_->remote.end(), remote) == tx_->remote.end())
      tx_->remote.push_back(remote);
    state_ = State::rcpt;
    reply(out, "250 2.1.5 Ok");
    return;
  }
  if (check.kind == Kind::not_local) {
    refusal = "550 5.7.1 Relaying denied";
  } else if (!authenticated && verdict_.kind != ClientVerdict::Kind::accepted && !check.postmaster) {
    refusal = verdict_.reply;  // postmaster is reachable even from a host failing FCrDNS
  } else if (check.kind == Kind::srs_invalid) {
    refusal = "550 5.1.1 " + shown + ": " + check.detail;
  } else if (check.kind == Kind::srs_return || check.kind == Kind::list || check.kind == Kind::redirect) {
    // A bounce to one of our forwarding addresses: sent on to the original sender
    // through the queue, as a relay we vouch for (the SRS hash proves we made it). A
    // list's mail takes the same way: the queue runner hands it to the list processor.
    if (std::find(tx_->remote.begin(), tx_->remote.end(), check.canonical) == tx_->remote.end())
      tx_->remote.push_back(check.canonical);
    state_ = State::rcpt;
    reply(out, "250 2.1.5 Ok");
    return;
  } else if (check.kind == Kind::unknown_user) {
    refusal = "550 5.1.1 " + shown + ": User unknown";
  } else if (check.kind == Kind::disabled) {
    refusal = "550 5.2.1 " + shown + ": Mailbox disabled";
  } else if (check.kind == Kind::over_quota) {
    refusal = "552 5.2.2 " + shown + ": Disk quota exceeded";
  } else if (check.kind == Kind::temporary) {
    refusal = "451 4.3.0 " + shown + ": Temporary lookup failure, try again later";
  }
  if (!refusal.empty()) {
    tx_->refused.push_back(shown + "(" + refusal.substr(0, refusal.find(' ', 4)) + ")");
    reply(out, std::move(refusal));
    return;
  }
  // A recipient named twice (perhaps in different spellings) gets one copy.
  auto& into = check.postmaster ? tx_->postmaster : tx_->recipients;
  if (std::find(into.begin(), into.end(), check.canonical) == into.end()) into.push_back(check.canonical);
  state_ = State::rcpt;
  reply(out, "250 2.1.5 Ok");
}

void SmtpSession::proceed_data(const Command&, Output& out) {
  try {
    Envelope envelope;
    envelope.sender = tx_->sender;
    envelope.local = tx_->recipients;
    envelope.remote = tx_->remote;
    envelope.postmaster = tx_->postmaster;
    envelope.auth = auth_address_;
    envelope.client_ip = client_.ip;
    envelope.helo = helo_;
    tx_->sink = backend_.begin_message(envelope);
    tx_->id = tx_->sink->queue_id();
    if (tx_->id.empty()) tx_->id = backend_.new_message_id();
    TraceInfo t;
    t.helo = helo_;
    t.esmtp = esmtp_;
    t.tls = config_.tls_active;
    t.authenticated = !auth_address_.empty();
    t.relayed = !tx_->remote.empty();
    t.client_ip = client_.ip;
    t.client_rdns = client_.rdns_name;
    t.hostname = config_.hostname;
    t.id = tx_->id;
    t.sender = tx_->sender;
    t.recipients = tx_->recipients;
    t.recipients.insert(t.recipients.end(), tx_->remote.begin(), tx_->remote.end());
    t.recipients.insert(t.recipients.end(), tx_->postmaster.begin(), tx_->postmaster.end());
    t.time = backend_.now();
    tx_->sink->append_trace(trace_headers(t));
  } catch (const std::exception& e) {
    if (tx_->sink) tx_->sink->abort();
    tx_->sink.reset();
    const std::string line =
        is_storage_full(e) ? storage_full_reply : "451 4.3.0 Error: cannot store the message now, try again later";
    reply(out, line);
    finish_transaction(out, line, "error=" + quoted(e.what()));
    return;
  }
  Transaction* tx = tx_.get();
  tx_->keep_head = !auth_address_.empty() && config_.from_header != FromPolicy::any;
  tx_->data = std::make_unique<DataReader>(config_.message_size_limit, [tx](std::string_view bytes) {
    if (tx->keep_head && tx->head.size() < max_head_capture)
      tx->head.append(bytes.substr(0, max_head_capture - tx->head.size()));
    if (!tx->write_error.empty()) return;
    try {
      tx->sink->append(bytes);
    } catch (const std::exception& e) {
      tx->write_error = e.what();
      tx->storage_full = is_storage_full(e);
      tx->sink->abort();
    }
  });
  state_ = State::data;
  reply(out, "354 End data with <CR><LF>.<CR><LF>");
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

void SmtpSession::proceed_not_implemented(const Command&, Output& out) {
  reply(out, "502 5.5.1 Command not implemented");
}

} // namespace mh::smtp
