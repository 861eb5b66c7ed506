// from_header_test.cc — From: extraction (folding, comments, quoting, encoded words,
// groups, duplicates) and the three submission.from_header policies.
#include "smtp/from_header.h"

#include <catch2/catch.hpp>

using namespace mh::smtp;

namespace {
std::vector<std::string> addrs(std::string_view head) {
  auto a = from_addresses(head);
  return a ? *a : std::vector<std::string>{"<none>"};
}
} // namespace

TEST_CASE("From: addresses in their many spellings") {
  CHECK(addrs("From: alice@example.org\r\n\r\nbody") == std::vector<std::string>{"alice@example.org"});
  CHECK(addrs("Subject: x\nfrom : Alice <alice@example.org>\n") == std::vector<std::string>{"alice@example.org"});
  CHECK(addrs("From: \"Doe, John (CEO)\" <john@example.org>\r\n") == std::vector<std::string>{"john@example.org"});
  CHECK(addrs("From: =?UTF-8?B?Q0VPIDxjZW9Ab3RoZXIudGVzdD4=?= <me@example.org>\r\n") ==
        std::vector<std::string>{"me@example.org"});
  CHECK(addrs("From: (comment <x@other.test>) me@example.org (and (nested) one)\r\n") ==
        std::vector<std::string>{"me@example.org"});
  CHECK(addrs("From: \"a b\\\"c\"@example.org\r\n") == std::vector<std::string>{"a b\"c@example.org"});
  CHECK(addrs("From: Alice\r\n <alice@example.org>,\r\n\tbob@other.test\r\n") ==
        std::vector<std::string>{"alice@example.org", "bob@other.test"});
  CHECK(addrs("From: \"ceo@other.test\" <me@example.org>\r\n") == std::vector<std::string>{"me@example.org"});
  CHECK(addrs("From: me@[192.0.2.1]\r\n") == std::vector<std::string>{"me@[192.0.2.1]"});
}

TEST_CASE("a From: that is missing, repeated or not a mailbox-list is none") {
  CHECK_FALSE(from_addresses("Subject: x\r\n\r\nFrom: me@example.org\r\n"));  // in the body
  CHECK_FALSE(from_addresses("From: a@example.org\r\nFrom: b@other.test\r\n"));
  CHECK_FALSE(from_addresses("From:\r\n"));
  CHECK_FALSE(from_addresses("From: undisclosed-recipients:;\r\n"));
  CHECK_FALSE(from_addresses("From: Group: a@example.org;\r\n"));
  CHECK_FALSE(from_addresses("From: a@example.org,,b@example.org\r\n"));
  CHECK_FALSE(from_addresses("From: <@relay.test:a@example.org>\r\n"));
  CHECK_FALSE(from_addresses("From: \"unclosed <a@example.org>\r\n"));
  CHECK_FALSE(from_addresses("From: (unclosed a@example.org\r\n"));
  CHECK_FALSE(from_addresses("From: a@example.org <b@example.org>\r\n"));
  CHECK_FALSE(from_addresses("From: me\r\n"));
  CHECK_FALSE(from_addresses("From: me@\r\n"));
  // Control characters inside a quoted string or literal, escaped or not (a fuzzer found
  // "a\0\0\0\r b"@x coming out as an address with a NUL and a CR in it).
  using namespace std::string_literals;
  CHECK_FALSE(from_addresses("From: \"a\0\0\0\r b\"@ x\r\n"s));
  CHECK_FALSE(from_addresses("From: \"a\\\x01\"@example.org\r\n"s));
  CHECK_FALSE(from_addresses("From: me@[192.0.2.1\x7f]\r\n"s));
  CHECK(addrs("From: \"a\\\"b\tc\"@example.org\r\n") == std::vector<std::string>{"a\"b\tc@example.org"});
}

TEST_CASE("submission.from_header policies") {
  const std::string_view account = "alice@example.org";
  const std::string_view own = "From: Alice <Alice@Example.ORG>\r\n\r\n";
  const std::string_view colleague = "From: bob@example.org\r\n\r\n";
  const std::string_view foreign = "From: ceo@other.test\r\n\r\n";
  const std::string_view mixed = "From: alice@example.org, ceo@other.test\r\n\r\n";
  const std::string_view missing = "Subject: hi\r\n\r\n";
  CHECK(from_header_ok(FromPolicy::any, foreign, account));
  CHECK(from_header_ok(FromPolicy::any, missing, account));
  CHECK(from_header_ok(FromPolicy::own_domain, own, account));
  CHECK(from_header_ok(FromPolicy::own_domain, colleague, account));
  CHECK_FALSE(from_header_ok(FromPolicy::own_domain, foreign, account));
  CHECK_FALSE(from_header_ok(FromPolicy::own_domain, mixed, account));
  CHECK_FALSE(from_header_ok(FromPolicy::own_domain, missing, account));
  CHECK(from_header_ok(FromPolicy::own_address, own, account));
  CHECK_FALSE(from_header_ok(FromPolicy::own_address, colleague, account));
  CHECK_FALSE(from_header_ok(FromPolicy::own_address, missing, account));
}
