// list_message.cc — the texts of mailing-list mail (list_message.h): reading a post (the
// posting rules, fml's one-line body), the distributed post's header, the mails the list
// writes itself, and the failed recipients of a DSN. Pure functions; list_mail.cc does I/O.
// Trust: posts, their headers and DSNs are hostile. Every scan is linear (the Subject tag
// search included) and bounded, and text copied from a post into a header field of ours
// is made one line of valid UTF-8 first, so it cannot add a field. ListPostHeaders and
// ListMailContext come from the list's configuration and the envelope.
#include "spool/list_message.h"

#include "spool/header_decode.h"

#include "mail_text.h"
#include "text_util.h"

#include <algorithm>
#include <unordered_set>

namespace spool {
namespace {

// --- limits ---
constexpr std::size_t max_dsn_scan = 1024 * 1024;      // bytes of a DSN looked at
constexpr std::size_t max_failed_recipients = 1000;    // per DSN
constexpr std::size_t max_dsn_address = 998;           // a longer "address" is garbage
constexpr std::size_t max_subject_bytes = 512;         // post text copied into a Subject
constexpr std::size_t max_address_bytes = 512;         // an address copied into a field
// The post's header block returned in a refusal, like a DSN's (dsn.h max_dsn_headers).
constexpr std::size_t max_returned_headers = 64 * 1024;
constexpr std::size_t max_line = 998;                  // RFC 5322 §2.1.1
// Plain text is wrapped a little shorter than a header line (mail_text.h) so quoting in a
// reply does not re-wrap it.
constexpr std::size_t text_width = 72;
// UTF-8 bytes per encoded word: 39 bytes → 52 base64 characters → a 64-character word,
// which fits after "Subject: " on the first line (RFC 2047 §2 allows 75).
constexpr std::size_t encoded_word_bytes = 39;

using detail::ascii_lowered;
using detail::Base64Stray;
using detail::base64_decoded;
using detail::base64_lines;
using detail::domain_part;
using detail::ends_with_ci;
using detail::FieldWriter;
using detail::format_date;
using detail::header_text;
using detail::hex_value;
using detail::host_text;
using detail::iequals;
using detail::is_ascii;
using detail::is_line_space;
using detail::is_wsp;
using detail::local_part;
using detail::OtherControls;
using detail::random_hex;
using detail::starts_with_ci;
using detail::trimmed;
using detail::utf8_ok;

// --- small text helpers ---

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Lines of a text without their ends: LF, with a CR before it taken as part of the end
// (stored mail has LF; a CRLF message must not leave CRs in what we write). A last line
// without LF counts; "" has no lines.
class Lines {
public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const auto eol = text_.find('\n', pos_);
    const std::size_t end = eol == std::string_view::npos ? text_.size() : eol;
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = eol == std::string_view::npos ? text_.size() : eol + 1;
    return true;
  }

private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// An address (from the envelope or a post) for a header field or a text: one line,
// without '<' '>' that would break the angle brackets around it.
std::string address_text(std::string_view address) {
  std::string s = header_text(address, max_address_bytes, OtherControls::space);
  s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == '<' || c == '>' || c == ' '; }), s.end());
  return s;
}

// `line` wrapped at text_width on spaces; a word longer than a line stays whole.
std::string wrapped(std::string_view line) {
  std::string out;
  std::size_t column = 0;
  while (!line.empty()) {
    const auto space = line.find(' ');
    const std::string_view word = line.substr(0, space);
    line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    if (column > 0 && column + 1 + word.size() > text_width) {
      out += '\n';
      column = 0;
    } else if (column > 0) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
  }
  return out + '\n';
}

// --- header fields as written ---

// One field of a header block: its name ("" for a line that is neither a field nor a
// continuation) and its physical lines without line ends (the first one and any
// continuation lines that fold it, RFC 5322 §2.2.3).
struct RawField {
  std::string_view name;
  std::vector<std::string_view> lines;
};

// RFC 5322 §3.6.8: a field name is printable ASCII but ':', followed by ':'.
std::string_view field_name(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  for (char c : line.substr(0, colon))
    if (static_cast<unsigned char>(c) <= 32 || static_cast<unsigned char>(c) >= 127) return {};
  return line.substr(0, colon);
}

std::vector<RawField> split_fields(std::string_view block) {
  std::vector<RawField> fields;
  Lines lines(block);
  std::string_view line;
  while (lines.next(line)) {
    if (line.empty()) break;  // the end of the header block
    if (is_wsp(line.front()) && !fields.empty()) {
      fields.back().lines.push_back(line);
      continue;
    }
    fields.push_back(RawField{field_name(line), {line}});
  }
  return fields;
}

