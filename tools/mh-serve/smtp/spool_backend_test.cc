// spool_backend_test.cc — SpoolBackend on a real temp spool: a message for local and
// remote recipients is stored once in the Maildir and once (the same file) in the
// outbound queue; a local temporary failure takes the queued copy back; remote-only
// mail streams straight into the queue; the sending state of accounts.
#include "smtp/spool_backend.h"

#include "store_fixture.h"

#include <spool/accounts.h>
#include <spool/queue.h>

#include <catch2/catch.hpp>

#include <sys/stat.h>

using mh::smtp::DeliveryResult;
using mh::smtp::Envelope;
using mh::smtp::SenderState;
using mh::smtp::SpoolBackend;
using Status = DeliveryResult::Status;
namespace fs = std::filesystem;

namespace {

Envelope envelope(std::vector<std::string> local, std::vector<std::string> remote) {
  Envelope e;
  e.sender = "alice@example.org";
  e.local = std::move(local);
  e.remote = std::move(remote);
  e.auth = "alice@example.org";
  return e;
}

} // namespace

TEST_CASE("local and remote recipients: one file in the Maildir and in the queue") {
  mhtest::StoreSpool s;
  spool::Address bob = s.account("bob@example.org");
  SpoolBackend backend(s.layout());
  auto sink = backend.begin_message(envelope({"bob@example.org"}, {"carol@remote.example", "dave@remote.example"}));
  sink->append("Subject: hello\n\nbody\n");
  auto results = sink->deliver();
  REQUIRE(results.size() == 3);
  CHECK(results[0].recipient == "bob@example.org");
  CHECK(results[0].status == Status::delivered);
  CHECK(results[1].recipient == "carol@remote.example");
  CHECK(results[1].status == Status::queued);
  CHECK(results[2].status == Status::queued);
  const auto ids = spool::list_queue(s.layout());
  REQUIRE(ids.size() == 1);
  CHECK(results[1].uidl == ids[0]);
  spool::QueueEnvelope e = spool::load_queue_entry(s.layout(), ids[0]);
  CHECK(e.recipients == std::vector<std::string>{"carol@remote.example", "dave@remote.example"});
  CHECK(e.sender == "alice@example.org");
  CHECK(e.auth == "alice@example.org");
  CHECK(e.attempts == 0);
  CHECK(e.created > 0);
  CHECK(e.next_attempt == e.created);
  const fs::path msg = s.layout().queue_dir() / (ids[0] + ".msg");
  CHECK(mhtest::read_text(msg) == "Subject: hello\n\nbody\n");
  struct stat st;
  REQUIRE(::stat(msg.c_str(), &st) == 0);
  CHECK(st.st_nlink == 2);  // shared with bob's new/ file
  CHECK(s.maildir(bob).list().size() == 1);
  CHECK(mhtest::files_in(s.layout().maildir(bob) / "tmp").empty());
  // The writer has let go: the runner can claim it.
  CHECK(spool::QueueClaim::try_claim(s.layout(), ids[0]).has_value());
}

TEST_CASE("a local temporary failure withdraws the queued copy") {
  mhtest::StoreSpool s;
  spool::Address bob = s.account("bob@example.org");
  SpoolBackend backend(s.layout());
  auto sink = backend.begin_message(envelope({"bob@example.org"}, {"carol@remote.example"}));
  sink->append("x\n");
  // bob's new/ vanishes: the link fails, a temporary failure (root ignores permissions).
  fs::remove(s.layout().maildir(bob) / "new");
  auto results = sink->deliver();
  REQUIRE(results.size() == 2);
  CHECK(results[0].status == Status::temporary);
  CHECK(results[1].status == Status::temporary);
  CHECK(spool::list_queue(s.layout()).empty());
  CHECK(mhtest::files_in(s.layout().queue_dir()) == std::vector<std::string>{"tmp"});
}

