// deadline_test.cc — the DATA deadline: extended at the minimum rate, capped at
// timeouts.data ahead, and an idle timer when the rate is 0.
#include "net/deadline.h"

#include <catch2/catch.hpp>

using mh::net::DataDeadline;
using namespace std::chrono_literals;

TEST_CASE("DATA deadline: timeouts.data first, then the minimum rate") {
  const auto t0 = DataDeadline::Clock::time_point{} + 1000s;
  DataDeadline d(t0, 2s, 1000);
  CHECK(d.deadline() == t0 + 2s);
  // A trickler at 100 bytes/s earns 0.1 s per second: it falls behind and is cut.
  auto now = t0;
  int cut_after = 0;
  for (int s = 1; s < 10; ++s) {
    now = t0 + std::chrono::seconds(s);
    if (now >= d.deadline()) {
      cut_after = s;
      break;
    }
    d.received(now, 100);
  }
  CHECK(cut_after == 3);  // deadline 2.2 s: the read at 3 s comes too late
}

TEST_CASE("DATA deadline: a fast sender never runs out, a burst buys no idle time") {
  const auto t0 = DataDeadline::Clock::time_point{} + 1000s;
  DataDeadline d(t0, 2s, 1000);
  for (int i = 1; i <= 100; ++i) d.received(t0 + std::chrono::milliseconds(10 * i), 16384);
  CHECK(d.deadline() == t0 + 1s + 2s);  // capped at timeouts.data past the last read
  DataDeadline exact(t0, 2s, 500);
  exact.received(t0 + 1s, 250);  // 0.5 s earned
  CHECK(exact.deadline() == t0 + 2500ms);
}

TEST_CASE("DATA deadline: rate 0 is an idle timer") {
  const auto t0 = DataDeadline::Clock::time_point{} + 1000s;
  DataDeadline d(t0, 2s, 0);
  d.received(t0 + 1900ms, 1);
  CHECK(d.deadline() == t0 + 3900ms);
}
