// clamd.cc — the INSTREAM exchange with clamd over a unix or TCP socket. Every step
// waits with poll() against one deadline, so a hung clamd costs clamd.timeout, never more.
#include "content/clamd.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace mh::content {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t chunk_size = 64 * 1024;
constexpr std::size_t max_reply = 4096;

// A failure that ends the exchange: becomes ScanVerdict::failed with its text.
struct ExchangeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Socket {
public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

private:
  int fd_;
};

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

void wait_for(int fd, short events, Clock::time_point deadline, const char* doing) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return;
    if (n == 0) throw ExchangeError(std::string("timed out ") + doing);
    if (errno != EINTR) throw ExchangeError(std::string("poll: ") + std::strerror(errno));
  }
}

// Connects without blocking past the deadline; the socket stays non-blocking.
int connect_with_deadline(int family, const sockaddr* addr, socklen_t len, Clock::time_point deadline) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ExchangeError(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, addr, len) == 0) return fd;
  const int err = errno;
  if (err != EINPROGRESS && err != EAGAIN) {
    ::close(fd);
    throw ExchangeError(std::string("connect: ") + std::strerror(err));
  }
  try {
    wait_for(fd, POLLOUT, deadline, "connecting");
  } catch (...) {
    ::close(fd);
    throw;
  }
  int so_error = 0;
  socklen_t sl = sizeof so_error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl);
  if (so_error != 0) {
    ::close(fd);
    throw ExchangeError(std::string("connect: ") + std::strerror(so_error));
  }
  return fd;
}

int connect_clamd(const ClamdAddress& a, Clock::time_point deadline) {
  if (a.kind == ClamdAddress::Kind::unix_socket) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (a.path.size() >= sizeof sun.sun_path) throw ExchangeError("socket path too long");
    std::memcpy(sun.sun_path, a.path.data(), a.path.size());
    return connect_with_deadline(AF_UNIX, reinterpret_cast<const sockaddr*>(&sun), sizeof sun, deadline);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(a.port);
  if (const int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    throw ExchangeError(std::string("cannot resolve ") + a.host + ": " + ::gai_strerror(rc));
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    try {
      const int fd = connect_with_deadline(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline);
      ::freeaddrinfo(res);
      return fd;
    } catch (const ExchangeError& e) {
      last = e.what();
    }
  }
  ::freeaddrinfo(res);
  throw ExchangeError(last);
}

void send_all(int fd, const char* data, std::size_t size, Clock::time_point deadline) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_for(fd, POLLOUT, deadline, "sending");
      continue;
    }
    // clamd closes the stream early when it cuts it (size limit): its reply says why.
    throw ExchangeError(std::string("send: ") + std::strerror(errno));
  }
}

// clamd ends each reply with NUL (z-commands); a reply cut short by a close is taken as is.
std::string read_reply(int fd, Clock::time_point deadline) {
  std::string reply;
  char buf[512];
  while (reply.size() < max_reply) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      reply.append(buf, static_cast<std::size_t>(n));
      if (const auto nul = reply.find('\0'); nul != std::string::npos) {
        reply.resize(nul);
        break;
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(fd, POLLIN, deadline, "waiting for the verdict");
      continue;
    }
    throw ExchangeError(std::string("recv: ") + std::strerror(errno));
  }
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  return reply;
}

// "stream: OK", "stream: NAME FOUND", "... ERROR" (clamd(8)).
ScanVerdict interpret(const std::string& reply, const std::string& where) {
  ScanVerdict v;
  v.detail = where + ": " + (reply.empty() ? std::string("no answer") : reply);
  std::string_view body = reply;
  if (const auto colon = body.find(": "); colon != std::string_view::npos) body.remove_prefix(colon + 2);
  const auto ends_with = [&](std::string_view s) { return body.size() >= s.size() && body.substr(body.size() - s.size()) == s; };
  if (body == "OK") {
    v.kind = ScanVerdict::Kind::clean;
  } else if (ends_with(" FOUND")) {
    v.kind = ScanVerdict::Kind::infected;
    v.virus = std::string(body.substr(0, body.size() - 6));
  } else {
    v.kind = ScanVerdict::Kind::failed;   // "... ERROR", or anything we do not understand
  }
  return v;
}