// The field's value unfolded: its lines joined with one space, each trimmed.
std::string unfolded_value(const RawField& f) {
  std::string out;
  for (std::size_t i = 0; i < f.lines.size(); ++i) {
    std::string_view piece = f.lines[i];
    if (i == 0) piece.remove_prefix(std::min(piece.size(), f.name.size() + 1));
    piece = trimmed(piece);
    if (piece.empty()) continue;
    if (!out.empty()) out += ' ';
    out += piece;
  }
  return out;
}

// The first token of a structured value, lower-cased: "Text/Plain; charset=x" → "text/plain".
std::string value_keyword(std::string_view value) {
  value = trimmed(value);
  std::size_t end = 0;
  while (end < value.size() && !is_line_space(value[end]) && value[end] != ';' && value[end] != '(') ++end;
  return ascii_lowered(value.substr(0, end));
}

// --- writing header fields (FieldWriter: mail_text.h) ---

// A field of the post that we rewrote (the tagged Subject), kept on one line as the
// post's readers expect; only past RFC 5322's 998 characters is it folded at spaces. The
// text itself is the poster's, bytes as written (raw ISO-2022-JP keeps its ESCs): only a
// bare CR, which some readers take for a line end, becomes a space.
void append_post_field(std::string& out, std::string_view name, std::string value) {
  std::replace(value.begin(), value.end(), '\r', ' ');
  if (name.size() + 2 + value.size() <= max_line) {
    out.append(name).append(": ").append(value) += '\n';
    return;
  }
  FieldWriter w(out, "\n", max_line);
  w.start(name);
  w.words(value);
  w.end();
}

// Subject of a mail we write: `text` (one line of valid UTF-8) as is when ASCII, else
// as encoded words of encoded_word_bytes at most, so any script survives any relay.
void append_subject(std::string& m, std::string_view text) {
  FieldWriter w(m, "\n");
  w.start("Subject");
  if (is_ascii(text)) w.words(text);
  else w.encoded_words(text, encoded_word_bytes);
  w.end();
}

// The fields every mail the list writes carries. `reply_to` "" = none. RFC 3834 §5:
// Auto-Submitted keeps vacation responders from answering. No Precedence: some servers
// drop "bulk" mail, and a confirmation request must arrive.
void append_common_fields(std::string& m, const ListMailContext& c, std::string_view from,
                          std::string_view reply_to, std::string_view subject, std::string_view auto_submitted) {
  std::string host = host_text(c.hostname);
  if (host.empty()) host = host_text(domain_part(c.list_address));
  if (host.empty()) host = "localhost";
  m += "Date: " + format_date(c.now) + "\n";
  m += "From: <" + address_text(from) + ">\n";
  if (!reply_to.empty()) m += "Reply-To: <" + address_text(reply_to) + ">\n";
  m += "To: <" + address_text(c.to) + ">\n";
  append_subject(m, subject);
  m += "Message-ID: <" + std::to_string(c.now < 0 ? 0 : c.now) + "." + random_hex(12) + ".list@" + host + ">\n";
  m += "MIME-Version: 1.0\n";
  m += "Auto-Submitted: ";
  m += auto_submitted;
  m += "\n";
  m += "X-ML-Name: " + header_text(local_part(c.list_address), max_address_bytes, OtherControls::space) + "\n";
}

// A text/plain part (or a single-part body): its fields, the empty line, the text.
// UTF-8 in base64 when not ASCII, else 7bit (our texts have short lines).
std::string text_part(std::string_view text) {
  std::string p = "Content-Type: text/plain; charset=UTF-8\n";
  if (is_ascii(text)) return p + "Content-Transfer-Encoding: 7bit\n\n" + std::string(text);
  return p + "Content-Transfer-Encoding: base64\n\n" + base64_lines(text, "\n");
}

// A random MIME boundary not found in any part (RFC 2046 §5.1.1). A base64 part can
// never hold one ('_' is not in its alphabet); a post could only by guessing it.
std::string boundary_for(const std::vector<std::string_view>& parts) {
  while (true) {
    std::string b = "=_mailhost_list_" + random_hex(12);
    if (std::none_of(parts.begin(), parts.end(), [&](std::string_view p) { return p.find(b) != p.npos; }))
      return b;
  }
}

