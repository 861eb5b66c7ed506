// mail_text.h — libspool-internal: writing the header fields and bodies of the mails
// libspool composes itself (list mail, vacation replies, bounces), in one place so every
// one folds and encodes alike. Text from outside (a Subject, an envelope address, a
// display name) is made one line of valid UTF-8 before it reaches a field; fields are
// folded at spaces and non-ASCII text goes out as RFC 2047 B-encoded UTF-8 words. The
// line end is the caller's: LF for mail that is stored or queued, CRLF for a reply
// handed to SMTP. Any input is accepted; nothing here touches the disk.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace spool::detail {

// RFC 2047 §2: a line holding encoded words is at most 76 characters (RFC 5322 §2.1.1
// asks only for 78); every field folded here keeps to the stricter one.
inline constexpr std::size_t max_header_line = 76;
inline constexpr std::size_t max_encoded_word = 75;  // RFC 2047 §2
inline constexpr std::size_t base64_line = 76;       // RFC 2045 §6.8
inline constexpr std::size_t max_host_length = 255;  // RFC 1035 name (or an address literal)

// What header_text() makes of a control character other than TAB, CR and LF (C0 and
// DEL): a space like them, or nothing. Either way none can start a new field.
enum class OtherControls { space, dropped };

// Text from outside for one header field: valid UTF-8 (bad bytes → U+FFFD), space, TAB,
// CR and LF → one space, other controls as `other` says, runs of spaces collapsed,
// trimmed, and cut to `max_bytes` on a character boundary.
std::string header_text(std::string_view s, std::size_t max_bytes, OtherControls other);

// A host name for a Message-ID or an mta-name: letters, digits, '.', '-', '_', and with
// `address_literal` also ':' '[' ']'; anything else is dropped, at most max_host_length.
std::string host_text(std::string_view s, bool address_literal = false);

// `bytes` in base64, in lines of base64_line characters each ending in `line_end`.
std::string base64_lines(std::string_view bytes, std::string_view line_end);

// A header field being written into a message, folded at spaces (RFC 5322 §2.2.3) before
// a line passes `width`: a continuation line starts with the space before its word. A
// single word longer than a line stays whole on a line of its own.
class FieldWriter {
public:
  FieldWriter(std::string& out, std::string_view line_end, std::size_t width = max_header_line)
      : out_(out), line_end_(line_end), width_(width) {}

  // "name:" at the start of a new field.
  void start(std::string_view name);
  // Appends " w", folding first when the line would pass the width (never before the
  // first word of a line).
  void word(std::string_view w);
  // Each word of `text` split at spaces; empty ones (from runs of spaces) are skipped.
  void words(std::string_view text);
  // `utf8` as RFC 2047 B-encoded UTF-8 words. Each takes what is left of the line (a
  // fresh line when that is too little for a word of a few characters), at most
  // max_encoded_word characters and `max_word_bytes` bytes of text, and never splits a
  // character (§5: each word must decode on its own).
  void encoded_words(std::string_view utf8, std::size_t max_word_bytes = std::numeric_limits<std::size_t>::max());
  void end() { out_ += line_end_; }

private:
  std::string& out_;
  std::string_view line_end_;
  std::size_t width_;
  std::size_t column_ = 0;      // length of the current line
  bool line_has_word_ = false;  // never fold before the first word of a line
};

} // namespace spool::detail
