// clamd.h — ClamdScanner: VirusScanner over clamd's INSTREAM command (clamd(8) "INSTREAM",
// the z-prefixed form): one connection per object, the bytes sent in length-prefixed
// chunks, one reply line. Plain blocking sockets with poll() deadlines, because scanning
// runs in the delivery worker thread, never on the event loop.
#pragma once

#include "content/virus_scanner.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace mh::content {

// mailhost.yaml `clamd.address`: "unix:/run/clamav/clamd.ctl", an absolute socket path,
// "tcp:HOST:PORT", "HOST:PORT" or "[V6]:PORT". Throws std::invalid_argument naming the
// value when it is none of these.
struct ClamdAddress {
  enum class Kind { unix_socket, tcp } kind = Kind::unix_socket;
  std::string path;      // unix_socket
  std::string host;      // tcp: a literal address or a name
  std::uint16_t port = 0;
  static ClamdAddress parse(const std::string& text);
  std::string str() const;  // for messages: "unix:/path" or "tcp:HOST:PORT"
};

class ClamdScanner : public VirusScanner {
public:
  // `timeout` bounds one whole scan (connect, send, verdict): clamd.timeout.
  ClamdScanner(ClamdAddress address, std::chrono::milliseconds timeout)
      : address_(std::move(address)), timeout_(timeout) {}

  ScanVerdict scan(const ChunkSource& source) override;
  bool reads_mime() const override { return true; }

  // For --check-config: clamd's version line ("ClamAV 1.4.6/…"), or a failed verdict.
  ScanVerdict version();
  // For --check-config: streams `bytes` zero bytes and reports whether clamd took them
  // all (clean) or cut the stream ("INSTREAM size limit exceeded": failed, detail says so).
  ScanVerdict probe_stream_limit(std::uint64_t bytes);

private:
  ClamdAddress address_;
  std::chrono::milliseconds timeout_;
};

} // namespace mh::content
