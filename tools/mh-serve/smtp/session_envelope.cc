// session_envelope.cc — the SMTP envelope phase: MAIL FROM (sender, SIZE, BODY, the
// authenticated sender's own address and sending state) and RCPT TO (local, relayed,
// postmaster and refused recipients, with the FCrDNS verdict), with their reply texts.
#include "smtp/session.h"

#include "smtp/session_internal.h"
#include "smtp/trace.h"
#include "text.h"

#include <algorithm>
#include <charconv>

namespace mh::smtp {

namespace {

using text::upper;
using session_detail::sending_suspended_reply;
using session_detail::too_many_recipients;

// Administrator text (a suspension reason, maybe Japanese) inside a reply line: replies
// are ASCII (RFC 5321 §2.4), and a line break would end the reply early.
std::string reply_text(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

// The domain of an address as the client wrote it, lower case ("" for <>).
std::string domain_of(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : lower(address.substr(at + 1));
}

} // namespace

std::string session_detail::sending_suspended_reply(const std::string& account, std::string_view reason) {
  return "550 5.7.1 Sending suspended for " + account + (reason.empty() ? std::string() : ": " + reply_text(reason)) +
         " (ask your administrator: mh-user resume --sending)";
}

std::optional<std::string> SmtpSession::check_mail(Command& c) const {
  // RFC 4954 §6 / RFC 6409 §4.3: a submission server wants to know who sends.
  if (config_.submission && auth_address_.empty()) return "530 5.7.0 Authentication required";
  c.path = parse_path_command(c.args, "FROM:", /*allow_null_path=*/true);
  if (c.path.problem == PathCommand::Problem::syntax) return "501 5.5.4 Syntax: MAIL FROM:<address>";
  if (c.path.problem == PathCommand::Problem::bad_address) return "501 5.1.7 Bad sender address syntax";
  for (const auto& [key, value] : c.path.params) {
    if (key == "SIZE") {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), c.size);
      if (ec == std::errc::result_out_of_range) return "552 5.3.4 Message size exceeds fixed limit";
      if (ec != std::errc() || value.empty() || end != value.data() + value.size())
        return "501 5.5.4 Bad SIZE syntax";
      // RFC 1870 §6: refuse at MAIL when the declared size is already too big.
      if (c.size > config_.message_size_limit) return "552 5.3.4 Message size exceeds fixed limit";
    } else if (key == "BODY") {
      const std::string body = upper(value);
      if (body != "7BIT" && body != "8BITMIME") return "501 5.5.4 Unsupported BODY type";
    } else {
      return "555 5.5.4 Unsupported option: " + sanitize_for_header(key, 40);
    }
  }
  // An authenticated user sends as the account itself (SPEC §8; RFC 6409 §6.1 lets the
  // server enforce this), in any letter case. The null sender is for bounces, which
  // users do not send.
  if (!auth_address_.empty() &&
      (c.path.address.empty() || (config_.sender_must_be_account && lower(c.path.address) != lower(auth_address_))))
    return "553 5.7.1 <" + c.path.address + ">: Sender address rejected: not owned by user " +
           sanitize_for_header(auth_address_);  // whatever an authenticator returned: never a CRLF (fuzzing)
  return std::nullopt;
}

std::optional<std::string> SmtpSession::check_rcpt(Command& c) const {
  c.path = parse_path_command(c.args, "TO:", /*allow_null_path=*/false, /*allow_bare_postmaster=*/true);
  if (c.path.problem == PathCommand::Problem::syntax) return "501 5.5.4 Syntax: RCPT TO:<address>";
  if (c.path.problem == PathCommand::Problem::bad_address) return "501 5.1.3 Bad recipient address syntax";
  if (!c.path.params.empty()) return "555 5.5.4 Unsupported option: " + sanitize_for_header(c.path.params[0].first, 40);
  return std::nullopt;
}

