// commands.h — mh-list's subcommands (one setup_* per file) and what they share: the
// list operand (LIST@DOMAIN through spool::Address::parse, so it is a valid name before
// it becomes a path), the "no such domain / no such list" checks (68 / 67), the JSON and
// text views of a list's settings, and the text safety rules: anything read back from
// the spool or stdin (subjects, posters, rejected input lines) is made valid UTF-8 for
// --json (nlohmann::json refuses anything else) and harmless for a terminal.
// Every change goes through libspool's mlist.h / list_mail.h, which validate again under
// the list's lock; the checks here only give the early, precise error.
#pragma once

#include "common/cli.h"

#include <spool/mlist.h>
#include <spool/names.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mh::list {

void setup_create(Tool& tool);
void setup_delete(Tool& tool);
void setup_show(Tool& tool);
void setup_set(Tool& tool);
void setup_list(Tool& tool);
void setup_members(Tool& tool);
void setup_moderators(Tool& tool);
void setup_pending(Tool& tool);
void setup_approve_reject(Tool& tool);
void setup_archive(Tool& tool);

// LIST@DOMAIN as typed; Error(invalid_input, 65) when it is not a valid list address.
spool::Address parse_list(const std::string& text);
// Error(no_domain, 68) / Error(no_account, 67) unless the list exists.
void require_list(const spool::Layout& layout, const spool::Address& list);

// The current time as unix seconds (what the library's `now` parameters take).
std::int64_t unix_now();
// RFC 3339 UTC ("2026-12-06T03:40:00Z"); "" for 0 (never / unknown).
std::string time_text(std::int64_t unix_seconds);
// The shortest exact age parse_age() reads back: 300 s → "5m", 3600 s → "1h", 90 s → "90s".
std::string age_text(std::chrono::seconds age);

// `text` with every invalid UTF-8 sequence replaced by U+FFFD (safe for nlohmann::json).
std::string utf8_clean(std::string_view text);
// utf8_clean() and control characters (but tab) shown as U+FFFD: safe on a terminal.
std::string printable(std::string_view text);
// An input line as an error message quotes it: printable, in double quotes, cut at 80.
std::string quoted_input(std::string_view text);

// The settings part of `show --json` and `set --json` (documented in mh-list(8)).
nlohmann::json config_json(const spool::Address& list, const spool::ListConfig& config);

// Prints "mh-list: warning: TEXT" on stderr (also under --quiet) and appends TEXT to
// result.data["warnings"].
void warn(Result& result, const std::string& text);
// The warning for a list whose policy is `moderators` but that has none (SPEC §7: its
// posts go to the admin address), when that is the case.
void warn_if_unmoderated(Result& result, const spool::Address& list, const spool::ListConfig& config);

} // namespace mh::list
