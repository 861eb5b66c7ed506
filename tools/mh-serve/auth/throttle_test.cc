// throttle_test.cc — the failure schedule with a fake clock: delays 0, 1, 2, 4, 8, 15 s,
// the lock-out after 10 failures and its end, reset by success, IPv6 /64 keys, the bound
// on memory, and concurrent use.
#include "auth/throttle.h"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using mh::auth::Throttle;
using mh::auth::ThrottleConfig;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

namespace {
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  Throttle::Clock fn() {
    return [this] { return now; };
  }
};
} // namespace

TEST_CASE("delays double from the second failure, capped; the tenth throttles") {
  FakeClock clock;
  Throttle t({}, clock.fn());
  const ms expected[] = {0ms, 1000ms, 2000ms, 4000ms, 8000ms, 15000ms, 15000ms, 15000ms, 15000ms, 15000ms};
  for (ms e : expected) {
    CHECK_FALSE(t.throttled("192.0.2.1"));
    CHECK(t.failure("192.0.2.1") == e);
    clock.now += 10s;
  }
  CHECK(t.throttled("192.0.2.1"));
  CHECK_FALSE(t.throttled("192.0.2.2"));  // others are not affected
  // Refusals do not extend the lock-out: it ends 15 min after the last failure.
  clock.now += 14min;
  CHECK(t.throttled("192.0.2.1"));
  clock.now += 50s;  // 10 s + 14 min + 50 s = 15 min since the last failure
  CHECK_FALSE(t.throttled("192.0.2.1"));
  CHECK(t.failure("192.0.2.1") == 0ms);  // a fresh start
}

TEST_CASE("failures spaced more than the window apart never add up") {
  FakeClock clock;
  Throttle t({}, clock.fn());
  for (int i = 0; i < 20; ++i) {
    CHECK(t.failure("192.0.2.1") == 0ms);
    clock.now += 15min;
  }
  CHECK_FALSE(t.throttled("192.0.2.1"));
}

TEST_CASE("a success forgets the client") {
  FakeClock clock;
  Throttle t({}, clock.fn());
  t.failure("192.0.2.1");
  CHECK(t.failure("192.0.2.1") == 1000ms);
  t.success("192.0.2.1");
  CHECK(t.failure("192.0.2.1") == 0ms);
}

TEST_CASE("IPv6 clients are counted per /64") {
  CHECK(Throttle::key_of("192.0.2.1") == "192.0.2.1");
  CHECK(Throttle::key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(Throttle::key_of("2001:DB8:1:2::1") == "2001:db8:1:2::/64");
  FakeClock clock;
  Throttle t({}, clock.fn());
  t.failure("2001:db8:1:2::1");
  CHECK(t.failure("2001:db8:1:2::ffff") == 1000ms);
  CHECK(t.failure("2001:db8:1:3::1") == 0ms);
}

TEST_CASE("the table is bounded; the oldest failure goes first") {
  FakeClock clock;
  ThrottleConfig c;
  c.max_clients = 3;
  Throttle t(c, clock.fn());
  t.failure("192.0.2.1");
  clock.now += 1s;
  t.failure("192.0.2.2");
  clock.now += 1s;
  t.failure("192.0.2.3");
  clock.now += 1s;
  t.failure("192.0.2.2");  // .2 is now the most recent
  clock.now += 1s;
  t.failure("192.0.2.4");  // evicts .1
  CHECK(t.tracked() == 3);
  CHECK(t.failure("192.0.2.2") == 2000ms);  // kept: its third failure
  CHECK(t.failure("192.0.2.1") == 0ms);     // forgotten (and .3 evicted for it)
  CHECK(t.tracked() == 3);
  for (int i = 0; i < 100000; ++i) t.failure("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  CHECK(t.tracked() == 3);
}

TEST_CASE("shortened limits, as tests of the daemon use them") {
  FakeClock clock;
  ThrottleConfig c;
  c.window = 2s;
  c.max_failures = 3;
  c.first_delay = 10ms;
  c.max_delay = 30ms;
  Throttle t(c, clock.fn());
  CHECK(t.failure("192.0.2.1") == 0ms);
  CHECK(t.failure("192.0.2.1") == 10ms);
  CHECK(t.failure("192.0.2.1") == 20ms);
  CHECK(t.throttled("192.0.2.1"));
  clock.now += 2s;
  CHECK_FALSE(t.throttled("192.0.2.1"));
}

TEST_CASE("concurrent failures and successes from many threads") {
  Throttle t;  // the real clock
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&t, k] {
      for (int i = 0; i < 2000; ++i) {
        const std::string ip = "198.51.100." + std::to_string(i % 50);
        if ((i + k) % 7 == 0) t.success(ip);
        else t.failure(ip);
        (void)t.throttled(ip);
      }
    });
  for (auto& th : threads) th.join();
  CHECK(t.tracked() <= 50);
}
