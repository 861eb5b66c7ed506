// path_test.cc — MAIL FROM / RCPT TO argument parsing.
#include "smtp/path.h"

#include <catch2/catch.hpp>

using mh::smtp::parse_path_command;
using Problem = mh::smtp::PathCommand::Problem;

TEST_CASE("MAIL FROM forms") {
  auto a = parse_path_command("FROM:<a@b.example>", "FROM:", true);
  CHECK(a.problem == Problem::none);
  CHECK(a.address == "a@b.example");
  auto b = parse_path_command("from: <a@b.example> SIZE=100 body=8bitmime", "FROM:", true);
  CHECK(b.problem == Problem::none);
  REQUIRE(b.params.size() == 2);
  CHECK(b.params[0].first == "SIZE");
  CHECK(b.params[0].second == "100");
  CHECK(b.params[1].first == "BODY");
  auto null = parse_path_command("FROM:<>", "FROM:", true);
  CHECK(null.problem == Problem::none);
  CHECK(null.address.empty());
  CHECK(parse_path_command("FROM:<@relay.example:a@b.example>", "FROM:", true).address == "a@b.example");
}

TEST_CASE("bad paths") {
  CHECK(parse_path_command("FROM:a@b", "FROM:", true).problem == Problem::syntax);
  CHECK(parse_path_command("FROM <a@b>", "FROM:", true).problem == Problem::syntax);
  CHECK(parse_path_command("FROM:<a@b", "FROM:", true).problem == Problem::syntax);
  CHECK(parse_path_command("TO:<>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<ab>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<a b@c>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command(std::string("TO:<a\0b@c>", 10), "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<\xc3\xa9@c>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<" + std::string(250, 'a') + "@b.c>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<a@b>x", "TO:", false).problem == Problem::syntax);
}

TEST_CASE("path characters and bad domain labels are refused (SPEC 8, Addresses)") {
  using mh::smtp::mailbox_syntax_ok;
  for (const char* bad : {"x@d.test/../other", "x@../d", "x@d..test", "x@.d.test", "x@d.test.", "a/b@d.test",
                          "a\\b@d.test", "\"a/b\"@d.test", "\"a\\b\"@d.test", "x@d\\test", "x@d.test\x01",
                          "x\x7f@d.test", "x@.", "x@.."})
    CHECK_FALSE(mailbox_syntax_ok(bad));
  CHECK_FALSE(mailbox_syntax_ok(std::string("x@d.te\0st", 9)));
  for (const char* good : {"x@d.test", "a.b+c@sub.d.test", "\"a b\"@d.test", "x@[192.0.2.1]", "x@localhost"})
    CHECK(mailbox_syntax_ok(good));
  CHECK(parse_path_command("TO:<x@d.test/../other>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("FROM:<a/b@d.test>", "FROM:", true).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<@relay.example:x@../d>", "TO:", false).problem == Problem::bad_address);
}

TEST_CASE("bare postmaster only where allowed (RFC 5321 4.5.1)") {
  CHECK(parse_path_command("TO:<postmaster>", "TO:", false, true).address == "postmaster");
  CHECK(parse_path_command("TO:<PostMaster>", "TO:", false, true).problem == Problem::none);
  CHECK(parse_path_command("TO:<postmaster>", "TO:", false).problem == Problem::bad_address);
  CHECK(parse_path_command("TO:<postmasterx>", "TO:", false, true).problem == Problem::bad_address);
  CHECK(parse_path_command("FROM:<postmaster>", "FROM:", true).problem == Problem::bad_address);
}