// The body of a multipart/mixed message of already-built parts (each: fields, empty
// line, content ending in LF). The LF before each delimiter belongs to it (RFC 2046
// §5.1.1), so one is added: the content comes back exactly.
void append_multipart(std::string& m, const std::vector<std::string_view>& parts, bool eight_bit) {
  const std::string b = boundary_for(parts);
  m += "Content-Type: multipart/mixed;\n boundary=\"" + b + "\"\n";  // folded: ≤ 76
  // RFC 2045 §6.4: a multipart holding an 8bit part is 8bit itself.
  if (eight_bit) m += "Content-Transfer-Encoding: 8bit\n";
  m += "\nThis is a multi-part message in MIME format.\n";
  for (std::string_view p : parts) {
    m += "\n--" + b + "\n";
    m += p;
  }
  m += "\n--" + b + "--\n";
}

// Text with LF line ends only, and a final LF.
std::string lf_text(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 1);
  for (std::size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out += text[i];
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

// The post's header block returned with a refusal (RFC 3462 text/rfc822-headers): whole
// lines up to max_returned_headers, each cut to 998; 7bit when printable ASCII, else
// base64 (labelled UTF-8 when it is), so the refusal stays valid whatever the post held.
std::string returned_headers_part(std::string_view original_headers) {
  std::string text;
  Lines lines(header_block(original_headers));
  std::string_view line;
  while (lines.next(line)) {
    line = line.substr(0, max_line);
    if (text.size() + line.size() + 1 > max_returned_headers) break;
    text += line;
    text += '\n';
  }
  const bool plain = std::all_of(text.begin(), text.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f);
  });
  std::string p = "Content-Type: text/rfc822-headers";
  if (plain) return p + "\nContent-Transfer-Encoding: 7bit\n\n" + text + "\n";
  if (utf8_ok(text)) p += "; charset=UTF-8";
  return p + "\nContent-Transfer-Encoding: base64\n\n" + base64_lines(text, "\n");
}

// --- the Subject tag ---

// The tag format as a pattern: literal text (the list's name put in for {list}) and
// {seq}, which stands for a run of digits ([0-9]+).
struct TagPiece {
  bool seq = false;
  std::string literal;
};

std::vector<TagPiece> tag_pattern(std::string_view format, std::string_view list_name) {
  std::vector<TagPiece> pieces(1);
  for (std::size_t i = 0; i < format.size();) {
    if (format.compare(i, 6, "{list}") == 0) {
      pieces.back().literal += list_name;
      i += 6;
    } else if (format.compare(i, 5, "{seq}") == 0) {
      pieces.push_back(TagPiece{true, {}});
      pieces.push_back(TagPiece{});
      i += 5;
    } else {
      pieces.back().literal += format[i++];
    }
  }
  const auto empty = [](const TagPiece& p) { return !p.seq && p.literal.empty(); };
  pieces.erase(std::remove_if(pieces.begin(), pieces.end(), empty), pieces.end());
  return pieces;
}

struct Span {
  std::size_t begin, end;
};

// The first occurrence of the pattern in `s`. Literals compare ASCII case-insensitively
// (the name is part of an address, where case does not matter). {seq} takes the whole
// digit run — unlike a backtracking regex, which matters only for a format with a digit
// right after {seq}. Digit runs are measured once, so the search is O(|s| × |format|)
// even on a Subject of a million digits.
std::optional<Span> find_tag(std::string_view s, const std::vector<TagPiece>& pattern) {
  if (pattern.empty()) return std::nullopt;
  std::vector<std::size_t> digits_end(s.size() + 1, s.size());
  for (std::size_t i = s.size(); i-- > 0;) digits_end[i] = is_digit(s[i]) ? digits_end[i + 1] : i;
  for (std::size_t start = 0; start < s.size(); ++start) {
    std::size_t pos = start;
    bool ok = true;
    for (const TagPiece& p : pattern) {
      if (p.seq) {
        ok = pos < s.size() && is_digit(s[pos]);
        if (ok) pos = digits_end[pos];
      } else {
        ok = s.size() - pos >= p.literal.size() && iequals(s.substr(pos, p.literal.size()), p.literal);
        pos += p.literal.size();
      }
      if (!ok) break;
    }
    if (ok) return Span{start, pos};
  }
  return std::nullopt;
}

// --- the one-line body rule ---

bool blank_line(std::string_view line) {
  return std::all_of(line.begin(), line.end(), is_wsp);
}

// RFC 3676 §4.3 signature separator "-- " (and the common "--" whose space a mailer ate).
bool signature_separator(std::string_view line) { return line == "-- " || line == "--"; }

