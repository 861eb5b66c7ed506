// session.cc — the POP3 state machine, its verb table and every reply text.
// All reply texts live in this file and are listed in session.h (STYLE §7: error → reply
// mapped in one place).
#include "pop3/session.h"
#include "text.h"

#include <algorithm>
#include <charconv>
#include <climits>

namespace mh::pop3 {

struct Pop3Session::Command {
  std::string_view verb;               // upper case
  std::string_view rest;               // everything after "VERB " (PASS keeps spaces)
  std::vector<std::string_view> args;  // `rest` split at runs of spaces
  std::size_t index = 0;               // message number - 1 (after check_message)
  bool has_message = false;
  long lines = -1;                     // TOP
};

namespace {

using State = Pop3Session::State;

constexpr unsigned bit(State s) { return static_cast<unsigned>(s); }
constexpr unsigned authorization = bit(State::authorization);
constexpr unsigned transaction = bit(State::transaction);

const std::string_view plaintext_refused =
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";
const std::string_view internal_error =
    "-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.";
// SPEC §8: a symlink planted in the mailbox; retrying will not help until an admin acts.
const std::string_view mailbox_unavailable =
    "-ERR [SYS/PERM] Mailbox is unavailable. Refer to server log for more information.";

using text::quoted;
using text::upper;

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    const std::size_t end = std::min(s.find(' ', i), s.size());
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

// A decimal number of at most 10 digits (no sign, no spaces); nullopt otherwise.
std::optional<std::uint64_t> number(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

} // namespace

struct Pop3Session::VerbEntry {
  std::string_view verb;
  unsigned allowed;             // bits of State
  std::size_t min_args, max_args;
  std::string_view usage;       // for "-ERR Syntax: <usage>"
  std::optional<std::string> (Pop3Session::*check)(Command&) const;
  void (Pop3Session::*proceed)(const Command&, Output&);
};

// The verb table (as OpenSMTPD's `commands[]`): allowed states, argument count, check,
// proceed. RFC 1939 allows NOOP in TRANSACTION only; it is also accepted before login,
// where it harms nothing and helps keep-alive scripts.
const Pop3Session::VerbEntry* Pop3Session::find_verb(std::string_view verb) {
  using S = Pop3Session;
  static const VerbEntry table[] = {
    {"USER", authorization, 1, 1, "USER <name>", &S::check_none, &S::proceed_user},
    {"PASS", authorization, 0, SIZE_MAX, "PASS <password>", &S::check_none, &S::proceed_pass},
    {"AUTH", authorization, 0, 2, "AUTH <mechanism> [<initial response>]", &S::check_none, &S::proceed_auth},
    {"STLS", authorization, 0, 0, "STLS", &S::check_none, &S::proceed_stls},
    {"CAPA", authorization | transaction, 0, 0, "CAPA", &S::check_none, &S::proceed_capa},
    {"QUIT", authorization | transaction, 0, 0, "QUIT", &S::check_none, &S::proceed_quit},
    {"NOOP", authorization | transaction, 0, 0, "NOOP", &S::check_none, &S::proceed_noop},
    {"STAT", transaction, 0, 0, "STAT", &S::check_none, &S::proceed_stat},
    {"LIST", transaction, 0, 1, "LIST [<message>]", &S::check_optional_message, &S::proceed_list},
    {"UIDL", transaction, 0, 1, "UIDL [<message>]", &S::check_optional_message, &S::proceed_uidl},
    {"RETR", transaction, 1, 1, "RETR <message>", &S::check_message, &S::proceed_retr},
    {"TOP", transaction, 2, 2, "TOP <message> <lines>", &S::check_top, &S::proceed_top},
    {"DELE", transaction, 1, 1, "DELE <message>", &S::check_message, &S::proceed_dele},
    {"RSET", transaction, 0, 0, "RSET", &S::check_none, &S::proceed_rset},
  };
  for (const VerbEntry& e : table)
    if (e.verb == verb) return &e;
  return nullptr;
}

Pop3Session::Pop3Session(SessionConfig config, std::string client_ip, auth::Authenticator& authenticator,
                         MaildropProvider& maildrops)
    : config_(std::move(config)), client_ip_(std::move(client_ip)), authenticator_(authenticator),
      maildrops_(maildrops) {}

Pop3Session::~Pop3Session() = default;

Output Pop3Session::greeting() {
  Output out;
  ok(out, "+OK mailhost POP3 ready.");
  return out;
}

// --- replies -------------------------------------------------------------------------

void Pop3Session::ok(Output& out, std::string_view line) {
  out.replies += line;
  out.replies += "\r\n";
}

void Pop3Session::err(Output& out, std::string_view line, bool client_fault) {
  if (client_fault) ++errors_;
  out.replies += line;
  out.replies += "\r\n";
}

void Pop3Session::close_with(Output& out, std::string_view line) {
  out.replies += line;
  out.replies += "\r\n";
  out.action = Action::close;
  state_ = State::closed;
  maildrop_.reset();  // unlocks the mailbox
}

void Pop3Session::check_error_limit(Output& out) {
  if (errors_ >= config_.max_errors && state_ != State::closed) {
    if (maildrop_) logout(out, "too many bad commands");
    close_with(out, "-ERR Too many bad commands.");
  }
}

// One log line when a TRANSACTION ends, however it ends.
void Pop3Session::logout(Output& out, std::string_view result) {
  std::uint64_t deleted = 0, deleted_bytes = 0;
  if (maildrop_) {
    const auto& msgs = maildrop_->messages();
    for (std::size_t i = 0; i < msgs.size(); ++i)
      if (deleted_[i]) ++deleted, deleted_bytes += msgs[i].size;
  }
  out.log.push_back("logout client=" + client_ip_ + " user=" + address_ + " retrieved=" + std::to_string(retrieved_) +
                    " retrieved_bytes=" + std::to_string(retrieved_bytes_) + " deleted=" + std::to_string(deleted) +
                    " deleted_bytes=" + std::to_string(deleted_bytes) + " result=" + quoted(result));
}

// --- input ---------------------------------------------------------------------------

Output Pop3Session::feed(std::string_view in) {
  Output out;
  while (out.action == Action::none && (state_ == State::authorization || state_ == State::transaction) &&
         out.consumed < in.size()) {
    out.consumed += feed_line(in.substr(out.consumed), out);
    check_error_limit(out);
  }
  if (state_ == State::closed) out.consumed = in.size();  // nothing after QUIT is read
  return out;
}

// Framing as in smtp/line_reader.cc, but a lone LF also ends a line (session.h).
std::size_t Pop3Session::feed_line(std::string_view in, Output& out) {
  const std::size_t lf = in.find('\n');
  const std::string_view chunk = in.substr(0, lf == std::string_view::npos ? in.size() : lf);
  if (!overlong_) {
    if (line_.size() + chunk.size() + 1 > max_pop3_line) {  // +1: the LF
      overlong_ = true;
      line_.clear();
      line_.shrink_to_fit();
    } else {
      line_.append(chunk);
    }
  }
  if (lf == std::string_view::npos) return in.size();
  std::string line = std::move(line_);
  line_.clear();
  if (overlong_) {
    overlong_ = false;
    sasl_.reset();  // a lost SASL response ends the AUTH exchange
    err(out, "-ERR Line too long.");
    return lf + 1;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (sasl_) {
    auth::SaslExchange exchange = std::move(*sasl_);
    sasl_.reset();
    // RFC 5034 §4: "*" cancels the exchange.
    if (line == "*") {
      err(out, "-ERR Authentication aborted by client.");
    } else {
      const auth::SaslExchange::Step step = exchange.respond(line);
      sasl_next(std::move(exchange), step, out);
    }
  } else {
    dispatch(line, out);
  }
  // The line may hold a password (PASS, AUTH PLAIN): wipe it before it is freed.
  std::fill(line.begin(), line.end(), '\0');
  return lf + 1;
}

void Pop3Session::dispatch(std::string_view line, Output& out) {
  const std::size_t space = line.find(' ');
  const std::string_view word = line.substr(0, space);
  // RFC 1939 §3: keywords are 3 or 4 characters; anything longer is no verb of ours.
  const VerbEntry* entry = word.size() > 4 ? nullptr : find_verb(upper(word));
  if (!entry) {
    err(out, "-ERR Unknown command.");
    return;
  }
  if (!(entry->allowed & bit(state_))) {
    err(out, state_ == State::transaction ? "-ERR Already logged in." : "-ERR Not logged in.");
    return;
  }
  Command c;
  c.verb = entry->verb;
  c.rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  if (c.verb != "PASS") {
    c.args = split(c.rest);
    if (c.args.size() < entry->min_args || c.args.size() > entry->max_args) {
      err(out, "-ERR Syntax: " + std::string(entry->usage));
      return;
    }
  }
  if (auto problem = (this->*entry->check)(c)) {
    err(out, *problem);
    return;
  }
  (this->*entry->proceed)(c, out);
}

// --- checks --------------------------------------------------------------------------

std::optional<std::string> Pop3Session::check_none(Command&) const { return std::nullopt; }

// RFC 1939 §5: a message number refers to a message not marked deleted, 1..count.
std::optional<std::string> Pop3Session::check_message(Command& c) const {
  const auto n = number(c.args.at(0));
  if (!n) return "-ERR Invalid message number.";
  const auto& msgs = maildrop_->messages();
  if (*n == 0 || *n > msgs.size() || deleted_[*n - 1]) return "-ERR There's no message " + std::to_string(*n) + ".";
  c.index = static_cast<std::size_t>(*n - 1);
  c.has_message = true;
  return std::nullopt;
}

std::optional<std::string> Pop3Session::check_optional_message(Command& c) const {
  return c.args.empty() ? std::nullopt : check_message(c);
}

std::optional<std::string> Pop3Session::check_top(Command& c) const {
  if (auto problem = check_message(c)) return problem;
  const auto lines = number(c.args.at(1));
  if (!lines) return "-ERR Invalid number of lines.";
  c.lines = static_cast<long>(std::min<std::uint64_t>(*lines, LONG_MAX));
  return std::nullopt;
}

// --- AUTHORIZATION -------------------------------------------------------------------

void Pop3Session::proceed_user(const Command& c, Output& out) {
  if (!plaintext_ok()) {
    err(out, plaintext_refused);
    return;
  }
  user_ = std::string(c.args[0]);
  ok(out, "+OK");
}

void Pop3Session::proceed_pass(const Command& c, Output& out) {
  if (!plaintext_ok()) {
    err(out, plaintext_refused);
    return;
  }
  if (!user_) {
    err(out, "-ERR No username given.");
    return;
  }
  // RFC 1939 §7: the password is the rest of the line, spaces included.
  std::string login = std::move(*user_);
  user_.reset();
  begin_login(std::move(login), spool::Secret(std::string(c.rest)), "USER", out);
}

void Pop3Session::proceed_auth(const Command& c, Output& out) {
  if (c.args.empty()) {  // list the mechanisms (a de-facto extension, as Dovecot does)
    out.replies += plaintext_ok() ? "+OK\r\nPLAIN\r\n.\r\n" : "+OK\r\n.\r\n";
    return;
  }
  // LOGIN is not offered: RFC 5034 names none, and POP3 clients that lack PLAIN use USER.
  if (auth::SaslExchange::mechanism(c.args[0]) != auth::SaslExchange::Mechanism::plain) {
    err(out, "-ERR Unsupported authentication mechanism.");
    return;
  }
  if (!plaintext_ok()) {
    err(out, plaintext_refused);
    return;
  }
  user_.reset();
  auth::SaslExchange exchange(auth::SaslExchange::Mechanism::plain);
  // With an initial response ("=" is an empty one, RFC 5034 §4) the exchange may end at once.
  const auth::SaslExchange::Step step =
      exchange.start(c.args.size() == 2 ? std::optional<std::string_view>(c.args[1]) : std::nullopt);
  sasl_next(std::move(exchange), step, out);
}

// Where one step of the exchange leads: another "+ " line, the login, or -ERR.
void Pop3Session::sasl_next(auth::SaslExchange exchange, const auth::SaslExchange::Step& step, Output& out) {
  switch (step.kind) {
  case auth::SaslExchange::Step::Kind::challenge:
    sasl_ = std::move(exchange);
    ok(out, "+ " + step.challenge);  // PLAIN: an empty challenge, "+ "
    return;
  case auth::SaslExchange::Step::Kind::done: {
    auth::Credentials credentials = exchange.take();
    begin_login(std::move(credentials.login), std::move(credentials.password), "PLAIN", out);
    return;
  }
  case auth::SaslExchange::Step::Kind::bad_base64:
    err(out, "-ERR Invalid base64 data.");  // RFC 5034 §4: the AUTH command fails
    return;
  case auth::SaslExchange::Step::Kind::malformed:
    // No NULs, an empty login or password, or an authzid other than the login.
    out.log.push_back("login failed client=" + client_ip_ + " method=PLAIN result=malformed");
    err(out, "-ERR [AUTH] Authentication failed.");
    return;
  }
}

void Pop3Session::begin_login(std::string login, spool::Secret password, std::string method, Output& out) {
  pending_login_ = std::move(login);
  pending_password_ = std::move(password);
  pending_method_ = std::move(method);
  state_ = State::authenticating;
  out.action = Action::authenticate;
}

Output Pop3Session::authenticate() {
  Output out;
  if (state_ != State::authenticating) return out;
  const spool::Secret password = std::move(pending_password_);
  const std::string login = std::move(pending_login_);
  state_ = State::authorization;
  auth::AuthOutcome outcome;
  try {
    outcome = authenticator_.authenticate(client_ip_, login, password);
  } catch (const std::exception& e) {
    outcome.kind = auth::AuthOutcome::Kind::temporary;
    outcome.detail = e.what();
  }
  out.delay = outcome.delay;
  // A failed login's name is not logged: users type passwords into it (as the SMTP
  // side does); a good one is logged as the verified address below.
  const std::string who = "client=" + client_ip_ + " method=" + pending_method_;
  const auto failed = [&](std::string_view result) {
    out.log.push_back("login failed " + who + " result=" + std::string(result) +
                      (outcome.detail.empty() ? "" : " detail=" + quoted(outcome.detail)));
  };
  using Kind = auth::AuthOutcome::Kind;
  switch (outcome.kind) {
  case Kind::ok:
    break;
  case Kind::bad_credentials:
    failed("bad_credentials");
    err(out, "-ERR [AUTH] Authentication failed.");
    check_error_limit(out);
    return out;
  case Kind::suspended:
    failed("suspended");
    err(out, "-ERR [AUTH] Account is suspended.");
    check_error_limit(out);
    return out;
  case Kind::throttled:
    failed("throttled");
    close_with(out, "-ERR [SYS/TEMP] Too many failed logins, try again later.");
    return out;
  case Kind::temporary:
    failed("temporary");
    err(out, "-ERR [SYS/TEMP] Temporary authentication failure, try again later.", false);
    return out;
  }

  try {
    maildrop_ = maildrops_.open(outcome.address);
  } catch (const MaildropBusy&) {
    out.log.push_back("login refused client=" + client_ip_ + " user=" + outcome.address + " result=in_use");
    err(out, "-ERR [IN-USE] Mailbox is locked by another POP3 session.", false);
    return out;
  } catch (const MaildropUnavailable& e) {
    out.log.push_back("login refused client=" + client_ip_ + " user=" + outcome.address +
                      " result=unavailable detail=" + quoted(e.what()));
    err(out, mailbox_unavailable, false);
    return out;
  } catch (const std::exception& e) {
    out.log.push_back("login refused client=" + client_ip_ + " user=" + outcome.address +
                      " result=error detail=" + quoted(e.what()));
    err(out, internal_error, false);
    return out;
  }
  address_ = outcome.address;
  const auto& msgs = maildrop_->messages();
  deleted_.assign(msgs.size(), false);
  std::uint64_t total = 0;
  for (const auto& m : msgs) total += m.size;
  out.log.push_back("login client=" + client_ip_ + " user=" + address_ + " method=" + pending_method_ +
                    " messages=" + std::to_string(msgs.size()) + " bytes=" + std::to_string(total));
  state_ = State::transaction;
  ok(out, "+OK Logged in.");
  return out;
}

void Pop3Session::proceed_stls(const Command&, Output& out) {
  if (config_.tls_active) {
    err(out, "-ERR TLS is already active.");
    return;
  }
  if (!config_.tls_available) {
    err(out, "-ERR TLS support isn't enabled.");
    return;
  }
  ok(out, "+OK Begin TLS negotiation now.");
  state_ = State::starttls;
  out.action = Action::starttls;
}

void Pop3Session::tls_started() {
  if (state_ != State::starttls) return;
  config_.tls_active = true;
  state_ = State::authorization;
  user_.reset();
  line_.clear();
  overlong_ = false;
}

// RFC 2449 §5; STLS, USER and SASL only where they can be used (before login).
void Pop3Session::proceed_capa(const Command&, Output& out) {
  out.replies += "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
  if (state_ == State::authorization) {
    if (config_.tls_available && !config_.tls_active) out.replies += "STLS\r\n";
    if (plaintext_ok()) out.replies += "USER\r\nSASL PLAIN\r\n";
  }
  out.replies += ".\r\n";
}

void Pop3Session::proceed_noop(const Command&, Output& out) { ok(out, "+OK"); }

// --- TRANSACTION ---------------------------------------------------------------------

void Pop3Session::proceed_stat(const Command&, Output& out) {
  std::uint64_t count = 0, bytes = 0;
  const auto& msgs = maildrop_->messages();
  for (std::size_t i = 0; i < msgs.size(); ++i)
    if (!deleted_[i]) ++count, bytes += msgs[i].size;
  ok(out, "+OK " + std::to_string(count) + " " + std::to_string(bytes));
}

void Pop3Session::proceed_list(const Command& c, Output& out) {
  const auto& msgs = maildrop_->messages();
  if (c.has_message) {
    ok(out, "+OK " + std::to_string(c.index + 1) + " " + std::to_string(msgs[c.index].size));
    return;
  }
  std::string body;
  std::size_t count = 0;
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    if (deleted_[i]) continue;
    ++count;
    body += std::to_string(i + 1) + " " + std::to_string(msgs[i].size) + "\r\n";
  }
  out.replies += "+OK " + std::to_string(count) + " messages:\r\n" + body + ".\r\n";
}

void Pop3Session::proceed_uidl(const Command& c, Output& out) {
  const auto& msgs = maildrop_->messages();
  if (c.has_message) {
    ok(out, "+OK " + std::to_string(c.index + 1) + " " + msgs[c.index].uidl);
    return;
  }
  out.replies += "+OK\r\n";
  for (std::size_t i = 0; i < msgs.size(); ++i)
    if (!deleted_[i]) out.replies += std::to_string(i + 1) + " " + msgs[i].uidl + "\r\n";
  out.replies += ".\r\n";
}

void Pop3Session::open_for_transfer(std::size_t index, long top_lines, Output& out) {
  std::optional<int> fd;
  try {
    fd = maildrop_->open(index);
  } catch (const std::exception& e) {
    out.log.push_back("error client=" + client_ip_ + " user=" + address_ + " message=" + maildrop_->messages()[index].uidl +
                      " detail=" + quoted(e.what()));
    const bool planted = dynamic_cast<const MaildropUnavailable*>(&e) != nullptr;
    err(out, planted ? mailbox_unavailable : internal_error, false);
    return;
  }
  if (!fd) {
    err(out, "-ERR Message " + std::to_string(index + 1) + " is no longer available.", false);
    return;
  }
  const std::uint64_t size = maildrop_->messages()[index].size;
  if (top_lines < 0) {
    ++retrieved_;
    retrieved_bytes_ += size;
    ok(out, "+OK " + std::to_string(size) + " octets");
  } else {
    ok(out, "+OK");
  }
  out.action = Action::transfer;
  out.transfer = Transfer{*fd, top_lines};
}

void Pop3Session::proceed_retr(const Command& c, Output& out) { open_for_transfer(c.index, -1, out); }

void Pop3Session::proceed_top(const Command& c, Output& out) { open_for_transfer(c.index, c.lines, out); }

void Pop3Session::proceed_dele(const Command& c, Output& out) {
  deleted_[c.index] = true;
  ok(out, "+OK Marked to be deleted.");
}

void Pop3Session::proceed_rset(const Command&, Output& out) {
  std::fill(deleted_.begin(), deleted_.end(), false);
  ok(out, "+OK");
}

// RFC 1939 §6: QUIT in TRANSACTION enters UPDATE — only now are marked messages removed.
// UPDATE runs here, in feed(): a handful of unlink()s and maildirsize appends.
void Pop3Session::proceed_quit(const Command&, Output& out) {
  if (state_ != State::transaction) {
    close_with(out, "+OK Logging out.");
    return;
  }
  if (std::find(deleted_.begin(), deleted_.end(), true) == deleted_.end()) {
    logout(out, "quit");
    close_with(out, "+OK Logging out.");
    return;
  }
  state_ = State::updating;
  out.action = Action::update;
}

Output Pop3Session::update() {
  Output out;
  if (state_ != State::updating) return out;
  std::vector<std::size_t> chosen;
  for (std::size_t i = 0; i < deleted_.size(); ++i)
    if (deleted_[i]) chosen.push_back(i);
  std::size_t failed = 0;
  try {
    failed = maildrop_->remove_all(chosen);
  } catch (const std::exception&) {
    failed = chosen.size();
  }
  logout(out, failed ? "quit, " + std::to_string(failed) + " removals failed" : "quit");
  if (failed) close_with(out, "-ERR [SYS/TEMP] Some deleted messages could not be removed.");
  else close_with(out, "+OK Logging out, messages deleted.");
  return out;
}

// --- ends without QUIT ---------------------------------------------------------------

Output Pop3Session::timeout() {
  Output out;
  if (state_ == State::closed) return out;
  if (maildrop_) logout(out, "timeout");
  close_with(out, "-ERR Disconnected for inactivity.");
  return out;
}

Output Pop3Session::shutdown() {
  Output out;
  if (state_ == State::closed) return out;
  if (maildrop_) logout(out, "shutdown");
  close_with(out, "-ERR [SYS/TEMP] " + config_.hostname + " shutting down.");
  return out;
}

Output Pop3Session::disconnected() {
  Output out;
  if (state_ == State::closed) return out;
  if (maildrop_) logout(out, "disconnected");
  state_ = State::closed;
  maildrop_.reset();
  return out;
}

} // namespace mh::pop3
