// autoreply.cc — vacation replies (autoreply.h, RFC 3834): the refusal checks, the
// per-account memory file, and the reply message.
// Memory: accounts/<name>/autoreply.seen, one line "<unix-seconds> <sender lower-cased>",
// oldest first. It is only a memory: a line that does not parse is skipped (and dropped
// by the next write), never an error, so a damaged file cannot stop replies. Writers hold
// the domain's auto-reply lock and replace the file atomically (0600: it lists who wrote
// to the account). The file is read with a size bound, newest end first.
// Reply: built only from sanitised text — CR, LF and other controls never reach a header
// from the settings, the original message or the envelope; non-ASCII header text goes
// out as RFC 2047 B-encoded UTF-8 words of at most 75 characters on lines of at most 76;
// the body is UTF-8 in base64 (RFC 2045 §6.8), so any script survives any relay.
#include "spool/autoreply.h"

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/header_decode.h"
#include "spool/lock.h"

#include "file_io.h"
#include "mail_text.h"
#include "text_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace spool {
namespace {

// --- limits ---
// A reverse-path is at most 256 octets (RFC 5321 §4.5.3.1.3); twice that leaves room
// for what lenient peers send. A longer sender is not answered (cannot be remembered).
constexpr std::size_t max_sender_length = 512;
constexpr std::size_t max_seconds_digits = 19;
constexpr std::size_t max_memory_line = max_seconds_digits + 1 + max_sender_length + 1;
constexpr std::size_t max_memory_file = max_autoreply_memory * max_memory_line;
constexpr std::int64_t seconds_per_day = 86400;
// An entry up to a day in the future is a clock difference between hosts sharing the
// spool (it counts as recent); further ahead it is nonsense and skipped, so a broken
// clock once cannot silence the replies for good.
constexpr std::int64_t max_future_skew = seconds_per_day;

constexpr std::size_t max_subject_bytes = 512;       // of decoded text, before encoding
constexpr std::size_t max_display_name_bytes = 256;
constexpr std::size_t max_msg_id_length = 250;       // one id; the folded line stays < 998
constexpr std::size_t max_references = 10;           // RFC 5322 §3.6.4 allows trimming

// --- small text helpers ---

using detail::ascii_lowered;
using detail::base64_lines;
using detail::ends_with_ci;
using detail::FieldWriter;
using detail::format_date;
using detail::header_text;
using detail::host_text;
using detail::iequals;
using detail::is_ascii;
using detail::local_part;
using detail::OtherControls;
using detail::random_hex;
using detail::starts_with_ci;
using detail::trimmed;

// RFC 5322 comments "(...)" (nested, with quoted-pairs) removed, e.g. from
// "auto-generated (by cron); foo" or "bulk (mass mailing)".
std::string strip_comments(std::string_view s) {
  std::string out;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (depth > 0 && c == '\\') {
      ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && depth > 0) {
      --depth;
    } else if (depth == 0) {
      out += c;
    }
  }
  return out;
}

// The first token of a structured field value: comments gone, up to ';' (parameters),
// trimmed, lower-cased. "Auto-Generated (cron); x=y" → "auto-generated".
std::string field_keyword(std::string_view value) {
  const std::string plain = strip_comments(value);
  std::string_view v = plain;
  v = v.substr(0, v.find(';'));
  return ascii_lowered(trimmed(v));
}

// --- refusal checks ---

// RFC 3834 §2: senders that are software, not people — bounce senders and the
// addresses of list managers (and "noreply" addresses nobody reads). A VERP detail
// after '+' (Mailman's "list-bounces+user=example.org") is ignored for the check.
bool mailer_like(std::string_view sender) {
  const std::string_view full = local_part(sender);
  const std::string_view base = full.substr(0, full.find('+'));
  for (std::string_view local : {full, base}) {
    for (std::string_view exact : {"mailer-daemon", "postmaster", "mailer", "listserv", "majordomo", "noreply",
                                   "no-reply"})
      if (iequals(local, exact)) return true;
    if (starts_with_ci(local, "owner-")) return true;
    for (std::string_view suffix : {"-request", "-owner", "-bounces"})
      if (ends_with_ci(local, suffix)) return true;
  }
  return false;
}

