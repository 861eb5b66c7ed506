// mx_test.cc — MX resolution (mx.h) against a real dnsmasq on 127.0.0.1 and a free port,
// started and stopped by each test (so tests may run in parallel), plus stub servers
// that answer SERVFAIL, answer garbage or never answer: RFC 5321 §5.1 order, implicit
// MX, RFC 7505 null MX, the permanent/temporary line, the limits, bounded time, and that
// every lookup is answered exactly once, from the resolver's thread.
#include "dns/mx.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace mh::dns;
using Kind = MxResult::Kind;
using namespace std::chrono_literals;

namespace {

int udp_socket_on_loopback(unsigned short port = 0) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

unsigned short port_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

// A port free for both UDP and TCP a moment ago (dnsmasq binds both).
unsigned short free_port() {
  for (;;) {
    const int u = udp_socket_on_loopback();
    REQUIRE(u >= 0);
    const unsigned short port = port_of(u);
    const int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    const bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    ::close(t);
    ::close(u);
    if (ok) return port;
  }
}

// rcode and answer count of one A query for `name`, or -1 when nothing came back in time.
std::pair<int, int> ask_a(unsigned short port, const std::string& name, int timeout_ms) {
  std::string q("\x4d\x48\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto dot = std::min(name.find('.', start), name.size());
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += std::string("\0\0\x01\0\x01", 5);
  const int fd = udp_socket_on_loopback();
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  pollfd p{fd, POLLIN, 0};
  unsigned char reply[512];
  std::pair<int, int> result{-1, 0};
  if (::poll(&p, 1, timeout_ms) == 1) {
    const auto n = ::recv(fd, reply, sizeof reply, 0);
    if (n >= 12) result = {reply[3] & 0xf, reply[6] << 8 | reply[7]};
  }
  ::close(fd);
  return result;
}

// A UDP "DNS server" on 127.0.0.1 that answers every query with SERVFAIL, with a
// NOERROR header that promises an answer it does not hold, or never at all.
class Stub {
public:
  enum class Mode { servfail, garbage, silent };
  explicit Stub(Mode mode) : mode_(mode) {
    fd_ = udp_socket_on_loopback();
    REQUIRE(fd_ >= 0);
    address_ = "127.0.0.1:" + std::to_string(port_of(fd_));
    thread_ = std::thread([this] { serve(); });
  }
  ~Stub() {
    stopping_ = true;
    thread_.join();
    ::close(fd_);
  }
  const std::string& address() const { return address_; }
  unsigned short port() const { return port_of(fd_); }
  int queries() const { return queries_; }

private:
  void serve() {
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) != 1) continue;
      unsigned char buf[512];
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      const auto n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 12) continue;
      ++queries_;
      if (mode_ == Mode::silent) continue;
      buf[2] = static_cast<unsigned char>(0x80 | (buf[2] & 0x79));  // QR, opcode and RD kept
      buf[3] = mode_ == Mode::servfail ? 0x82 : 0x80;               // RA, rcode
      buf[6] = 0;
      buf[7] = mode_ == Mode::garbage ? 1 : 0;                      // "one answer" — none follows
      buf[8] = buf[9] = buf[10] = buf[11] = 0;
      ::sendto(fd_, buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
  }

