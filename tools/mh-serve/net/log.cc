// log.cc — serialized, unbuffered lines on stderr.
#include "net/log.h"

#include <unistd.h>

#include <mutex>

namespace mh::net {
namespace {
std::mutex log_mutex;
}

void log_line(std::string_view line) {
  std::string text = "mh-serve: ";
  text.append(line);
  text += '\n';
  std::lock_guard lock(log_mutex);
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(2, p, left);
    if (n <= 0) return;  // stderr closed: nothing sensible left to do
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void log_lines(std::string_view prefix, const std::vector<std::string>& lines) {
  for (const auto& l : lines) log_line(std::string(prefix) + l);
}

} // namespace mh::net
