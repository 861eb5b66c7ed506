// text_util.cc — the helpers of text_util.h too long to inline (base64 decoding, text
// for error messages) and those that ask the system: the clock, gmtime and the kernel's
// random pool.
#include "text_util.h"

#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace spool::detail {
namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

} // namespace

std::optional<std::string> base64_decoded(std::string_view text, Base64Stray stray) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t bits = 0;
  int nbits = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = base64_value(c);
    if (v < 0) {
      if (stray == Base64Stray::reject) return std::nullopt;
      continue;
    }
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out += static_cast<char>((bits >> nbits) & 0xff);
    }
  }
  return out;
}

std::string printable(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

std::string format_date(std::int64_t unix_seconds) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  struct tm tm {};
  if (::gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 1900) {
    const std::time_t zero = 0;
    ::gmtime_r(&zero, &tm);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
                months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string random_hex(std::size_t bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  unsigned char buf[32];
  if (bytes > sizeof buf) bytes = sizeof buf;
  if (::getrandom(buf, bytes, GRND_NONBLOCK) != static_cast<ssize_t>(bytes)) {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    std::uint64_t x = static_cast<std::uint64_t>(ts.tv_nsec) ^ (static_cast<std::uint64_t>(ts.tv_sec) << 20) ^
                      (static_cast<std::uint64_t>(::getpid()) << 40);
    for (std::size_t i = 0; i < bytes; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      buf[i] = static_cast<unsigned char>(x >> 56);
    }
  }
  std::string out;
  out.reserve(2 * bytes);
  for (std::size_t i = 0; i < bytes; ++i) {
    out += digits[buf[i] >> 4];
    out += digits[buf[i] & 0x0f];
  }
  return out;
}

} // namespace spool::detail