std::uint16_t parse_port(const std::string& text, const std::string& whole) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("clamd.address: bad port in \"" + whole + "\"");
  const unsigned long p = std::stoul(text);
  if (p == 0 || p > 65535) throw std::invalid_argument("clamd.address: bad port in \"" + whole + "\"");
  return static_cast<std::uint16_t>(p);
}

} // namespace

ClamdAddress ClamdAddress::parse(const std::string& text) {
  ClamdAddress a;
  if (text.rfind("unix:", 0) == 0 || text.rfind('/', 0) == 0) {
    a.kind = Kind::unix_socket;
    a.path = text.rfind("unix:", 0) == 0 ? text.substr(5) : text;
    if (a.path.empty() || a.path.front() != '/')
      throw std::invalid_argument("clamd.address: a unix socket needs an absolute path: \"" + text + "\"");
    if (a.path.size() >= sizeof(sockaddr_un{}.sun_path))
      throw std::invalid_argument("clamd.address: socket path too long: \"" + text + "\"");
    return a;
  }
  std::string rest = text.rfind("tcp:", 0) == 0 ? text.substr(4) : text;
  a.kind = Kind::tcp;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find("]:");
    if (close == std::string::npos) throw std::invalid_argument("clamd.address: expected [V6]:PORT: \"" + text + "\"");
    a.host = rest.substr(1, close - 1);
    a.port = parse_port(rest.substr(close + 2), text);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0 || rest.find(':') != colon)
      throw std::invalid_argument("clamd.address: expected unix:/PATH or HOST:PORT: \"" + text + "\"");
    a.host = rest.substr(0, colon);
    a.port = parse_port(rest.substr(colon + 1), text);
  }
  return a;
}

std::string ClamdAddress::str() const {
  if (kind == Kind::unix_socket) return "unix:" + path;
  return host.find(':') != std::string::npos ? "tcp:[" + host + "]:" + std::to_string(port)
                                             : "tcp:" + host + ":" + std::to_string(port);
}

ScanVerdict ClamdScanner::scan(const ChunkSource& source) {
  const auto deadline = Clock::now() + timeout_;
  const std::string where = "clamd " + address_.str();
  try {
    Socket s(connect_clamd(address_, deadline));
    static constexpr char command[] = "zINSTREAM";
    send_all(s.get(), command, sizeof command, deadline);  // with its NUL
    std::vector<char> buf(4 + chunk_size);
    for (;;) {
      const std::size_t n = source(buf.data() + 4, chunk_size);
      const std::uint32_t len = htonl(static_cast<std::uint32_t>(n));
      std::memcpy(buf.data(), &len, 4);
      try {
        send_all(s.get(), buf.data(), 4 + n, deadline);
      } catch (const ExchangeError& e) {
        // clamd stops reading when it cuts the stream and says why before it closes.
        const std::string reply = read_reply(s.get(), deadline);
        if (!reply.empty()) return interpret(reply, where);
        throw;
      }
      if (n == 0) break;
    }
    return interpret(read_reply(s.get(), deadline), where);
  } catch (const ExchangeError& e) {
    ScanVerdict v;
    v.kind = ScanVerdict::Kind::failed;
    v.detail = where + ": " + e.what();
    return v;
  }
}

ScanVerdict ClamdScanner::version() {
  const auto deadline = Clock::now() + timeout_;
  const std::string where = "clamd " + address_.str();
  ScanVerdict v;
  try {
    Socket s(connect_clamd(address_, deadline));
    static constexpr char command[] = "zVERSION";
    send_all(s.get(), command, sizeof command, deadline);
    v.detail = read_reply(s.get(), deadline);
    v.kind = v.detail.empty() ? ScanVerdict::Kind::failed : ScanVerdict::Kind::clean;
    if (v.detail.empty()) v.detail = where + ": no answer to VERSION";
  } catch (const ExchangeError& e) {
    v.kind = ScanVerdict::Kind::failed;
    v.detail = where + ": " + e.what();
  }
  return v;
}

ScanVerdict ClamdScanner::probe_stream_limit(std::uint64_t bytes) {
  std::uint64_t left = bytes;
  return scan([&](char* buffer, std::size_t capacity) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, capacity));
    std::memset(buffer, 0, n);
    left -= n;
    return n;
  });
}

} // namespace mh::content
