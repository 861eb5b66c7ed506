// fcrdns.cc — the forward-confirmed reverse-DNS check over one c-ares channel.
// The checker owns one CaresChannel (cares_channel.h), whose thread runs the c-ares
// channel: other threads hand it checks through a mutex-guarded queue and wake it; on
// that thread the checker enforces each check's deadline and calls the `done` callbacks.
#include "dns/fcrdns.h"

#include "dns/cares_channel.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <unordered_map>

namespace mh::dns {

namespace {

using internal::Address;
using internal::Clock;
using internal::join;
using internal::parse_address;
using internal::printable;
using internal::status_text;

std::string reverse_name_of(const Address& a) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string name;
  if (a.family == AF_INET) {
    for (int i = 3; i >= 0; --i) name += std::to_string(a.bytes[static_cast<std::size_t>(i)]) + ".";
    return name + "in-addr.arpa";
  }
  for (int i = 15; i >= 0; --i) {
    const unsigned char b = a.bytes[static_cast<std::size_t>(i)];
    name += hex[b & 0xf];
    name += '.';
    name += hex[b >> 4];
    name += '.';
  }
  return name + "ip6.arpa";
}

Result make_result(Verdict verdict, std::string name, std::string detail) {
  return Result{verdict, std::move(name), std::move(detail)};
}

// One running check. Lives (shared) as long as a c-ares query of it is in flight.
struct Check {
  std::string input;
  std::optional<Address> address;
  std::function<void(Result)> done;
  Clock::time_point deadline;            // of the current step: PTR, then forward
  bool finished = false;
  std::vector<std::string> names;        // valid PTR names, in answer order
  std::size_t forward_pending = 0;
  std::vector<std::string> mismatches;   // "name: A 192.0.2.9" — each a reason for "forged"
  std::vector<std::string> temporary;    // "name: Timeout …" — forward lookups that failed
};

} // namespace

struct FcrdnsChecker::Engine {
  explicit Engine(ResolverConfig c);
  ~Engine();

  void submit(std::shared_ptr<Check> check);

  // Called on the channel's thread only.
  void turn(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;
  void stopped();
  bool answer_at_once(const std::shared_ptr<Check>& check);
  void admit();
  void start(const std::shared_ptr<Check>& check);
  void finish(Check& check, Result result, bool cacheable = true);
  void on_ptr(const std::shared_ptr<Check>& check, const std::string& query, int status, const unsigned char* abuf, int alen);
  void on_forward(const std::shared_ptr<Check>& check, const std::string& name, int status, const unsigned char* abuf,
                  int alen);
  void conclude_forward(Check& check);
  void expire(Clock::time_point now);
  std::optional<Result> cached(const std::string& ip, Clock::time_point now);
  void remember(const std::string& ip, const Result& result, Clock::time_point now);

  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

  // What travels through c-ares as a query's `arg`; freed by on_answer.
  struct Query {
    Engine* engine;
    std::shared_ptr<Check> check;
    std::string name;
    bool ptr;  // the PTR lookup, else a forward (A/AAAA) one
  };

  ResolverConfig config;
  internal::CaresChannel channel;

  std::mutex mutex;                                 // guards `submitted`
  std::vector<std::shared_ptr<Check>> submitted;

  // The channel's thread only.
  std::vector<std::shared_ptr<Check>> running;     // at most kMaxChecksInFlight
  std::deque<std::shared_ptr<Check>> waiting;      // for a place in `running`
  struct Cached {
    Result result;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, Cached> cache;
};

FcrdnsChecker::Engine::Engine(ResolverConfig c) : config(std::move(c)), channel(config) {
  channel.start({[this](Clock::time_point now) { turn(now); }, [this] { return next_deadline(); },
                 [this] { stopped(); }});
}

// The thread goes first: it still uses everything else here.
FcrdnsChecker::Engine::~Engine() { channel.stop(); }

void FcrdnsChecker::Engine::on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  // The channel is being destroyed, or the check was already answered (deadline, or
  // another name confirmed it): nothing more may be said.
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || q->check->finished) return;
  if (q->ptr)
    q->engine->on_ptr(q->check, q->name, status, abuf, alen);
  else
    q->engine->on_forward(q->check, q->name, status, abuf, alen);
}

void FcrdnsChecker::Engine::submit(std::shared_ptr<Check> check) {
  // The deadline counts from here: time spent waiting for a place counts too.
  check->deadline = Clock::now() + config.timeout * kTries;
  {
    std::lock_guard lock(mutex);
    submitted.push_back(std::move(check));
  }
  channel.wake();
}

