// mime_names.cc — libFuzzer target over the file-name decoder and the notice writer of
// content checking: decode_file_name (RFC 2231 continuations and charsets, RFC 2047 words)
// on a Content-Disposition and a Content-Type value (the input split at its first NUL),
// then notice_lines on the name and the charset / transfer encoders on the lines.
// Besides "no crash":
//  * the name is valid UTF-8 (spool/text.h), at most 255 bytes, without C0, DEL or C1
//    controls: it is shown in the notice and written to the log;
//  * the notice is two lines holding the name, without line ends;
//  * a line a charset accepts decodes back to itself; ISO-2022-JP stays 7-bit and ends in
//    ASCII (RFC 1468); base64 and quoted-printable decode back (test_support.h's
//    decoders) in lines of at most 76 octets.
#include "content/inspection.h"
#include "content/notice.h"
#include "content/test_support.h"

#include <spool/text.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

void require(bool ok, const char* what, std::string_view value) {
  if (ok) return;
  std::fprintf(stderr, "mime_names: %s: \"%.*s\"\n", what, static_cast<int>(value.size()), value.data());
  __builtin_trap();
}

bool has_control(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    // U+0080..U+009F: C2 80..C2 9F in UTF-8.
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0) return true;
  }
  return false;
}

void check_name(std::string_view name) {
  require(spool::utf8_ok(name), "file name is not UTF-8", name);
  require(name.size() <= 255, "file name over 255 bytes", name);
  require(!has_control(name), "control character in file name", name);
}

void check_lines_ok(std::string_view eol, std::string_view encoded, const std::string& line) {
  for (std::size_t start = 0; start < encoded.size();) {
    const auto end = encoded.find(eol, start);
    const std::size_t length = (end == std::string_view::npos ? encoded.size() : end) - start;
    require(length <= 76, "encoded line over 76 octets", line);
    if (end == std::string_view::npos) break;
    start = end + eol.size();
  }
}

void check_charsets(const std::string& line) {
  for (const char* charset : {"UTF-8", "ISO-2022-JP", "Shift_JIS", "EUC-JP", "us-ascii", "ISO-8859-1"}) {
    const auto bytes = mh::content::encode_charset(line, charset);
    if (!bytes) continue;
    require(mh::content::decode_charset(*bytes, charset) == line, charset, line);
    if (std::string_view(charset) == "ISO-2022-JP") {
      for (unsigned char c : *bytes) require(c < 0x80, "ISO-2022-JP with an 8-bit byte", line);
      const auto escape = bytes->rfind('\x1b');
      require(escape == std::string::npos || bytes->compare(escape, 3, "\x1b(B") == 0, "ISO-2022-JP not back in ASCII", line);
    }
  }
}

void check_transfer_encodings(const std::string& line) {
  for (std::string_view eol : {std::string_view("\r\n"), std::string_view("\n")}) {
    const std::string text = line + std::string(eol);
    const std::string base64 = mh::content::encode_base64_lines(text, eol);
    require(mh::content::testing::decode_base64(base64) == text, "base64 does not decode back", line);
    check_lines_ok(eol, base64, line);
    const std::string qp = mh::content::encode_quoted_printable(text, eol);
    require(mh::content::testing::decode_quoted_printable(qp) == text, "quoted-printable does not decode back", line);
    check_lines_ok(eol, qp, line);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string_view disposition = input.substr(0, nul);
  const std::string_view type = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  const std::string name = mh::content::decode_file_name(disposition, type);
  check_name(name);
  const auto lines = mh::content::notice_lines({"Eicar-Test-Signature.UNOFFICIAL", name, "application/octet-stream"});
  require(lines.size() == 2, "notice is not two lines", name);
  for (const std::string& line : lines) {
    require(line.find_first_of("\r\n") == std::string::npos, "line end inside a notice line", line);
    require(spool::utf8_ok(line), "notice line is not UTF-8", line);
    if (!name.empty()) require(line.find(name) != std::string::npos, "notice line without the file name", line);
    check_charsets(line);
    check_transfer_encodings(line);
  }
  return 0;
}
