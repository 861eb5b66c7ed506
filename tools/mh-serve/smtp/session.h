// session.h — one SMTP session (RFC 5321 + PIPELINING, SIZE, 8BITMIME,
// ENHANCEDSTATUSCODES, STARTTLS per RFC 3207, AUTH PLAIN/LOGIN per RFC 4954) as a state
// machine without any I/O of its own (STYLE §9). The network layer feeds it the bytes
// it read and writes back Output::replies; an Output::action tells it to run blocking
// work (delivery, a password check) on its pool, to start TLS, or to close. Commands are
// looked up in a verb table {verb, allowed states, check, proceed}: check parses and
// validates, proceed acts — as in OpenSMTPD's smtp_session.c.
// Every input is bounded: command lines (512 octets; AUTH lines 12288, RFC 4954 §4),
// recipients, message size, errors. Spool access goes through MailBackend (backend.h),
// logins through auth::Authenticator, so tests can replace both.
// Unauthenticated clients may only send to local recipients (and get the FCrDNS verdict
// at RCPT); authenticated ones may relay (the outbound queue) but only from their own
// domain, and each of their messages is charged to the account's hourly sending limit
// once DATA is complete. A submission listener requires AUTH before MAIL.
#pragma once

#include "auth/authenticator.h"
#include "auth/sasl.h"
#include "smtp/backend.h"
#include "smtp/data_reader.h"
#include "smtp/from_header.h"
#include "smtp/line_reader.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::smtp {

struct SessionConfig {
  std::string hostname = "localhost";
  std::uint64_t message_size_limit = 31457280;  // limits.message_size
  std::uint32_t max_recipients = 100;           // limits.recipients
  std::uint32_t max_errors = 10;                // then "421 4.7.0 Too many errors"
  bool submission = false;              // this listener requires AUTH before MAIL (RFC 6409)
  bool tls_available = false;           // a certificate is loaded: offer STARTTLS
  bool tls_active = false;              // TLS from the first byte (SMTPS), or after STARTTLS
  bool plaintext_auth_allowed = false;  // the client is in auth.allow_plaintext
  bool sender_must_be_account = true;   // MAIL FROM of an authenticated client: the account
  // submission.from_header for authenticated mail; mailhost.yaml's default is own-domain
  // (serve_config.cc), this one is `any` so that scripts need no From: line.
  FromPolicy from_header = FromPolicy::any;
  // RFC 2920 §3.1 synchronization (SPEC §8): a DATA line followed by bytes the client
  // sent before seeing its reply ends the session with 554 5.5.0. The network listeners
  // turn it on (net/connection.cc); a session fed whole scripts (--stdio, tests) is exempt.
  bool sync_required = false;
};

enum class Action {
  none,
  deliver,       // call deliver() (blocking: fsync), send its replies, then feed the rest
  close,         // send the replies, then close the connection
  starttls,      // send the replies (220), DISCARD every byte after `consumed` (RFC 3207
                 // §5, CVE-2011-0411), do the TLS handshake, call tls_started(), go on
  authenticate,  // call authenticate() (blocking: a password hash), wait its Output::delay,
                 // send its replies, then feed the rest
};

struct Output {
  std::string replies;            // CRLF-terminated reply lines to send, in order
  std::size_t consumed = 0;       // input bytes used; the caller keeps the rest for later
  Action action = Action::none;
  std::vector<std::string> log;   // one line per finished transaction or login attempt
  // Wait this long before sending `replies` (a failed login: the throttle's delay, the
  // same for unknown users and wrong passwords).
  std::chrono::milliseconds delay{0};
};

class SmtpSession {
public:
  SmtpSession(SessionConfig config, ClientInfo client, MailBackend& backend, auth::Authenticator& authenticator);
  ~SmtpSession();
  SmtpSession(const SmtpSession&) = delete;
  SmtpSession& operator=(const SmtpSession&) = delete;

  Output greeting();
  // Processes as much of `in` as possible; stops early after an action. `more_pending`:
  // the client has sent more than `in` already (unread bytes at the socket), which makes
  // a DATA line at the end of `in` a synchronization error too (config.sync_required).
  Output feed(std::string_view in, bool more_pending = false);
  // Runs the delivery requested by Action::deliver and produces the reply to DATA.
  Output deliver();
  // Runs the password check requested by Action::authenticate: the reply to AUTH.
  Output authenticate();
  // The TLS handshake requested by Action::starttls succeeded: the session starts over
  // (RFC 3207 §4.2: HELO/EHLO, AUTH and everything else learnt before are forgotten).
  void tls_started();
  // The server stops: 421 and close (an unfinished transaction is logged and dropped).
  Output shutdown();
  // No complete command/data block within the timeout: 421 and close.
  Output timeout();
  // The client went away: logs an unfinished transaction.
  Output disconnected();
  // The client talked out of turn (before the greeting, or after DATA before its reply):
  // "554 5.5.0 Error: SMTP protocol synchronization" and close. `when` goes to the log.
  Output protocol_sync_error(std::string_view when);

