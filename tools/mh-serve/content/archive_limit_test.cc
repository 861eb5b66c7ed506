// archive_limit_test.cc — measure_archive on archives written in memory (test_archives.h):
// plain data is no archive, a zip counts the exact bytes of its entries, nesting past the
// limit is too deep, and a gzip bomb stops soon after the budget instead of inflating all.
#include "content/archive_limit.h"
#include "content/test_archives.h"
#include "content/test_support.h"

#include <catch2/catch.hpp>

#include <string>

using namespace mh::content;
using namespace mh::content::testing;

namespace {

constexpr std::uint64_t plenty = 104857600;

ArchiveMeasure measure(const std::string& bytes, std::uint64_t budget = plenty, unsigned depth = 8) {
  StringSource s{bytes};
  return measure_archive(s.source(), budget, depth);
}

} // namespace

TEST_CASE("measure_archive: plain text and empty data are not archives", "[content][archive]") {
  for (const std::string& data : {std::string("Hello,\r\nthis is plain text, not an archive.\r\n"), std::string(),
                                  std::string(100000, 'x')}) {
    const ArchiveMeasure m = measure(data);
    CHECK_FALSE(m.archive);
    CHECK(m.expanded == 0);
    CHECK_FALSE(m.too_big);
    CHECK_FALSE(m.too_deep);
  }
}

TEST_CASE("measure_archive: a zip expands to the sum of its entries", "[content][archive]") {
  const std::string a(1000, 'a'), b(5000, '\0'), c = "short";
  for (bool deflate : {false, true}) {
    INFO("deflate " << deflate);
    const ArchiveMeasure m = measure(make_zip({{"a.txt", a}, {"dir/b.bin", b}, {"c", c}}, deflate));
    CHECK(m.archive);
    CHECK(m.expanded == a.size() + b.size() + c.size());
    CHECK_FALSE(m.too_big);
    CHECK_FALSE(m.too_deep);
  }
}

TEST_CASE("measure_archive: a zip inside a zip counts both levels", "[content][archive]") {
  const std::string inner = make_zip({{"x.txt", std::string(3000, 'x')}});
  const ArchiveMeasure m = measure(make_zip({{"inner.zip", inner}, {"y.txt", std::string(700, 'y')}}));
  CHECK(m.archive);
  // Every byte every entry unpacks to, at every level: the inner zip itself and its content.
  CHECK(m.expanded == inner.size() + 700 + 3000);
  CHECK_FALSE(m.too_deep);
}

TEST_CASE("measure_archive: nesting past max_depth is too deep", "[content][archive]") {
  const ArchiveMeasure shallow = measure(make_nested_zip(3, "payload"), plenty, 8);
  CHECK(shallow.archive);
  CHECK_FALSE(shallow.too_deep);
  CHECK_FALSE(shallow.too_big);

  const ArchiveMeasure deep = measure(make_nested_zip(12, "payload"), plenty, 8);
  CHECK(deep.archive);
  CHECK(deep.too_deep);
  CHECK_FALSE(deep.detail.empty());

  // The limit is the one passed in, not a constant.
  CHECK(measure(make_nested_zip(3, "payload"), plenty, 1).too_deep);
}

TEST_CASE("measure_archive: a zip of zeros past the budget is too big", "[content][archive]") {
  const std::string zip = make_zip({{"zeros.bin", std::string(3 << 20, '\0')}});
  const ArchiveMeasure m = measure(zip, 1 << 20, 8);
  CHECK(m.archive);
  CHECK(m.too_big);
  CHECK_FALSE(m.detail.empty());
  CHECK(m.expanded > (1u << 20));
}

TEST_CASE("measure_archive: a gzip of 200 MB of zeros stops soon after a 1 MB budget", "[content][archive]") {
  const std::string gz = make_gzip_of(std::int64_t{200} << 20);
  REQUIRE(gz.size() < (1u << 20));
  StringSource s{gz};
  const ArchiveMeasure m = measure_archive(s.source(), 1 << 20, 8);
  CHECK(m.archive);
  CHECK(m.too_big);
  CHECK(m.expanded > (1u << 20));
  // "Stops as soon as a limit is passed": far from 200 MB (a generous bound on read-ahead).
  CHECK(m.expanded < (8u << 20));
  CHECK(s.pulled < gz.size());
}

TEST_CASE("measure_archive: under the budget a gzip is measured whole, zeros or not", "[content][archive]") {
  // Zeros matter: to libarchive's tar reader a zero block is an end-of-archive marker.
  for (char fill : {'a', '\0'}) {
    INFO("fill " << int(fill));
    const ArchiveMeasure m = measure(make_gzip_of(2 << 20, fill), 4 << 20, 8);
    CHECK(m.archive);
    CHECK_FALSE(m.too_big);
    CHECK(m.expanded == (2u << 20));
  }
}

TEST_CASE("measure_archive: damaged data is measured as far as it reads, never refused as deep", "[content][archive]") {
  std::string zip = make_zip({{"a.txt", std::string(4000, 'a')}, {"b.txt", std::string(4000, 'b')}});
  zip.resize(zip.size() / 2);  // cut in the middle: libarchive still recognises the start
  const ArchiveMeasure m = measure(zip);
  CHECK(m.archive);
  CHECK_FALSE(m.too_deep);
  CHECK_FALSE(m.too_big);
  CHECK(m.expanded <= 8000);
}
