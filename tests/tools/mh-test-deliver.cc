// mh-test-deliver — test-only: delivers the message on stdin with libspool (delivery.h)
// to the addresses given, so python tests can put mail into a spool the way mh-serve
// will. Built only with MH_BUILD_TESTS, installed nowhere. Prints the outcomes as JSON;
// exit 0 when every recipient got the message, 1 otherwise, SPEC §9 codes on errors.
//   mh-test-deliver [--spool DIR] [--repeat N] ADDRESS...
//   mh-test-deliver --list [--remove UIDL]... [--recalc] ADDRESS
// --repeat delivers the same message N times and adds the measured rate (for timings).
// --list shows what libspool sees in the account's Maildir (after --remove'ing UIDLs),
// with its maildirsize usage and, with --recalc, a fresh count from the files.
#include "common/cli.h"

#include <spool/accounts.h>
#include <spool/delivery.h>
#include <spool/error.h>
#include <spool/maildir.h>
#include <spool/quota.h>

#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

const char* status_name(spool::DeliveryOutcome::Status s) {
  switch (s) {
  case spool::DeliveryOutcome::Status::delivered: return "delivered";
  case spool::DeliveryOutcome::Status::over_quota: return "over_quota";
  case spool::DeliveryOutcome::Status::no_account: return "no_account";
  case spool::DeliveryOutcome::Status::failed_temporary: return "failed_temporary";
  }
  return "?";
}

std::string read_stdin() {
  std::string all;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) spool::throw_errno("cannot read", "stdin", errno);
    if (n == 0) return all;
    all.append(buf, static_cast<std::size_t>(n));
  }
}

// Streams stdin into a PendingMessage in the first existing recipient's Maildir, the
// way the SMTP DATA phase will.
std::vector<spool::DeliveryOutcome> deliver_stdin(const spool::Layout& layout,
                                                  const std::vector<spool::Address>& rcpts) {
  for (const auto& r : rcpts) {
    if (!spool::account_exists(layout, r)) continue;
    auto pending = spool::PendingMessage::begin(layout, layout.maildir(r));
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) spool::throw_errno("cannot read", "stdin", errno);
      if (n == 0) break;
      pending.append(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    return spool::deliver(layout, pending, rcpts);
  }
  return spool::deliver_bytes(layout, read_stdin(), rcpts);
}

nlohmann::json usage_json(const spool::Usage& u) { return {{"bytes", u.bytes}, {"messages", u.messages}}; }

mh::Result list_account(const spool::Layout& layout, const spool::Address& account,
                        const std::vector<std::string>& remove, bool recalc) {
  mh::Result r;
  spool::Maildir md(layout.maildir(account));
  r.data["removed"] = nlohmann::json::array();
  for (const auto& uidl : remove) {
    auto m = md.find(uidl);
    if (m && md.remove(*m)) r.data["removed"].push_back(uidl);
  }
  r.data["messages"] = nlohmann::json::array();
  for (const auto& m : md.list())
    r.data["messages"].push_back({{"uidl", m.uidl}, {"filename", m.filename}, {"in_new", m.in_new},
                                  {"size", m.size}, {"delivered", m.delivered}});
  r.data["usage"] = usage_json(spool::account_usage(layout, account));
  if (recalc) r.data["recalc"] = usage_json(spool::recalc_account(layout, account));
  r.text = r.data.dump(2) + "\n";
  return r;
}

} // namespace

int main(int argc, char** argv) {
  mh::Tool tool("mh-test-deliver", "Test helper: deliver stdin to ADDRESS... with libspool");
  std::vector<std::string> addresses;
  unsigned repeat = 1;
  tool.app().require_subcommand(0); // one command: no subcommands
  tool.app().add_option("address", addresses, "Recipients")->required();
  tool.app().add_option("--repeat", repeat, "Deliver the message this many times")->check(CLI::Range(1u, 1000000u));
  bool list = false, recalc = false;
  std::vector<std::string> remove;
  tool.app().add_flag("--list", list, "List the Maildir of ADDRESS as libspool sees it");
  tool.app().add_option("--remove", remove, "With --list: first remove this UIDL (repeatable)")->allow_extra_args(false);
  tool.app().add_flag("--recalc", recalc, "With --list: also recalc the account");
  tool.on(&tool.app(), [&] {
    const spool::Layout layout = tool.open_spool();
    std::vector<spool::Address> rcpts;
    for (const auto& a : addresses) rcpts.push_back(spool::Address::parse(a));
    if (list) {
      if (rcpts.size() != 1) throw spool::Error(spool::Errc::usage, "--list takes one ADDRESS");
      return list_account(layout, rcpts[0], remove, recalc);
    }

    mh::Result r;
    std::vector<spool::DeliveryOutcome> outcomes;
    const auto start = std::chrono::steady_clock::now();
    if (repeat == 1) {
      outcomes = deliver_stdin(layout, rcpts);
    } else {
      const std::string message = read_stdin();
      for (unsigned i = 0; i < repeat; ++i) outcomes = spool::deliver_bytes(layout, message, rcpts);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      r.data["repeat"] = repeat;
      r.data["seconds"] = secs;
      r.data["deliveries_per_second"] = repeat / secs;
    }
    bool all_delivered = true;
    r.data["outcomes"] = nlohmann::json::array();
    for (const auto& o : outcomes) {
      r.data["outcomes"].push_back({{"recipient", o.recipient.str()}, {"status", status_name(o.status)},
                                    {"detail", o.detail}, {"uidl", o.uidl}});
      all_delivered = all_delivered && o.status == spool::DeliveryOutcome::Status::delivered;
    }
    r.text = r.data.dump(2) + "\n";
    r.exit_code = all_delivered ? 0 : 1;
    return r;
  });
  return tool.run(argc, argv);
}