void SmtpSession::proceed_mail(const Command& c, Output& out) {
  if (!auth_address_.empty()) {
    // Asked at every MAIL, not at AUTH: a suspension counts for the next message of a
    // session that is already logged in (SPEC §2: changes count within a second).
    SenderState st;
    try {
      st = backend_.sender_state(auth_address_);
    } catch (const std::exception& e) {
      st.kind = SenderState::Kind::temporary;
      st.detail = e.what();
    }
    switch (st.kind) {
    case SenderState::Kind::active:
      break;
    case SenderState::Kind::sending_suspended:
      reply(out, sending_suspended_reply(auth_address_, st.reason));
      return;
    case SenderState::Kind::disabled:
      reply(out, "550 5.7.1 Account suspended: " + auth_address_);
      return;
    case SenderState::Kind::temporary:
      reply(out, "451 4.3.0 Temporary lookup failure, try again later");
      return;
    }
  }
  tx_ = std::make_unique<Transaction>();
  tx_->sender = c.path.address;
  tx_->declared_size = c.size;
  state_ = State::mail;
  reply(out, "250 2.1.0 Ok");
}

void SmtpSession::proceed_rcpt(const Command& c, Output& out) {
  const std::string shown = "<" + c.path.address + ">";
  if (tx_->recipients.size() + tx_->remote.size() + tx_->postmaster.size() >= config_.max_recipients) {
    reply(out, too_many_recipients);
    return;
  }
  RecipientCheck check;
  try {
    check = backend_.check_recipient(c.path.address, tx_->declared_size);
  } catch (const std::exception& e) {
    check.kind = RecipientCheck::Kind::temporary;
    check.detail = e.what();
  }
  std::string refusal;
  using Kind = RecipientCheck::Kind;
  const bool authenticated = !auth_address_.empty();
  if (check.kind == Kind::not_local && authenticated) {
    // Relaying for an authenticated user: through the outbound queue. The domain is
    // case-insensitive, the local part is the remote server's business (RFC 5321 §2.4).
    const auto at = c.path.address.rfind('@');
    const std::string remote = c.path.address.substr(0, at + 1) + domain_of(c.path.address);
    if (std::find(tx_->remote.begin(), tx_->remote.end(), remote) == tx_->remote.end())
      tx_->remote.push_back(remote);
    state_ = State::rcpt;
    reply(out, "250 2.1.5 Ok");
    return;
  }
  if (check.kind == Kind::not_local) {
    refusal = "550 5.7.1 Relaying denied";
  } else if (!authenticated && verdict_.kind != ClientVerdict::Kind::accepted && !check.postmaster) {
    refusal = verdict_.reply;  // postmaster is reachable even from a host failing FCrDNS
  } else if (check.kind == Kind::srs_invalid) {
    refusal = "550 5.1.1 " + shown + ": " + check.detail;
  } else if (check.kind == Kind::srs_return || check.kind == Kind::list || check.kind == Kind::redirect) {
    // A bounce to one of our forwarding addresses: sent on to the original sender
    // through the queue, as a relay we vouch for (the SRS hash proves we made it). A
    // list's mail takes the same way: the queue runner hands it to the list processor.
    if (std::find(tx_->remote.begin(), tx_->remote.end(), check.canonical) == tx_->remote.end())
      tx_->remote.push_back(check.canonical);
    state_ = State::rcpt;
    reply(out, "250 2.1.5 Ok");
    return;
  } else if (check.kind == Kind::unknown_user) {
    refusal = "550 5.1.1 " + shown + ": User unknown";
  } else if (check.kind == Kind::disabled) {
    refusal = "550 5.2.1 " + shown + ": Mailbox disabled";
  } else if (check.kind == Kind::over_quota) {
    refusal = "552 5.2.2 " + shown + ": Disk quota exceeded";
  } else if (check.kind == Kind::temporary) {
    refusal = "451 4.3.0 " + shown + ": Temporary lookup failure, try again later";
  }
  if (!refusal.empty()) {
    tx_->refused.push_back(shown + "(" + refusal.substr(0, refusal.find(' ', 4)) + ")");
    reply(out, std::move(refusal));
    return;
  }
  // A recipient named twice (perhaps in different spellings) gets one copy.
  auto& into = check.postmaster ? tx_->postmaster : tx_->recipients;
  if (std::find(into.begin(), into.end(), check.canonical) == into.end()) into.push_back(check.canonical);
  state_ = State::rcpt;
  reply(out, "250 2.1.5 Ok");
}

} // namespace mh::smtp
