// fcrdns.cc — the forward-confirmed reverse-DNS check over one c-ares channel.
// c-ares 1.18 channels are not thread-safe and have no event thread of their own, so the
// checker runs one thread that owns the channel: other threads hand it checks through a
// mutex-guarded queue and wake it with an eventfd; it polls c-ares' sockets (tracked with
// ARES_OPT_SOCK_STATE_CB), enforces each check's deadline and calls the `done` callbacks.
#include "dns/fcrdns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace mh::dns {

namespace {

using Clock = std::chrono::steady_clock;

// A client address in binary form, as PTR parsing and A/AAAA comparison need it.
struct Address {
  int family = AF_INET;
  std::array<unsigned char, 16> bytes{};
  std::size_t size = 4;
  std::string text;  // canonical
};

std::optional<Address> parse_address(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    a.size = 4;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    // A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d; their PTR lives under
    // in-addr.arpa and their forward records are A records (RFC 4291 §2.5.5.2).
    static constexpr unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes.data(), v4_mapped, sizeof v4_mapped) == 0) {
      std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
      a.family = AF_INET;
      a.size = 4;
    } else {
      a.family = AF_INET6;
      a.size = 16;
    }
  } else {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.family, a.bytes.data(), buf, sizeof buf);
  a.text = buf;
  return a;
}

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

