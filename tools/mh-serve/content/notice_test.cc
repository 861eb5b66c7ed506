// notice_test.cc — the bilingual virus notice (exact FAQ wording), the charset converters
// (expected bytes computed independently with Python's codecs) and the transfer encoders,
// checked by decoding their output with test_support.h's own decoders.
#include "content/notice.h"
#include "content/test_support.h"

#include <catch2/catch.hpp>

#include <string>

using namespace mh::content;
using mh::content::testing::decode_base64;
using mh::content::testing::decode_quoted_printable;

namespace {

const std::string katakana = "ウイルス";  // "virus": in every Japanese charset

// Splits at `eol`; the text after the last one is the last element ("" when it ends in eol).
std::vector<std::string> split_lines(std::string_view text, std::string_view eol) {
  std::vector<std::string> lines;
  for (std::size_t start = 0;;) {
    const auto end = text.find(eol, start);
    lines.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return lines;
    start = end + eol.size();
  }
}

// Printable ASCII and tabs only, no space or tab just before the line end.
bool qp_line_ok(std::string_view line) {
  for (unsigned char c : line)
    if (c != '\t' && (c < 0x20 || c >= 0x7f)) return false;
  return line.empty() || (line.back() != ' ' && line.back() != '\t');
}

std::string high_bytes() {
  std::string all;
  for (int b = 0x80; b < 0x100; ++b) all.push_back(static_cast<char>(b));
  return all;
}

} // namespace

TEST_CASE("notice_lines: the FAQ's English and Japanese lines", "[content][notice]") {
  const auto lines = notice_lines({"Eicar-Test-Signature.UNOFFICIAL", "eicar.com", "application/x-msdownload"});
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "[English] The virus Eicar-Test-Signature.UNOFFICIAL had been detected from eicar.com. "
                    "Executed processing : remove");
  CHECK(lines[1] == "[Japanese] ウイルス Eicar-Test-Signature.UNOFFICIAL が eicar.com から検出されました。 "
                    "実行された処理:remove");
}

TEST_CASE("notice_lines: a Japanese file name is written as it is", "[content][notice]") {
  const auto lines = notice_lines({"Win.Test.EICAR_HDB-1", "請求書.zip", "application/zip"});
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "[English] The virus Win.Test.EICAR_HDB-1 had been detected from 請求書.zip. Executed processing : remove");
  CHECK(lines[1] == "[Japanese] ウイルス Win.Test.EICAR_HDB-1 が 請求書.zip から検出されました。 実行された処理:remove");
}

TEST_CASE("notice_lines: a part without a name is called by its type", "[content][notice]") {
  const auto lines = notice_lines({"Eicar-Test-Signature.UNOFFICIAL", "", "application/octet-stream"});
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "[English] The virus Eicar-Test-Signature.UNOFFICIAL had been detected from "
                    "(unnamed application/octet-stream part). Executed processing : remove");
  CHECK(lines[1] == "[Japanese] ウイルス Eicar-Test-Signature.UNOFFICIAL が (unnamed application/octet-stream part) "
                    "から検出されました。 実行された処理:remove");
}

TEST_CASE("encode_charset/decode_charset: UTF-8 and the Japanese charsets", "[content][notice]") {
  struct Case {
    const char* charset;
    std::string bytes;  // "ウイルス" in it, from Python's codecs
  };
  const Case cases[] = {
      {"UTF-8", katakana},
      {"utf-8", katakana},
      {"ISO-2022-JP", "\x1b$B%&%$%k%9\x1b(B"},
      {"iso-2022-jp", "\x1b$B%&%$%k%9\x1b(B"},
      {"Shift_JIS", "\x83" "E\x83" "C\x83\x8b\x83X"},
      {"EUC-JP", "\xa5\xa6\xa5\xa4\xa5\xeb\xa5\xb9"},
  };
  for (const Case& c : cases) {
    INFO(c.charset);
    const auto encoded = encode_charset(katakana, c.charset);
    REQUIRE(encoded);
    CHECK(*encoded == c.bytes);
    CHECK(decode_charset(c.bytes, c.charset) == katakana);
  }
}

TEST_CASE("encode_charset: ISO-2022-JP text returns to ASCII before it ends", "[content][notice]") {
  // RFC 1468: a line (and the text) must end in ASCII mode, or the next line is garbled.
  const std::string line = notice_lines({"EICAR", "請求書.zip", "application/zip"})[1];
  const auto encoded = encode_charset(line, "ISO-2022-JP");
  REQUIRE(encoded);
  CHECK(encoded->find_first_of(high_bytes()) == std::string::npos);  // 7bit: the part may stay 7bit
  const auto ends_ascii = encode_charset("請求書", "ISO-2022-JP");
  REQUIRE(ends_ascii);
  CHECK(ends_ascii->size() > 3);
  CHECK(ends_ascii->substr(ends_ascii->size() - 3) == "\x1b(B");
  CHECK(decode_charset(*encoded, "ISO-2022-JP") == line);
}