// What fml takes for a command line: ASCII letters/digits, ':', ',', '@', '-', spaces,
// with at least one letter or digit. fml leaves '.' out so that a one-line sentence
// ("Thanks.") still goes to the list, yet notes that addresses need it; so a '.' is
// allowed inside a word holding '@' ("unsubscribe me@example.jp") and nowhere else.
bool command_like(std::string_view line) {
  bool alnum = false;
  while (!line.empty()) {
    const auto space = line.find(' ');
    const std::string_view word = line.substr(0, space);
    line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    const bool address = word.find('@') != std::string_view::npos;
    for (char c : word) {
      if (is_alnum(c)) alnum = true;
      else if (c != ':' && c != ',' && c != '@' && c != '-' && !(c == '.' && address)) return false;
    }
  }
  return alnum;
}

bool one_line_text_body(std::string_view text) {
  Lines lines(text);
  std::string_view line;
  do {
    if (!lines.next(line)) return false;  // empty or only blank lines
  } while (blank_line(line));
  if (!command_like(line)) return false;
  while (lines.next(line)) {
    if (signature_separator(line)) return true;
    if (!blank_line(line)) return false;
  }
  return true;
}

// RFC 2045 §6.7: "=XX" a byte, "=" at a line end a soft break; a stray '=' is kept.
std::string decode_quoted_printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '=') {
      out += s[i];
      continue;
    }
    std::size_t j = i + 1;
    while (j < s.size() && is_wsp(s[j])) ++j;  // §6.7 (3): padding before a soft break
    if (j < s.size() && (s[j] == '\n' || (s[j] == '\r' && j + 1 < s.size() && s[j + 1] == '\n'))) {
      i = s[j] == '\n' ? j : j + 1;
    } else if (i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += '=';
    }
  }
  return out;
}

// --- delivery-status notifications ---

// "Content-Type: message/delivery-status" (RFC 3464 §2.1; or the RFC 6533 global form),
// any case, parameters allowed.
bool delivery_status_type(std::string_view line) {
  if (!starts_with_ci(line, "Content-Type:")) return false;
  const std::string type = value_keyword(line.substr(13));
  return type == "message/delivery-status" || type == "message/global-delivery-status";
}

// "rfc822; <a@b>" → "a@b" (RFC 3464 §2.3.1/2; "utf-8;" is RFC 6533's type).
std::optional<std::string> recipient_address(std::string_view value) {
  const auto semi = value.find(';');
  if (semi == std::string_view::npos) return std::nullopt;
  const std::string_view type = trimmed(value.substr(0, semi));
  if (!iequals(type, "rfc822") && !iequals(type, "utf-8")) return std::nullopt;
  std::string_view addr = trimmed(value.substr(semi + 1));
  if (addr.size() >= 2 && addr.front() == '<' && addr.back() == '>') addr = trimmed(addr.substr(1, addr.size() - 2));
  if (addr.empty() || addr.size() > max_dsn_address) return std::nullopt;
  return std::string(addr);
}

// One per-recipient block of a delivery-status part as it is read.
struct StatusBlock {
  std::string action, final_recipient, original_recipient;
  std::string* last = nullptr;  // the field continuation lines extend

  void field(std::string_view line) {
    last = nullptr;
    const std::string_view name = field_name(line);
    if (iequals(name, "Action")) last = &action;
    else if (iequals(name, "Final-Recipient")) last = &final_recipient;
    else if (iequals(name, "Original-Recipient")) last = &original_recipient;
    if (last) *last = line.substr(name.size() + 1);
  }
  void continuation(std::string_view line) {
    if (last) *last += line;
  }
};

// The failed recipient of a finished block, if any.
std::optional<std::string> failed_recipient(const StatusBlock& b) {
  if (value_keyword(b.action) != "failed") return std::nullopt;
  if (auto a = recipient_address(b.final_recipient)) return a;
  return recipient_address(b.original_recipient);
}

struct FailedList {
  std::vector<std::string> addresses;
  std::unordered_set<std::string> seen;  // lower-cased: one DSN counts a recipient once

  bool full() const { return addresses.size() >= max_failed_recipients; }
  void add(const std::string& a) {
    if (!full() && seen.insert(ascii_lowered(a)).second) addresses.push_back(a);
  }
};

