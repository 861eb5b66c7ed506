// networks.h — address ranges from mailhost.yaml (trusted_networks, auth.allow_plaintext):
// "192.0.2.0/24", "2001:db8::/32", or a single address ("127.0.0.1" = /32, "::1" = /128).
// Parsing is strict — host bits set after the prefix ("10.0.0.1/8") are an error, since
// such a line usually means a typo — and says why; the caller turns that into a config
// error naming the file and key. An IPv4 client seen as ::ffff:a.b.c.d on a dual-stack
// socket matches IPv4 ranges.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::dns {

class Network {
public:
  // nullopt when malformed; then *why (if given) says what is wrong.
  static std::optional<Network> parse(std::string_view text, std::string* why = nullptr);

  bool contains(std::string_view ip) const;
  std::string text() const;  // canonical: "192.0.2.0/24"

private:
  int family_ = 0;                        // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes_{};
  unsigned prefix_ = 0;
};

// True when `ip` is inside one of `networks`.
bool in_networks(const std::vector<Network>& networks, std::string_view ip);

} // namespace mh::dns
