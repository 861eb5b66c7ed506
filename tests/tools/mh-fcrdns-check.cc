// mh-fcrdns-check — test-only driver of mh::dns (tools/mh-serve/dns): runs the
// forward-confirmed reverse-DNS check for each address given, the way mh-serve does at
// RCPT, and prints one JSON document with each verdict and its exact SMTP reply.
// Built only with MH_BUILD_TESTS, installed nowhere. Exit 0 after checking, 64 on usage
// errors, 78 when the resolver settings are refused (as mh-serve would for mailhost.yaml).
//   mh-fcrdns-check [--server IP[:PORT]]... [--timeout MS] [--cache-ttl MS]
//                   [--trusted CIDR]... [--repeat N] [--pause MS] [--async] IP...
// --async submits every check at once through check() and reports, per check, how many
// times `done` ran and whether it ran on a thread other than main's; otherwise
// check_blocking() runs them one after the other (IP1 ×N, IP2 ×N, …), --pause MS apart.
#include "dns/fcrdns.h"
#include "dns/networks.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  mh::dns::ResolverConfig resolver;
  std::vector<mh::dns::Network> trusted;
  int repeat = 1;
  std::chrono::milliseconds pause{0};
  bool async = false;
  std::vector<std::string> ips;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "mh-fcrdns-check: error: " << why << "\n"
            << "usage: mh-fcrdns-check [--server IP[:PORT]]... [--timeout MS] [--cache-ttl MS]"
               " [--trusted CIDR]... [--repeat N] [--pause MS] [--async] IP...\n";
  std::exit(64);
}

long number(const std::string& option, const std::string& text) {
  try {
    std::size_t used = 0;
    const long n = std::stol(text, &used);
    if (used == text.size() && n >= 0) return n;
  } catch (const std::exception&) {
  }
  usage(option + " needs a non-negative number, not '" + text + "'");
}

Options parse(int argc, char** argv) {
  Options o;
  o.resolver.timeout = std::chrono::milliseconds(5000);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--server") {
      o.resolver.servers.push_back(value());
    } else if (arg == "--timeout") {
      o.resolver.timeout = std::chrono::milliseconds(number(arg, value()));
    } else if (arg == "--cache-ttl") {
      o.resolver.cache_ttl = std::chrono::milliseconds(number(arg, value()));
    } else if (arg == "--trusted") {
      std::string why;
      const std::string text = value();
      auto n = mh::dns::Network::parse(text, &why);
      if (!n) usage("--trusted '" + text + "': " + why);
      o.trusted.push_back(*n);
    } else if (arg == "--repeat") {
      o.repeat = static_cast<int>(number(arg, value()));
      if (o.repeat < 1 || o.repeat > 100000) usage("--repeat must be 1..100000");
    } else if (arg == "--pause") {
      o.pause = std::chrono::milliseconds(number(arg, value()));
    } else if (arg == "--async") {
      o.async = true;
    } else if (arg.starts_with("--")) {
      usage("unknown option " + arg);
    } else {
      o.ips.push_back(arg);
    }
  }
  if (o.ips.empty()) usage("no address given");
  return o;
}

json describe(const std::string& ip, const mh::dns::Result& r, Clock::duration took) {
  return json{{"ip", ip},
              {"verdict", mh::dns::verdict_name(r.verdict)},
              {"name", r.name},
              {"detail", r.detail},
              {"reply", mh::dns::smtp_reply_for(r, ip)},
              {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(took).count()}};
}

json trusted(const std::string& ip) {
  return json{{"ip", ip}, {"verdict", "trusted"}, {"name", ""}, {"detail", ""}, {"reply", ""}, {"elapsed_ms", 0}};
}

json run_blocking(mh::dns::FcrdnsChecker& checker, const Options& o) {
  json results = json::array();
  bool first = true;
  for (const auto& ip : o.ips) {
    for (int n = 0; n < o.repeat; ++n) {
      if (!first) std::this_thread::sleep_for(o.pause);
      first = false;
      if (mh::dns::in_networks(o.trusted, ip)) {
        results.push_back(trusted(ip));
        continue;
      }
      const auto start = Clock::now();
      const auto r = checker.check_blocking(ip);
      results.push_back(describe(ip, r, Clock::now() - start));
    }
  }
  return results;
}

// Every check at once; each slot records its result and how often `done` was called.
json run_async(mh::dns::FcrdnsChecker& checker, const Options& o) {
  struct Slot {
    std::string ip;
    mh::dns::Result result;
    Clock::duration took{};
    int calls = 0;
    bool other_thread = false;
  };
  std::vector<Slot> slots;
  for (const auto& ip : o.ips)
    for (int n = 0; n < o.repeat; ++n) slots.push_back(Slot{ip, {}, {}, 0, false});

  std::mutex m;
  std::condition_variable cv;
  std::size_t answered = 0;
  const auto main_thread = std::this_thread::get_id();
  const auto start = Clock::now();
  for (auto& slot : slots) {
    if (mh::dns::in_networks(o.trusted, slot.ip)) continue;
    checker.check(slot.ip, [&, s = &slot](mh::dns::Result r) {
      std::lock_guard lock(m);
      s->result = std::move(r);
      s->took = Clock::now() - start;
      s->calls += 1;
      s->other_thread = std::this_thread::get_id() != main_thread;
      ++answered;
      cv.notify_all();
    });
  }
  std::size_t expected = 0;
  for (const auto& slot : slots) expected += mh::dns::in_networks(o.trusted, slot.ip) ? 0 : 1;
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return answered >= expected; });
  }
  // A second call of `done` would come soon after the first: give it the chance.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  json results = json::array();
  std::lock_guard lock(m);
  for (const auto& slot : slots) {
    if (mh::dns::in_networks(o.trusted, slot.ip)) {
      results.push_back(trusted(slot.ip));
      continue;
    }
    json j = describe(slot.ip, slot.result, slot.took);
    j["calls"] = slot.calls;
    j["callback_on_other_thread"] = slot.other_thread;
    results.push_back(std::move(j));
  }
  return results;
}

} // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::unique_ptr<mh::dns::FcrdnsChecker> checker;
  try {
    checker = std::make_unique<mh::dns::FcrdnsChecker>(o.resolver);
  } catch (const std::exception& e) {
    std::cerr << "mh-fcrdns-check: error: " << e.what() << "\n";
    return 78;
  }
  const auto start = Clock::now();
  json results = o.async ? run_async(*checker, o) : run_blocking(*checker, o);
  const auto total = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  checker.reset();
  std::cout << json{{"results", results}, {"elapsed_ms", total}}.dump(2) << "\n";
  return 0;
}
