// provision.cc — mh-list create, delete, show, set and list: a list's existence and its
// settings (list.yaml). Option values are parsed and checked with list_config_problem()
// before the spool is touched, so a typo is exit 65 and changes nothing; the library
// checks the final settings again under the list's lock.
#include "commands.h"
#include "common/output.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/units.h>

#include <charconv>
#include <memory>

namespace mh::list {
namespace {

struct SettingsOptions {
  std::string list;
  std::string policy, admin, max_size, subject_tag, bomb, bomb_block;
  CLI::Option* policy_opt = nullptr;
  CLI::Option* admin_opt = nullptr;
  CLI::Option* max_size_opt = nullptr;
  CLI::Option* subject_tag_opt = nullptr;
  CLI::Option* bomb_opt = nullptr;
  CLI::Option* bomb_block_opt = nullptr;
  bool exist_ok = false;
  bool force = false;
  bool names = false;
};

bool given(const CLI::Option* o) { return o != nullptr && o->count() > 0; }

[[noreturn]] void invalid(const std::string& message) { throw spool::Error(spool::Errc::invalid_input, message); }

// "3/5m": the Nth post within AGE is a mail bomb.
void parse_bomb(const std::string& text, spool::ListConfig& c) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0)
    invalid("--bomb wants N/AGE, e.g. 3/5m (3 posts within 5 minutes); got " + quoted_input(text));
  std::uint32_t n = 0;
  const char* first = text.data();
  const char* last = text.data() + slash;
  auto [end, ec] = std::from_chars(first, last, n);
  if (ec != std::errc() || end != last || n == 0)
    invalid("--bomb: the number of posts must be a positive whole number; got " + quoted_input(text));
  c.bomb_posts = n;
  c.bomb_age = spool::parse_age(text.substr(slash + 1));
}

// Applies the options given to `c`; returns the names of the settings they set.
std::vector<std::string> apply_settings(const SettingsOptions& o, spool::ListConfig& c) {
  std::vector<std::string> set;
  if (given(o.policy_opt)) {
    c.policy = spool::parse_policy(o.policy);
    set.push_back("policy");
  }
  if (given(o.admin_opt)) {
    if (o.admin.empty()) c.admin.clear();  // --admin '': no admin address
    else if (auto a = spool::normalize_list_address(o.admin)) c.admin = *a;
    else invalid("--admin: not a mail address: " + quoted_input(o.admin));
    set.push_back("admin");
  }
  if (given(o.max_size_opt)) {
    c.max_size = spool::parse_size(o.max_size);
    set.push_back("max_size");
  }
  if (given(o.subject_tag_opt)) {
    c.subject_tag = o.subject_tag;  // "" = no tag
    set.push_back("subject_tag");
  }
  if (given(o.bomb_opt)) {
    parse_bomb(o.bomb, c);
    set.push_back("bomb");
  }
  if (given(o.bomb_block_opt)) {
    c.bomb_block = spool::parse_age(o.bomb_block);
    set.push_back("bomb_block");
  }
  if (auto problem = spool::list_config_problem(c)) invalid(*problem);
  return set;
}

void add_setting_options(CLI::App* sub, SettingsOptions& o, bool all) {
  o.policy_opt = sub->add_option("--policy", o.policy, "Who may post: members (default), anyone, moderators")
                     ->type_name("POLICY")
                     ->check(CLI::IsMember({"members", "anyone", "moderators"}));
  o.admin_opt = sub->add_option("--admin", o.admin, "Admin forward address ('' = none)")->type_name("ADDR");
  o.max_size_opt =
      sub->add_option("--max-size", o.max_size, "Largest post, 1K-10000K (default 10000K)")->type_name("SIZE");
  if (!all) return;
  o.subject_tag_opt =
      sub->add_option("--subject-tag", o.subject_tag, "Subject tag with {list} and {seq}; '' = no tag")
          ->type_name("FMT");
  o.bomb_opt = sub->add_option("--bomb", o.bomb, "Mail-bomb rule: the Nth post within AGE (default 3/5m)")
                   ->type_name("N/AGE");
  o.bomb_block_opt =
      sub->add_option("--bomb-block", o.bomb_block, "How long a mail bomber is refused, up to 1h (default 1h)")
          ->type_name("AGE");
}

