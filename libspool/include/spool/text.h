// text.h — the one UTF-8 validator of mailhost, and the bound on free text typed by
// people (SPEC §8 "Spool files are bounded and strict"). libspool checks spool files with
// it as they load (78 on a bad byte) and the tools check every command-line value (65),
// so neither can store or print what a JSON writer would refuse. Pure functions: any
// input is accepted, nothing touches the disk; check_free_text() throws Error(invalid_input).
#pragma once

#include "spool/error.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace spool {

// Length of the well-formed UTF-8 sequence at s[i] (i < s.size()), or 0 when there is
// none (RFC 3629: no overlong forms, no surrogates U+D800..DFFF — so CESU-8 and the bytes
// Python's surrogateescape makes are refused — nothing past U+10FFFF).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size() || b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  return n;
}

// The offset of the first byte that starts no well-formed sequence, or npos.
inline std::size_t utf8_error_at(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

inline bool utf8_ok(std::string_view s) { return utf8_error_at(s) == std::string_view::npos; }

// Characters (code points) of valid UTF-8 text.
inline std::size_t utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++count;
  return count;
}

// Free text from the command line (a display name, a suspension reason): one line of
// UTF-8, at most this many characters. A bound so a pasted file or a runaway script
// cannot become a 120,000-character name in account.yaml and every listing.
inline constexpr std::size_t max_free_text = 256;

// Throws Error(invalid_input) "WHAT is not valid UTF-8" / "WHAT is longer than 256
// characters (N)" / "WHAT contains a control character".
inline void check_free_text(std::string_view value, const std::string& what) {
  if (!utf8_ok(value)) throw Error(Errc::invalid_input, what + " is not valid UTF-8");
  if (const std::size_t n = utf8_length(value); n > max_free_text)
    throw Error(Errc::invalid_input, what + " is longer than " + std::to_string(max_free_text) + " characters (" +
                                         std::to_string(n) + ")");
  for (char c : value)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      throw Error(Errc::invalid_input, what + " contains a control character (it is one line of text)");
}

} // namespace spool
