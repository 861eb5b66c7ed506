// fcrdns_test.cc — the pure parts of the reverse-DNS check: address canonical forms,
// reverse names, which PTR names count as host names, and the exact reply texts.
#include "dns/fcrdns.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <vector>

using namespace mh::dns;

namespace {

// A UDP socket on 127.0.0.1 that receives queries and never answers them.
class Blackhole {
public:
  Blackhole() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    address_ = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  }
  ~Blackhole() { ::close(fd_); }
  const std::string& address() const { return address_; }

private:
  int fd_ = -1;
  std::string address_;
};

} // namespace

TEST_CASE("fcrdns: addresses are canonicalised; v4-mapped IPv6 becomes IPv4", "[dns]") {
  CHECK(canonical_ip("127.0.0.2") == "127.0.0.2");
  CHECK(canonical_ip("::ffff:127.0.0.2") == "127.0.0.2");
  CHECK(canonical_ip("2001:DB8:0:0::25") == "2001:db8::25");
  CHECK(canonical_ip("::1") == "::1");
  CHECK_FALSE(canonical_ip(""));
  CHECK_FALSE(canonical_ip("127.0.0.2\r\n250 ok"));
  CHECK_FALSE(canonical_ip("mail.example.test"));
  CHECK_FALSE(canonical_ip("127.0.0.256"));
}

TEST_CASE("fcrdns: reverse names follow RFC 1035 §3.5 and RFC 3596 §2.5", "[dns]") {
  CHECK(reverse_name("192.0.2.10") == "10.2.0.192.in-addr.arpa");
  CHECK(reverse_name("::ffff:192.0.2.10") == "10.2.0.192.in-addr.arpa");
  CHECK(reverse_name("2001:db8::567:89ab") ==
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
  CHECK(reverse_name("::1") == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
  CHECK_FALSE(reverse_name("nonsense"));
}

TEST_CASE("fcrdns: only plausible host names from PTR records are followed", "[dns]") {
  CHECK(host_name_ok("Mail.Example.TEST.") == "mail.example.test");
  CHECK(host_name_ok("a-b.example") == "a-b.example");
  CHECK(host_name_ok("_dmarc.example") == "_dmarc.example");
  CHECK(host_name_ok("localhost") == "localhost");
  CHECK(host_name_ok("1host.example") == "1host.example");
  CHECK_FALSE(host_name_ok(""));
  CHECK_FALSE(host_name_ok("."));
  CHECK_FALSE(host_name_ok("a..example"));
  CHECK_FALSE(host_name_ok("-a.example"));
  CHECK_FALSE(host_name_ok("a-.example"));
  CHECK_FALSE(host_name_ok("a b.example"));
  CHECK_FALSE(host_name_ok("evil.example\r\nX-Injected: 1"));
  CHECK_FALSE(host_name_ok("a\\.b.example"));   // c-ares' escape of a dot inside a label
  CHECK_FALSE(host_name_ok("127.0.0.2"));       // a PTR naming an address
  CHECK_FALSE(host_name_ok("host.123"));
  CHECK_FALSE(host_name_ok(std::string(64, 'a') + ".example"));
  CHECK(host_name_ok(std::string(63, 'a') + ".example"));
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  long_name += "example";  // 257 octets
  CHECK_FALSE(host_name_ok(long_name));
}

TEST_CASE("fcrdns: reply texts are sendmail's, exactly", "[dns]") {
  CHECK(smtp_reply_for({Verdict::confirmed, "good.example.test", ""}, "127.0.0.2") == "");
  CHECK(smtp_reply_for({Verdict::no_ptr, "", ""}, "127.0.0.3") == "550 5.7.1 Relaying denied. IP name lookup failed");
  CHECK(smtp_reply_for({Verdict::forged, "forged.example.test", ""}, "127.0.0.4") ==
        "550 5.7.1 Relaying denied. IP name possibly forged");
  CHECK(smtp_reply_for({Verdict::temporary_failure, "", ""}, "127.0.0.9") ==
        "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for 127.0.0.9");
  CHECK(smtp_reply_for({Verdict::temporary_failure, "", ""}, "::ffff:127.0.0.9") ==
        "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for 127.0.0.9");
  CHECK(smtp_reply_for({Verdict::temporary_failure, "", ""}, "2001:DB8::1") ==
        "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for 2001:db8::1");
  // Whatever reaches here, nothing of it can end the reply line early.
  CHECK(smtp_reply_for({Verdict::temporary_failure, "", ""}, "1.2.3.4\r\n250 2.0.0 Ok") ==
        "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for unknown");
}

TEST_CASE("fcrdns: malformed resolver settings are refused at construction", "[dns]") {
  CHECK_THROWS_WITH(FcrdnsChecker(ResolverConfig{{"dns.example.test"}, std::chrono::milliseconds(1000)}),
                    "bad DNS server 'dns.example.test': not an IP address");
  CHECK_THROWS_WITH(FcrdnsChecker(ResolverConfig{{"127.0.0.1:99999"}, std::chrono::milliseconds(1000)}),
                    "bad DNS server '127.0.0.1:99999': bad port");
  CHECK_THROWS_WITH(FcrdnsChecker(ResolverConfig{{"[::1]x"}, std::chrono::milliseconds(1000)}),
                    "bad DNS server '[::1]x'");
  CHECK_THROWS_WITH(FcrdnsChecker(ResolverConfig{{}, std::chrono::milliseconds(0)}), "DNS timeout must be positive");
  CHECK_NOTHROW(FcrdnsChecker(ResolverConfig{{"127.0.0.1:5353", "[::1]:5353", "::1", "192.0.2.1"},
                                             std::chrono::milliseconds(1000)}));
}

TEST_CASE("fcrdns: a string that is no address is answered (temporary), never looked up", "[dns]") {
  // The server never answers: a result within the test means nothing was asked.
  Blackhole dns;
  FcrdnsChecker checker(ResolverConfig{{dns.address()}, std::chrono::milliseconds(60000)});
  const Result r = checker.check_blocking("not-an-ip");
  CHECK(r.verdict == Verdict::temporary_failure);
  CHECK(r.detail == "not an IP address: 'not-an-ip'");
}

TEST_CASE("fcrdns: destroying the checker answers checks still running", "[dns]") {
  Blackhole dns;
  std::vector<Result> results;
  std::mutex m;
  {
    FcrdnsChecker checker(ResolverConfig{{dns.address()}, std::chrono::milliseconds(60000)});
    for (int i = 0; i < 3; ++i)
      checker.check("192.0.2.77", [&](Result r) {
        std::lock_guard lock(m);
        results.push_back(std::move(r));
      });
  }
  REQUIRE(results.size() == 3);
  for (const auto& r : results) {
    CHECK(r.verdict == Verdict::temporary_failure);
    CHECK(r.detail == "resolver stopped");
  }
}
