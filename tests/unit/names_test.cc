// names_test.cc — SPEC §3 account/list names and domain (IDN) validation in names.h.
// Every accepted and rejected example of the spec/FAQ is here, plus the hostile inputs
// of issue 2 (../, /, NUL, 33 chars, look-alikes); each rejection checks the reason.
#include "spool/names.h"

#include "test_support.h"

using spool::Address;
using spool::Domain;
using spool::Errc;
using spool::LocalPart;
using mhtest::error_from;

namespace {

// The message LocalPart::parse gives for `input` (which must be rejected).
std::string local_part_rejection(const std::string& input) {
  spool::Error e = error_from([&] { (void)LocalPart::parse(input); });
  CHECK(e.code() == Errc::invalid_input);
  CHECK(e.exit_code() == 65);
  return e.what();
}

std::string domain_rejection(const std::string& input) {
  spool::Error e = error_from([&] { (void)Domain::parse(input); });
  CHECK(e.code() == Errc::invalid_input);
  return e.what();
}

const std::string two_in_a_row = "name must not contain two of '.' and '-' in a row";
const std::string starts_with_symbol = "name must not start with a symbol";
const std::string ends_with_symbol = "name must not end with a symbol";
const std::string bad_character = "name may contain only a-z, 0-9, '.', '-' and '_'";

} // namespace

TEST_CASE("names: the FAQ's rejected account names, each with its reason", "[names]") {
  struct Case {
    std::string input;
    std::string reason;
  };
  const Case cases[] = {
      {"test..123", two_in_a_row},      {"test--123", two_in_a_row},
      {"test-.123", two_in_a_row},      {"test.-123", two_in_a_row},
      {".test", starts_with_symbol},    {"-test", starts_with_symbol},
      {"_test", starts_with_symbol},    {"test-123.", ends_with_symbol},
      {"test123-", ends_with_symbol},   {"test_", ends_with_symbol},
  };
  for (const Case& c : cases) {
    INFO("input: " << c.input);
    CHECK(local_part_rejection(c.input) == "invalid name '" + c.input + "': " + c.reason);
    CHECK(spool::local_part_problem(c.input) == c.reason);
  }
}

TEST_CASE("names: accepted names, underscores may repeat and touch symbols", "[names]") {
  for (const char* ok : {"a__b", "a_.b", "a._b", "a-_b", "a_-b", "test.123", "test-123", "t_e.s-t",
                         "9lives", "a", "0"}) {
    INFO("input: " << ok);
    CHECK(LocalPart::parse(ok).str() == ok);
    CHECK_FALSE(spool::local_part_problem(ok).has_value());
  }
}

TEST_CASE("names: upper case is folded to lower case", "[names]") {
  CHECK(LocalPart::parse("Test.User").str() == "test.user");
  CHECK(LocalPart::parse("ABC_9").str() == "abc_9");
  CHECK(LocalPart::parse("ABC") == LocalPart::parse("abc"));
  // local_part_problem() expects folded input; upper case itself is not a valid character.
  CHECK(spool::local_part_problem("ABC") == bad_character);
}

TEST_CASE("names: length limits are 1 and 32 characters", "[names]") {
  CHECK(LocalPart::parse("x").str() == "x");
  const std::string max(32, 'a');
  CHECK(LocalPart::parse(max).str() == max);
  const std::string too_long(33, 'a');
  CHECK(local_part_rejection(too_long) == "invalid name '" + too_long + "': name is longer than 32 characters");
  CHECK(local_part_rejection("") == "invalid name '': name is empty");
}

