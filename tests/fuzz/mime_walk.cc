// mime_walk.cc — libFuzzer target over content checking (tools/mh-serve/content/): the
// input is a message; inspect_message walks it with a fake scanner that flags any decoded
// part holding MARKER, then apply_edits writes the cleaned copy. Besides "no crash":
//  * edits are sorted, do not overlap and lie inside the message; clean/failed/rejected
//    carry no edits, cleaned carries at least one and names what it found;
//  * apply_edits sends chunks of at most 64 KiB and exactly the edited bytes;
//  * a cleaned copy, inspected again with the same scanner, is clean (the removal took
//    the whole part, the notice never repeats the marker, the MIME structure survives);
//  * with a scanner that never answers (first byte odd) mail is never clean unless
//    nothing was scanned, and never cleaned: no mail passes unscanned.
#include "content/inspection.h"
#include "content/test_support.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace {

using mh::content::ContentLimits;
using mh::content::Inspection;
using Verdict = Inspection::Verdict;

// Control characters: no file name or type in a notice can carry it (they become spaces),
// so the cleaned copy must not hold it in any part. Its base64 is "AVZJUlVTAg==".
constexpr std::string_view marker = "\x01VIRUS\x02";

void require(bool ok, const char* what, const Inspection& r) {
  if (ok) return;
  std::fprintf(stderr, "mime_walk: %s (verdict %d, %zu edits, detail \"%s\")\n", what, static_cast<int>(r.verdict),
               r.edits.size(), r.detail.c_str());
  __builtin_trap();
}

// Smaller than the defaults where a fuzz input could otherwise spend seconds (archives).
ContentLimits fuzz_limits() {
  ContentLimits limits;
  limits.expanded_content = 8 << 20;
  return limits;
}

void check_edits(std::string_view message, const Inspection& r) {
  std::uint64_t end = 0;
  for (const auto& e : r.edits) {
    require(e.offset >= end, "edits out of order or overlapping", r);
    require(e.offset <= message.size() && e.length <= message.size() - e.offset, "edit outside the message", r);
    end = e.offset + e.length;
  }
  if (r.verdict == Verdict::cleaned) {
    require(!r.edits.empty(), "cleaned without edits", r);
    require(!r.findings.empty(), "cleaned without findings", r);
  } else {
    require(r.edits.empty(), "edits without cleaning", r);
  }
}

std::string apply(std::string_view message, const Inspection& r) {
  std::string out;
  mh::content::apply_edits(message, r.edits, [&](std::string_view chunk) {
    require(chunk.size() <= 65536, "apply_edits chunk over 64 KiB", r);
    out.append(chunk);
  });
  std::uint64_t expected = message.size();
  for (const auto& e : r.edits) expected = expected - e.length + e.bytes.size();
  require(out.size() == expected, "apply_edits output size differs from the edits", r);
  return out;
}

void check_marker_scanner(std::string_view message) {
  mh::content::testing::MarkerScanner scanner{std::string(marker)};
  const Inspection r = mh::content::inspect_message(message, scanner, fuzz_limits());
  check_edits(message, r);
  require(r.parts_scanned <= fuzz_limits().mime_parts, "more parts scanned than limits.mime_parts", r);
  const std::string out = apply(message, r);
  if (r.verdict != Verdict::cleaned) return;
  mh::content::testing::MarkerScanner again{std::string(marker)};
  const Inspection second = mh::content::inspect_message(out, again, fuzz_limits());
  if (second.verdict != Verdict::clean) {
    std::fprintf(stderr, "mime_walk: cleaned copy:\n%s\n", out.c_str());
    require(false, "the cleaned copy is not clean", second);
  }
}

void check_failing_scanner(std::string_view message) {
  mh::content::testing::FailingScanner scanner;
  const Inspection r = mh::content::inspect_message(message, scanner, fuzz_limits());
  check_edits(message, r);
  require(r.verdict != Verdict::cleaned, "cleaned without a verdict", r);
  require(r.verdict != Verdict::clean || scanner.calls == 0, "clean although the scanner failed", r);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view message(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) check_failing_scanner(message);
  else check_marker_scanner(message);
  return 0;
}
