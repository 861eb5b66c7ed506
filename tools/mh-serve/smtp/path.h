// path.h — parsing the arguments of MAIL FROM and RCPT TO (RFC 5321 §4.1.2, §3.3).
// Accepts "FROM:<path> [params]" with the keyword in any case and, like most servers,
// spaces after the colon. The path must be in angle brackets; a source route
// ("<@a,@b:user@d>", §4.1.1.3) is dropped. Addresses are ASCII without controls or
// spaces (no SMTPUTF8 is advertised), at most 254 octets (§4.5.3.1.3 minus brackets),
// and need a non-empty local part and domain; only MAIL accepts the null path "<>".
// SPEC §8 "Addresses": no '/' or '\' anywhere (not even in a quoted local part) and no
// empty, "." or ".." domain label, so no address can ever name a path in the spool or a
// queue file. RCPT alone accepts the bare "<postmaster>" (RFC 5321 §4.5.1, any case).
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
// `allow_bare_postmaster`: RCPT only; the address is then "postmaster" as written.
PathCommand parse_path_command(std::string_view args, std::string_view keyword, bool allow_null_path,
                               bool allow_bare_postmaster = false);

// True for an address as described above (local@domain, no brackets).
bool mailbox_syntax_ok(std::string_view address);

// True for "postmaster" in any case: the one address RFC 5321 §4.5.1 allows without a domain.
bool is_bare_postmaster(std::string_view address);

} // namespace mh::smtp
