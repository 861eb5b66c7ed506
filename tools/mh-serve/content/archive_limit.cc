// archive_limit.cc — nested libarchive readers chained by their read callbacks: the
// reader of an archive inside an archive pulls its bytes with archive_read_data() from
// the entry of the reader above it. Every byte any entry yields is counted; reading stops
// the moment the count passes the budget or the nesting passes the limit.
#include "content/archive_limit.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

namespace mh::content {
namespace {

constexpr std::size_t block_size = 64 * 1024;
constexpr unsigned depth_cap = 64;  // whatever limits.archive_depth says

struct Measure {
  std::uint64_t budget;
  unsigned max_depth;
  ArchiveMeasure result;
  std::vector<char> discard = std::vector<char>(block_size);

  bool stopped() const { return result.too_big || result.too_deep; }
  void count(std::size_t n) {
    result.expanded += n;
    if (result.expanded > budget && !result.too_big) {
      result.too_big = true;
      result.detail = "archive contents pass " + std::to_string(budget) + " bytes";
    }
  }
};

// What a reader's callback pulls from: the decoded part, or the data of the reader
// above. `counted`: those bytes are expansion (an archive entry's, a decompressor's
// output) and go into the measure as they are read.
struct Upstream {
  const ChunkSource* part = nullptr;
  archive* parent = nullptr;
  bool counted = false;
  std::uint64_t consumed = 0;   // bytes pulled from the parent, counted or not
  Measure* measure = nullptr;
  std::vector<char> buffer = std::vector<char>(block_size);
};

la_ssize_t pull(archive* a, void* client, const void** out) {
  auto* up = static_cast<Upstream*>(client);
  *out = up->buffer.data();
  if (up->part) {
    try {
      return static_cast<la_ssize_t>((*up->part)(up->buffer.data(), up->buffer.size()));
    } catch (const std::exception& e) {
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
  }
  if (up->measure->stopped()) return 0;
  const la_ssize_t n = archive_read_data(up->parent, up->buffer.data(), up->buffer.size());
  if (n < 0) {
    archive_set_error(a, EIO, "%s", archive_error_string(up->parent));
    return -1;
  }
  up->consumed += static_cast<std::uint64_t>(n);
  if (up->counted) up->measure->count(static_cast<std::size_t>(n));
  return n;
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
using Reader = std::unique_ptr<archive, ArchiveCloser>;

// Layer 1: every compression filter, the "raw" format: one entry, the decompressed bytes
// (the bytes as they are when nothing is compressed).
Reader open_decompressor(Upstream& up) {
  Reader a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  archive_entry* entry = nullptr;
  if (archive_read_open(a.get(), &up, nullptr, pull, nullptr) != ARCHIVE_OK) return nullptr;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) return nullptr;
  return a;
}

// Layer 2: every archive format over layer 1's bytes, no filter (layer 1 did that). Null
// when the bytes are no archive, or an archive without entries (a gzip of zeros reads
// as an empty tar: its size still counts, through layer 1).
Reader open_format(Upstream& up) {
  Reader a(archive_read_new());
  archive_read_support_format_all(a.get());
  if (archive_read_open(a.get(), &up, nullptr, pull, nullptr) != ARCHIVE_OK) return nullptr;
  return a;
}

void drain(archive* a, Measure& m, bool counted) {
  while (!m.stopped()) {
    const la_ssize_t n = archive_read_data(a, m.discard.data(), m.discard.size());
    if (n <= 0) return;  // end, or an encrypted/damaged entry: not counted further
    if (counted) m.count(static_cast<std::size_t>(n));
  }
}

bool measure_stream(Upstream& source, unsigned depth, Measure& m);

// Each entry of an archive: its bytes count, and it is measured as a stream of its own.
void measure_entries(archive* a, unsigned depth, Measure& m) {
  archive_entry* entry = nullptr;
  bool first = true;
  while (!m.stopped()) {
    if (!first) {
      const int rc = archive_read_next_header(a, &entry);
      if (rc == ARCHIVE_EOF || rc == ARCHIVE_FATAL) return;
      if (rc == ARCHIVE_RETRY) continue;
    }
    first = false;
    Upstream up;
    up.parent = a;
    up.counted = true;
    up.measure = &m;
    measure_stream(up, depth + 1, m);
  }
}

// One stream (a part, or an entry): decompressed and, when it is an archive, walked.
// Everything it yields is read, so the reader above counts it. True when it was an
// archive or compressed.
bool measure_stream(Upstream& source, unsigned depth, Measure& m) {
  const auto too_deep = [&] {
    m.result.too_deep = true;
    m.result.detail = "archives nested deeper than " + std::to_string(m.max_depth);
    return true;
  };
  Reader decompressor = open_decompressor(source);
  if (!decompressor) return false;
  const bool compressed = archive_filter_code(decompressor.get(), 0) != ARCHIVE_FILTER_NONE;
  if (compressed && depth > m.max_depth) return too_deep();
  // The format layer's reads are not counted as they happen: an archive's size is its
  // entries'. When it was no archive, what its bidders looked at (up to about a MB) and
  // what is drained below are the decompressed size, so a gzip of zeros counts whole.
  Upstream inner;
  inner.parent = decompressor.get();
  inner.measure = &m;
  bool archive_found = false;
  if (Reader format = open_format(inner)) {
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(format.get(), &entry);
    if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN) {
      archive_found = true;
      if (depth > m.max_depth) return too_deep();
      measure_entries(format.get(), depth, m);
    }
  }
  if (compressed && !archive_found) m.count(inner.consumed);
  drain(decompressor.get(), m, compressed);
  return compressed || archive_found;
}

} // namespace

bool looks_like_archive(std::string_view head) {
  const auto at = [&](std::size_t offset, std::string_view magic) {
    return offset <= head.size() && head.substr(offset, magic.size()) == magic;
  };
  using namespace std::string_view_literals;
  static constexpr std::string_view leading[] = {
      "PK\x03\x04"sv, "PK\x05\x06"sv, "PK\x07\x08"sv,          // zip
      "\x1f\x8b"sv, "\x1f\x9d"sv, "BZh"sv, "\xfd" "7zXZ\0"sv,       // gzip, compress, bzip2, xz
      "LZIP"sv, "\x28\xb5\x2f\xfd"sv, "\x04\x22\x4d\x18"sv,       // lzip, zstd, lz4
      "7z\xbc\xaf\x27\x1c"sv, "Rar!\x1a\x07"sv, "MSCF"sv,          // 7z, rar, cab
      "070707"sv, "070701"sv, "070702"sv, "\xc7\x71"sv, "\x71\xc7"sv,  // cpio
      "!<arch>\n"sv, "xar!"sv, "\xed\xab\xee\xdb"sv,                 // ar, xar, rpm
  };
  for (std::string_view magic : leading)
    if (at(0, magic)) return true;
  return at(257, "ustar") || (at(2, "-lh") && head.size() > 6 && head[6] == '-');  // tar, lha
}

ArchiveMeasure measure_archive(const ChunkSource& source, std::uint64_t budget, unsigned max_depth) {
  Measure m{budget, std::min(max_depth, depth_cap), {}};
  Upstream up;
  up.part = &source;
  up.measure = &m;
  m.result.archive = measure_stream(up, 1, m);
  return m.result;
}

} // namespace mh::content
