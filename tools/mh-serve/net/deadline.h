// deadline.h — the DATA time limit of SPEC §8 ("Deadlines, not idle timers") as pure
// arithmetic, so it is tested without sockets. Postfix's smtpd_min_data_rate design:
// DATA starts with `timeouts.data`; every read of N bytes moves the deadline N/rate
// seconds later, but never more than `timeouts.data` past now (a fast burst buys no
// idle time). A client below `limits.min_data_rate` on average falls behind and is cut.
// Rate 0 turns the rule off: each read then restarts `timeouts.data` (an idle timer).
// Command lines need no class: their deadline starts at the previous reply and is not
// moved by the bytes of the line (net/connection.cc, net/pop3_connection.cc).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace mh::net {

class DataDeadline {
public:
  using Clock = std::chrono::steady_clock;

  DataDeadline(Clock::time_point start, std::chrono::milliseconds timeout, std::uint32_t min_rate)
      : timeout_(timeout), min_rate_(min_rate), deadline_(start + timeout) {}

  // `bytes` more arrived at `now`.
  void received(Clock::time_point now, std::uint64_t bytes) {
    if (min_rate_ == 0) {
      deadline_ = now + timeout_;
      return;
    }
    const auto earned = std::chrono::microseconds(bytes * 1'000'000 / min_rate_);
    deadline_ = std::min<Clock::time_point>(deadline_ + earned, now + timeout_);
  }

  Clock::time_point deadline() const noexcept { return deadline_; }

private:
  std::chrono::milliseconds timeout_;
  std::uint32_t min_rate_;
  Clock::time_point deadline_;
};

} // namespace mh::net
