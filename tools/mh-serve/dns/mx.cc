// mx.cc — MX resolution (RFC 5321 §5.1, RFC 7505) over one c-ares channel.
// The resolver owns one CaresChannel (cares_channel.h), whose thread runs the c-ares
// channel: other threads hand it lookups through a mutex-guarded queue and wake it; on
// that thread each lookup asks for the domain's MX records, then for the A and AAAA
// records of every host at once, enforces each step's deadline and calls `done`.
#include "dns/mx.h"

#include "dns/cares_channel.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace mh::dns {

namespace {

using internal::Clock;
using internal::join;
using internal::printable;
using internal::status_text;
using Kind = MxResult::Kind;

MxResult make_result(Kind kind, std::string detail, std::vector<MxHost> hosts = {}) {
  if (detail.size() > kMaxDetail) detail = detail.substr(0, kMaxDetail - 3) + "...";
  return MxResult{kind, std::move(hosts), std::move(detail)};
}

// What became of one A or AAAA lookup of one host.
struct Answer {
  bool done = false;
  bool temporary = false;  // timeout, SERVFAIL, unparsable: the host might have addresses
  std::string note;        // why there are no addresses: "NXDOMAIN", "no data", "Timeout …"
  std::vector<std::string> addresses;
};

struct HostState {
  std::string name;
  unsigned preference = 0;
  Answer a, aaaa;
};

// One running lookup. Lives (shared) as long as a c-ares query of it is in flight.
struct Lookup {
  std::string input;
  std::string domain;                   // validated
  std::function<void(MxResult)> done;
  Clock::time_point deadline;           // of the current step: MX, then addresses
  bool finished = false;
  bool addresses_step = false;
  bool implicit = false;                // no MX records: the domain is its own host
  std::vector<HostState> hosts;         // in RFC 5321 §5.1 order
  std::vector<std::string> dropped;     // MX records not followed, for the detail
  std::size_t pending = 0;              // address queries not answered yet
};

// "10 mx.example (192.0.2.1 2001:db8::1)"
std::string describe(const MxHost& h) {
  return std::to_string(h.preference) + " " + h.name + " (" + join(h.addresses, " ") + ")";
}

// Why a host has no address: "NXDOMAIN", "no A/AAAA", or each lookup's own story.
std::string describe_failure(const HostState& h) {
  if (h.a.note == h.aaaa.note) return h.a.note == "no data" ? "no A/AAAA" : h.a.note;
  return "A: " + h.a.note + ", AAAA: " + h.aaaa.note;
}

} // namespace

struct MxResolver::Engine {
  explicit Engine(ResolverConfig c);
  ~Engine();

  void submit(std::shared_ptr<Lookup> lookup);

  // Called on the channel's thread only.
  void turn(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const;
  void stopped();
  bool answer_at_once(const std::shared_ptr<Lookup>& lookup);
  void admit();
  void start(const std::shared_ptr<Lookup>& lookup);
  void start_addresses(const std::shared_ptr<Lookup>& lookup);
  void finish(Lookup& lookup, MxResult result, bool cacheable = true);
  void on_mx(const std::shared_ptr<Lookup>& lookup, int status, const unsigned char* abuf, int alen);
  void on_address(const std::shared_ptr<Lookup>& lookup, std::size_t host, bool v6, int status,
                  const unsigned char* abuf, int alen);
  void conclude(Lookup& lookup);
  void expire(Clock::time_point now);
  std::string step_ms() const { return std::to_string(config.timeout.count() * kTries) + " ms"; }
  std::optional<MxResult> cached(const std::string& domain, Clock::time_point now);
  void remember(const std::string& domain, const MxResult& result, Clock::time_point now);

  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

  // What travels through c-ares as a query's `arg`; freed by on_answer.
  struct Query {
    Engine* engine;
    std::shared_ptr<Lookup> lookup;
    int type;          // ns_t_mx, ns_t_a or ns_t_aaaa
    std::size_t host;  // index into lookup->hosts for A/AAAA
  };

  ResolverConfig config;
  internal::CaresChannel channel;

  std::mutex mutex;  // guards `submitted`
  std::vector<std::shared_ptr<Lookup>> submitted;

  // The channel's thread only.
  std::vector<std::shared_ptr<Lookup>> running;  // at most kMaxMxLookupsInFlight
  std::deque<std::shared_ptr<Lookup>> waiting;   // for a place in `running`
  struct Cached {
    MxResult result;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, Cached> cache;
};

MxResolver::Engine::Engine(ResolverConfig c) : config(std::move(c)), channel(config) {
  channel.start({[this](Clock::time_point now) { turn(now); }, [this] { return next_deadline(); },
                 [this] { stopped(); }});
}

// The thread goes first: it still uses everything else here.
MxResolver::Engine::~Engine() { channel.stop(); }

void MxResolver::Engine::on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  // The channel is being destroyed, or the lookup was already answered (its deadline
  // passed): nothing more may be said.
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || q->lookup->finished) return;
  if (q->type == ns_t_mx)
    q->engine->on_mx(q->lookup, status, abuf, alen);
  else
    q->engine->on_address(q->lookup, q->host, q->type == ns_t_aaaa, status, abuf, alen);
}

