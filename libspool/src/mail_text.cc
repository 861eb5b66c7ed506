// mail_text.cc — header text, host names, base64 bodies and folded fields (mail_text.h).
#include "mail_text.h"

#include "text_util.h"

#include <algorithm>

namespace spool::detail {

std::string header_text(std::string_view s, std::size_t max_bytes, OtherControls other) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    const std::string_view piece = n == 0 ? std::string_view("\xEF\xBF\xBD") : s.substr(i, n);
    i += n == 0 ? 1 : n;
    if (n == 1) {
      const auto c = static_cast<unsigned char>(piece[0]);
      const bool control = c < 0x20 || c == 0x7f;
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || (control && other == OtherControls::space)) {
        if (!out.empty() && out.back() != ' ') out += ' ';
        continue;
      }
      if (control) continue;
    }
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string host_text(std::string_view s, bool address_literal) {
  std::string out;
  for (char c : s) {
    if (out.size() == max_host_length) break;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
        c == '_' || (address_literal && (c == ':' || c == '[' || c == ']')))
      out += c;
  }
  return out;
}

std::string base64_lines(std::string_view bytes, std::string_view line_end) {
  const std::string b = base64(bytes);
  std::string out;
  out.reserve(b.size() + (b.size() / base64_line + 1) * line_end.size());
  for (std::size_t i = 0; i < b.size(); i += base64_line) {
    out.append(b, i, base64_line);
    out += line_end;
  }
  return out;
}

void FieldWriter::start(std::string_view name) {
  out_ += name;
  out_ += ':';
  column_ = name.size() + 1;
  line_has_word_ = false;
}

void FieldWriter::word(std::string_view w) {
  if (line_has_word_ && column_ + 1 + w.size() > width_) {
    out_ += line_end_;
    column_ = 0;
  }
  out_ += ' ';
  out_ += w;
  column_ += 1 + w.size();
  line_has_word_ = true;
}

void FieldWriter::words(std::string_view text) {
  while (!text.empty()) {
    const auto space = text.find(' ');
    if (space != 0) word(text.substr(0, space));
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
  }
}

void FieldWriter::encoded_words(std::string_view utf8, std::size_t max_word_bytes) {
  constexpr std::string_view prefix = "=?UTF-8?B?", suffix = "?=";
  constexpr std::size_t overhead = prefix.size() + suffix.size();
  for (std::size_t i = 0; i < utf8.size();) {
    // Room on this line, or on a fresh continuation line when this one is nearly full.
    std::size_t room = width_ > column_ + 1 ? width_ - column_ - 1 : 0;
    if (room < overhead + 4 * 3) room = width_ - 1;  // word() will fold
    room = std::min(room, max_encoded_word);
    const std::size_t max_bytes = std::min((room - overhead) / 4 * 3, max_word_bytes);
    std::size_t end = i;
    while (end < utf8.size()) {
      const std::size_t n = std::max<std::size_t>(1, utf8_sequence(utf8, end));  // 1: a stray byte, kept whole
      if (end + n - i > max_bytes) break;
      end += n;
    }
    word(std::string(prefix) + base64(utf8.substr(i, end - i)) + std::string(suffix));
    i = end;
  }
}

} // namespace spool::detail
