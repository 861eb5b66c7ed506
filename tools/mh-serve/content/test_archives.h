// test_archives.h — archives made in memory with libarchive's writer for the content unit
// tests: zips (stored or deflated, nested to any depth) and a gzip of many zeros, so no
// binary test data is committed and the sizes are exact. Test-only.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mh::content::testing {

struct ArchiveEntry {
  std::string name;
  std::string bytes;
};

namespace detail {

inline la_ssize_t append_to_string(struct archive*, void* out, const void* buffer, size_t length) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

inline void check(int status, struct archive* a, const char* what) {
  if (status < ARCHIVE_OK) throw std::runtime_error(std::string(what) + ": " + archive_error_string(a));
}

// Writes entries through `setup` (format and filters) into a string. `write_body` writes
// one entry's data, so the gzip of zeros can stream instead of holding 200 MB.
template <typename Setup, typename WriteBody>
std::string write_archive(Setup setup, const std::vector<std::pair<std::string, std::int64_t>>& entries,
                          WriteBody write_body) {
  std::string out;
  struct archive* a = archive_write_new();
  try {
    setup(a);
    check(archive_write_set_bytes_in_last_block(a, 1), a, "bytes_in_last_block");
    check(archive_write_open2(a, &out, nullptr, append_to_string, nullptr, nullptr), a, "open");
    for (std::size_t i = 0; i < entries.size(); ++i) {
      struct archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, entries[i].first.c_str());
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, entries[i].second);
      const int status = archive_write_header(a, e);
      archive_entry_free(e);
      check(status, a, "header");
      write_body(a, i);
    }
    check(archive_write_close(a), a, "close");
  } catch (...) {
    archive_write_free(a);
    throw;
  }
  archive_write_free(a);
  return out;
}

} // namespace detail

// A zip of `entries`; `deflate` false = stored (method 0).
inline std::string make_zip(const std::vector<ArchiveEntry>& entries, bool deflate = true) {
  std::vector<std::pair<std::string, std::int64_t>> heads;
  for (const ArchiveEntry& e : entries) heads.emplace_back(e.name, static_cast<std::int64_t>(e.bytes.size()));
  return detail::write_archive(
      [&](struct archive* a) {
        detail::check(archive_write_set_format_zip(a), a, "zip");
        detail::check(archive_write_set_options(a, deflate ? "zip:compression=deflate" : "zip:compression=store"), a,
                      "compression");
      },
      heads,
      [&](struct archive* a, std::size_t i) {
        const std::string& bytes = entries[i].bytes;
        if (archive_write_data(a, bytes.data(), bytes.size()) != static_cast<la_ssize_t>(bytes.size()))
          throw std::runtime_error(std::string("write: ") + archive_error_string(a));
      });
}

// `levels` zips, each holding the next; the innermost holds `payload` as "payload.txt".
inline std::string make_nested_zip(unsigned levels, const std::string& payload) {
  std::string inner = payload, name = "payload.txt";
  for (unsigned i = 0; i < levels; ++i) {
    inner = make_zip({{name, inner}});
    name = "level" + std::to_string(levels - i) + ".zip";
  }
  return inner;
}

// A gzip-compressed file of `size` bytes `fill` (about size / 1000 bytes long).
inline std::string make_gzip_of(std::int64_t size, char fill = '\0') {
  return detail::write_archive(
      [](struct archive* a) {
        detail::check(archive_write_set_format_raw(a), a, "raw");
        detail::check(archive_write_add_filter_gzip(a), a, "gzip");
      },
      {{"zeros", size}},
      [&](struct archive* a, std::size_t) {
        const std::string zeros(1 << 20, fill);
        for (std::int64_t left = size; left > 0;) {
          const auto n = static_cast<std::size_t>(std::min<std::int64_t>(left, static_cast<std::int64_t>(zeros.size())));
          if (archive_write_data(a, zeros.data(), n) != static_cast<la_ssize_t>(n))
            throw std::runtime_error(std::string("write: ") + archive_error_string(a));
          left -= static_cast<std::int64_t>(n);
        }
      });
}

} // namespace mh::content::testing
