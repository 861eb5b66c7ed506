// trace.cc — Return-Path / Received / Delivered-To formatting.
#include "smtp/trace.h"

#include <cstdio>
#include <ctime>

namespace mh::smtp {

std::string rfc5322_date(std::int64_t unix_time) {
  static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string sanitize_for_header(std::string_view text, std::size_t max) {
  std::string out;
  for (unsigned char c : text.substr(0, max)) out += (c > 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

namespace {

// RFC 5321 §4.1.3 address literal as used in Received: [192.0.2.1] / [IPv6:2001:db8::1].
std::string address_literal(const std::string& ip) {
  return ip.find(':') != std::string::npos ? "[IPv6:" + ip + "]" : "[" + ip + "]";
}

} // namespace

std::string trace_headers(const TraceInfo& t) {
  std::string h;
  h += "Return-Path: <" + sanitize_for_header(t.sender, 256) + ">\n";
  h += "Received: from " + sanitize_for_header(t.helo) + " (" +
       (t.client_rdns.empty() ? std::string("unknown") : sanitize_for_header(t.client_rdns)) + " " +
       address_literal(t.client_ip) + ")\n";
  // RFC 3848 §2: ESMTP + "S" (TLS) + "A" (AUTH); plain SMTP has no such variants.
  std::string with = t.esmtp ? std::string("ESMTP") + (t.tls ? "S" : "") + (t.authenticated ? "A" : "") : "SMTP";
  h += "\tby " + t.hostname + " (mailhost) with " + with + " id " + t.id;
  // Like Postfix, name the recipient only when there is exactly one: with several, the
  // list would disclose Bcc recipients to each other.
  if (t.recipients.size() == 1) h += "\n\tfor <" + t.recipients.front() + ">";
  h += "; " + rfc5322_date(t.time) + "\n";
  // Delivered-To marks the final delivery (loop detection); a relayed copy is not one.
  if (t.recipients.size() == 1 && !t.relayed) h += "Delivered-To: " + t.recipients.front() + "\n";
  return h;
}

} // namespace mh::smtp
