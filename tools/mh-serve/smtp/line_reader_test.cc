// line_reader_test.cc — command line framing: CRLF only, 512-octet limit, bounded memory.
#include "smtp/line_reader.h"

#include <catch2/catch.hpp>

#include <string>

using mh::smtp::LineReader;
using Status = LineReader::Status;

TEST_CASE("lines end at CRLF, also across reads") {
  LineReader r;
  auto a = r.next("NOOP\r\nQUIT\r\n");
  CHECK(a.status == Status::line);
  CHECK(a.line == "NOOP");
  CHECK(a.consumed == 6);
  auto b = r.next("NO");
  CHECK(b.status == Status::need_more);
  CHECK(b.consumed == 2);
  auto c = r.next("OP\r");
  CHECK(c.status == Status::need_more);
  auto d = r.next("\nX");
  CHECK(d.status == Status::line);
  CHECK(d.line == "NOOP");
  CHECK(d.consumed == 1);
}

TEST_CASE("512 octets including CRLF is the longest line") {
  LineReader r;
  std::string ok(510, 'x');
  auto a = r.next(ok + "\r\n");
  CHECK(a.status == Status::line);
  CHECK(a.line.size() == 510);
  std::string longer(511, 'x');
  auto b = r.next(longer + "\r\nNOOP\r\n");
  CHECK(b.status == Status::too_long);
  CHECK(b.consumed == 513);
  auto c = r.next("NOOP\r\n");
  CHECK(c.status == Status::line);
}

TEST_CASE("a huge line is skipped without being kept") {
  LineReader r;
  std::string chunk(65536, 'y');
  for (int i = 0; i < 100; ++i) CHECK(r.next(chunk).status == Status::need_more);
  auto end = r.next("\r\n");
  CHECK(end.status == Status::too_long);
  CHECK_FALSE(r.partial());
}

TEST_CASE("bare LF and bare CR are reported") {
  LineReader r;
  CHECK(r.next("NOOP\n").status == Status::bare_line_ending);
  CHECK(r.next("NO\rOP\r\n").status == Status::bare_line_ending);
  CHECK(r.next("\r\r\n").status == Status::bare_line_ending);
  CHECK(r.next("NOOP\r\n").status == Status::line);
}