// Reads the delivery-status part whose Content-Type line `lines` has just passed: the
// rest of the part's header, then blocks separated by blank lines, up to the next
// boundary line ("--…", which no status field starts with) or the end.
void read_status_part(Lines& lines, FailedList& out) {
  std::string_view line;
  while (lines.next(line) && !line.empty()) continue;  // the rest of the part's header
  StatusBlock block;
  const auto flush = [&] {
    if (auto a = failed_recipient(block)) out.add(*a);
    block = StatusBlock{};
  };
  while (lines.next(line) && !out.full()) {
    if (line.substr(0, 2) == "--") break;
    if (blank_line(line)) flush();
    else if (is_wsp(line.front())) block.continuation(line);
    else block.field(line);
  }
  flush();
}

} // namespace

// header_block() is header_decode.cc's (both headers declare it).

std::optional<std::string> header_value(std::string_view headers, std::string_view name) {
  for (const RawField& f : split_fields(header_block(headers)))
    if (iequals(f.name, name)) return unfolded_value(f);
  return std::nullopt;
}

std::optional<std::string> first_address(std::string_view value) {
  // RFC 5322 §3.4: mailboxes separated by ',' (a group "name: a, b;" too); within one,
  // the address is in <> if there are any, else it is the bare text. Comments and
  // unquoted white space are not part of it; quoted strings are kept as written.
  std::string bare, angle;
  bool in_angle = false, has_angle = false, in_quote = false;
  int comment = 0;
  const auto take = [&]() -> std::optional<std::string> {
    std::string a = has_angle ? angle : bare;
    bare.clear();
    angle.clear();
    has_angle = false;
    if (a.find('@') == std::string::npos) return std::nullopt;  // "<>", a group's end
    return a;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    std::string& into = in_angle ? angle : bare;
    if (comment > 0) {
      if (c == '\\') ++i;
      else if (c == '(') ++comment;
      else if (c == ')') --comment;
    } else if (in_quote) {
      into += c;
      if (c == '\\' && i + 1 < value.size()) into += value[++i];
      else if (c == '"') in_quote = false;
    } else if (c == '"') {
      in_quote = true;
      into += c;
    } else if (c == '(') {
      comment = 1;
    } else if (in_angle) {
      if (c == '>') in_angle = false;
      else if (c == ':') angle.clear();  // obsolete route "<@a,@b:user@c>" (§4.4)
      else if (!is_line_space(c)) angle += c;
    } else if (c == '<') {
      in_angle = has_angle = true;
      angle.clear();
    } else if (c == ',' || c == ';') {
      if (auto a = take()) return a;
    } else if (c == ':') {
      bare.clear();  // a group's display name
    } else if (!is_line_space(c)) {
      bare += c;
    }
  }
  return take();
}

bool is_system_poster(std::string_view address) {
  std::string_view a = trimmed(address);
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  const std::string_view local = trimmed(local_part(a));
  if (local.empty()) return true;  // the null sender: never answered (RFC 5321 §4.5.5)
  for (std::string_view name : {"root", "postmaster", "MAILER-DAEMON", "msgs", "nobody", "news", "majordomo",
                                "listserv", "listproc"})
    if (iequals(local, name)) return true;
  for (std::string_view suffix : {"-help", "-subscribe", "-unsubscribe"})
    if (ends_with_ci(local, suffix)) return true;
  return false;
}

bool is_one_line_body(std::string_view message) {
  const std::string_view head = header_block(message);
  std::string_view body = message.substr(head.size());
  if (body.substr(0, 2) == "\r\n") body.remove_prefix(2);
  else if (body.substr(0, 1) == "\n") body.remove_prefix(1);
  if (const auto type = header_value(head, "Content-Type"); type && value_keyword(*type) != "text/plain")
    return false;  // multipart and everything else: not a command someone typed
  const std::string cte = value_keyword(header_value(head, "Content-Transfer-Encoding").value_or(""));
  if (cte.empty() || cte == "7bit" || cte == "8bit" || cte == "binary") return one_line_text_body(body);
  if (cte == "base64") return one_line_text_body(*base64_decoded(body, Base64Stray::skip));
  if (cte == "quoted-printable") return one_line_text_body(decode_quoted_printable(body));
  return false;  // an encoding we cannot read: do not refuse what we cannot see
}

std::string format_subject_tag(std::string_view format, std::string_view list_name, std::uint64_t seq) {
  std::string number = std::to_string(seq);
  if (number.size() < 5) number.insert(0, 5 - number.size(), '0');
  std::string out;
  for (std::size_t i = 0; i < format.size();) {
    if (format.compare(i, 6, "{list}") == 0) {
      out += list_name;
      i += 6;
    } else if (format.compare(i, 5, "{seq}") == 0) {
      out += number;
      i += 5;
    } else {
      out += format[i++];
    }
  }
  return out;
}

