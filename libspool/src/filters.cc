// filters.cc — an account's filters.yaml (SPEC §6): the COND parser, the forward
// destination check, the whole-config limits, strict load/save, and the locked
// read-modify-write. Trusts nothing it reads: a hand-edited file is checked exactly like
// a command line, and a broken one is Error(bad_config) "FILE:LINE: key 'k': why".
//
// COND (one shell argument, or the string of an `if:` key):
//   all | size > SIZE | FIELD OP TEXT
//   FIELD = from | to | cc | subject | header NAME      OP = contains | is | matches
// Keywords are case-insensitive; tokens are separated by one or more spaces or tabs.
// SIZE is binary (500K, 2M: units.h). NAME is an RFC 5322 field name (printable ASCII
// 33..126 except ':'), kept as written. TEXT is the rest of the argument after the
// operator, kept byte for byte except that leading and trailing spaces and tabs are
// dropped; it must be 1..max_condition_text bytes of valid UTF-8 without control
// characters (a tab or line break inside TEXT is refused, not folded). The canonical
// form (Condition::str) is lower-case keywords, single spaces, and SIZE as
// format_size_exact() writes it: "size > 2M", "header X-Mailer is foo bar".
//
// The file, as save_filter_config() writes it (mailhost(5) copies this):
//
//   # filters.yaml — managed by mh-filter; see mailhost(5)
//   spam: {action: tag, tag: "[SPAM]"}
//   rules:
//     - {if: "subject contains 未承諾広告", action: delete}
//     - {if: "size > 10M", action: bounce}
//   autoreply:
//     subject: "Away"
//     days: 7
//     message: "I am away until Monday.\nUrgent matters: office@example.org\n"
//   forward:
//     - {if: "from contains boss", to: ["me@example.net"], keep: false}
//     - {if: "all", to: ["a@example.org", "b@example.org"], keep: true}
//
//   spam       absent = spam filter off. action: tag | delete (required);
//              tag: Subject prefix for `tag`, default "[SPAM]", at most 64 bytes, no
//              control characters.
//   rules      SPEC §6 step 2, in order, at most 100. if: COND (required);
//              action: delete | bounce (required).
//   autoreply  absent = off. message: body text (required, UTF-8, at most 64 KiB; tab
//              and line breaks allowed, other control characters not);
//              subject: default "" = "Auto: " + the original subject (one line, at
//              most 256 bytes); days: 1..365, default 7.
//   forward    the forward profiles, in order, at most 10. if: COND (required);
//              to: one address or a list of 1..5 (required; plain local@domain, no
//              program or file, not the account itself; an IDN domain is stored as
//              punycode); keep: true | false, default true (keep a copy in the mailbox).
// Strings are written double-quoted with YAML escapes ("\n", "\"", "\\"), so any text
// reads back exactly. Unknown keys, duplicate keys, wrong types, a second YAML document,
// or a file over max_filters_file bytes are bad_config. A missing file means no filters;
// a file holding only the comment is the same. Only enabled parts are written: turning
// the spam filter or the auto-reply off forgets its settings.
#include "spool/filters.h"

#include "spool/accounts.h"
#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/lock.h"
#include "spool/units.h"

#include "yaml_reader.h"

#include <cstdio>
#include <optional>

namespace spool {
namespace {

namespace fs = std::filesystem;
using detail::ParsedCache;
using detail::Reader;

// --- UTF-8 text checks ---

// Decodes the UTF-8 sequence at s[i] into `cp`; returns its length, or 0 when it is not
// valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_char(std::string_view s, std::size_t i, char32_t& cp) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  std::size_t len = 0;
  char32_t min = 0;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// C0 controls, DEL and the C1 controls (U+0080..U+009F).
bool is_control(char32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f); }

struct TextProblem {
  std::size_t offset;  // byte offset of the offending character
  std::string what;  // "is not valid UTF-8", "holds control character U+0007"
};

// Whether `s` is valid UTF-8 without control characters; `multi_line` allows tab, CR
// and LF (a message body), a one-line text allows none.
std::optional<TextProblem> text_problem(std::string_view s, bool multi_line) {
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t len = utf8_char(s, i, cp);
    if (len == 0) return TextProblem{i, "is not valid UTF-8"};
    if (is_control(cp) && !(multi_line && (cp == '\t' || cp == '\n' || cp == '\r'))) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "%04X", static_cast<unsigned>(cp));
      return TextProblem{i, std::string("holds control character U+") + hex};
    }
    i += len;
  }
  return std::nullopt;
}

