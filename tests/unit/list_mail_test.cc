// list_mail_test.cc — the list processor (list_mail.h) on a real temp spool, the way the
// queue runner drives it: a queue entry to the list is claimed and handed over, and the
// test checks what is on disk afterwards — archive, member Maildirs (one inode), remote
// queue entries, refusal mails, pending items — including a second run of the same entry
// (the runner's retry after a crash), which must not deliver again or take a new number.
#include "spool/list_mail.h"

#include "spool/list_message.h"
#include "spool/mlist.h"
#include "spool/queue.h"
#include "store_fixture.h"

#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using mhtest::files_in;
using mhtest::StoreSpool;
using spool::Address;
using spool::ListMailResult;
using spool::ListTarget;

namespace {

constexpr std::int64_t t0 = 1780000000;

struct ListSpool {
  StoreSpool store;
  Address alice = store.account("alice@example.org");
  Address bob = store.account("bob@example.org");
  Address list = Address::parse("ml@example.org");

  explicit ListSpool(spool::ListPolicy policy = spool::ListPolicy::anyone) {
    spool::ListConfig c;
    c.policy = policy;
    spool::create_list(store.layout(), list, c, false);
    spool::add_members(store.layout(), list, {"alice@example.org", "bob@example.org", "x@remote.test"});
  }
  const spool::Layout& layout() const { return store.layout(); }

  // Queues `text` to `to` from `sender` and runs the list processor on it, as the runner does.
  ListMailResult handle(const std::string& to, const std::string& sender, const std::string& text,
                        std::int64_t now = t0, std::string* queue_id = nullptr) {
    spool::QueueEnvelope env;
    env.sender = sender;
    env.recipients = {to};
    env.created = now;
    const std::string id = spool::enqueue_message(layout(), env, text);
    if (queue_id) *queue_id = id;
    return run(id, now);
  }

  ListMailResult run(const std::string& id, std::int64_t now = t0) {
    auto claim = spool::QueueClaim::try_claim(layout(), id);
    REQUIRE(claim);
    const std::string to = claim->envelope().recipients.at(0);
    const auto at = to.rfind('@');
    auto target = spool::find_list_target(layout(), to.substr(0, at), spool::Domain::parse(to.substr(at + 1)), true);
    REQUIRE(target);
    spool::QueuedMail mail{id, claim->message_fd(), claim->message_size(), claim->message_path(), claim->envelope().sender};
    spool::ListServices services;
    services.hostname = "mx.test";
    ListMailResult r = spool::handle_list_mail(layout(), *target, mail, services, now);
    if (r.fate == ListMailResult::Fate::done) claim->remove();
    return r;
  }

  std::vector<spool::QueueEnvelope> queued() const {
    std::vector<spool::QueueEnvelope> out;
    for (const auto& id : spool::list_queue(layout())) out.push_back(spool::load_queue_entry(layout(), id));
    return out;
  }
  std::vector<std::string> new_mail(const Address& a) const { return files_in(layout().maildir(a) / "new"); }
};

ino_t inode(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}

std::string post(const std::string& subject = "hello", const std::string& body = "first line\nsecond line\n",
                 const std::string& from = "poster@remote.test") {
  return "From: Poster <" + from + ">\nTo: ml@example.org\nSubject: " + subject + "\nMessage-ID: <p1@remote.test>\n\n" + body;
}

} // namespace

TEST_CASE("list targets: the list, its control addresses, +approved- only inside", "[list_mail]") {
  ListSpool s;
  const spool::Domain d = spool::Domain::parse("example.org");
  using K = ListTarget::Kind;
  CHECK(spool::find_list_target(s.layout(), "ML", d)->kind == K::post);
  CHECK(spool::find_list_target(s.layout(), "ml+bounces", d)->kind == K::bounces);
  CHECK(spool::find_list_target(s.layout(), "ml+unsubscribe", d)->kind == K::unsubscribe);
  auto confirm = spool::find_list_target(s.layout(), "ml+confirm-0123456789abcdef0123", d);
  REQUIRE(confirm);
  CHECK(confirm->kind == K::confirm);
  CHECK(confirm->token == "0123456789abcdef0123");
  CHECK(confirm->str() == "ml+confirm-0123456789abcdef0123@example.org");
  CHECK_FALSE(spool::find_list_target(s.layout(), "ml+approved-0123456789abcdef0123", d));
  CHECK(spool::find_list_target(s.layout(), "ml+approved-0123456789abcdef0123", d, true)->kind == K::approved);
  CHECK_FALSE(spool::find_list_target(s.layout(), "ml+confirm-xyz", d));
  CHECK_FALSE(spool::find_list_target(s.layout(), "ml+other", d));
  CHECK_FALSE(spool::find_list_target(s.layout(), "alice", d));
  CHECK_FALSE(spool::find_list_target(s.layout(), "../ml", d));
}

