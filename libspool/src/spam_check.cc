// spam_check.cc — one POST /checkv2 to rspamd with libcurl's easy interface
// (spam_check.h). What goes over the wire follows rspamd's HTTP protocol
// (https://rspamd.com/doc/developers/protocol.html): the message is the request body,
// the envelope travels in request headers (From, Rcpt, IP, Helo, Hostname, MTA-Name),
// the reply is a JSON object whose `action`, `score` and `required_score` we read.
// What it trusts: nothing from the reply. The body is capped (max_reply_size), the whole
// exchange is under one deadline, and anything but HTTP 200 with a JSON object holding a
// string `action` and a numeric `score` is SpamVerdict::unknown. Header values that
// could split the request (CR, LF, other controls) or are absurdly long are not sent.
// Not thrown: every failure, including a message file we cannot read, becomes unknown.
#include "spool/spam_check.h"

#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string_view>

namespace spool {
namespace {

// rspamd's reply is a few KiB (symbols and their options); a peer sending more is not
// rspamd, or is broken: stop reading instead of buffering it.
constexpr std::size_t max_reply_size = 1024 * 1024;
// Longest envelope value passed on (an SMTP path is at most 256 octets, RFC 5321
// §4.5.3.1.3; a HELO name 255). Longer ones are left out, not truncated.
constexpr std::size_t max_header_value = 512;
// Longest piece of rspamd's own error text quoted in a detail.
constexpr std::size_t max_quoted_error = 200;

// curl_global_init is not thread-safe in every libcurl build and must precede the first
// easy handle. libcurl counts calls, so mh-serve's own once-only call (outbound/transfer.cc)
// and this one do not conflict; neither is ever undone, the process lives on.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Upload {
  int fd = -1;
  std::uint64_t size = 0;
  std::uint64_t offset = 0;
  int error = 0;        // errno of a failed pread
  bool short_file = false;  // the file ended before `size`
};

// CURLOPT_READFUNCTION: the next piece of the message, read with pread so the caller's
// file offset is untouched and nothing but curl's upload buffer is in memory.
std::size_t read_body(char* buffer, std::size_t size, std::size_t nitems, void* userdata) {
  auto* up = static_cast<Upload*>(userdata);
  const std::uint64_t left = up->size - up->offset;
  if (left == 0) return 0;
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, size * nitems));
  for (;;) {
    const ssize_t n = ::pread(up->fd, buffer, want, static_cast<off_t>(up->offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      up->error = errno;
      return CURL_READFUNC_ABORT;
    }
    if (n == 0) {  // shorter than announced: Content-Length would be a lie
      up->short_file = true;
      return CURL_READFUNC_ABORT;
    }
    up->offset += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }
}

struct Reply {
  std::string body;
  bool too_big = false;
};

// CURLOPT_WRITEFUNCTION: collects the reply, refusing (which aborts the transfer with
// CURLE_WRITE_ERROR) once it would pass max_reply_size.
std::size_t write_reply(char* data, std::size_t size, std::size_t nmemb, void* userdata) {
  auto* reply = static_cast<Reply*>(userdata);
  const std::size_t n = size * nmemb;
  if (reply->body.size() + n > max_reply_size) {
    reply->too_big = true;
    return 0;
  }
  reply->body.append(data, n);
  return n;
}

bool header_value_ok(std::string_view value) {
  if (value.empty() || value.size() > max_header_value) return false;
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// Text from the peer, made fit for a log line: controls become '?', long text is cut.
std::string log_safe(std::string_view text) {
  std::string out(text.substr(0, max_quoted_error));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() > max_quoted_error) out += "...";
  return out;
}

std::string lowercase_first(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') text[0] = static_cast<char>(text[0] - 'A' + 'a');
  return text;
}

struct CurlDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

class Headers {
public:
  // Adds "Name: value" when the value is sendable; returns false when out of memory.
  bool add(const char* name, std::string_view value) {
    if (!header_value_ok(value)) return true;
    std::string line = std::string(name) + ": " + std::string(value);
    return append(line);
  }
  bool append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_.get(), line.c_str());
    if (!next) return false;
    list_.release();
    list_.reset(next);
    return true;
  }
  curl_slist* get() const { return list_.get(); }

private:
  std::unique_ptr<curl_slist, SlistDeleter> list_;
};

// Why the transfer failed, in words for the log.
std::string transfer_failure(CURLcode rc, CURL* easy, const char* error_buffer, const Upload& up, const Reply& reply,
                             std::chrono::milliseconds timeout) {
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    return "timeout after " + std::to_string(timeout.count()) + " ms";
  case CURLE_COULDNT_CONNECT: {
    long os_errno = 0;
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno == ECONNREFUSED) return "connection refused";
    if (os_errno != 0) return "cannot connect: " + lowercase_first(std::strerror(static_cast<int>(os_errno)));
    return "cannot connect";
  }
  case CURLE_COULDNT_RESOLVE_HOST:
    return "cannot resolve the host name";
  case CURLE_WRITE_ERROR:
    if (reply.too_big) return "reply larger than " + std::to_string(max_reply_size / 1024) + " KiB";
    break;
  case CURLE_ABORTED_BY_CALLBACK:
  case CURLE_READ_ERROR:
    if (up.error != 0) return "cannot read the message: " + lowercase_first(std::strerror(up.error));
    if (up.short_file) return "cannot read the message: the file is shorter than its size";
    break;
  case CURLE_GOT_NOTHING:
    return "connection closed without a reply";
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_UNSUPPORTED_PROTOCOL:  // the URL's scheme was checked: this is an HTTP/0.9 reply
    return "unreadable reply (not HTTP)";
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
    return "connection lost: " + std::string(error_buffer[0] ? error_buffer : curl_easy_strerror(rc));
  default:
    break;
  }
  return error_buffer[0] ? std::string(error_buffer) : std::string(curl_easy_strerror(rc));
}

