// spool_authenticator_test.cc — SpoolAuthenticator against a real temp spool whose
// accounts are made by libspool's provisioning code: case and IDN in logins, the same
// answer for unknown users and wrong passwords, suspension shown only to the right
// password, changes seen at once, throttling, and an unreadable account.yaml.
#include "auth/spool_authenticator.h"

#include "store_fixture.h"

#include <spool/accounts.h>
#include <spool/password.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>

using mh::auth::AuthOutcome;
using mh::auth::SpoolAuthenticator;
using mh::auth::ThrottleConfig;
using Kind = AuthOutcome::Kind;
using namespace std::chrono_literals;

namespace {

struct Spool {
  mhtest::StoreSpool store;
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  std::unique_ptr<SpoolAuthenticator> auth;

  explicit Spool(ThrottleConfig c = {}) {
    add("alice@example.org", "right horse battery");
    auth = std::make_unique<SpoolAuthenticator>(store.layout(), c, [this] { return now; });
  }

  spool::Address add(const std::string& address, const std::string& password) {
    spool::Address a = spool::Address::parse(address);
    store.domain(a.domain().str());
    spool::AccountConfig c;
    c.password_hash = spool::hash_password(spool::Secret(password));
    c.created = "2024-11-28T03:40:00Z";
    spool::add_account(store.layout(), a, c, false);
    return a;
  }

  AuthOutcome login(const std::string& user, const std::string& password, const std::string& ip = "192.0.2.7") {
    return auth->authenticate(ip, user, spool::Secret(password));
  }
};

} // namespace

TEST_CASE("the right password, in any case of the address") {
  Spool s;
  AuthOutcome o = s.login("alice@example.org", "right horse battery");
  CHECK(o.kind == Kind::ok);
  CHECK(o.address == "alice@example.org");
  CHECK_FALSE(o.sending_suspended);
  CHECK(o.delay == 0ms);
  o = s.login("ALICE@Example.ORG", "right horse battery");
  CHECK(o.kind == Kind::ok);
  CHECK(o.address == "alice@example.org");
}

TEST_CASE("an IDN domain logs in by its Unicode or punycode name") {
  Spool s;
  s.add("taro@例え.jp", "pw1");
  AuthOutcome o = s.login("taro@例え.jp", "pw1");
  CHECK(o.kind == Kind::ok);
  CHECK(o.address == "taro@xn--r8jz45g.jp");
  CHECK(s.login("taro@xn--r8jz45g.jp", "pw1").kind == Kind::ok);
}

TEST_CASE("unknown users, unknown domains and malformed logins look like a wrong password") {
  Spool s;
  for (const char* login : {"bob@example.org", "alice@example.net", "alice", "", "alice@example.org@x",
                            "../alice@example.org", "alice@../../etc"}) {
    INFO(login);
    AuthOutcome o = s.login(login, "right horse battery", std::string("198.51.100.") + std::to_string(std::strlen(login)));
    CHECK(o.kind == Kind::bad_credentials);
    CHECK(o.address.empty());
  }
  CHECK(s.login("alice@example.org", "wrong").kind == Kind::bad_credentials);
}

TEST_CASE("an unknown user costs about as much time as a wrong password") {
  Spool s;
  auto time_of = [&](const std::string& login, const std::string& ip) {
    const auto start = std::chrono::steady_clock::now();
    s.login(login, "wrong", ip);
    return std::chrono::steady_clock::now() - start;
  };
  // Different clients, so the throttle's bookkeeping is the same for both.
  auto wrong = time_of("alice@example.org", "192.0.2.1") + time_of("alice@example.org", "192.0.2.2");
  auto unknown = time_of("nobody@example.org", "192.0.2.3") + time_of("nobody@example.net", "192.0.2.4");
  // Loose bounds: both are one yescrypt hash; a missing dummy hash would be ~1000× faster.
  CHECK(unknown * 4 > wrong);
  CHECK(wrong * 4 > unknown);
}

TEST_CASE("suspension is told only to the right password") {
  Spool s;
  spool::update_account(s.store.layout(), spool::Address::parse("alice@example.org"),
                        [](spool::AccountConfig& c) { c.suspended = true; });
  CHECK(s.login("alice@example.org", "wrong").kind == Kind::bad_credentials);
  AuthOutcome o = s.login("alice@example.org", "right horse battery");
  CHECK(o.kind == Kind::suspended);
  CHECK(o.detail == "account alice@example.org is suspended");

  spool::Address b = s.add("bob@example.com", "pw2");
  spool::update_domain(s.store.layout(), b.domain(), [](spool::DomainConfig& c) { c.suspended = true; });
  CHECK(s.login("bob@example.com", "nope").kind == Kind::bad_credentials);
  CHECK(s.login("bob@example.com", "pw2").kind == Kind::suspended);
}

TEST_CASE("sending suspension is passed on; password changes count at once") {
  Spool s;
  const spool::Address a = spool::Address::parse("alice@example.org");
  spool::update_account(s.store.layout(), a, [](spool::AccountConfig& c) {
    c.sending_suspended = true;
    c.sending_reason = "bulk mail";
  });
  AuthOutcome o = s.login("alice@example.org", "right horse battery");
  CHECK(o.kind == Kind::ok);
  CHECK(o.sending_suspended);
  CHECK(o.sending_reason == "bulk mail");
  spool::update_account(s.store.layout(), a,
                        [](spool::AccountConfig& c) { c.password_hash = spool::hash_password(spool::Secret("new")); });
  CHECK(s.login("alice@example.org", "right horse battery").kind == Kind::bad_credentials);
  CHECK(s.login("alice@example.org", "new").kind == Kind::ok);
}

TEST_CASE("failures are slowed, then throttled per client, unchecked; success resets") {
  ThrottleConfig c;
  c.max_failures = 3;
  Spool s(c);
  CHECK(s.login("alice@example.org", "x").delay == 0ms);
  CHECK(s.login("nobody@example.org", "x").delay == 1000ms);  // unknown users count the same
  CHECK(s.login("alice@example.org", "x").delay == 2000ms);
  AuthOutcome o = s.login("alice@example.org", "right horse battery");
  CHECK(o.kind == Kind::throttled);  // even the right password
  CHECK(o.delay == 15000ms);
  CHECK(s.login("alice@example.org", "right horse battery", "192.0.2.8").kind == Kind::ok);  // another client
  s.now += 15min;
  CHECK(s.login("alice@example.org", "right horse battery").kind == Kind::ok);
  CHECK(s.login("alice@example.org", "x").delay == 0ms);
  CHECK(s.login("alice@example.org", "x").delay == 1000ms);
  CHECK(s.login("alice@example.org", "right horse battery").kind == Kind::ok);
  CHECK(s.login("alice@example.org", "x").delay == 0ms);  // the success reset the count
}

TEST_CASE("an unreadable account.yaml is a temporary failure, not counted, password not logged") {
  Spool s;
  const spool::Address a = spool::Address::parse("alice@example.org");
  mhtest::write_text(s.store.layout().account_config(a), "password: [unterminated\n");
  AuthOutcome o = s.login("alice@example.org", "right horse battery");
  CHECK(o.kind == Kind::temporary);
  CHECK(o.detail.find("account.yaml") != std::string::npos);
  CHECK(o.detail.find("right horse battery") == std::string::npos);
  CHECK(s.auth->throttle().tracked() == 0);
}
