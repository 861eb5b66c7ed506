// test_support.h — what the content unit tests and fuzz targets share: fake virus scanners
// (no clamd needed) and independent decoders of base64 and quoted-printable, so the
// module's encoders are checked against code that is not their own. Test-only.
#pragma once

#include "content/virus_scanner.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>

namespace mh::content::testing {

// The 68-byte EICAR test string, the marker the fake scanner looks for.
inline constexpr std::string_view eicar =
    R"(X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*)";
inline constexpr std::string_view eicar_name = "Eicar-Test-Signature.UNOFFICIAL";

// Reads the whole object in small chunks (so a source that mishandles its capacity shows).
inline std::string drain(const ChunkSource& source, std::size_t chunk = 4096) {
  std::string all;
  std::string buffer(chunk, '\0');
  for (std::size_t n; (n = source(buffer.data(), buffer.size())) > 0;) all.append(buffer.data(), n);
  return all;
}

// A ChunkSource over bytes held in memory; `pulled` counts what was read (so a test can
// see that a measure stopped early). The bytes must outlive the source.
struct StringSource {
  std::string_view bytes;
  std::size_t pulled = 0;
  ChunkSource source() {
    return [this](char* buffer, std::size_t capacity) {
      const std::size_t n = std::min(capacity, bytes.size() - pulled);
      std::copy_n(bytes.data() + pulled, n, buffer);
      pulled += n;
      return n;
    };
  }
};

// Reports `eicar_name` when the scanned bytes contain `marker`; counts its calls and keeps
// the last object scanned.
class MarkerScanner : public VirusScanner {
public:
  explicit MarkerScanner(std::string marker = std::string(eicar)) : marker_(std::move(marker)) {}
  ScanVerdict scan(const ChunkSource& source) override {
    ++calls;
    last = drain(source);
    if (last.find(marker_) != std::string::npos) return {ScanVerdict::Kind::infected, std::string(eicar_name), "FOUND"};
    return {ScanVerdict::Kind::clean, "", "OK"};
  }
  std::atomic<unsigned> calls{0};
  std::string last;

private:
  std::string marker_;
};

// A scanner that never gives a verdict (clamd down).
class FailingScanner : public VirusScanner {
public:
  ScanVerdict scan(const ChunkSource&) override {
    ++calls;
    return {ScanVerdict::Kind::failed, "", "connection refused"};
  }
  std::atomic<unsigned> calls{0};
};

// RFC 2045 §6.8, strict: only the alphabet, '=' padding and line ends; anything else
// (or bad padding) makes it return "\x01INVALID" so a test comparison fails loudly.
inline std::string decode_base64(std::string_view text) {
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0, value = 0, pad = 0;
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    if (c == '=') { ++pad; continue; }
    const auto k = alphabet.find(c);
    if (k == std::string_view::npos || pad) return "\x01INVALID";
    value = (value << 6) | static_cast<unsigned>(k);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xff));
    }
  }
  if (pad > 2 || (bits == 0 && pad)) return "\x01INVALID";
  return out;
}

// RFC 2045 §6.7: "=XX" (upper or lower hex) and soft breaks ("=" at a line end) undone,
// hard line ends kept as they are.
inline std::string decode_quoted_printable(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') { out.push_back(text[i]); continue; }
    if (text.substr(i + 1, 2) == "\r\n") { i += 2; continue; }
    if (text.substr(i + 1, 1) == "\n") { i += 1; continue; }
    if (i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
      continue;
    }
    return "\x01INVALID";
  }
  return out;
}

} // namespace mh::content::testing
