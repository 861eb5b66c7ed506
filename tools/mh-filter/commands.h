// commands.h — mh-filter's subcommands (one setup_* per file) and what they share: the
// JSON and text views of an account's filters, which forward profiles are inert and why,
// the 1-based numbers `show` prints, and warnings (stderr, and "warnings" in --json).
// Every change goes through spool::update_filters (domain lock, validation, atomic
// replace); a refused change throws before anything is written.
#pragma once

#include "common/cli.h"

#include <spool/filters.h>
#include <spool/names.h>
#include <spool/text.h>

#include <optional>
#include <string>
#include <vector>

namespace mh::filter {

void setup_show(Tool& tool);
void setup_forward(Tool& tool);
void setup_rule(Tool& tool);
void setup_autoreply(Tool& tool);
void setup_spam(Tool& tool);
void setup_test(Tool& tool);
void setup_export(Tool& tool);

// Why forward profile `index` (0-based) never runs, or nullopt when it may:
// "auto-reply is on" or "after profile N, which matches all mail".
std::optional<std::string> forward_inert_reason(const spool::FilterConfig& config, std::size_t index);

// YAML/CLI spellings of the actions.
std::string rule_action_name(spool::FilterRule::Action action);   // delete | bounce
std::string spam_action_name(spool::SpamFilter::Action action);   // tag | delete

// The `show --json` object (documented in mh-filter(8)) and its parts.
nlohmann::json filters_json(const spool::Address& address, const spool::FilterConfig& config);
nlohmann::json spam_json(const spool::SpamFilter& spam);
nlohmann::json rule_json(const spool::FilterConfig& config, std::size_t index);
nlohmann::json autoreply_json(const spool::AutoReply& autoreply);
nlohmann::json forward_json(const spool::FilterConfig& config, std::size_t index);

// One line per forward profile / rule, as `show` prints them (without the number).
std::string rule_text(const spool::FilterRule& rule);
std::string forward_text(const spool::ForwardProfile& profile);

// A 1-based position from the command line: "3" → 2. Throws Error(invalid_input) for
// anything but a positive decimal number, and "no WHAT N; the account has M" when it is
// past the end.
std::size_t parse_position(const std::string& text, const std::string& what, std::size_t count);

// Prints "mh-filter: warning: TEXT" on stderr (also under --quiet: it is not output but
// a diagnostic) and appends TEXT to result.data["warnings"].
void warn(Result& result, const std::string& text);

// `text` is valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
using spool::utf8_ok;

// The Sieve (RFC 5228) form of an account's filters; see export.cc for the mapping.
std::string sieve_script(const spool::Address& address, const spool::FilterConfig& config);

} // namespace mh::filter
