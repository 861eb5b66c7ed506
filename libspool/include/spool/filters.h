// filters.h — an account's filters.yaml (SPEC §6) as a plain struct: spam setting,
// delete/bounce rules, auto-reply, forward profiles. Conditions are stored as the text
// an administrator typed (`subject contains 重要`) and parsed on load, so the file reads
// like the command line and a hand-broken condition is an error naming file and line.
// Loading is strict like every spool file (unknown key → Error(bad_config)) and cached
// by file identity (a delivery costs no YAML parse); a missing file means no filters.
// Writers hold the domain lock (update_filters), as for account.yaml.
#pragma once

#include "spool/layout.h"
#include "spool/names.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

inline constexpr std::size_t max_forward_profiles = 10;      // SPEC §10: 10 × 5
inline constexpr std::size_t max_forward_destinations = 5;
inline constexpr std::uint32_t default_autoreply_days = 7;
inline constexpr std::uint32_t max_autoreply_days = 365;
inline constexpr std::size_t max_condition_text = 1024;       // bytes of TEXT in a condition
inline constexpr std::size_t max_rules = 100;
inline constexpr std::size_t max_autoreply_message = 64 * 1024;
inline constexpr std::size_t max_autoreply_subject = 256;      // bytes, one line
inline constexpr std::size_t max_spam_tag = 64;                // bytes of the Subject prefix
inline constexpr std::size_t max_forward_destination_length = 254;  // RFC 5321 path minus <>
inline constexpr std::size_t max_filters_file = 1024 * 1024;   // a bigger filters.yaml is refused

// `all`, `size > SIZE`, or `FIELD OP TEXT` (SPEC §6).
struct Condition {
  enum class Kind { all, size_over, field } kind = Kind::all;
  enum class Field { from, to, cc, subject, header } field = Field::subject;
  enum class Op { contains, is, matches } op = Op::contains;
  std::string header_name;   // Field::header: the field name as given (matched case-insensitively)
  std::string text;          // UTF-8, as given (folding happens when matching)
  std::uint64_t size = 0;    // Kind::size_over: bytes

  // The canonical text form, which parse_condition() reads back to an equal Condition:
  // "all", "size > 1M" (format_size_exact), "subject contains 重要", "header X-Mailer is foo".
  std::string str() const;
  bool operator==(const Condition&) const = default;
};

// Parses one COND argument. Throws Error(invalid_input) whose message shows where it
// went wrong: "in 'subjet contains x' at column 1: unknown field 'subjet' (expected all,
// size, from, to, cc, subject, header)" (columns count characters, from 1). Keywords are
// case-insensitive, tokens are separated by spaces or tabs. TEXT may hold spaces and
// any script; leading and trailing spaces/tabs are dropped, the rest is kept as is and
// must be valid UTF-8 without control characters, 1..max_condition_text bytes.
Condition parse_condition(std::string_view text);

struct SpamFilter {
  bool enabled = false;
  enum class Action { tag, discard } action = Action::tag;   // YAML: tag | delete
  std::string tag = "[SPAM]";                                 // Subject prefix for `tag`
  bool operator==(const SpamFilter&) const = default;
};

struct FilterRule {
  Condition condition;
  enum class Action { discard, bounce } action = Action::discard;  // YAML: delete | bounce
  bool operator==(const FilterRule&) const = default;
};

struct AutoReply {
  bool enabled = false;
  std::string subject;                         // "" = "Auto: " + the original subject
  std::string message;                         // UTF-8 body text
  std::uint32_t days = default_autoreply_days; // answer each sender at most once per N days
  bool operator==(const AutoReply&) const = default;
};

struct ForwardProfile {
  Condition condition;                          // Kind::all ends the list (later profiles inert)
  std::vector<std::string> destinations;        // 1..5 full addresses, as validated
  bool keep = true;                             // keep a copy in the mailbox
  bool operator==(const ForwardProfile&) const = default;
};

struct FilterConfig {
  SpamFilter spam;
  std::vector<FilterRule> rules;
  AutoReply autoreply;
  std::vector<ForwardProfile> forwards;
  bool empty() const { return !spam.enabled && rules.empty() && !autoreply.enabled && forwards.empty(); }
  bool operator==(const FilterConfig&) const = default;
};

// Checks a forward destination for `account` and returns it normalised (domain lower
// case, IDN → punycode). Throws Error(invalid_input) for anything that is not a plain
// mailbox: a program (`|cmd`), a path (`/etc/passwd`), an address without a domain,
// control characters, or the account itself (a forward to oneself is a loop).
std::string check_forward_destination(const Address& account, std::string_view destination);

// Whole-config checks the tools and the loader share: at most 10 profiles, 1..5
// distinct destinations each, each destination valid, at most max_rules rules, every
// condition in canonical form, autoreply days 1..365, message/subject/spam tag size and
// UTF-8. Throws Error(invalid_input) naming the problem with 1-based numbers as
// `mh-filter show` lists them: "forward profile 2, destination 3: …", "rule 4: …".
void validate_filter_config(const Address& account, const FilterConfig& config);

// Strict load (missing file → empty config); errors are Error(bad_config) "file:line: key 'k': …".
FilterConfig load_filter_config(const std::filesystem::path& file, const Address& account);
void save_filter_config(const std::filesystem::path& file, const FilterConfig& config);

// The account's filters (Error(no_domain)/Error(no_account) when they do not exist).
FilterConfig read_filters(const Layout& layout, const Address& account);
// Read-modify-write under the domain lock; the change may throw to abandon it. The result
// must pass validate_filter_config() or nothing is written; destinations are stored
// normalised (check_forward_destination).
void update_filters(const Layout& layout, const Address& account, const std::function<void(FilterConfig&)>& change);

} // namespace spool
