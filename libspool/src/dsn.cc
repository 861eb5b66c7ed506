// dsn.cc — building RFC 3464 bounces. The message is assembled from text that was made
// safe first: remote replies and addresses lose their controls and 8-bit bytes (one
// line each, so no reply can add a header field, a delivery-status field or a MIME
// boundary line), host names keep only host-name characters, and the original header
// block is cut to whole lines ≤ 998 and quoted-printable encoded when it is not plain
// printable ASCII (text/rfc822-headers is a text type, so RFC 2045 allows that, and it
// keeps the DSN 7-bit without losing what the original said; UTF-8 gets charset=utf-8).
#include "spool/dsn.h"

#include "spool/error.h"

#include "mail_text.h"
#include "text_util.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace spool {
namespace {

constexpr std::size_t max_line = 998;          // RFC 5322 §2.1.1
constexpr std::size_t text_width = 76;         // the human-readable part is wrapped here
constexpr std::size_t qp_width = 76;           // RFC 2045 §6.7 (5)
constexpr std::size_t header_read_chunk = 8192;

constexpr const char* continuation_indent = "    ";

using detail::format_date;
using detail::host_text;
using detail::random_hex;
using detail::utf8_ok;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Printable ASCII on one line: TAB/CR/LF become a space (a multi-line reply stays
// readable), other controls, DEL and 8-bit bytes become '?'; runs of spaces and leading
// and trailing spaces go. Longer than `max` → cut, ending in "...". Reads no more of
// `s` than it needs, so a 100 KB reply costs nothing.
std::string one_line(std::string_view s, std::size_t max) {
  std::string out;
  bool cut = false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    char o = ch;
    if (c == '\t' || c == '\r' || c == '\n') o = ' ';
    else if (c < 0x20 || c >= 0x7f) o = '?';
    if (o == ' ' && (out.empty() || out.back() == ' ')) continue;
    if (out.size() == max) {
      cut = true;
      break;
    }
    out += o;
  }
  if (cut) {
    out.resize(max >= 3 ? max - 3 : 0);
    out += "...";
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Appends `text` wrapped at text_width, continuation lines indented; a word longer than
// a line is split (a reply without spaces must still respect the line limit).
void append_wrapped(std::string& out, std::string_view text) {
  const std::size_t indent = std::strlen(continuation_indent);
  std::size_t col = 0, line_start = 0;
  auto new_line = [&] {
    out += '\n';
    out += continuation_indent;
    col = line_start = indent;
  };
  while (!text.empty()) {
    const auto space = text.find(' ');
    std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    while (!word.empty()) {
      const bool mid_line = col > line_start;
      if (col + (mid_line ? 1 : 0) + word.size() <= text_width) {
        if (mid_line) {
          out += ' ';
          ++col;
        }
        out += word;
        col += word.size();
        break;
      }
      if (mid_line) {
        new_line();
        continue;
      }
      const std::size_t take = text_width - col;  // < word.size(), so some is left
      out += word.substr(0, take);
      word.remove_prefix(take);
      new_line();
    }
  }
  out += '\n';
}

// --- the original header block (part 3) ------------------------------------------------

bool plain_line(std::string_view line) {
  for (char ch : line) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c >= 0x7f) return false;
  }
  return true;
}

// RFC 2045 §6.7: literal printable ASCII except '=', spaces literal except at a line
// end, everything else =XX; soft line breaks keep each line ≤ 76 characters.
void append_quoted_printable(std::string& out, std::string_view line) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::size_t col = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    const bool last = i + 1 == line.size();
    char token[4] = {};
    if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
      token[0] = static_cast<char>(c);
    } else {
      token[0] = '=';
      token[1] = digits[c >> 4];
      token[2] = digits[c & 0x0f];
    }
    const std::size_t n = std::strlen(token);
    // Room for the token, plus the '=' of a soft break unless this is the last one.
    if (col + n + (last ? 0 : 1) > qp_width) {
      out += "=\n";
      col = 0;
    }
    out += token;
    col += n;
  }
  out += '\n';
}

struct HeaderPart {
  std::string text;
  bool quoted_printable = false;
  bool utf8 = false;  // 8-bit and valid UTF-8 (RFC 6532 headers): charset=utf-8
};