// `s` for an error message: at most `max_chars` characters, tab shown as a space and
// every other control character or invalid byte as U+FFFD, so what a terminal shows
// lines up with the column numbers below and cannot drive the terminal.
std::string shown(std::string_view s, std::size_t max_chars = 100) {
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++chars) {
    if (chars == max_chars) return out + "…";
    char32_t cp = 0;
    const std::size_t len = utf8_char(s, i, cp);
    if (len == 0) {
      out += "\uFFFD";
      ++i;
      continue;
    }
    if (cp == '\t') out += ' ';
    else if (is_control(cp)) out += "\uFFFD";
    else out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

// 1-based column of byte `offset` in characters (an invalid byte counts as one).
std::size_t column_of(std::string_view s, std::size_t offset) {
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset && i < s.size(); ++column) {
    char32_t cp = 0;
    const std::size_t len = utf8_char(s, i, cp);
    i += len == 0 ? 1 : len;
  }
  return column;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// --- conditions ---

const char* const expected_fields = "(expected all, size, from, to, cc, subject, header)";
const char* const expected_ops = "(expected contains, is, matches)";
const char* const size_usage = "(write it as: size > SIZE, e.g. size > 500K)";

// Longest header field name accepted. RFC 5322 sets none below its 998-byte line; real
// names are short, and a condition is an admin's input with a limit like every other.
constexpr std::size_t max_header_name_length = 128;

// Walks one COND left to right; every error names the column it stopped at.
class ConditionParser {
public:
  explicit ConditionParser(std::string_view in) : in_(in) {}

  Condition parse() {
    Condition c;
    const std::string_view first = word();
    if (first.empty()) fail(start_, std::string("empty condition ") + expected_fields);
    const std::string field = lower_ascii(first);
    if (field == "all") {
      if (!at_end()) fail(pos_, "nothing may follow 'all', got '" + shown(rest(), 40) + "'");
      return c;
    }
    if (field == "size") return parse_size_condition(c);
    if (field.rfind("size>", 0) == 0) fail(start_ + 4, std::string("expected a space after 'size' ") + size_usage);
    c.kind = Condition::Kind::field;
    if (field == "from") c.field = Condition::Field::from;
    else if (field == "to") c.field = Condition::Field::to;
    else if (field == "cc") c.field = Condition::Field::cc;
    else if (field == "subject") c.field = Condition::Field::subject;
    else if (field == "header") c.field = Condition::Field::header;
    else fail(start_, "unknown field '" + shown(first, 40) + "' " + expected_fields);
    std::string after = field;
    if (c.field == Condition::Field::header) {
      c.header_name = std::string(word());
      check_header_name(c.header_name);
      after = c.header_name;
    }
    const std::string_view op_word = word();
    if (op_word.empty()) fail(start_, "missing operator after '" + after + "' " + expected_ops);
    const std::string op = lower_ascii(op_word);
    if (op == "contains") c.op = Condition::Op::contains;
    else if (op == "is") c.op = Condition::Op::is;
    else if (op == "matches") c.op = Condition::Op::matches;
    else fail(start_, "unknown operator '" + shown(op_word, 40) + "' " + expected_ops);
    c.text = std::string(text());
    return c;
  }

private:
  [[noreturn]] void fail(std::size_t offset, const std::string& what) const {
    throw Error(Errc::invalid_input,
                "in '" + shown(in_) + "' at column " + std::to_string(column_of(in_, offset)) + ": " + what);
  }

  static bool is_space(char c) { return c == ' ' || c == '\t'; }

  void skip_space() {
    while (pos_ < in_.size() && is_space(in_[pos_])) ++pos_;
  }

  // The next token; empty at the end, with start_ at the end of the input.
  std::string_view word() {
    skip_space();
    start_ = pos_;
    while (pos_ < in_.size() && !is_space(in_[pos_])) ++pos_;
    return in_.substr(start_, pos_ - start_);
  }

  bool at_end() {
    skip_space();
    return pos_ == in_.size();
  }

  std::string_view rest() const { return in_.substr(pos_); }

  Condition parse_size_condition(Condition& c) {
    c.kind = Condition::Kind::size_over;
    const std::string_view gt = word();
    if (gt.empty()) fail(start_, std::string("missing '>' after 'size' ") + size_usage);
    if (gt != ">") fail(start_, "expected '>' after 'size', got '" + shown(gt, 40) + "' " + size_usage);
    const std::string_view number = word();
    if (number.empty()) fail(start_, std::string("missing the size after 'size >' ") + size_usage);
    try {
      c.size = parse_size(number);
    } catch (const Error& e) {
      fail(start_, e.what());
    }
    if (!at_end()) fail(pos_, "nothing may follow the size, got '" + shown(rest(), 40) + "'");
    return c;
  }

  void check_header_name(const std::string& name) {
    if (name.empty()) fail(start_, "missing the field name after 'header' (e.g. header X-Mailer contains foo)");
    if (name.size() > max_header_name_length)
      fail(start_, "header field name longer than " + std::to_string(max_header_name_length) + " bytes");
    for (std::size_t i = 0; i < name.size(); ++i) {
      const auto ch = static_cast<unsigned char>(name[i]);
      if (ch < 33 || ch > 126 || ch == ':')
        fail(start_ + i, "'" + shown(name, 40) +
                             "' is not a header field name (printable ASCII without ':', RFC 5322 §3.6.8)");
    }
  }

  // TEXT: the rest of the input, without the separator before it and trailing blanks.
  std::string_view text() {
    skip_space();
    std::size_t end = in_.size();
    while (end > pos_ && is_space(in_[end - 1])) --end;
    const std::string_view t = in_.substr(pos_, end - pos_);
    if (t.empty()) fail(pos_, "missing the text to compare with after the operator");
    if (t.size() > max_condition_text)
      fail(pos_, "the text is " + std::to_string(t.size()) + " bytes, at most " +
                     std::to_string(max_condition_text));
    if (auto problem = text_problem(t, /*multi_line=*/false))
      fail(pos_ + problem->offset, "the text " + problem->what);
    return t;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::size_t start_ = 0;
};

const char* field_name(Condition::Field f) {
  switch (f) {
    case Condition::Field::from: return "from";
    case Condition::Field::to: return "to";
    case Condition::Field::cc: return "cc";
    case Condition::Field::subject: return "subject";
    case Condition::Field::header: return "header";
  }
  return "?";
}

const char* op_name(Condition::Op op) {
  switch (op) {
    case Condition::Op::contains: return "contains";
    case Condition::Op::is: return "is";
    case Condition::Op::matches: return "matches";
  }
  return "?";
}

// A condition held in a FilterConfig must be one parse_condition() produces: its text
// form reads back to itself. A program that built one by hand with, say, a TEXT ending
// in a space or a tab in it would otherwise save a file that does not load.
void check_condition(const Condition& c, const std::string& what) {
  Condition back;
  try {
    back = parse_condition(c.str());
  } catch (const Error& e) {
    throw Error(Errc::invalid_input, what + ": " + e.what());
  }
  if (!(back == c))
    throw Error(Errc::invalid_input, what + ": condition '" + shown(c.str()) +
                                         "' does not read back as itself (TEXT with leading or trailing blanks?)");
}

// --- the single-value checks shared by validate_filter_config() and the loader ---

std::optional<std::string> spam_tag_problem(const std::string& tag) {
  if (tag.size() > max_spam_tag)
    return "the spam tag is " + std::to_string(tag.size()) + " bytes, at most " + std::to_string(max_spam_tag);
  if (auto p = text_problem(tag, false)) return "the spam tag " + p->what;
  return std::nullopt;
}

std::optional<std::string> autoreply_subject_problem(const std::string& subject) {
  if (subject.size() > max_autoreply_subject)
    return "the auto-reply subject is " + std::to_string(subject.size()) + " bytes, at most " +
           std::to_string(max_autoreply_subject);
  if (auto p = text_problem(subject, false)) return "the auto-reply subject " + p->what;
  return std::nullopt;
}

std::optional<std::string> autoreply_message_problem(const std::string& message) {
  if (message.size() > max_autoreply_message)
    return "the auto-reply message is " + std::to_string(message.size()) + " bytes, at most " +
           std::to_string(max_autoreply_message);
  if (auto p = text_problem(message, true))
    return "the auto-reply message " + p->what + " (at byte " + std::to_string(p->offset + 1) + ")";
  return std::nullopt;
}

std::optional<std::string> autoreply_days_problem(std::uint32_t days) {
  if (days < 1 || days > max_autoreply_days)
    return "auto-reply days must be 1.." + std::to_string(max_autoreply_days) + ", got " + std::to_string(days);
  return std::nullopt;
}

// --- filters.yaml ---

Condition condition_at(const Reader& r, const YAML::Node& n, const std::string& key) {
  const std::string text = r.str(n, key);
  try {
    return parse_condition(text);
  } catch (const Error& e) {
    r.fail(n, key, e.what());
  }
}

std::string destination_at(const Reader& r, const YAML::Node& n, const std::string& key, const Address& account) {
  const std::string text = r.str(n, key);
  try {
    return check_forward_destination(account, text);
  } catch (const Error& e) {
    r.fail(n, key, e.what());
  }
}

// A list key: null (written as `rules:` with nothing after it) is an empty list.
bool list_at(const Reader& r, const YAML::Node& n, const std::string& key, const char* shape) {
  if (n.IsNull()) return false;
  if (!n.IsSequence()) r.fail(n, key, std::string("expected a list of ") + shape);
  return true;
}

void map_at(const Reader& r, const YAML::Node& n, const std::string& key, const char* shape) {
  if (!n.IsMap()) r.fail(n, key, std::string("expected a mapping like ") + shape);
}

FilterConfig parse_filter_config(const fs::path& file, const std::string& text, const Address& account) {
  static_assert(max_filters_file == detail::max_small_file, "the cache's read enforces the limit");
  Reader r(file);
  const YAML::Node root = r.parse(text);
  r.only_keys(root, {"spam", "rules", "autoreply", "forward"});
  FilterConfig c;

  if (const YAML::Node spam = root["spam"]) {
    map_at(r, spam, "spam", "{action: tag, tag: \"[SPAM]\"} (remove the key to turn the spam filter off)");
    r.only_keys(spam, {"action", "tag"}, "spam.");
    r.require_keys(spam, {"action"}, "spam.");
    c.spam.enabled = true;
    c.spam.action = r.state(spam["action"], "spam.action", "tag", "delete") == "tag" ? SpamFilter::Action::tag
                                                                                     : SpamFilter::Action::discard;
    if (const YAML::Node tag = spam["tag"]) {
      c.spam.tag = r.str(tag, "spam.tag");
      if (auto why = spam_tag_problem(c.spam.tag)) r.fail(tag, "spam.tag", *why);
    }
  }

  if (const YAML::Node rules = root["rules"]; rules && list_at(r, rules, "rules", "{if: COND, action: delete|bounce}")) {
    for (std::size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node item = rules[i];
      const std::string key = "rules[" + std::to_string(i + 1) + "]";
      if (i == max_rules) r.fail(item, key, "at most " + std::to_string(max_rules) + " rules");
      map_at(r, item, key, "{if: COND, action: delete|bounce}");
      r.only_keys(item, {"if", "action"}, key + ".");
      r.require_keys(item, {"if", "action"}, key + ".");
      FilterRule rule;
      rule.condition = condition_at(r, item["if"], key + ".if");
      rule.action = r.state(item["action"], key + ".action", "delete", "bounce") == "delete"
                        ? FilterRule::Action::discard
                        : FilterRule::Action::bounce;
      c.rules.push_back(std::move(rule));
    }
  }

  if (const YAML::Node ar = root["autoreply"]) {
    map_at(r, ar, "autoreply", "{message: \"…\", subject: \"…\", days: 7} (remove the key to turn it off)");
    r.only_keys(ar, {"subject", "days", "message"}, "autoreply.");
    r.require_keys(ar, {"message"}, "autoreply.");
    c.autoreply.enabled = true;
    c.autoreply.message = r.str(ar["message"], "autoreply.message");
    if (auto why = autoreply_message_problem(c.autoreply.message)) r.fail(ar["message"], "autoreply.message", *why);
    if (const YAML::Node subject = ar["subject"]) {
      c.autoreply.subject = r.str(subject, "autoreply.subject");
      if (auto why = autoreply_subject_problem(c.autoreply.subject)) r.fail(subject, "autoreply.subject", *why);
    }
    if (const YAML::Node days = ar["days"]) c.autoreply.days = r.number(days, "autoreply.days", 1, max_autoreply_days);
  }

  const char* profile_shape = "{if: COND, to: [ADDRESS, …], keep: true}";
  if (const YAML::Node fw = root["forward"]; fw && list_at(r, fw, "forward", profile_shape)) {
    for (std::size_t i = 0; i < fw.size(); ++i) {
      const YAML::Node item = fw[i];
      const std::string key = "forward[" + std::to_string(i + 1) + "]";
      if (i == max_forward_profiles)
        r.fail(item, key, "at most " + std::to_string(max_forward_profiles) + " forward profiles");
      map_at(r, item, key, profile_shape);
      r.only_keys(item, {"if", "to", "keep"}, key + ".");
      r.require_keys(item, {"if", "to"}, key + ".");
      ForwardProfile p;
      p.condition = condition_at(r, item["if"], key + ".if");
      const YAML::Node to = item["to"];
      if (to.IsScalar()) {
        p.destinations.push_back(destination_at(r, to, key + ".to", account));
      } else if (to.IsSequence()) {
        for (std::size_t j = 0; j < to.size(); ++j) {
          const std::string dkey = key + ".to[" + std::to_string(j + 1) + "]";
          if (j == max_forward_destinations)
            r.fail(to[j], dkey, "at most " + std::to_string(max_forward_destinations) + " destinations in a profile");
          std::string d = destination_at(r, to[j], dkey, account);
          for (std::size_t k = 0; k < p.destinations.size(); ++k)
            if (p.destinations[k] == d) r.fail(to[j], dkey, "'" + d + "' repeats destination " + std::to_string(k + 1));
          p.destinations.push_back(std::move(d));
        }
      } else if (!to.IsNull()) {
        r.fail(to, key + ".to", "expected an address or a list of addresses");
      }
      if (p.destinations.empty())
        r.fail(to, key + ".to", "no destination (a profile forwards to 1.." + std::to_string(max_forward_destinations) +
                                    " addresses)");
      if (const YAML::Node keep = item["keep"]) p.keep = r.boolean(keep, key + ".keep");
      c.forwards.push_back(std::move(p));
    }
  }
  return c;
}

// A domain or account that does not exist is its own error, not an empty config. The
// symlink check first, as accounts.cc does: a planted link is never followed.
void require_account(const Layout& layout, const Address& account) {
  layout.verify_no_symlinks(layout.filters_config(account));
  if (!domain_exists(layout, account.domain()))
    throw Error(Errc::no_domain, "no such domain: " + account.domain().str());
  if (!account_exists(layout, account)) throw Error(Errc::no_account, "no such account: " + account.str());
}

// Removes temp files of `file` that a writer killed between create and rename left
// behind (".<name>.tmp.<pid>..."). Callers hold the domain lock every writer holds.
void sweep_temp_files(const fs::path& file) {
  const std::string prefix = "." + file.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(file.parent_path(), ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) fs::remove(entry.path(), ec);
}

} // namespace

std::string Condition::str() const {
  switch (kind) {
    case Kind::all: return "all";
    case Kind::size_over: return "size > " + format_size_exact(size);
    case Kind::field: break;
  }
  std::string out = field_name(field);
  if (field == Field::header) out += " " + header_name;
  return out + " " + op_name(op) + " " + text;
}

Condition parse_condition(std::string_view text) { return ConditionParser(text).parse(); }

std::string check_forward_destination(const Address& account, std::string_view destination) {
  const auto refuse = [&](const std::string& why) {
    return Error(Errc::invalid_input, "forward destination '" + shown(destination) + "': " + why);
  };
  const char* const expected = "expected a full address like user@example.org";
  if (destination.empty()) throw Error(Errc::invalid_input, std::string("empty forward destination (") + expected + ")");
  // SPEC §6: running a program on arrival is not offered, and neither is writing a file.
  if (destination.front() == '|') throw refuse("a forward to a program is not possible");
  if (destination.front() == '/' || destination.find('/') != std::string_view::npos)
    throw refuse(std::string("a forward to a file is not possible (") + expected + ")");
  if (destination.size() > max_forward_destination_length)
    throw refuse(std::to_string(destination.size()) + " bytes, at most " + std::to_string(max_forward_destination_length));
  for (char ch : destination) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) throw refuse("contains a space or a control character");
  }
  if (destination.find_first_of("\"'\\") != std::string_view::npos)
    throw refuse("quotes and backslashes are not accepted in a forward destination");
  const std::size_t at = destination.find('@');
  if (at == std::string_view::npos) throw refuse(std::string("no '@' (") + expected + ")");
  if (destination.find('@', at + 1) != std::string_view::npos) throw refuse("more than one '@'");
  const std::string_view local = destination.substr(0, at);
  if (local.empty()) throw refuse("the local part before '@' is empty");
  // RFC 5321 §4.1.2 Dot-string of atext; non-ASCII would need SMTPUTF8 all the way.
  if (local.size() > 64) throw refuse("the local part is longer than 64 bytes (RFC 5321 §4.5.3.1.1)");
  for (char ch : local) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) throw refuse("the local part must be ASCII");
    const bool atext = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::string_view("!#$%&*+-=?^_`{|}~.").find(ch) != std::string_view::npos;
    if (!atext) throw refuse(std::string("'") + ch + "' is not allowed in the local part");
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    throw refuse("the local part must not start or end with '.' or hold '..'");
  const std::string_view domain_text = destination.substr(at + 1);
  if (domain_text.empty()) throw refuse("the domain after '@' is empty");
  std::optional<Domain> domain;
  try {
    domain = Domain::parse(domain_text);
  } catch (const Error& e) {
    throw refuse(e.what());
  }
  if (*domain == account.domain() && lower_ascii(local) == account.local().str())
    throw refuse("a forward to the account itself would loop");
  return std::string(local) + "@" + domain->str();
}

