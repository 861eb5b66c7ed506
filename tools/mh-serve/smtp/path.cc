// path.cc — MAIL/RCPT argument parsing; see path.h for what is accepted.
#include "smtp/path.h"
#include "text.h"

#include <algorithm>

namespace mh::smtp {
namespace {

constexpr std::size_t max_address_length = 254;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'a' && x <= 'z' ? x - 32 : x) == (y >= 'a' && y <= 'z' ? y - 32 : y);
         });
}

using text::upper;

bool printable_ascii(char c) { return c > 0x20 && c < 0x7f; }

// Path characters (SPEC §8): refused in every part of an address, quoted or not.
bool path_char(char c) { return c == '/' || c == '\\'; }

// Every label non-empty: "a..b", ".a", "a." and the ".." of "d/../x" are refused.
bool domain_labels_ok(std::string_view domain) {
  for (std::size_t start = 0;;) {
    const auto dot = domain.find('.', start);
    if ((dot == std::string_view::npos ? domain.size() : dot) == start) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string_view skip_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

} // namespace

bool mailbox_syntax_ok(std::string_view address) {
  if (address.empty() || address.size() > max_address_length) return false;
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size()) return false;
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.size() > 64) return false;  // §4.5.3.1.1
  const bool quoted = local.size() >= 2 && local.front() == '"' && local.back() == '"';
  for (char c : local)
    if (!(printable_ascii(c) || (quoted && c == ' ')) || path_char(c)) return false;
  if (!quoted && local.find('@') != std::string_view::npos) return false;
  for (char c : domain)
    if (!printable_ascii(c) || c == '@' || c == '<' || c == '>' || path_char(c)) return false;
  return domain_labels_ok(domain);
}

bool is_bare_postmaster(std::string_view address) { return iequals(address, "postmaster"); }

PathCommand parse_path_command(std::string_view args, std::string_view keyword, bool allow_null_path,
                               bool allow_bare_postmaster) {
  PathCommand out;
  if (args.size() < keyword.size() || !iequals(args.substr(0, keyword.size()), keyword)) {
    out.problem = PathCommand::Problem::syntax;
    return out;
  }
  std::string_view rest = skip_spaces(args.substr(keyword.size()));
  if (rest.empty() || rest.front() != '<') {
    out.problem = PathCommand::Problem::syntax;
    return out;
  }
  const auto close = rest.find('>');
  if (close == std::string_view::npos) {
    out.problem = PathCommand::Problem::syntax;
    return out;
  }
  std::string_view path = rest.substr(1, close - 1);
  rest = rest.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ') {
    out.problem = PathCommand::Problem::syntax;
    return out;
  }
  // §4.1.1.3: a source route is accepted and ignored.
  if (!path.empty() && path.front() == '@') {
    const auto colon = path.find(':');
    if (colon == std::string_view::npos) {
      out.problem = PathCommand::Problem::bad_address;
      return out;
    }
    path.remove_prefix(colon + 1);
  }
  const bool acceptable = path.empty() ? allow_null_path
                                       : mailbox_syntax_ok(path) || (allow_bare_postmaster && is_bare_postmaster(path));
  if (!acceptable) {
    out.problem = PathCommand::Problem::bad_address;
    return out;
  }
  out.address = std::string(path);
  for (rest = skip_spaces(rest); !rest.empty(); rest = skip_spaces(rest)) {
    const auto end = std::min(rest.find(' '), rest.size());
    const std::string_view param = rest.substr(0, end);
    rest.remove_prefix(end);
    const auto eq = param.find('=');
    std::string key = upper(param.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : std::string(param.substr(eq + 1));
    if (key.empty()) {
      out.problem = PathCommand::Problem::syntax;
      return out;
    }
    out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

} // namespace mh::smtp
