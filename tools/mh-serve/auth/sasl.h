// sasl.h — the SASL pieces SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034) share: strict
// base64 (RFC 4648 §4), the PLAIN message (RFC 4616) and the LOGIN exchange
// (draft-murchison-sasl-login), as one small state machine per exchange. No I/O and no
// protocol framing: the session wraps a challenge in "334 " (SMTP) or "+ " (POP3).
// Client input is not trusted: anything that is not canonical base64 (bad characters,
// missing or misplaced padding, non-zero pad bits) is refused, and decoded bytes that may
// be a password go straight into a spool::Secret. A response longer than max_response
// is refused before it is decoded.
#pragma once

#include <spool/password.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mh::auth {

// Longest client response line accepted (RFC 4954 §4: servers must take 12288 octets).
inline constexpr std::size_t max_response = 12288;

// RFC 4648 §4 with padding. nullopt for anything else (no whitespace, no URL alphabet).
std::optional<std::string> decode_base64(std::string_view text);
std::string encode_base64(std::string_view bytes);

struct Credentials {
  std::string login;        // authcid as sent (the authenticator parses it)
  spool::Secret password;
};

// One SASL exchange on the server side. Usage: start() with the optional initial
// response, then respond() to every client line until the step is no longer `challenge`;
// on `done`, take() the credentials. A client line of "*" (cancel) is the session's
// business: RFC 4954 and RFC 5034 give it different replies.
class SaslExchange {
public:
  enum class Mechanism { plain, login };
  // "PLAIN" / "LOGIN" in any case; nullopt for anything else.
  static std::optional<Mechanism> mechanism(std::string_view name);

  struct Step {
    enum class Kind {
      challenge,   // send `challenge` (base64, may be empty) and wait for the next line
      done,        // credentials complete: take() them
      bad_base64,  // a response was not valid base64 (RFC 4954: 501 5.5.2)
      malformed,   // decoded but unusable: no NULs, empty login/password, authzid ≠ authcid
    } kind = Kind::malformed;
    std::string challenge;
  };

  explicit SaslExchange(Mechanism mechanism) : mechanism_(mechanism) {}
  // `initial` is the initial response of the AUTH command, if any ("=" = empty, RFC 4954 §4).
  Step start(std::optional<std::string_view> initial);
  Step respond(std::string_view line);
  Credentials take() { return std::move(credentials_); }

private:
  Step plain(std::string_view response);
  Step login_step(std::string_view response);

  Mechanism mechanism_;
  bool have_login_ = false;   // LOGIN: the user name has been received
  Credentials credentials_;
};

// RFC 4616 message "authzid NUL authcid NUL passwd" (already decoded). nullopt when it is
// not three fields, authcid or passwd is empty, or authzid is neither empty nor authcid
// (we do not let one user act for another).
std::optional<Credentials> parse_plain(std::string_view message);

// The LOGIN mechanism's prompts, base64 of "Username:" and "Password:".
inline constexpr std::string_view login_username_prompt = "VXNlcm5hbWU6";
inline constexpr std::string_view login_password_prompt = "UGFzc3dvcmQ6";

} // namespace mh::auth