void validate_filter_config(const Address& account, const FilterConfig& config) {
  const auto fail = [](const std::string& what) { return Error(Errc::invalid_input, what); };
  if (config.forwards.size() > max_forward_profiles)
    throw fail("at most " + std::to_string(max_forward_profiles) + " forward profiles (there would be " +
               std::to_string(config.forwards.size()) + ")");
  if (config.rules.size() > max_rules)
    throw fail("at most " + std::to_string(max_rules) + " rules (there would be " + std::to_string(config.rules.size()) +
               ")");
  for (std::size_t i = 0; i < config.rules.size(); ++i)
    check_condition(config.rules[i].condition, "rule " + std::to_string(i + 1));
  for (std::size_t i = 0; i < config.forwards.size(); ++i) {
    const ForwardProfile& p = config.forwards[i];
    const std::string what = "forward profile " + std::to_string(i + 1);
    check_condition(p.condition, what);
    if (p.destinations.empty())
      throw fail(what + ": no destination (a profile forwards to 1.." + std::to_string(max_forward_destinations) +
                 " addresses)");
    if (p.destinations.size() > max_forward_destinations)
      throw fail(what + ": " + std::to_string(p.destinations.size()) + " destinations, at most " +
                 std::to_string(max_forward_destinations));
    std::vector<std::string> seen;
    for (std::size_t j = 0; j < p.destinations.size(); ++j) {
      const std::string dwhat = what + ", destination " + std::to_string(j + 1);
      std::string normal;
      try {
        normal = check_forward_destination(account, p.destinations[j]);
      } catch (const Error& e) {
        throw fail(dwhat + ": " + e.what());
      }
      for (std::size_t k = 0; k < seen.size(); ++k)
        if (seen[k] == normal) throw fail(dwhat + ": '" + normal + "' repeats destination " + std::to_string(k + 1));
      seen.push_back(std::move(normal));
    }
  }
  if (config.autoreply.enabled) {
    if (auto why = autoreply_days_problem(config.autoreply.days)) throw fail(*why);
    if (auto why = autoreply_subject_problem(config.autoreply.subject)) throw fail(*why);
    if (auto why = autoreply_message_problem(config.autoreply.message)) throw fail(*why);
  }
  if (config.spam.enabled)
    if (auto why = spam_tag_problem(config.spam.tag)) throw fail(*why);
}

