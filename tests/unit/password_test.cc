// password_test.cc — crypt(3) hashing in password.h: new hashes are yescrypt, and
// verification accepts SHA-512-crypt and bcrypt hashes made here with libxcrypt itself
// (what an imported Dovecot passwd file holds). Malformed hashes never verify.
#include "spool/password.h"

#include "test_support.h"

#include <crypt.h>

#include <memory>
#include <set>

using spool::Errc;
using spool::Secret;
using mhtest::error_from;

namespace {

// A hash made by libxcrypt directly, as another tool would have stored it; empty when
// this libxcrypt does not offer `prefix` (so bcrypt can be skipped, not failed).
std::string foreign_hash(const char* prefix, const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // rbytes == nullptr: libxcrypt draws the salt from the OS itself.
  if (!::crypt_gensalt_rn(prefix, 0, nullptr, 0, setting, sizeof setting)) return "";
  auto data = std::make_unique<crypt_data>();
  const char* h = ::crypt_r(password.c_str(), setting, data.get());
  if (!h || h[0] == '*') return "";
  return h;
}

bool verifies(const std::string& password, const std::string& hash) {
  return spool::verify_password(Secret(password), hash);
}

} // namespace

TEST_CASE("password: new hashes are yescrypt and verify", "[password]") {
  const std::string hash = spool::hash_password(Secret("correct horse"));
  CHECK(hash.rfind("$y$", 0) == 0);
  CHECK(hash.find("correct horse") == std::string::npos);
  CHECK(verifies("correct horse", hash));
  CHECK_FALSE(verifies("correct hors", hash));
  CHECK_FALSE(verifies("Correct horse", hash));
  CHECK_FALSE(verifies("", hash));

  // A fresh salt each time: the same password never gives the same hash.
  CHECK(spool::hash_password(Secret("correct horse")) != hash);

  // libxcrypt itself agrees (what Dovecot will do with the stored string).
  auto data = std::make_unique<crypt_data>();
  CHECK(std::string(::crypt_r("correct horse", hash.c_str(), data.get())) == hash);
}

TEST_CASE("password: UTF-8 passwords, and the longest allowed one hashes", "[password]") {
  const std::string utf8 = "パスワード-ß";
  CHECK(verifies(utf8, spool::hash_password(Secret(utf8))));
  // Regression: the limit was 1024 while libxcrypt hashes at most 511 bytes, so a
  // 512..1024-byte password was accepted and then failed with Errc::other.
  const std::string longest(spool::max_password_length, 'x');
  const std::string hash = spool::hash_password(Secret(longest));
  CHECK(verifies(longest, hash));
  CHECK_FALSE(verifies(longest.substr(1), hash));
  CHECK(verifies(longest, foreign_hash("$6$", longest)));
}

TEST_CASE("password: SHA-512-crypt hashes made by libxcrypt verify", "[password]") {
  const std::string hash = foreign_hash("$6$", "s3cret!");
  REQUIRE(hash.rfind("$6$", 0) == 0);
  CHECK(verifies("s3cret!", hash));
  CHECK_FALSE(verifies("s3cret", hash));
}

TEST_CASE("password: bcrypt hashes verify when libxcrypt has $2b$", "[password]") {
  const std::string hash = foreign_hash("$2b$", "s3cret!");
  if (hash.empty()) {
    WARN("this libxcrypt has no bcrypt ($2b$); nothing to check");
    return;
  }
  CHECK(hash.rfind("$2b$", 0) == 0);
  CHECK(verifies("s3cret!", hash));
  CHECK_FALSE(verifies("s3cret?", hash));
}

TEST_CASE("password: malformed or truncated hashes never verify", "[password][hostile]") {
  const std::string good = spool::hash_password(Secret("pw"));
  for (const std::string& bad : {std::string(""), std::string("pw"), std::string("*"), std::string("!"),
                                 std::string("$"), std::string("$6$"), std::string("$y$"),
                                 std::string("$y$broken"), std::string("$zz$abc$def"),
                                 good.substr(0, good.size() - 1), good + "x"}) {
    INFO("hash: " << bad);
    CHECK_FALSE(verifies("pw", bad));
  }
  // The hash is a std::string_view: an embedded NUL must not cut it short into a match.
  std::string with_nul = good + std::string("\0junk", 5);
  CHECK_FALSE(verifies("pw", with_nul));
}

TEST_CASE("password: empty, over-long or NUL passwords are refused", "[password][hostile]") {
  spool::Error empty = error_from([] { (void)spool::hash_password(Secret("")); });
  CHECK(empty.code() == Errc::invalid_input);
  CHECK(std::string(empty.what()) == "password is empty");

  spool::Error too_long =
      error_from([] { (void)spool::hash_password(Secret(std::string(spool::max_password_length + 1, 'x'))); });
  CHECK(too_long.code() == Errc::invalid_input);
  CHECK(std::string(too_long.what()) == "password is longer than 511 bytes");

  spool::Error nul = error_from([] { (void)spool::hash_password(Secret(std::string("ab\0cd", 5))); });
  CHECK(nul.code() == Errc::invalid_input);
  CHECK(std::string(nul.what()) == "password contains a NUL byte");

  // Over-long on the verify side fails fast and safely instead of throwing.
  const std::string hash = spool::hash_password(Secret("pw"));
  CHECK_FALSE(verifies(std::string(spool::max_password_length + 1, 'x'), hash));
  CHECK_NOTHROW(spool::dummy_verify(Secret("anything")));
}

TEST_CASE("password: random_password is 20 unambiguous characters, never repeated", "[password]") {
  const std::string alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::set<std::string> seen;
  std::set<char> used;
  for (int i = 0; i < 200; ++i) {
    Secret s = spool::random_password();
    const std::string& pw = s.reveal();
    REQUIRE(pw.size() == 20);
    for (char c : pw) {
      INFO("password: " << pw);
      REQUIRE(alphabet.find(c) != std::string::npos);
      used.insert(c);
    }
    seen.insert(pw);
  }
  CHECK(seen.size() == 200);
  // 4000 draws from 55 symbols: every symbol shows up (no biased or stuck generator).
  CHECK(used.size() == alphabet.size());
  for (char ambiguous : std::string("0O1lI"))
    CHECK(used.count(ambiguous) == 0);
}

TEST_CASE("password: a moved-from Secret is empty", "[password]") {
  Secret a("hunter2");
  Secret b(std::move(a));
  CHECK(b.reveal() == "hunter2");
  CHECK(a.empty()); // NOLINT(bugprone-use-after-move): the wipe is the point
  Secret c;
  c = std::move(b);
  CHECK(c.reveal() == "hunter2");
  CHECK(b.empty()); // NOLINT(bugprone-use-after-move)
}
