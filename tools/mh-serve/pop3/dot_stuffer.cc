// dot_stuffer.cc — LF → CRLF, leading-dot doubling and the TOP cut, one line segment at a
// time (find('\n') runs at memchr speed, so a 30 MB message costs a few copies, not a
// per-byte state machine).
#include "pop3/dot_stuffer.h"

namespace mh::pop3 {

std::string DotStuffer::feed(std::string_view in) {
  std::string out;
  feed(in, out);
  return out;
}

void DotStuffer::feed(std::string_view in, std::string& out) {
  if (done_) return;
  // Most lines of a Maildir file end in a bare LF: ~1/30 of the bytes are added.
  out.reserve(out.size() + in.size() + in.size() / 16 + 8);
  std::size_t i = 0;
  while (i < in.size() && !done_) {
    if (at_line_start_) {
      if (in[i] == '.') out += '.';  // RFC 1939 §3: the original dot follows below
      at_line_start_ = false;
      line_length_ = 0;
      first_is_cr_ = false;
    }
    const std::size_t lf = in.find('\n', i);
    const std::size_t end = lf == std::string_view::npos ? in.size() : lf;
    if (end > i) {
      if (line_length_ == 0) first_is_cr_ = in[i] == '\r';
      line_length_ += end - i;
      out.append(in.substr(i, end - i));
      prev_cr_ = in[end - 1] == '\r';
    }
    if (lf == std::string_view::npos) break;
    if (!prev_cr_) out += '\r';
    out += '\n';
    prev_cr_ = false;
    at_line_start_ = true;
    end_of_line(line_length_ == 0 || (line_length_ == 1 && first_is_cr_));
    i = lf + 1;
  }
}

void DotStuffer::end_of_line(bool blank) {
  if (top_lines_ < 0) return;
  if (in_header_) {
    if (!blank) return;
    in_header_ = false;  // the blank line itself is sent; then the body lines count
    if (top_lines_ == 0) done_ = true;
    return;
  }
  if (++body_lines_ >= top_lines_) done_ = true;
}

std::string DotStuffer::finish() {
  std::string out;
  if (!at_line_start_) out = prev_cr_ ? "\n" : "\r\n";
  at_line_start_ = true;
  prev_cr_ = false;
  done_ = true;
  return out + ".\r\n";
}

} // namespace mh::pop3