TEST_CASE("encode_charset: nullopt when the charset cannot carry the text or is unknown", "[content][notice]") {
  CHECK_FALSE(encode_charset(katakana, "us-ascii"));
  CHECK_FALSE(encode_charset(katakana, "ISO-8859-1"));
  CHECK_FALSE(encode_charset(katakana, "ISO-8859-15"));
  CHECK_FALSE(encode_charset("plain", "x-no-such-charset"));
  CHECK_FALSE(decode_charset("plain", "x-no-such-charset"));
  // What they can carry converts: the English line alone is ASCII.
  CHECK(encode_charset("[English] The virus X", "us-ascii") == "[English] The virus X");
  CHECK(encode_charset("café", "ISO-8859-1") == "caf\xe9");
  CHECK(decode_charset("caf\xe9", "ISO-8859-1") == "café");
}

TEST_CASE("encode_charset: an invisible character is not dropped silently", "[content][notice]") {
  // ICU's STOP callback skips unmappable default-ignorable code points (soft hyphen,
  // zero-width space) instead of failing: found by tests/fuzz/mime_names
  // (corpus/mime_names/default_ignorable). Either refused or kept, never lost.
  for (const char* charset : {"EUC-JP", "ISO-2022-JP", "Shift_JIS", "us-ascii"}) {
    for (const std::string text : {"a\u00adb", "a\u200bb"}) {
      INFO(charset << " " << text);
      const auto bytes = encode_charset(text, charset);
      if (bytes) CHECK(decode_charset(*bytes, charset) == text);
    }
  }
}

TEST_CASE("decode_charset: nullopt for bytes that are not valid in the charset", "[content][notice]") {
  CHECK_FALSE(decode_charset("a\xff" "b", "UTF-8"));
  CHECK_FALSE(decode_charset("\xc3", "UTF-8"));           // cut sequence
  CHECK_FALSE(decode_charset("\xed\xa0\x80", "UTF-8"));   // a surrogate
  CHECK_FALSE(decode_charset("\x83", "Shift_JIS"));       // lead byte without its trail
}

TEST_CASE("encode_base64_lines: 76-column lines in the part's line end", "[content][notice]") {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes.push_back(static_cast<char>(i * 7 + 3));
  for (std::string_view eol : {std::string_view("\r\n"), std::string_view("\n")}) {
    const std::string text = encode_base64_lines(bytes, eol);
    CHECK(decode_base64(text) == bytes);
    const auto lines = split_lines(text, eol);
    REQUIRE(lines.size() >= 2);
    CHECK(lines.back().empty());  // ends with a line end: the original text follows
    for (std::size_t i = 0; i + 2 < lines.size(); ++i) CHECK(lines[i].size() == 76);
    CHECK(lines[lines.size() - 2].size() <= 76);
    if (eol == "\n") CHECK(text.find('\r') == std::string::npos);
  }
  CHECK(decode_base64(encode_base64_lines("a", "\r\n")) == "a");
  CHECK(decode_base64(encode_base64_lines("ab", "\r\n")) == "ab");
  CHECK(encode_base64_lines("abc", "\r\n") == "YWJj\r\n");
}

TEST_CASE("encode_quoted_printable: '=', 8-bit bytes, trailing space, soft breaks", "[content][notice]") {
  CHECK(encode_quoted_printable("a=b", "\r\n").substr(0, 5) == "a=3Db");
  const std::string utf8 = encode_quoted_printable("あ", "\r\n");
  CHECK(utf8.substr(0, 9) == "=E3=81=82");
  for (std::string_view eol : {std::string_view("\r\n"), std::string_view("\n")}) {
    INFO("eol size " << eol.size());
    // Hard line ends stay line ends; a space before one is encoded (RFC 2045 rule 3).
    const std::string text = std::string("x \t") + std::string(eol) + "end";
    const std::string qp = encode_quoted_printable(text, eol);
    CHECK(decode_quoted_printable(qp) == text);
    CHECK(qp.find(std::string(" ") + std::string(eol)) == std::string::npos);
    CHECK(qp.find(std::string("\t") + std::string(eol)) == std::string::npos);

    // Long lines of every kind of byte: soft breaks keep every line ≤ 76 octets.
    std::string long_text;
    for (int i = 0; i < 3; ++i) {
      long_text += std::string(200, 'a') + "=" + notice_lines({"EICAR", "請求書.zip", "application/zip"})[1];
      for (int b = 0; b < 256; ++b)
        if (b != '\r' && b != '\n') long_text.push_back(static_cast<char>(b));
      long_text += " ";  // trailing space at each line end
      long_text += eol;
    }
    const std::string encoded = encode_quoted_printable(long_text, eol);
    CHECK(decode_quoted_printable(encoded) == long_text);
    for (const std::string& line : split_lines(encoded, eol)) {
      CHECK(line.size() <= 76);
      INFO(line);
      CHECK(qp_line_ok(line));
    }
  }
}
