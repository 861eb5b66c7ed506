// networks.cc — CIDR ranges: parse strictly, compare prefixes bit by bit.
#include "dns/networks.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace mh::dns {

namespace {

struct Parsed {
  int family;
  std::array<unsigned char, 16> bytes{};
};

std::optional<Parsed> parse_ip(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  Parsed p{AF_INET};
  if (inet_pton(AF_INET, s.c_str(), p.bytes.data()) == 1) return p;
  p.family = AF_INET6;
  if (inet_pton(AF_INET6, s.c_str(), p.bytes.data()) == 1) return p;
  return std::nullopt;
}

// ::ffff:a.b.c.d (RFC 4291 §2.5.5.2) as the IPv4 address it stands for.
Parsed unmap(Parsed p) {
  static constexpr unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (p.family == AF_INET6 && std::memcmp(p.bytes.data(), v4_mapped, sizeof v4_mapped) == 0) {
    std::memmove(p.bytes.data(), p.bytes.data() + 12, 4);
    std::fill(p.bytes.begin() + 4, p.bytes.end(), 0);
    p.family = AF_INET;
  }
  return p;
}

bool prefix_equal(const unsigned char* a, const unsigned char* b, unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  if (bits % 8 == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - bits % 8));
  return (a[whole] & mask) == (b[whole] & mask);
}

std::optional<Network> fail(std::string* why, std::string text) {
  if (why) *why = std::move(text);
  return std::nullopt;
}

} // namespace

std::optional<Network> Network::parse(std::string_view text, std::string* why) {
  const auto slash = text.find('/');
  const auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return fail(why, "'" + std::string(text.substr(0, slash)) + "' is not an IP address");
  const unsigned max = ip->family == AF_INET ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return fail(why, "'" + std::string(digits) + "' is not a prefix length");
    prefix = static_cast<unsigned>(std::stoul(std::string(digits)));
    if (prefix > max) return fail(why, "prefix length " + std::to_string(prefix) + " is over " + std::to_string(max));
  }
  Network n;
  n.family_ = ip->family;
  n.bytes_ = ip->bytes;
  n.prefix_ = prefix;
  // Host bits must be zero: compare the address with itself cut to the prefix.
  std::array<unsigned char, 16> cut{};
  const unsigned whole = prefix / 8;
  std::memcpy(cut.data(), n.bytes_.data(), whole);
  if (prefix % 8) cut[whole] = static_cast<unsigned char>(n.bytes_[whole] & (0xff << (8 - prefix % 8)));
  if (cut != n.bytes_) return fail(why, "host bits are set after the /" + std::to_string(prefix) + " prefix");
  return n;
}

bool Network::contains(std::string_view ip) const {
  const auto parsed = parse_ip(ip);
  if (!parsed) return false;
  const Parsed p = family_ == AF_INET ? unmap(*parsed) : *parsed;
  return p.family == family_ && prefix_equal(p.bytes.data(), bytes_.data(), prefix_);
}

std::string Network::text() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, bytes_.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_);
}

bool in_networks(const std::vector<Network>& networks, std::string_view ip) {
  return std::any_of(networks.begin(), networks.end(), [ip](const Network& n) { return n.contains(ip); });
}

} // namespace mh::dns
