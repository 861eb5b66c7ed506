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
