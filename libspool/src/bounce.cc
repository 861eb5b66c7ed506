// bounce.cc — a DSN for failed recipients, queued with the null sender (bounce.h).
#include "spool/bounce.h"

#include "spool/dsn.h"

#include <cctype>

namespace spool {

std::string queue_bounce(const Layout& layout, const std::string& reporting_mta, const QueueEnvelope& original,
                         int message_fd, const std::vector<BounceFailure>& failures, std::int64_t now) {
  if (original.sender.empty() || failures.empty()) return {};
  return queue_bounce_with_headers(layout, reporting_mta, original, message_fd >= 0 ? read_header_block(message_fd) : "",
                                   failures, now);
}

std::string queue_bounce_with_headers(const Layout& layout, const std::string& reporting_mta,
                                      const QueueEnvelope& original, std::string original_headers,
                                      const std::vector<BounceFailure>& failures, std::int64_t now) {
  if (original.sender.empty() || failures.empty()) return {};
  std::string headers;
  headers.reserve(original_headers.size());
  for (char c : original_headers)
    if (c != '\r') headers.push_back(c);
  while (!headers.empty() && headers.back() == '\n') headers.pop_back();
  DsnReport report;
  report.reporting_mta = reporting_mta;
  report.original_sender = original.sender;
  report.queue_id = original.id;
  report.arrival = original.created;
  report.now = now;
  for (const auto& f : failures) {
    DsnRecipient r;
    r.address = f.recipient;
    r.diagnostic = f.reply;
    r.remote_mta = f.remote_mta;
    // Not an SMTP reply ("Failed to connect …"): only a connection-level failure, seen
    // until the give-up time; RFC 3464 wants a non-smtp type and 4.4.7 says why.
    const bool smtp_reply = f.reply.size() >= 4 && std::isdigit(static_cast<unsigned char>(f.reply[0])) &&
                            std::isdigit(static_cast<unsigned char>(f.reply[1])) &&
                            std::isdigit(static_cast<unsigned char>(f.reply[2])) && f.reply[3] == ' ';
    if (!smtp_reply) {
      r.smtp_diagnostic = false;
      r.status = "4.4.7";
    }
    report.recipients.push_back(std::move(r));
  }
  report.original_headers = std::move(headers);
  QueueEnvelope dsn;
  dsn.sender = "";  // the null sender: a DSN is never answered by another
  dsn.recipients = {original.sender};
  dsn.created = now;
  dsn.next_attempt = now;
  return enqueue_message(layout, std::move(dsn), build_dsn(report));
}

} // namespace spool
