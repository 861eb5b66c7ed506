// forward_rule.cc — mh-filter forward add|del and rule add|del: the two numbered lists
// of an account's filters. Input is checked before the spool is touched (condition,
// destinations: no program, no path, not the account itself); the list limits are
// checked again under the domain lock, where the count is current.
#include "commands.h"

#include <spool/error.h>

#include <algorithm>
#include <memory>

namespace mh::filter {
namespace {

struct ListOptions {
  std::string address;
  std::vector<std::string> to;
  std::string condition = "all";
  bool no_keep = false;
  std::string action;
  std::string number;   // N of `del`, as typed
  bool all = false;
};

Result run_forward_add(const Tool& tool, const ListOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::ForwardProfile profile;
  profile.condition = spool::parse_condition(o.condition);
  profile.keep = !o.no_keep;
  if (o.to.size() > spool::max_forward_destinations)
    throw spool::Error(spool::Errc::invalid_input, "at most " + std::to_string(spool::max_forward_destinations) +
                                                       " destinations per forward profile (" +
                                                       std::to_string(o.to.size()) + " given)");
  for (const std::string& to : o.to) {
    std::string dest = spool::check_forward_destination(a, to);
    if (std::find(profile.destinations.begin(), profile.destinations.end(), dest) != profile.destinations.end())
      throw spool::Error(spool::Errc::invalid_input, "destination " + dest + " is given twice");
    profile.destinations.push_back(std::move(dest));
  }
  spool::Layout layout = tool.open_spool();
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    if (c.forwards.size() >= spool::max_forward_profiles)
      throw spool::Error(spool::Errc::invalid_input,
                         a.str() + " already has " + std::to_string(c.forwards.size()) +
                             " forward profiles, the most allowed; delete one first (mh-filter forward del)");
    c.forwards.push_back(profile);
    after = c;
  });
  const std::size_t index = after.forwards.size() - 1;
  const std::string n = std::to_string(index + 1);
  Result r;
  r.data = forward_json(after, index);
  r.data["address"] = a.str();
  r.data["profile"] = index + 1;
  r.data["warnings"] = nlohmann::json::array();
  r.text = "forward profile " + n + " added: " + forward_text(profile) + "\n";
  for (std::size_t i = 0; i < index; ++i)
    if (after.forwards[i].condition.kind == spool::Condition::Kind::all) {
      warn(r, "profile " + n + " comes after profile " + std::to_string(i + 1) + " (all) and will never be used");
      break;
    }
  if (after.autoreply.enabled)
    warn(r, "auto-reply is on: forward profiles do not run until 'mh-filter autoreply off " + a.str() + "'");
  return r;
}

Result run_rule_add(const Tool& tool, const ListOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::FilterRule rule;
  rule.condition = spool::parse_condition(o.condition);
  rule.action = o.action == "bounce" ? spool::FilterRule::Action::bounce : spool::FilterRule::Action::discard;
  spool::Layout layout = tool.open_spool();
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    if (c.rules.size() >= spool::max_rules)
      throw spool::Error(spool::Errc::invalid_input, a.str() + " already has " + std::to_string(c.rules.size()) +
                                                         " rules, the most allowed; delete one first (mh-filter rule del)");
    c.rules.push_back(rule);
    after = c;
  });
  const std::size_t index = after.rules.size() - 1;
  Result r;
  r.data = rule_json(after, index);
  r.data["address"] = a.str();
  r.data["rule"] = index + 1;
  r.text = "rule " + std::to_string(index + 1) + " added: " + rule_text(rule) + "\n";
  return r;
}

