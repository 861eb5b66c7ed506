// data_reader.cc — DATA framing: end marker, dot-unstuffing, bare CR/LF detection.
// Runs of ordinary bytes are found with find_first_of and handed on in one piece, so a
// 30 MB message costs a few calls per line, not per byte.
#include "smtp/data_reader.h"

namespace mh::smtp {

void DataReader::emit(std::string_view bytes, std::uint64_t wire_size) {
  size_ += wire_size;
  if (emitting() && !bytes.empty()) emit_(bytes);
}

std::size_t DataReader::feed(std::string_view in) {
  std::size_t i = 0;
  while (i < in.size() && state_ != State::done) {
    const char c = in[i];
    switch (state_) {
    case State::line_start:
      if (c == '.') {
        state_ = State::dot;
        ++i;
      } else {
        state_ = State::in_line;
      }
      break;
    case State::dot:
      if (c == '\r') {
        state_ = State::dot_cr;
        ++i;
      } else {
        state_ = State::in_line;   // §4.5.2: the leading dot is removed
      }
      break;
    case State::dot_cr:
      if (c == '\n') {
        state_ = State::done;       // <CRLF>.<CRLF>
        ++i;
      } else {
        flag_bare();                // ".\r" + something: a bare CR
        emit("\r", 1);
        state_ = State::in_line;
      }
      break;
    case State::in_line: {
      std::size_t stop = in.find_first_of("\r\n", i);
      if (stop == std::string_view::npos) stop = in.size();
      emit(in.substr(i, stop - i), stop - i);
      i = stop;
      if (i == in.size()) break;
      if (in[i] == '\r') {
        state_ = State::cr;
      } else {
        // A bare LF is no line end: stay inside the line, so "\n.\n" ends nothing.
        flag_bare();
        emit("\n", 1);
      }
      ++i;
      break;
    }
    case State::cr:
      if (c == '\n') {
        emit("\n", 2);              // stored as LF, counted as CRLF
        state_ = State::line_start;
        ++i;
      } else {
        flag_bare();                // a CR not followed by LF
        emit("\r", 1);
        state_ = State::in_line;
      }
      break;
    case State::done:
      break;
    }
  }
  return i;
}

} // namespace mh::smtp
