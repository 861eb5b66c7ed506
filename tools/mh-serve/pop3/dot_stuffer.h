// dot_stuffer.h — the POP3 transfer encoding of a message (RFC 1939 §3, "byte-stuffing"):
// a Maildir file (LF line ends, or CRLF) in, the multi-line response body out. Streaming:
// feed() takes chunks of any size and split points (a line, or a CR LF pair, may straddle
// two chunks), so memory stays flat whatever the message size; finish() ends the response.
// Trusts nothing in the bytes: any content, NUL and bare CR included, comes out as valid
// POP3 (bare CR is passed through; it ends no line).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mh::pop3 {

class DotStuffer {
public:
  // top_lines < 0: the whole message (RETR). Otherwise TOP (RFC 1939 §7): the header,
  // the blank line that ends it, then at most top_lines body lines.
  explicit DotStuffer(long top_lines = -1) : top_lines_(top_lines) {}

  // Converts LF to CRLF (a CRLF stays as it is), doubles a '.' that starts a line, and
  // drops everything past the TOP limit. Returns the bytes to send for this chunk.
  std::string feed(std::string_view chunk);
  // The same, appending to `out`: a caller streaming a large message reuses one buffer.
  void feed(std::string_view chunk, std::string& out);
  // The end of the response: a CRLF when the message did not end with a line end (the
  // terminator must stand on its own line), then ".\r\n".
  std::string finish();
  // True once the TOP limit is reached: the caller may stop reading the file.
  bool done() const noexcept { return done_; }

private:
  void end_of_line(bool blank);

  long top_lines_;
  long body_lines_ = 0;
  bool in_header_ = true;
  bool at_line_start_ = true;   // the next byte begins a line
  bool prev_cr_ = false;        // the last byte sent was CR (its LF may come next chunk)
  bool first_is_cr_ = false;    // the current line began with CR ("\r\n" is blank too)
  std::uint64_t line_length_ = 0;
  bool done_ = false;
};

} // namespace mh::pop3
