// limits.h — connection admission: at most `total` connections and at most `per_ip`
// from one client address (limits.connections / limits.connections_per_ip, SPEC §8).
// Thread-safe; a Ticket gives its slot back when destroyed, so a connection that ends
// in any way (error, timeout, shutdown) can never leak a slot.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace mh::net {

class ConnectionLimits {
public:
  ConnectionLimits(std::uint32_t total, std::uint32_t per_ip) : total_limit_(total), per_ip_limit_(per_ip) {}

  // Holds one admitted connection's slot.
  class Ticket {
  public:
    Ticket(ConnectionLimits& owner, std::string ip) : owner_(&owner), ip_(std::move(ip)) {}
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { owner_->release(ip_); }

  private:
    ConnectionLimits* owner_;
    std::string ip_;
  };

  // A ticket when both limits allow one more connection from `ip`, else nullptr.
  std::unique_ptr<Ticket> admit(const std::string& ip);

  std::uint32_t active() const;
  std::uint32_t active_from(const std::string& ip) const;

private:
  void release(const std::string& ip);

  const std::uint32_t total_limit_;
  const std::uint32_t per_ip_limit_;
  mutable std::mutex mutex_;
  std::uint32_t total_ = 0;
  std::map<std::string, std::uint32_t> per_ip_;  // only addresses with connections
};

} // namespace mh::net
