// data_reader.h — the DATA phase of RFC 5321 as a byte-stream state machine.
// Only <CRLF>.<CRLF> ends the data (§4.1.1.4); the CRLF before the dot may be the one
// that ended the DATA command. A line starting with '.' loses that dot (§4.5.2).
// A bare LF or a bare CR anywhere (§2.3.8) marks the message as bad but does NOT end
// it: reading goes on to the real end, so nothing after a smuggled "\n.\n" can be taken
// as a new command ("SMTP smuggling"). Lines are handed on with LF endings (the Maildir
// convention); the size is counted as on the wire (CRLF = 2 bytes), dots unstuffed.
// Past the size limit, or once the message is bad, bytes are counted but not handed on.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace mh::smtp {

class DataReader {
public:
  using Emit = std::function<void(std::string_view)>;

  DataReader(std::uint64_t size_limit, Emit emit) : limit_(size_limit), emit_(std::move(emit)) {}

  // Consumes bytes up to and including the terminating ".\r\n"; returns how many were
  // used (all of `in` unless the end was found inside it).
  std::size_t feed(std::string_view in);

  bool finished() const noexcept { return state_ == State::done; }
  bool bare_line_ending() const noexcept { return bare_; }   // bare CR or LF seen
  bool too_big() const noexcept { return size_ > limit_; }
  std::uint64_t size() const noexcept { return size_; }      // wire size, dot-unstuffed
  // True while bytes are still handed on (not bad, not over the limit).
  bool emitting() const noexcept { return !bare_ && !too_big(); }

private:
  enum class State { line_start, dot, dot_cr, in_line, cr, done };

  void emit(std::string_view bytes, std::uint64_t wire_size);
  void flag_bare() noexcept { bare_ = true; }

  std::uint64_t limit_;
  Emit emit_;
  State state_ = State::line_start;
  std::uint64_t size_ = 0;
  bool bare_ = false;
};

} // namespace mh::smtp
