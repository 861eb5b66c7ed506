// notice.h — the bilingual virus notice (SPEC §8, the FAQ's exact wording) and how it is
// written into a text part: converted to the part's charset with ICU, then put in the
// part's transfer encoding. Pure functions, unit-tested alone.
#pragma once

#include "content/inspection.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::content {

// The two lines for one finding, UTF-8, without line ends:
//   [English] The virus NAME had been detected from FILE. Executed processing : remove
//   [Japanese] ウイルス NAME が FILE から検出されました。 実行された処理:remove
// FILE is the file name, or "(unnamed TYPE part)" for a part without one.
std::vector<std::string> notice_lines(const Finding& finding);

// UTF-8 text in `charset` (ICU converter names and aliases: "ISO-2022-JP", "Shift_JIS",
// "EUC-JP", "UTF-8", "ISO-8859-1", …); nullopt when the charset is unknown or cannot
// represent every character (no substitution: the caller then relabels the part UTF-8).
std::optional<std::string> encode_charset(std::string_view utf8, std::string_view charset);
// Bytes in `charset` to UTF-8; nullopt when unknown or not valid in that charset.
std::optional<std::string> decode_charset(std::string_view bytes, std::string_view charset);

// Transfer encodings (RFC 2045): base64 in 76-column lines, quoted-printable with soft
// breaks; `eol` is the line end the part uses ("\r\n" or "\n").
std::string encode_base64_lines(std::string_view bytes, std::string_view eol);
std::string encode_quoted_printable(std::string_view bytes, std::string_view eol);

} // namespace mh::content