  Mode mode_;
  int fd_ = -1;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

// The zone: what each domain must resolve to is noted beside its records. Everything else
// under example.test is NXDOMAIN; servfail.test goes to a SERVFAIL stub and slow.test to
// one that never answers.
const char* const kRecords = R"(
host-record=probe.example.test,127.0.0.1

# several MX: mx1 and mx2 at 10 (either order), mx3 at 20
mx-host=multi.example.test,mx1.example.test,10
mx-host=multi.example.test,mx2.example.test,10
mx-host=multi.example.test,mx3.example.test,20
host-record=mx1.example.test,127.0.0.2
host-record=mx2.example.test,127.0.0.3,::1
host-record=mx3.example.test,127.0.0.4

# RFC 7505 null MX; and one beside a real MX, which is ignored
mx-host=null.example.test,.,0
mx-host=mixed.example.test,.,0
mx-host=mixed.example.test,mx1.example.test,10
# "10 ." is no null MX, and names no host
mx-host=dot10.example.test,.,10

# no MX: the implicit MX (the domain's own A/AAAA)
host-record=plain.example.test,127.0.0.5,2001:db8::5
# no MX, no A, no AAAA (the name exists: NODATA)
txt-record=empty.example.test,"no mail here"
# a CNAME to a host without MX: the implicit MX follows it
cname=alias.example.test,mx1.example.test

# MX hosts without addresses
mx-host=noaddr.example.test,gone.example.test,10
mx-host=noaddr.example.test,empty.example.test,20
mx-host=partial.example.test,gone.example.test,5
mx-host=partial.example.test,mx3.example.test,30

# garbage exchange names
mx-host=garbage.example.test,bad_name!x.example.test,5
mx-host=somegarbage.example.test,bad!.example.test,5
mx-host=somegarbage.example.test,127.0.0.9,6
mx-host=somegarbage.example.test,MX1.Example.Test,10
# an exchange that is a CNAME; the same host twice
cname=mxalias.example.test,mx3.example.test
mx-host=cnamed.example.test,mxalias.example.test,10
mx-host=twice.example.test,mx1.example.test,30
mx-host=twice.example.test,mx1.example.test,10
mx-host=twice.example.test,mx3.example.test,20

# lookups that fail: SERVFAIL, or no answer at all
mx-host=broken.example.test,mx.servfail.test,10
mx-host=halfbroken.example.test,mx.servfail.test,10
mx-host=halfbroken.example.test,mx3.example.test,20
mx-host=slow.example.test,mx.slow.test,10
mx-host=halfslow.example.test,mx.slow.test,10
mx-host=halfslow.example.test,mx3.example.test,20
)";

// Generated: 25 MX hosts (only 20 are followed) and a host with 12 A records and an AAAA.
std::string limit_records() {
  std::string r;
  for (int i = 1; i <= 25; ++i) {
    r += "mx-host=many.example.test,h" + std::to_string(i) + ".example.test," + std::to_string(i) + "\n";
    r += "host-record=h" + std::to_string(i) + ".example.test,127.0.2." + std::to_string(i) + "\n";
  }
  for (int i = 1; i <= 12; ++i) r += "host-record=crowded.example.test,127.0.3." + std::to_string(i) + "\n";
  r += "host-record=crowded.example.test,2001:db8::3\n";
  return r;
}

// dnsmasq with kRecords, answering only from them (no /etc/resolv.conf, no /etc/hosts).
// Start it from the test's own thread: PR_SET_PDEATHSIG follows the thread that forks.
class Dnsmasq {
public:
  Dnsmasq() {
    char tmpl[] = "/tmp/mh-mx-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    std::string last_error;
    for (int attempt = 0; attempt < 5; ++attempt) {  // the port can be taken before dnsmasq binds it
      port_ = free_port();
      if (start()) {
        address_ = "127.0.0.1:" + std::to_string(port_);
        return;
      }
    }
    std::ifstream log(dir_ / "dnsmasq.log");
    FAIL("dnsmasq did not start: " << std::string(std::istreambuf_iterator<char>(log), {}));
  }
  ~Dnsmasq() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& address() const { return address_; }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

private:
  bool start() {
    {
      std::ofstream conf(dir_ / "dnsmasq.conf");
      conf << "port=" << port_ << "\nlisten-address=127.0.0.1\nbind-interfaces\n"
           << "no-resolv\nno-hosts\nno-poll\nno-negcache\npid-file=\nlocal=/example.test/\n"
           << "server=/servfail.test/127.0.0.1#" << servfail_.port() << "\n"
           << "server=/slow.test/127.0.0.1#" << silent_.port() << "\n";
      // No change of user (dnsmasq would become nobody): it would disarm PDEATHSIG.
      if (::geteuid() == 0) conf << "user=root\ngroup=root\n";
      conf << kRecords << limit_records();
    }
    const std::string conf_arg = "--conf-file=" + (dir_ / "dnsmasq.conf").string();
    const std::string log_path = (dir_ / "dnsmasq.log").string();
    const char* binary = ::access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      ::execlp(binary, binary, "--keep-in-foreground", "--log-facility=-", conf_arg.c_str(), nullptr);
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      if (ask_a(port_, "probe.example.test", 200) == std::pair{0, 1}) return true;
      std::this_thread::sleep_for(20ms);
    }
    stop();
    return false;
  }

  Stub servfail_{Stub::Mode::servfail};
  Stub silent_{Stub::Mode::silent};
  std::filesystem::path dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
  std::string address_;
};

ResolverConfig config_for(const std::string& server, std::chrono::milliseconds timeout = 2000ms,
                          std::chrono::milliseconds cache_ttl = 0ms) {
  ResolverConfig c;
  c.servers = {server};
  c.timeout = timeout;
  c.cache_ttl = cache_ttl;
  return c;
}

