// path.h — parsing the arguments of MAIL FROM and RCPT TO (RFC 5321 §4.1.2, §3.3).
// Accepts "FROM:<path> [params]" with the keyword in any case and, like most servers,
// spaces after the colon. The path must be in angle brackets; a source route
// ("<@a,@b:user@d>", §4.1.1.3) is dropped. Addresses are ASCII without controls or
// spaces (no SMTPUTF8 is advertised), at most 254 octets (§4.5.3.1.3 minus brackets),
// and need a non-empty local part and domain; only MAIL accepts the null path "<>".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mh::smtp {

struct PathCommand {
  enum class Problem { none, syntax, bad_address } problem = Problem::none;
  std::string address;                                     // without <>, "" = null path
  std::vector<std::pair<std::string, std::string>> params; // keyword upper-cased, value as is
};

// `args` is what follows the verb; `keyword` is "FROM:" or "TO:".
PathCommand parse_path_command(std::string_view args, std::string_view keyword, bool allow_null_path);

// True for an address as described above (local@domain, no brackets).
bool mailbox_syntax_ok(std::string_view address);

} // namespace mh::smtp
