// inspection.h — content checking of one message (SPEC §8 virus scanning and archive
// limits): every leaf MIME part decoded and scanned, archives measured by streaming, and
// — when a part is infected — the edits that remove it and put the bilingual notice at
// the top of the first text part. Pure apart from the scanner: no spool, no sockets; the
// SMTP backend reads the message from its tmp file and writes the cleaned copy.
#pragma once

#include "content/virus_scanner.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::content {

struct ContentLimits {
  std::uint64_t expanded_content = 104857600;  // limits.expanded_content: message + all archive contents
  unsigned archive_depth = 8;                  // limits.archive_depth: archives inside archives
  unsigned mime_parts = 1000;                  // limits.mime_parts: leaf parts scanned per message
  unsigned mime_depth = 50;                    // limits.mime_depth: multipart/message nesting
};

// One infected part, as the notice names it.
struct Finding {
  std::string virus;       // the scanner's name for it
  std::string file_name;   // decoded (RFC 2231/2047) to UTF-8; "" = the part has none
  std::string content_type;// "application/x-msdownload", for the log and a nameless part
};

// A replacement of original bytes [offset, offset + length) by `bytes`; length 0 = insert.
struct Edit {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::string bytes;
};

struct Inspection {
  enum class Verdict {
    clean,      // deliver as is
    cleaned,    // infected parts found: deliver apply_edits()'s copy instead
    rejected,   // 550 5.7.1: archive or MIME limits passed, or infected and not cleanable
    failed,     // 451 4.3.0: no verdict for some part (scanner failure): never deliver unscanned
  } verdict = Verdict::clean;
  std::vector<Finding> findings;   // cleaned (and rejected when infected)
  std::vector<Edit> edits;         // cleaned: sorted by offset, not overlapping
  std::string detail;              // for the log: why rejected/failed, what was removed
  std::uint64_t parts_scanned = 0;
  std::uint64_t expanded_bytes = 0;// the measure compared with limits.expanded_content
};

// Inspects the message held in `message` (the whole file, e.g. a read-only mapping).
// Thread-safe (GMime is initialised once, on first use).
Inspection inspect_message(std::string_view message, VirusScanner& scanner, const ContentLimits& limits);

// The file name of a part from the raw values of its Content-Disposition (`filename`) and
// Content-Type (`name`) fields, RFC 2231 continuations/charsets and RFC 2047 words
// decoded (GMime's parameter parser) to UTF-8; "" when neither has one. Control
// characters become spaces and the result is cut at 255 bytes (on a character boundary):
// it ends up in a notice line and in the log.
std::string decode_file_name(std::string_view content_disposition, std::string_view content_type);

// Streams `message` with `edits` applied to `out` (chunks of at most 64 KiB).
void apply_edits(std::string_view message, const std::vector<Edit>& edits,
                 const std::function<void(std::string_view)>& out);

} // namespace mh::content
