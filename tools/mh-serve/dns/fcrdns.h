// fcrdns.h — forward-confirmed reverse DNS of an SMTP client (SPEC §8), with c-ares:
// the client's PTR names are looked up, then their A (or AAAA) records; "confirmed" when
// one of those is the client's address again. Trusts nothing from DNS: PTR names are
// re-validated as host names (they reach Received headers and logs), at most kMaxPtrNames
// are followed, and each step (PTR, then all forward lookups at once) ends after
// timeout × kTries, so a check takes at most 2 × timeout × kTries. Any doubt on the
// resolver side (timeout, SERVFAIL, REFUSED, garbage) is a temporary failure: a 5xx only
// on clear answers. The reply texts are sendmail's and live only in smtp_reply_for.
// No Asio and no c-ares in this header; only dns/*.cc include ares.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::dns {

enum class Verdict {
  confirmed,          // a PTR name resolves back to the client's address
  no_ptr,             // NXDOMAIN or no PTR record for the address
  forged,             // PTR names exist but none resolves back to the address
  temporary_failure,  // DNS timeout, SERVFAIL, REFUSED, unusable answer: ask again later
};

struct Result {
  Verdict verdict = Verdict::temporary_failure;
  std::string name;    // confirmed: the verified name; forged: the first PTR name; else ""
  std::string detail;  // one line for the log: what was looked up and what came back
};

const char* verdict_name(Verdict verdict) noexcept;  // "confirmed", "no_ptr", …

inline constexpr int kTries = 2;                     // tries per query (c-ares ARES_OPT_TRIES)
inline constexpr std::size_t kMaxPtrNames = 10;      // PTR names followed per address
inline constexpr std::size_t kMaxChecksInFlight = 64; // more checks wait for a place
inline constexpr std::size_t kMaxCachedResults = 10000;

struct ResolverConfig {
  // "ip", "ip:port", "[v6]:port" (mailhost.yaml dns.servers); empty = /etc/resolv.conf.
  std::vector<std::string> servers;
  // Per try (mailhost.yaml dns.timeout); each step of a check ends after timeout × kTries.
  std::chrono::milliseconds timeout{5000};
  // Definite verdicts (not temporary failures) are remembered this long; 0 = no cache.
  std::chrono::milliseconds cache_ttl{60000};
};

// One per server; thread-safe. Owns one thread that runs the c-ares channel.
class FcrdnsChecker {
public:
  // Throws std::runtime_error when c-ares cannot be set up or a server is malformed.
  explicit FcrdnsChecker(ResolverConfig config);
  // Stops the thread; checks still running end with temporary_failure.
  ~FcrdnsChecker();
  FcrdnsChecker(const FcrdnsChecker&) = delete;
  FcrdnsChecker& operator=(const FcrdnsChecker&) = delete;

  // Asynchronous: calls `done` exactly once, always from the checker's internal thread
  // (also for cached results and for a client_ip that is not an address), so `done`
  // must be quick and must not call check_blocking(). It may call check().
  void check(const std::string& client_ip, std::function<void(Result)> done);
  // For --stdio mode and tests. Must not be called from inside a `done` callback.
  Result check_blocking(const std::string& client_ip);

private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

// The SMTP reply (without CRLF) for a client that was not confirmed, given at RCPT;
// "" for Verdict::confirmed. `client_ip` is shown in canonical form (or "unknown" when it
// is not an address, so nothing from outside can be injected into the reply):
//   no_ptr            "550 5.7.1 Relaying denied. IP name lookup failed"
//   forged            "550 5.7.1 Relaying denied. IP name possibly forged"
//   temporary_failure "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for <ip>"
std::string smtp_reply_for(const Result& result, const std::string& client_ip);

// Building blocks, exposed for the unit tests.
// The canonical text of an address ("::ffff:192.0.2.1" → "192.0.2.1"); nullopt if none.
std::optional<std::string> canonical_ip(std::string_view text);
// "4.3.2.1.in-addr.arpa" / nibble-reversed "….ip6.arpa" (RFC 1035 §3.5, RFC 3596 §2.5).
std::optional<std::string> reverse_name(std::string_view ip);
// A host name as DNS may give it back, in lower case without the final dot, if it is a
// plausible host name (RFC 1123 §2.1 letters, digits, hyphens; '_' tolerated; labels of
// 1–63 octets; at most 253 octets; not all-numeric); nullopt otherwise.
std::optional<std::string> host_name_ok(std::string_view name);

} // namespace mh::dns