// The caller's header block as whole lines: CRLF or LF ends, stopped at an empty line
// (the body never leaks in), at most max_dsn_headers bytes, lines cut to max_line.
HeaderPart original_header_part(std::string_view block) {
  std::vector<std::string_view> lines;
  std::size_t total = 0;
  bool plain = true;
  while (!block.empty()) {
    const auto eol = block.find('\n');
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (line.size() > max_line) line = line.substr(0, max_line);
    if (total + line.size() + 1 > max_dsn_headers) break;
    total += line.size() + 1;
    plain = plain && plain_line(line);
    lines.push_back(line);
  }
  HeaderPart part;
  part.quoted_printable = !plain;
  if (!plain) {
    part.utf8 = true;
    for (std::string_view line : lines) part.utf8 = part.utf8 && utf8_ok(line);
  }
  for (std::string_view line : lines) {
    if (plain) {
      part.text.append(line);
      part.text += '\n';
    } else {
      append_quoted_printable(part.text, line);
    }
  }
  return part;
}

} // namespace

bool dsn_status_ok(std::string_view s) {
  // RFC 3463 §2: class "." subject "." detail; class 2, 4 or 5; subject, detail 1*3digit.
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  std::size_t i = 2;
  for (int field = 0; field < 2; ++field) {
    const std::size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < 4) ++i;
    const std::size_t n = i - start;
    if (n < 1 || n > 3) return false;
    if (field == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

std::string dsn_status_of(std::string_view reply) {
  while (!reply.empty() && (reply.front() == ' ' || reply.front() == '\t')) reply.remove_prefix(1);
  // RFC 5321 §4.2: three digits, then SP, "-" (a continuation line) or the end.
  if (reply.size() < 3 || !is_digit(reply[0]) || !is_digit(reply[1]) || !is_digit(reply[2])) return "4.0.0";
  if (reply.size() > 3 && reply[3] != ' ' && reply[3] != '-' && reply[3] != '\t') return "4.0.0";
  const char cls = reply[0];
  if (cls != '4' && cls != '5') return "4.0.0";
  std::string_view rest = reply.size() > 3 ? reply.substr(4) : std::string_view();
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  // RFC 3463 / RFC 2034 §4: the enhanced code is the first word after the basic code.
  std::size_t end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t' && rest[end] != ';') ++end;
  const std::string_view enhanced = rest.substr(0, end);
  // RFC 2034 §4: the enhanced class must agree with the basic code's class.
  if (dsn_status_ok(enhanced) && enhanced[0] == cls) return std::string(enhanced);
  return std::string(1, cls) + ".0.0";
}

std::string build_dsn(const DsnReport& r) {
  std::string host = host_text(r.reporting_mta, false);
  if (host.empty()) host = "localhost";
  const std::string now = format_date(r.now);
  const char* action = r.delayed ? "delayed" : "failed";

  // Part 1: for people.
  std::string human = "This is the mail system at host " + host + ".\n\n";
  if (r.delayed) {
    human +=
        "This is a warning only: you do not need to send your message again.\n\n"
        "Your message has not yet been delivered to one or more recipients.\n"
        "Delivery will be retried, and you will be told if it finally fails.\n";
  } else {
    human += "Your message could not be delivered to one or more recipients.\n";
  }
  human += r.original_headers.empty() ? "The reasons are given below.\n\n"
                                      : "The reasons are given below, and the headers of your message\n"
                                        "are attached.\n\n";
  human += "For further help, contact the postmaster of " + host + " and include\nthis report.\n\n";

  // Part 2: RFC 3464 §2.2 per-message fields, then §2.3 per-recipient groups.
  std::string status = "Reporting-MTA: dns; " + host + "\n";
  if (!r.queue_id.empty()) status += "X-Mailhost-Queue-ID: " + one_line(r.queue_id, 200) + "\n";
  if (r.arrival > 0) status += "Arrival-Date: " + format_date(r.arrival) + "\n";

  for (const DsnRecipient& rcpt : r.recipients) {
    const std::string address = one_line(rcpt.address, max_line - std::strlen("Final-Recipient: rfc822; "));
    const std::string diagnostic = one_line(rcpt.diagnostic, max_dsn_diagnostic);
    const std::string remote = host_text(rcpt.remote_mta, true);
    const std::string code = dsn_status_ok(rcpt.status) ? rcpt.status : dsn_status_of(diagnostic);

    std::string said = "<" + address + ">: ";
    if (!remote.empty()) said += "host " + remote + (diagnostic.empty() ? " gave no reason" : " said: ");
    said += diagnostic.empty() && remote.empty() ? std::string("delivery ") + action + " (" + code + ")" : diagnostic;
    append_wrapped(human, said);
    human += '\n';

    status += "\nFinal-Recipient: rfc822; " + address + "\n";
    status += std::string("Action: ") + action + "\n";
    status += "Status: " + code + "\n";
    if (!remote.empty()) status += "Remote-MTA: dns; " + remote + "\n";
    if (!diagnostic.empty())
      status += std::string("Diagnostic-Code: ") + (rcpt.smtp_diagnostic ? "smtp; " : "X-Mailhost; ") +
                diagnostic + "\n";
    status += "Last-Attempt-Date: " + now + "\n";
  }

  // Part 3: what was sent (RFC 3462 §2: text/rfc822-headers when the body is left out).
  const HeaderPart original = original_header_part(r.original_headers);

  // RFC 2046 §5.1.1: the boundary must not occur in any part. It is random, so this
  // check only fails if a remote reply guessed it; pick another then.
  std::string boundary;
  do {
    boundary = "=_mailhost_dsn_" + random_hex(12);
  } while (human.find(boundary) != std::string::npos || status.find(boundary) != std::string::npos ||
           original.text.find(boundary) != std::string::npos);

  const std::string sender = one_line(r.original_sender, max_line - std::strlen("To: <>"));
  std::string m;
  m.reserve(human.size() + status.size() + original.text.size() + 1024);
  m += "From: Mail Delivery System <MAILER-DAEMON@" + host + ">\n";
  m += "To: <" + sender + ">\n";
  m += r.delayed ? "Subject: Delayed Mail (still being retried)\n" : "Subject: Undelivered Mail Returned to Sender\n";
  m += "Date: " + now + "\n";
  m += "Message-ID: <" + std::to_string(r.now < 0 ? 0 : r.now) + "." + random_hex(8) + "@" + host + ">\n";
  m += "Auto-Submitted: auto-replied\n";  // RFC 3834 §5: no auto-reply to this
  m += "MIME-Version: 1.0\n";
  m += "Content-Type: multipart/report; report-type=delivery-status; boundary=\"" + boundary + "\"\n";
  m += "\nThis is a MIME-encapsulated message.\n\n";

  m += "--" + boundary + "\n";
  m += "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n";
  m += human;
  m += "--" + boundary + "\n";
  m += "Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n";
  m += status;
  m += "\n";
  if (!original.text.empty()) {
    m += "--" + boundary + "\n";
    m += "Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers";
    m += original.utf8 ? "; charset=utf-8\n" : "\n";
    if (original.quoted_printable) m += "Content-Transfer-Encoding: quoted-printable\n";
    m += "\n";
    m += original.text;
    m += "\n";
  }
  m += "--" + boundary + "--\n";
  return m;
}

std::string read_header_block(int fd, std::size_t limit) {
  std::string buf;
  while (buf.size() < limit) {
    const std::size_t want = std::min(header_read_chunk, limit - buf.size());
    const std::size_t old = buf.size();
    buf.resize(old + want);
    const ssize_t n = ::pread(fd, buf.data() + old, want, static_cast<off_t>(old));
    if (n < 0 && errno == EINTR) {
      buf.resize(old);
      continue;
    }
    if (n < 0) {
      const int err = errno;
      throw Error(Errc::other, "cannot read message header (fd " + std::to_string(fd) + "): " + std::strerror(err),
                  /*temporary=*/true);
    }
    buf.resize(old + static_cast<std::size_t>(n));
    // The blank line ends the header block (RFC 5322 §2.1); a CRLF file's "\r\n\r\n"
    // shows up as "\n\r\n". Search from two bytes back: it may straddle reads.
    if (!buf.empty() && (buf[0] == '\n' || buf.compare(0, 2, "\r\n") == 0)) return {};
    for (std::size_t i = old < 2 ? 0 : old - 2; i < buf.size(); ++i) {
      if (buf[i] != '\n') continue;
      if (i + 1 < buf.size() && buf[i + 1] == '\n') return buf.substr(0, i + 1);
      if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return buf.substr(0, i + 1);
    }
    if (n == 0) {  // end of file: a message without a body
      if (!buf.empty() && buf.back() != '\n') buf += '\n';
      return buf;
    }
  }
  // The limit was reached inside the header: keep whole lines only.
  const auto last = buf.rfind('\n');
  return last == std::string::npos ? std::string() : buf.substr(0, last + 1);
}

} // namespace spool
