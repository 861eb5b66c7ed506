// line_reader.h — framing of SMTP command lines. A line ends at LF; it is valid only as
// "<text>CRLF" with no other CR in it (RFC 5321 §2.3.8: no bare CR or LF). A line longer
// than max_command_line octets including CRLF (§4.5.3.1.4: 512) is not kept: the rest is
// skipped up to the next LF and reported as too long, so memory stays bounded whatever
// the client sends.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mh::smtp {

inline constexpr std::size_t max_command_line = 512;

class LineReader {
public:
  // `limit`: the longest line kept, CRLF included. The SMTP session reads with the
  // larger AUTH limit (RFC 4954 §4: 12288) and applies 512 to other commands itself.
  explicit LineReader(std::size_t limit = max_command_line) : limit_(limit) {}

  enum class Status { need_more, line, too_long, bare_line_ending };
  struct Result {
    Status status = Status::need_more;
    std::size_t consumed = 0;   // bytes of the input used
    std::string_view line;      // without CRLF; valid until the next call
  };

  // Looks for the next line in `in` (continuing a line begun in earlier calls).
  Result next(std::string_view in);
  // True while part of a line has been read.
  bool partial() const noexcept { return (!line_done_ && !line_.empty()) || overlong_; }

private:
  std::size_t limit_;
  std::string line_;
  bool overlong_ = false;
  bool line_done_ = false;
};

} // namespace mh::smtp
