// runner.cc — the queue runner's engine (runner.h). One thread owns everything here:
// the schedule, the jobs, the transfers' lives. Other threads only append to the inbox
// (notify(), MX answers, finished transfers from the pool) under a mutex and wake the
// loop with a condition variable. The transfers themselves run on the TransferPool
// (transfer_pool.h says why not on libcurl's multi interface).
//
// One entry's life in the runner:
//   known (id, .env inode, due)  --due--> claimed (QueueClaim: the entry's lock)
//   --> grouped by destination (relay.host, or each recipient domain)
//   --> per group: MX lookup → candidate addresses → one Transfer per try
//   --> all groups judged → .env rewritten (attempts+1, next try, recipients left) or
//       entry removed; a DSN queued first for recipients that failed for good
//   --> lock released; known again with its new due time.
#include "outbound/runner.h"

#include "dns/mx.h"
#include "net/log.h"
#include "outbound/outcome.h"
#include "outbound/transfer.h"
#include "outbound/transfer_pool.h"

#include <spool/accounts.h>
#include <spool/bounce.h>
#include <spool/delivery.h>
#include <spool/filtered_delivery.h>
#include <spool/list_mail.h>
#include <spool/error.h>
#include <spool/queue.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

namespace mh::outbound {
namespace {

using net::log_line;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kRescanSeconds = 1;         // SPEC §8: a change is acted on within 1 s
constexpr std::int64_t kFullRescanSeconds = 30;    // even when the directory looks unchanged
constexpr std::int64_t kSweepSeconds = 600;        // crash leftovers (queue.h sweep_queue)
constexpr std::int64_t kLockedRetrySeconds = 5;    // an entry someone else holds
constexpr std::int64_t kIoRetrySeconds = 60;       // the spool could not be read or written
constexpr std::size_t kClaimsPerTurn = 256;        // then the inbox gets the loop again
constexpr std::size_t kMaxAddressesPerAttempt = 10;// Postfix's smtp_mx_address_limit is 5
const std::string kRelayDestination = "[relay]";   // not a domain: cannot collide
const std::string kLocalDestination = "[local]";   // a domain hosted here

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string domain_of(const std::string& address) {
  const auto at = address.rfind('@');
  std::string d = at == std::string::npos ? std::string() : address.substr(at + 1);
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return d;
}

struct Candidate {
  std::string host;   // IP literal, or the relay's name
  std::uint16_t port = 25;
  std::string name;   // "mx.example.org[192.0.2.1]:25"
};

struct Group {
  std::string destination;                 // domain, or kRelayDestination
  std::vector<std::string> recipients;
  std::vector<Candidate> candidates;
  std::size_t next_candidate = 0;
  std::unique_ptr<Transfer> transfer;
  std::string failures;                    // hosts tried in vain this attempt, for the log
  std::vector<RecipientOutcome> outcomes;  // set when the group is done
  std::string remote_mta;                  // who decided them
  bool done = false;
};

struct Job {
  spool::QueueClaim claim;
  std::vector<Group> groups;
  std::size_t open = 0;
  explicit Job(spool::QueueClaim c) : claim(std::move(c)) {}
};

enum class Where { waiting, parked, busy };

struct Known {
  std::uint64_t inode = 0;
  std::int64_t due = 0;
  Where where = Where::waiting;
};

struct MxAnswer {
  std::string id;
  std::size_t group = 0;
  dns::MxResult result;
};

} // namespace

struct QueueRunner::Engine {
  Engine(const spool::Layout& layout, const serve::Settings& settings)
      : layout_(layout), config_(settings.config), hostname_(settings.hostname) {
    init_curl();
    if (config_.relay_host.empty()) {
      dns::ResolverConfig rc;
      rc.servers = config_.dns_servers;
      rc.timeout = config_.dns_timeout;
      try {
        resolver_ = std::make_unique<dns::MxResolver>(rc);
      } catch (const std::runtime_error& e) {
        serve::bad_config(layout, config_, "dns.servers", e.what());
      }
    } else {
      relay_ = parse_relay(config_.relay_host);
      if (!relay_)
        serve::bad_config(layout, config_, "relay.host",
                          "'" + config_.relay_host + "' is not HOST:PORT, [IPV6]:PORT or HOST");
    }
  }

