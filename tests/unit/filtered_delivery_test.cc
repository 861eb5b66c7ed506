// filtered_delivery_test.cc — carrying out each recipient's filter decision at local
// delivery (filtered_delivery.h) on a real temp spool, checking both what is reported and
// what is on disk afterwards (Maildir new/, queue .env and .msg bytes):
// no filters = plain deliver(); forwards (SRS sender, Delivered-To on top, our trace's
// Return-Path/Delivered-To left out, the rest byte for byte; keep / no keep); rule delete
// and bounce (DSN to the sender, none to <>); spam inert without rspamd and tagged by a
// one-shot fake rspamd; auto-replies (once per sender, none to list mail, forwards off);
// the loop stop; an unreadable filters.yaml or a failing queue deferring only that
// recipient. The trace prefix (ours) never counts as a loop.
#include "spool/filtered_delivery.h"

#include "spool/filters.h"
#include "spool/queue.h"
#include "spool/srs.h"
#include "store_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using mhtest::files_in;
using mhtest::read_text;
using mhtest::StoreSpool;
using mhtest::write_text;
using spool::Address;
using spool::FilterConfig;
using spool::FilteredOutcome;
using spool::FilterServices;
using Status = spool::DeliveryOutcome::Status;

namespace {

constexpr std::int64_t t0 = 1732765200;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

// The Received line as mh-serve writes it, folded once (a continuation line the forward
// must keep with its field).
const std::string received = "Received: from client.example.net (client.example.net [192.0.2.7])\n"
                             "\tby mx.test with ESMTP id 674815F0; Thu, 28 Nov 2024 03:40:00 +0000\n";

// mh-serve's trace prefix: Delivered-To only for a single recipient ("" = several).
std::string trace_for(const std::string& sender, const std::string& rcpt = "alice@example.org") {
  return "Return-Path: <" + sender + ">\n" + received + (rcpt.empty() ? "" : "Delivered-To: " + rcpt + "\n");
}

std::string message(const std::string& extra_header = "", const std::string& subject = "original",
                    const std::string& to = "Alice <alice@example.org>") {
  return "From: Sam <s@x.example>\nTo: " + to + "\nSubject: " + subject +
         "\nMessage-ID: <m1@x.example>\n" + extra_header + "\nHello,\nthe body, unchanged.\n";
}

// Streams trace + msg into a pending message in the first recipient's Maildir, as the
// server does, and delivers it with filters. The pending file is dropped on return.
std::vector<FilteredOutcome> deliver(const StoreSpool& s, const std::string& trace, const std::string& msg,
                                     const std::vector<Address>& rcpts, const std::string& sender,
                                     const FilterServices& services = {}, std::int64_t now = t0) {
  auto pending = spool::PendingMessage::begin(s.layout(), s.layout().maildir(rcpts.front()));
  pending.append(trace);
  pending.append(msg);
  return spool::deliver_filtered(s.layout(), pending, trace.size(), rcpts, sender, services, now);
}

// The contents of every file in the account's Maildir new/.
std::vector<std::string> stored(const StoreSpool& s, const Address& a) {
  std::vector<std::string> out;
  const fs::path dir = s.layout().maildir(a) / "new";
  for (const auto& name : files_in(dir)) out.push_back(read_text(dir / name));
  return out;
}

struct Entry {
  spool::QueueEnvelope env;
  std::string env_text;
  std::string msg;
};

std::vector<Entry> queue_entries(const StoreSpool& s) {
  std::vector<Entry> out;
  for (const auto& id : spool::list_queue(s.layout())) {
    const fs::path dir = s.layout().queue_dir();
    out.push_back({spool::load_queue_entry(s.layout(), id), read_text(dir / (id + ".env")),
                   read_text(dir / (id + ".msg"))});
  }
  return out;
}

spool::ForwardProfile forward_to(std::vector<std::string> to, bool keep, const std::string& cond = "all") {
  spool::ForwardProfile p;
  p.condition = spool::parse_condition(cond);
  p.destinations = std::move(to);
  p.keep = keep;
  return p;
}

spool::FilterRule rule(const std::string& cond, spool::FilterRule::Action action) {
  spool::FilterRule r;
  r.condition = spool::parse_condition(cond);
  r.action = action;
  return r;
}

void set_filters(const StoreSpool& s, const Address& a, const std::function<void(FilterConfig&)>& change) {
  spool::update_filters(s.layout(), a, change);
}

void autoreply_on(FilterConfig& c) {
  c.autoreply.enabled = true;
  c.autoreply.subject = "Away";
  c.autoreply.message = "I am away until Monday.\n";
  c.autoreply.days = 7;
}

// FilterServices whose `queued` records every announced id.
struct Services {
  std::vector<std::string> announced;
  FilterServices svc;
  Services() {
    svc.hostname = "mx.test";
    svc.queued = [this](const std::string& id) { announced.push_back(id); };
  }
};

// A one-shot fake rspamd: accepts one connection on 127.0.0.1, reads the request head
// and its Content-Length body, answers HTTP/1.1 200 with `json`, closes. wait() joins
// the thread; only then are head() and body() safe to read.
class OneShotHttp {
public:
  explicit OneShotHttp(std::string json) : json_(std::move(json)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 1) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotHttp() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes a poll() still waiting for a client (Linux)
    wait();
    ::close(fd_);
  }
  OneShotHttp(const OneShotHttp&) = delete;
  OneShotHttp& operator=(const OneShotHttp&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void wait() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& head() const { return head_; }
  const std::string& body() const { return body_; }

private:
  void serve() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0 || !(p.revents & POLLIN)) return;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    timeval tv{10, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    auto more = [&] {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<std::size_t>(n));
      return true;
    };
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos)
      if (!more()) return (void)::close(c);
    head_ = in.substr(0, end + 4);
    std::string lower = head_;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::size_t length = 0;
    if (const auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos)
      length = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
    while (in.size() - head_.size() < length)
      if (!more()) break;
    body_ = in.substr(head_.size());
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(json_.size()) + "\r\nConnection: close\r\n\r\n" + json_;
    for (std::size_t sent = 0; sent < reply.size();) {
      const ssize_t n = ::send(c, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    ::close(c);
  }

  std::string json_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string head_, body_;
};

} // namespace

