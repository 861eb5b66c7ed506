// units.h — sizes and ages as admins type them (SPEC §9): binary sizes "500M", "2G",
// "1024" (K = 1024, M = 1024², G = 1024³, T = 1024⁴; optional trailing "B"/"iB"), and
// ages/durations "30d", "12h", "90s", "2w". Parsers throw Error(invalid_input).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace spool {

std::uint64_t parse_size(std::string_view text);
std::chrono::seconds parse_age(std::string_view text);
// Durations in config may also be given in milliseconds ("250ms").
std::chrono::milliseconds parse_duration(std::string_view text);

// "1.5 MiB", "512 B" — for people.
std::string format_size(std::uint64_t bytes);
// The shortest exact form parse_size() reads back: "2G", "500M", "1234".
std::string format_size_exact(std::uint64_t bytes);

// RFC 3339 UTC timestamp, e.g. 2026-11-28T03:40:00Z.
std::string format_utc(std::chrono::system_clock::time_point t);
std::string now_utc();

} // namespace spool
