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

// What a reader's callback pulls from: the decoded part, or an entry of the reader above.
struct Upstream {
  const ChunkSource* part = nullptr;
  archive* parent = nullptr;
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
  up->measure->count(static_cast<std::size_t>(n));
  return n;
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
using Reader = std::unique_ptr<archive, ArchiveCloser>;

// A reader over `up`, or null when the bytes are not an archive or compressed file:
// libarchive's "raw" format with no filter is how it says "plain data".
Reader open_reader(Upstream& up) {
  Reader a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open(a.get(), &up, nullptr, pull, nullptr) != ARCHIVE_OK) return nullptr;
  return a;
}

bool plain_data(archive* a) {
  return archive_format(a) == ARCHIVE_FORMAT_RAW && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE;
}

void drain_entry(archive* a, Measure& m) {
  while (!m.stopped()) {
    const la_ssize_t n = archive_read_data(a, m.discard.data(), m.discard.size());
    if (n <= 0) return;  // end of entry, or encrypted/damaged: not counted further
    m.count(static_cast<std::size_t>(n));
  }
}

void walk(archive* a, unsigned depth, Measure& m);

// An entry: an archive itself (walked one level down) or data (counted).
void measure_entry(archive* a, unsigned depth, Measure& m) {
  Upstream up;
  up.parent = a;
  up.measure = &m;
  Reader inner = open_reader(up);
  if (inner) {
    archive_entry* first = nullptr;
    const int rc = archive_read_next_header(inner.get(), &first);
    if (rc == ARCHIVE_OK || rc == ARCHIVE_WARN) {
      if (!plain_data(inner.get())) {
        if (depth + 1 > m.max_depth) {
          m.result.too_deep = true;
          m.result.detail = "archives nested deeper than " + std::to_string(m.max_depth);
          return;
        }
        measure_entry(inner.get(), depth + 1, m);
        walk(inner.get(), depth + 1, m);
        return;
      }
    }
  }
  drain_entry(a, m);
}

// The entries after the current one of a reader whose first header was read.
void walk(archive* a, unsigned depth, Measure& m) {
  archive_entry* entry = nullptr;
  while (!m.stopped()) {
    const int rc = archive_read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF || rc == ARCHIVE_FATAL) return;
    if (rc == ARCHIVE_RETRY) continue;
    measure_entry(a, depth, m);
  }
}

} // namespace

ArchiveMeasure measure_archive(const ChunkSource& source, std::uint64_t budget, unsigned max_depth) {
  Measure m{budget, std::min(max_depth, depth_cap), {}};
  Upstream up;
  up.part = &source;
  up.measure = &m;
  Reader top = open_reader(up);
  if (!top) return m.result;
  archive_entry* entry = nullptr;
  const int rc = archive_read_next_header(top.get(), &entry);
  if ((rc != ARCHIVE_OK && rc != ARCHIVE_WARN) || plain_data(top.get())) return m.result;
  m.result.archive = true;
  if (m.max_depth < 1) {
    m.result.too_deep = true;
    m.result.detail = "archives are not allowed (limits.archive_depth 0)";
    return m.result;
  }
  measure_entry(top.get(), 1, m);
  walk(top.get(), 1, m);
  return m.result;
}

} // namespace mh::content