bool delivered_to_account(const Address& account, const FilterMessage& message) {
  const std::string me = account.str();
  for (const std::string& raw : message.raw_fields("Delivered-To")) {
    std::string_view v = trimmed(raw);
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = trimmed(v.substr(1, v.size() - 2));
    if (iequals(v, me)) return true;
  }
  return false;
}

bool addressed_to(const Address& account, const FilterMessage& message) {
  // The account folded as FilterMessage folds addresses; with an IDN domain the To
  // field may carry either the A-label or the Unicode form.
  std::vector<std::string> forms{fold_text(account.str())};
  const std::string unicode = account.local().str() + "@" + account.domain().unicode();
  if (unicode != account.str()) forms.push_back(fold_text(unicode));
  for (std::string_view field : {"To", "Cc"})
    for (const std::string& a : message.folded_addresses(field))
      if (std::find(forms.begin(), forms.end(), a) != forms.end()) return true;
  return false;
}

// --- memory file ---

struct Memory {
  std::map<std::string, std::int64_t> last;  // sender (lower case) → when last answered
};

// Sender as remembered: lower-cased; refused when it cannot be one field of a line.
std::string memory_key(std::string_view sender) {
  if (sender.empty() || sender.size() > max_sender_length)
    throw Error(Errc::invalid_input, "auto-reply: sender of " + std::to_string(sender.size()) +
                                         " bytes cannot be remembered (1.." + std::to_string(max_sender_length) + ")");
  for (char c : sender)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw Error(Errc::invalid_input, "auto-reply: sender contains a space or control character");
  return ascii_lowered(sender);
}

std::optional<std::int64_t> parse_seconds(std::string_view s) {
  if (s.empty() || s.size() > max_seconds_digits || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The last max_memory_file bytes of the file (newest entries are at the end); empty
// when it does not exist. O_NONBLOCK: a FIFO planted in the spool must not hang delivery.
std::string read_memory_text(const fs::path& file) {
  struct stat st;
  const detail::Fd fd = detail::open_regular_for_reading(file, st);
  if (fd.get() < 0) return {};
  std::string text;
  off_t offset = 0;
  if (st.st_size > static_cast<off_t>(max_memory_file)) offset = st.st_size - static_cast<off_t>(max_memory_file);
  char buf[65536];
  while (text.size() < max_memory_file) {
    const std::size_t want = std::min(sizeof buf, max_memory_file - text.size());
    const ssize_t n = ::pread(fd.get(), buf, want, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", file, errno);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  if (st.st_size > static_cast<off_t>(max_memory_file)) {
    // Started mid-line: drop the partial first line.
    const auto nl = text.find('\n');
    text.erase(0, nl == std::string::npos ? text.size() : nl + 1);
  }
  return text;
}

// Entries of `text` still within `days` of `now`; malformed lines are skipped silently.
Memory parse_memory(std::string_view text, std::uint32_t days, std::int64_t now) {
  Memory m;
  const std::int64_t window = static_cast<std::int64_t>(days) * seconds_per_day;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) break;  // an incomplete last line (torn by hand)
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    const auto space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const auto when = parse_seconds(line.substr(0, space));
    const std::string_view sender = line.substr(space + 1);
    if (!when || sender.empty() || sender.size() > max_sender_length) continue;
    bool clean = true;
    for (char c : sender)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || (c >= 'A' && c <= 'Z')) clean = false;
    if (!clean) continue;
    if (*when > now + max_future_skew) continue;
    if (*when <= now - window) continue;  // forgotten: answered `days` or more ago
    auto& slot = m.last[std::string(sender)];
    slot = std::max(slot, *when);
  }
  return m;
}

bool recently_answered(const Memory& m, const std::string& key, std::uint32_t days) {
  if (days == 0) return false;
  return m.last.find(key) != m.last.end();  // parse_memory kept only the recent ones
}