void FcrdnsChecker::Engine::turn(Clock::time_point now) {
  std::vector<std::shared_ptr<Check>> fresh;
  {
    std::lock_guard lock(mutex);
    fresh.swap(submitted);
  }
  for (auto& c : fresh)
    if (!answer_at_once(c)) waiting.push_back(std::move(c));
  expire(now);
  admit();
}

std::optional<Clock::time_point> FcrdnsChecker::Engine::next_deadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& c : running)
    if (!next || c->deadline < *next) next = c->deadline;
  // Deadlines grow along the queue.
  if (!waiting.empty() && (!next || waiting.front()->deadline < *next)) next = waiting.front()->deadline;
  return next;
}

// Queries in flight ended with ARES_EDESTRUCTION, which on_answer ignores; every check
// still waiting is answered here, so `done` is still called exactly once.
void FcrdnsChecker::Engine::stopped() {
  std::vector<std::shared_ptr<Check>> fresh;
  {
    std::lock_guard lock(mutex);
    fresh.swap(submitted);
  }
  for (auto* list : {&running, &fresh})
    for (auto& c : *list) finish(*c, make_result(Verdict::temporary_failure, "", "resolver stopped"));
  for (auto& c : waiting) finish(*c, make_result(Verdict::temporary_failure, "", "resolver stopped"));
}

void FcrdnsChecker::Engine::expire(Clock::time_point now) {
  const auto ms = std::to_string(config.timeout.count() * kTries);
  auto expire_one = [&](const std::shared_ptr<Check>& c) {
    if (c->finished || c->deadline > now) return;
    const std::string step = c->names.empty() ? "PTR lookup of " + c->address->text
                                              : "forward lookup of " + join(c->names, ", ");
    finish(*c, make_result(Verdict::temporary_failure, "", step + ": no answer within " + ms + " ms"));
  };
  std::for_each(running.begin(), running.end(), expire_one);
  std::for_each(waiting.begin(), waiting.end(), expire_one);
  std::erase_if(running, [](const auto& c) { return c->finished; });
  std::erase_if(waiting, [](const auto& c) { return c->finished; });
}

// Malformed input and cache hits need no lookup and wait for no place in the queue.
bool FcrdnsChecker::Engine::answer_at_once(const std::shared_ptr<Check>& check) {
  check->address = parse_address(check->input);
  if (!check->address) {
    finish(*check, make_result(Verdict::temporary_failure, "", "not an IP address: '" + printable(check->input, 64) + "'"));
    return true;
  }
  if (auto hit = cached(check->address->text, Clock::now())) {
    hit->detail += " (cached)";
    finish(*check, std::move(*hit), false);  // a hit must not extend its own lifetime
    return true;
  }
  return false;
}

// A burst of checks (many connections at once) would send hundreds of datagrams before
// reading any answer, and the answers that overflow the socket's receive buffer would be
// lost until c-ares retries: so only kMaxChecksInFlight run at a time, the rest queue.
void FcrdnsChecker::Engine::admit() {
  while (running.size() < kMaxChecksInFlight && !waiting.empty()) {
    auto check = std::move(waiting.front());
    waiting.pop_front();
    start(check);
  }
}

void FcrdnsChecker::Engine::start(const std::shared_ptr<Check>& check) {
  running.push_back(check);
  const std::string rev = reverse_name_of(*check->address);
  ares_query(channel.get(), rev.c_str(), ns_c_in, ns_t_ptr, on_answer, new Query{this, check, rev, true});
}

void FcrdnsChecker::Engine::finish(Check& check, Result result, bool cacheable) {
  if (check.finished) return;
  check.finished = true;
  if (cacheable && check.address) remember(check.address->text, result, Clock::now());
  auto done = std::move(check.done);
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    // We are usually inside a c-ares callback: an exception must not unwind through C.
    std::fprintf(stderr, "mh::dns: a check's done callback threw: %s\n", e.what());
    std::abort();
  }
}