TEST_CASE("filtered delivery: without any filters.yaml it is exactly deliver()", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  const Address carol = s.account("carol@example.org");
  const std::string trace = trace_for("s@x.example", "");
  const std::string msg = message();

  Services sv;
  const auto out = deliver(s, trace, msg, {alice, bob}, "s@x.example", sv.svc);
  // The reference: the same bytes through the plain path.
  auto pending = spool::PendingMessage::begin(s.layout(), s.layout().maildir(carol));
  pending.append(trace + msg);
  const auto plain = spool::deliver(s.layout(), pending, {carol});

  REQUIRE(out.size() == 2);
  REQUIRE(plain.size() == 1);
  for (std::size_t i = 0; i < 2; ++i) {
    const Address& who = i == 0 ? alice : bob;
    INFO(who.str());
    CHECK(out[i].delivery.recipient == who);
    CHECK(out[i].delivery.status == plain[0].status);
    CHECK(out[i].delivery.detail == "delivered to " + who.str() + " as " + out[i].delivery.uidl);
    CHECK(plain[0].detail == "delivered to carol@example.org as " + plain[0].uidl);
    CHECK(out[i].filter.empty());
    CHECK(out[i].stored);
    const auto names = files_in(s.layout().maildir(who) / "new");
    REQUIRE(names.size() == 1);
    CHECK(names[0].rfind(out[i].delivery.uidl + ",S=" + std::to_string(trace.size() + msg.size()) + ",W=", 0) == 0);
    CHECK(read_text(s.layout().maildir(who) / "new" / names[0]) == trace + msg);
    CHECK(read_text(s.layout().maildir(who) / "maildirsize") ==
          read_text(s.layout().maildir(carol) / "maildirsize"));
  }
  CHECK(out[0].delivery.uidl == out[1].delivery.uidl);  // one file, linked twice
  CHECK(stored(s, carol) == std::vector<std::string>{trace + msg});
  CHECK(spool::list_queue(s.layout()).empty());
  CHECK(sv.announced.empty());
}

