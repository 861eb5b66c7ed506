// from_header.cc — From: field extraction and a small RFC 5322 mailbox-list parser.
// Only the addr-specs matter for the policy, so display names (phrases, quoted strings,
// RFC 2047 encoded words, which are atoms to this grammar) are read and dropped.
#include "smtp/from_header.h"

#include <cctype>

namespace mh::smtp {
namespace {

struct Token {
  enum class Kind { atom, quoted, special, literal } kind;
  std::string text;  // quoted: unescaped content; special: the character
};

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_special(char c) {
  const std::string_view specials = "()<>[]:;@\\,.\"";
  return specials.find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Skips a comment starting at s[i] == '(' (nested, with quoted-pairs, RFC 5322 §3.2.2).
bool skip_comment(std::string_view s, std::size_t& i) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '(') {
      ++depth;
    } else if (s[i] == ')' && --depth == 0) {
      ++i;
      return true;
    }
  }
  return false;
}

// Reads a quoted string or domain literal starting at s[i] (the opening character).
// No control character, quoted-pair or not (RFC 5322 keeps them only as obsolete
// syntax): an address holding a NUL or CR must never come out of here (found by fuzzing).
bool read_delimited(std::string_view s, std::size_t& i, char close, std::string& text) {
  for (++i; i < s.size(); ++i) {
    const bool escaped = s[i] == '\\' && i + 1 < s.size();
    if (escaped) ++i;  // a quoted-pair: the next character as itself
    const auto u = static_cast<unsigned char>(s[i]);
    if ((u < 0x20 && s[i] != '\t') || u == 0x7f) return false;
    if (!escaped && s[i] == close) {
      ++i;
      return true;
    }
    text += s[i];
  }
  return false;
}

std::optional<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_wsp(c)) {
      ++i;
    } else if (c == '(') {
      if (!skip_comment(s, i)) return std::nullopt;
    } else if (c == '"') {
      Token t{Token::Kind::quoted, {}};
      if (!read_delimited(s, i, '"', t.text)) return std::nullopt;
      out.push_back(std::move(t));
    } else if (c == '[') {
      Token t{Token::Kind::literal, "["};
      if (!read_delimited(s, i, ']', t.text)) return std::nullopt;
      t.text += ']';
      out.push_back(std::move(t));
    } else if (is_special(c)) {
      out.push_back({Token::Kind::special, std::string(1, c)});
      ++i;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return std::nullopt;  // a control character has no place in a header value
    } else {
      const std::size_t start = i;
      while (i < s.size() && !is_wsp(s[i]) && !is_special(s[i]) && static_cast<unsigned char>(s[i]) >= 0x20 &&
             s[i] != 0x7f)
        ++i;
      out.push_back({Token::Kind::atom, std::string(s.substr(start, i - start))});
    }
  }
  return out;
}

bool is(const Token& t, char c) { return t.kind == Token::Kind::special && t.text[0] == c; }
bool is_word(const Token& t) { return t.kind == Token::Kind::atom || t.kind == Token::Kind::quoted; }

// addr-spec = local-part "@" domain (RFC 5322 §3.4.1), from tokens [b, e).
std::optional<std::string> addr_spec(const std::vector<Token>& t, std::size_t b, std::size_t e) {
  std::string local;
  std::size_t i = b;
  for (;;) {
    if (i >= e || !is_word(t[i])) return std::nullopt;
    local += t[i++].text;
    if (i < e && is(t[i], '.')) {
      local += '.';
      ++i;
      continue;
    }
    break;
  }
  if (i >= e || !is(t[i], '@') || local.empty()) return std::nullopt;
  ++i;
  std::string domain;
  if (i < e && t[i].kind == Token::Kind::literal) {
    domain = t[i++].text;
  } else {
    for (;;) {
      if (i >= e || t[i].kind != Token::Kind::atom) return std::nullopt;
      domain += t[i++].text;
      if (i < e && is(t[i], '.')) {
        domain += '.';
        ++i;
        continue;
      }
      break;
    }
  }
  if (i != e) return std::nullopt;
  return local + "@" + domain;
}

// mailbox = name-addr / addr-spec, from tokens [b, e).
std::optional<std::string> mailbox(const std::vector<Token>& t, std::size_t b, std::size_t e) {
  std::size_t open = b;
  while (open < e && !is(t[open], '<')) ++open;
  if (open == e) return addr_spec(t, b, e);
  // display-name = phrase: words (obs-phrase also allows "."); no ':' (a group) or '@'.
  for (std::size_t i = b; i < open; ++i)
    if (!is_word(t[i]) && !is(t[i], '.')) return std::nullopt;
  if (e - open < 2 || !is(t[e - 1], '>')) return std::nullopt;
  return addr_spec(t, open + 1, e - 1);  // an obs-route ("@a,@b:") fails here: refused
}

// The value of the single From: field, unfolded; nullopt when absent or repeated.
std::optional<std::string> from_value(std::string_view head) {
  std::optional<std::string> value;
  bool in_from = false;
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t lf = head.find('\n', pos);
    if (lf == std::string_view::npos) lf = head.size();
    std::string_view line = head.substr(pos, lf - pos);
    pos = lf + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header block
    if (line[0] == ' ' || line[0] == '\t') {
      if (in_from) *value += line;  // RFC 5322 §2.2.3: unfolding removes only the CRLF
      continue;
    }
    const auto colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);  // obs-optional
    in_from = colon != std::string_view::npos && lower(name) == "from";
    if (!in_from) continue;
    if (value) return std::nullopt;
    value = std::string(line.substr(colon + 1));
  }
  return value;
}

} // namespace

std::optional<std::vector<std::string>> from_addresses(std::string_view head) {
  const std::optional<std::string> value = from_value(head);
  if (!value) return std::nullopt;
  const auto tokens = tokenize(*value);
  if (!tokens || tokens->empty()) return std::nullopt;
  std::vector<std::string> out;
  const std::vector<Token>& t = *tokens;
  std::size_t start = 0;
  bool in_angle = false;
  for (std::size_t i = 0; i <= t.size(); ++i) {
    if (i < t.size() && is(t[i], '<')) in_angle = true;
    if (i < t.size() && is(t[i], '>')) in_angle = false;
    if (i < t.size() && !(is(t[i], ',') && !in_angle)) continue;
    auto address = mailbox(t, start, i);
    if (!address) return std::nullopt;
    out.push_back(std::move(*address));
    start = i + 1;
  }
  return out;
}

bool from_header_ok(FromPolicy policy, std::string_view head, std::string_view account) {
  if (policy == FromPolicy::any) return true;
  const auto addresses = from_addresses(head);
  if (!addresses) return false;
  const std::string own = lower(account);
  const std::string own_domain = own.substr(own.rfind('@') + 1);
  for (const std::string& a : *addresses) {
    const std::string address = lower(a);
    const bool ok = policy == FromPolicy::own_address ? address == own
                                                      : address.substr(address.rfind('@') + 1) == own_domain;
    if (!ok) return false;
  }
  return true;
}

} // namespace mh::smtp
