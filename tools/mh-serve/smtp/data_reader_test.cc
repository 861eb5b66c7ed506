// data_reader_test.cc — DATA framing: end marker, dot-unstuffing, smuggling variants, limits.
#include "smtp/data_reader.h"

#include <catch2/catch.hpp>

#include <string>

using mh::smtp::DataReader;

namespace {

struct Fed {
  std::string body;
  std::size_t consumed = 0;
  bool finished = false;
  bool bare = false;
  bool too_big = false;
  std::uint64_t size = 0;
};

// Feeds `in` in pieces of `step` bytes (0 = all at once).
Fed feed(const std::string& in, std::size_t step = 0, std::uint64_t limit = 1000000) {
  Fed f;
  DataReader r(limit, [&](std::string_view b) { f.body.append(b); });
  if (step == 0) step = in.size() ? in.size() : 1;
  for (std::size_t i = 0; i < in.size() && !r.finished(); i += step) {
    std::string_view piece = std::string_view(in).substr(i, step);
    std::size_t used = r.feed(piece);
    f.consumed += used;
    if (used < piece.size()) break;
  }
  f.finished = r.finished();
  f.bare = r.bare_line_ending();
  f.too_big = r.too_big();
  f.size = r.size();
  return f;
}

} // namespace

TEST_CASE("data ends only at CRLF.CRLF and stores LF line endings") {
  for (std::size_t step : {0, 1, 2, 3, 7}) {
    Fed f = feed("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n", step);
    CHECK(f.finished);
    CHECK_FALSE(f.bare);
    CHECK(f.body == "Subject: x\n\nhello\n");
    CHECK(f.consumed == std::string("Subject: x\r\n\r\nhello\r\n.\r\n").size());
    CHECK(f.size == std::string("Subject: x\r\n\r\nhello\r\n").size());
  }
}

TEST_CASE("an empty message is just the dot") {
  Fed f = feed(".\r\n");
  CHECK(f.finished);
  CHECK(f.body.empty());
  CHECK(f.size == 0);
}

TEST_CASE("dot-unstuffing removes one leading dot") {
  for (std::size_t step : {0, 1}) {
    Fed f = feed("..\r\n...x\r\n.y\r\na.b\r\n.\r\n", step);
    CHECK(f.finished);
    CHECK(f.body == ".\n..x\ny\na.b\n");
  }
}

TEST_CASE("smuggling variants never end the data and mark it bad") {
  const char* variants[] = {"\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n"};
  for (const char* v : variants) {
    INFO("variant #" << (&v - variants));
    std::string in = std::string("hello") + v + "MAIL FROM:<evil@x>\r\n";
    Fed f = feed(in);
    CHECK_FALSE(f.finished);
    CHECK(f.bare);
    // The real end still works afterwards.
    Fed g = feed(in + "\r\n.\r\n", 1);
    CHECK(g.finished);
    CHECK(g.bare);
  }
}

TEST_CASE("bare CR or LF inside a line is flagged") {
  CHECK(feed("a\rb\r\n.\r\n").bare);
  CHECK(feed("a\nb\r\n.\r\n").bare);
  CHECK(feed("\r\r\n.\r\n").bare);
  CHECK_FALSE(feed("a\tb\x01\x00\xff\r\n.\r\n").bare);
}

TEST_CASE("NUL and 8-bit bytes pass through") {
  std::string body("a\0b\xe3\x81\x82\r\n.\r\n", 11);
  Fed f = feed(body);
  CHECK(f.finished);
  CHECK(f.body == std::string("a\0b\xe3\x81\x82\n", 7));
}

TEST_CASE("over the size limit: counted, not emitted, still read to the end") {
  Fed f = feed("0123456789\r\n.\r\n", 0, 11);
  CHECK(f.finished);
  CHECK(f.too_big);
  CHECK(f.size == 12);
  Fed exact = feed("0123456789\r\n.\r\n", 0, 12);
  CHECK_FALSE(exact.too_big);
  CHECK(exact.body == "0123456789\n");
}
