// throttle.h — slows down and then stops password guessing, per client address (SPEC §8:
// "failed logins are slowed and throttled per client"). Shared by SMTP AUTH and POP3
// through SpoolAuthenticator. The schedule, with the defaults of ThrottleConfig:
//   * failures of one client count while they come less than `window` (15 min) apart;
//     `window` after its last failure a client is forgotten;
//   * the reply to the n-th failure waits 0 s for n = 1, then 1, 2, 4, 8 s, capped at
//     15 s (like Dovecot's auth_penalty: a typo costs nothing, a script gets slow);
//   * from the 10th failure on the client is refused without a password check until
//     `window` has passed since that failure (refusals do not extend it, so a user
//     behind the same NAT as the attacker gets back in);
//   * a success forgets the client.
// Unknown users and wrong passwords count the same. IPv6 clients are keyed by their /64
// (one host usually owns a whole /64). Memory is bounded: at most `max_clients` entries,
// the one whose last failure is oldest is dropped first. Thread-safe (one mutex); the
// clock is injectable so tests need not sleep.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mh::auth {

struct ThrottleConfig {
  std::chrono::milliseconds window{15 * 60 * 1000};
  unsigned max_failures = 10;                    // this many in the window: throttled
  std::chrono::milliseconds first_delay{1000};   // the 2nd failure's; doubles after
  std::chrono::milliseconds max_delay{15000};    // also the delay of a throttled refusal
  std::size_t max_clients = 65536;
};

class Throttle {
public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit Throttle(ThrottleConfig config = {}, Clock clock = &std::chrono::steady_clock::now);

  // True when `ip` has reached max_failures within the window: refuse unchecked.
  bool throttled(std::string_view ip);
  // Records a failure; returns how long to wait before replying to it.
  std::chrono::milliseconds failure(std::string_view ip);
  // A successful login: the client starts afresh.
  void success(std::string_view ip);

  const ThrottleConfig& config() const noexcept { return config_; }
  std::size_t tracked() const;  // entries held (tests: the bound)
  // The table key of a client address: IPv4 as is, IPv6 as its /64 ("2001:db8:1:2::/64").
  static std::string key_of(std::string_view ip);

private:
  struct Entry {
    unsigned failures = 0;
    std::chrono::steady_clock::time_point last_failure;
    std::list<std::string>::iterator age;  // position in by_age_
  };
  using Table = std::unordered_map<std::string, Entry>;

  // The entry of `key` if it exists and has not expired (an expired one is erased).
  Entry* live(const std::string& key, std::chrono::steady_clock::time_point now);
  void erase(Table::iterator it);

  ThrottleConfig config_;
  Clock clock_;
  mutable std::mutex mutex_;
  Table table_;
  std::list<std::string> by_age_;  // keys, oldest last failure first
};

} // namespace mh::auth