TEST_CASE("filtered delivery: forward with a kept copy", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const std::vector<std::string> dests{"fwd@remote.example", "other@elsewhere.example"};
  set_filters(s, alice, [&](FilterConfig& c) { c.forwards.push_back(forward_to(dests, true)); });
  const std::string sender = "s@x.example";
  const std::string trace = trace_for(sender);
  const std::string msg = message();

  Services sv;
  const spool::SrsKey key = spool::SrsKey::from_bytes(std::string(32, 'k'));
  sv.svc.srs = key;
  sv.svc.srs_domain = "mx.test";
  const auto out = deliver(s, trace, msg, {alice}, sender, sv.svc);

  const auto q = queue_entries(s);
  REQUIRE(q.size() == 1);
  const Entry& e = q[0];
  // Envelope: SRS0 sender on our SRS domain, the profile's destinations, due now.
  CHECK(e.env.sender == key.forward_address(sender, "mx.test", t0));
  CHECK(e.env.sender.rfind("SRS0=", 0) == 0);
  CHECK(contains(e.env.sender, "=x.example=s@mx.test"));
  CHECK(e.env.recipients == dests);
  CHECK(e.env.created == t0);
  CHECK(e.env.next_attempt == t0);
  CHECK(e.env.attempts == 0);
  CHECK(e.env.auth.empty());
  // Message: Delivered-To on top, our Return-Path and Delivered-To gone, the rest exact.
  CHECK(e.msg.rfind("Delivered-To: alice@example.org\n", 0) == 0);
  CHECK_FALSE(contains(e.msg, "Return-Path:"));
  CHECK(occurrences(e.msg, "Delivered-To: alice@example.org") == 1);
  CHECK(e.msg == "Delivered-To: alice@example.org\n" + received + msg);

  CHECK(stored(s, alice) == std::vector<std::string>{trace + msg});
  CHECK(sv.announced == std::vector<std::string>{e.env.id});

  REQUIRE(out.size() == 1);
  CHECK(out[0].delivery.recipient == alice);
  CHECK(out[0].delivery.status == Status::delivered);
  CHECK(out[0].stored);
  CHECK(out[0].delivery.detail == "delivered to alice@example.org as " + out[0].delivery.uidl);
  CHECK(contains(out[0].filter, "forward queued as " + e.env.id));
  CHECK(contains(out[0].filter, "forward profile 1 (all): to fwd@remote.example, other@elsewhere.example"));
  CHECK(files_in(s.layout().queue_dir() / "tmp").empty());
}

TEST_CASE("filtered delivery: forward without a copy stores nothing", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, false)); });
  const std::string trace = trace_for("s@x.example");
  const std::string msg = message();

  Services sv;
  sv.svc.srs = spool::SrsKey::from_bytes(std::string(32, 'k'));
  sv.svc.srs_domain = "mx.test";
  const auto out = deliver(s, trace, msg, {alice}, "s@x.example", sv.svc);

  const auto q = queue_entries(s);
  REQUIRE(q.size() == 1);
  CHECK(q[0].env.recipients == std::vector<std::string>{"fwd@remote.example"});
  CHECK(q[0].msg == "Delivered-To: alice@example.org\n" + received + msg);
  CHECK(stored(s, alice).empty());
  CHECK(files_in(s.layout().maildir(alice) / "tmp").empty());  // the pending file went with it
  CHECK(spool::account_usage(s.layout(), alice) == spool::Usage{0, 0});
  REQUIRE(out.size() == 1);
  CHECK(out[0].delivery.status == Status::delivered);
  CHECK_FALSE(out[0].stored);
  CHECK(out[0].delivery.uidl == q[0].env.id);
  CHECK(out[0].delivery.detail == "forwarded without a local copy, queued as " + q[0].env.id);
  CHECK(contains(out[0].filter, "no local copy"));
  CHECK(contains(out[0].filter, "forward queued as " + q[0].env.id));
  CHECK(sv.announced == std::vector<std::string>{q[0].env.id});
}

