// spool_authenticator.cc — one login attempt: throttle, parse, read, verify, answer.
#include "auth/spool_authenticator.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/names.h>

#include <optional>

namespace mh::auth {

using Kind = AuthOutcome::Kind;

SpoolAuthenticator::SpoolAuthenticator(spool::Layout layout, ThrottleConfig throttle, Throttle::Clock clock)
    : layout_(std::move(layout)), throttle_(throttle, std::move(clock)) {}

AuthOutcome SpoolAuthenticator::failed(std::string_view client_ip, std::string detail) {
  AuthOutcome o;
  o.kind = Kind::bad_credentials;
  o.delay = throttle_.failure(client_ip);
  o.detail = std::move(detail);
  return o;
}

AuthOutcome SpoolAuthenticator::authenticate(std::string_view client_ip, std::string_view login,
                                             const spool::Secret& password) {
  if (throttle_.throttled(client_ip)) {
    AuthOutcome o;
    o.kind = Kind::throttled;
    o.delay = throttle_.config().max_delay;
    o.detail = "too many failed logins from this client";
    return o;
  }

  std::optional<spool::Address> address;
  try {
    address = spool::Address::parse(login);
  } catch (const spool::Error&) {
    spool::dummy_verify(password);
    return failed(client_ip, "login is not an address of this server's form");
  }

  spool::AccountConfig account;
  bool domain_suspended = false;
  try {
    // read_account checks the domain and account directories (no symlinks) first.
    account = spool::read_account(layout_, *address);
    domain_suspended = spool::read_domain(layout_, address->domain()).suspended;
  } catch (const spool::Error& e) {
    if (e.code() == spool::Errc::no_account || e.code() == spool::Errc::no_domain) {
      spool::dummy_verify(password);
      return failed(client_ip, "no such account: " + address->str());
    }
    // Unreadable or malformed account.yaml: not the client's fault, and not counted.
    AuthOutcome o;
    o.kind = Kind::temporary;
    o.detail = e.what();
    return o;
  }

  if (!spool::verify_password(password, account.password_hash))
    return failed(client_ip, "wrong password for " + address->str());

  AuthOutcome o;
  o.address = address->str();
  if (domain_suspended || account.suspended) {
    // Right password, so telling is safe; it is neither a failure nor a success for the
    // throttle (a suspended account cannot be used to reset it).
    o.kind = Kind::suspended;
    o.detail = domain_suspended ? "domain " + address->domain().str() + " is suspended"
                                : "account " + o.address + " is suspended";
    return o;
  }
  throttle_.success(client_ip);
  o.kind = Kind::ok;
  o.sending_suspended = account.sending_suspended;
  o.sending_reason = account.sending_reason;
  o.detail = "authenticated as " + o.address;
  return o;
}

} // namespace mh::auth
