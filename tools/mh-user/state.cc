// state.cc — mh-user suspend|resume [--sending] and auth-test.
#include "commands.h"

#include "common/password_input.h"

#include <spool/accounts.h>
#include <spool/password.h>
#include <spool/text.h>

#include <unistd.h>

#include <memory>

namespace mh::user {
namespace {

struct StateOptions {
  std::string address;
  bool sending = false;
  std::string reason;
};

Result run_state(const Tool& tool, const StateOptions& o, bool suspend) {
  spool::Address a = spool::Address::parse(o.address);
  // The reason is quoted in mh-serve's 550 reply: one line, bounded (SPEC §8).
  spool::check_free_text(o.reason, "--reason");
  spool::Layout layout = tool.open_spool();
  spool::AccountConfig after;
  spool::update_account(layout, a, [&](spool::AccountConfig& c) {
    if (o.sending) {
      c.sending_suspended = suspend;
      c.sending_reason = suspend ? (o.reason.empty() ? "suspended by the administrator" : o.reason) : "";
    } else {
      c.suspended = suspend;
    }
    after = c;
  });
  Result r;
  r.data = account_json(a, after);
  r.text = std::string(o.sending ? "sending of " : "account ") + a.str() + (suspend ? " suspended\n" : " resumed\n");
  return r;
}

Result run_auth_test(const Tool& tool, const StateOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  spool::AccountConfig c = spool::read_account(layout, a);
  spool::Secret pw = ::isatty(STDIN_FILENO) ? prompt_password("Password: ") : read_password_stdin();
  bool ok = spool::verify_password(pw, c.password_hash);
  Result r;
  std::string why = ok ? (c.suspended ? "account is suspended" : "") : "password does not match";
  bool pass = ok && !c.suspended;
  r.data = {{"address", a.str()}, {"ok", pass}};
  if (!pass) r.data["reason"] = why;
  r.text = pass ? "ok: " + a.str() + " authenticates\n" : "failed: " + a.str() + ": " + why + "\n";
  r.exit_code = pass ? 0 : 1;
  return r;
}

} // namespace

void setup_suspend_resume(Tool& tool) {
  auto o = std::make_shared<StateOptions>();
  CLI::App* suspend = tool.app().add_subcommand("suspend", "Suspend an account (no login, no delivery) or only its sending");
  suspend->add_option("address", o->address, "name@domain")->required();
  auto* sending = suspend->add_flag("--sending", o->sending, "Suspend only sending (SMTP AUTH); POP3 and delivery go on");
  suspend->add_option("--reason", o->reason, "Why sending is suspended (shown to the user)")
      ->type_name("TEXT")
      ->needs(sending);
  tool.on(suspend, [&tool, o] { return run_state(tool, *o, true); });

  CLI::App* resume = tool.app().add_subcommand("resume", "Resume a suspended account or its sending");
  resume->add_option("address", o->address, "name@domain")->required();
  resume->add_flag("--sending", o->sending, "Resume sending only");
  tool.on(resume, [&tool, o] { return run_state(tool, *o, false); });
}

void setup_auth_test(Tool& tool) {
  auto o = std::make_shared<StateOptions>();
  CLI::App* t = tool.app().add_subcommand("auth-test", "Check a password (read from stdin); exit 0 if it verifies");
  t->add_option("address", o->address, "name@domain")->required();
  tool.on(t, [&tool, o] { return run_auth_test(tool, *o); });
}

} // namespace mh::user