Result run_create(const Tool& tool, const SettingsOptions& o) {
  const spool::Address list = parse_list(o.list);
  spool::ListConfig c;
  (void)apply_settings(o, c);
  spool::Layout layout = tool.open_spool();
  layout.verify_no_symlinks(layout.list_dir(list));
  if (!spool::domain_exists(layout, list.domain()))
    throw spool::Error(spool::Errc::no_domain, "no such domain: " + list.domain().str());
  // Lists and accounts share one name space (SPEC §7); an account of that name is a
  // clash even with --exist-ok, which only forgives the list itself.
  if (spool::account_exists(layout, list))
    throw spool::Error(spool::Errc::exists, "the name " + list.local().str() + " is used by the account " + list.str());
  Result r;
  bool created = false;
  if (!spool::list_exists(layout, list)) created = spool::create_list(layout, list, c, o.exist_ok);
  else if (!o.exist_ok) throw spool::Error(spool::Errc::exists, "list " + list.str() + " already exists");
  r.data = {{"list", list.str()}, {"created", created}};
  r.text = created ? "list " + list.str() + " created\n" : "list " + list.str() + " already exists (kept)\n";
  if (created) warn_if_unmoderated(r, list, c);
  return r;
}

Result run_delete(const Tool& tool, const SettingsOptions& o) {
  const spool::Address list = parse_list(o.list);
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  spool::delete_list(layout, list, o.force);
  Result r;
  r.data = {{"list", list.str()}, {"deleted", true}};
  r.text = "list " + list.str() + " deleted\n";
  return r;
}

std::string policy_text(spool::ListPolicy p) {
  switch (p) {
  case spool::ListPolicy::members: return "members (only members may post)";
  case spool::ListPolicy::anyone: return "anyone (anyone may post)";
  case spool::ListPolicy::moderators: return "moderators (every post waits for a moderator)";
  }
  return std::string(spool::policy_name(p));
}

std::string tag_text(const std::string& format) {
  if (format.empty()) return "none";
  return "\"" + printable(format) + "\"";
}

std::string bomb_text(const spool::ListConfig& c) {
  return "post " + std::to_string(c.bomb_posts) + " within " + age_text(c.bomb_age) +
         " is refused; the poster is then blocked for " + age_text(c.bomb_block) + " (--bomb " +
         std::to_string(c.bomb_posts) + "/" + age_text(c.bomb_age) + ")";
}

std::string count_text(std::uint64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields settings_fields(const spool::Address& list, const spool::ListConfig& c) {
  std::string moderators;
  for (const std::string& m : c.moderators) moderators += (moderators.empty() ? "" : ", ") + printable(m);
  const std::string at = "@" + list.domain().str();
  return Fields{{"list", list.str()},
                {"policy", policy_text(c.policy)},
                {"admin", c.admin.empty() ? "none" : printable(c.admin)},
                {"moderators", moderators.empty() ? "none" : moderators},
                {"max size", spool::format_size_exact(c.max_size) + " (" + std::to_string(c.max_size) + " bytes)"},
                {"subject tag", tag_text(c.subject_tag)},
                {"mail bomb", bomb_text(c)},
                {"confirmations", "expire after " + age_text(c.confirm_expiry)},
                {"post address", list.str()},
                {"bounces", list.local().str() + "+bounces" + at},
                {"unsubscribe", list.local().str() + "+unsubscribe" + at},
                {"created", printable(c.created)}};
}

Result run_show(const Tool& tool, const SettingsOptions& o) {
  const spool::Address list = parse_list(o.list);
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  const spool::ListSummary s = spool::summarize_list(layout, list, unix_now());
  const std::string at = "@" + list.domain().str();
  Result r;
  r.data = config_json(list, s.config);
  r.data["post_address"] = list.str();
  r.data["bounces_address"] = list.local().str() + "+bounces" + at;
  r.data["unsubscribe_address"] = list.local().str() + "+unsubscribe" + at;
  r.data["members"] = s.members;
  r.data["disabled_members"] = s.disabled_members;
  r.data["pending"] = s.pending;
  r.data["last_sequence"] = s.last_sequence;
  r.data["archive_bytes"] = s.archive.bytes;
  r.data["archive_posts"] = s.archive.messages;
  std::string members = std::to_string(s.members);
  if (s.disabled_members > 0) members += " (" + std::to_string(s.disabled_members) + " disabled by bounces)";
  Fields fields = settings_fields(list, s.config);
  fields.insert(fields.end(),
                {{"members", members},
                 {"pending", count_text(s.pending, "item awaits confirmation", "items await confirmation")},
                 {"last post", s.last_sequence == 0 ? "none yet" : "number " + std::to_string(s.last_sequence)},
                 {"archive", spool::format_size(s.archive.bytes) + " in " +
                                 count_text(s.archive.messages, "post", "posts") + " (counted in the domain quota)"}});
  r.text = format_fields(fields);
  warn_if_unmoderated(r, list, s.config);
  return r;
}

Result run_set(const Tool& tool, const SettingsOptions& o) {
  const spool::Address list = parse_list(o.list);
  {
    // Each value on its own first, so a bad one is exit 65 before the spool is touched.
    spool::ListConfig probe;
    if (apply_settings(o, probe).empty())
      throw spool::Error(spool::Errc::usage, "nothing to change: give at least one of --policy, --admin, --max-size, "
                                             "--subject-tag, --bomb, --bomb-block (see mh-list set --help)");
  }
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  spool::ListConfig after;
  std::vector<std::string> changed;
  spool::update_list(layout, list, [&](spool::ListConfig& c) {
    changed = apply_settings(o, c);
    after = c;
  });
  Result r;
  r.data = config_json(list, after);
  r.data["changed"] = changed;
  r.text = "list " + list.str() + " updated\n" + format_fields(settings_fields(list, after));
  warn_if_unmoderated(r, list, after);
  return r;
}

Result run_list(const Tool& tool, const SettingsOptions& o) {
  spool::Layout layout = tool.open_spool();
  std::vector<spool::Domain> domains;
  if (o.list.empty()) {
    domains = spool::list_domains(layout);
  } else {
    domains.push_back(spool::Domain::parse(o.list));
    if (!spool::domain_exists(layout, domains.front()))
      throw spool::Error(spool::Errc::no_domain, "no such domain: " + domains.front().str());
  }
  const std::int64_t now = unix_now();
  Result r;
  r.data["lists"] = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"LIST", "POLICY", "MEMBERS", "POSTS", "CREATED"}};
  for (const spool::Domain& d : domains) {
    for (const spool::LocalPart& name : spool::list_list_names(layout, d)) {
      const spool::Address list(name, d);
      if (o.names) {
        r.data["lists"].push_back(list.str());
        r.text += list.str() + "\n";
        continue;
      }
      const spool::ListSummary s = spool::summarize_list(layout, list, now);
      r.data["lists"].push_back({{"list", list.str()},
                                 {"policy", std::string(spool::policy_name(s.config.policy))},
                                 {"members", s.members},
                                 {"disabled_members", s.disabled_members},
                                 {"last_sequence", s.last_sequence},
                                 {"pending", s.pending},
                                 {"created", utf8_clean(s.config.created)}});
      rows.push_back({list.str(), std::string(spool::policy_name(s.config.policy)), std::to_string(s.members),
                      std::to_string(s.last_sequence), printable(s.config.created)});
    }
  }
  if (!o.names) r.text = rows.size() > 1 ? format_table(rows) : "no lists\n";
  return r;
}

} // namespace

