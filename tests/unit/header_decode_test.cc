// header_decode_test.cc — header fields for display (header_decode.h): RFC 2047 words in
// B and Q encoding across Japanese and European charsets, §6.2 whitespace between words,
// characters split across words, unknown charsets and malformed words left as written,
// unfolding, field lookup, and control characters made harmless.
#include "spool/header_decode.h"

#include <catch2/catch.hpp>

using spool::decode_header_value;

TEST_CASE("ISO-2022-JP subjects decode to UTF-8", "[header]") {
  CHECK(decode_header_value("=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=") == "テスト");
  CHECK(decode_header_value("=?iso-2022-jp?b?GyRCRnxLXDhsJE43b0w+JEckORsoQg==?=") == "日本語の件名です");
}

TEST_CASE("other Japanese charsets and UTF-8", "[header]") {
  CHECK(decode_header_value("=?Shift_JIS?B?g2WDWINn?=") == "テスト");
  CHECK(decode_header_value("=?EUC-JP?B?pcaluaXI?=") == "テスト");
  CHECK(decode_header_value("=?UTF-8?B?44OG44K544OI?=") == "テスト");
  CHECK(decode_header_value("=?utf-8?q?=E3=83=86=E3=82=B9=E3=83=88?=") == "テスト");
}

TEST_CASE("European charsets, Q encoding and underscores", "[header]") {
  CHECK(decode_header_value("=?ISO-8859-1?Q?Caf=E9_cr=E8me?=") == "Café crème");
  CHECK(decode_header_value("=?ISO-8859-2?Q?=F5?=") == "ő");
  CHECK(decode_header_value("=?windows-1252?Q?5_=80?=") == "5 €");
  CHECK(decode_header_value("=?windows-1251?B?qA==?=") == "Ё");
}

TEST_CASE("whitespace between adjacent encoded words is dropped, other text kept", "[header]") {
  CHECK(decode_header_value("=?UTF-8?Q?a?= =?UTF-8?Q?b?=") == "ab");
  CHECK(decode_header_value("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=") == "ab");
  CHECK(decode_header_value("=?UTF-8?Q?a?= \t =?ISO-8859-1?Q?b?=") == "ab");
  CHECK(decode_header_value("Re: =?UTF-8?Q?a?= and =?UTF-8?Q?b?= end") == "Re: a and b end");
  CHECK(decode_header_value("=?UTF-8?Q?hello_?=world") == "hello world");
}

TEST_CASE("a multi-byte character split across two words survives", "[header]") {
  // "日本" in UTF-8 cut after the fourth byte, as some encoders do.
  CHECK(decode_header_value("=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKw=?=") == "日本");
}

TEST_CASE("unknown charsets and malformed words are left as written", "[header]") {
  CHECK(decode_header_value("=?x-no-such-charset?Q?abc?=") == "=?x-no-such-charset?Q?abc?=");
  CHECK(decode_header_value("=?UTF-8?X?abc?=") == "=?UTF-8?X?abc?=");
  CHECK(decode_header_value("=?UTF-8?B?not base64?=") == "=?UTF-8?B?not base64?=");
  CHECK(decode_header_value("=?UTF-8?B?@@@?=") == "=?UTF-8?B?@@@?=");
  CHECK(decode_header_value("=?UTF-8?Q?unterminated") == "=?UTF-8?Q?unterminated");
  // ICU converter options ("name,option=value") are not reachable from a message.
  CHECK(decode_header_value("=?ISO_2022,locale=ja?Q?x?=") == "=?ISO_2022,locale=ja?Q?x?=");
  CHECK(decode_header_value("plain subject") == "plain subject");
}

TEST_CASE("RFC 2231 language suffix on the charset", "[header]") {
  CHECK(decode_header_value("=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore");
}

TEST_CASE("raw ISO-2022-JP and raw 8-bit text", "[header]") {
  CHECK(decode_header_value("\x1b$B%F%9%H\x1b(B") == "テスト");
  CHECK(decode_header_value("caf\xc3\xa9") == "café");
  CHECK(decode_header_value("caf\xe9") == "caf\xef\xbf\xbd"); // invalid UTF-8 → U+FFFD
}

TEST_CASE("control characters cannot reach the terminal", "[header]") {
  CHECK(decode_header_value("a\x1b[31mred") == "a\xef\xbf\xbd[31mred");
  CHECK(decode_header_value("=?UTF-8?Q?a=1B=5B2Jb?=") == "a\xef\xbf\xbd[2Jb");
  CHECK(decode_header_value("=?UTF-8?Q?tab=09here?=") == "tab here");
  CHECK(decode_header_value("=?UTF-8?Q?c1=C2=9B?=") == "c1\xef\xbf\xbd");
}

TEST_CASE("unfolding and field lookup", "[header]") {
  std::string message = "Received: from x\r\n"
                        "Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n"
                        " =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n"
                        "FROM: \"Taro\" <taro@example.jp>\r\n"
                        "X-Long: one\r\n\ttwo\r\n"
                        "\r\n"
                        "Subject: in the body\r\n";
  std::string_view head = spool::header_block(message);
  CHECK(head.find("in the body") == std::string_view::npos);
  CHECK(spool::header_field(head, "subject") == "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?= =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=");
  CHECK(decode_header_value(*spool::header_field(head, "Subject")) == "テストテスト");
  CHECK(spool::header_field(head, "From") == "\"Taro\" <taro@example.jp>");
  CHECK(spool::header_field(head, "X-Long") == "one\ttwo");
  CHECK_FALSE(spool::header_field(head, "Date"));
  CHECK_FALSE(spool::header_field(head, "Subj"));
  CHECK(spool::unfold_header("a\n b\r\n\tc\r\nd") == "a b\tc\r\nd");
}

TEST_CASE("header block with LF line ends and without a body", "[header]") {
  CHECK(spool::header_block("A: 1\nB: 2\n\nbody") == "A: 1\nB: 2\n");
  CHECK(spool::header_block("A: 1\nB: 2") == "A: 1\nB: 2");
  CHECK(spool::header_block("\nbody") == "");
}

TEST_CASE("charset_to_utf8 reports unknown charsets", "[header]") {
  CHECK(spool::charset_to_utf8("ISO-2022-JP", "\x1b$B%F%9%H\x1b(B") == "テスト");
  CHECK_FALSE(spool::charset_to_utf8("x-unknown-charset", "abc"));
  CHECK_FALSE(spool::charset_to_utf8("", "abc"));
}