TEST_CASE("a post is archived once and hard-linked into every local member's Maildir", "[list_mail]") {
  ListSpool s;
  const ListMailResult r = s.handle("ml@example.org", "poster@remote.test", post());
  INFO(r.detail);
  REQUIRE(r.fate == ListMailResult::Fate::done);
  CHECK(r.detail.find("distributed as ml@example.org #1") != std::string::npos);

  const fs::path archived = s.layout().list_archive(s.list) / "new" / "00000001";
  REQUIRE(fs::exists(archived));
  REQUIRE(s.new_mail(s.alice).size() == 1);
  REQUIRE(s.new_mail(s.bob).size() == 1);
  CHECK(inode(s.layout().maildir(s.alice) / "new" / s.new_mail(s.alice)[0]) == inode(archived));
  CHECK(inode(s.layout().maildir(s.bob) / "new" / s.new_mail(s.bob)[0]) == inode(archived));
  CHECK(spool::last_sequence(s.layout(), s.list) == 1);

  const std::string text = mhtest::read_text(archived);
  CHECK(text.rfind("Return-Path: <ml+bounces@example.org>\n", 0) == 0);
  CHECK(text.find("Subject: [ml:00001] hello\n") != std::string::npos);
  CHECK(text.find("X-Mail-Count: 1\n") != std::string::npos);
  CHECK(text.find("List-Id: <ml.example.org>\n") != std::string::npos);
  CHECK(text.find("\n\nfirst line\nsecond line\n") != std::string::npos);

  const auto q = s.queued();
  REQUIRE(q.size() == 1);
  CHECK(q[0].sender == "ml+bounces@example.org");
  CHECK(q[0].recipients == std::vector<std::string>{"x@remote.test"});
  CHECK(spool::list_archive_usage(s.layout(), s.list).messages == 1);
}

TEST_CASE("the same entry handled again (a crash before its removal) delivers nothing twice", "[list_mail]") {
  ListSpool s;
  spool::QueueEnvelope env;
  env.sender = "poster@remote.test";
  env.recipients = {"ml@example.org"};
  const std::string id = spool::enqueue_message(s.layout(), env, post());
  {
    auto claim = spool::QueueClaim::try_claim(s.layout(), id);
    REQUIRE(claim);
    auto target = spool::find_list_target(s.layout(), "ml", spool::Domain::parse("example.org"));
    spool::QueuedMail mail{id, claim->message_fd(), claim->message_size(), claim->message_path(), env.sender};
    spool::ListServices services;
    REQUIRE(spool::handle_list_mail(s.layout(), *target, mail, services, t0).fate == ListMailResult::Fate::done);
    // Not removed: the runner died here. The retry runs the same distribution again.
  }
  const ListMailResult again = s.run(id, t0 + 60);
  INFO(again.detail);
  REQUIRE(again.fate == ListMailResult::Fate::done);
  CHECK(again.detail.find("#1:") != std::string::npos);
  CHECK(s.new_mail(s.alice).size() == 1);
  CHECK(s.new_mail(s.bob).size() == 1);
  CHECK(spool::last_sequence(s.layout(), s.list) == 1);
  CHECK(s.queued().size() == 1);  // the remote chunk, not a second one
  CHECK(spool::list_archive_usage(s.layout(), s.list).messages == 1);

  // The next post takes the next number; the finished job record is swept.
  REQUIRE(s.handle("ml@example.org", "poster@remote.test", post("second"), t0 + 120).fate == ListMailResult::Fate::done);
  CHECK(spool::last_sequence(s.layout(), s.list) == 2);
  CHECK(s.new_mail(s.alice).size() == 2);
  // The finished records are swept when the list next gets mail.
  CHECK(files_in(s.layout().list_jobs(s.list)).size() == 1);
  spool::sweep_list(s.layout(), s.list, t0 + 180);
  CHECK(files_in(s.layout().list_jobs(s.list)).empty());
}

