// authenticator.h — what SMTP AUTH and POP3 logins ask of the outside world: "is this
// address/password pair good, from this client?" as a small interface, so both session
// state machines stay free of the spool and of clocks (STYLE §9): tests give them a fake,
// mh-serve gives them SpoolAuthenticator (spool_authenticator.h), which also throttles
// failed logins per client address (SPEC §8: "failed logins are slowed and throttled").
#pragma once

#include <spool/password.h>

#include <chrono>
#include <string>
#include <string_view>

namespace mh::auth {

struct AuthOutcome {
  enum class Kind {
    ok,              // the account exists, is active and the password matches
    bad_credentials, // unknown user or wrong password: the same answer, the same time
    suspended,       // right password, account suspended (no login at all)
    throttled,       // too many failures from this client lately: refused unchecked
    temporary,       // the spool could not be read (I/O, malformed account.yaml)
  } kind = Kind::temporary;
  std::string address;             // canonical "local@domain" (lower case, punycode) when ok
  bool sending_suspended = false;  // ok, but `mh-user suspend --sending` is in force
  std::string sending_reason;      // its reason, for the SMTP reply
  // How long the network layer waits before it sends the reply (failures only): grows
  // with the client's recent failures, the same for unknown users and wrong passwords.
  std::chrono::milliseconds delay{0};
  std::string detail;              // for the log only; never the password
};

class Authenticator {
public:
  virtual ~Authenticator() = default;
  // Blocking (a password hash costs tens of ms): the network layer calls it on the
  // blocking pool. Thread-safe: one instance serves every session. `login` is what the
  // client sent (must be a full address); `client_ip` keys the throttle.
  virtual AuthOutcome authenticate(std::string_view client_ip, std::string_view login,
                                   const spool::Secret& password) = 0;
};

} // namespace mh::auth
