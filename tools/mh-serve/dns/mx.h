// mx.h — where mail for a domain goes (SPEC §8 "Outbound", delivery by MX), with c-ares:
// the domain's MX records in RFC 5321 §5.1 order with the addresses of each host, the
// implicit MX when there are none, and RFC 7505's null MX. Trusts nothing from DNS:
// exchange names are re-validated as host names (garbage is dropped, never followed), at
// most kMaxMxHosts hosts and kMaxAddressesPerHost addresses each are kept, and each step
// (MX, then all A/AAAA lookups at once) ends after timeout × kTries, so a lookup takes at
// most 2 × timeout × kTries. Any doubt on the resolver side (timeout, SERVFAIL, REFUSED,
// an unparsable answer) is `temporary`: a permanent kind only on clear answers. Address
// literals ("[192.0.2.1]") and the RFC 5321 §5.1 rule "drop our own name and every host
// after it" are the caller's business: only it knows its names.
// No Asio and no c-ares in this header.
#pragma once

#include "dns/fcrdns.h"  // ResolverConfig, kTries

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::dns {

struct MxHost {
  std::string name;                    // lower case, no final dot
  unsigned preference = 0;
  std::vector<std::string> addresses;  // "192.0.2.1", "2001:db8::1": IPv4 first, never empty
};

struct MxResult {
  enum class Kind {
    // `hosts` to try, in order: by preference, hosts of equal preference shuffled anew
    // for every result (RFC 5321 §5.1). Hosts whose addresses could not be found are left
    // out (`detail` names them); so is everything a step that ran out of time did not bring.
    // Without MX records, the implicit MX: the domain itself, preference 0.
    ok,
    // RFC 7505: the domain's only MX is "0 ." — it accepts no mail: bounce at once.
    null_mx,
    // Undeliverable for certain: the domain does not exist (NXDOMAIN), is no valid domain
    // name, has neither MX nor A/AAAA records, or its MX hosts all have definite "no
    // address" answers or unusable names (RFC 5321 §5.1: nothing to try). A separate kind
    // for the last cases would change nothing for the runner (both bounce); `detail` says
    // which it was.
    no_domain,
    // Ask again later: the resolver timed out, failed or answered garbage, and nothing
    // usable came back. Never a reason to bounce before the give-up time.
    temporary,
  };
  Kind kind = Kind::temporary;
  std::vector<MxHost> hosts;  // only for ok
  // One printable line for logs and DSNs: what was looked up and what came back, e.g.
  // "MX lookup for x.example: NXDOMAIN". At most kMaxDetail octets.
  std::string detail;
};

const char* kind_name(MxResult::Kind kind) noexcept;  // "ok", "null_mx", …

inline constexpr std::size_t kMaxMxHosts = 20;           // MX hosts followed per domain
inline constexpr std::size_t kMaxAddressesPerHost = 10;
inline constexpr std::size_t kMaxMxLookupsInFlight = 16; // more lookups wait for a place
inline constexpr std::size_t kMaxCachedMx = 1000;
inline constexpr std::size_t kMaxDetail = 1000;

// One per runner; thread-safe. Owns one thread that runs a c-ares channel. Results other
// than `temporary` are remembered for config.cache_ttl (0 = no cache).
class MxResolver {
public:
  // Throws std::runtime_error when c-ares cannot be set up or a server is malformed.
  explicit MxResolver(ResolverConfig config);
  // Stops the thread; lookups still running end with `temporary` ("resolver stopped").
  ~MxResolver();
  MxResolver(const MxResolver&) = delete;
  MxResolver& operator=(const MxResolver&) = delete;

  // Asynchronous: calls `done` exactly once, always from the resolver's internal thread
  // (also for cached results and invalid domains), so `done` must be quick and must not
  // call resolve_blocking(). It may call resolve().
  void resolve(const std::string& domain, std::function<void(MxResult)> done);
  // For tools and tests. Must not be called from inside a `done` callback.
  MxResult resolve_blocking(const std::string& domain);

private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

// Building blocks, exposed for the unit tests.
// A domain or exchange name in lower case without the final dot, if it is a host name as
// RFC 5321 §4.1.2 allows in a Domain (letters, digits, hyphens; labels of 1–63 octets;
// at most 253 octets; not all-numeric at the end); nullopt otherwise ('_' included).
std::optional<std::string> mx_name_ok(std::string_view name);
// Orders hosts as RFC 5321 §5.1 asks: by preference, equal preferences shuffled.
void order_mx_hosts(std::vector<MxHost>& hosts);

} // namespace mh::dns