std::vector<std::string> names_of(const MxResult& r) {
  std::vector<std::string> names;
  for (const auto& h : r.hosts) names.push_back(h.name);
  return names;
}

} // namespace

namespace Catch {
template <> struct StringMaker<Kind> {
  static std::string convert(Kind kind) { return kind_name(kind); }
};
} // namespace Catch

// --- the pure parts ----------------------------------------------------------------------

TEST_CASE("mx: domain and exchange names are host names, '_' included", "[dns][mx]") {
  CHECK(mx_name_ok("Example.TEST.") == "example.test");
  CHECK(mx_name_ok("mx-1.example.test") == "mx-1.example.test");
  CHECK(mx_name_ok("localhost") == "localhost");
  CHECK_FALSE(mx_name_ok(""));
  CHECK_FALSE(mx_name_ok("."));
  CHECK_FALSE(mx_name_ok("_dmarc.example.test"));
  CHECK_FALSE(mx_name_ok("a..example.test"));
  CHECK_FALSE(mx_name_ok("bad!.example.test"));
  CHECK_FALSE(mx_name_ok("[127.0.0.1]"));
  CHECK_FALSE(mx_name_ok("127.0.0.1"));
  CHECK_FALSE(mx_name_ok("evil.example\r\nX: 1"));
  CHECK_FALSE(mx_name_ok("b\xc3\xbc" "cher.example"));  // U-labels: the caller converts to A-labels
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  CHECK_FALSE(mx_name_ok(long_name + "example"));  // 257 octets
}

TEST_CASE("mx: hosts are ordered by preference, equal preferences shuffled", "[dns][mx]") {
  std::set<std::vector<std::string>> orders;
  for (int i = 0; i < 200; ++i) {
    std::vector<MxHost> hosts{{"c", 20, {}}, {"a", 10, {}}, {"d", 30, {}}, {"b", 10, {}}, {"e", 20, {}}};
    order_mx_hosts(hosts);
    std::vector<std::string> names;
    for (const auto& h : hosts) names.push_back(h.name);
    orders.insert(names);
  }
  // {a,b} × {c,e} in their places, d last: four orders, each seen (chance of a miss ~ 1e-24).
  CHECK(orders == std::set<std::vector<std::string>>{
                      {"a", "b", "c", "e", "d"}, {"a", "b", "e", "c", "d"},
                      {"b", "a", "c", "e", "d"}, {"b", "a", "e", "c", "d"}});
}

TEST_CASE("mx: malformed resolver settings are refused at construction", "[dns][mx]") {
  CHECK_THROWS_WITH(MxResolver(config_for("dns.example.test")), "bad DNS server 'dns.example.test': not an IP address");
  CHECK_THROWS_WITH(MxResolver(config_for("127.0.0.1:0")), "bad DNS server '127.0.0.1:0': bad port");
  CHECK_THROWS_WITH(MxResolver(config_for("127.0.0.1", 0ms)), "DNS timeout must be positive");
  CHECK_NOTHROW(MxResolver(ResolverConfig{{"127.0.0.1:5353", "[::1]:5353", "::1"}, 1000ms}));
}

TEST_CASE("mx: a domain that is no host name is no_domain and never looked up", "[dns][mx]") {
  // The server never answers: a result within the test means nothing was asked.
  Stub silent(Stub::Mode::silent);
  MxResolver resolver(config_for(silent.address(), 60000ms));
  for (const std::string& bad : std::vector<std::string>{"", "a..example.test", "x_y.example.test", "[127.0.0.1]", "user@example.test",
                                std::string("evil.example.test\r\nRCPT TO:<x>"), std::string(300, 'a')}) {
    const MxResult r = resolver.resolve_blocking(bad);
    CHECK(r.kind == Kind::no_domain);
    CHECK(r.hosts.empty());
    CHECK(r.detail.rfind("not a domain name: '", 0) == 0);
    CHECK(r.detail.find_first_of("\r\n") == std::string::npos);
  }
  CHECK(resolver.resolve_blocking("").detail == "not a domain name: ''");
  CHECK(silent.queries() == 0);
}

// --- against dnsmasq ---------------------------------------------------------------------