TEST_CASE("filtered delivery: without an SRS key a forward keeps the sender; <> stays <>", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, false)); });
  const std::string msg = message();

  SECTION("no key: the original sender") {
    FilterServices svc;  // srs empty
    const auto out = deliver(s, trace_for("s@x.example"), msg, {alice}, "s@x.example", svc);
    const auto q = queue_entries(s);
    REQUIRE(q.size() == 1);
    CHECK(q[0].env.sender == "s@x.example");
    CHECK(contains(q[0].env_text, "\nsender: s@x.example\n"));
    CHECK(out.at(0).delivery.status == Status::delivered);
  }
  SECTION("no key, null sender") {
    FilterServices svc;
    const auto out = deliver(s, trace_for(""), msg, {alice}, "", svc);
    const auto q = queue_entries(s);
    REQUIRE(q.size() == 1);
    CHECK(q[0].env.sender.empty());
    CHECK(q[0].msg == "Delivered-To: alice@example.org\n" + received + msg);
    CHECK(out.at(0).delivery.status == Status::delivered);
  }
  SECTION("with a key, the null sender is not rewritten") {
    FilterServices svc;
    svc.srs = spool::SrsKey::from_bytes(std::string(32, 'k'));
    svc.srs_domain = "mx.test";
    const auto out = deliver(s, trace_for(""), msg, {alice}, "", svc);
    const auto q = queue_entries(s);
    REQUIRE(q.size() == 1);
    CHECK(q[0].env.sender.empty());
    CHECK(out.at(0).delivery.status == Status::delivered);
  }
}

TEST_CASE("filtered delivery: rule delete and rule bounce", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const std::string trace = trace_for("s@x.example");
  Services sv;

  SECTION("delete: nothing stored, nothing queued") {
    set_filters(s, alice, [](FilterConfig& c) {
      c.rules.push_back(rule("subject contains lottery", spool::FilterRule::Action::discard));
    });
    const auto out = deliver(s, trace, message("", "You won the LOTTERY"), {alice}, "s@x.example", sv.svc);
    REQUIRE(out.size() == 1);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK_FALSE(out[0].stored);
    CHECK(out[0].delivery.detail == "discarded by filter");
    CHECK(contains(out[0].filter, "rule 1 (subject contains lottery): delete"));
    CHECK(contains(out[0].filter, "discarded"));
    CHECK(stored(s, alice).empty());
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(sv.announced.empty());

    // A message the rule does not match is delivered as it is.
    const auto kept = deliver(s, trace, message(), {alice}, "s@x.example", sv.svc);
    CHECK(kept.at(0).delivery.status == Status::delivered);
    CHECK(kept.at(0).stored);
    CHECK(stored(s, alice) == std::vector<std::string>{trace + message()});
  }

  SECTION("bounce: a DSN with the null sender to the sender") {
    set_filters(s, alice, [](FilterConfig& c) {
      c.rules.push_back(rule("subject contains lottery", spool::FilterRule::Action::bounce));
    });
    const auto out = deliver(s, trace, message("", "lottery"), {alice}, "s@x.example", sv.svc);
    const auto q = queue_entries(s);
    REQUIRE(q.size() == 1);
    CHECK(q[0].env.sender.empty());
    CHECK(q[0].env.recipients == std::vector<std::string>{"s@x.example"});
    CHECK(contains(q[0].msg, "5.7.1"));
    CHECK(contains(q[0].msg, "alice@example.org"));
    CHECK(contains(q[0].msg, "Message refused by the recipient's mail filter"));
    REQUIRE(out.size() == 1);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK_FALSE(out[0].stored);
    CHECK(out[0].delivery.uidl == q[0].env.id);
    CHECK(out[0].delivery.detail == "refused by filter, DSN " + q[0].env.id);
    CHECK(contains(out[0].filter, "rule 1 (subject contains lottery): bounce"));
    CHECK(contains(out[0].filter, "DSN queued as " + q[0].env.id));
    CHECK(stored(s, alice).empty());
    CHECK(sv.announced == std::vector<std::string>{q[0].env.id});
  }

  SECTION("bounce of a null-sender message: no DSN") {
    set_filters(s, alice, [](FilterConfig& c) {
      c.rules.push_back(rule("subject contains lottery", spool::FilterRule::Action::bounce));
    });
    const auto out = deliver(s, trace_for(""), message("", "lottery"), {alice}, "", sv.svc);
    REQUIRE(out.size() == 1);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK_FALSE(out[0].stored);
    CHECK(contains(out[0].filter, "no DSN"));
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(stored(s, alice).empty());
    CHECK(sv.announced.empty());
  }
}