std::string tag_subject(std::string_view subject_value, std::string_view format, std::string_view list_name,
                        std::uint64_t seq) {
  if (format.empty()) return std::string(subject_value);
  const auto pattern = tag_pattern(format, list_name);
  std::string rest(subject_value);
  if (const auto tag = find_tag(rest, pattern)) {
    std::size_t end = tag->end;
    if (end < rest.size() && rest[end] == ' ') ++end;
    rest.erase(tag->begin, end - tag->begin);
  } else if (rest.find("=?") != std::string::npos && find_tag(decode_header_value(rest), pattern)) {
    // The tag is inside an encoded word: rewriting it would mean re-encoding the
    // poster's text, so the Subject stays as it is (tagged once, if with an old number).
    return rest;
  }
  const std::string tag = format_subject_tag(format, list_name, seq);
  const std::string_view kept = trimmed(rest);
  return kept.empty() ? tag : tag + " " + std::string(kept);
}

std::string distribution_headers(std::string_view original_headers, const ListPostHeaders& h) {
  static constexpr std::string_view owned[] = {
      "Return-Path", "Delivered-To", "List-Id",  "List-Post",    "List-Unsubscribe", "List-Help",
      "List-Subscribe", "List-Owner", "List-Archive", "X-ML-Name", "X-Mail-Count",     "Precedence"};
  const auto is_owned = [](std::string_view name) {
    return std::any_of(std::begin(owned), std::end(owned), [&](std::string_view o) { return iequals(name, o); });
  };
  std::string out = "Return-Path: <" + h.bounces_address + ">\n";
  bool subject_done = false;
  for (const RawField& f : split_fields(header_block(original_headers))) {
    // A line that is not a field (an mbox "From " line, a stray continuation at the
    // top) is dropped: under our Return-Path it would change what that field says.
    if (f.name.empty() || is_owned(f.name)) continue;
    if (iequals(f.name, "Subject")) {
      // RFC 5322 §3.6 allows one Subject; a second, untagged one is dropped so no
      // reader shows it instead.
      if (subject_done) continue;
      subject_done = true;
      if (!h.subject_tag.empty()) {
        append_post_field(out, "Subject", tag_subject(unfolded_value(f), h.subject_tag, h.list_name, h.seq));
        continue;
      }
    }
    for (std::string_view line : f.lines) {
      out += line;
      out += '\n';
    }
  }
  if (!subject_done && !h.subject_tag.empty())
    out += "Subject: " + format_subject_tag(h.subject_tag, h.list_name, h.seq) + "\n";
  // RFC 2919 §2: list-id = list-label "." list-id-namespace (the list's domain).
  out += "X-ML-Name: " + h.list_name + "\n";
  out += "X-Mail-Count: " + std::to_string(h.seq) + "\n";
  out += "List-Id: <" + h.list_name + "." + std::string(domain_part(h.list_address)) + ">\n";
  out += "List-Post: <mailto:" + h.list_address + ">\n";            // RFC 2369 §3.4
  out += "List-Unsubscribe: <mailto:" + h.unsubscribe_address + ">\n";  // RFC 2369 §3.2
  out += "Precedence: list\n";
  return out;
}

std::string_view refusal_reason(ListRefusal r) {
  switch (r) {
  case ListRefusal::one_line_body: return "one line mail body";
  case ListRefusal::mail_bomb: return "mail bomb";
  case ListRefusal::too_large: return "Your mail exceeds the size this mailing list allows";
  case ListRefusal::not_member: return "you are not a member of this mailing list";
  case ListRefusal::rejected: return "rejected by the moderator";
  case ListRefusal::domain_full: return "the mailing list's domain is out of disk space";
  }
  return "refused";
}

std::string_view refusal_reason_ja(ListRefusal r) {
  switch (r) {
  case ListRefusal::one_line_body: return "「英数文字」1行のみの本文です。";
  case ListRefusal::mail_bomb: return "短時間に連続してメールが投稿されました。";
  case ListRefusal::too_large: return "あなたのメールはこのメーリングリストが許すメールのサイズを越えています。";
  case ListRefusal::not_member: return "あなたはこのメーリングリストのメンバーではありません。";
  case ListRefusal::rejected: return "モデレーターにより配送を拒否されました。";
  case ListRefusal::domain_full: return "メーリングリストのドメインのディスク容量が不足しています。";
  }
  return "配送を拒否されました。";
}

