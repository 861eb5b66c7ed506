// throttle.cc — the failure table: a hash map for lookups plus a list ordered by last
// failure, so expiry and eviction are O(1) from its front.
#include "auth/throttle.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mh::auth {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

Throttle::Throttle(ThrottleConfig config, Clock clock) : config_(config), clock_(std::move(clock)) {
  if (config_.max_clients == 0) config_.max_clients = 1;
}

std::string Throttle::key_of(std::string_view ip) {
  if (ip.find(':') == std::string_view::npos) return std::string(ip);
  in6_addr a{};
  const std::string text(ip);
  if (::inet_pton(AF_INET6, text.c_str(), &a) != 1) return text;  // not an address: key as given
  std::memset(reinterpret_cast<unsigned char*>(&a) + 8, 0, 8);
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return std::string(buf) + "/64";
}

void Throttle::erase(Table::iterator it) {
  by_age_.erase(it->second.age);
  table_.erase(it);
}

Throttle::Entry* Throttle::live(const std::string& key, steady_clock::time_point now) {
  auto it = table_.find(key);
  if (it == table_.end()) return nullptr;
  if (now - it->second.last_failure >= config_.window) {
    erase(it);
    return nullptr;
  }
  return &it->second;
}

bool Throttle::throttled(std::string_view ip) {
  const auto now = clock_();
  std::lock_guard lock(mutex_);
  const Entry* e = live(key_of(ip), now);
  return e && e->failures >= config_.max_failures;
}

milliseconds Throttle::failure(std::string_view ip) {
  const auto now = clock_();
  const std::string key = key_of(ip);
  std::lock_guard lock(mutex_);
  // Expired entries sit at the front of by_age_; drop them while we are here.
  while (!by_age_.empty()) {
    auto oldest = table_.find(by_age_.front());
    if (now - oldest->second.last_failure < config_.window) break;
    erase(oldest);
  }
  Entry* e = live(key, now);
  if (!e) {
    if (table_.size() >= config_.max_clients) erase(table_.find(by_age_.front()));
    auto [it, inserted] = table_.emplace(key, Entry{});
    e = &it->second;
    e->age = by_age_.insert(by_age_.end(), key);
  } else {
    by_age_.splice(by_age_.end(), by_age_, e->age);
  }
  e->failures = std::min(e->failures + 1, config_.max_failures);
  e->last_failure = now;
  if (e->failures <= 1) return milliseconds(0);
  // first_delay · 2^(n-2), computed without overflow: stop doubling at the cap.
  milliseconds delay = config_.first_delay;
  for (unsigned i = 2; i < e->failures && delay < config_.max_delay; ++i) delay *= 2;
  return std::min(delay, config_.max_delay);
}

void Throttle::success(std::string_view ip) {
  std::lock_guard lock(mutex_);
  auto it = table_.find(key_of(ip));
  if (it != table_.end()) erase(it);
}

std::size_t Throttle::tracked() const {
  std::lock_guard lock(mutex_);
  return table_.size();
}

} // namespace mh::auth
