// units_test.cc — sizes, ages and durations as admins type them (SPEC §9, units.h):
// binary units (K = 1024), exact round trips through format_size_exact, overflow and
// bad units rejected with Errc::invalid_input and a message quoting the input.
#include "spool/units.h"

#include "test_support.h"

#include <limits>

using namespace std::chrono_literals;
using spool::Errc;
using mhtest::error_from;

namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;
constexpr std::uint64_t TiB = 1024 * GiB;

template <class Parse>
std::string rejection(Parse parse, const std::string& input) {
  spool::Error e = error_from([&] { (void)parse(input); });
  CHECK(e.code() == Errc::invalid_input);
  return e.what();
}

std::string size_rejection(const std::string& input) { return rejection(spool::parse_size, input); }
std::string age_rejection(const std::string& input) { return rejection(spool::parse_age, input); }
std::string duration_rejection(const std::string& input) { return rejection(spool::parse_duration, input); }

} // namespace

TEST_CASE("units: parse_size is binary, K = 1024", "[units]") {
  CHECK(spool::parse_size("0") == 0);
  CHECK(spool::parse_size("1024") == 1024);
  CHECK(spool::parse_size("7B") == 7);
  CHECK(spool::parse_size("1K") == KiB);
  CHECK(spool::parse_size("1k") == KiB);
  CHECK(spool::parse_size("10KiB") == 10 * KiB);
  CHECK(spool::parse_size("500M") == 500 * MiB);
  CHECK(spool::parse_size("5MB") == 5 * MiB);
  CHECK(spool::parse_size("2G") == 2 * GiB);
  CHECK(spool::parse_size("3gib") == 3 * GiB);
  CHECK(spool::parse_size("1T") == TiB);
  CHECK(spool::parse_size("30M") == 31457280); // the SMTP message size limit of SPEC §10
}

TEST_CASE("units: parse_size rejects bad units and non-numbers", "[units]") {
  CHECK(size_rejection("12X") == "invalid size '12X': unit must be K, M, G or T");
  CHECK(size_rejection("1.5G") == "invalid size '1.5G': unit must be K, M, G or T");
  CHECK(size_rejection("1 M") == "invalid size '1 M': unit must be K, M, G or T");
  CHECK(size_rejection("1P") == "invalid size '1P': unit must be K, M, G or T");
  CHECK(size_rejection("") == "invalid size '': expected a number");
  CHECK(size_rejection("M") == "invalid size 'M': expected a number");
  CHECK(size_rejection("-1") == "invalid size '-1': expected a number");
  CHECK(size_rejection(" 1") == "invalid size ' 1': expected a number");
}

TEST_CASE("units: parse_size detects overflow instead of wrapping", "[units]") {
  constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  CHECK(spool::parse_size("18446744073709551615") == max);
  CHECK(size_rejection("18446744073709551616") == "invalid size '18446744073709551616': too large");
  CHECK(size_rejection("99999999999999999999999") == "invalid size '99999999999999999999999': too large");
  CHECK(spool::parse_size("16777215T") == 16777215 * TiB);
  CHECK(size_rejection("16777216T") == "invalid size '16777216T': too large"); // exactly 2^64
  CHECK(size_rejection("17179869184G") == "invalid size '17179869184G': too large");
}

TEST_CASE("units: parse_age reads N[smhdw], bare numbers are seconds", "[units]") {
  CHECK(spool::parse_age("45") == 45s);
  CHECK(spool::parse_age("90s") == 90s);
  CHECK(spool::parse_age("5m") == 5min);
  CHECK(spool::parse_age("12h") == 12h);
  CHECK(spool::parse_age("30d") == 30 * 24h);
  CHECK(spool::parse_age("2w") == 14 * 24h);
  CHECK(spool::parse_age("2W") == 14 * 24h);
  CHECK(age_rejection("30y") == "invalid age '30y': unit must be s, m, h, d or w");
  CHECK(age_rejection("1.5d") == "invalid age '1.5d': unit must be s, m, h, d or w");
  CHECK(age_rejection("d") == "invalid age 'd': expected a number");
  CHECK(age_rejection("") == "invalid age '': expected a number");
  CHECK(age_rejection("99999999999999w") == "invalid age '99999999999999w': too large");
  CHECK(age_rejection("99999999999999999999d") == "invalid age '99999999999999999999d': too large");
}

TEST_CASE("units: parse_duration adds milliseconds", "[units]") {
  CHECK(spool::parse_duration("250ms") == 250ms);
  CHECK(spool::parse_duration("0ms") == 0ms);
  CHECK(spool::parse_duration("5s") == 5000ms);
  CHECK(spool::parse_duration("5") == 5000ms);
  CHECK(spool::parse_duration("2m") == 120000ms);
  CHECK(duration_rejection("10xms") == "invalid duration '10xms'");
  CHECK(duration_rejection("ms") == "invalid age 'ms': expected a number");
  CHECK(duration_rejection("1.5s") == "invalid age '1.5s': unit must be s, m, h, d or w");
}

TEST_CASE("units: format_size is for people", "[units]") {
  CHECK(spool::format_size(0) == "0 B");
  CHECK(spool::format_size(512) == "512 B");
  CHECK(spool::format_size(1023) == "1023 B");
  CHECK(spool::format_size(KiB) == "1.00 KiB");
  CHECK(spool::format_size(1536) == "1.50 KiB");
  CHECK(spool::format_size(31457280) == "30.0 MiB");
  CHECK(spool::format_size(500 * MiB) == "500 MiB");
  CHECK(spool::format_size(2 * GiB) == "2.00 GiB");
  CHECK(spool::format_size(3 * TiB) == "3.00 TiB");
  CHECK(spool::format_size(2048 * TiB) == "2048 TiB"); // no unit above TiB
}

TEST_CASE("units: format_size_exact is the shortest form parse_size reads back", "[units]") {
  CHECK(spool::format_size_exact(0) == "0");
  CHECK(spool::format_size_exact(1234) == "1234");
  CHECK(spool::format_size_exact(1536) == "1536");
  CHECK(spool::format_size_exact(KiB) == "1K");
  CHECK(spool::format_size_exact(1536 * KiB) == "1536K");
  CHECK(spool::format_size_exact(500 * MiB) == "500M");
  CHECK(spool::format_size_exact(2 * GiB) == "2G");
  CHECK(spool::format_size_exact(TiB) == "1T");

  const std::uint64_t samples[] = {0, 1, 1023, 1024, 1025, 31457280, 500 * MiB, 2 * GiB, 3 * TiB,
                                   16777215 * TiB, std::numeric_limits<std::uint64_t>::max()};
  for (std::uint64_t n : samples) {
    INFO("bytes: " << n);
    CHECK(spool::parse_size(spool::format_size_exact(n)) == n);
  }
}

TEST_CASE("units: format_utc is RFC 3339 in UTC", "[units]") {
  CHECK(spool::format_utc(std::chrono::system_clock::time_point{}) == "1970-01-01T00:00:00Z");
  CHECK(spool::format_utc(std::chrono::system_clock::time_point{1795837200s}) == "2026-11-28T03:40:00Z");
  const std::string now = spool::now_utc();
  CHECK(now.size() == 20);
  CHECK(now.back() == 'Z');
}
