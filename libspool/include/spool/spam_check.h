// spam_check.h — asking rspamd about one message over its HTTP API (POST /checkv2,
// SPEC §8 `spam.rspamd`) with libcurl. The message is streamed from its file, never held
// whole. Anything but a clear answer (rspamd down, slow, an HTTP error, JSON we cannot
// read) is SpamVerdict::unknown with a reason for the log: spam filtering is a
// preference, and the message is delivered untagged.
#pragma once

#include "spool/filter_match.h"

#include <chrono>
#include <string>

namespace spool {

struct SpamCheckResult {
  SpamVerdict verdict = SpamVerdict::unknown;
  double score = 0;
  std::string action;   // rspamd's action: "no action", "add header", "rewrite subject", "reject", …
  std::string detail;   // for the log: why unknown ("rspamd at URL: connection refused"),
                        // or "score 15.00/15.00 action reject"
};

struct SpamCheckRequest {
  std::string rspamd_url;                     // "http://127.0.0.1:11333" (no path)
  std::chrono::milliseconds timeout{10000};   // whole exchange
  int message_fd = -1;                        // read from offset 0 with pread (not moved)
  std::uint64_t message_size = 0;
  std::string sender;                         // envelope, for rspamd's "From" header
  std::string recipient;                      // one recipient, for "Rcpt"
  std::string client_ip;                      // "" = unknown (locally generated)
  std::string helo;
  std::string hostname;                       // our name ("MTA-Name")
  std::string client_hostname;                // the client's verified PTR name ("Hostname");
                                              // "" = not known: rspamd looks it up itself
};

// Spam when rspamd's action is "reject", "add header" or "rewrite subject" (what its own
// milter would mark); ham for any other action.
SpamCheckResult check_spam(const SpamCheckRequest& request);

} // namespace spool
