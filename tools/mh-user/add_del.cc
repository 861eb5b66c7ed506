// add_del.cc — mh-user add, del and passwd: the commands that create, remove or
// re-key an account. Passwords come from stdin, a terminal, or are generated.
#include "commands.h"

#include "common/password_input.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/text.h>
#include <spool/units.h>

#include <memory>

namespace mh::user {
namespace {

struct AccountOptions {
  std::string address;
  std::string display_name;
  std::string quota;
  bool password_stdin = false;
  bool random_password = false;
  bool exist_ok = false;
  bool force = false;

  PasswordSource source() const {
    if (password_stdin) return PasswordSource::stdin_line;
    if (random_password) return PasswordSource::random;
    return PasswordSource::prompt;
  }
};

void add_password_options(CLI::App* sub, AccountOptions& o) {
  auto* in = sub->add_flag("--password-stdin", o.password_stdin, "Read the password from the first line of stdin");
  auto* rnd = sub->add_flag("--random-password", o.random_password, "Generate a password and print it once");
  in->excludes(rnd);
}

// The generated password is part of the output exactly once, on stdout.
void report_password(Result& r, const AccountOptions& o, const spool::Secret& pw) {
  if (!o.random_password) return;
  r.data["password"] = pw.reveal();
  r.essential += "password: " + pw.reveal() + "\n";
}

Result run_add(const Tool& tool, const AccountOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::check_free_text(o.display_name, "--name");
  spool::AccountConfig c;
  c.display_name = o.display_name;
  if (!o.quota.empty()) c.quota = spool::parse_size(o.quota);
  spool::Layout layout = tool.open_spool();
  // Cheap checks first, so a typo does not cost a password prompt. A symlink planted
  // for the domain or account is refused (77), not taken for "no such domain".
  layout.verify_no_symlinks(layout.account_dir(a));
  if (!spool::domain_exists(layout, a.domain())) throw spool::Error(spool::Errc::no_domain, "no such domain: " + a.domain().str());
  Result r;
  if (spool::account_exists(layout, a) && o.exist_ok) {
    r.data = {{"address", a.str()}, {"created", false}};
    r.text = "account " + a.str() + " already exists (kept)\n";
    return r;
  }
  spool::ensure_name_free(layout, a.domain(), a.local());
  spool::Secret pw = obtain_new_password(o.source());
  c.password_hash = spool::hash_password(pw);
  bool created = spool::add_account(layout, a, c, o.exist_ok);
  r.data = {{"address", a.str()}, {"created", created}};
  r.text = created ? "account " + a.str() + " added\n" : "account " + a.str() + " already exists (kept)\n";
  if (created) report_password(r, o, pw);
  return r;
}

Result run_del(const Tool& tool, const AccountOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  spool::delete_account(layout, a, o.force);
  Result r;
  r.data = {{"address", a.str()}, {"deleted", true}};
  r.text = "account " + a.str() + " deleted\n";
  return r;
}

Result run_passwd(const Tool& tool, const AccountOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  (void)spool::read_account(layout, a); // fail before prompting when it does not exist
  spool::Secret pw = obtain_new_password(o.source());
  std::string hash = spool::hash_password(pw);
  spool::update_account(layout, a, [&](spool::AccountConfig& c) { c.password_hash = hash; });
  Result r;
  r.data = {{"address", a.str()}, {"changed", true}};
  r.text = "password of " + a.str() + " changed\n";
  report_password(r, o, pw);
  return r;
}

} // namespace

void setup_add(Tool& tool) {
  auto o = std::make_shared<AccountOptions>();
  CLI::App* add = tool.app().add_subcommand("add", "Add an account (the login name is the full address)");
  add->add_option("address", o->address, "name@domain")->required();
  add_password_options(add, *o);
  add->add_option("--name", o->display_name, "Display name")->type_name("TEXT");
  add->add_option("--quota", o->quota, "Optional per-account limit (e.g. 100M); default none")->type_name("SIZE");
  add->add_flag("--exist-ok", o->exist_ok, "Succeed without change when the account exists");
  tool.on(add, [&tool, o] { return run_add(tool, *o); });
}

void setup_del(Tool& tool) {
  auto o = std::make_shared<AccountOptions>();
  CLI::App* del = tool.app().add_subcommand("del", "Delete an account and its mailbox");
  del->add_option("address", o->address, "name@domain")->required();
  del->add_flag("--force", o->force, "Delete even if the mailbox still holds mail");
  tool.on(del, [&tool, o] { return run_del(tool, *o); });
}

void setup_passwd(Tool& tool) {
  auto o = std::make_shared<AccountOptions>();
  CLI::App* passwd = tool.app().add_subcommand("passwd", "Set a new password for an account (admin reset)");
  passwd->add_option("address", o->address, "name@domain")->required();
  add_password_options(passwd, *o);
  tool.on(passwd, [&tool, o] { return run_passwd(tool, *o); });
}

} // namespace mh::user
