// limits_test.cc — total and per-IP connection limits, slots returned on release.
#include "net/limits.h"

#include <catch2/catch.hpp>

using mh::net::ConnectionLimits;

TEST_CASE("per-IP and total limits") {
  ConnectionLimits limits(3, 2);
  auto a1 = limits.admit("127.0.0.2");
  auto a2 = limits.admit("127.0.0.2");
  CHECK(a1);
  CHECK(a2);
  CHECK_FALSE(limits.admit("127.0.0.2"));
  auto b1 = limits.admit("127.0.0.3");
  CHECK(b1);
  CHECK_FALSE(limits.admit("127.0.0.4"));  // total reached
  CHECK(limits.active() == 3);
  a1.reset();
  CHECK(limits.active_from("127.0.0.2") == 1);
  CHECK(limits.admit("127.0.0.4"));  // temporary ticket released at once
  CHECK(limits.active() == 2);
  a2.reset();
  b1.reset();
  CHECK(limits.active() == 0);
  CHECK(limits.active_from("127.0.0.2") == 0);
}