TEST_CASE("mx: several MX records come in RFC 5321 §5.1 order with their addresses", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  std::set<std::vector<std::string>> orders;
  for (int i = 0; i < 40; ++i) {
    const MxResult r = resolver.resolve_blocking(i % 2 ? "multi.example.test" : "MULTI.Example.Test.");
    REQUIRE(r.kind == Kind::ok);
    REQUIRE(r.hosts.size() == 3);
    orders.insert(names_of(r));
    for (const auto& h : r.hosts) {
      if (h.name == "mx1.example.test") CHECK((h.preference == 10 && h.addresses == std::vector<std::string>{"127.0.0.2"}));
      // IPv4 first, then IPv6
      if (h.name == "mx2.example.test") CHECK((h.preference == 10 && h.addresses == std::vector<std::string>{"127.0.0.3", "::1"}));
      if (h.name == "mx3.example.test") CHECK((h.preference == 20 && h.addresses == std::vector<std::string>{"127.0.0.4"}));
    }
    CHECK(r.detail.rfind("MX for multi.example.test: 10 mx", 0) == 0);
  }
  // Equal preferences in random order (both seen: chance of a miss 2^-39); 20 always last.
  CHECK(orders == std::set<std::vector<std::string>>{{"mx1.example.test", "mx2.example.test", "mx3.example.test"},
                                                     {"mx2.example.test", "mx1.example.test", "mx3.example.test"}});
}

TEST_CASE("mx: the null MX of RFC 7505 says the domain takes no mail", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("null.example.test");
  CHECK(r.kind == Kind::null_mx);
  CHECK(r.hosts.empty());
  CHECK(r.detail == "MX lookup for null.example.test: null MX (RFC 7505): the domain accepts no mail");

  // Beside another MX it is a misconfiguration: ignored, the other one is used.
  r = resolver.resolve_blocking("mixed.example.test");
  REQUIRE(r.kind == Kind::ok);
  CHECK(names_of(r) == std::vector<std::string>{"mx1.example.test"});
  CHECK(r.detail == "MX for mixed.example.test: 10 mx1.example.test (127.0.0.2); 0 . (null MX beside other MX records)");

  // "10 ." is no null MX; it names no host, and there is no other.
  r = resolver.resolve_blocking("dot10.example.test");
  CHECK(r.kind == Kind::no_domain);
  CHECK(r.detail == "MX lookup for dot10.example.test: no usable MX host: 10 . (no host, and a null MX has preference 0)");
}

TEST_CASE("mx: NXDOMAIN is no_domain", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  const MxResult r = resolver.resolve_blocking("nothere.example.test");
  CHECK(r.kind == Kind::no_domain);
  CHECK(r.detail == "MX lookup for nothere.example.test: NXDOMAIN");
}

TEST_CASE("mx: without MX records the domain's own addresses are the implicit MX", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("plain.example.test");
  REQUIRE(r.kind == Kind::ok);
  REQUIRE(r.hosts.size() == 1);
  CHECK(r.hosts[0].name == "plain.example.test");
  CHECK(r.hosts[0].preference == 0);
  CHECK(r.hosts[0].addresses == std::vector<std::string>{"127.0.0.5", "2001:db8::5"});
  CHECK(r.detail == "no MX for plain.example.test, implicit MX: 0 plain.example.test (127.0.0.5 2001:db8::5)");

  // A CNAME without MX: the A lookup follows it.
  r = resolver.resolve_blocking("alias.example.test");
  INFO(r.detail);
  REQUIRE(r.kind == Kind::ok);
  REQUIRE(r.hosts.size() == 1);
  CHECK(r.hosts[0].name == "alias.example.test");
  CHECK(r.hosts[0].addresses == std::vector<std::string>{"127.0.0.2"});

  // Neither MX nor A nor AAAA: undeliverable.
  r = resolver.resolve_blocking("empty.example.test");
  CHECK(r.kind == Kind::no_domain);
  CHECK(r.detail == "no MX for empty.example.test and no A/AAAA records (no A/AAAA)");
}

TEST_CASE("mx: MX hosts without addresses are left out, none left is no_domain", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("partial.example.test");
  REQUIRE(r.kind == Kind::ok);
  CHECK(names_of(r) == std::vector<std::string>{"mx3.example.test"});
  CHECK(r.detail ==
        "MX for partial.example.test: 30 mx3.example.test (127.0.0.4); without address: gone.example.test: NXDOMAIN");

  r = resolver.resolve_blocking("noaddr.example.test");
  CHECK(r.kind == Kind::no_domain);
  CHECK(r.hosts.empty());
  CHECK(r.detail ==
        "MX hosts of noaddr.example.test have no addresses: gone.example.test: NXDOMAIN; empty.example.test: no A/AAAA");
}