  // The FCrDNS hook (backend.h); may be set at any time before RCPT. A verdict with a
  // name makes it the client's verified name (Received header, log).
  void set_verdict(ClientVerdict verdict);

  bool in_transaction() const noexcept;       // MAIL accepted, transaction not finished
  bool in_data() const noexcept { return state_ == State::data; }
  bool closed() const noexcept { return state_ == State::closed; }
  bool tls_active() const noexcept { return config_.tls_active; }
  // The authenticated account ("user@domain"), empty before a successful AUTH.
  const std::string& authenticated_as() const noexcept { return auth_address_; }

  enum class State : unsigned {   // bits, so a verb can allow a set of states
    connected = 1u << 0,   // before HELO/EHLO
    greeted = 1u << 1,     // no transaction
    mail = 1u << 2,        // MAIL accepted, no recipient yet
    rcpt = 1u << 3,        // at least one recipient
    data = 1u << 4,        // reading the message
    delivering = 1u << 5,  // waiting for deliver()
    closed = 1u << 6,
    auth = 1u << 7,            // in an AUTH exchange: lines are SASL responses
    authenticating = 1u << 8,  // waiting for authenticate()
    starttls = 1u << 9,        // waiting for the TLS handshake (tls_started())
  };

private:
  struct Command;
  struct Transaction;
  struct VerbEntry;
  // The verb table (session.cc): {verb, allowed states, check, proceed}.
  static const VerbEntry* find_verb(std::string_view verb);

  std::size_t feed_command(std::string_view in, Output& out);
  void sync_error(Output& out, std::string_view when);
  bool from_header_allowed() const;
  std::size_t feed_data(std::string_view in, Output& out);
  std::size_t feed_auth(std::string_view in, Output& out);
  void sasl_step(const auth::SaslExchange::Step& step, Output& out);
  void end_auth(Output& out, std::string line);
  bool auth_offered() const noexcept;
  void dispatch(std::string_view line, Output& out);
  void end_of_data(Output& out);
  bool charge_sending(Output& out);
  bool check_content(Output& out, std::string& virus_log);
  void reply(Output& out, std::string line);
  void reply_lines(Output& out, const std::vector<std::string>& lines, int code);
  void close_with(Output& out, std::string line);
  void finish_transaction(Output& out, const std::string& result, const std::string& details = "");
  std::string out_of_sequence(std::string_view verb) const;

  // check_*: syntax and arguments; proceed_*: the effect.
  std::optional<std::string> check_helo(Command& c) const;
  std::optional<std::string> check_mail(Command& c) const;
  std::optional<std::string> check_rcpt(Command& c) const;
  std::optional<std::string> check_no_args(Command& c) const;
  std::optional<std::string> check_any(Command& c) const;
  std::optional<std::string> check_starttls(Command& c) const;
  std::optional<std::string> check_auth(Command& c) const;
  void proceed_helo(const Command& c, Output& out);
  void proceed_ehlo(const Command& c, Output& out);
  void proceed_mail(const Command& c, Output& out);
  void proceed_rcpt(const Command& c, Output& out);
  void proceed_data(const Command& c, Output& out);
  void proceed_rset(const Command& c, Output& out);
  void proceed_noop(const Command& c, Output& out);
  void proceed_quit(const Command& c, Output& out);
  void proceed_vrfy(const Command& c, Output& out);
  void proceed_help(const Command& c, Output& out);
  void proceed_starttls(const Command& c, Output& out);
  void proceed_auth(const Command& c, Output& out);
  void proceed_not_implemented(const Command& c, Output& out);

  SessionConfig config_;
  ClientInfo client_;
  MailBackend& backend_;
  auth::Authenticator& authenticator_;
  ClientVerdict verdict_;
  State state_ = State::connected;
  std::string helo_;
  bool esmtp_ = false;
  unsigned errors_ = 0;
  LineReader lines_{auth::max_response};
  bool more_pending_ = false;                      // during feed(): see feed()
  std::unique_ptr<Transaction> tx_;
  std::string auth_address_;                       // non-empty: authenticated
  std::unique_ptr<auth::SaslExchange> sasl_;       // State::auth
  std::optional<auth::Credentials> credentials_;   // State::authenticating
};

} // namespace mh::smtp
