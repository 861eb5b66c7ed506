// filtered_delivery.h — local delivery with each recipient's filters applied (SPEC §6):
// the one path by which mh-serve stores mail for its accounts, whether it arrived over
// SMTP or from the outbound queue. Per recipient, evaluate_filters() (filter_match.h)
// decides; this file carries the decision out, durably, before the caller acknowledges:
//   deliver / auto-reply / forward+keep → the message is hard-linked into the Maildir
//   spam tag  → a rewritten copy (Subject prefix, X-Spam-Flag: YES) is stored instead
//   discard   → nothing stored (logged)
//   bounce    → a DSN to the sender is queued (never to the null sender)
//   forward   → a queue entry per profile, envelope sender rewritten by SRS, the message
//               unchanged but for a Delivered-To: <account> line on top
// Auto-replies are queued after the stored copy is durable (RFC 3834 checks, memory).
// Recipients without filters take the plain deliver() path: no header is read.
#pragma once

#include "spool/delivery.h"
#include "spool/layout.h"
#include "spool/names.h"
#include "spool/srs.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace spool {

// What filtered delivery needs from the daemon (or a tool) around it.
struct FilterServices {
  std::string hostname = "localhost";        // Reporting-MTA of DSNs, Message-ID of replies
  std::string srs_domain;                    // domain of SRS0 senders (srs.domain, else hostname)
  std::optional<SrsKey> srs;                 // none: forwards keep the original sender
  std::string rspamd_url;                    // spam.rspamd; "" = spam filters inert
  std::chrono::milliseconds spam_timeout{10000};
  std::string client_ip;                     // for rspamd ("" = locally generated)
  std::string helo;
  // Told about every queue entry committed here (forwards, replies, DSNs): the runner.
  std::function<void(const std::string& queue_id)> queued;
};

struct FilteredOutcome {
  DeliveryOutcome delivery;   // status delivered also when a filter discarded, bounced or
                              // forwarded without a copy: the message was taken care of
  std::string filter;         // for the log: what the filters did ("" = no filter fired)
  bool stored = true;         // false: delivered means discarded, bounced or forwarded only
};

// `msg` is the received message (LF line ends), not yet finished; its first
// `trace_size` bytes are our own trace header (Return-Path, Received, Delivered-To),
// which matching and the loop check skip. `sender` is the envelope sender ("" = <>).
// One outcome per distinct recipient, in order. Throws spool::Error only when the
// message itself cannot be completed (as deliver()).
std::vector<FilteredOutcome> deliver_filtered(const Layout& layout, PendingMessage& msg, std::uint64_t trace_size,
                                              const std::vector<Address>& recipients, const std::string& sender,
                                              const FilterServices& services, std::int64_t now);

} // namespace spool