// Reads rspamd's JSON reply into `result`; false (and result.detail) when it is not one.
bool read_reply(const std::string& body, SpamCheckResult& result) {
  const nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) {
    result.detail = "unreadable reply (not a JSON object)";
    return false;
  }
  const auto action = reply.find("action");
  const auto score = reply.find("score");
  if (action == reply.end() || !action->is_string() || score == reply.end() || !score->is_number()) {
    result.detail = "unreadable reply (no action or score)";
    return false;
  }
  result.action = action->get<std::string>();
  result.score = score->get<double>();
  const auto required = reply.find("required_score");
  // The action decides; the threshold is only for the log.
  char text[96];
  if (required != reply.end() && required->is_number())
    std::snprintf(text, sizeof text, "score %.2f/%.2f action ", result.score, required->get<double>());
  else
    std::snprintf(text, sizeof text, "score %.2f action ", result.score);
  result.detail = text + log_safe(result.action);
  // What rspamd's own milter would mark or refuse; "greylist" and "soft reject" are
  // about retrying, not about content, and "no action" is ham.
  const bool spam = result.action == "reject" || result.action == "add header" || result.action == "rewrite subject";
  result.verdict = spam ? SpamVerdict::spam : SpamVerdict::ham;
  return true;
}

// rspamd's error replies are JSON {"error": "..."}: quote it when it is there.
std::string http_failure(long status, const std::string& body) {
  std::string detail = "HTTP " + std::to_string(status);
  const nlohmann::json reply = nlohmann::json::parse(body, nullptr, false);
  if (!reply.is_discarded() && reply.is_object()) {
    const auto error = reply.find("error");
    if (error != reply.end() && error->is_string()) detail += ": " + log_safe(error->get<std::string>());
  }
  return detail;
}

template <class T>
bool set(CURL* easy, CURLoption option, T value) {
  return curl_easy_setopt(easy, option, value) == CURLE_OK;
}

} // namespace

SpamCheckResult check_spam(const SpamCheckRequest& request) {
  SpamCheckResult result;
  std::string base = request.rspamd_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string where = "rspamd at " + (base.empty() ? std::string("(no URL)") : base) + ": ";
  auto fail = [&](std::string why) {
    result = SpamCheckResult{};
    result.detail = where + why;
    return result;
  };
  if (base.empty()) return fail("no URL configured");
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0)
    return fail("not an http:// or https:// URL");
  if (request.message_fd < 0) return fail("no message to check");

  init_curl_once();
  std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
  if (!handle) return fail("curl_easy_init failed");
  CURL* easy = handle.get();

  Upload up{request.message_fd, request.message_size, 0, 0, false};
  Reply reply;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // Envelope, as rspamd's protocol names it. The null sender is "<>" (an empty From
  // header would mean "no sender given"). Hostname is the client's verified name, never
  // ours: ours is MTA-Name.
  Headers headers;
  bool ok = headers.add("From", request.sender.empty() ? std::string_view("<>") : std::string_view(request.sender)) &&
            headers.add("Rcpt", request.recipient) && headers.add("IP", request.client_ip) &&
            headers.add("Helo", request.helo) && headers.add("Hostname", request.client_hostname) &&
            headers.add("MTA-Name", request.hostname) &&
            // No "Expect: 100-continue" for large bodies: curl would wait (up to a
            // second) for a "100 Continue" before sending; rspamd reads the body anyway.
            headers.append("Expect:");
  if (!ok) return fail("out of memory");

  const std::string url = base + "/checkv2";
  const long timeout_ms = static_cast<long>(std::max<std::chrono::milliseconds::rep>(1, request.timeout.count()));
  ok = set(easy, CURLOPT_URL, url.c_str()) && set(easy, CURLOPT_PROTOCOLS_STR, "http,https") &&
       set(easy, CURLOPT_NOPROXY, "*") &&  // rspamd is ours: never via $http_proxy
       set(easy, CURLOPT_NOSIGNAL, 1L) &&  // threads: no SIGALRM for timeouts
       set(easy, CURLOPT_TIMEOUT_MS, timeout_ms) && set(easy, CURLOPT_POST, 1L) &&
       set(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.message_size)) &&
       set(easy, CURLOPT_READFUNCTION, &read_body) && set(easy, CURLOPT_READDATA, &up) &&
       set(easy, CURLOPT_WRITEFUNCTION, &write_reply) && set(easy, CURLOPT_WRITEDATA, &reply) &&
       set(easy, CURLOPT_HTTPHEADER, headers.get()) && set(easy, CURLOPT_ERRORBUFFER, error_buffer) &&
       set(easy, CURLOPT_USERAGENT, "mailhost");
  if (!ok) return fail("libcurl refused an option");

  const CURLcode rc = curl_easy_perform(easy);
  if (rc != CURLE_OK) return fail(transfer_failure(rc, easy, error_buffer, up, reply, request.timeout));

  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return fail(http_failure(status, reply.body));
  if (!read_reply(reply.body, result)) return fail(result.detail);
  return result;
}

} // namespace spool