TEST_CASE("mx: exchange names that are no host names are dropped, not followed", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("garbage.example.test");
  CHECK(r.kind == Kind::no_domain);
  CHECK(r.detail == "MX lookup for garbage.example.test: no usable MX host: 5 'bad_name!x.example.test' (not a host name)");

  r = resolver.resolve_blocking("somegarbage.example.test");
  REQUIRE(r.kind == Kind::ok);
  CHECK(names_of(r) == std::vector<std::string>{"mx1.example.test"});  // lower-cased
  CHECK(r.detail.find("5 'bad!.example.test' (not a host name)") != std::string::npos);
  CHECK(r.detail.find("6 '127.0.0.9' (not a host name)") != std::string::npos);
}

TEST_CASE("mx: an exchange that is a CNAME is followed, a host listed twice is tried once", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("cnamed.example.test");
  REQUIRE(r.kind == Kind::ok);
  REQUIRE(r.hosts.size() == 1);
  CHECK(r.hosts[0].addresses == std::vector<std::string>{"127.0.0.4"});

  r = resolver.resolve_blocking("twice.example.test");
  REQUIRE(r.kind == Kind::ok);
  REQUIRE(r.hosts.size() == 2);
  CHECK((r.hosts[0].name == "mx1.example.test" && r.hosts[0].preference == 10));
  CHECK((r.hosts[1].name == "mx3.example.test" && r.hosts[1].preference == 20));
}

TEST_CASE("mx: at most 20 MX hosts and 10 addresses per host", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("many.example.test");
  REQUIRE(r.kind == Kind::ok);
  REQUIRE(r.hosts.size() == kMaxMxHosts);
  for (std::size_t i = 0; i < r.hosts.size(); ++i) {
    CHECK(r.hosts[i].preference == i + 1);
    CHECK(r.hosts[i].addresses == std::vector<std::string>{"127.0.2." + std::to_string(i + 1)});
  }
  CHECK(r.detail.size() <= kMaxDetail);
  CHECK(r.detail.find("5 more hosts (limit 20)") != std::string::npos);

  r = resolver.resolve_blocking("crowded.example.test");
  REQUIRE(r.kind == Kind::ok);
  REQUIRE(r.hosts.size() == 1);
  const auto& a = r.hosts[0].addresses;
  CHECK(a.size() == kMaxAddressesPerHost);
  CHECK(std::all_of(a.begin(), a.end(), [](const std::string& s) { return s.rfind("127.0.3.", 0) == 0; }));
  CHECK(std::set<std::string>(a.begin(), a.end()).size() == a.size());
}

TEST_CASE("mx: SERVFAIL is temporary, a host that fails is left out when others resolve", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  MxResult r = resolver.resolve_blocking("broken.example.test");
  CHECK(r.kind == Kind::temporary);
  CHECK(r.detail.rfind("address lookup for the MX hosts of broken.example.test: mx.servfail.test: ", 0) == 0);

  r = resolver.resolve_blocking("halfbroken.example.test");
  REQUIRE(r.kind == Kind::ok);
  CHECK(names_of(r) == std::vector<std::string>{"mx3.example.test"});
  CHECK(r.detail.find("without address: mx.servfail.test: ") != std::string::npos);

  // The MX lookup itself.
  Stub servfail(Stub::Mode::servfail);
  MxResolver direct(config_for(servfail.address()));
  r = direct.resolve_blocking("example.test");
  CHECK(r.kind == Kind::temporary);
  CHECK(r.detail == "MX lookup for example.test: no usable answer from the DNS servers (SERVFAIL, REFUSED or unreachable)");
}

TEST_CASE("mx: an answer that cannot be parsed is temporary", "[dns][mx]") {
  Stub garbage(Stub::Mode::garbage);
  MxResolver resolver(config_for(garbage.address()));
  const MxResult r = resolver.resolve_blocking("example.test");
  CHECK(r.kind == Kind::temporary);
  CHECK(r.detail.rfind("MX answer for example.test unusable: ", 0) == 0);
}

TEST_CASE("mx: a server that never answers is temporary, in bounded time", "[dns][mx]") {
  Stub silent(Stub::Mode::silent);
  MxResolver resolver(config_for(silent.address(), 150ms));
  const auto start = std::chrono::steady_clock::now();
  const MxResult r = resolver.resolve_blocking("example.test");
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.kind == Kind::temporary);
  CHECK(r.detail == "MX lookup for example.test: no answer within 300 ms");
  CHECK(took >= 290ms);
  CHECK(took < 3s);
  CHECK(silent.queries() >= 1);
}

