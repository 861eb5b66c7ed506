// transcript.h — what a remote SMTP server answered to each command of one libcurl
// transfer. libcurl reports one result per transfer, but RFC 5321 §3.3 answers RCPT one
// recipient at a time, and one refused recipient must neither fail the others nor make
// us send the message to them again. So the runner reads the dialogue from libcurl's
// debug stream: command lines it sent (CURLINFO_HEADER_OUT) and reply lines it received
// (CURLINFO_HEADER_IN), fed here in order. No libcurl in this file: unit-tested alone.
// The remote side is untrusted: each reply kept is bounded (kMaxReplyText) and stripped
// of control characters, so nothing it says can grow memory or inject log/DSN lines.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mh::outbound {

inline constexpr std::size_t kMaxReplyText = 1000;   // per reply, all lines joined
inline constexpr std::size_t kMaxPendingLine = 4096; // a reply line longer is cut

struct Reply {
  int code = 0;         // 250, 451, 550 …
  std::string text;     // the whole reply, lines joined with "; " ("550 5.1.1 <b@x>: unknown")
  bool positive() const noexcept { return code >= 200 && code < 400; }
  bool temporary() const noexcept { return code >= 400 && code < 500; }
  bool permanent() const noexcept { return code >= 500; }
};

class Transcript {
public:
  void on_sent(std::string_view bytes);      // CURLINFO_HEADER_OUT
  void on_received(std::string_view bytes);  // CURLINFO_HEADER_IN

  // The reply to MAIL FROM, to RCPT TO:<address> (address as sent, without <>), and to
  // the end of the message data (after a 354 to DATA; a non-354 DATA reply is kept as
  // data_reply() and there is no final). nullopt when that reply never came.
  const std::optional<Reply>& mail_reply() const noexcept { return mail_; }
  std::optional<Reply> rcpt_reply(const std::string& address) const;
  const std::optional<Reply>& data_reply() const noexcept { return data_; }
  const std::optional<Reply>& final_reply() const noexcept { return final_; }
  // The last complete reply of any command (greeting, EHLO, STARTTLS …): for failures
  // before the mail transaction started.
  const std::optional<Reply>& last_reply() const noexcept { return last_; }
  bool transaction_started() const noexcept { return mail_sent_; }

private:
  enum class Awaiting { greeting, other, mail, rcpt, data, end_of_data };
  void command(std::string_view line);
  void reply_line(std::string_view line);

  Awaiting awaiting_ = Awaiting::greeting;
  std::string current_rcpt_;
  std::string partial_;            // received bytes not yet ending in LF
  std::string reply_;              // lines of the reply being read
  int reply_code_ = 0;
  bool mail_sent_ = false;
  std::optional<Reply> mail_, data_, final_, last_;
  std::map<std::string, Reply> rcpts_;
};

} // namespace mh::outbound