TEST_CASE("filtered delivery: spam filter without rspamd is inert", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.spam.enabled = true; });
  const std::string trace = trace_for("s@x.example");
  const std::string msg = message();
  FilterServices svc;  // rspamd_url ""
  const auto out = deliver(s, trace, msg, {alice}, "s@x.example", svc);
  REQUIRE(out.size() == 1);
  CHECK(out[0].delivery.status == Status::delivered);
  CHECK(out[0].stored);
  CHECK(contains(out[0].filter, "spam filter inert"));
  CHECK(stored(s, alice) == std::vector<std::string>{trace + msg});
  CHECK(spool::list_queue(s.layout()).empty());
}

TEST_CASE("filtered delivery: rspamd unreachable delivers untagged", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.spam.enabled = true; });
  // A port nobody listens on: bind, note it, close.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  FilterServices svc;
  svc.rspamd_url = "http://127.0.0.1:" + std::to_string(port);
  svc.spam_timeout = std::chrono::milliseconds(5000);
  const std::string trace = trace_for("s@x.example");
  const auto out = deliver(s, trace, message(), {alice}, "s@x.example", svc);
  REQUIRE(out.size() == 1);
  CHECK(out[0].delivery.status == Status::delivered);
  CHECK(out[0].stored);
  CHECK(contains(out[0].filter, "spam check failed, delivered untagged"));
  CHECK(stored(s, alice) == std::vector<std::string>{trace + message()});
}

TEST_CASE("filtered delivery: a spam verdict tags the stored copy", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  OneShotHttp rspamd(R"({"action":"reject","score":15,"required_score":15})");
  FilterServices svc;
  svc.rspamd_url = rspamd.url();
  svc.spam_timeout = std::chrono::milliseconds(10000);
  svc.hostname = "mx.test";
  const std::string trace = trace_for("s@x.example", "");
  const std::string head_before = "From: Sam <s@x.example>\nTo: Alice <alice@example.org>\n";
  const std::string head_after = "Message-ID: <m1@x.example>\n";
  const std::string body = "\nHello,\nthe body, unchanged.\nSubject: not a header\n";
  const std::string msg = head_before + "Subject: original\n" + head_after + body;

  SECTION("tag: Subject prefix and X-Spam-Flag; a recipient without the filter gets the original") {
    set_filters(s, alice, [](FilterConfig& c) { c.spam.enabled = true; });
    const auto out = deliver(s, trace, msg, {alice, bob}, "s@x.example", svc);
    rspamd.wait();
    CHECK(rspamd.head().rfind("POST /checkv2 HTTP/1.1\r\n", 0) == 0);
    CHECK(rspamd.body() == trace + msg);  // rspamd sees the whole message, our trace too

    REQUIRE(out.size() == 2);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK(out[0].stored);
    CHECK(contains(out[0].filter, "spam check: score 15.00/15.00 action reject"));
    CHECK(contains(out[0].filter, "spam: tagged \"[SPAM]\""));
    CHECK(out[1].delivery.status == Status::delivered);
    CHECK(out[1].filter.empty());

    const auto copies = stored(s, alice);
    REQUIRE(copies.size() == 1);
    const std::string& tagged = copies[0];
    CHECK(tagged.rfind(trace, 0) == 0);  // our trace stays first
    CHECK(contains(tagged, "X-Spam-Flag: YES\n"));
    CHECK(contains(tagged, "Subject: [SPAM] original\n"));
    CHECK(tagged.size() >= body.size());
    CHECK(tagged.compare(tagged.size() - body.size(), body.size(), body) == 0);
    CHECK(tagged == trace + "X-Spam-Flag: YES\nX-Spam-Status: Yes, score 15.00/15.00 action reject\n" + head_before +
                        "Subject: [SPAM] original\n" + head_after + body);
    const auto names = files_in(s.layout().maildir(alice) / "new");
    REQUIRE(names.size() == 1);
    CHECK(names[0].rfind(out[0].delivery.uidl + ",S=" + std::to_string(tagged.size()) + ",", 0) == 0);
    CHECK(spool::account_usage(s.layout(), alice) == spool::Usage{tagged.size(), 1});
    CHECK(files_in(s.layout().maildir(alice) / "tmp").empty());

    CHECK(stored(s, bob) == std::vector<std::string>{trace + msg});
    CHECK(spool::list_queue(s.layout()).empty());
  }

  SECTION("delete: nothing stored") {
    set_filters(s, alice, [](FilterConfig& c) {
      c.spam.enabled = true;
      c.spam.action = spool::SpamFilter::Action::discard;
    });
    const auto out = deliver(s, trace, msg, {alice}, "s@x.example", svc);
    rspamd.wait();
    REQUIRE(out.size() == 1);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK_FALSE(out[0].stored);
    CHECK(contains(out[0].filter, "spam: delete"));
    CHECK(stored(s, alice).empty());
    CHECK(spool::list_queue(s.layout()).empty());
  }
}