// Oldest first; only the max_autoreply_memory newest entries.
std::string format_memory(const Memory& m) {
  std::vector<std::pair<std::int64_t, const std::string*>> entries;
  entries.reserve(m.last.size());
  for (const auto& [sender, when] : m.last) entries.emplace_back(when, &sender);
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first < b.first : *a.second < *b.second; });
  const std::size_t skip = entries.size() > max_autoreply_memory ? entries.size() - max_autoreply_memory : 0;
  std::string out;
  out.reserve((entries.size() - skip) * 40);
  for (std::size_t i = skip; i < entries.size(); ++i) {
    out += std::to_string(entries[i].first);
    out += ' ';
    out += *entries[i].second;
    out += '\n';
  }
  return out;
}

// Paths built here because layout.h is another module's file: the memory sits beside
// account.yaml (shared by every mh-serve on the spool, gone with the account, like
// Layout::sending_record), the lock beside the domain's other locks.
fs::path memory_file(const Layout& layout, const Address& account) {
  return layout.account_dir(account) / "autoreply.seen";
}
fs::path memory_lock(const Layout& layout, const Domain& domain) {
  return layout.locks_dir() / (domain.str() + ".autoreply.lock");
}

// --- message building ---

// Text that an RFC 2047 reader would take for an encoded word is encoded itself, so
// what the reply shows is exactly `text`.
bool needs_encoding(std::string_view text) { return !is_ascii(text) || text.find("=?") != std::string_view::npos; }

bool atext(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// RFC 5322 §3.4 display-name: atoms as they are, other ASCII as a quoted-string,
// anything else as encoded words (§5 (3) of RFC 2047 allows them in a phrase).
void display_name_words(FieldWriter& w, std::string_view name) {
  if (needs_encoding(name)) {
    w.encoded_words(name);
    return;
  }
  if (std::all_of(name.begin(), name.end(), [](char c) { return c == ' ' || atext(c); })) {
    w.words(name);
    return;
  }
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  w.word(quoted);
}

// The msg-ids ("<left@right>") in a Message-ID / References / In-Reply-To value; an id
// with spaces, controls or 8-bit bytes, or longer than max_msg_id_length, is skipped.
std::vector<std::string> msg_ids(std::string_view value) {
  std::vector<std::string> ids;
  const std::string plain = strip_comments(value);
  std::string_view v = plain;
  while (true) {
    const auto open = v.find('<');
    if (open == std::string_view::npos) break;
    const auto close = v.find('>', open);
    if (close == std::string_view::npos) break;
    const std::string_view id = v.substr(open, close - open + 1);
    v.remove_prefix(close + 1);
    if (id.size() <= 2 || id.size() > max_msg_id_length) continue;
    bool ok = id.substr(1, id.size() - 2).find('<') == std::string_view::npos;
    for (char c : id)
      if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) ok = false;
    if (ok) ids.emplace_back(id);
  }
  return ids;
}

std::vector<std::string> first_field_ids(const FilterMessage& m, std::string_view name) {
  const auto fields = m.raw_fields(name);
  return fields.empty() ? std::vector<std::string>{} : msg_ids(fields.front());
}

// CRLF line ends (RFC 5322 §2.1), whatever the text used: CRLF, LF or a lone CR.
std::string crlf_text(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      out += "\r\n";
    } else {
      out += text[i];
    }
  }
  return out;
}

} // namespace

NoReplyReason autoreply_refusal(const Address& account, const FilterMessage& message) {
  if (delivered_to_account(account, message)) return NoReplyReason::loop;
  const std::string_view sender = trimmed(message.sender());
  if (sender.empty() || sender == "<>") return NoReplyReason::null_sender;
  if (mailer_like(sender)) return NoReplyReason::mailer_daemon;
  // RFC 3834 §5: any Auto-Submitted value but "no" marks mail no person sent.
  for (const std::string& v : message.raw_fields("Auto-Submitted"))
    if (field_keyword(v) != "no") return NoReplyReason::auto_submitted;
  // RFC 3834 §2 and RFC 2369/2919: list traffic is not answered.
  for (std::string_view list_field : {"List-Id", "List-Unsubscribe", "List-Post"})
    if (!message.raw_fields(list_field).empty()) return NoReplyReason::list_mail;
  for (const std::string& v : message.raw_fields("Precedence")) {
    const std::string p = field_keyword(v);
    if (p == "bulk" || p == "list" || p == "junk") return NoReplyReason::list_mail;
  }
  // RFC 3834 §2: answer only mail that names the recipient (not Bcc, not an alias).
  if (!addressed_to(account, message)) return NoReplyReason::not_addressed;
  return NoReplyReason::none;
}