// `del` of either list: N or --all (exactly one), renumbering what is left.
template <class Item>
Result run_del(const Tool& tool, const ListOptions& o, std::vector<Item> spool::FilterConfig::*list,
               const std::string& what, nlohmann::json (*item_json)(const spool::FilterConfig&, std::size_t)) {
  if (o.all == !o.number.empty())
    throw spool::Error(spool::Errc::usage, "give either N or --all (see mh-filter " +
                                               std::string(what == "rule" ? "rule" : "forward") + " del --help)");
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  std::size_t removed = 0, position = 0;
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    std::vector<Item>& items = c.*list;
    if (o.all) {
      removed = items.size();
      items.clear();
    } else {
      position = parse_position(o.number, what, items.size());
      items.erase(items.begin() + static_cast<std::ptrdiff_t>(position));
      removed = 1;
    }
    after = c;
  });
  const std::size_t left = (after.*list).size();
  Result r;
  r.data = {{"address", a.str()}, {"removed", removed}, {"remaining", left}};
  nlohmann::json items = nlohmann::json::array();
  for (std::size_t i = 0; i < left; ++i) items.push_back(item_json(after, i));
  r.data[what == "rule" ? "rules" : "forward"] = items;
  const std::string plural = what + "s";
  if (o.all) r.text = std::to_string(removed) + " " + (removed == 1 ? what : plural) + " deleted\n";
  else
    r.text = what + " " + std::to_string(position + 1) + " deleted; " + std::to_string(left) + " left" +
             (position < left ? " (later ones moved up by one)" : "") + "\n";
  return r;
}

void add_del_operands(CLI::App* del, ListOptions& o, const std::string& what) {
  del->add_option("address", o.address, "name@domain")->required();
  del->add_option("number", o.number, "The " + what + "'s number as 'mh-filter show' lists it")->type_name("N");
  del->add_flag("--all", o.all, "Delete every " + what);
}

} // namespace

void setup_forward(Tool& tool) {
  CLI::App* group = add_group(tool.app(), "forward", "Add and delete forward profiles (at most 10, 5 addresses each)");

  auto add_o = std::make_shared<ListOptions>();
  CLI::App* add = group->add_subcommand("add", "Add a forward profile; prints its number");
  add->add_option("address", add_o->address, "name@domain")->required();
  add->add_option("--to", add_o->to, "Destination address (1 to 5 times)")->type_name("DEST")->required()
      ->allow_extra_args(false);
  add->add_option("--if", add_o->condition, "Condition (default: all)")->type_name("COND");
  add->add_flag("--no-keep", add_o->no_keep, "Do not keep a copy in the mailbox");
  tool.on(add, [&tool, add_o] { return run_forward_add(tool, *add_o); });

  auto del_o = std::make_shared<ListOptions>();
  CLI::App* del = group->add_subcommand("del", "Delete forward profile N, or all of them");
  add_del_operands(del, *del_o, "forward profile");
  tool.on(del, [&tool, del_o] {
    return run_del<spool::ForwardProfile>(tool, *del_o, &spool::FilterConfig::forwards, "forward profile",
                                          forward_json);
  });
}

void setup_rule(Tool& tool) {
  CLI::App* group = add_group(tool.app(), "rule", "Add and delete delete/bounce rules");

  auto add_o = std::make_shared<ListOptions>();
  CLI::App* add = group->add_subcommand("add", "Add a rule that deletes or bounces matching mail");
  add->add_option("address", add_o->address, "name@domain")->required();
  add->add_option("--if", add_o->condition, "Condition")->type_name("COND")->required();
  add->add_option("--action", add_o->action, "delete (discard silently) or bounce (error mail to the sender)")
      ->type_name("delete|bounce")->required()->check(CLI::IsMember({"delete", "bounce"}));
  tool.on(add, [&tool, add_o] { return run_rule_add(tool, *add_o); });

  auto del_o = std::make_shared<ListOptions>();
  CLI::App* del = group->add_subcommand("del", "Delete rule N, or all of them");
  add_del_operands(del, *del_o, "rule");
  tool.on(del, [&tool, del_o] {
    return run_del<spool::FilterRule>(tool, *del_o, &spool::FilterConfig::rules, "rule", rule_json);
  });
}

} // namespace mh::filter