void MxResolver::Engine::submit(std::shared_ptr<Lookup> lookup) {
  // The deadline counts from here: time spent waiting for a place counts too.
  lookup->deadline = Clock::now() + config.timeout * kTries;
  {
    std::lock_guard lock(mutex);
    submitted.push_back(std::move(lookup));
  }
  channel.wake();
}

void MxResolver::Engine::turn(Clock::time_point now) {
  std::vector<std::shared_ptr<Lookup>> fresh;
  {
    std::lock_guard lock(mutex);
    fresh.swap(submitted);
  }
  for (auto& l : fresh)
    if (!answer_at_once(l)) waiting.push_back(std::move(l));
  expire(now);
  admit();
}

std::optional<Clock::time_point> MxResolver::Engine::next_deadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& l : running)
    if (!next || l->deadline < *next) next = l->deadline;
  // Deadlines grow along the queue.
  if (!waiting.empty() && (!next || waiting.front()->deadline < *next)) next = waiting.front()->deadline;
  return next;
}

// Queries in flight ended with ARES_EDESTRUCTION, which on_answer ignores; every lookup
// still pending is answered here, so `done` is still called exactly once.
void MxResolver::Engine::stopped() {
  std::vector<std::shared_ptr<Lookup>> fresh;
  {
    std::lock_guard lock(mutex);
    fresh.swap(submitted);
  }
  for (auto* list : {&running, &fresh})
    for (auto& l : *list) finish(*l, make_result(Kind::temporary, "resolver stopped"), false);
  for (auto& l : waiting) finish(*l, make_result(Kind::temporary, "resolver stopped"), false);
}

// Invalid domains and cache hits need no lookup and wait for no place in the queue.
bool MxResolver::Engine::answer_at_once(const std::shared_ptr<Lookup>& lookup) {
  auto domain = mx_name_ok(lookup->input);
  if (!domain) {
    finish(*lookup, make_result(Kind::no_domain, "not a domain name: '" + printable(lookup->input, 64) + "'"), false);
    return true;
  }
  lookup->domain = std::move(*domain);
  if (auto hit = cached(lookup->domain, Clock::now())) {
    order_mx_hosts(hit->hosts);  // a fresh shuffle of equal preferences for every result
    hit->detail = hit->detail.substr(0, kMaxDetail - 9) + " (cached)";
    finish(*lookup, std::move(*hit), false);  // a hit must not extend its own lifetime
    return true;
  }
  return false;
}

// As in fcrdns.cc: a burst of lookups (the runner starts many deliveries at once) would
// send hundreds of datagrams before reading any answer, and answers that overflow the
// socket's receive buffer would be lost until c-ares retries.
void MxResolver::Engine::admit() {
  while (running.size() < kMaxMxLookupsInFlight && !waiting.empty()) {
    auto lookup = std::move(waiting.front());
    waiting.pop_front();
    start(lookup);
  }
}

void MxResolver::Engine::start(const std::shared_ptr<Lookup>& lookup) {
  running.push_back(lookup);
  ares_query(channel.get(), lookup->domain.c_str(), ns_c_in, ns_t_mx, on_answer,
             new Query{this, lookup, ns_t_mx, 0});
}

void MxResolver::Engine::finish(Lookup& lookup, MxResult result, bool cacheable) {
  if (lookup.finished) return;
  lookup.finished = true;
  if (cacheable) remember(lookup.domain, result, Clock::now());
  auto done = std::move(lookup.done);
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    // We are usually inside a c-ares callback: an exception must not unwind through C.
    std::fprintf(stderr, "mh::dns: an MX lookup's done callback threw: %s\n", e.what());
    std::abort();
  }
}

