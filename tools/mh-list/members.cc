// members.cc — mh-list members add|del|list and moderators add|del|list. Addresses come
// from the operands or, when there are none, from stdin, one per line ('#' lines and
// blank lines skipped), so a 10,000-member list is one run and one atomic update of the
// members file (mlist.h add_members). Input is bounded: a line is kept up to
// max_input_line bytes (anything longer is no address anyway, and is reported invalid),
// and at most max_input_addresses addresses are taken per run.
// Invalid addresses do not stop the valid ones: those are applied, the invalid ones are
// listed on stderr (and in --json) and the run exits 65, so a script notices.
#include "commands.h"

#include <spool/error.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <memory>

namespace mh::list {
namespace {

constexpr std::size_t max_input_line = 1024;
constexpr std::size_t max_input_addresses = 1000000;

enum class Roster { members, moderators };

struct RosterOptions {
  std::string list;
  std::vector<std::string> addresses;
};

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n\f\v");
  if (first == std::string_view::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n\f\v");
  return std::string(s.substr(first, last - first + 1));
}

// One address per line from stdin; each line is cut at max_input_line bytes.
std::vector<std::string> read_address_lines() {
  std::vector<std::string> out;
  std::string line;
  bool cut = false;
  auto finish_line = [&] {
    std::string a = trim(line);
    line.clear();
    cut = false;
    if (a.empty() || a.front() == '#') return;
    if (out.size() == max_input_addresses)
      throw spool::Error(spool::Errc::invalid_input, "more than " + std::to_string(max_input_addresses) +
                                                         " addresses on standard input; give them in parts "
                                                         "(nothing was changed)");
    out.push_back(std::move(a));
  };
  char buf[64 * 1024];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
    for (std::size_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') finish_line();
      else if (line.size() < max_input_line) line += buf[i];
      else cut = true;
    }
  }
  if (std::ferror(stdin)) spool::throw_errno("cannot read addresses from", "standard input", errno);
  if (!line.empty() || cut) finish_line();
  return out;
}

std::string roster_name(Roster which) { return which == Roster::members ? "members" : "moderators"; }

Result run_change(const Tool& tool, const RosterOptions& o, Roster which, bool add) {
  const spool::Address list = parse_list(o.list);
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);  // before reading stdin: a typo must not swallow a long list
  // At a terminal, say what the silence is waiting for.
  if (o.addresses.empty() && ::isatty(STDIN_FILENO) == 1)
    std::cerr << "mh-list: reading addresses from standard input, one per line; end with Ctrl-D\n";
  const std::vector<std::string> addresses = o.addresses.empty() ? read_address_lines() : o.addresses;
  spool::MemberChange ch;
  if (which == Roster::members)
    ch = add ? spool::add_members(layout, list, addresses) : spool::remove_members(layout, list, addresses);
  else
    ch = add ? spool::add_moderators(layout, list, addresses) : spool::remove_moderators(layout, list, addresses);

  Result r;
  nlohmann::json invalid = nlohmann::json::array();
  for (const std::string& s : ch.invalid_inputs) invalid.push_back(utf8_clean(s));
  r.data = {{"list", list.str()}, {"invalid", ch.invalid}, {"invalid_inputs", invalid}};
  std::string text = roster_name(which) + " of " + list.str() + ": ";
  if (add) {
    r.data["added"] = ch.added;
    r.data["already"] = ch.already;
    text += "added " + std::to_string(ch.added) + ", already there " + std::to_string(ch.already);
    if (which == Roster::members) {
      r.data["enabled"] = ch.enabled;
      if (ch.enabled > 0) text += ", enabled again " + std::to_string(ch.enabled);
    }
  } else {
    r.data["removed"] = ch.added;
    r.data["absent"] = ch.absent;
    text += "removed " + std::to_string(ch.added) + ", not there " + std::to_string(ch.absent);
  }
  r.text = text + ", invalid " + std::to_string(ch.invalid) + "\n";
  if (ch.invalid > 0) {
    // Diagnostics, not output: on stderr even with --quiet or --json.
    for (const std::string& s : ch.invalid_inputs)
      std::cerr << "mh-list: error: not a mail address: " << quoted_input(s) << "\n";
    if (ch.invalid > ch.invalid_inputs.size())
      std::cerr << "mh-list: error: " << ch.invalid << " invalid addresses in all; the first "
                << ch.invalid_inputs.size() << " are shown\n";
    std::cerr << "mh-list: error: " << ch.invalid << (ch.invalid == 1 ? " address was" : " addresses were")
              << " invalid and skipped; the valid ones were " << (add ? "added" : "removed") << "\n";
    r.exit_code = static_cast<int>(spool::Errc::invalid_input);
  }
  return r;
}

