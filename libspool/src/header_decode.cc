// header_decode.cc — header fields for display: unfolding, RFC 2047 decoding through
// ICU converters, and making the result safe UTF-8 for a terminal or a JSON document.
// Filters decode every field of a hostile message with it, so each step is linear in the
// field (a 1 MiB header of broken encoded-words included; see CloseFinder).
#include "spool/header_decode.h"

#include "icu_runtime.h"
#include "text_util.h"

#include <unicode/utf16.h>

#include <memory>
#include <vector>

namespace spool {
namespace {

// RFC 2047 limits an encoded-word to 75 characters; mailers exceed it, so only the
// charset name gets a (generous) limit of its own.
constexpr std::size_t max_charset_length = 64;

using detail::ascii_lower;
using detail::Base64Stray;
using detail::base64_decoded;
using detail::hex_value;
using detail::iequals;
using detail::is_line_space;
using detail::is_wsp;
using detail::starts_with_field;
using detail::trimmed;

// RFC 2047 §2: a charset is a token (no specials). Refusing ',' '=' ';' also keeps ICU's
// "name,option=value" converter syntax out of reach of a message.
bool charset_token_ok(std::string_view s) {
  if (s.empty() || s.size() > max_charset_length) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == ':' || c == '+' || c == '!' || c == '#' || c == '$' || c == '%' ||
              c == '&' || c == '\'' || c == '^' || c == '`' || c == '{' || c == '}' || c == '~' || c == '*';
    if (!ok) return false;
  }
  return true;
}

struct ConverterCloser {
  void operator()(UConverter* c) const { detail::icu().close_converter(c); }
};
using Converter = std::unique_ptr<UConverter, ConverterCloser>;

Converter open_converter(const std::string& charset) {
  UErrorCode status = U_ZERO_ERROR;
  UConverter* c = detail::icu().open_converter(charset.c_str(), &status);
  if (U_FAILURE(status)) return nullptr;
  return Converter(c);
}

// --- RFC 2047 §4: the two encodings ---

// §4.2: "_" is a space, "=XX" a byte. A stray '=' is kept (lenient, like most readers).
std::string decode_q(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out += ' ';
    } else if (c == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

// --- tokens: literal text and decoded encoded-words ---

struct Token {
  bool encoded = false;
  std::string charset;  // encoded: charset without "*lang"
  std::string bytes;    // encoded: decoded bytes; literal: the text as written
};

// Where the encoded text of a word ends. Scanning for "?=" from every "=?" would be
// quadratic on hostile input ("=?x?q?a" repeated over a 1 MiB header: every candidate
// scans to the end and fails), so the result of the last scan is remembered: a later
// candidate whose text starts inside the scanned range ends at the same place (a "?="
// or a character no encoded-word may hold), and no byte is scanned twice.
class CloseFinder {
public:
  explicit CloseFinder(std::string_view text) : text_(text) {}
  // Position of the "?=" closing a word whose encoded text starts at `start`, npos when
  // a space, control or 8-bit byte (or the end) comes first (RFC 2047 §5: encoded-words
  // hold printable ASCII only).
  std::size_t close_after(std::size_t start) {
    if (start < from_ || start > end_) {
      from_ = start;
      found_ = false;
      std::size_t k = start;
      for (; k < text_.size(); ++k) {
        char c = text_[k];
        if (c == '?' && k + 1 < text_.size() && text_[k + 1] == '=') {
          found_ = true;
          break;
        }
        if (is_line_space(c) || static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) break;
      }
      end_ = k;
    }
    return found_ ? end_ : std::string_view::npos;
  }

private:
  std::string_view text_;
  std::size_t from_ = 1, end_ = 0; // empty range: nothing scanned yet
  bool found_ = false;
};

// Whether ICU knows `charset`, remembered for the few names one header uses: opening a
// converter by an unknown name makes ICU look for a data file, which a header of
// thousands of bogus words must not repeat.
class CharsetCache {
public:
  bool known(const std::string& charset) {
    for (const auto& [name, ok] : seen_)
      if (iequals(name, charset)) return ok;
    bool ok = open_converter(charset) != nullptr;
    if (seen_.size() < max_entries) seen_.emplace_back(charset, ok);
    return ok;
  }

private:
  static constexpr std::size_t max_entries = 8;
  std::vector<std::pair<std::string, bool>> seen_;
};

// Parses an encoded-word starting at text[pos] ("=?"); on success sets `end` past "?=".
std::optional<Token> parse_encoded_word(std::string_view text, std::size_t pos, std::size_t& end,
                                        CloseFinder& closes, CharsetCache& charsets) {
  // A charset is at most max_charset_length token characters, none of them '?'.
  std::size_t q1 = text.substr(0, pos + 2 + max_charset_length + 1).find('?', pos + 2);
  if (q1 == std::string_view::npos || q1 + 3 > text.size() || text[q1 + 2] != '?') return std::nullopt;
  std::string_view charset = text.substr(pos + 2, q1 - pos - 2);
  if (!charset_token_ok(charset)) return std::nullopt;
  char encoding = ascii_lower(text[q1 + 1]);
  if (encoding != 'b' && encoding != 'q') return std::nullopt;
  std::size_t start = q1 + 3;
  std::size_t close = closes.close_after(start);
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view encoded = text.substr(start, close - start);
  Token t;
  t.encoded = true;
  t.charset = std::string(charset.substr(0, charset.find('*'))); // RFC 2231 §5 language suffix
  if (t.charset.empty()) return std::nullopt;
  if (!charsets.known(t.charset)) return std::nullopt; // unknown charset: leave as written
  if (encoding == 'q') {
    t.bytes = decode_q(encoded);
  } else {
    // §4.1: missing padding is tolerated, anything outside the alphabet is not.
    auto b = base64_decoded(encoded, Base64Stray::reject);
    if (!b) return std::nullopt;
    t.bytes = std::move(*b);
  }
  end = close + 2;
  return t;
}

std::vector<Token> tokenize(std::string_view text) {
  std::vector<Token> tokens;
  auto add_literal = [&tokens](std::string_view s) {
    if (s.empty()) return;
    if (tokens.empty() || tokens.back().encoded) tokens.push_back(Token{});
    tokens.back().bytes += s;
  };
  CloseFinder closes(text);
  CharsetCache charsets;
  std::size_t literal_start = 0;
  std::size_t i = 0;
  while ((i = text.find("=?", i)) != std::string_view::npos) {
    std::size_t end = 0;
    if (auto word = parse_encoded_word(text, i, end, closes, charsets)) {
      add_literal(text.substr(literal_start, i - literal_start));
      tokens.push_back(std::move(*word));
      i = literal_start = end;
    } else {
      i += 2;
    }
  }
  add_literal(text.substr(literal_start));
  return tokens;
}

bool only_whitespace(std::string_view s) {
  for (char c : s)
    if (!is_line_space(c)) return false;
  return true;
}

// Unencoded text written by old Japanese mailers: raw ISO-2022-JP (7-bit with ESC $ B).
bool looks_like_raw_iso2022jp(std::string_view s) {
  bool has_escape = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) return false;
    if (c == 0x1b && i + 1 < s.size() && (s[i + 1] == '$' || s[i + 1] == '(')) has_escape = true;
  }
  return has_escape;
}