void MxResolver::Engine::on_mx(const std::shared_ptr<Lookup>& lookup, int status, const unsigned char* abuf,
                               int alen) {
  const std::string& d = lookup->domain;
  if (status == ARES_ENOTFOUND) {
    finish(*lookup, make_result(Kind::no_domain, "MX lookup for " + d + ": NXDOMAIN"));
    return;
  }
  ares_mx_reply* replies = nullptr;
  int rc = ARES_ENODATA;
  if (status == ARES_SUCCESS) {
    rc = ares_parse_mx_reply(abuf, alen, &replies);
  } else if (status != ARES_ENODATA) {
    finish(*lookup, make_result(Kind::temporary, "MX lookup for " + d + ": " + status_text(status)));
    return;
  }
  if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
    if (replies) ares_free_data(replies);
    finish(*lookup, make_result(Kind::temporary, "MX answer for " + d + " unusable: " + ares_strerror(rc)));
    return;
  }
  struct Record {
    unsigned preference;
    std::string exchange;
  };
  std::vector<Record> records;
  for (const ares_mx_reply* r = replies; r; r = r->next) records.push_back(Record{r->priority, r->host ? r->host : ""});
  if (replies) ares_free_data(replies);
  if (records.empty()) {
    // No MX records: RFC 5321 §5.1's implicit MX, the domain itself at preference 0.
    // An answer with only a CNAME counts too (c-ares 1.18 calls it a success with no
    // records); the A/AAAA lookups follow the CNAME.
    lookup->implicit = true;
    lookup->hosts.push_back(HostState{d, 0, {}, {}});
    start_addresses(lookup);
    return;
  }
  // c-ares spells the root name "" (1.18) and may one day spell it ".".
  auto is_root = [](const Record& r) { return r.exchange.empty() || r.exchange == "."; };

  // RFC 7505 §3: a null MX is the only MX record, "0 .". Beside other records it is a
  // misconfiguration: the null record is ignored and the others are used.
  if (records.size() == 1 && records[0].preference == 0 && is_root(records[0])) {
    finish(*lookup, make_result(Kind::null_mx, "MX lookup for " + d + ": null MX (RFC 7505): the domain accepts no mail"));
    return;
  }
  std::vector<MxHost> hosts;
  for (const auto& r : records) {
    if (is_root(r)) {
      const char* why = records.size() > 1 ? " . (null MX beside other MX records)"
                                           : " . (no host, and a null MX has preference 0)";
      lookup->dropped.push_back(std::to_string(r.preference) + why);
      continue;
    }
    auto name = mx_name_ok(r.exchange);
    if (!name) {
      lookup->dropped.push_back(std::to_string(r.preference) + " '" + printable(r.exchange, 64) + "' (not a host name)");
      continue;
    }
    hosts.push_back(MxHost{std::move(*name), r.preference, {}});
  }
  order_mx_hosts(hosts);
  // A host listed twice is tried once, at its best preference.
  std::unordered_set<std::string> seen;
  std::erase_if(hosts, [&seen](const MxHost& h) { return !seen.insert(h.name).second; });
  if (hosts.size() > kMaxMxHosts) {
    lookup->dropped.push_back(std::to_string(hosts.size() - kMaxMxHosts) + " more hosts (limit " +
                              std::to_string(kMaxMxHosts) + ")");
    hosts.resize(kMaxMxHosts);
  }
  if (hosts.empty()) {
    // MX records exist, so there is no implicit MX, and none names a usable host.
    finish(*lookup,
           make_result(Kind::no_domain, "MX lookup for " + d + ": no usable MX host: " + join(lookup->dropped, ", ")));
    return;
  }
  for (auto& h : hosts) lookup->hosts.push_back(HostState{std::move(h.name), h.preference, {}, {}});
  start_addresses(lookup);
}

