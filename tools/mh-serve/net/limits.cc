// limits.cc — counting connections in total and per client address.
#include "net/limits.h"

namespace mh::net {

std::unique_ptr<ConnectionLimits::Ticket> ConnectionLimits::admit(const std::string& ip) {
  std::lock_guard lock(mutex_);
  auto it = per_ip_.find(ip);
  const std::uint32_t from_ip = it == per_ip_.end() ? 0 : it->second;
  if (total_ >= total_limit_ || from_ip >= per_ip_limit_) return nullptr;
  ++total_;
  ++per_ip_[ip];
  return std::make_unique<Ticket>(*this, ip);
}

void ConnectionLimits::release(const std::string& ip) {
  std::lock_guard lock(mutex_);
  --total_;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

std::uint32_t ConnectionLimits::active() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::uint32_t ConnectionLimits::active_from(const std::string& ip) const {
  std::lock_guard lock(mutex_);
  auto it = per_ip_.find(ip);
  return it == per_ip_.end() ? 0 : it->second;
}

} // namespace mh::net