TEST_CASE("filtered delivery: auto-reply", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  Services sv;

  SECTION("answered once per sender, never list mail") {
    set_filters(s, alice, autoreply_on);
    const std::string trace = trace_for("bob@example.net");
    const auto out = deliver(s, trace, message(), {alice}, "bob@example.net", sv.svc);
    auto q = queue_entries(s);
    REQUIRE(q.size() == 1);
    CHECK(q[0].env.sender.empty());
    CHECK(q[0].env.recipients == std::vector<std::string>{"bob@example.net"});
    CHECK(contains(q[0].msg, "Auto-Submitted: auto-replied"));
    CHECK(contains(q[0].msg, "In-Reply-To: <m1@x.example>"));
    CHECK(contains(q[0].msg, "Subject: Away"));
    REQUIRE(out.size() == 1);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK(out[0].stored);
    CHECK(contains(out[0].filter, "auto-reply queued as " + q[0].env.id));
    CHECK(sv.announced == std::vector<std::string>{q[0].env.id});
    CHECK(stored(s, alice) == std::vector<std::string>{trace + message()});

    // The same sender again (any case): stored, not answered.
    const auto again = deliver(s, trace_for("Bob@Example.NET"), message(), {alice}, "Bob@Example.NET", sv.svc);
    CHECK(again.at(0).delivery.status == Status::delivered);
    CHECK(contains(again.at(0).filter, "auto-reply not sent: answered within 7 days"));
    CHECK(spool::list_queue(s.layout()).size() == 1);
    CHECK(stored(s, alice).size() == 2);

    // List mail from someone new: stored, not answered.
    const auto bulk =
        deliver(s, trace_for("carol@example.net"), message("Precedence: bulk\n"), {alice}, "carol@example.net", sv.svc);
    CHECK(bulk.at(0).delivery.status == Status::delivered);
    CHECK(bulk.at(0).stored);
    CHECK(contains(bulk.at(0).filter, "auto-reply not sent: list mail"));
    CHECK(spool::list_queue(s.layout()).size() == 1);
    CHECK(stored(s, alice).size() == 3);
    CHECK(sv.announced.size() == 1);
  }

  SECTION("no reply to the null sender") {
    set_filters(s, alice, autoreply_on);
    const auto out = deliver(s, trace_for(""), message(), {alice}, "", sv.svc);
    CHECK(out.at(0).delivery.status == Status::delivered);
    CHECK(contains(out.at(0).filter, "auto-reply not sent: null sender"));
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(stored(s, alice).size() == 1);
  }

  SECTION("with auto-reply on, forward profiles do not run") {
    set_filters(s, alice, [](FilterConfig& c) {
      autoreply_on(c);
      c.forwards.push_back(forward_to({"fwd@remote.example"}, false));
    });
    const std::string trace = trace_for("dave@example.net");
    const auto out = deliver(s, trace, message(), {alice}, "dave@example.net", sv.svc);
    const auto q = queue_entries(s);
    REQUIRE(q.size() == 1);  // the reply, nothing for fwd@remote.example
    CHECK(q[0].env.sender.empty());
    CHECK(q[0].env.recipients == std::vector<std::string>{"dave@example.net"});
    CHECK(out.at(0).stored);
    CHECK_FALSE(contains(out.at(0).filter, "forward"));
    CHECK(stored(s, alice) == std::vector<std::string>{trace + message()});
  }
}