TEST_CASE("names: path tricks and hostile bytes never become a name", "[names][hostile]") {
  CHECK(local_part_rejection("../x") == "invalid name '../x': " + bad_character);
  CHECK(local_part_rejection("..") == "invalid name '..': " + starts_with_symbol);
  CHECK(local_part_rejection("a/b") == "invalid name 'a/b': " + bad_character);
  CHECK(local_part_rejection("a b") == "invalid name 'a b': " + bad_character);
  CHECK(local_part_rejection("a+b") == "invalid name 'a+b': " + bad_character);
  CHECK(local_part_rejection("a@b") == "invalid name 'a@b': " + bad_character);

  // An embedded NUL would truncate a C path; the message shows it escaped, not raw.
  const std::string with_nul("ab\0cd", 5);
  CHECK(local_part_rejection(with_nul) == "invalid name 'ab\\x00cd': " + bad_character);
  CHECK(local_part_rejection("a\nb") == "invalid name 'a\\x0ab': " + bad_character);

  // "tеst" with a Cyrillic U+0435 'е', and "а" (U+0430) alone: look-alikes of ASCII.
  CHECK(local_part_rejection("t\xd0\xb5st") == "invalid name 't\xd0\xb5st': " + bad_character);
  CHECK(local_part_rejection("\xd0\xb0") == "invalid name '\xd0\xb0': " + bad_character);
  // Fullwidth 'ａ' (U+FF41) is not folded into 'a' either.
  CHECK(local_part_rejection("\xef\xbd\x81") == "invalid name '\xef\xbd\x81': " + bad_character);
}

TEST_CASE("names: a very long hostile input is shortened in the message", "[names][hostile]") {
  const std::string huge(10000, '/');
  std::string message = local_part_rejection(huge);
  CHECK(message.size() < 200);
  CHECK(message == "invalid name '" + std::string(77, '/') + "...': name is longer than 32 characters");
}

TEST_CASE("domains: IDN becomes punycode, and unicode() shows it back", "[names][domain]") {
  Domain d = Domain::parse("例え.jp");
  CHECK(d.str() == "xn--r8jz45g.jp");
  CHECK(d.unicode() == "例え.jp");
  CHECK(Domain::parse("例え.JP").str() == "xn--r8jz45g.jp");
  CHECK(Domain::parse("xn--r8jz45g.jp") == d);
  CHECK(Domain::parse("XN--R8JZ45G.JP") == d);
  CHECK(Domain::parse("ÉCOLE.fr").str() == "xn--cole-9oa.fr");
  CHECK(Domain::parse("ÉCOLE.fr").unicode() == "école.fr");
}

TEST_CASE("domains: a Cyrillic look-alike is a different (punycode) domain", "[names][domain][hostile]") {
  Domain lookalike = Domain::parse("\xd0\xb0pple.com"); // Cyrillic 'а' + "pple"
  CHECK(lookalike.str().rfind("xn--", 0) == 0);
  CHECK(lookalike != Domain::parse("apple.com"));
}

TEST_CASE("domains: ASCII is folded to lower case, a trailing dot dropped", "[names][domain]") {
  CHECK(Domain::parse("Example.JP").str() == "example.jp");
  CHECK(Domain::parse("Example.JP").unicode() == "example.jp");
  CHECK(Domain::parse("example.jp.").str() == "example.jp");
  CHECK(Domain::parse("mail-1.sub.example.co.jp").str() == "mail-1.sub.example.co.jp");
}

TEST_CASE("domains: rejected with a precise reason", "[names][domain][hostile]") {
  struct Case {
    std::string input;
    std::string reason;
  };
  const Case cases[] = {
      {"", "domain is empty"},
      {".", "domain is empty"},
      {"a..b", "domain has an empty label"},
      {".example.jp", "domain has an empty label"},
      {"example.jp..", "domain has an empty label"},
      {"../etc", "domain has an empty label"},
      {"-a.jp", "domain label starts or ends with '-'"},
      {"a-.jp", "domain label starts or ends with '-'"},
      {"a/b.jp", "domain contains a character other than a-z 0-9 - ."},
      {"exa_mple.jp", "domain contains a character other than a-z 0-9 - ."},
      {"localhost", "domain needs at least two labels (example.jp)"},
      {"1.2.3.4", "top-level label is numeric (an IP address is not a domain)"},
      {"example.123", "top-level label is numeric (an IP address is not a domain)"},
  };
  for (const Case& c : cases) {
    INFO("input: " << c.input);
    CHECK(domain_rejection(c.input) == "invalid domain '" + c.input + "': " + c.reason);
  }
}

TEST_CASE("domains: NUL and control characters are rejected", "[names][domain][hostile]") {
  const std::string with_nul("exa\0mple.jp", 11);
  CHECK(domain_rejection(with_nul) == "invalid domain 'exa\\x00mple.jp': domain contains a control character");
  CHECK(domain_rejection("a\tb.jp") == "invalid domain 'a\\x09b.jp': domain contains a control character");
}