bool autoreply_claim(const Layout& layout, const Address& account, std::string_view sender, std::uint32_t days,
                     std::int64_t now) {
  const std::string key = memory_key(sender);
  const fs::path file = memory_file(layout, account);
  FileLock lock = FileLock::acquire(memory_lock(layout, account.domain()));
  struct stat st;
  if (::stat(layout.account_dir(account).c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(Errc::no_account, "no such account: " + account.str());
  layout.verify_no_symlinks(file);
  Memory memory = parse_memory(read_memory_text(file), days, now);
  if (recently_answered(memory, key, days)) return false;
  memory.last[key] = now;
  write_file_atomic(file, format_memory(memory), 0600);
  return true;
}

bool autoreply_would_send(const Layout& layout, const Address& account, std::string_view sender,
                          std::uint32_t days, std::int64_t now) {
  const std::string key = memory_key(sender);
  const fs::path file = memory_file(layout, account);
  layout.verify_no_symlinks(file);
  // No lock: the file is replaced by rename, so this reads one whole version.
  return !recently_answered(parse_memory(read_memory_text(file), days, now), key, days);
}

std::string build_autoreply(const Address& account, std::string_view display_name, const AutoReply& settings,
                            const FilterMessage& original, std::string_view hostname, std::int64_t now) {
  std::string m;
  FieldWriter w(m, "\r\n");

  // From: the account (RFC 3834 §3.1.2), with its display name.
  const std::string name = header_text(display_name, max_display_name_bytes, OtherControls::dropped);
  const std::string from = "<" + account.str() + ">";
  w.start("From");
  if (!name.empty()) display_name_words(w, name);
  w.word(from);
  w.end();

  // To: the envelope sender (RFC 3834 §3.1.1: where the reply is due), made harmless.
  w.start("To");
  w.word("<" + header_text(original.sender(), max_sender_length, OtherControls::dropped) + ">");
  w.end();

  // Subject (RFC 3834 §3.1.5): the configured one, else "Auto: " + the original's.
  std::string subject;
  if (!settings.subject.empty()) {
    subject = header_text(settings.subject, max_subject_bytes, OtherControls::dropped);
  } else {
    const auto fields = original.raw_fields("Subject");
    const std::string theirs = fields.empty() ? std::string() : decode_header_value(fields.front());
    subject = header_text("Auto: " + theirs, max_subject_bytes, OtherControls::dropped);
  }
  w.start("Subject");
  if (needs_encoding(subject)) w.encoded_words(subject);
  else w.words(subject);
  w.end();

  m += "Date: " + format_date(now) + "\r\n";
  std::string host = host_text(hostname);
  if (host.empty()) host = account.domain().str();
  m += "Message-ID: <" + std::to_string(now < 0 ? 0 : now) + "." + random_hex(12) + ".autoreply@" + host + ">\r\n";

  // RFC 3834 §3.1.5 and RFC 5322 §3.6.4: In-Reply-To the original's id; References its
  // References (or its single In-Reply-To) plus its id, the last max_references kept.
  const auto ids = first_field_ids(original, "Message-ID");
  if (!ids.empty()) {
    const std::string& parent = ids.front();
    std::vector<std::string> refs = first_field_ids(original, "References");
    if (refs.empty()) {
      auto irt = first_field_ids(original, "In-Reply-To");
      if (irt.size() == 1) refs = std::move(irt);
    }
    refs.push_back(parent);
    if (refs.size() > max_references) refs.erase(refs.begin(), refs.end() - max_references);
    m += "In-Reply-To: " + parent + "\r\n";
    w.start("References");
    for (const std::string& id : refs) w.word(id);
    w.end();
  }

  m += "Auto-Submitted: auto-replied\r\n";  // RFC 3834 §5: no reply to this reply
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=UTF-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n";
  m += "\r\n";

  m += base64_lines(crlf_text(settings.message), "\r\n");
  return m;
}

} // namespace spool
