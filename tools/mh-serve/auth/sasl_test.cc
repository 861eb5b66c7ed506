// sasl_test.cc — strict base64 (RFC 4648 vectors, every non-canonical form refused) and
// the PLAIN / LOGIN exchanges, including the ways a client can get them wrong.
#include "auth/sasl.h"

#include <catch2/catch.hpp>

#include <random>

using mh::auth::Credentials;
using mh::auth::decode_base64;
using mh::auth::encode_base64;
using mh::auth::parse_plain;
using mh::auth::SaslExchange;
using Kind = SaslExchange::Step::Kind;

namespace {
std::string nul(std::string_view a, std::string_view b, std::string_view c) {
  return std::string(a) + '\0' + std::string(b) + '\0' + std::string(c);
}
} // namespace

TEST_CASE("base64: the RFC 4648 §10 vectors both ways") {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},         {"f", "Zg=="},     {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    CHECK(encode_base64(plain) == coded);
    CHECK(decode_base64(coded) == std::optional<std::string>(plain));
  }
}

TEST_CASE("base64: random bytes round-trip") {
  std::mt19937 rng(7);
  for (int n = 0; n < 300; ++n) {
    std::string bytes;
    for (int i = 0; i < n; ++i) bytes += static_cast<char>(rng() % 256);
    CHECK(decode_base64(encode_base64(bytes)) == std::optional<std::string>(bytes));
  }
}

TEST_CASE("base64: anything not canonical is refused") {
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Z===", "====", "Zh==", "Zm9=", "Zg==Zg==", " Zg==", "Zg==\n",
                          "Zm9v\r\n", "Zm9v-_==", "Zm 9v", "Z=g=", "Zm=v"}) {
    INFO(bad);
    CHECK_FALSE(decode_base64(bad).has_value());
  }
  CHECK_FALSE(decode_base64(std::string(mh::auth::max_response + 4, 'A')).has_value());
}

TEST_CASE("PLAIN message: authzid empty or the same user, both other fields present") {
  auto c = parse_plain(nul("", "alice@example.org", "pw"));
  REQUIRE(c.has_value());
  CHECK(c->login == "alice@example.org");
  CHECK(c->password.reveal() == "pw");
  CHECK(parse_plain(nul("alice@example.org", "alice@example.org", "pw")).has_value());
  CHECK_FALSE(parse_plain(nul("bob@example.org", "alice@example.org", "pw")).has_value());
  CHECK_FALSE(parse_plain(nul("", "", "pw")).has_value());
  CHECK_FALSE(parse_plain(nul("", "alice@example.org", "")).has_value());
  CHECK_FALSE(parse_plain(nul("", "alice@example.org", std::string("p\0w", 3))).has_value());
  CHECK_FALSE(parse_plain("alice@example.org pw").has_value());
  CHECK_FALSE(parse_plain(std::string("alice\0pw", 8)).has_value());
}

TEST_CASE("SaslExchange PLAIN: initial response, empty challenge, bad input") {
  CHECK(SaslExchange::mechanism("plain") == SaslExchange::Mechanism::plain);
  CHECK(SaslExchange::mechanism("Login") == SaslExchange::Mechanism::login);
  CHECK_FALSE(SaslExchange::mechanism("CRAM-MD5").has_value());
  CHECK_FALSE(SaslExchange::mechanism("PLAINX").has_value());
  {
    SaslExchange x(SaslExchange::Mechanism::plain);
    auto s = x.start(encode_base64(nul("", "a@b.example", "pw")));
    REQUIRE(s.kind == Kind::done);
    Credentials c = x.take();
    CHECK(c.login == "a@b.example");
    CHECK(c.password.reveal() == "pw");
  }
  {
    SaslExchange x(SaslExchange::Mechanism::plain);
    auto s = x.start(std::nullopt);
    CHECK(s.kind == Kind::challenge);
    CHECK(s.challenge.empty());
    CHECK(x.respond(encode_base64(nul("", "a@b.example", "pw"))).kind == Kind::done);
  }
  CHECK(SaslExchange(SaslExchange::Mechanism::plain).start("=").kind == Kind::malformed);
  CHECK(SaslExchange(SaslExchange::Mechanism::plain).start("%%%%").kind == Kind::bad_base64);
  CHECK(SaslExchange(SaslExchange::Mechanism::plain).start(encode_base64("no nuls")).kind == Kind::malformed);
}

TEST_CASE("SaslExchange LOGIN: user name, then password; with the user name up front") {
  {
    SaslExchange x(SaslExchange::Mechanism::login);
    auto s = x.start(std::nullopt);
    CHECK(s.kind == Kind::challenge);
    CHECK(s.challenge == "VXNlcm5hbWU6");
    CHECK(decode_base64(s.challenge) == std::optional<std::string>("Username:"));
    s = x.respond(encode_base64("a@b.example"));
    CHECK(s.kind == Kind::challenge);
    CHECK(decode_base64(s.challenge) == std::optional<std::string>("Password:"));
    CHECK(x.respond(encode_base64("pw")).kind == Kind::done);
    Credentials c = x.take();
    CHECK(c.login == "a@b.example");
    CHECK(c.password.reveal() == "pw");
  }
  {
    SaslExchange x(SaslExchange::Mechanism::login);
    CHECK(x.start(encode_base64("a@b.example")).challenge == "UGFzc3dvcmQ6");
    CHECK(x.respond("").kind == Kind::malformed);  // an empty password
  }
  CHECK(SaslExchange(SaslExchange::Mechanism::login).start("=").kind == Kind::malformed);
  CHECK(SaslExchange(SaslExchange::Mechanism::login).start("a").kind == Kind::bad_base64);
  CHECK(SaslExchange(SaslExchange::Mechanism::login).start(encode_base64(std::string("a\0b", 3))).kind ==
        Kind::malformed);
}
