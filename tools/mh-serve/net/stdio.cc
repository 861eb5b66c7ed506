// stdio.cc — the session on fds 0/1 with blocking reads and poll() deadlines.
#include "net/stdio.h"

#include "net/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

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

int run_stdio_smtp(const StdioOptions& o, smtp::MailBackend& backend) {
  smtp::SmtpSession session(o.session, o.client, backend);
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
      if (out.action == smtp::Action::deliver) {
        smtp::Output d = session.deliver();
        replies += d.replies;
        log_lines("smtp: ", d.log);
        close = d.action == smtp::Action::close;
      }
      close = close || out.action == smtp::Action::close;
    }
    if (!write_all(replies) || close) return 0;
  }
}

} // namespace mh::net
