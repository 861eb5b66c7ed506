// networks_test.cc — trusted_networks-style ranges: strict parsing, exact matching.
#include "dns/networks.h"

#include <catch2/catch.hpp>

using mh::dns::Network;

namespace {
Network net(const char* text) {
  auto n = Network::parse(text);
  REQUIRE(n);
  return *n;
}
std::string why_not(const char* text) {
  std::string why;
  CHECK_FALSE(Network::parse(text, &why));
  return why;
}
} // namespace

TEST_CASE("networks: IPv4 ranges match their addresses, and v4-mapped IPv6 clients", "[dns]") {
  const Network n = net("192.0.2.0/25");
  CHECK(n.text() == "192.0.2.0/25");
  CHECK(n.contains("192.0.2.0"));
  CHECK(n.contains("192.0.2.127"));
  CHECK_FALSE(n.contains("192.0.2.128"));
  CHECK_FALSE(n.contains("192.0.3.1"));
  CHECK(n.contains("::ffff:192.0.2.5"));
  CHECK_FALSE(n.contains("2001:db8::1"));
  CHECK_FALSE(n.contains("garbage"));
  CHECK(net("127.0.0.1").text() == "127.0.0.1/32");
  CHECK(net("127.0.0.1").contains("127.0.0.1"));
  CHECK_FALSE(net("127.0.0.1").contains("127.0.0.2"));
  CHECK(net("0.0.0.0/0").contains("203.0.113.9"));
}

TEST_CASE("networks: IPv6 ranges", "[dns]") {
  const Network n = net("2001:db8:ab00::/40");
  CHECK(n.contains("2001:db8:abff::1"));
  CHECK_FALSE(n.contains("2001:db8:ac00::1"));
  CHECK_FALSE(n.contains("127.0.0.1"));
  CHECK(net("::1").text() == "::1/128");
  CHECK(net("::1/128").contains("::1"));
  CHECK(mh::dns::in_networks({net("10.0.0.0/8"), net("::1")}, "::1"));
  CHECK_FALSE(mh::dns::in_networks({net("10.0.0.0/8"), net("::1")}, "11.0.0.1"));
  CHECK_FALSE(mh::dns::in_networks({}, "::1"));
}

TEST_CASE("networks: malformed ranges say why", "[dns]") {
  CHECK(why_not("10.0.0.1/8") == "host bits are set after the /8 prefix");
  CHECK(why_not("10.0.0.0/33") == "prefix length 33 is over 32");
  CHECK(why_not("2001:db8::/129") == "prefix length 129 is over 128");
  CHECK(why_not("10.0.0.0/") == "'' is not a prefix length");
  CHECK(why_not("10.0.0.0/+8") == "'+8' is not a prefix length");
  CHECK(why_not("localhost/8") == "'localhost' is not an IP address");
  CHECK(why_not("") == "'' is not an IP address");
}