TEST_CASE("filtered delivery: Delivered-To in the message stops a forward loop", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  Services sv;
  const std::string trace = trace_for("s@x.example");
  // Below our trace: the message already passed through alice once.
  const std::string msg = "Delivered-To: alice@example.org\n" + message();

  SECTION("forward all, no copy: kept instead, nothing queued") {
    set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, false)); });
    const auto out = deliver(s, trace, msg, {alice}, "s@x.example", sv.svc);
    REQUIRE(out.size() == 1);
    CHECK(out[0].delivery.status == Status::delivered);
    CHECK(out[0].stored);
    CHECK(contains(out[0].filter, "looping"));
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(sv.announced.empty());
    CHECK(stored(s, alice) == std::vector<std::string>{trace + msg});
  }
  SECTION("auto-reply: stored, not answered") {
    set_filters(s, alice, autoreply_on);
    const auto out = deliver(s, trace, msg, {alice}, "s@x.example", sv.svc);
    CHECK(out.at(0).stored);
    CHECK(contains(out.at(0).filter, "looping"));
    CHECK(contains(out.at(0).filter, "auto-reply not sent: loop"));
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(stored(s, alice).size() == 1);
  }
}

TEST_CASE("filtered delivery: a broken filters.yaml defers only its recipient", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  write_text(s.layout().filters_config(alice), "bogus: 1\n");
  const std::string trace = trace_for("s@x.example", "");
  Services sv;
  const auto out = deliver(s, trace, message(), {alice, bob}, "s@x.example", sv.svc);
  REQUIRE(out.size() == 2);
  CHECK(out[0].delivery.recipient == alice);
  CHECK(out[0].delivery.status == Status::failed_temporary);
  CHECK(contains(out[0].delivery.detail, "filters.yaml"));
  CHECK(contains(out[0].filter, "filters unreadable"));
  CHECK(out[1].delivery.recipient == bob);
  CHECK(out[1].delivery.status == Status::delivered);
  CHECK(out[1].filter.empty());
  CHECK(stored(s, alice).empty());
  CHECK(stored(s, bob) == std::vector<std::string>{trace + message()});
  CHECK(spool::list_queue(s.layout()).empty());
}

TEST_CASE("filtered delivery: one recipient forwards, the other has no filters", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, true)); });
  const std::string trace = trace_for("s@x.example", "");
  Services sv;
  const auto out = deliver(s, trace, message(), {alice, bob}, "s@x.example", sv.svc);
  REQUIRE(out.size() == 2);
  for (const auto& o : out) {
    CHECK(o.delivery.status == Status::delivered);
    CHECK(o.stored);
  }
  CHECK(contains(out[0].filter, "forward queued as"));
  CHECK(out[1].filter.empty());
  CHECK(out[0].delivery.uidl == out[1].delivery.uidl);  // stored once, linked to both
  CHECK(stored(s, alice) == std::vector<std::string>{trace + message()});
  CHECK(stored(s, bob) == std::vector<std::string>{trace + message()});
  const auto q = queue_entries(s);
  REQUIRE(q.size() == 1);
  CHECK(q[0].env.recipients == std::vector<std::string>{"fwd@remote.example"});
  CHECK(q[0].env.sender == "s@x.example");
  CHECK(q[0].msg == "Delivered-To: alice@example.org\n" + received + message());
}

TEST_CASE("filtered delivery: the outbound runner's trace (Return-Path only)", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, false)); });
  const std::string trace = "Return-Path: <s@x.example>\n";
  const auto out = deliver(s, trace, message(), {alice}, "s@x.example");
  CHECK(out.at(0).delivery.status == Status::delivered);
  const auto q = queue_entries(s);
  REQUIRE(q.size() == 1);
  CHECK(q[0].msg == "Delivered-To: alice@example.org\n" + message());
}

