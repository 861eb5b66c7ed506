// outcome.cc — per-recipient fates and retry times (outcome.h).
#include "outbound/outcome.h"

#include <algorithm>

namespace mh::outbound {
namespace {

Fate fate_of(const Reply& r) {
  if (r.positive()) return Fate::delivered;
  if (r.permanent()) return Fate::bounced;
  return Fate::deferred;
}

} // namespace

std::vector<RecipientOutcome> judge_transfer(const Transcript& t, const std::vector<std::string>& recipients,
                                             bool transfer_ok, const std::string& failure) {
  std::vector<RecipientOutcome> out;
  out.reserve(recipients.size());
  for (const auto& rcpt : recipients) {
    RecipientOutcome o;
    o.recipient = rcpt;
    const auto rcpt_reply = t.rcpt_reply(rcpt);
    if (t.mail_reply() && !t.mail_reply()->positive()) {
      // The sender was refused: the same for every recipient.
      o.fate = fate_of(*t.mail_reply());
      o.reply = t.mail_reply()->text;
    } else if (rcpt_reply && !rcpt_reply->positive()) {
      o.fate = fate_of(*rcpt_reply);
      o.reply = rcpt_reply->text;
    } else if (rcpt_reply && t.data_reply() && t.data_reply()->code != 354) {
      o.fate = t.data_reply()->positive() ? Fate::deferred : fate_of(*t.data_reply());
      o.reply = t.data_reply()->text;
    } else if (rcpt_reply && t.final_reply()) {
      o.fate = fate_of(*t.final_reply());
      o.reply = t.final_reply()->text;
    } else {
      // No verdict for this recipient: connection lost, timeout, TLS refused … If the
      // data was sent and the reply lost, the message may have arrived: retrying gives
      // at most a duplicate (at-least-once), never a loss.
      o.fate = Fate::deferred;
      o.reply = failure.empty() ? (t.last_reply() ? t.last_reply()->text : "no reply") : failure;
      if (transfer_ok && !t.transaction_started()) o.reply = "the transfer ended before the mail transaction";
      if (!failure.empty() && t.last_reply() && !t.last_reply()->positive() && t.last_reply()->code != 354)
        o.reply = t.last_reply()->text + " (" + failure + ")";
    }
    out.push_back(std::move(o));
  }
  return out;
}

bool try_next_host(const Transcript& t, bool transfer_ok) {
  if (transfer_ok) return false;
  if (!t.mail_reply()) return true;          // connect, greeting, EHLO or STARTTLS failed
  return t.mail_reply()->temporary();        // 4xx to MAIL: this host is busy, not the sender bad
}

std::chrono::seconds retry_delay(const std::vector<std::chrono::seconds>& retry, std::uint32_t attempts) {
  if (retry.empty()) return std::chrono::minutes(5);
  const std::size_t i = std::min<std::size_t>(attempts == 0 ? 0 : attempts - 1, retry.size() - 1);
  return retry[i];
}

bool past_give_up(std::int64_t created, std::int64_t now, std::chrono::seconds give_up) {
  return now - created >= give_up.count();
}

} // namespace mh::outbound