void append_utf8(std::string& out, UChar32 cp) {
  char buf[U8_MAX_LENGTH];
  std::int32_t n = 0;
  U8_APPEND_UNSAFE(buf, n, cp);
  out.append(buf, static_cast<std::size_t>(n));
}

// Valid UTF-8 with line breaks and tabs as spaces and every other control character
// (C0, DEL, C1) replaced, so decoded text is safe on a terminal and in JSON.
std::string make_displayable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::int32_t i = 0;
  const auto len = static_cast<std::int32_t>(s.size());
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  while (i < len) {
    UChar32 cp = 0;
    U8_NEXT(p, i, len, cp);
    if (cp < 0) cp = 0xFFFD;
    else if (cp == '\t' || cp == '\r' || cp == '\n') cp = ' ';
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) cp = 0xFFFD;
    append_utf8(out, cp);
  }
  return out;
}

bool is_iso2022(std::string_view charset) {
  return charset.size() >= 8 && iequals(charset.substr(0, 8), "iso-2022");
}

std::string literal_to_utf8(const std::string& text) {
  if (looks_like_raw_iso2022jp(text))
    if (auto converted = charset_to_utf8("ISO-2022-JP", text)) return *converted;
  return text;
}

} // namespace

std::string_view header_block(std::string_view message) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t eol = message.find('\n', pos);
    if (eol == std::string_view::npos) break;
    std::string_view line = message.substr(pos, eol - pos);
    if (line.empty() || line == "\r") return message.substr(0, pos);
    pos = eol + 1;
  }
  return message;
}

