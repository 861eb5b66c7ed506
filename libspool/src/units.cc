// units.cc — size/age parsing and formatting.
#include "spool/units.h"

#include "spool/error.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <limits>

namespace spool {
namespace {

// Splits "123xyz" into 123 and "xyz"; throws unless the number part is non-empty.
std::pair<std::uint64_t, std::string> split_number(std::string_view text, const char* what) {
  std::size_t i = 0;
  std::uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    std::uint64_t digit = static_cast<std::uint64_t>(text[i] - '0');
    if (n > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
      throw Error(Errc::invalid_input, std::string("invalid ") + what + " '" + std::string(text) + "': too large");
    n = n * 10 + digit;
    ++i;
  }
  if (i == 0)
    throw Error(Errc::invalid_input, std::string("invalid ") + what + " '" + std::string(text) + "': expected a number");
  std::string unit(text.substr(i));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return {n, unit};
}

std::uint64_t checked_mul(std::uint64_t n, std::uint64_t m, std::string_view text, const char* what) {
  if (m != 0 && n > std::numeric_limits<std::uint64_t>::max() / m)
    throw Error(Errc::invalid_input, std::string("invalid ") + what + " '" + std::string(text) + "': too large");
  return n * m;
}

} // namespace

std::uint64_t parse_size(std::string_view text) {
  auto [n, unit] = split_number(text, "size");
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1ULL << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1ULL << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1ULL << 30;
  else if (unit == "t" || unit == "tb" || unit == "tib") mult = 1ULL << 40;
  else
    throw Error(Errc::invalid_input, "invalid size '" + std::string(text) + "': unit must be K, M, G or T");
  return checked_mul(n, mult, text, "size");
}

std::chrono::seconds parse_age(std::string_view text) {
  auto [n, unit] = split_number(text, "age");
  std::uint64_t mult = 0;
  if (unit == "s" || unit.empty()) mult = 1;
  else if (unit == "m") mult = 60;
  else if (unit == "h") mult = 3600;
  else if (unit == "d") mult = 86400;
  else if (unit == "w") mult = 7 * 86400;
  else
    throw Error(Errc::invalid_input, "invalid age '" + std::string(text) + "': unit must be s, m, h, d or w");
  std::uint64_t s = checked_mul(n, mult, text, "age");
  if (s > (1ULL << 40)) throw Error(Errc::invalid_input, "invalid age '" + std::string(text) + "': too large");
  return std::chrono::seconds(static_cast<long long>(s));
}

std::chrono::milliseconds parse_duration(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    auto [n, unit] = split_number(text.substr(0, text.size() - 2), "duration");
    if (!unit.empty() || n > (1ULL << 40))
      throw Error(Errc::invalid_input, "invalid duration '" + std::string(text) + "'");
    return std::chrono::milliseconds(static_cast<long long>(n));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(parse_age(text));
}

std::string format_size(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : (v < 100 ? "%.1f %s" : "%.0f %s"), v, units[u]);
  return buf;
}

std::string format_size_exact(std::uint64_t bytes) {
  static const char suffix[] = {'T', 'G', 'M', 'K'};
  for (int i = 0; i < 4; ++i) {
    std::uint64_t m = 1ULL << (10 * (4 - i));
    if (bytes != 0 && bytes % m == 0) return std::to_string(bytes / m) + suffix[i];
  }
  return std::to_string(bytes);
}

std::string format_utc(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string now_utc() { return format_utc(std::chrono::system_clock::now()); }

} // namespace spool
