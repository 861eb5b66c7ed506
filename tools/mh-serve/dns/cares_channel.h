// cares_channel.h — internal to mh_dns (fcrdns.cc, mx.cc): one c-ares channel and the
// thread that runs it, plus the small helpers both resolvers share. c-ares 1.18 channels
// are not thread-safe and have no event thread of their own, so each resolver owns one
// CaresChannel: its thread polls the channel's sockets (tracked with
// ARES_OPT_SOCK_STATE_CB) and an eventfd that other threads write to hand it work, runs
// c-ares' retries, and calls the resolver's Hooks between waits. Every c-ares call and
// every hook runs on that thread. Servers come from ResolverConfig ("ip", "ip:port",
// "[v6]:port"); a malformed one, a non-positive timeout or a c-ares setup failure throws
// std::runtime_error from the constructor. Not installed, not included by any public header.
#pragma once

#include "dns/fcrdns.h"  // ResolverConfig, kTries

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct ares_channeldata;  // <ares.h>: typedef struct ares_channeldata* ares_channel

namespace mh::dns::internal {

using Clock = std::chrono::steady_clock;

// An IP address in binary form, as PTR parsing and A/AAAA comparison need it.
struct Address {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};
  std::size_t size = 4;
  std::string text;  // canonical; v4-mapped IPv6 (::ffff:a.b.c.d) is shown as IPv4
};
std::optional<Address> parse_address(std::string_view text);

// Text from DNS that failed validation still goes to the log: make it printable.
std::string printable(std::string_view s, std::size_t limit = 255);
std::string join(const std::vector<std::string>& parts, const char* sep);
// ares_strerror(), except for ARES_ECONNREFUSED (see the .cc).
std::string status_text(int status);

class CaresChannel {
public:
  // What the channel's thread does besides running c-ares; all called on that thread.
  struct Hooks {
    // Before each wait: take submitted work, answer expired work, start queries.
    std::function<void(Clock::time_point now)> turn;
    // The earliest deadline of the resolver's own work, if any: the wait ends there.
    std::function<std::optional<Clock::time_point>()> next_deadline;
    // The channel has been destroyed (queries in flight ended with ARES_EDESTRUCTION):
    // answer everything still pending or submitted. Called once, last.
    std::function<void()> stopped;
  };

  explicit CaresChannel(const ResolverConfig& config);
  ~CaresChannel();  // stop()s the thread if it runs
  CaresChannel(const CaresChannel&) = delete;
  CaresChannel& operator=(const CaresChannel&) = delete;

  void start(Hooks hooks);  // once; starts the thread
  void stop();              // any thread but the channel's; idempotent; joins
  void wake();              // any thread: run a turn soon (new work was submitted)

  ares_channeldata* get() const { return channel_; }  // the channel's thread only
  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

private:
  void run();
  int poll_timeout_ms(Clock::time_point now);
  void wait_and_process(int timeout_ms);
  static void sock_state(void* data, int fd, int readable, int writable);

  ares_channeldata* channel_ = nullptr;
  int wake_fd_ = -1;
  Hooks hooks_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::map<int, short> sockets_;  // channel's thread only: what c-ares waits for
};

} // namespace mh::dns::internal
