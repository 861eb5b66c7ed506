// transfer.h — one SMTP transfer with libcurl: one message, one sender, the recipients
// of one destination, to one server address. Set up here, driven by the runner's multi
// handle (runner.cc), judged by outcome.h from the dialogue captured in a Transcript.
// The message is read with pread() from the queue entry's descriptor, so several
// transfers of one entry (recipients at several destinations) can share it. Stored with
// LF line ends; libcurl turns them into CRLF (CURLOPT_CRLF) and dot-stuffs (RFC 5321
// §4.5.2). TLS: STARTTLS when offered (opportunistic), required, or never; certificates
// are not verified (as Postfix's "may"/"encrypt" levels: MX hosts rarely have names we
// could check against, and a refused transfer helps nobody).
#pragma once

#include "outbound/transcript.h"

#include <spool/config.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef void CURL;  // as curl.h declares it; curl.h stays in transfer.cc and runner.cc
struct curl_slist;

namespace mh::outbound {

struct TransferRequest {
  std::string host;           // an IP literal, or the relay's name (libcurl resolves it)
  std::uint16_t port = 25;
  std::string server_name;    // for logs and DSNs: "mx.example.org[192.0.2.1]:25"
  std::string helo_name;      // our host name, sent in EHLO
  std::string sender;         // "" = the null sender
  std::vector<std::string> recipients;
  int message_fd = -1;        // the queue entry's .msg (not owned)
  std::uint64_t message_size = 0;
  spool::ServerConfig::OutboundTls tls = spool::ServerConfig::OutboundTls::opportunistic;
  std::chrono::milliseconds timeout{300000};          // per reply
  std::chrono::milliseconds connect_timeout{30000};
};

class Transfer {
public:
  explicit Transfer(TransferRequest request);  // throws std::runtime_error when libcurl refuses an option
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  CURL* handle() const noexcept { return easy_; }
  const TransferRequest& request() const noexcept { return request_; }
  const Transcript& transcript() const noexcept { return transcript_; }
  // Call with the CURLcode libcurl reported (as int, so no curl.h here); returns its
  // text, "" for success.
  std::string failure_text(int curl_code) const;

private:
  static std::size_t read_body(char* buffer, std::size_t size, std::size_t count, void* self);
  static int on_debug(CURL*, int type, char* data, std::size_t size, void* self);

  TransferRequest request_;
  Transcript transcript_;
  CURL* easy_ = nullptr;
  struct curl_slist* recipients_ = nullptr;
  std::uint64_t offset_ = 0;
  char error_[256] = {};
};

// Bytes of Return-Path lines at the top of a stored message (the one its local copies
// needed): RFC 5321 §4.4 lets only the final delivery add one, so it is not passed on.
std::uint64_t leading_return_path_size(int fd);

// libcurl's global init, once per process, before any thread uses it.
void init_curl();

} // namespace mh::outbound