TEST_CASE("refused posts get an error mail from the null sender; system posters get none", "[list_mail]") {
  ListSpool s(spool::ListPolicy::members);
  SECTION("one line body") {
    const auto r = s.handle("ml@example.org", "alice@example.org", post("x", "subscribe\n", "alice@example.org"));
    CHECK(r.detail.find("refused (one line mail body)") != std::string::npos);
    const auto ids = spool::list_queue(s.layout());
    REQUIRE(ids.size() == 1);  // the error mail, queued for the runner
    CHECK(spool::load_queue_entry(s.layout(), ids[0]).recipients == std::vector<std::string>{"alice@example.org"});
    const std::string text = mhtest::read_text(s.layout().queue_dir() / (ids[0] + ".msg"));
    CHECK(text.find("one line mail body") != std::string::npos);
    CHECK(s.new_mail(s.alice).empty());
    CHECK(spool::last_sequence(s.layout(), s.list) == 0);
  }
  SECTION("not a member") {
    const auto r = s.handle("ml@example.org", "stranger@remote.test", post("x", "a\nb\n", "stranger@remote.test"));
    CHECK(r.detail.find("refused (you are not a member") != std::string::npos);
    const auto q = s.queued();
    REQUIRE(q.size() == 1);
    CHECK(q[0].sender.empty());
    CHECK(q[0].recipients == std::vector<std::string>{"stranger@remote.test"});
  }
  SECTION("system poster and null sender: dropped, nothing queued") {
    CHECK(s.handle("ml@example.org", "MAILER-DAEMON@remote.test", post()).detail.find("dropped") == 0);
    CHECK(s.handle("ml@example.org", "", post()).detail.find("dropped") == 0);
    CHECK(s.handle("ml@example.org", "x@remote.test", post("x", "a\nb\n", "owner-help@remote.test")).detail.find("dropped") == 0);
    CHECK(s.queued().empty());
  }
  SECTION("too large") {
    spool::update_list(s.layout(), s.list, [](spool::ListConfig& c) { c.max_size = 1024; });
    const auto r = s.handle("ml@example.org", "alice@example.org", post("big", std::string(2000, 'a') + "\nb\n", "alice@example.org"));
    CHECK(r.detail.find("refused (Your mail exceeds the size this mailing list allows)") != std::string::npos);
  }
  SECTION("mail bomb on the third post within five minutes") {
    for (int i = 0; i < 2; ++i)
      CHECK(s.handle("ml@example.org", "alice@example.org", post("p", "a\nb\n", "alice@example.org"), t0 + i)
                .detail.find("distributed") == 0);
    CHECK(s.handle("ml@example.org", "alice@example.org", post("p", "a\nb\n", "alice@example.org"), t0 + 2)
              .detail.find("refused (mail bomb)") == 0);
    CHECK(s.handle("ml@example.org", "alice@example.org", post("p", "a\nb\n", "alice@example.org"), t0 + 3000)
              .detail.find("refused (mail bomb)") == 0);
    CHECK(s.handle("ml@example.org", "alice@example.org", post("p", "a\nb\n", "alice@example.org"), t0 + 3700)
              .detail.find("distributed") == 0);
  }
}