Result run_members_list(const Tool& tool, const RosterOptions& o) {
  const spool::Address list = parse_list(o.list);
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  Result r;
  nlohmann::json members = nlohmann::json::array();
  std::size_t disabled = 0;
  for (const spool::Member& m : spool::list_members(layout, list, unix_now())) {
    const std::string since = time_text(m.disabled_since);
    // The bounce record forgets the bounce times once it disables a member; it took
    // list_bounce_limit of them.
    const std::uint32_t bounces = m.disabled && m.bounces == 0 ? spool::list_bounce_limit : m.bounces;
    members.push_back({{"address", utf8_clean(m.address)},
                       {"disabled", m.disabled},
                       {"bounces", bounces},
                       {"disabled_since", m.disabled ? nlohmann::json(since) : nlohmann::json(nullptr)}});
    r.text += printable(m.address);
    if (m.disabled) {
      ++disabled;
      r.text += " (disabled: bounced " + std::to_string(bounces) + " times" + (since.empty() ? "" : " since " + since) +
                ")";
    }
    r.text += "\n";
  }
  r.data = {{"list", list.str()}, {"count", members.size()}, {"disabled", disabled}, {"members", members}};
  return r;
}

Result run_moderators_list(const Tool& tool, const RosterOptions& o) {
  const spool::Address list = parse_list(o.list);
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  const spool::ListConfig c = spool::read_list(layout, list);
  Result r;
  nlohmann::json moderators = nlohmann::json::array();
  for (const std::string& m : c.moderators) {
    moderators.push_back(utf8_clean(m));
    r.text += printable(m) + "\n";
  }
  r.data = {{"list", list.str()}, {"policy", std::string(spool::policy_name(c.policy))}, {"moderators", moderators}};
  warn_if_unmoderated(r, list, c);
  return r;
}

void setup_roster(Tool& tool, Roster which) {
  const std::string what = roster_name(which);
  CLI::App* group = add_group(tool.app(), what,
                              which == Roster::members ? "Add, remove and list the members of a list"
                                                       : "Add, remove and list the moderators of a list");
  const std::string from_stdin = " (none: one per line from stdin)";

  auto add_o = std::make_shared<RosterOptions>();
  CLI::App* add = group->add_subcommand("add", "Add " + what + "; invalid addresses are reported, the rest added");
  add->add_option("list", add_o->list, "LIST@DOMAIN")->required();
  add->add_option("address", add_o->addresses, "Addresses to add" + from_stdin)->type_name("ADDR");
  tool.on(add, [&tool, add_o, which] { return run_change(tool, *add_o, which, true); });

  auto del_o = std::make_shared<RosterOptions>();
  CLI::App* del = group->add_subcommand("del", "Remove " + what + " by address");
  del->add_option("list", del_o->list, "LIST@DOMAIN")->required();
  del->add_option("address", del_o->addresses, "Addresses to remove" + from_stdin)->type_name("ADDR");
  tool.on(del, [&tool, del_o, which] { return run_change(tool, *del_o, which, false); });

  auto list_o = std::make_shared<RosterOptions>();
  CLI::App* list = group->add_subcommand("list", "Print the " + what + ", one address per line");
  list->add_option("list", list_o->list, "LIST@DOMAIN")->required();
  tool.on(list, [&tool, list_o, which] {
    return which == Roster::members ? run_members_list(tool, *list_o) : run_moderators_list(tool, *list_o);
  });
}

} // namespace

void setup_members(Tool& tool) { setup_roster(tool, Roster::members); }
void setup_moderators(Tool& tool) { setup_roster(tool, Roster::moderators); }

} // namespace mh::list
