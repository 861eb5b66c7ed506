// header_decode.h — message header fields made readable for people (mh-purge --list,
// logs): the header block is cut at the first empty line, a field is found by name and
// unfolded (RFC 5322 §2.2.3), and RFC 2047 encoded-words are decoded to UTF-8 with ICU
// converters (ISO-2022-JP, Shift_JIS, EUC-JP, UTF-8, ISO-8859-x, windows-125x, ...).
// Nothing here trusts the message: every result is valid UTF-8 with control characters
// made harmless (so a Subject cannot drive the terminal), and an unknown charset or a
// malformed encoded-word is shown as it was written instead of failing. No I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

// How much of a message is read to show its header (a header longer than this is cut;
// From/Subject sit near the top in practice). Keeps a listing of huge mail cheap.
inline constexpr std::size_t max_header_block = 64 * 1024;

// The header block: everything before the first empty line (CRLF or LF line ends), or
// all of `message` when it has no body separator.
std::string_view header_block(std::string_view message);

// The value of the first field called `name` (case-insensitive) in `head`, unfolded
// (line breaks before continuation whitespace removed) and trimmed; still encoded.
std::optional<std::string> header_field(std::string_view head, std::string_view name);

// Removes CRLF/LF that are followed by a space or tab (header folding).
std::string unfold_header(std::string_view value);

// RFC 2047: decodes every =?charset?B|Q?text?= word (charset may carry an RFC 2231
// "*lang" suffix); whitespace between two adjacent encoded words is dropped (§6.2) and
// their bytes are joined before conversion, so a character split across words survives.
// Undecodable words stay as written. Unencoded 8-bit text is taken as UTF-8 (invalid
// bytes → U+FFFD); raw ISO-2022-JP escapes in unencoded text (old Japanese mailers) are
// converted too. Tabs and line breaks become spaces, other controls U+FFFD.
std::string decode_header_value(std::string_view value);

// `bytes` in `charset` converted to UTF-8 (malformed input → U+FFFD); nullopt when ICU
// has no converter of that name.
std::optional<std::string> charset_to_utf8(std::string_view charset, std::string_view bytes);

} // namespace spool
