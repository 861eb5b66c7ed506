// transcript_test.cc — replies matched to commands as libcurl's debug stream shows them:
// per-recipient RCPT replies, multi-line replies, the reply after the data, replies cut
// into pieces, and hostile replies (huge, control characters) kept bounded and clean.
#include "outbound/transcript.h"

#include <catch2/catch.hpp>

using mh::outbound::Transcript;

namespace {

Transcript dialogue() {
  Transcript t;
  t.on_received("220 sink.example ESMTP\r\n");
  t.on_sent("EHLO mail.example.jp\r\n");
  t.on_received("250-sink.example\r\n");
  t.on_received("250-PIPELINING\r\n250 SIZE 1000\r\n");
  t.on_sent("MAIL FROM:<a@example.jp> SIZE=12\r\n");
  t.on_received("250 2.1.0 Ok\r\n");
  t.on_sent("RCPT TO:<ok@remote.example>\r\n");
  t.on_received("250 2.1.5 Ok\r\n");
  t.on_sent("RCPT TO:<gone@remote.example>\r\n");
  t.on_received("550 5.1.1 <gone@remote.example>: Recipient address rejected\r\n");
  t.on_sent("RCPT TO:<later@remote.example>\r\n");
  t.on_received("451 4.3.0 try ");
  t.on_received("again\r\n");
  t.on_sent("DATA\r\n");
  t.on_received("354 go ahead\r\n");
  return t;
}

} // namespace

TEST_CASE("each RCPT gets its own reply, and the reply after the data is the final one", "[outbound][transcript]") {
  Transcript t = dialogue();
  t.on_received("250 2.0.0 Ok: queued as ABC\r\n");
  REQUIRE(t.mail_reply());
  CHECK(t.mail_reply()->code == 250);
  CHECK(t.rcpt_reply("ok@remote.example")->code == 250);
  CHECK(t.rcpt_reply("gone@remote.example")->code == 550);
  CHECK(t.rcpt_reply("gone@remote.example")->text == "550 5.1.1 <gone@remote.example>: Recipient address rejected");
  CHECK(t.rcpt_reply("later@remote.example")->text == "451 4.3.0 try again");
  CHECK_FALSE(t.rcpt_reply("never@remote.example"));
  REQUIRE(t.data_reply());
  CHECK(t.data_reply()->code == 354);
  REQUIRE(t.final_reply());
  CHECK(t.final_reply()->text == "250 2.0.0 Ok: queued as ABC");
  CHECK(t.transaction_started());
}

TEST_CASE("no final reply when the connection ends after the data", "[outbound][transcript]") {
  Transcript t = dialogue();
  CHECK_FALSE(t.final_reply());
  CHECK(t.last_reply()->code == 354);
}

TEST_CASE("multi-line replies are joined; a refused greeting is the last reply", "[outbound][transcript]") {
  Transcript t;
  t.on_received("554-sink.example no\r\n554 go away\r\n");
  CHECK_FALSE(t.transaction_started());
  REQUIRE(t.last_reply());
  CHECK(t.last_reply()->code == 554);
  CHECK(t.last_reply()->text == "554-sink.example no; 554 go away");
}

TEST_CASE("hostile replies stay bounded and printable", "[outbound][transcript]") {
  Transcript t;
  t.on_sent("MAIL FROM:<>\r\n");
  std::string huge = "550 " + std::string(10 * 1024 * 1024, 'x');
  t.on_received(huge);  // no line end yet: only kMaxPendingLine is kept
  t.on_received("\r\n");
  REQUIRE(t.mail_reply());
  CHECK(t.mail_reply()->code == 550);
  CHECK(t.mail_reply()->text.size() <= mh::outbound::kMaxReplyText);
  t.on_sent("RCPT TO:<x@y>\r\n");
  t.on_received(std::string("550 bad\x01\x7f\xff" "Header: injected\r\n", 28));
  const auto r = t.rcpt_reply("x@y");
  REQUIRE(r);
  CHECK(r->text.find_first_of(std::string("\r\n\x01\x7f\xff", 5)) == std::string::npos);
}

TEST_CASE("lines that are no reply at all are ignored", "[outbound][transcript]") {
  Transcript t;
  t.on_sent("MAIL FROM:<a@b>\r\n");
  t.on_received("hello there\r\n");
  CHECK_FALSE(t.mail_reply());
  t.on_received("250 ok\r\n");
  CHECK(t.mail_reply()->text == "250 ok");
}
