// transcript.cc — matching reply lines to the commands libcurl sent (transcript.h).
// SMTP replies are "CODE-text" continuation lines ending with one "CODE text" line
// (RFC 5321 §4.2.1); libcurl does not pipeline (it waits for each reply), so the reply
// that completes belongs to the last command sent.
#include "outbound/transcript.h"

#include <cctype>

namespace mh::outbound {
namespace {

std::string_view strip_crlf(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

// Printable ASCII only: a reply is quoted in logs, .env files and DSNs.
void append_clean(std::string& out, std::string_view text) {
  for (char c : text) {
    if (out.size() >= kMaxReplyText) return;
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
}

} // namespace

void Transcript::on_sent(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto eol = bytes.find('\n');
    command(strip_crlf(bytes.substr(0, eol)));
    if (eol == std::string_view::npos) break;
    bytes.remove_prefix(eol + 1);
  }
}

void Transcript::command(std::string_view line) {
  if (line.empty()) return;
  if (starts_with_nocase(line, "MAIL FROM:")) {
    awaiting_ = Awaiting::mail;
    mail_sent_ = true;
  } else if (starts_with_nocase(line, "RCPT TO:")) {
    awaiting_ = Awaiting::rcpt;
    std::string_view path = line.substr(8);
    const auto sp = path.find(' ');  // parameters (NOTIFY=, ORCPT=) follow the path
    path = path.substr(0, sp);
    if (!path.empty() && path.front() == '<') path.remove_prefix(1);
    if (!path.empty() && path.back() == '>') path.remove_suffix(1);
    current_rcpt_.assign(path.substr(0, 512));
  } else if (starts_with_nocase(line, "DATA")) {
    awaiting_ = Awaiting::data;
  } else {
    awaiting_ = Awaiting::other;  // EHLO, HELO, STARTTLS, AUTH, RSET, QUIT …
  }
}

void Transcript::on_received(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto eol = bytes.find('\n');
    if (eol == std::string_view::npos) {
      if (partial_.size() < kMaxPendingLine) partial_.append(bytes.substr(0, kMaxPendingLine - partial_.size()));
      return;
    }
    if (partial_.empty()) {
      reply_line(strip_crlf(bytes.substr(0, eol)));
    } else {
      if (partial_.size() < kMaxPendingLine) partial_.append(bytes.substr(0, std::min(eol, kMaxPendingLine - partial_.size())));
      reply_line(strip_crlf(partial_));
      partial_.clear();
    }
    bytes.remove_prefix(eol + 1);
  }
}

void Transcript::reply_line(std::string_view line) {
  int code = 0;
  if (line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
      std::isdigit(static_cast<unsigned char>(line[1])) && std::isdigit(static_cast<unsigned char>(line[2])))
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (!reply_.empty()) append_clean(reply_, "; ");
  append_clean(reply_, line);
  if (reply_code_ == 0) reply_code_ = code;
  const bool last = code != 0 && (line.size() == 3 || line[3] == ' ');
  if (!last && code != 0) return;  // "250-" continuation
  if (code == 0 && reply_code_ == 0) {
    reply_.clear();  // not a reply line, and no reply it could continue: noise
    return;
  }
  Reply r{reply_code_, std::move(reply_)};
  reply_.clear();
  reply_code_ = 0;
  last_ = r;
  switch (awaiting_) {
  case Awaiting::mail: mail_ = r; break;
  case Awaiting::rcpt: rcpts_.insert_or_assign(current_rcpt_, r); break;
  case Awaiting::data:
    data_ = r;
    if (r.code == 354) {
      awaiting_ = Awaiting::end_of_data;
      return;
    }
    break;
  case Awaiting::end_of_data: final_ = r; break;
  case Awaiting::greeting:
  case Awaiting::other: break;
  }
  awaiting_ = Awaiting::other;
}

std::optional<Reply> Transcript::rcpt_reply(const std::string& address) const {
  auto it = rcpts_.find(address);
  if (it == rcpts_.end()) return std::nullopt;
  return it->second;
}

} // namespace mh::outbound
