// text_util.h — libspool-internal: the small text helpers several modules share, kept in
// one place so each exists once: ASCII-only case handling (whatever the locale), white
// space and trimming, header field names, the halves of an address, UTF-8 validity,
// base64 and hex digits, text shown in error messages, and the dates and random tokens
// of the messages libspool writes (writing header fields: mail_text.h).
// Any input is accepted; nothing here touches the disk.
#pragma once

#include "spool/text.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool::detail {

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// ASCII case-insensitive equality: the comparison RFC 5322 field names, RFC 2047
// charsets and mail domains ask for; other bytes must match exactly.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// iequals() on the start or the end of `s`: local parts ("owner-", "-request") and
// field lines are matched whatever their case.
inline bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}
inline bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

// RFC 5234 WSP (space, tab): what continues a folded header line and separates words.
inline bool is_wsp(char c) { return c == ' ' || c == '\t'; }
// WSP or a line-end byte: what is trimmed off the ends of a header field value, whose
// last line may still carry its CR (or LF).
inline bool is_line_space(char c) { return is_wsp(c) || c == '\r' || c == '\n'; }

// `s` without line space (is_line_space) at either end.
inline std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_line_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_line_space(s.back())) s.remove_suffix(1);
  return s;
}

// Whether `line` starts the header field `name`: the name in any case, then ':' at once
// (RFC 5322 §2.2; the obsolete space before the colon is not accepted).
inline bool starts_with_field(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' && iequals(line.substr(0, name.size()), name);
}

// The halves of an address split at its last '@' (a quoted local part may hold one):
// without an '@' all of it is the local part and the domain is "".
inline std::string_view local_part(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? address : address.substr(0, at);
}
inline std::string_view domain_part(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

inline bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// UTF-8 validity lives in the public spool/text.h (the tools use it too): one validator.
using spool::utf8_ok;
using spool::utf8_sequence;

// The value of a hex digit in either case ("=XX" of RFC 2045 §6.7 and RFC 2047 §4.2), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = ascii_lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// RFC 2045 §6.8 base64 with '=' padding and no line breaks (callers fold as they need).
inline std::string base64(std::string_view bytes) {
  static constexpr char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto byte = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[k])); };
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += chars[(v >> 18) & 63];
    out += chars[(v >> 12) & 63];
    out += chars[(v >> 6) & 63];
    out += chars[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = byte(i) << 16;
    if (i + 1 < bytes.size()) v |= byte(i + 1) << 8;
    out += chars[(v >> 18) & 63];
    out += chars[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? chars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// What base64_decoded() does with a character outside the base64 alphabet: a body skips
// it (RFC 2045 §6.8: line breaks, and anything else, are ignored); an RFC 2047 §4.1
// encoded word may hold none, so there it makes the word undecodable.
enum class Base64Stray { skip, reject };

// base64 decoded up to the first '=' (missing padding is tolerated); nullopt only for a
// stray character when `stray` is reject.
std::optional<std::string> base64_decoded(std::string_view text, Base64Stray stray);

// Text from a file or the user, for an error message: control bytes (NUL and DEL
// included) as \xNN, so it cannot drive the terminal; cut to 80 characters with "...".
std::string printable(std::string_view s);

// RFC 5322 §3.3 date-time in UTC, spelled out by hand so no locale can change it. An
// instant outside the years 1900..9999 is written as the epoch.
std::string format_date(std::int64_t unix_seconds);

// 2 × `bytes` upper-case hex digits (at most 64) from the kernel's random pool. Only
// uniqueness (Message-IDs) and unguessability (MIME boundaries) depend on it, so a
// starved pool falls back to time and pid rather than block or fail.
std::string random_hex(std::size_t bytes);

} // namespace spool::detail
