// log.h — mh-serve's log: one line per event on stderr (systemd's journal picks it up),
// written whole under a mutex so lines from different threads never interleave.
#pragma once

#include <string_view>
#include <vector>
#include <string>

namespace mh::net {

void log_line(std::string_view line);                 // "mh-serve: <line>\n"
void log_lines(std::string_view prefix, const std::vector<std::string>& lines);

} // namespace mh::net