FilterConfig load_filter_config(const fs::path& file, const Address& account) {
  static ParsedCache<FilterConfig> cache;
  // Keyed by account too: whether a destination loops back depends on whose file it is.
  std::optional<FilterConfig> c = cache.load_if_exists(
      file, [&](const std::string& text) { return parse_filter_config(file, text, account); }, account.str());
  return c ? std::move(*c) : FilterConfig{};
}

void save_filter_config(const fs::path& file, const FilterConfig& c) {
  YAML::Emitter out;
  if (!c.empty()) {
    out << YAML::BeginMap;
    if (c.spam.enabled) {
      out << YAML::Key << "spam" << YAML::Value << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "action" << YAML::Value << (c.spam.action == SpamFilter::Action::tag ? "tag" : "delete");
      out << YAML::Key << "tag" << YAML::Value << YAML::DoubleQuoted << c.spam.tag;
      out << YAML::EndMap;
    }
    if (!c.rules.empty()) {
      out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
      for (const FilterRule& rule : c.rules) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "if" << YAML::Value << YAML::DoubleQuoted << rule.condition.str();
        out << YAML::Key << "action" << YAML::Value
            << (rule.action == FilterRule::Action::discard ? "delete" : "bounce");
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    if (c.autoreply.enabled) {
      out << YAML::Key << "autoreply" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "subject" << YAML::Value << YAML::DoubleQuoted << c.autoreply.subject;
      out << YAML::Key << "days" << YAML::Value << c.autoreply.days;
      out << YAML::Key << "message" << YAML::Value << YAML::DoubleQuoted << c.autoreply.message;
      out << YAML::EndMap;
    }
    if (!c.forwards.empty()) {
      out << YAML::Key << "forward" << YAML::Value << YAML::BeginSeq;
      for (const ForwardProfile& p : c.forwards) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "if" << YAML::Value << YAML::DoubleQuoted << p.condition.str();
        out << YAML::Key << "to" << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (const std::string& d : p.destinations) out << YAML::DoubleQuoted << d;
        out << YAML::EndSeq;
        out << YAML::Key << "keep" << YAML::Value << (p.keep ? "true" : "false");
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  if (!out.good()) throw Error(Errc::other, "cannot write " + file.string() + ": " + out.GetLastError());
  detail::save_yaml(file, out, "filters.yaml", "mh-filter");
}

FilterConfig read_filters(const Layout& layout, const Address& account) {
  require_account(layout, account);
  return load_filter_config(layout.filters_config(account), account);
}

void update_filters(const Layout& layout, const Address& account, const std::function<void(FilterConfig&)>& change) {
  require_account(layout, account); // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.domain_lock(account.domain()));
  FilterConfig c = read_filters(layout, account);
  change(c);
  validate_filter_config(account, c);
  // Stored as check_forward_destination() returns them (IDN as punycode), as load does.
  for (ForwardProfile& p : c.forwards)
    for (std::string& d : p.destinations) d = check_forward_destination(account, d);
  const fs::path file = layout.filters_config(account);
  sweep_temp_files(file);
  save_filter_config(file, c);
}

} // namespace spool
