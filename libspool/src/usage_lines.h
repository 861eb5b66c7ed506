// usage_lines.h — libspool-internal: the "<bytes> <count>\n" lines that Maildir++
// maildirsize and the domain's usage record (domain_usage.h) are made of.
#pragma once

#include "spool/quota.h"

#include <optional>
#include <string>
#include <string_view>

namespace spool::detail {

// The sum of every line; nullopt when a line is not "<n> <n>\n" (a partial last line,
// garbage) or the total is negative: the file must then be rebuilt.
std::optional<Usage> sum_usage_lines(std::string_view text);

std::string usage_line(std::int64_t bytes, std::int64_t messages);
inline std::string usage_line(const Usage& u) {
  return usage_line(static_cast<std::int64_t>(u.bytes), static_cast<std::int64_t>(u.messages));
}

} // namespace spool::detail