void FcrdnsChecker::Engine::on_ptr(const std::shared_ptr<Check>& check, const std::string& query, int status,
                                   const unsigned char* abuf, int alen) {
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
    finish(*check, make_result(Verdict::no_ptr, "",
                               "no PTR record for " + query + (status == ARES_ENOTFOUND ? " (NXDOMAIN)" : " (no data)")));
    return;
  }
  if (status != ARES_SUCCESS) {
    finish(*check, make_result(Verdict::temporary_failure, "", "PTR lookup of " + query + ": " + status_text(status)));
    return;
  }
  const Address& a = *check->address;
  hostent* host = nullptr;
  const int rc = ares_parse_ptr_reply(abuf, alen, a.bytes.data(), static_cast<int>(a.size), a.family, &host);
  if (rc == ARES_ENODATA) {
    finish(*check, make_result(Verdict::no_ptr, "", "no PTR record for " + query + " (no PTR in the answer)"));
    return;
  }
  if (rc != ARES_SUCCESS || host == nullptr) {
    if (host) ares_free_hostent(host);
    finish(*check, make_result(Verdict::temporary_failure, "", "PTR answer for " + query + " unusable: " + ares_strerror(rc)));
    return;
  }
  // c-ares puts every PTR name among the aliases and the last one in h_name as well.
  std::vector<std::string> raw;
  for (char** alias = host->h_aliases; alias && *alias; ++alias) raw.emplace_back(*alias);
  if (host->h_name) raw.emplace_back(host->h_name);
  ares_free_hostent(host);

  std::vector<std::string> invalid;
  for (const auto& r : raw) {
    auto name = host_name_ok(r);
    if (!name) {
      invalid.push_back(printable(r));
      continue;
    }
    if (std::find(check->names.begin(), check->names.end(), *name) != check->names.end()) continue;
    if (check->names.size() == kMaxPtrNames) break;  // a hostile zone may list thousands
    check->names.push_back(*name);
  }
  if (check->names.empty()) {
    // A PTR to "192.0.2.1" or to garbage names nothing that could confirm the address.
    finish(*check, make_result(Verdict::forged, "", "PTR of " + a.text + " is not a host name: " + join(invalid, ", ")));
    return;
  }
  check->forward_pending = check->names.size();
  // The forward step gets a deadline of its own: with a dead first server each step
  // costs one timeout before c-ares moves to the next, and both steps must still fit.
  check->deadline = Clock::now() + config.timeout * kTries;
  const int type = a.family == AF_INET ? ns_t_a : ns_t_aaaa;
  for (const auto& name : check->names)
    ares_query(channel.get(), name.c_str(), ns_c_in, type, on_answer, new Query{this, check, name, false});
}

void FcrdnsChecker::Engine::on_forward(const std::shared_ptr<Check>& check, const std::string& name, int status,
                                       const unsigned char* abuf, int alen) {
  --check->forward_pending;
  const Address& a = *check->address;
  const char* rr = a.family == AF_INET ? "A" : "AAAA";
  if (status == ARES_ENOTFOUND) {
    check->mismatches.push_back(name + ": no such domain");
  } else if (status == ARES_ENODATA) {
    check->mismatches.push_back(name + ": no " + rr + " record");
  } else if (status != ARES_SUCCESS) {
    check->temporary.push_back(name + ": " + status_text(status));
  } else {
    hostent* host = nullptr;
    const int rc = a.family == AF_INET ? ares_parse_a_reply(abuf, alen, &host, nullptr, nullptr)
                                       : ares_parse_aaaa_reply(abuf, alen, &host, nullptr, nullptr);
    if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && (host == nullptr || host->h_addr_list[0] == nullptr))) {
      check->mismatches.push_back(name + ": no " + rr + " record");
    } else if (rc != ARES_SUCCESS) {
      check->temporary.push_back(name + ": unusable " + rr + " answer: " + ares_strerror(rc));
    } else {
      std::vector<std::string> seen;
      bool match = false;
      for (char** p = host->h_addr_list; *p; ++p) {
        match = match || std::memcmp(*p, a.bytes.data(), a.size) == 0;
        char buf[INET6_ADDRSTRLEN];
        inet_ntop(a.family, *p, buf, sizeof buf);
        if (seen.size() < 4) seen.emplace_back(buf);
      }
      if (match) {
        ares_free_hostent(host);
        finish(*check, make_result(Verdict::confirmed, name, "PTR " + name + " has " + rr + " " + a.text));
        return;
      }
      check->mismatches.push_back(name + ": " + rr + " " + join(seen, " ") + (host->h_addr_list[seen.size()] ? " ..." : ""));
    }
    if (host) ares_free_hostent(host);
  }
  if (check->forward_pending == 0) conclude_forward(*check);
}