void MxResolver::Engine::start_addresses(const std::shared_ptr<Lookup>& lookup) {
  lookup->addresses_step = true;
  // The address step gets a deadline of its own: with a dead first server each step
  // costs one timeout before c-ares moves to the next, and both steps must still fit.
  lookup->deadline = Clock::now() + config.timeout * kTries;
  lookup->pending = 2 * lookup->hosts.size();
  // c-ares may call back at once (no usable server): `pending` is set first, so the
  // lookup concludes only after the last query, and `hosts` never grows meanwhile.
  for (std::size_t i = 0; i < lookup->hosts.size(); ++i) {
    const char* name = lookup->hosts[i].name.c_str();
    ares_query(channel.get(), name, ns_c_in, ns_t_a, on_answer, new Query{this, lookup, ns_t_a, i});
    ares_query(channel.get(), name, ns_c_in, ns_t_aaaa, on_answer, new Query{this, lookup, ns_t_aaaa, i});
  }
}

void MxResolver::Engine::on_address(const std::shared_ptr<Lookup>& lookup, std::size_t host, bool v6, int status,
                                    const unsigned char* abuf, int alen) {
  Answer& answer = v6 ? lookup->hosts[host].aaaa : lookup->hosts[host].a;
  answer.done = true;
  --lookup->pending;
  if (status == ARES_ENOTFOUND) {
    answer.note = "NXDOMAIN";
  } else if (status == ARES_ENODATA) {
    answer.note = "no data";
  } else if (status != ARES_SUCCESS) {
    answer.temporary = true;
    answer.note = status_text(status);
  } else {
    // At most kMaxAddressesPerHost of each family: a hostile zone may list thousands.
    int n = static_cast<int>(kMaxAddressesPerHost);
    char buf[INET6_ADDRSTRLEN];
    int rc;
    if (v6) {
      ares_addr6ttl ttls[kMaxAddressesPerHost];
      rc = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &n);
      for (int i = 0; rc == ARES_SUCCESS && i < n; ++i)
        answer.addresses.emplace_back(inet_ntop(AF_INET6, &ttls[i].ip6addr, buf, sizeof buf));
    } else {
      ares_addrttl ttls[kMaxAddressesPerHost];
      rc = ares_parse_a_reply(abuf, alen, nullptr, ttls, &n);
      for (int i = 0; rc == ARES_SUCCESS && i < n; ++i)
        answer.addresses.emplace_back(inet_ntop(AF_INET, &ttls[i].ipaddr, buf, sizeof buf));
    }
    if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && answer.addresses.empty())) {
      answer.note = "no data";  // e.g. only a CNAME to a name without such records
    } else if (rc != ARES_SUCCESS) {
      answer.temporary = true;
      answer.note = std::string("unusable answer: ") + ares_strerror(rc);
    }
  }
  if (lookup->pending == 0) conclude(*lookup);
}

// Every address lookup has been answered, or the step's deadline has passed.
void MxResolver::Engine::conclude(Lookup& lookup) {
  const std::string& d = lookup.domain;
  std::vector<MxHost> hosts;
  std::vector<std::string> failed;  // "mx.example: NXDOMAIN"
  bool temporary = false;
  for (auto& h : lookup.hosts) {
    for (Answer* answer : {&h.a, &h.aaaa})
      if (!answer->done) {
        answer->temporary = true;
        answer->note = "no answer within " + step_ms();
      }
    // IPv4 first within a host (IPv6 reachability is the less certain one), each
    // address once, at most kMaxAddressesPerHost in all.
    std::vector<std::string> addresses;
    for (const auto* list : {&h.a.addresses, &h.aaaa.addresses})
      for (const auto& a : *list)
        if (addresses.size() < kMaxAddressesPerHost && std::count(addresses.begin(), addresses.end(), a) == 0)
          addresses.push_back(a);
    // A host that failed one family temporarily but has addresses of the other is used
    // as it is; it still makes the result uncacheable.
    temporary = temporary || h.a.temporary || h.aaaa.temporary;
    if (!addresses.empty())
      hosts.push_back(MxHost{h.name, h.preference, std::move(addresses)});
    else
      failed.push_back(h.name + ": " + describe_failure(h));
  }

  const std::string dropped = lookup.dropped.empty() ? "" : "; " + join(lookup.dropped, "; ");
  const std::string tail = dropped + (failed.empty() ? "" : "; without address: " + join(failed, "; "));
  if (!hosts.empty()) {
    std::vector<std::string> described;
    for (const auto& h : hosts) described.push_back(describe(h));
    const std::string head = lookup.implicit ? "no MX for " + d + ", implicit MX: " : "MX for " + d + ": ";
    finish(lookup, make_result(Kind::ok, head + join(described, ", ") + tail, std::move(hosts)), !temporary);
    return;
  }
  if (temporary) {
    // One of the hosts might have addresses: ask again later.
    const std::string what = lookup.implicit ? "address lookup for " + d + " (no MX): "
                                             : "address lookup for the MX hosts of " + d + ": ";
    finish(lookup, make_result(Kind::temporary, what + join(failed, "; ") + dropped));
    return;
  }
  // Definite answers only, and none gave an address: RFC 5321 §5.1, undeliverable.
  if (lookup.implicit)
    finish(lookup, make_result(Kind::no_domain, "no MX for " + d + " and no A/AAAA records (" +
                                                    describe_failure(lookup.hosts[0]) + ")"));
  else
    finish(lookup, make_result(Kind::no_domain, "MX hosts of " + d + " have no addresses: " + join(failed, "; ") + dropped));
}