TEST_CASE("mx: address lookups that never end: the hosts that did resolve are used", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address(), 250ms));
  const auto start = std::chrono::steady_clock::now();
  MxResult r = resolver.resolve_blocking("halfslow.example.test");
  REQUIRE(r.kind == Kind::ok);
  CHECK(names_of(r) == std::vector<std::string>{"mx3.example.test"});
  CHECK(r.detail.find("without address: mx.slow.test: ") != std::string::npos);

  r = resolver.resolve_blocking("slow.example.test");
  CHECK(r.kind == Kind::temporary);
  CHECK(r.detail.rfind("address lookup for the MX hosts of slow.example.test: mx.slow.test: ", 0) == 0);
  // Each lookup: two steps of at most timeout × kTries.
  CHECK(std::chrono::steady_clock::now() - start < 4s);
}

TEST_CASE("mx: definite answers are cached for cache_ttl, temporary ones are not", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address(), 300ms, 60000ms));
  REQUIRE(resolver.resolve_blocking("multi.example.test").kind == Kind::ok);
  REQUIRE(resolver.resolve_blocking("nothere.example.test").kind == Kind::no_domain);
  REQUIRE(resolver.resolve_blocking("halfbroken.example.test").kind == Kind::ok);  // partly failed: not cached
  dns.stop();
  MxResult r = resolver.resolve_blocking("multi.example.test");
  CHECK(r.kind == Kind::ok);
  CHECK(r.hosts.size() == 3);
  CHECK(r.detail.size() >= 9);
  CHECK(r.detail.substr(r.detail.size() - 9) == " (cached)");
  // A hit is shuffled anew: both orders of the two preference-10 hosts show up.
  std::set<std::string> firsts;
  for (int i = 0; i < 40; ++i) firsts.insert(resolver.resolve_blocking("multi.example.test").hosts.at(0).name);
  CHECK(firsts == std::set<std::string>{"mx1.example.test", "mx2.example.test"});
  CHECK(resolver.resolve_blocking("nothere.example.test").kind == Kind::no_domain);
  CHECK(resolver.resolve_blocking("halfbroken.example.test").kind == Kind::temporary);
}

TEST_CASE("mx: many lookups at once are each answered once, from the resolver's thread", "[dns][mx]") {
  Dnsmasq dns;
  MxResolver resolver(config_for(dns.address()));
  constexpr int kPerThread = 25;
  const std::vector<std::pair<std::string, Kind>> cases = {{"multi.example.test", Kind::ok},
                                                           {"null.example.test", Kind::null_mx},
                                                           {"nothere.example.test", Kind::no_domain},
                                                           {"plain.example.test", Kind::ok}};
  std::mutex m;
  std::condition_variable cv;
  int answered = 0, wrong = 0;
  std::set<std::thread::id> callback_threads;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const auto& [domain, kind] = cases[static_cast<std::size_t>(i + t) % cases.size()];
        resolver.resolve(domain, [&, expected = kind](MxResult r) {
          std::lock_guard lock(m);
          ++answered;
          wrong += r.kind != expected;
          callback_threads.insert(std::this_thread::get_id());
          cv.notify_all();
        });
      }
    });
  for (auto& th : threads) th.join();
  std::unique_lock lock(m);
  REQUIRE(cv.wait_for(lock, 30s, [&] { return answered == 4 * kPerThread; }));
  CHECK(wrong == 0);
  REQUIRE(callback_threads.size() == 1);
  CHECK(*callback_threads.begin() != std::this_thread::get_id());
}

TEST_CASE("mx: destroying the resolver answers lookups still running", "[dns][mx]") {
  Stub silent(Stub::Mode::silent);
  std::vector<MxResult> results;
  std::mutex m;
  {
    MxResolver resolver(config_for(silent.address(), 60000ms));
    for (int i = 0; i < 40; ++i)  // more than kMaxMxLookupsInFlight: some still wait for a place
      resolver.resolve("example.test", [&](MxResult r) {
        std::lock_guard lock(m);
        results.push_back(std::move(r));
      });
  }
  REQUIRE(results.size() == 40);
  for (const auto& r : results) {
    CHECK(r.kind == Kind::temporary);
    CHECK(r.detail == "resolver stopped");
  }
}
