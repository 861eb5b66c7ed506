// text_util.cc — the helpers of text_util.h that ask the system: the clock, gmtime and
// the kernel's random pool.
#include "text_util.h"

#include <sys/random.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace spool::detail {

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