TEST_CASE("filtered delivery: a queue that cannot be written defers only the forward", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  const Address carol = s.account("carol@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, true)); });
  set_filters(s, carol, autoreply_on);
  // Not an unwritable directory (root writes anyway): a regular file where queue/ should be.
  fs::remove_all(s.layout().queue_dir());
  write_text(s.layout().queue_dir(), "not a directory\n");

  const std::string trace = trace_for("s@x.example", "");
  Services sv;
  const auto out = deliver(s, trace, message("Cc: carol@example.org\n"), {alice, bob, carol}, "s@x.example", sv.svc);
  REQUIRE(out.size() == 3);
  CHECK(out[0].delivery.recipient == alice);
  CHECK(out[0].delivery.status == Status::failed_temporary);
  CHECK(out[0].delivery.detail.rfind("queueing the forward: ", 0) == 0);
  CHECK(contains(out[0].filter, "queueing the forward failed"));
  // Deferred means not stored either: the client's retry must not make a second copy.
  CHECK(stored(s, alice).empty());

  CHECK(out[1].delivery.status == Status::delivered);
  CHECK(stored(s, bob) == std::vector<std::string>{trace + message("Cc: carol@example.org\n")});

  // An auto-reply that cannot be queued is only logged: the message is stored.
  CHECK(out[2].delivery.status == Status::delivered);
  CHECK(out[2].stored);
  CHECK(contains(out[2].filter, "auto-reply failed"));
  CHECK(stored(s, carol).size() == 1);
  CHECK(sv.announced.empty());
  CHECK(fs::is_regular_file(s.layout().queue_dir()));
}

TEST_CASE("filtered delivery: a bounce DSN that cannot be queued defers the recipient", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  set_filters(s, alice, [](FilterConfig& c) {
    c.rules.push_back(rule("subject contains lottery", spool::FilterRule::Action::bounce));
  });
  fs::remove_all(s.layout().queue_dir());
  write_text(s.layout().queue_dir(), "not a directory\n");
  const auto out = deliver(s, trace_for("s@x.example"), message("", "lottery"), {alice}, "s@x.example");
  REQUIRE(out.size() == 1);
  CHECK(out[0].delivery.status == Status::failed_temporary);
  CHECK(out[0].delivery.detail.rfind("queueing the DSN: ", 0) == 0);
  CHECK(contains(out[0].filter, "queueing the DSN failed"));
  CHECK(stored(s, alice).empty());
}

TEST_CASE("filtered delivery: one outcome per distinct recipient with filters", "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, true)); });
  const auto out = deliver(s, trace_for("s@x.example", ""), message(), {alice, bob, alice}, "s@x.example");
  REQUIRE(out.size() == 2);
  CHECK(out[0].delivery.recipient == alice);
  CHECK(out[1].delivery.recipient == bob);
  CHECK(spool::list_queue(s.layout()).size() == 1);  // one forward, not two
  CHECK(stored(s, alice).size() == 1);
}

// With no filters for anyone the plain path must still give one outcome per distinct
// recipient (the outbound runner passes queued recipients through as they are).
TEST_CASE("filtered delivery: one outcome per distinct recipient without filters too",
          "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org");
  const Address bob = s.account("bob@example.org");
  const auto out = deliver(s, trace_for("s@x.example"), message(), {alice, bob, alice}, "s@x.example");
  CHECK(out.size() == 2);  // filtered_delivery.h: "One outcome per distinct recipient, in order"
  CHECK(stored(s, alice).size() == 1);
}

// Forward with keep, and the kept copy cannot be stored (mailbox over quota): the
// outcome and the queue must agree. The forward stands and counts as the delivery (no
// 552 DSN for mail that was forwarded); a temporary store failure withdraws it instead.
TEST_CASE("filtered delivery: a kept copy that does not fit leaves no forward behind",
          "[filtered_delivery]") {
  StoreSpool s;
  const Address alice = s.account("alice@example.org", 100);  // smaller than the message
  set_filters(s, alice, [](FilterConfig& c) { c.forwards.push_back(forward_to({"fwd@remote.example"}, true)); });
  Services sv;
  const auto out = deliver(s, trace_for("s@x.example"), message(), {alice}, "s@x.example", sv.svc);
  REQUIRE(out.size() == 1);
  CHECK(stored(s, alice).empty());
  INFO("status " << static_cast<int>(out[0].delivery.status) << ", filter: " << out[0].filter);
  CHECK(out[0].delivery.status == Status::delivered);
  CHECK_FALSE(out[0].stored);
  if (out[0].delivery.status == Status::delivered) {
    CHECK(spool::list_queue(s.layout()).size() == 1);
    CHECK(sv.announced.size() == 1);
  } else {
    CHECK(spool::list_queue(s.layout()).empty());
    CHECK(sv.announced.empty());
  }
}