TEST_CASE("moderation: one confirmation approves once; a second is ignored", "[list_mail]") {
  ListSpool s(spool::ListPolicy::moderators);
  spool::add_moderators(s.layout(), s.list, {"mod@remote.test"});
  const auto held = s.handle("ml@example.org", "poster@remote.test", post());
  INFO(held.detail);
  REQUIRE(held.detail.find("held for moderation as ") == 0);
  const auto pending = spool::list_pending(s.layout(), s.list);
  REQUIRE(pending.size() == 1);
  const std::string token = pending[0].id;
  auto q = s.queued();
  REQUIRE(q.size() == 1);
  CHECK(q[0].recipients == std::vector<std::string>{"mod@remote.test"});
  CHECK(q[0].sender.empty());
  for (const auto& id : spool::list_queue(s.layout())) spool::QueueClaim::try_claim(s.layout(), id)->remove();

  // A vacation responder or a bounce reaching the address approves nothing.
  const std::string vacation = "From: mod@remote.test\nAuto-Submitted: auto-replied\nSubject: away\n\naway\n";
  CHECK(s.handle("ml+confirm-" + token + "@example.org", "mod@remote.test", vacation).detail ==
        "confirmation ignored: automatic mail (Auto-Submitted: auto-replied)");
  CHECK(s.handle("ml+confirm-" + token + "@example.org", "", vacation).detail.find("confirmation ignored: from a system or null sender") == 0);
  CHECK(spool::list_pending(s.layout(), s.list).size() == 1);
  CHECK(s.queued().empty());

  const std::string reply = "From: mod@remote.test\nSubject: Re: approval\nContent-Type: text/html\n\n<p>ok</p>\n";
  const auto approved = s.handle("ml+confirm-" + token + "@example.org", "mod@remote.test", reply);
  INFO(approved.detail);
  CHECK(approved.detail.find("approved post " + token) == 0);
  CHECK(spool::list_pending(s.layout(), s.list).empty());
  q = s.queued();
  REQUIRE(q.size() == 1);
  CHECK(q[0].recipients == std::vector<std::string>{"ml+approved-" + token + "@example.org"});
  CHECK(q[0].sender == "poster@remote.test");

  const auto second = s.handle("ml+confirm-" + token + "@example.org", "mod@remote.test", reply);
  CHECK(second.detail.find("confirmation ignored") == 0);
  CHECK(s.queued().size() == 1);  // nothing new went out

  const auto distributed = s.run(spool::list_queue(s.layout()).at(0));
  CHECK(distributed.detail.find("distributed as ml@example.org #1") == 0);
  CHECK(s.new_mail(s.alice).size() == 1);
}

TEST_CASE("three permanent bounces within 30 days disable a member", "[list_mail]") {
  ListSpool s;
  const std::string dsn =
      "From: MAILER-DAEMON@remote.test\nTo: ml+bounces@example.org\nSubject: failure\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nfailed\n"
      "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; remote.test\n\n"
      "Final-Recipient: rfc822; x@remote.test\nAction: failed\nStatus: 5.1.1\n\n--b--\n";
  for (int i = 0; i < 2; ++i)
    CHECK(s.handle("ml+bounces@example.org", "", dsn, t0 + i * 86400).detail.find("bounce counted for x@remote.test") == 0);
  const auto third = s.handle("ml+bounces@example.org", "", dsn, t0 + 2 * 86400);
  CHECK(third.detail.find("disabled: x@remote.test") != std::string::npos);
  const auto members = spool::list_members(s.layout(), s.list, t0 + 2 * 86400);
  const auto x = std::find_if(members.begin(), members.end(), [](const auto& m) { return m.address == "x@remote.test"; });
  REQUIRE(x != members.end());
  CHECK(x->disabled);
  // A disabled member gets no posts.
  REQUIRE(s.handle("ml@example.org", "poster@remote.test", post(), t0 + 3 * 86400).fate == ListMailResult::Fate::done);
  CHECK(s.queued().empty());
}

TEST_CASE("unsubscribe: a member's request is confirmed by a reply, then removed", "[list_mail]") {
  ListSpool s;
  const auto asked = s.handle("ml+unsubscribe@example.org", "bob@example.org", "From: bob@example.org\n\nplease\n");
  INFO(asked.detail);
  REQUIRE(asked.detail.find("unsubscribe of <bob@example.org> awaits confirmation") == 0);
  REQUIRE(s.queued().size() == 1);  // the confirmation request
  CHECK(s.queued()[0].recipients == std::vector<std::string>{"bob@example.org"});
  const auto pending = spool::list_pending(s.layout(), s.list);
  REQUIRE(pending.size() == 1);
  const auto done = s.handle("ml+confirm-" + pending[0].id + "@example.org", "bob@example.org", "From: bob\n\nyes\n");
  CHECK(done.detail == "removed <bob@example.org> from ml@example.org");
  CHECK_FALSE(spool::is_member(s.layout(), s.list, "bob@example.org"));
  CHECK(s.queued().size() == 2);  // and the notice
  // A stranger asking gets nothing.
  CHECK(s.handle("ml+unsubscribe@example.org", "who@remote.test", "From: who@remote.test\n\nx\n").detail.find("ignored") != std::string::npos);
}