// Every PTR name has been looked up and none gave the client's address back.
void FcrdnsChecker::Engine::conclude_forward(Check& check) {
  const std::string& ip = check.address->text;
  if (!check.temporary.empty()) {
    // A name that could not be looked up might have confirmed the client: 451, not 550.
    // Only a definite "no" from every name makes the client forged.
    finish(check, make_result(Verdict::temporary_failure, "",
                              "forward lookup failed for " + join(check.temporary, "; ") +
                                  (check.mismatches.empty() ? "" : "; and " + join(check.mismatches, "; "))));
    return;
  }
  finish(check, make_result(Verdict::forged, check.names.front(),
                            "no PTR name of " + ip + " resolves back to it: " + join(check.mismatches, "; ")));
}

std::optional<Result> FcrdnsChecker::Engine::cached(const std::string& ip, Clock::time_point now) {
  const auto it = cache.find(ip);
  if (it == cache.end()) return std::nullopt;
  if (it->second.expires <= now) {
    cache.erase(it);
    return std::nullopt;
  }
  return it->second.result;
}

void FcrdnsChecker::Engine::remember(const std::string& ip, const Result& result, Clock::time_point now) {
  // Temporary failures are not remembered: the next client attempt should ask again.
  if (config.cache_ttl.count() <= 0 || result.verdict == Verdict::temporary_failure) return;
  if (cache.size() >= kMaxCachedResults) {
    std::erase_if(cache, [now](const auto& entry) { return entry.second.expires <= now; });
    if (cache.size() >= kMaxCachedResults) cache.clear();  // a flood of new addresses: start over
  }
  cache[ip] = Cached{result, now + config.cache_ttl};
}

// ---------------------------------------------------------------------------------------

FcrdnsChecker::FcrdnsChecker(ResolverConfig config) : engine_(std::make_unique<Engine>(std::move(config))) {}

FcrdnsChecker::~FcrdnsChecker() = default;

void FcrdnsChecker::check(const std::string& client_ip, std::function<void(Result)> done) {
  auto c = std::make_shared<Check>();
  c->input = client_ip;
  c->done = std::move(done);
  engine_->submit(std::move(c));
}

Result FcrdnsChecker::check_blocking(const std::string& client_ip) {
  if (engine_->channel.on_thread()) {
    // Waiting here would wait for ourselves forever: a bug in the caller.
    std::fputs("mh::dns::FcrdnsChecker::check_blocking called from a done callback\n", stderr);
    std::abort();
  }
  std::promise<Result> promise;
  auto future = promise.get_future();
  check(client_ip, [&promise](Result r) { promise.set_value(std::move(r)); });
  return future.get();
}

const char* verdict_name(Verdict verdict) noexcept {
  switch (verdict) {
  case Verdict::confirmed: return "confirmed";
  case Verdict::no_ptr: return "no_ptr";
  case Verdict::forged: return "forged";
  case Verdict::temporary_failure: return "temporary_failure";
  }
  return "?";
}

std::string smtp_reply_for(const Result& result, const std::string& client_ip) {
  // sendmail's texts (cf/m4/proto.m4, the ${client_resolve} rules of check_rcpt), which
  // the FAQ's users search for; sendmail appends the client name, SPEC §8 does not.
  switch (result.verdict) {
  case Verdict::confirmed: return "";
  case Verdict::no_ptr: return "550 5.7.1 Relaying denied. IP name lookup failed";
  case Verdict::forged: return "550 5.7.1 Relaying denied. IP name possibly forged";
  case Verdict::temporary_failure: break;
  }
  const auto ip = canonical_ip(client_ip);
  return "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for " + ip.value_or("unknown");
}

std::optional<std::string> canonical_ip(std::string_view text) {
  auto a = parse_address(text);
  if (!a) return std::nullopt;
  return a->text;
}

std::optional<std::string> reverse_name(std::string_view ip) {
  auto a = parse_address(ip);
  if (!a) return std::nullopt;
  return reverse_name_of(*a);
}

std::optional<std::string> host_name_ok(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return std::nullopt;
  std::string out;
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      const std::size_t len = i - label_start;
      if (len == 0 || len > 63) return std::nullopt;
      if (name[label_start] == '-' || name[i - 1] == '-') return std::nullopt;
      label_start = i + 1;
      if (i < name.size()) out += '.';
      continue;
    }
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return std::nullopt;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  // An all-numeric last label would make "192.0.2.1" a host name (RFC 1123 §2.1); a
  // PTR naming an address is a known trick to pass weak reverse-DNS checks.
  const std::string_view last = std::string_view(out).substr(out.rfind('.') == std::string::npos ? 0 : out.rfind('.') + 1);
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  return out;
}

} // namespace mh::dns