namespace {

// What the poster can do about a refusal, following the FAQ's advice (English, Japanese).
std::pair<std::string_view, std::string_view> refusal_advice(ListRefusal r) {
  switch (r) {
  case ListRefusal::one_line_body:
    return {"A body of a single line of letters and digits is taken for a command sent to the wrong address. "
            "Please write more than one line and send your mail again.",
            "「英数文字」1行のみの本文はエラーになります。本文を修正して（2行以上にして）もう一度お送りください。"};
  case ListRefusal::mail_bomb:
    return {"You posted too often in a short time. Please wait some minutes before you post again: "
            "after this error your posts are refused for up to an hour (3600 seconds).",
            "連続してメールを投稿するとこのエラーになります。1通送信した後は、数分以上の間隔をあけて次のメールを"
            "送信してください。なお、一度このエラーになると、最大3600秒（1時間）は投稿を拒否されます。"};
  case ListRefusal::too_large:
    return {"Please make your mail smaller (for example, send large attachments another way) and send it again.",
            "添付ファイルを小さくするなどしてメールのサイズを減らし、もう一度お送りください。"};
  case ListRefusal::not_member:
    return {"Only members may post to this list. Please post from the address you subscribed with.",
            "このメーリングリストにはメンバーのみ投稿できます。登録したメールアドレスから投稿してください。"};
  case ListRefusal::rejected:
    return {"A moderator of the list decided not to distribute it.",
            "メーリングリストのモデレーターが、この投稿を配送しないことにしました。"};
  case ListRefusal::domain_full:
    return {"Please try again later.", "しばらくしてからもう一度お送りください。"};
  }
  return {"", ""};
}

// Whole KB for the too_large text: the size rounded up and the limit down, so the
// size shown is always larger than the limit shown (10 KB + 1 byte is "11 KB").
std::string kb_up(std::uint64_t bytes) { return std::to_string(bytes / 1024 + (bytes % 1024 != 0)) + " KB"; }
std::string kb_down(std::uint64_t bytes) { return std::to_string(bytes / 1024) + " KB"; }

std::string list_name_of(const ListMailContext& c) {
  return header_text(local_part(c.list_address), max_address_bytes, OtherControls::space);
}

// The ID `mh-list approve` takes: the TOKEN of LIST+confirm-TOKEN@DOMAIN.
std::string confirm_token(std::string_view confirm_address) {
  const std::string_view local = local_part(confirm_address);
  const auto plus = local.find("+confirm-");
  return address_text(plus == std::string_view::npos ? local : local.substr(plus + 9));
}

// The post without a leading Return-Path field (the queue's envelope note, not part of
// what the poster wrote), with LF line ends.
std::string post_as_written(std::string_view post) {
  if (starts_with_ci(post, "Return-Path:")) {
    std::size_t pos = 0;
    do {
      const auto eol = post.find('\n', pos);
      pos = eol == std::string_view::npos ? post.size() : eol + 1;
    } while (pos < post.size() && is_wsp(post[pos]));
    post.remove_prefix(pos);
  }
  return lf_text(post);
}

// The Subject of a moderation request: the prefix and the post's Subject as written
// when printable ASCII (encoded words stay encoded), else decoded (8-bit text, raw
// ISO-2022-JP with its ESCs; re-encoded by
// append_subject). One line, bounded.
std::string moderation_subject(std::string_view list, std::string_view post) {
  const std::string raw = header_value(post, "Subject").value_or("");
  const bool printable = std::all_of(raw.begin(), raw.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  const std::string theirs = printable ? raw : decode_header_value(raw);
  return header_text("[" + std::string(list) + "] approval needed: " + theirs, max_subject_bytes, OtherControls::space);
}

} // namespace

std::string build_refusal_mail(const ListMailContext& c, ListRefusal reason, std::string_view original_headers,
                               std::uint64_t size, std::uint64_t limit) {
  const std::string list = address_text(c.list_address);
  const auto [advice, advice_ja] = refusal_advice(reason);
  const bool sizes = reason == ListRefusal::too_large;

  std::string text = wrapped("Your mail to " + list + " was not distributed to the list.");
  text += wrapped("Reason: " + std::string(refusal_reason(reason)));
  if (sizes) text += "(your mail: " + kb_up(size) + ", limit: " + kb_down(limit) + ")\n";
  text += wrapped(advice);
  text += wrapped("The header of your mail is attached.");
  text += "\n" + list + " 宛のメールはメーリングリストに配送されませんでした。\n";
  text += "理由: " + std::string(refusal_reason_ja(reason));
  if (sizes) text += "（あなたのメール: " + kb_up(size) + "、上限: " + kb_down(limit) + "）";
  text += "\n" + std::string(advice_ja) + "\nお送りいただいたメールのヘッダーを添付します。\n";

  std::string m;
  append_common_fields(m, c, c.from, "",
                       "[" + list_name_of(c) + "] your post was not distributed: " + std::string(refusal_reason(reason)),
                       "auto-replied");
  const std::string body = text_part(text), headers = returned_headers_part(original_headers);
  append_multipart(m, {body, headers}, false);
  return m;
}

std::string build_moderation_request(const ListMailContext& c, std::string_view confirm_address,
                                     std::string_view poster, std::string_view post, std::int64_t expires) {
  const std::string list = address_text(c.list_address), who = address_text(poster);
  const std::string id = confirm_token(confirm_address), date = format_date(expires);
  const std::string approve = "    mh-list approve " + list + " " + id + "\n";
  const std::string reject = "    mh-list reject " + list + " " + id + "\n";

  std::string text = wrapped("A post to " + list + " from " + (who.empty() ? "<>" : who) +
                             " needs a moderator's approval.");
  text += wrapped("To approve it, reply to this mail (any reply, plain text or HTML, approves it; the text does "
                  "not matter), or run:");
  text += approve + "To reject it:\n" + reject;
  text += wrapped("This request expires on " + date + ".");
  text += wrapped("The post is attached.");
  text += "\n" + (who.empty() ? "<>" : who) + " から " + list + " への投稿には、モデレーターの承認が必要です。\n";
  text += "承認するには、このメールに返信してください（テキスト形式でもHTML形式でも、内容にかかわらず承認されます）。"
          "または次のコマンドを実行してください:\n";
  text += approve + "拒否するには:\n" + reject;
  text += "この依頼の有効期限は " + date + " です。\n投稿されたメールを添付します。\n";

  const std::string message = post_as_written(post);
  const bool eight_bit = !is_ascii(message);
  // RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary, never encoded.
  const std::string attached = std::string("Content-Type: message/rfc822\n") +
                               (eight_bit ? "Content-Transfer-Encoding: 8bit\n" : "") + "\n" + message;

  std::string m;
  append_common_fields(m, c, confirm_address, confirm_address, moderation_subject(list_name_of(c), post),
                       "auto-generated");
  const std::string body = text_part(text);
  append_multipart(m, {body, attached}, eight_bit);
  return m;
}

std::string build_unsubscribe_request(const ListMailContext& c, std::string_view confirm_address,
                                      std::int64_t expires) {
  const std::string list = address_text(c.list_address), who = address_text(c.to);
  const std::string date = format_date(expires);
  std::string text = wrapped("Someone (probably you) asked to remove " + who + " from the mailing list " + list + ".");
  text += wrapped("To confirm, reply to this mail (any reply).");
  text += wrapped("If you did not ask, ignore this mail; nothing changes.");
  text += wrapped("This request expires on " + date + ".");
  text += "\nメーリングリスト " + list + " から " + who + " を削除する依頼がありました（おそらくご本人からです）。\n";
  text += "削除してよろしければ、このメールに返信してください（返信の内容は問いません）。\n";
  text += "お心当たりがない場合は、このメールを無視してください。何も変更されません。\n";
  text += "この依頼の有効期限は " + date + " です。\n";

  std::string m;
  append_common_fields(m, c, confirm_address, confirm_address,
                       "[" + list_name_of(c) + "] confirm: remove " + who + " from the list", "auto-generated");
  m += text_part(text);
  return m;
}

std::string build_unsubscribed_notice(const ListMailContext& c) {
  const std::string list = address_text(c.list_address), who = address_text(c.to);
  std::string text = wrapped(who + " has been removed from the mailing list " + list + ".");
  text += "\n" + who + " はメーリングリスト " + list + " から削除されました。\n";

  std::string m;
  append_common_fields(m, c, c.from, "", "[" + list_name_of(c) + "] you have been removed from the list",
                       "auto-replied");
  m += text_part(text);
  return m;
}

std::vector<std::string> failed_recipients(std::string_view message) {
  FailedList out;
  Lines lines(message.substr(0, max_dsn_scan));
  std::string_view line;
  while (!out.full() && lines.next(line))
    if (delivery_status_type(line)) read_status_part(lines, out);
  return std::move(out.addresses);
}

} // namespace spool
