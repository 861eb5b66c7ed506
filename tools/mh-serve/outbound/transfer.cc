// transfer.cc — one libcurl SMTP easy handle (transfer.h).
#include "outbound/transfer.h"

#include <curl/curl.h>
#include <unistd.h>

#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <stdexcept>

namespace mh::outbound {
namespace {

template <class T>
void set(CURL* easy, CURLoption option, T value) {
  if (curl_easy_setopt(easy, option, value) != CURLE_OK)
    throw std::runtime_error("libcurl refused option " + std::to_string(static_cast<int>(option)));
}

std::string url_of(const TransferRequest& r) {
  const bool v6 = r.host.find(':') != std::string::npos;
  // The path is the name libcurl sends in EHLO (curl's SMTP URL syntax).
  return "smtp://" + (v6 ? "[" + r.host + "]" : r.host) + ":" + std::to_string(r.port) + "/" + r.helo_name;
}

} // namespace

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::uint64_t leading_return_path_size(int fd) {
  char head[1024];
  std::uint64_t skip = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, head, sizeof head, static_cast<off_t>(skip));
    if (n <= 0) return skip;
    const std::string_view text(head, static_cast<std::size_t>(n));
    const auto eol = text.find('\n');
    if (eol == std::string_view::npos || text.size() < 12 || strncasecmp(head, "Return-Path:", 12) != 0) return skip;
    skip += eol + 1;
  }
}

Transfer::Transfer(TransferRequest request) : request_(std::move(request)) {
  offset_ = leading_return_path_size(request_.message_fd);
  easy_ = curl_easy_init();
  if (!easy_) throw std::runtime_error("curl_easy_init failed");
  try {
    set(easy_, CURLOPT_URL, url_of(request_).c_str());
    set(easy_, CURLOPT_PROTOCOLS_STR, "smtp");
    set(easy_, CURLOPT_MAIL_FROM, request_.sender.c_str());  // "" → MAIL FROM:<>
    for (const auto& r : request_.recipients) {
      curl_slist* next = curl_slist_append(recipients_, r.c_str());
      if (!next) throw std::runtime_error("out of memory");
      recipients_ = next;
    }
    set(easy_, CURLOPT_MAIL_RCPT, recipients_);
    // Go on past refused recipients: each one's reply is read from the transcript.
    set(easy_, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
    set(easy_, CURLOPT_UPLOAD, 1L);
    set(easy_, CURLOPT_CRLF, 1L);
    set(easy_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request_.message_size - std::min(offset_, request_.message_size)));
    set(easy_, CURLOPT_READFUNCTION, &Transfer::read_body);
    set(easy_, CURLOPT_READDATA, this);
    set(easy_, CURLOPT_VERBOSE, 1L);  // feeds on_debug; nothing is printed
    set(easy_, CURLOPT_DEBUGFUNCTION, &Transfer::on_debug);
    set(easy_, CURLOPT_DEBUGDATA, this);
    set(easy_, CURLOPT_ERRORBUFFER, error_);
    set(easy_, CURLOPT_NOSIGNAL, 1L);
    set(easy_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request_.connect_timeout.count()));
    set(easy_, CURLOPT_SERVER_RESPONSE_TIMEOUT, static_cast<long>((request_.timeout.count() + 999) / 1000));
    // Data phase: a peer that stops reading is cut like one that stops answering.
    set(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    set(easy_, CURLOPT_LOW_SPEED_TIME, static_cast<long>((request_.timeout.count() + 999) / 1000));
    using Tls = spool::ServerConfig::OutboundTls;
    const long use_ssl = request_.tls == Tls::required ? CURLUSESSL_ALL
                         : request_.tls == Tls::none   ? CURLUSESSL_NONE
                                                       : CURLUSESSL_TRY;
    set(easy_, CURLOPT_USE_SSL, use_ssl);
    set(easy_, CURLOPT_SSL_VERIFYPEER, 0L);
    set(easy_, CURLOPT_SSL_VERIFYHOST, 0L);
    set(easy_, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    set(easy_, CURLOPT_PRIVATE, this);
  } catch (...) {
    curl_slist_free_all(recipients_);
    curl_easy_cleanup(easy_);
    throw;
  }
}

Transfer::~Transfer() {
  // The runner removes the handle from its multi handle first.
  curl_easy_cleanup(easy_);
  curl_slist_free_all(recipients_);
}

std::string Transfer::failure_text(int curl_code) const {
  if (curl_code == CURLE_OK) return {};
  std::string text = error_[0] ? error_ : curl_easy_strerror(static_cast<CURLcode>(curl_code));
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return text;
}

std::size_t Transfer::read_body(char* buffer, std::size_t size, std::size_t count, void* p) {
  auto* self = static_cast<Transfer*>(p);
  for (;;) {
    const ssize_t n = ::pread(self->request_.message_fd, buffer, size * count, static_cast<off_t>(self->offset_));
    if (n >= 0) {
      self->offset_ += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
    if (errno != EINTR) return CURL_READFUNC_ABORT;
  }
}

int Transfer::on_debug(CURL*, int type, char* data, std::size_t size, void* p) {
  auto* self = static_cast<Transfer*>(p);
  if (type == CURLINFO_HEADER_OUT) self->transcript_.on_sent({data, size});
  else if (type == CURLINFO_HEADER_IN) self->transcript_.on_received({data, size});
  return 0;
}

} // namespace mh::outbound
