// notice.cc — the notice text and its conversion into a text part's charset (ICU) and
// transfer encoding. Conversions stop at the first character the charset cannot hold:
// a notice with '?' in place of the virus or file name would be a wrong notice.
#include "content/notice.h"

#include <unicode/ucnv.h>
#include <unicode/ucnv_err.h>
#include <unicode/ustring.h>

#include <memory>

namespace mh::content {
namespace {

struct ConverterCloser {
  void operator()(UConverter* c) const { ucnv_close(c); }
};
using Converter = std::unique_ptr<UConverter, ConverterCloser>;

// A converter that fails on unmappable or illegal input instead of substituting.
Converter strict_converter(std::string_view charset) {
  if (charset.empty() || charset.size() > 64) return nullptr;
  UErrorCode status = U_ZERO_ERROR;
  Converter c(ucnv_open(std::string(charset).c_str(), &status));
  if (U_FAILURE(status) || !c) return nullptr;
  ucnv_setFromUCallBack(c.get(), UCNV_FROM_U_CALLBACK_STOP, nullptr, nullptr, nullptr, &status);
  ucnv_setToUCallBack(c.get(), UCNV_TO_U_CALLBACK_STOP, nullptr, nullptr, nullptr, &status);
  return U_FAILURE(status) ? nullptr : std::move(c);
}

std::optional<std::u16string> utf8_to_utf16(std::string_view utf8) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = 0;
  u_strFromUTF8(nullptr, 0, &length, utf8.data(), static_cast<int32_t>(utf8.size()), &status);
  if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) return std::nullopt;
  std::u16string out(static_cast<std::size_t>(length), u'\0');
  status = U_ZERO_ERROR;
  u_strFromUTF8(out.data(), length, &length, utf8.data(), static_cast<int32_t>(utf8.size()), &status);
  if (U_FAILURE(status)) return std::nullopt;
  return out;
}

std::optional<std::string> utf16_to_utf8(const std::u16string& text) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t length = 0;
  u_strToUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
  if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) return std::nullopt;
  std::string out(static_cast<std::size_t>(length), '\0');
  status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), length, &length, text.data(), static_cast<int32_t>(text.size()), &status);
  if (U_FAILURE(status)) return std::nullopt;
  return out;
}

bool is_utf8_name(std::string_view charset) {
  std::string lower;
  for (char c : charset) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return lower == "utf-8" || lower == "utf8";
}

constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char hex_digits[] = "0123456789ABCDEF";

} // namespace

std::vector<std::string> notice_lines(const Finding& finding) {
  const std::string file =
      finding.file_name.empty() ? "(unnamed " + (finding.content_type.empty() ? std::string("application/octet-stream")
                                                                               : finding.content_type) + " part)"
                                : finding.file_name;
  return {
      "[English] The virus " + finding.virus + " had been detected from " + file + ". Executed processing : remove",
      "[Japanese] ウイルス " + finding.virus + " が " + file + " から検出されました。 実行された処理:remove",
  };
}

std::optional<std::string> encode_charset(std::string_view utf8, std::string_view charset) {
  if (is_utf8_name(charset)) return std::string(utf8);
  Converter c = strict_converter(charset);
  if (!c) return std::nullopt;
  const auto text = utf8_to_utf16(utf8);
  if (!text) return std::nullopt;
  UErrorCode status = U_ZERO_ERROR;
  const int32_t need = ucnv_fromUChars(c.get(), nullptr, 0, text->data(), static_cast<int32_t>(text->size()), &status);
  if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) return std::nullopt;
  std::string out(static_cast<std::size_t>(need), '\0');
  status = U_ZERO_ERROR;
  ucnv_resetFromUnicode(c.get());
  ucnv_fromUChars(c.get(), out.data(), need, text->data(), static_cast<int32_t>(text->size()), &status);
  if (U_FAILURE(status)) return std::nullopt;
  // ICU drops default-ignorable characters it cannot map instead of stopping: only a
  // conversion that reads back as the same text counts.
  if (decode_charset(out, charset) != std::optional<std::string>(std::string(utf8))) return std::nullopt;
  return out;
}

std::optional<std::string> decode_charset(std::string_view bytes, std::string_view charset) {
  Converter c = strict_converter(charset);
  if (!c) return std::nullopt;
  UErrorCode status = U_ZERO_ERROR;
  const int32_t need = ucnv_toUChars(c.get(), nullptr, 0, bytes.data(), static_cast<int32_t>(bytes.size()), &status);
  if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) return std::nullopt;
  std::u16string text(static_cast<std::size_t>(need), u'\0');
  status = U_ZERO_ERROR;
  ucnv_resetToUnicode(c.get());
  ucnv_toUChars(c.get(), text.data(), need, bytes.data(), static_cast<int32_t>(bytes.size()), &status);
  if (U_FAILURE(status)) return std::nullopt;
  return utf16_to_utf8(text);
}

std::string encode_base64_lines(std::string_view bytes, std::string_view eol) {
  std::string out;
  out.reserve(bytes.size() / 57 * (76 + eol.size()) + 80);
  std::size_t column = 0;
  const auto put = [&](char c) {
    out += c;
    if (++column == 76) {
      out += eol;
      column = 0;
    }
  };
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    put(base64_alphabet[(v >> 18) & 63]);
    put(base64_alphabet[(v >> 12) & 63]);
    put(base64_alphabet[(v >> 6) & 63]);
    put(base64_alphabet[v & 63]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    put(base64_alphabet[(v >> 18) & 63]);
    put(base64_alphabet[(v >> 12) & 63]);
    put(rest == 2 ? base64_alphabet[(v >> 6) & 63] : '=');
    put('=');
  }
  if (column != 0) out += eol;
  return out;
}

// RFC 2045 §6.7: line ends stay line ends; '=', control and 8-bit bytes, and a space or
// tab before a line end are encoded; lines are cut with soft breaks at 76 columns.
std::string encode_quoted_printable(std::string_view bytes, std::string_view eol) {
  std::string out;
  std::size_t column = 0;
  const auto emit = [&](std::string_view piece) {
    if (column + piece.size() > 75) {
      out += '=';
      out += eol;
      column = 0;
    }
    out += piece;
    column += piece.size();
  };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\n' || (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n')) {
      if (c == '\r') ++i;
      out += eol;
      column = 0;
      continue;
    }
    const bool at_line_end = i + 1 == bytes.size() || bytes[i + 1] == '\n' || bytes[i + 1] == '\r';
    const bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end);
    if (literal) {
      const char one[1] = {static_cast<char>(c)};
      emit(std::string_view(one, 1));
    } else {
      const char three[3] = {'=', hex_digits[c >> 4], hex_digits[c & 15]};
      emit(std::string_view(three, 3));
    }
  }
  return out;
}

} // namespace mh::content