// Names from DNS that failed host_name_ok() still go to the log: make them printable.
std::string printable(std::string_view s, std::size_t limit = 255) {
  std::string out;
  for (char c : s.substr(0, limit)) out += (c > ' ' && c < 0x7f) ? c : '?';
  if (s.size() > limit) out += "...";
  return out;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// c-ares goes on to the next server or try after SERVFAIL, REFUSED or an unreachable
// server; when none is left it says ARES_ECONNREFUSED, "Could not contact DNS servers",
// which would send whoever reads the log after the wrong problem.
std::string status_text(int status) {
  if (status == ARES_ECONNREFUSED) return "no usable answer from the DNS servers (SERVFAIL, REFUSED or unreachable)";
  return ares_strerror(status);
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
  void run();

  // Called on the engine thread only.
  bool answer_at_once(const std::shared_ptr<Check>& check);
  void admit();
  void start(const std::shared_ptr<Check>& check);
  void finish(Check& check, Result result, bool cacheable = true);
  void on_ptr(const std::shared_ptr<Check>& check, const std::string& query, int status, const unsigned char* abuf, int alen);
  void on_forward(const std::shared_ptr<Check>& check, const std::string& name, int status, const unsigned char* abuf,
                  int alen);
  void conclude_forward(Check& check);
  void expire(Clock::time_point now);
  int poll_timeout_ms(Clock::time_point now);
  void wait_and_process(int timeout_ms);
  std::optional<Result> cached(const std::string& ip, Clock::time_point now);
  void remember(const std::string& ip, const Result& result, Clock::time_point now);

  static void sock_state(void* data, ares_socket_t fd, int readable, int writable);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

  // What travels through c-ares as a query's `arg`; freed by on_answer.
  struct Query {
    Engine* engine;
    std::shared_ptr<Check> check;
    std::string name;
    bool ptr;  // the PTR lookup, else a forward (A/AAAA) one
  };

  ResolverConfig config;
  ares_channel channel = nullptr;
  int wake_fd = -1;
  std::thread thread;

  std::mutex mutex;                                 // guards the two below
  std::vector<std::shared_ptr<Check>> submitted;
  bool stopping = false;

  // Engine thread only.
  std::map<ares_socket_t, short> sockets;           // what c-ares wants to wait for
  std::vector<std::shared_ptr<Check>> running;     // at most kMaxChecksInFlight
  std::deque<std::shared_ptr<Check>> waiting;      // for a place in `running`
  struct Cached {
    Result result;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, Cached> cache;
};

namespace {

void library_init() {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (status != ARES_SUCCESS) throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
}

// "ip", "ip:port", "[v6]:port" or a bare v6 address → c-ares' CSV form, or throws.
std::string servers_csv(const std::vector<std::string>& servers) {
  std::string csv;
  for (const auto& s : servers) {
    std::string_view host = s;
    std::string_view port;
    if (!host.empty() && host.front() == '[') {
      const auto close = host.find(']');
      if (close == std::string_view::npos) throw std::runtime_error("bad DNS server '" + s + "'");
      if (close + 1 < host.size()) {
        if (host[close + 1] != ':') throw std::runtime_error("bad DNS server '" + s + "'");
        port = host.substr(close + 2);
      }
      host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      port = host.substr(host.find(':') + 1);
      host = host.substr(0, host.find(':'));
    }
    const auto address = parse_address(host);
    if (!address) throw std::runtime_error("bad DNS server '" + s + "': not an IP address");
    if (!port.empty() || s.find(']') != std::string::npos) {
      const bool digits = !port.empty() && port.size() <= 5 &&
                          std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
        throw std::runtime_error("bad DNS server '" + s + "': bad port");
    }
    std::string entry = address->family == AF_INET6 ? "[" + address->text + "]" : address->text;
    if (!port.empty()) entry += ":" + std::string(port);
    else if (address->family == AF_INET6) entry += ":53";
    csv += (csv.empty() ? "" : ",") + entry;
  }
  return csv;
}

} // namespace

FcrdnsChecker::Engine::Engine(ResolverConfig c) : config(std::move(c)) {
  library_init();
  if (config.timeout.count() <= 0) throw std::runtime_error("DNS timeout must be positive");
  const std::string csv = servers_csv(config.servers);

  ares_options options{};
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS;
  options.timeout = static_cast<int>(std::min<long long>(config.timeout.count(), 3600 * 1000));
  options.tries = kTries;
  options.sock_state_cb = &Engine::sock_state;
  options.sock_state_cb_data = this;
  // Queries are always fully qualified: never append search domains.
  options.flags = ARES_FLAG_NOSEARCH;
  if (const int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares: cannot initialise: ") + ares_strerror(rc));
  if (!csv.empty()) {
    if (const int rc = ares_set_servers_ports_csv(channel, csv.c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel);
      throw std::runtime_error("c-ares: cannot use DNS servers '" + csv + "': " + ares_strerror(rc));
    }
  }
  wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    ares_destroy(channel);
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
  thread = std::thread([this] { run(); });
}

FcrdnsChecker::Engine::~Engine() {
  {
    std::lock_guard lock(mutex);
    stopping = true;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  thread.join();
  ::close(wake_fd);
}

void FcrdnsChecker::Engine::sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<Engine*>(data);
  const short events = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
  if (events == 0)
    self->sockets.erase(fd);
  else
    self->sockets[fd] = events;
}

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
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
}

void FcrdnsChecker::Engine::run() {
  for (;;) {
    std::vector<std::shared_ptr<Check>> fresh;
    bool stop;
    {
      std::lock_guard lock(mutex);
      fresh.swap(submitted);
      stop = stopping;
    }
    if (stop) {
      // Queries in flight end with ARES_EDESTRUCTION, which on_answer ignores; every
      // check still waiting is answered here, so `done` is still called exactly once.
      ares_destroy(channel);
      for (auto* list : {&running, &fresh})
        for (auto& c : *list) finish(*c, make_result(Verdict::temporary_failure, "", "resolver stopped"));
      for (auto& c : waiting) finish(*c, make_result(Verdict::temporary_failure, "", "resolver stopped"));
      return;
    }
    for (auto& c : fresh)
      if (!answer_at_once(c)) waiting.push_back(std::move(c));
    expire(Clock::now());
    admit();
    wait_and_process(poll_timeout_ms(Clock::now()));
  }
}

int FcrdnsChecker::Engine::poll_timeout_ms(Clock::time_point now) {
  long long ms = -1;
  timeval tv{};
  if (ares_timeout(channel, nullptr, &tv) != nullptr)
    ms = static_cast<long long>(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000;
  auto consider = [&](const std::shared_ptr<Check>& c) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(c->deadline - now).count();
    ms = ms < 0 ? std::max<long long>(left, 0) : std::min<long long>(ms, std::max<long long>(left, 0));
  };
  for (const auto& c : running) consider(c);
  if (!waiting.empty()) consider(waiting.front());  // deadlines grow along the queue
  return static_cast<int>(std::min<long long>(ms, 60 * 1000));
}

void FcrdnsChecker::Engine::wait_and_process(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.push_back(pollfd{wake_fd, POLLIN, 0});
  for (const auto& [fd, events] : sockets) fds.push_back(pollfd{fd, events, 0});
  const int n = ::poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
  if (n > 0 && (fds[0].revents & POLLIN)) {
    std::uint64_t count;
    [[maybe_unused]] auto r = ::read(wake_fd, &count, sizeof count);
  }
  for (std::size_t i = 1; n > 0 && i < fds.size(); ++i) {
    const short ev = fds[i].revents;
    if (ev == 0) continue;
    // Errors and hang-ups are reported to c-ares as readable: its read fails and it
    // moves the query to the next server or try.
    const bool readable = ev & (POLLIN | POLLERR | POLLHUP);
    const bool writable = ev & POLLOUT;
    ares_process_fd(channel, readable ? fds[i].fd : ARES_SOCKET_BAD, writable ? fds[i].fd : ARES_SOCKET_BAD);
  }
  ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares' own retry timeouts
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
  ares_query(channel, rev.c_str(), ns_c_in, ns_t_ptr, on_answer, new Query{this, check, rev, true});
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
    ares_query(channel, name.c_str(), ns_c_in, type, on_answer, new Query{this, check, name, false});
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
  if (std::this_thread::get_id() == engine_->thread.get_id()) {
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
