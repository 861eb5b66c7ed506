// archive_limit.h — how far a part's archives expand, measured by streaming them through
// libarchive (every format and compression filter it reads), archives inside archives
// followed by chaining readers, never by unpacking to disk. Stops as soon as a limit is
// passed, so a 42.zip-style bomb costs at most `budget` bytes of inflating.
#pragma once

#include "content/virus_scanner.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace mh::content {

struct ArchiveMeasure {
  bool archive = false;          // libarchive recognised the data as an archive or compressed file
  std::uint64_t expanded = 0;    // bytes of every entry at every level, as far as read
  bool too_big = false;          // `expanded` passed the budget
  bool too_deep = false;         // archives nested deeper than the limit
  std::string detail;            // for the log: which limit, or why an entry was not read
};

// Whether the first bytes of a part (at least 262 when there are that many) carry the
// signature of a format libarchive reads: zip, gzip, bzip2, xz, lzip, zstd, lz4, compress,
// 7z, rar, cab, tar, cpio, ar, xar, lha, rpm. measure_archive() is only worth its reader
// set-up for those; anything else is plain data to clamd and counts as its own size.
bool looks_like_archive(std::string_view head);

// `source` pulls the decoded part. `budget`: bytes that may still be expanded before the
// message passes limits.expanded_content. Encrypted or damaged entries are skipped (not
// counted, not refused): the virus scanner sees the part as it is.
ArchiveMeasure measure_archive(const ChunkSource& source, std::uint64_t budget, unsigned max_depth);

} // namespace mh::content
