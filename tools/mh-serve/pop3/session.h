// session.h — one POP3 session (RFC 1939, RFC 2449 CAPA + response codes, RFC 5034 SASL
// PLAIN, RFC 2595 STLS) as a state machine without any I/O of its own (STYLE §9), the
// twin of smtp/session.h. The network layer feeds it bytes and sends Output::replies; an
// Output::action asks it to run the (blocking) login on the pool, to start TLS, to stream
// a message, or to close. Logins go through auth::Authenticator, mail through
// MaildropProvider (maildrop.h), so tests replace both.
//
// Trusted: nothing the client sends. Every line is bounded (max_pop3_line); numbers are
// parsed strictly; the client's login name is logged only quoted and cut.
//
// Framing (a decision, see RFC 1939 §3): a command ends at LF; one CR before it is
// dropped. Bare-LF lines are accepted because real POP3 clients and scripts send them and,
// unlike SMTP DATA, a POP3 client never sends message content, so there is nothing to
// smuggle. A line longer than max_pop3_line is answered "-ERR Line too long." and
// skipped up to its LF; memory stays bounded.
//
// Every reply text (modelled on Dovecot's, so clients and admins meet familiar words):
//   greeting             +OK mailhost POP3 ready.
//   CAPA                 +OK, then CAPA TOP UIDL RESP-CODES AUTH-RESP-CODE PIPELINING,
//                        STLS (before login, tls_available && !tls_active), USER and
//                        SASL PLAIN (before login, when a plaintext login is allowed), "."
//   USER name            +OK
//   PASS / AUTH ok       +OK Logged in.
//   AUTH                 +OK, then PLAIN (when allowed), "."
//   AUTH PLAIN           "+ " (continuation; "*" cancels: -ERR Authentication aborted by client.)
//                        SASL decoding is auth/sasl.h's, shared with SMTP AUTH.
//   STLS                 +OK Begin TLS negotiation now.
//   STAT                 +OK <count> <octets>
//   LIST                 +OK <count> messages:, then "<n> <octets>" lines, "."
//   LIST n               +OK <n> <octets>
//   UIDL                 +OK, then "<n> <uidl>" lines, "."      UIDL n: +OK <n> <uidl>
//   RETR n               +OK <octets> octets, then the message (Action::transfer)
//   TOP n m              +OK, then header + m body lines (Action::transfer)
//   DELE n               +OK Marked to be deleted.
//   RSET / NOOP          +OK
//   QUIT                 +OK Logging out.   (TRANSACTION with deletions:
//                        +OK Logging out, messages deleted.)
// Errors:
//   -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.
//   -ERR [AUTH] Authentication failed.              wrong password / unknown user, or a
//                                                   PLAIN message that is no login (sasl.h)
//   -ERR [AUTH] Account is suspended.
//   -ERR [SYS/TEMP] Too many failed logins, try again later.   (then close)
//   -ERR [SYS/TEMP] Temporary authentication failure, try again later.
//   -ERR [IN-USE] Mailbox is locked by another POP3 session.
//   -ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.
//   -ERR [SYS/TEMP] Some deleted messages could not be removed.   (QUIT; still closes)
//   -ERR [SYS/TEMP] <hostname> shutting down.          (shutdown(); then close)
//   -ERR Disconnected for inactivity.                  (timeout(); then close)
//   -ERR Too many bad commands.                        (after max_errors; then close)
//   -ERR There's no message <n>.       unknown or deleted message number
//   -ERR Message <n> is no longer available.           purged since login
//   -ERR Invalid message number.       -ERR Invalid number of lines.
//   -ERR No username given.            -ERR Not logged in.       -ERR Already logged in.
//   -ERR Unknown command.              -ERR Line too long.       -ERR Syntax: <usage>
//   -ERR Unsupported authentication mechanism.
//   -ERR Invalid base64 data.
//   -ERR TLS is already active.        -ERR TLS support isn't enabled.
// Every -ERR the client caused counts towards max_errors; server-side failures
// ([SYS/TEMP], [IN-USE], "no longer available") do not.
//
// Sizes (STAT, LIST, RETR's "octets") are MaildropMessage::size: the message with CRLF
// line ends before dot-stuffing (RFC 1939 §11); the CRLF DotStuffer adds to a message
// without a final line end is not counted. Deletions are marks until QUIT; UPDATE
// (RFC 1939 §6) runs inside feed() — one unlink and one maildirsize append per marked
// message. The caller's idle timeout must be at least 10 minutes (RFC 1939 §3).
#pragma once

#include "auth/authenticator.h"
#include "auth/sasl.h"
#include "pop3/maildrop.h"

#include <spool/password.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::pop3 {

// RFC 2449 §4 bounds commands at 255 octets, but PASS may carry a 511-octet password
// (spool::max_password_length) and RFC 5034 §4 lets SASL responses exceed 255: the
// longest valid AUTH PLAIN line (authzid + authcid of 254, password of 511, base64) is
// under 1,400 octets. 2,048 leaves slack and still bounds memory.
inline constexpr std::size_t max_pop3_line = 2048;

struct SessionConfig {
  std::string hostname = "localhost";  // in the shutdown reply
  bool tls_active = false;             // POP3S, or after STLS
  bool tls_available = false;          // STLS can be offered
  bool plaintext_allowed = false;      // client in auth.allow_plaintext
  std::uint32_t max_errors = 10;       // then "-ERR Too many bad commands." and close
};

enum class Action {
  none,
  authenticate,  // call authenticate() on the blocking pool, wait Output::delay, send its replies
  starttls,      // send the replies, discard buffered input, handshake, then tls_started()
  transfer,      // send the replies, stream Output::transfer through DotStuffer, then feed on
  update,        // QUIT with deletions: call update() on the blocking pool, send its replies, close
  close,         // send the replies, then close the connection
};