TEST_CASE("domains: 63-character labels and 253 characters in all are the limits", "[names][domain]") {
  const std::string label63(63, 'a');
  CHECK(Domain::parse(label63 + ".jp").str() == label63 + ".jp");
  const std::string label64(64, 'a');
  CHECK(domain_rejection(label64 + ".jp") ==
        "invalid domain '" + label64 + ".jp': domain label longer than 63 characters");

  const std::string base = label63 + "." + label63 + "." + label63 + ".";
  const std::string total253 = base + std::string(61, 'b');
  REQUIRE(total253.size() == 253);
  CHECK(Domain::parse(total253).str() == total253);
  CHECK(Domain::parse(total253 + ".").str() == total253); // absolute form of the same name
  const std::string total254 = base + std::string(62, 'b');
  REQUIRE(total254.size() == 254);
  CHECK(domain_rejection(total254) ==
        "invalid domain '" + total254.substr(0, 77) + "...': domain is longer than 253 characters");
}

TEST_CASE("domains: xn-- labels must be real punycode", "[names][domain][hostile]") {
  CHECK(domain_rejection("xn--zz.jp") == "invalid domain 'xn--zz.jp': invalid punycode label");
  CHECK(domain_rejection("xn--0.jp") == "invalid domain 'xn--0.jp': invalid punycode label");
  CHECK(domain_rejection("XN--A.example.jp") == "invalid domain 'XN--A.example.jp': invalid punycode label");
  // An empty punycode part already fails the LDH check (label ends with '-').
  CHECK(domain_rejection("xn--.jp") == "invalid domain 'xn--.jp': domain label starts or ends with '-'");
  CHECK(Domain::parse("xn--ls8h.la").str() == "xn--ls8h.la"); // real punycode is kept as is
}

TEST_CASE("domains: Unicode that IDNA forbids is rejected", "[names][domain][hostile]") {
  // U+FF0F FULLWIDTH SOLIDUS maps to '/', which STD3 rules forbid: no path trick.
  CHECK(domain_rejection("a\xef\xbc\x8f" "b.jp") ==
        "invalid domain 'a\xef\xbc\x8f" "b.jp': not a valid internationalized domain name");
  // U+200D ZERO WIDTH JOINER outside a joining context (CONTEXTJ): an invisible twin.
  CHECK(domain_rejection("a\xe2\x80\x8d" "b.jp") ==
        "invalid domain 'a\xe2\x80\x8d" "b.jp': not a valid internationalized domain name");
  CHECK(domain_rejection("例え..jp") == "invalid domain '例え..jp': not a valid internationalized domain name");
}

TEST_CASE("addresses: parse into a LocalPart and a Domain", "[names][address]") {
  Address a = Address::parse("Taro.Yamada@Example.JP");
  CHECK(a.local().str() == "taro.yamada");
  CHECK(a.domain().str() == "example.jp");
  CHECK(a.str() == "taro.yamada@example.jp");
  CHECK(Address::parse("info@例え.jp").str() == "info@xn--r8jz45g.jp");
  CHECK(Address(LocalPart::parse("info"), Domain::parse("example.jp")) == Address::parse("INFO@example.jp"));
}

TEST_CASE("addresses: rejected with the failing part named", "[names][address][hostile]") {
  auto rejection = [](const std::string& input) {
    spool::Error e = error_from([&] { (void)Address::parse(input); });
    CHECK(e.code() == Errc::invalid_input);
    return std::string(e.what());
  };
  CHECK(rejection("no-at-sign") == "invalid address 'no-at-sign': expected name@domain");
  CHECK(rejection("@example.jp") == "invalid name '': name is empty");
  CHECK(rejection("user@") == "invalid domain '': domain is empty");
  CHECK(rejection("a@b@example.jp") == "invalid name 'a@b': " + bad_character);
  CHECK(rejection("../x@example.jp") == "invalid name '../x': " + bad_character);
  CHECK(rejection("user@../etc") == "invalid domain '../etc': domain has an empty label");
  CHECK(rejection("test..123@example.jp") == "invalid name 'test..123': " + two_in_a_row);
}