void MxResolver::Engine::expire(Clock::time_point now) {
  auto expire_one = [&](const std::shared_ptr<Lookup>& l) {
    if (l->finished || l->deadline > now) return;
    if (l->addresses_step)
      conclude(*l);  // what has come back is used; the rest counts as temporary failures
    else
      finish(*l, make_result(Kind::temporary, "MX lookup for " + l->domain + ": no answer within " + step_ms()));
  };
  std::for_each(running.begin(), running.end(), expire_one);
  std::for_each(waiting.begin(), waiting.end(), expire_one);
  std::erase_if(running, [](const auto& l) { return l->finished; });
  std::erase_if(waiting, [](const auto& l) { return l->finished; });
}

std::optional<MxResult> MxResolver::Engine::cached(const std::string& domain, Clock::time_point now) {
  const auto it = cache.find(domain);
  if (it == cache.end()) return std::nullopt;
  if (it->second.expires <= now) {
    cache.erase(it);
    return std::nullopt;
  }
  return it->second.result;
}

void MxResolver::Engine::remember(const std::string& domain, const MxResult& result, Clock::time_point now) {
  // Temporary failures are not remembered: the next attempt should ask again.
  if (config.cache_ttl.count() <= 0 || result.kind == Kind::temporary) return;
  if (cache.size() >= kMaxCachedMx) {
    std::erase_if(cache, [now](const auto& entry) { return entry.second.expires <= now; });
    if (cache.size() >= kMaxCachedMx) cache.clear();  // a flood of new domains: start over
  }
  cache[domain] = Cached{result, now + config.cache_ttl};
}

// ---------------------------------------------------------------------------------------

MxResolver::MxResolver(ResolverConfig config) : engine_(std::make_unique<Engine>(std::move(config))) {}

MxResolver::~MxResolver() = default;

void MxResolver::resolve(const std::string& domain, std::function<void(MxResult)> done) {
  auto l = std::make_shared<Lookup>();
  l->input = domain;
  l->done = std::move(done);
  engine_->submit(std::move(l));
}

MxResult MxResolver::resolve_blocking(const std::string& domain) {
  if (engine_->channel.on_thread()) {
    // Waiting here would wait for ourselves forever: a bug in the caller.
    std::fputs("mh::dns::MxResolver::resolve_blocking called from a done callback\n", stderr);
    std::abort();
  }
  std::promise<MxResult> promise;
  auto future = promise.get_future();
  resolve(domain, [&promise](MxResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

const char* kind_name(MxResult::Kind kind) noexcept {
  switch (kind) {
  case Kind::ok: return "ok";
  case Kind::null_mx: return "null_mx";
  case Kind::no_domain: return "no_domain";
  case Kind::temporary: return "temporary";
  }
  return "?";
}

std::optional<std::string> mx_name_ok(std::string_view name) {
  // host_name_ok() tolerates '_' because PTR targets in the wild carry it; a Domain in
  // an address (RFC 5321 §4.1.2 Let-dig / Ldh-str) and an MX exchange may not.
  if (name.find('_') != std::string_view::npos) return std::nullopt;
  return host_name_ok(name);
}

void order_mx_hosts(std::vector<MxHost>& hosts) {
  thread_local std::mt19937 random{std::random_device{}()};
  std::shuffle(hosts.begin(), hosts.end(), random);
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
}

} // namespace mh::dns
