// view.cc — what the mh-list commands share: the list operand and its existence checks,
// times and ages as people and parse_age() read them, text made safe for JSON and for a
// terminal, the settings object of `show --json` / `set --json`, and warnings.
#include "commands.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/text.h>
#include <spool/units.h>

#include <algorithm>
#include <ctime>
#include <iostream>

namespace mh::list {

spool::Address parse_list(const std::string& text) { return spool::Address::parse(text); }

void require_list(const spool::Layout& layout, const spool::Address& list) {
  if (!spool::domain_exists(layout, list.domain()))
    throw spool::Error(spool::Errc::no_domain, "no such domain: " + list.domain().str());
  if (spool::list_exists(layout, list)) return;
  std::string message = "no such list: " + list.str();
  // The one mistake worth a hint: the name is an account (mh-user), not a list.
  if (spool::account_exists(layout, list)) message += " (" + list.str() + " is an account; see mh-user)";
  throw spool::Error(spool::Errc::no_account, message);
}

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string time_text(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return "";
  return spool::format_utc(std::chrono::system_clock::from_time_t(static_cast<std::time_t>(unix_seconds)));
}

std::string age_text(std::chrono::seconds age) {
  static constexpr std::pair<std::int64_t, char> units[] = {{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}};
  const std::int64_t s = age.count();
  for (const auto& [length, suffix] : units)
    if (s != 0 && s % length == 0) return std::to_string(s / length) + suffix;
  return std::to_string(s) + "s";
}

namespace {

using spool::utf8_sequence;  // spool/text.h: the one validator

constexpr const char* replacement = "\xEF\xBF\xBD";  // U+FFFD

} // namespace

std::string utf8_clean(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (std::size_t len = utf8_sequence(text, i)) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += replacement;
      ++i;
    }
  }
  return out;
}

std::string printable(std::string_view text) {
  std::string out;
  for (char c : utf8_clean(text)) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) out += replacement;
    else out += c;
  }
  return out;
}

std::string quoted_input(std::string_view text) {
  constexpr std::size_t shown = 80;
  std::size_t end = std::min(text.size(), shown);
  // Do not cut a UTF-8 character in half: back up to the start of the one at the cut.
  if (end < text.size())
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  const std::string_view cut = text.substr(0, end);
  return "\"" + printable(cut) + (cut.size() < text.size() ? "…" : "") + "\"";
}

nlohmann::json config_json(const spool::Address& list, const spool::ListConfig& c) {
  nlohmann::json moderators = nlohmann::json::array();
  for (const std::string& m : c.moderators) moderators.push_back(utf8_clean(m));
  return {{"list", list.str()},
          {"name", list.local().str()},
          {"domain", list.domain().str()},
          {"policy", std::string(spool::policy_name(c.policy))},
          {"admin", utf8_clean(c.admin)},
          {"max_size", c.max_size},
          {"subject_tag", utf8_clean(c.subject_tag)},
          {"bomb_posts", c.bomb_posts},
          {"bomb_age", c.bomb_age.count()},
          {"bomb_block", c.bomb_block.count()},
          {"confirm_expiry", c.confirm_expiry.count()},
          {"moderators", moderators},
          {"created", utf8_clean(c.created)}};
}

void warn(Result& result, const std::string& text) {
  std::cerr << "mh-list: warning: " << text << "\n";
  if (!result.data.contains("warnings")) result.data["warnings"] = nlohmann::json::array();
  result.data["warnings"].push_back(text);
}

void warn_if_unmoderated(Result& result, const spool::Address& list, const spool::ListConfig& config) {
  if (config.policy != spool::ListPolicy::moderators || !config.moderators.empty()) return;
  if (config.admin.empty())
    warn(result, "policy is moderators but " + list.str() +
                     " has no moderator and no admin address: posts wait in 'mh-list pending' until approved; "
                     "add a moderator (mh-list moderators add) or set --admin");
  else
    warn(result, "policy is moderators but " + list.str() + " has no moderator: posts go to the admin address " +
                     config.admin + " until one is added (mh-list moderators add)");
}

} // namespace mh::list