  ~Engine() {
    stop();
    resolver_.reset();  // before the inbox its callbacks write to
  }

  void start() {
    pool_ = std::make_unique<TransferPool>(config_.outbound_concurrency, [this](Transfer* t, int code) {
      {
        std::lock_guard lock(inbox_mutex_);
        finished_.push_back({t, code});
      }
      wake();
    });
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    // Cut the transfers first: their threads report back, the loop sees the flag.
    pool_->stop();
    wake();
    thread_.join();
    // Resolver next: its thread may still call back into the inbox.
    resolver_.reset();
    abandon_all();
    pool_.reset();
  }

  void set_filter_services(spool::FilterServices services) { filters_ = std::move(services); }

  void notify(const std::string& id) {
    {
      std::lock_guard lock(inbox_mutex_);
      notified_.push_back(id);
    }
    wake();
  }

  void wake() {
    {
      std::lock_guard lock(inbox_mutex_);
      woken_ = true;
    }
    inbox_cv_.notify_one();
  }

private:
  // --- the loop -------------------------------------------------------------------------

  void run() {
    log_line(std::string("queue runner: started") + (config_.outbound_hold ? ", holding all mail (outbound.hold)" : "") + " (" +
             (relay_ ? "relay " + relay_->name : std::string("delivering by MX, port ") + std::to_string(config_.outbound_port)) +
             ", concurrency " + std::to_string(config_.outbound_concurrency) + ")");
    // The first sweep a minute after start: it stats every file, and the first
    // deliveries should not wait for that on a long queue. What a kill left half removed
    // (a .msg without .env) costs one readdir: cleared now, so a restart leaves no debris.
    last_sweep_ = unix_now() - kSweepSeconds + 60;
    try {
      if (const std::size_t n = spool::sweep_lone_messages(layout_); n > 0)
        log_line("queue runner: removed " + std::to_string(n) + " message file(s) without envelope left by a crash");
    } catch (const spool::Error& e) {
      log_line(std::string("queue runner: sweep failed: ") + e.what());
    }
    while (!stopping_) {
      const std::int64_t now = unix_now();
      maybe_rescan(now);
      drain_inbox(now);
      start_due(now);
      if (now - last_sweep_ >= kSweepSeconds) sweep(now);
      std::unique_lock lock(inbox_mutex_);
      inbox_cv_.wait_for(lock, std::chrono::milliseconds(poll_timeout_ms(now)), [this] { return woken_; });
      woken_ = false;
    }
    log_line("queue runner: stopped");
  }

  long poll_timeout_ms(std::int64_t now) const {
    long ms = 1000;  // the rescan tick
    if (!due_.empty() && room()) ms = std::min<long>(ms, std::max<std::int64_t>(0, (due_.begin()->first - now) * 1000));
    return ms;
  }

  bool room() const { return transfers_ < config_.outbound_concurrency; }

  // --- knowing the queue ----------------------------------------------------------------

