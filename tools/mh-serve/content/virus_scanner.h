// virus_scanner.h — the one question content checking asks a virus scanner: "is this
// byte stream infected?". ClamdScanner (clamd.h) answers it over clamd's INSTREAM
// protocol; unit tests and the fuzzers give a fake that needs no daemon.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mh::content {

struct ScanVerdict {
  enum class Kind {
    clean,
    infected,   // `virus` names what was found ("Eicar-Test-Signature.UNOFFICIAL")
    failed,     // no verdict: scanner absent, refusing, too slow, or answering ERROR
  } kind = Kind::failed;
  std::string virus;
  std::string detail;   // for the log: clamd's own answer, or what went wrong
};

// Pulls the bytes to scan: fills `buffer` with up to `capacity` bytes, returns how many;
// 0 = end of data. May throw (a decoding failure), which the scanner passes on.
using ChunkSource = std::function<std::size_t(char* buffer, std::size_t capacity)>;

class VirusScanner {
public:
  virtual ~VirusScanner() = default;
  // Scans one object (a decoded MIME part). Blocking; thread-safe: sessions scan at once.
  virtual ScanVerdict scan(const ChunkSource& source) = 0;
  // True when the scanner decodes a whole MIME message itself (clamd's mail scanner):
  // a clean message is then sent once as it is, and parts one by one only to find which
  // to remove. False: every decoded part is sent on its own.
  virtual bool reads_mime() const { return false; }
};

} // namespace mh::content