// A message to stream after the replies: the fd's bytes through DotStuffer(top_lines),
// then its finish() (".\r\n"). The caller closes fd.
struct Transfer {
  int fd = -1;
  long top_lines = -1;  // -1: the whole message (RETR); m: TOP n m
};

struct Output {
  std::string replies;                  // CRLF-terminated lines to send, in order
  std::size_t consumed = 0;             // input bytes used; the caller keeps the rest
  Action action = Action::none;
  Transfer transfer;                    // with Action::transfer
  std::chrono::milliseconds delay{0};   // wait this long before sending (failed logins)
  std::vector<std::string> log;         // one line per login, failed login and logout
};

class Pop3Session {
public:
  Pop3Session(SessionConfig config, std::string client_ip, auth::Authenticator& authenticator,
              MaildropProvider& maildrops);
  ~Pop3Session();
  Pop3Session(const Pop3Session&) = delete;
  Pop3Session& operator=(const Pop3Session&) = delete;

  Output greeting();
  // Processes as much of `in` as possible; stops early after an output with an action.
  // While a login or the TLS handshake is pending it consumes nothing.
  Output feed(std::string_view in);
  // BLOCKING (password hash, directory listing): run by the net layer on the pool after
  // Action::authenticate. Checks the password and, on success, opens and locks the
  // maildrop. Never throws.
  Output authenticate();
  // After Action::starttls: the handshake succeeded and the bytes buffered after the
  // STLS line were discarded (RFC 2595 §4, no command injection). The session forgets
  // any USER name and is back in AUTHORIZATION, now with tls_active.
  void tls_started();
  // BLOCKING (unlinks, maildirsize, a lock that mh-quota recalc may hold): run by the net
  // layer on the pool after Action::update. Removes the messages marked by DELE (RFC 1939
  // UPDATE state), says goodbye and closes. Never throws.
  Output update();
  // No complete command within the timeout: "-ERR Disconnected for inactivity." and
  // close. Like every end but QUIT, nothing is deleted (RFC 1939 §3).
  Output timeout();
  // The server stops: "-ERR [SYS/TEMP] <hostname> shutting down." and close; nothing deleted.
  Output shutdown();
  // The client went away: nothing deleted, the maildrop unlocked, a logout line logged.
  Output disconnected();

  bool closed() const noexcept { return state_ == State::closed; }

  enum class State : unsigned {  // bits, so a verb can allow a set of states
    authorization = 1u << 0,
    authenticating = 1u << 1,    // waiting for authenticate()
    starttls = 1u << 2,          // waiting for tls_started()
    transaction = 1u << 3,
    updating = 1u << 4,          // waiting for update()
    closed = 1u << 5,
  };

private:
  struct Command;
  struct VerbEntry;
  static const VerbEntry* find_verb(std::string_view verb);

  std::size_t feed_line(std::string_view in, Output& out);
  void dispatch(std::string_view line, Output& out);
  void sasl_next(auth::SaslExchange exchange, const auth::SaslExchange::Step& step, Output& out);
  void begin_login(std::string login, spool::Secret password, std::string method, Output& out);
  bool plaintext_ok() const noexcept { return config_.tls_active || config_.plaintext_allowed; }

  void ok(Output& out, std::string_view line);
  void err(Output& out, std::string_view line, bool client_fault = true);
  void close_with(Output& out, std::string_view line);
  void logout(Output& out, std::string_view result);
  void check_error_limit(Output& out);

  // check_*: arguments; proceed_*: the effect.
  std::optional<std::string> check_message(Command& c) const;
  std::optional<std::string> check_optional_message(Command& c) const;
  std::optional<std::string> check_top(Command& c) const;
  std::optional<std::string> check_none(Command& c) const;
  void proceed_user(const Command& c, Output& out);
  void proceed_pass(const Command& c, Output& out);
  void proceed_auth(const Command& c, Output& out);
  void proceed_capa(const Command& c, Output& out);
  void proceed_stls(const Command& c, Output& out);
  void proceed_stat(const Command& c, Output& out);
  void proceed_list(const Command& c, Output& out);
  void proceed_uidl(const Command& c, Output& out);
  void proceed_retr(const Command& c, Output& out);
  void proceed_top(const Command& c, Output& out);
  void proceed_dele(const Command& c, Output& out);
  void proceed_rset(const Command& c, Output& out);
  void proceed_noop(const Command& c, Output& out);
  void proceed_quit(const Command& c, Output& out);
  void open_for_transfer(std::size_t index, long top_lines, Output& out);

  SessionConfig config_;
  std::string client_ip_;
  auth::Authenticator& authenticator_;
  MaildropProvider& maildrops_;
  State state_ = State::authorization;
  unsigned errors_ = 0;

  // Line framing (see the header comment): the current line, or "skipping an over-long one".
  std::string line_;
  bool overlong_ = false;

  // AUTHORIZATION
  std::optional<std::string> user_;     // from USER, until PASS
  std::optional<auth::SaslExchange> sasl_;  // "+ " sent: the next line is the PLAIN response
  std::string pending_login_;           // for authenticate()
  spool::Secret pending_password_;      // wiped once authenticate() is done
  std::string pending_method_;          // "USER" or "PLAIN", for the log

  // TRANSACTION
  std::string address_;
  std::unique_ptr<Maildrop> maildrop_;
  std::vector<bool> deleted_;
  std::uint64_t retrieved_ = 0, retrieved_bytes_ = 0;
};

} // namespace mh::pop3
