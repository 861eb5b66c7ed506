// trace.h — the header lines mh-serve puts on top of every delivered message (RFC 5321
// §4.4): Return-Path (the envelope sender), Received (who handed it to us, when, under
// which id, with which protocol — RFC 3848: ESMTPS/ESMTPA/ESMTPSA for TLS and AUTH) and,
// for a single local recipient, Delivered-To. A message that is also relayed keeps the
// same bytes in the outbound queue; the runner drops Return-Path before sending (RFC
// 5321 §4.4: only the final delivery adds it). Stored with LF line endings, like
// the rest of the message (Maildir convention). Client-supplied text (the HELO name) is
// reduced to printable ASCII so it can never break a header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mh::smtp {

struct TraceInfo {
  std::string helo;             // as given by the client
  bool esmtp = true;            // EHLO (ESMTP) or HELO (SMTP), RFC 3848
  bool tls = false;             // the session ran over TLS ("S")
  bool authenticated = false;   // the client authenticated ("A")
  bool relayed = false;         // some recipient is remote: no Delivered-To
  std::string client_ip;
  std::string client_rdns;      // empty = "unknown"
  std::string hostname;         // ours
  std::string id;               // queue id
  std::string sender;           // envelope sender, "" for <>
  std::vector<std::string> recipients;
  std::int64_t time = 0;        // seconds since the epoch
};

// "Thu, 28 Nov 2024 03:40:00 +0000" (RFC 5322 §3.3), always in UTC.
std::string rfc5322_date(std::int64_t unix_time);

// Printable ASCII only, at most `max` characters; other bytes become '?'.
std::string sanitize_for_header(std::string_view text, std::size_t max = 255);

// Return-Path, Received and (one recipient only) Delivered-To, each ending in "\n".
std::string trace_headers(const TraceInfo& t);

} // namespace mh::smtp
