// view.cc — what the mh-filter commands share: the JSON objects of an account's
// filters (the stable `show --json` shape), the one-line texts of rules and profiles,
// inertness of forward profiles, 1-based positions and warnings.
#include "commands.h"

#include <spool/error.h>

#include <charconv>
#include <iostream>

namespace mh::filter {

std::optional<std::string> forward_inert_reason(const spool::FilterConfig& config, std::size_t index) {
  // SPEC §6: auto-reply ends the evaluation (forwards never run while it is on), and a
  // profile whose condition is `all` ends the list of profiles.
  if (config.autoreply.enabled) return "auto-reply is on";
  for (std::size_t i = 0; i < index && i < config.forwards.size(); ++i)
    if (config.forwards[i].condition.kind == spool::Condition::Kind::all)
      return "after profile " + std::to_string(i + 1) + ", which matches all mail";
  return std::nullopt;
}

std::string rule_action_name(spool::FilterRule::Action action) {
  return action == spool::FilterRule::Action::discard ? "delete" : "bounce";
}

std::string spam_action_name(spool::SpamFilter::Action action) {
  return action == spool::SpamFilter::Action::discard ? "delete" : "tag";
}

nlohmann::json spam_json(const spool::SpamFilter& spam) {
  return {{"enabled", spam.enabled}, {"action", spam_action_name(spam.action)}, {"tag", spam.tag}};
}

nlohmann::json rule_json(const spool::FilterConfig& config, std::size_t index) {
  const spool::FilterRule& rule = config.rules.at(index);
  return {{"number", index + 1}, {"if", rule.condition.str()}, {"action", rule_action_name(rule.action)}};
}

nlohmann::json autoreply_json(const spool::AutoReply& a) {
  return {{"enabled", a.enabled}, {"subject", a.subject}, {"days", a.days}, {"message", a.message}};
}

nlohmann::json forward_json(const spool::FilterConfig& config, std::size_t index) {
  const spool::ForwardProfile& p = config.forwards.at(index);
  std::optional<std::string> inert = forward_inert_reason(config, index);
  return {{"number", index + 1},
          {"if", p.condition.str()},
          {"to", p.destinations},
          {"keep", p.keep},
          {"inert", inert.has_value()},
          {"inert_reason", inert ? nlohmann::json(*inert) : nlohmann::json(nullptr)}};
}

nlohmann::json filters_json(const spool::Address& address, const spool::FilterConfig& config) {
  nlohmann::json j = {{"address", address.str()},
                      {"spam", spam_json(config.spam)},
                      {"rules", nlohmann::json::array()},
                      {"autoreply", autoreply_json(config.autoreply)},
                      {"forward", nlohmann::json::array()}};
  for (std::size_t i = 0; i < config.rules.size(); ++i) j["rules"].push_back(rule_json(config, i));
  for (std::size_t i = 0; i < config.forwards.size(); ++i) j["forward"].push_back(forward_json(config, i));
  return j;
}

std::string rule_text(const spool::FilterRule& rule) {
  return "if " + rule.condition.str() + ": " +
         (rule.action == spool::FilterRule::Action::discard ? "delete" : "bounce to the sender");
}

std::string forward_text(const spool::ForwardProfile& p) {
  std::string to;
  for (const std::string& d : p.destinations) to += (to.empty() ? "" : ", ") + d;
  return "if " + p.condition.str() + ": forward to " + to + "; " + (p.keep ? "keep a copy" : "no copy kept");
}

std::size_t parse_position(const std::string& text, const std::string& what, std::size_t count) {
  std::size_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n == 0)
    throw spool::Error(spool::Errc::invalid_input,
                       "invalid " + what + " number '" + text + "' (expected 1, 2, … as 'mh-filter show' lists them)");
  if (n > count)
    throw spool::Error(spool::Errc::invalid_input, "no " + what + " " + text + "; the account has " +
                                                       std::to_string(count) + (count == 1 ? " " + what : " " + what + "s"));
  return n - 1;
}

void warn(Result& result, const std::string& text) {
  std::cerr << "mh-filter: warning: " << text << "\n";
  result.data["warnings"].push_back(text);
}

} // namespace mh::filter