std::string unfold_header(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' && i + 2 < value.size() && value[i + 1] == '\n' && is_wsp(value[i + 2])) {
      ++i; // drop CRLF, keep the whitespace that follows
      continue;
    }
    if (c == '\n' && i + 1 < value.size() && is_wsp(value[i + 1])) continue;
    out += c;
  }
  return out;
}

std::optional<std::string> header_field(std::string_view head, std::string_view name) {
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t eol = head.find('\n', pos);
    std::size_t line_end = eol == std::string_view::npos ? head.size() : eol;
    std::string_view line = head.substr(pos, line_end - pos);
    if (starts_with_field(line, name)) {
      // The field runs on while following lines start with whitespace (folding).
      std::size_t end = line_end;
      while (end < head.size() && end + 1 < head.size() && is_wsp(head[end + 1])) {
        std::size_t next = head.find('\n', end + 1);
        end = next == std::string_view::npos ? head.size() : next;
      }
      const std::string value = unfold_header(head.substr(pos + name.size() + 1, end - pos - name.size() - 1));
      return std::string(trimmed(value));
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return std::nullopt;
}

std::optional<std::string> charset_to_utf8(std::string_view charset, std::string_view bytes) {
  if (!charset_token_ok(charset)) return std::nullopt;
  Converter cnv = open_converter(std::string(charset));
  if (!cnv) return std::nullopt;
  std::vector<UChar> utf16(bytes.size() + 16);
  UErrorCode status = U_ZERO_ERROR;
  const auto& icu = detail::icu();
  std::int32_t n = icu.to_uchars(cnv.get(), utf16.data(), static_cast<std::int32_t>(utf16.size()), bytes.data(),
                                 static_cast<std::int32_t>(bytes.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    utf16.resize(static_cast<std::size_t>(n) + 1);
    status = U_ZERO_ERROR;
    icu.reset_converter(cnv.get());
    n = icu.to_uchars(cnv.get(), utf16.data(), static_cast<std::int32_t>(utf16.size()), bytes.data(),
                      static_cast<std::int32_t>(bytes.size()), &status);
  }
  if (U_FAILURE(status)) return std::nullopt;
  std::string out;
  for (std::int32_t i = 0; i < n;) {
    UChar32 cp = 0;
    U16_NEXT(utf16.data(), i, n, cp);
    if (U_IS_SURROGATE(cp)) cp = 0xFFFD; // unpaired surrogate
    append_utf8(out, cp);
  }
  return out;
}

std::string decode_header_value(std::string_view value) {
  std::string unfolded = unfold_header(value);
  std::vector<Token> tokens = tokenize(unfolded);
  std::string out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    if (!t.encoded) {
      // §6.2: whitespace between two encoded-words is not displayed.
      bool between_words = i > 0 && i + 1 < tokens.size() && tokens[i - 1].encoded && tokens[i + 1].encoded;
      if (!(between_words && only_whitespace(t.bytes))) out += literal_to_utf8(t.bytes);
      continue;
    }
    // Join the bytes of the following words in the same charset: encoders split
    // multi-byte characters (UTF-8, Shift_JIS) across words. Not for ISO-2022: each of
    // its words ends in ASCII (RFC 1468), and ICU rejects the back-to-back escapes
    // ("ESC ( B" then "ESC $ B") that joining would create.
    std::string bytes = t.bytes;
    std::size_t j = i;
    while (!is_iso2022(t.charset)) {
      std::size_t next = j + 1;
      if (next < tokens.size() && !tokens[next].encoded && only_whitespace(tokens[next].bytes)) ++next;
      if (next >= tokens.size() || !tokens[next].encoded || !iequals(tokens[next].charset, t.charset)) break;
      bytes += tokens[next].bytes;
      j = next;
    }
    auto converted = charset_to_utf8(t.charset, bytes);
    out += converted ? *converted : bytes;
    i = j;
  }
  return make_displayable(out);
}

} // namespace spool
