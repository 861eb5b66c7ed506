// text_util.h — libspool-internal: the small text helpers several modules share, kept in
// one place so each exists once: ASCII-only case handling (whatever the locale), header
// field names, base64, and the dates and random tokens of the messages libspool writes.
// Any input is accepted; nothing here touches the disk.
#pragma once

#include <cstddef>
#include <cstdint>
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

// Whether `line` starts the header field `name`: the name in any case, then ':' at once
// (RFC 5322 §2.2; the obsolete space before the colon is not accepted).
inline bool starts_with_field(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' && iequals(line.substr(0, name.size()), name);
}

inline bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
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

// RFC 5322 §3.3 date-time in UTC, spelled out by hand so no locale can change it. An
// instant outside the years 1900..9999 is written as the epoch.
std::string format_date(std::int64_t unix_seconds);

// 2 × `bytes` upper-case hex digits (at most 64) from the kernel's random pool. Only
// uniqueness (Message-IDs) and unguessability (MIME boundaries) depend on it, so a
// starved pool falls back to time and pid rather than block or fail.
std::string random_hex(std::size_t bytes);

} // namespace spool::detail
