// spool_authenticator.h — the Authenticator mh-serve uses: logins checked against
// account.yaml in the spool, failures slowed and throttled per client (throttle.h).
// The login must be a full address ("user@example.jp", any case, IDN allowed); it is
// parsed by spool::Address, so no client text reaches a path unchecked. account.yaml and
// domain.yaml are read on every attempt, so `mh-user passwd/suspend` count at once.
// An unknown user, an unknown domain or a malformed login costs the same time as a wrong
// password (spool::dummy_verify) and gets the same answer. Suspension is revealed only
// to the right password. Thread-safe: one instance serves every session of the daemon.
// The password is never logged; AuthOutcome::detail says what happened, for the log.
#pragma once

#include "auth/authenticator.h"
#include "auth/throttle.h"

#include <spool/layout.h>

namespace mh::auth {

class SpoolAuthenticator : public Authenticator {
public:
  explicit SpoolAuthenticator(spool::Layout layout, ThrottleConfig throttle = {},
                              Throttle::Clock clock = &std::chrono::steady_clock::now);

  AuthOutcome authenticate(std::string_view client_ip, std::string_view login,
                           const spool::Secret& password) override;

  Throttle& throttle() noexcept { return throttle_; }

private:
  AuthOutcome failed(std::string_view client_ip, std::string detail);

  spool::Layout layout_;
  Throttle throttle_;
};

} // namespace mh::auth
