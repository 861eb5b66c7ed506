// dsn.h — delivery status notifications ("bounces", RFC 3464 inside an RFC 3462
// multipart/report) for the outbound queue (SPEC §8): a human explanation, the
// machine-readable message/delivery-status part, and the failed message's headers.
// The result is a whole message with LF line ends (the queue stores LF; the SMTP client
// converts), 7-bit clean, no line over 998 characters. Remote replies and the original
// headers are untrusted: controls and 8-bit bytes in replies are replaced, each reply is
// cut to max_dsn_diagnostic, original header lines are cut to 998 and go quoted-printable
// (charset=utf-8 if UTF-8) when not printable ASCII, and the MIME boundary is random
// and checked against the content. Only read_header_block throws (spool::Error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// The longest remote reply kept per recipient (cut with "..."): "Diagnostic-Code: smtp; "
// plus this stays under RFC 5322's 998 characters, so the field never needs folding.
inline constexpr std::size_t max_dsn_diagnostic = 900;
// How much of the failed message's header block is returned (cut at a line end).
inline constexpr std::size_t max_dsn_headers = 64 * 1024;

struct DsnRecipient {
  std::string address;          // as queued: Final-Recipient: rfc822; ADDRESS
  std::string status;           // RFC 3463 "5.1.1"; empty or malformed: dsn_status_of(diagnostic)
  std::string diagnostic;       // the remote reply as received ("550 5.1.1 <b@x>: User unknown",
                                // multi-line replies joined with "; "), or our own text
  std::string remote_mta;       // host name or IP that answered; "" = none (no Remote-MTA field)
  bool smtp_diagnostic = true;  // Diagnostic-Code type "smtp", else "X-Mailhost" (our own text)
};

struct DsnReport {
  std::string reporting_mta;              // our host name (Reporting-MTA: dns; NAME)
  std::string original_sender;            // envelope sender of the failed message: To: of the DSN
  std::string queue_id;                   // X-Mailhost-Queue-ID; "" = no such field
  std::int64_t arrival = 0;               // unix seconds, Arrival-Date; ≤ 0 = no such field
  std::int64_t now = 0;                   // unix seconds, Date: and Last-Attempt-Date
  std::vector<DsnRecipient> recipients;   // at least one
  std::string original_headers;           // header block of the failed message (LF or CRLF)
  bool delayed = false;                   // Action: delayed (a warning) instead of failed
};

// The whole DSN message. The caller guarantees a non-empty original_sender (a DSN is
// never sent to the null sender) and at least one recipient.
std::string build_dsn(const DsnReport& report);

// The RFC 3463 status of an SMTP reply. "550 5.1.1 <x>: User unknown" → "5.1.1" when the
// enhanced code is well formed (class 2/4/5, subject and detail 1–3 digits) and its class
// matches the basic code's first digit; otherwise the generic code of the basic reply:
// 4xx → "4.0.0", 5xx → "5.0.0". Anything else (no basic code, 2xx/3xx, free text) →
// "4.0.0": nothing says the failure is permanent. Only the first line of a reply
// joined with "; " counts ("550-5.1.1 …; 550 5.1.1 …").
std::string dsn_status_of(std::string_view reply);

// True for a well-formed RFC 3463 status code "C.S.D" (C in 2/4/5, S and D 1–3 digits).
bool dsn_status_ok(std::string_view status);

// The header block of the message open on `fd`, read with pread from offset 0 (a shared
// fd's offset is not moved), up to the first empty line (excluded) or `limit` bytes,
// cut after the last complete line; every returned line ends with LF (the last line of
// a message without body and final LF gets one). Never reads the body. Throws
// spool::Error (temporary) when the read fails.
std::string read_header_block(int fd, std::size_t limit = max_dsn_headers);

} // namespace spool
