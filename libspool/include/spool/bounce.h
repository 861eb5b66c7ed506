// bounce.h — sending a delivery status notification (RFC 3464, dsn.h) back to the
// sender of a queued or received message, through the outbound queue. The one rule
// that keeps bounces from looping (RFC 5321 §4.5.5, §6.1): a DSN goes out with the null
// sender, and a message with the null sender is never bounced — its failure is only
// logged by the caller. Errors: spool::Error from the queue (disk full is temporary).
#pragma once

#include "spool/layout.h"
#include "spool/queue.h"

#include <cstdint>
#include <string>
#include <vector>

namespace spool {

struct BounceFailure {
  std::string recipient;    // as queued
  std::string reply;        // the remote reply, or our own ("552 5.2.2 Disk quota exceeded")
  std::string remote_mta;   // who said it ("mx.example.org[192.0.2.1]:25"); "" = we did
};

// Queues a DSN about `failures` of `original` (its message readable from `message_fd`:
// only the header block is read) to original.sender. Returns the DSN's queue id; ""
// when no DSN is due (null sender, or no failures).
std::string queue_bounce(const Layout& layout, const std::string& reporting_mta, const QueueEnvelope& original,
                         int message_fd, const std::vector<BounceFailure>& failures, std::int64_t now);

// The same with the original's header block already at hand (LF or CRLF line ends), for
// a message that was received but exists in no single file any more.
std::string queue_bounce_with_headers(const Layout& layout, const std::string& reporting_mta,
                                      const QueueEnvelope& original, std::string original_headers,
                                      const std::vector<BounceFailure>& failures, std::int64_t now);

} // namespace spool