TEST_CASE("remote recipients only: the message streams into the queue") {
  mhtest::StoreSpool s;
  SpoolBackend backend(s.layout());
  {
    auto aborted = backend.begin_message(envelope({}, {"carol@remote.example"}));
    aborted->append("partial");
    aborted->abort();
  }
  CHECK(mhtest::files_in(s.layout().queue_dir() / "tmp").empty());
  auto sink = backend.begin_message(envelope({}, {"carol@remote.example"}));
  const std::string big(3 * 64 * 1024 + 17, 'q');
  sink->append(big);
  CHECK(spool::list_queue(s.layout()).empty());
  auto results = sink->deliver();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == Status::queued);
  const auto ids = spool::list_queue(s.layout());
  REQUIRE(ids.size() == 1);
  CHECK(mhtest::read_text(s.layout().queue_dir() / (ids[0] + ".msg")) == big);
  CHECK(mhtest::files_in(s.layout().queue_dir() / "tmp").empty());
}

TEST_CASE("sending state of an account") {
  mhtest::StoreSpool s;
  spool::Address alice = s.account("alice@example.org");
  SpoolBackend backend(s.layout());
  CHECK(backend.sender_state("alice@example.org").kind == SenderState::Kind::active);
  spool::update_account(s.layout(), alice, [](spool::AccountConfig& c) {
    c.sending_suspended = true;
    c.sending_reason = "5000 mails in an hour";
  });
  SenderState st = backend.sender_state("alice@example.org");
  CHECK(st.kind == SenderState::Kind::sending_suspended);
  CHECK(st.reason == "5000 mails in an hour");
  spool::update_account(s.layout(), alice, [](spool::AccountConfig& c) { c.suspended = true; });
  CHECK(backend.sender_state("alice@example.org").kind == SenderState::Kind::disabled);
  CHECK(backend.sender_state("gone@example.org").kind == SenderState::Kind::disabled);
  CHECK(backend.sender_state("x@nowhere.example").kind == SenderState::Kind::disabled);
}

TEST_CASE("sending_rate: the backend charges the account's window in the spool") {
  using mh::smtp::SendingCharge;
  mhtest::StoreSpool s;
  spool::Address alice = s.account("alice@example.org");
  SpoolBackend backend(s.layout(), 5);
  CHECK(backend.charge_sending("alice@example.org", 5).kind == SendingCharge::Kind::allowed);
  {
    SpoolBackend restarted(s.layout(), 5);  // a restarted daemon, or another one on the spool
    SendingCharge c = restarted.charge_sending("alice@example.org", 1);
    CHECK(c.kind == SendingCharge::Kind::suspended);
    CHECK(c.reason == "rate");
    CHECK(c.detail == "sending suspended: 5 + 1 recipients in the last hour exceed 5");
  }
  const spool::AccountConfig a = spool::read_account(s.layout(), alice);
  CHECK(a.sending_suspended);
  CHECK(a.sending_reason == "rate");
  SenderState st = backend.sender_state("alice@example.org");
  CHECK(st.kind == SenderState::Kind::sending_suspended);
  CHECK(st.reason == "rate");
  CHECK(backend.charge_sending("alice@example.org", 1).kind == SendingCharge::Kind::suspended);
  // mh-user resume --sending: the window starts over.
  spool::update_account(s.layout(), alice, [](spool::AccountConfig& c) {
    c.sending_suspended = false;
    c.sending_reason = "";
  });
  CHECK(backend.charge_sending("alice@example.org", 5).kind == SendingCharge::Kind::allowed);
  CHECK(backend.sender_state("alice@example.org").kind == SenderState::Kind::active);
}

TEST_CASE("sending_rate: limit 0 charges nothing, a spool failure is temporary") {
  using mh::smtp::SendingCharge;
  mhtest::StoreSpool s;
  spool::Address alice = s.account("alice@example.org");
  SpoolBackend unlimited(s.layout(), 0);
  CHECK(unlimited.charge_sending("alice@example.org", 100000).kind == SendingCharge::Kind::allowed);
  CHECK_FALSE(fs::exists(s.layout().sending_record(alice)));
  SpoolBackend backend(s.layout(), 5);
  mhtest::write_text(s.layout().root() / "elsewhere", "");
  fs::create_symlink(s.layout().root() / "elsewhere", s.layout().sending_record(alice));
  SendingCharge c = backend.charge_sending("alice@example.org", 1);
  CHECK(c.kind == SendingCharge::Kind::temporary);
  CHECK(c.detail.find("symlink") != std::string::npos);
  CHECK(backend.charge_sending("gone@example.org", 1).kind == SendingCharge::Kind::temporary);
}
