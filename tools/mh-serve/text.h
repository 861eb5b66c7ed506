// text.h — the small text helpers both protocol sessions use: verbs compared in upper
// case (commands are case-insensitive, RFC 5321 §2.4, RFC 1939 §3) and client-supplied
// text made safe for a log field.
#pragma once

#include <string>
#include <string_view>

namespace mh::text {

inline std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return out;
}

// A log field in double quotes: printable ASCII kept, '"', '\\' and anything else
// replaced by '?', cut at 300 octets, so a client cannot forge or flood log lines.
inline std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 300)) out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? static_cast<char>(c) : '?';
  return out + "\"";
}

} // namespace mh::text