void setup_create(Tool& tool) {
  auto o = std::make_shared<SettingsOptions>();
  CLI::App* create = tool.app().add_subcommand("create", "Create a mailing list");
  create->add_option("list", o->list, "LIST@DOMAIN")->required();
  add_setting_options(create, *o, false);
  create->add_flag("--exist-ok", o->exist_ok, "Succeed without change when the list exists");
  tool.on(create, [&tool, o] { return run_create(tool, *o); });
}

void setup_delete(Tool& tool) {
  auto o = std::make_shared<SettingsOptions>();
  CLI::App* del = tool.app().add_subcommand("delete", "Delete a mailing list with its members and archive");
  del->add_option("list", o->list, "LIST@DOMAIN")->required();
  del->add_flag("--force", o->force, "Delete even if the list has members or archived posts");
  tool.on(del, [&tool, o] { return run_delete(tool, *o); });
}

void setup_show(Tool& tool) {
  auto o = std::make_shared<SettingsOptions>();
  CLI::App* show = tool.app().add_subcommand("show", "Show a list's settings, addresses and counts");
  show->add_option("list", o->list, "LIST@DOMAIN")->required();
  tool.on(show, [&tool, o] { return run_show(tool, *o); });
}

void setup_set(Tool& tool) {
  auto o = std::make_shared<SettingsOptions>();
  CLI::App* set = tool.app().add_subcommand("set", "Change a list's settings (at least one option)");
  set->add_option("list", o->list, "LIST@DOMAIN")->required();
  add_setting_options(set, *o, true);
  tool.on(set, [&tool, o] { return run_set(tool, *o); });
}

void setup_list(Tool& tool) {
  auto o = std::make_shared<SettingsOptions>();
  CLI::App* list = tool.app().add_subcommand("list", "List the mailing lists of one domain or of all domains");
  list->add_option("domain", o->list, "Domain (default: all)");
  list->add_flag("--names", o->names, "Print LIST@DOMAIN only, one per line");
  tool.on(list, [&tool, o] { return run_list(tool, *o); });
}

} // namespace mh::list
