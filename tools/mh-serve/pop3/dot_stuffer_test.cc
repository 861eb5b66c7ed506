// dot_stuffer_test.cc — the POP3 transfer encoder: LF → CRLF, dot doubling, TOP, and the
// same output whatever the chunking (every split point of the edge-case messages).
#include "pop3/dot_stuffer.h"

#include <catch2/catch.hpp>

#include <string>

using mh::pop3::DotStuffer;

namespace {

std::string encode(std::string_view message, long top = -1, std::size_t chunk = 65536) {
  DotStuffer s(top);
  std::string out;
  for (std::size_t i = 0; i < message.size(); i += chunk) out += s.feed(message.substr(i, chunk));
  return out + s.finish();
}

// Every way of cutting `message` in two gives the same result as no cut at all.
void check_all_splits(std::string_view message, long top, const std::string& expected) {
  REQUIRE(encode(message, top) == expected);
  for (std::size_t cut = 0; cut <= message.size(); ++cut) {
    DotStuffer s(top);
    std::string out = s.feed(message.substr(0, cut));
    out += s.feed(message.substr(cut));
    out += s.finish();
    INFO("cut at " << cut);
    CHECK(out == expected);
  }
  CHECK(encode(message, top, 1) == expected);  // byte by byte
}

} // namespace

TEST_CASE("LF becomes CRLF, CRLF stays, a leading dot is doubled", "[pop3][dot]") {
  check_all_splits("Subject: a\n\n.hello\n..two\nmid.dot\n.\n", -1,
                   "Subject: a\r\n\r\n..hello\r\n...two\r\nmid.dot\r\n..\r\n.\r\n");
  check_all_splits("Subject: a\r\n\r\n.x\r\nend\r\n", -1, "Subject: a\r\n\r\n..x\r\nend\r\n.\r\n");
  check_all_splits(".first line is dotted\n", -1, "..first line is dotted\r\n.\r\n");
}

TEST_CASE("a dot and a CR LF pair split across chunks", "[pop3][dot]") {
  DotStuffer s;
  CHECK(s.feed("a\n") == "a\r\n");
  CHECK(s.feed(".") == "..");  // the chunk boundary falls right at the line start
  CHECK(s.feed("b\r") == "b\r");
  CHECK(s.feed("\n") == "\n");  // the CR came in the previous chunk: no second CR
  CHECK(s.feed("\n") == "\r\n");
  CHECK(s.finish() == ".\r\n");
}

TEST_CASE("bare CR is passed through and ends no line", "[pop3][dot]") {
  check_all_splits("a\rb\n.c\r.d\n", -1, "a\rb\r\n..c\r.d\r\n.\r\n");
}

TEST_CASE("a message without a final newline gets one before the terminator", "[pop3][dot]") {
  check_all_splits("Subject: x\n\nno newline", -1, "Subject: x\r\n\r\nno newline\r\n.\r\n");
  check_all_splits("ends in CR\r", -1, "ends in CR\r\n.\r\n");
  check_all_splits(".", -1, "..\r\n.\r\n");
}

TEST_CASE("the empty message is just the terminator", "[pop3][dot]") {
  CHECK(encode("") == ".\r\n");
  CHECK(encode("", 0) == ".\r\n");
  CHECK(encode("", 5) == ".\r\n");
}

TEST_CASE("TOP sends the header, the blank line and N body lines", "[pop3][dot]") {
  const std::string msg = "From: a\nSubject: b\n\nline 1\n.line 2\nline 3\n";
  check_all_splits(msg, 0, "From: a\r\nSubject: b\r\n\r\n.\r\n");
  check_all_splits(msg, 1, "From: a\r\nSubject: b\r\n\r\nline 1\r\n.\r\n");
  check_all_splits(msg, 2, "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\n.\r\n");
  check_all_splits(msg, 3, "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n");
  check_all_splits(msg, 1000, "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n");
  // A CRLF blank line ends the header too.
  check_all_splits("A: 1\r\n\r\nbody\r\nmore\r\n", 1, "A: 1\r\n\r\nbody\r\n.\r\n");
  // No body at all: everything there is.
  check_all_splits("A: 1\nB: 2", 0, "A: 1\r\nB: 2\r\n.\r\n");
  // Body lines without a final newline.
  check_all_splits("A: 1\n\nonly", 5, "A: 1\r\n\r\nonly\r\n.\r\n");
}

TEST_CASE("done() tells the reader it may stop; later chunks add nothing", "[pop3][dot]") {
  DotStuffer s(0);
  CHECK(s.feed("A: 1\n\nbody\n") == "A: 1\r\n\r\n");
  CHECK(s.done());
  CHECK(s.feed("more body\n") == "");
  CHECK(s.finish() == ".\r\n");
}

TEST_CASE("a 30 MB message goes through in 64 KiB chunks with bounded output per chunk", "[pop3][dot]") {
  std::string chunk;
  while (chunk.size() < 65536) chunk += ".dotted line of text that is long enough to matter\n";
  chunk.resize(65536);
  DotStuffer s;
  std::uint64_t total = 0;
  std::size_t largest = 0;
  for (int i = 0; i < 480; ++i) {  // 30 MiB
    const std::string out = s.feed(chunk);
    largest = std::max(largest, out.size());
    total += out.size();
  }
  total += s.finish().size();
  CHECK(largest < 2 * chunk.size());  // memory is per chunk, not per message
  CHECK(total > 30u * 1024 * 1024);
}
