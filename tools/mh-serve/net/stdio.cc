// stdio.cc — the session on fds 0/1 with blocking reads and poll() deadlines.
#include "net/stdio.h"

#include "net/log.h"
#include "pop3/dot_stuffer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

namespace mh::net {
namespace {

bool write_all(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(1, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Waits until stdin is readable; false on timeout.
bool wait_readable(std::chrono::milliseconds timeout) {
  pollfd p{0, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(timeout.count(), 0x7fffffff)));
    if (r < 0 && errno == EINTR) continue;
    return r != 0;
  }
}

} // namespace

std::string stdin_peer_ip() {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(0, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a))
      ::inet_ntop(AF_INET, reinterpret_cast<const unsigned char*>(a) + 12, buf, sizeof buf);
    else
      ::inet_ntop(AF_INET6, a, buf, sizeof buf);
  }
  return buf;
}

int run_stdio_smtp(const StdioOptions& o, smtp::MailBackend& backend, auth::Authenticator& authenticator) {
  smtp::SmtpSession session(o.session, o.client, backend, authenticator);
  session.set_verdict(o.verdict);
  if (!write_all(session.greeting().replies)) return 0;
  char buffer[16384];
  for (;;) {
    if (!wait_readable(session.in_data() ? o.timeout_data : o.timeout_command)) {
      smtp::Output t = session.timeout();
      log_lines("smtp: ", t.log);
      write_all(t.replies);
      return 0;
    }
    ssize_t n = ::read(0, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log_lines("smtp: ", session.disconnected().log);
      return 0;
    }
    std::string_view in(buffer, static_cast<std::size_t>(n));
    std::string replies;
    bool close = false;
    while (!in.empty() && !close) {
      smtp::Output out = session.feed(in);
      in.remove_prefix(out.consumed);
      replies += out.replies;
      log_lines("smtp: ", out.log);
      if (out.action == smtp::Action::deliver || out.action == smtp::Action::authenticate) {
        smtp::Output d = out.action == smtp::Action::deliver ? session.deliver() : session.authenticate();
        if (d.delay.count() > 0) {  // the failed-login penalty: replies so far go out first
          if (!write_all(replies)) return 0;
          replies.clear();
          std::this_thread::sleep_for(d.delay);
        }
        replies += d.replies;
        log_lines("smtp: ", d.log);
        close = d.action == smtp::Action::close;
      }
      // Action::starttls cannot come: the session is made with tls_available = false.
      close = close || out.action == smtp::Action::close || out.action == smtp::Action::starttls;
    }
    if (!write_all(replies) || close) return 0;
  }
}

namespace {

// RETR/TOP: the message after its "+OK", then the terminator. A read error after the
// "+OK" cannot be reported in POP3 (RFC 1939 has no way to take it back): false, and
// the caller ends the session so the client sees a broken transfer, not a short message.
bool stream_message(const pop3::Transfer& t, const std::string& client_ip) {
  pop3::DotStuffer stuffer(t.top_lines);
  std::string chunk(64 * 1024, '\0');
  bool ok = true;
  while (!stuffer.done()) {
    const ssize_t n = ::read(t.fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log_line("pop3: client=" + client_ip + " read error during transfer");
      ok = false;
      break;
    }
    if (n == 0) break;
    if (!write_all(stuffer.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n))))) {
      ok = false;
      break;
    }
  }
  ::close(t.fd);
  return ok && write_all(stuffer.finish());
}

} // namespace

int run_stdio_pop3(const StdioPop3Options& o, auth::Authenticator& authenticator, pop3::MaildropProvider& maildrops) {
  pop3::Pop3Session session(o.session, o.client_ip, authenticator, maildrops);
  if (!write_all(session.greeting().replies)) return 0;
  char buffer[16384];
  for (;;) {
    if (!wait_readable(o.timeout)) {
      pop3::Output t = session.timeout();
      log_lines("pop3: ", t.log);
      write_all(t.replies);
      return 0;
    }
    ssize_t n = ::read(0, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log_lines("pop3: ", session.disconnected().log);
      return 0;
    }
    std::string_view in(buffer, static_cast<std::size_t>(n));
    std::string replies;
    bool close = false;
    while (!in.empty() && !close) {
      pop3::Output out = session.feed(in);
      in.remove_prefix(out.consumed);
      replies += out.replies;
      log_lines("pop3: ", out.log);
      switch (out.action) {
      case pop3::Action::authenticate: {
        pop3::Output a = session.authenticate();
        log_lines("pop3: ", a.log);
        if (a.delay.count() > 0) {  // the failed-login penalty: replies so far go out first
          if (!write_all(std::exchange(replies, {}))) return 0;
          std::this_thread::sleep_for(a.delay);
        }
        replies += a.replies;
        close = a.action == pop3::Action::close;
        break;
      }
      case pop3::Action::transfer:
        if (!write_all(std::exchange(replies, {})) || !stream_message(out.transfer, o.client_ip)) {
          log_lines("pop3: ", session.disconnected().log);
          return 0;
        }
        break;
      case pop3::Action::update: {
        pop3::Output u = session.update();
        log_lines("pop3: ", u.log);
        replies += u.replies;
        close = true;
        break;
      }
      case pop3::Action::starttls:  // never: the session is made with tls_available = false
      case pop3::Action::close:
        close = true;
        break;
      case pop3::Action::none:
        if (out.consumed == 0) in = {};  // nothing more to do with this input
        break;
      }
    }
    if (!write_all(replies) || close) return 0;
  }
}

} // namespace mh::net