  void maybe_rescan(std::int64_t now) {
    // At most every second, and never more than ~5% of the time: a queue of 100,000
    // entries takes tens of ms to read, and while mail flows the directory always changed.
    const auto pause = std::max<std::int64_t>(kRescanSeconds, (last_scan_cost_ms_ * 20 + 999) / 1000);
    if (now - last_rescan_ < pause && last_rescan_ != 0) return;
    struct stat st;
    if (::stat(layout_.queue_dir().c_str(), &st) != 0) {
      last_rescan_ = now;
      return;  // no queue yet
    }
    const auto mtime = std::pair(st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (mtime == queue_mtime_ && now - last_full_scan_ < kFullRescanSeconds) {
      last_rescan_ = now;
      return;
    }
    queue_mtime_ = mtime;
    last_rescan_ = last_full_scan_ = now;
    spool::QueueScan scan;
    const auto started = Clock::now();
    try {
      scan = spool::scan_queue(layout_);
    } catch (const spool::Error& e) {
      log_line(std::string("queue runner: cannot read the queue: ") + e.what());
      return;
    }
    for (const auto& e : scan.entries) {
      auto [it, added] = known_.try_emplace(e.id);
      if (added) {
        it->second.inode = e.env_inode;
        schedule(e.id, it->second, 0);
      } else if (it->second.inode != e.env_inode && it->second.where == Where::waiting) {
        it->second.inode = e.env_inode;  // changed by someone else (queue retry, another host)
        schedule(e.id, it->second, 0);
      }
    }
    // Entries gone (delivered by another runner, deleted by an administrator).
    for (auto it = known_.begin(); it != known_.end();) {
      const bool present = std::binary_search(scan.entries.begin(), scan.entries.end(), it->first,
                                              [](const auto& a, const auto& b) { return key(a) < key(b); });
      if (!present && it->second.where != Where::busy) {
        if (it->second.where == Where::waiting) due_.erase({it->second.due, &it->first});
        it = known_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& id : scan.suspect)
      if (!known_.count(id) || known_[id].where != Where::busy) quarantine(id, "not a regular file");
    last_scan_cost_ms_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  }

  static const std::string& key(const spool::QueueScan::Entry& e) { return e.id; }
  static const std::string& key(const std::string& s) { return s; }

  void schedule(const std::string& id, Known& k, std::int64_t due) {
    if (k.where == Where::waiting) due_.erase({k.due, &id});
    k.where = Where::waiting;
    k.due = due;
    due_.insert({due, &known_.find(id)->first});  // the stable copy, not the caller's
  }

  void drain_inbox(std::int64_t now) {
    std::vector<std::string> notified;
    std::vector<MxAnswer> answers;
    std::vector<std::pair<Transfer*, int>> finished;
    {
      std::lock_guard lock(inbox_mutex_);
      notified.swap(notified_);
      answers.swap(answers_);
      finished.swap(finished_);
    }
    for (const auto& [t, code] : finished) on_finished(t, code);
    for (const auto& id : notified) {
      auto [it, added] = known_.try_emplace(id);
      if (added || it->second.where == Where::waiting) schedule(id, it->second, now);
    }
    for (auto& a : answers) on_mx_answer(a);
  }

  void sweep(std::int64_t now) {
    last_sweep_ = now;
    try {
      const auto s = spool::sweep_queue(layout_, now);
      if (s.tmp_removed + s.orphans_removed + s.temps_removed > 0)
        log_line("queue runner: swept " + std::to_string(s.tmp_removed) + " tmp file(s), " +
                 std::to_string(s.orphans_removed) + " orphan(s), " + std::to_string(s.temps_removed) + " temp file(s)");
    } catch (const spool::Error& e) {
      log_line(std::string("queue runner: sweep failed: ") + e.what());
    }
  }

  void quarantine(const std::string& id, const std::string& why) {
    try {
      const auto moved = spool::quarantine_queue_entry(layout_, id);
      if (moved.empty()) return;  // someone holds it; seen again at the next scan
      std::string where;
      for (const auto& p : moved) where += (where.empty() ? "" : ", ") + p.string();
      log_line("queue " + id + ": moved to queue/corrupt/ (" + why + "): " + where);
      if (auto it = known_.find(id); it != known_.end()) {
        if (it->second.where == Where::waiting) due_.erase({it->second.due, &id});
        known_.erase(it);
      }
    } catch (const spool::Error& e) {
      log_line("queue " + id + ": unreadable (" + why + ") and cannot be moved aside: " + e.what());
    }
  }

  // --- starting deliveries --------------------------------------------------------------

  void start_due(std::int64_t now) {
    if (config_.outbound_hold) return;  // outbound.hold: the queue only fills
    for (std::size_t claims = 0; claims < kClaimsPerTurn && room() && !due_.empty(); ++claims) {
      auto first = due_.begin();
      if (first->first > now) break;
      const std::string id = *first->second;
      due_.erase(first);
      Known& k = known_[id];
      k.where = Where::busy;
      std::optional<spool::QueueClaim> claim;
      try {
        claim = spool::QueueClaim::try_claim(layout_, id);
      } catch (const spool::Error& e) {
        // Malformed, truncated, unreadable (permission) or planted: it will not get
        // better by itself. Other errors (out of descriptors, disk trouble) are tried again.
        if (e.code() == spool::Errc::bad_config || e.code() == spool::Errc::invalid_input ||
            e.code() == spool::Errc::permission || e.planted()) {
          quarantine(id, e.what());
          known_.erase(id);  // also when it could not be moved: the next scan finds it again
        } else {
          log_line("queue " + id + ": " + e.what());
          schedule(id, k, now + kIoRetrySeconds);
        }
        continue;
      }
      if (!claim) {
        // Held by a writer or another runner, or just removed: look again soon (a
        // rescan drops it if it is gone).
        schedule(id, k, now + kLockedRetrySeconds);
        continue;
      }
      k.inode = claim->env_inode();
      if (claim->envelope().next_attempt > now) {
        schedule(id, k, claim->envelope().next_attempt);
        continue;
      }
      auto job = std::make_unique<Job>(std::move(*claim));
      group_recipients(*job);
      if (const std::string* full = full_destination(*job)) {
        k.where = Where::parked;  // the lock is let go; the entry waits for a slot there
        parked_[*full].push_back(id);
        continue;
      }
      launch(id, std::move(job));
    }
  }

  // Mail for a domain hosted here (a DSN to a local sender, later forwards between our
  // own accounts) is delivered into the Maildir, never through the relay or MX.
  bool hosted(const std::string& domain) {
    try {
      return spool::domain_exists(layout_, spool::Domain::parse(domain));
    } catch (const spool::Error&) {
      return false;
    }
  }

  void group_recipients(Job& job) {
    std::map<std::string, std::size_t> index;
    std::map<std::string, bool> local;
    for (const auto& r : job.claim.envelope().recipients) {
      const std::string domain = domain_of(r);
      auto [hit, fresh] = local.try_emplace(domain);
      if (fresh) hit->second = hosted(domain);
      const std::string dest = hit->second ? kLocalDestination : relay_ ? kRelayDestination : domain;
      auto [it, added] = index.try_emplace(dest, job.groups.size());
      if (added) {
        job.groups.emplace_back();
        job.groups.back().destination = dest;
      }
      job.groups[it->second].recipients.push_back(r);
    }
  }

  std::uint32_t cap(const std::string& destination) const {
    return destination == kRelayDestination ? config_.outbound_concurrency
                                            : std::min(config_.outbound_per_destination, config_.outbound_concurrency);
  }

  const std::string* full_destination(const Job& job) const {
    for (const auto& g : job.groups) {
      auto it = active_.find(g.destination);
      if (it != active_.end() && it->second >= cap(g.destination)) return &g.destination;
    }
    return nullptr;
  }

  void launch(const std::string& id, std::unique_ptr<Job> job) {
    Job& j = *job;
    jobs_[id] = std::move(job);
    // One hold of our own: a group may finish at once (local delivery, no address), and
    // the job must not be finished (and freed) while this loop still walks it.
    j.open = j.groups.size() + 1;
    for (std::size_t gi = 0; gi < j.groups.size(); ++gi) {
      Group& g = j.groups[gi];
      ++active_[g.destination];
      ++transfers_;
      if (g.destination == kLocalDestination) {
        deliver_locally(id, j, gi);
      } else if (relay_) {
        g.candidates.push_back(*relay_);
        start_transfer(id, j, gi);
      } else {
        resolver_->resolve(g.destination, [this, id, gi](dns::MxResult r) {
          {
            std::lock_guard lock(inbox_mutex_);
            answers_.push_back({id, gi, std::move(r)});
          }
          wake();
        });
      }
    }
    if (--j.open == 0) finish_job(id);
  }

  // Blocking (fsync), on the runner's thread: mail to our own domains is rare here.
  void deliver_locally(const std::string& id, Job& j, std::size_t gi) {
    Group& g = j.groups[gi];
    std::vector<spool::Address> accounts;
    std::map<spool::Address, std::vector<std::string>> written_as;  // NAME+EXT and NAME are one account
    for (const auto& r : g.recipients) {
      if (auto list = list_target(r)) {
        deliver_to_list(j, *list, r, g);
        continue;
      }
      if (auto a = spool::account_for_address(layout_, r)) {
        accounts.push_back(*a);
        written_as[*a].push_back(r);
      } else {
        g.outcomes.push_back({r, Fate::bounced, "550 5.1.1 <" + r + ">: User unknown"});
      }
    }
    if (!accounts.empty()) {
      try {
        auto message = spool::PendingMessage::begin(layout_, layout_.maildir(accounts.front()));
        // The final delivery: our Return-Path on top, any stored one left out.
        const std::string trace = "Return-Path: <" + j.claim.envelope().sender + ">\n";
        message.append(trace);
        copy_message(j.claim.message_fd(), leading_return_path_size(j.claim.message_fd()), message);
        using Status = spool::DeliveryOutcome::Status;
        for (const auto& f : spool::deliver_filtered(layout_, message, trace.size(), accounts, j.claim.envelope().sender,
                                                     filters_, unix_now())) {
          const spool::DeliveryOutcome& o = f.delivery;
          const std::string filtered = f.filter.empty() ? "" : "; filters: " + f.filter;
          for (const std::string& r : written_as[o.recipient]) switch (o.status) {
          case Status::delivered:
            g.outcomes.push_back({r, Fate::delivered, f.filter.empty() ? "delivered to Maildir " + o.uidl : o.detail + filtered});
            break;
          case Status::over_quota: g.outcomes.push_back({r, Fate::bounced, "552 5.2.2 <" + r + ">: Disk quota exceeded"}); break;
          case Status::no_account: g.outcomes.push_back({r, Fate::bounced, "550 5.1.1 <" + r + ">: User unknown"}); break;
          case Status::failed_temporary: g.outcomes.push_back({r, Fate::deferred, "451 4.3.0 " + o.detail}); break;
          }
        }
      } catch (const spool::Error& e) {
        for (const auto& [a, names] : written_as)
          for (const std::string& r : names)
            g.outcomes.push_back({r, Fate::deferred, std::string("451 4.3.0 local delivery failed: ") + e.what()});
      }
    }
    g.remote_mta.clear();
    finish_group(id, j, gi);
  }

  // A list or one of its control addresses (spool/list_mail.h), +approved- included:
  // only this process queues those.
  std::optional<spool::ListTarget> list_target(const std::string& r) {
    const auto at = r.rfind('@');
    if (at == std::string::npos) return std::nullopt;
    try {
      return spool::find_list_target(layout_, std::string_view(r).substr(0, at), spool::Domain::parse(r.substr(at + 1)), true);
    } catch (const spool::Error&) {
      return std::nullopt;
    }
  }

  // Blocking like the Maildir delivery: a post to a big list delivers its local members here.
  void deliver_to_list(Job& j, const spool::ListTarget& target, const std::string& r, Group& g) {
    spool::QueuedMail mail;
    mail.queue_id = j.claim.envelope().id;
    mail.fd = j.claim.message_fd();
    mail.size = j.claim.message_size();
    mail.path = j.claim.message_path();
    mail.sender = j.claim.envelope().sender;
    spool::ListServices services;
    services.hostname = hostname_;
    services.filters = filters_;
    const spool::ListMailResult res = spool::handle_list_mail(layout_, target, mail, services, unix_now());
    using F = spool::ListMailResult::Fate;
    const Fate fate = res.fate == F::done ? Fate::delivered : res.fate == F::bounced ? Fate::bounced : Fate::deferred;
    g.outcomes.push_back({r, fate, res.detail});
  }

  static void copy_message(int fd, std::uint64_t from, spool::PendingMessage& message) {
    std::string buffer(64 * 1024, '\0');
    off_t offset = static_cast<off_t>(from);
    for (;;) {
      const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw spool::Error(spool::Errc::other, "cannot read the queued message", true);
      if (n == 0) return;
      message.append(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
      offset += n;
    }
  }

  void on_mx_answer(MxAnswer& a) {
    auto it = jobs_.find(a.id);
    if (it == jobs_.end() || a.group >= it->second->groups.size()) return;
    Job& j = *it->second;
    Group& g = j.groups[a.group];
    using Kind = dns::MxResult::Kind;
    switch (a.result.kind) {
    case Kind::ok: {
      // RFC 5321 §5.1: we are one of the MX hosts → only those more preferred than us
      // may be tried; none left means the mail would come back to us: a loop.
      std::vector<dns::MxHost> hosts = a.result.hosts;
      for (const auto& h : hosts)
        if (same_host(h.name, hostname_)) {
          const unsigned ours = h.preference;
          std::erase_if(hosts, [ours](const dns::MxHost& x) { return x.preference >= ours; });
          break;
        }
      if (hosts.empty()) {
        group_done(a.id, j, a.group, Fate::bounced,
                   "554 5.4.6 mail for " + g.destination + " loops back to myself (" + hostname_ + " is its MX)");
        return;
      }
      for (const auto& host : hosts)
        for (const auto& addr : host.addresses) {
          if (g.candidates.size() >= kMaxAddressesPerAttempt) break;
          g.candidates.push_back({addr, config_.outbound_port,
                                  host.name + "[" + addr + "]:" + std::to_string(config_.outbound_port)});
        }
      start_transfer(a.id, j, a.group);
      return;
    }
    case Kind::null_mx:
      group_done(a.id, j, a.group, Fate::bounced,
                 "556 5.1.10 " + g.destination + " does not accept mail (null MX, RFC 7505)");
      return;
    case Kind::no_domain:
      group_done(a.id, j, a.group, Fate::bounced, "550 5.4.4 Host or domain name not found: " + a.result.detail);
      return;
    case Kind::temporary:
      group_done(a.id, j, a.group, Fate::deferred, "451 4.4.3 Host or domain name lookup failed: " + a.result.detail);
      return;
    }
  }

  void start_transfer(const std::string& id, Job& j, std::size_t gi) {
    Group& g = j.groups[gi];
    while (g.next_candidate < g.candidates.size()) {
      const Candidate& c = g.candidates[g.next_candidate++];
      TransferRequest r;
      r.host = c.host;
      r.port = c.port;
      r.server_name = c.name;
      r.helo_name = hostname_;
      r.sender = j.claim.envelope().sender;
      r.recipients = g.recipients;
      r.message_fd = j.claim.message_fd();
      r.message_size = j.claim.message_size();
      r.tls = config_.relay_tls;
      r.timeout = config_.outbound_timeout;
      r.connect_timeout = config_.outbound_connect_timeout;
      try {
        g.transfer = std::make_unique<Transfer>(std::move(r));
      } catch (const std::exception& e) {
        g.failures += std::string(g.failures.empty() ? "" : "; ") + c.name + ": " + e.what();
        continue;
      }
      owners_[g.transfer.get()] = {id, gi};
      pool_->run(g.transfer.get());
      return;
    }
    const std::string why = g.candidates.empty() ? "no address to deliver to" : g.failures;
    group_done(id, j, gi, Fate::deferred, why.empty() ? "no server could be reached" : why);
  }

  // --- finishing ------------------------------------------------------------------------

  void on_finished(Transfer* done, int code) {
    auto owner = owners_.find(done);
    if (owner == owners_.end()) return;
    const auto [id, gi] = owner->second;
    owners_.erase(owner);
    if (stopping_) return;  // cut by stop(): the entry stays as it was
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& j = *it->second;
    Group& g = j.groups[gi];
    std::unique_ptr<Transfer> t = std::move(g.transfer);
    const bool ok = code == 0;  // CURLE_OK
    const std::string failure = t->failure_text(code);
    if (try_next_host(t->transcript(), ok)) {
      const auto& last = t->transcript().last_reply();
      const std::string why = last && !last->positive() ? last->text + (failure.empty() ? "" : " (" + failure + ")") : failure;
      g.failures += std::string(g.failures.empty() ? "" : "; ") + t->request().server_name + ": " + why;
      start_transfer(id, j, gi);
      return;
    }
    g.outcomes = judge_transfer(t->transcript(), g.recipients, ok, failure);
    g.remote_mta = t->request().server_name;
    finish_group(id, j, gi);
  }

  void group_done(const std::string& id, Job& j, std::size_t gi, Fate fate, const std::string& reply) {
    Group& g = j.groups[gi];
    g.outcomes.clear();
    for (const auto& r : g.recipients) g.outcomes.push_back({r, fate, reply});
    finish_group(id, j, gi);
  }

  void finish_group(const std::string& id, Job& j, std::size_t gi) {
    Group& g = j.groups[gi];
    g.done = true;
    --transfers_;
    if (--active_[g.destination] == 0) active_.erase(g.destination);
    unpark(g.destination);
    for (const auto& o : g.outcomes)
      log_line("queue " + id + ": to=<" + o.recipient + "> relay=" + (g.remote_mta.empty() ? "none" : g.remote_mta) +
               " status=" + (o.fate == Fate::delivered ? "sent" : o.fate == Fate::bounced ? "bounced" : "deferred") +
               " (" + o.reply + ")");
    if (--j.open == 0) finish_job(id);
  }

  void unpark(const std::string& destination) {
    auto it = parked_.find(destination);
    if (it == parked_.end()) return;
    while (!it->second.empty()) {
      const std::string id = it->second.front();
      it->second.pop_front();
      auto k = known_.find(id);
      if (k == known_.end() || k->second.where != Where::parked) continue;
      schedule(id, k->second, 0);
      break;
    }
    if (it->second.empty()) parked_.erase(it);
  }

  void finish_job(const std::string& id) {
    auto node = jobs_.extract(id);
    Job& j = *node.mapped();
    const std::int64_t now = unix_now();
    spool::QueueEnvelope env = j.claim.envelope();
    std::map<std::string, const RecipientOutcome*> by_rcpt;
    std::map<std::string, const std::string*> mta_of;
    for (const auto& g : j.groups)
      for (const auto& o : g.outcomes) {
        by_rcpt[o.recipient] = &o;
        mta_of[o.recipient] = &g.remote_mta;
      }
    auto mta = [&mta_of](const std::string& r) {
      auto it = mta_of.find(r);
      return it == mta_of.end() ? std::string() : *it->second;
    };
    std::vector<spool::BounceFailure> bounced;
    std::vector<std::string> left, errors;
    for (const auto& r : env.recipients) {
      const RecipientOutcome* o = by_rcpt.count(r) ? by_rcpt[r] : nullptr;
      if (o && o->fate == Fate::delivered) continue;
      if (o && o->fate == Fate::bounced) {
        bounced.push_back({r, o->reply, mta(r)});
        continue;
      }
      left.push_back(r);
      errors.push_back(o ? o->reply : "not attempted");
    }
    const bool give_up = !left.empty() && past_give_up(env.created, now, config_.outbound_give_up);
    if (give_up) {
      for (std::size_t i = 0; i < left.size(); ++i) {
        bounced.push_back({left[i], errors[i] + " (gave up after " + age_text(now - env.created) + " of retries)",
                           mta(left[i])});
        const std::string relay = mta(left[i]);
        log_line("queue " + id + ": to=<" + left[i] + "> relay=" + (relay.empty() ? "none" : relay) +
                 " status=bounced (" + bounced.back().reply + ")");
      }
      left.clear();
      errors.clear();
    }
    if (!bounced.empty() && !send_bounce(id, j, bounced, now)) {
      // The DSN could not be queued (disk full …): keep those recipients, bounce later.
      for (const auto& b : bounced) {
        left.push_back(b.recipient);
        errors.push_back(b.reply);
      }
    }
    Known& k = known_[id];
    try {
      if (left.empty()) {
        j.claim.remove(/*sync=*/false);
        known_.erase(id);
        return;
      }
      env.recipients = std::move(left);
      env.recipient_errors = std::move(errors);
      env.attempts += 1;
      env.last_error = env.recipient_errors.front();
      env.next_attempt = now + retry_delay(config_.outbound_retry, env.attempts).count();
      j.claim.update(env);
      k.inode = j.claim.env_inode();
      schedule(id, k, env.next_attempt);
    } catch (const spool::Error& e) {
      log_line("queue " + id + ": cannot record the attempt: " + std::string(e.what()) +
               " (the entry stays as it was; delivered recipients may get it again)");
      schedule(id, k, now + kIoRetrySeconds);
    }
  }

  bool send_bounce(const std::string& id, Job& j, const std::vector<spool::BounceFailure>& failures, std::int64_t now) {
    const auto& env = j.claim.envelope();
    if (env.sender.empty()) {
      log_line("queue " + id + ": no DSN for " + std::to_string(failures.size()) +
               " failed recipient(s): the message has the null sender (a bounce is never bounced)");
      return true;
    }
    try {
      const std::string dsn = spool::queue_bounce(layout_, hostname_, env, j.claim.message_fd(), failures, now);
      log_line("queue " + id + ": DSN " + dsn + " queued to <" + env.sender + "> for " +
               std::to_string(failures.size()) + " recipient(s)");
      notify_self(dsn, now);
      return true;
    } catch (const spool::Error& e) {
      log_line("queue " + id + ": cannot queue the DSN: " + e.what());
      return false;
    }
  }

  void notify_self(const std::string& id, std::int64_t now) {
    auto [it, added] = known_.try_emplace(id);
    if (added) schedule(id, it->second, now);
  }

  // Shutdown: transfers in flight are cut; their entries stay as they were (the next
  // start delivers them again: at-least-once).
  void abandon_all() {
    owners_.clear();
    jobs_.clear();
    std::lock_guard lock(inbox_mutex_);
    finished_.clear();  // pointers to transfers just freed
  }

  static std::string age_text(std::int64_t seconds) {
    if (seconds < 120) return std::to_string(seconds) + " s";
    if (seconds < 7200) return std::to_string(seconds / 60) + " min";
    if (seconds < 2 * 86400) return std::to_string(seconds / 3600) + " h";
    return std::to_string(seconds / 86400) + " days";
  }

  static bool same_host(std::string a, std::string b) {
    for (auto* s : {&a, &b}) {
      std::transform(s->begin(), s->end(), s->begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!s->empty() && s->back() == '.') s->pop_back();
    }
    return a == b;
  }

  // "host", "host:port", "[v6]:port", "[v6]" (port 25 when none is given).
  static std::optional<Candidate> parse_relay(const std::string& text) {
    Candidate c;
    std::string host = text, port = "25";
    if (!text.empty() && text.front() == '[') {
      const auto close = text.find(']');
      if (close == std::string::npos) return std::nullopt;
      host = text.substr(1, close - 1);
      if (close + 1 < text.size()) {
        if (text[close + 1] != ':') return std::nullopt;
        port = text.substr(close + 2);
      }
    } else if (const auto colon = text.find(':'); colon != std::string::npos) {
      if (text.find(':', colon + 1) != std::string::npos) return std::nullopt;  // bare IPv6: use [ ]
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
    if (host.empty() || host.find_first_of(" /@\\") != std::string::npos) return std::nullopt;
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const int p = std::stoi(port);
    if (p < 1 || p > 65535) return std::nullopt;
    c.host = host;
    c.port = static_cast<std::uint16_t>(p);
    c.name = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
    return c;
  }

  const spool::Layout& layout_;
  const spool::ServerConfig config_;
  const std::string hostname_;
  spool::FilterServices filters_;
  std::optional<Candidate> relay_;
  std::unique_ptr<dns::MxResolver> resolver_;
  std::unique_ptr<TransferPool> pool_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex inbox_mutex_;
  std::condition_variable inbox_cv_;
  bool woken_ = false;
  std::vector<std::string> notified_;
  std::vector<MxAnswer> answers_;
  std::vector<std::pair<Transfer*, int>> finished_;

  // due_ points at known_'s keys (node-based: stable) so each id is stored once.
  struct DueLess {
    bool operator()(const std::pair<std::int64_t, const std::string*>& a,
                    const std::pair<std::int64_t, const std::string*>& b) const {
      return a.first != b.first ? a.first < b.first : *a.second < *b.second;
    }
  };
  std::unordered_map<std::string, Known> known_;
  std::set<std::pair<std::int64_t, const std::string*>, DueLess> due_;
  std::map<std::string, std::deque<std::string>> parked_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  std::map<std::string, std::uint32_t> active_;      // transfers (or lookups) per destination
  std::unordered_map<Transfer*, std::pair<std::string, std::size_t>> owners_;
  std::uint32_t transfers_ = 0;

  std::int64_t last_rescan_ = 0, last_full_scan_ = 0, last_sweep_ = 0, last_scan_cost_ms_ = 0;
  std::pair<std::int64_t, long> queue_mtime_{-1, -1};
};

QueueRunner::QueueRunner(const spool::Layout& layout, const serve::Settings& settings)
    : engine_(std::make_unique<Engine>(layout, settings)) {}
QueueRunner::~QueueRunner() = default;
void QueueRunner::start() { engine_->start(); }
void QueueRunner::stop() { engine_->stop(); }
void QueueRunner::notify(const std::string& id) { engine_->notify(id); }
void QueueRunner::set_filter_services(spool::FilterServices services) {
  services.queued = [engine = engine_.get()](const std::string& id) { engine->notify(id); };
  engine_->set_filter_services(std::move(services));
}

} // namespace mh::outbound
