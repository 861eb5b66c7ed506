// cares_channel.cc — the c-ares channel, its thread and its poll loop (cares_channel.h).
#include "dns/cares_channel.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <type_traits>

namespace mh::dns::internal {

static_assert(std::is_same_v<ares_socket_t, int>, "sockets_ and sock_state assume POSIX descriptors");

std::optional<Address> parse_address(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    a.size = 4;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    // A dual-stack listener shows IPv4 clients as ::ffff:a.b.c.d; their PTR lives under
    // in-addr.arpa and their forward records are A records (RFC 4291 §2.5.5.2).
    static constexpr unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes.data(), v4_mapped, sizeof v4_mapped) == 0) {
      std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
      a.family = AF_INET;
      a.size = 4;
    } else {
      a.family = AF_INET6;
      a.size = 16;
    }
  } else {
    return std::nullopt;
  }
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.family, a.bytes.data(), buf, sizeof buf);
  a.text = buf;
  return a;
}

std::string printable(std::string_view s, std::size_t limit) {
  std::string out;
  for (char c : s.substr(0, limit)) out += (c > ' ' && c < 0x7f) ? c : '?';
  if (s.size() > limit) out += "...";
  return out;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// c-ares goes on to the next server or try after SERVFAIL, REFUSED or an unreachable
// server; when none is left it says ARES_ECONNREFUSED, "Could not contact DNS servers",
// which would send whoever reads the log after the wrong problem.
std::string status_text(int status) {
  if (status == ARES_ECONNREFUSED) return "no usable answer from the DNS servers (SERVFAIL, REFUSED or unreachable)";
  return ares_strerror(status);
}

namespace {

void library_init() {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (status != ARES_SUCCESS) throw std::runtime_error(std::string("c-ares: ") + ares_strerror(status));
}

// "ip", "ip:port", "[v6]:port" or a bare v6 address → c-ares' CSV form, or throws.
std::string servers_csv(const std::vector<std::string>& servers) {
  std::string csv;
  for (const auto& s : servers) {
    std::string_view host = s;
    std::string_view port;
    if (!host.empty() && host.front() == '[') {
      const auto close = host.find(']');
      if (close == std::string_view::npos) throw std::runtime_error("bad DNS server '" + s + "'");
      if (close + 1 < host.size()) {
        if (host[close + 1] != ':') throw std::runtime_error("bad DNS server '" + s + "'");
        port = host.substr(close + 2);
      }
      host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      port = host.substr(host.find(':') + 1);
      host = host.substr(0, host.find(':'));
    }
    const auto address = parse_address(host);
    if (!address) throw std::runtime_error("bad DNS server '" + s + "': not an IP address");
    if (!port.empty() || s.find(']') != std::string::npos) {
      const bool digits = !port.empty() && port.size() <= 5 &&
                          std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
        throw std::runtime_error("bad DNS server '" + s + "': bad port");
    }
    std::string entry = address->family == AF_INET6 ? "[" + address->text + "]" : address->text;
    if (!port.empty()) entry += ":" + std::string(port);
    else if (address->family == AF_INET6) entry += ":53";
    csv += (csv.empty() ? "" : ",") + entry;
  }
  return csv;
}

} // namespace

CaresChannel::CaresChannel(const ResolverConfig& config) {
  library_init();
  if (config.timeout.count() <= 0) throw std::runtime_error("DNS timeout must be positive");
  const std::string csv = servers_csv(config.servers);

  ares_options options{};
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS;
  options.timeout = static_cast<int>(std::min<long long>(config.timeout.count(), 3600 * 1000));
  options.tries = kTries;
  options.sock_state_cb = &CaresChannel::sock_state;
  options.sock_state_cb_data = this;
  // Queries are always fully qualified: never append search domains.
  options.flags = ARES_FLAG_NOSEARCH;
  if (const int rc = ares_init_options(&channel_, &options, mask); rc != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares: cannot initialise: ") + ares_strerror(rc));
  if (!csv.empty()) {
    if (const int rc = ares_set_servers_ports_csv(channel_, csv.c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel_);
      throw std::runtime_error("c-ares: cannot use DNS servers '" + csv + "': " + ares_strerror(rc));
    }
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    ares_destroy(channel_);
    throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  }
}

CaresChannel::~CaresChannel() {
  stop();
  if (channel_) ares_destroy(channel_);  // never started
  ::close(wake_fd_);
}

void CaresChannel::start(Hooks hooks) {
  hooks_ = std::move(hooks);
  thread_ = std::thread([this] { run(); });
}

void CaresChannel::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  wake();
  thread_.join();
}

void CaresChannel::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void CaresChannel::sock_state(void* data, int fd, int readable, int writable) {
  auto* self = static_cast<CaresChannel*>(data);
  const short events = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
  if (events == 0)
    self->sockets_.erase(fd);
  else
    self->sockets_[fd] = events;
}

void CaresChannel::run() {
  for (;;) {
    // stop() sets the flag before it wakes us, and the eventfd stays readable until the
    // next wait reads it: a stop is never slept through.
    if (stopping_) {
      // Queries in flight end with ARES_EDESTRUCTION, which the resolvers ignore; their
      // stopped() hook answers every piece of work still pending, exactly once.
      ares_destroy(channel_);
      channel_ = nullptr;
      hooks_.stopped();
      return;
    }
    hooks_.turn(Clock::now());
    wait_and_process(poll_timeout_ms(Clock::now()));
  }
}

int CaresChannel::poll_timeout_ms(Clock::time_point now) {
  long long ms = -1;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) != nullptr)
    ms = static_cast<long long>(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000;
  if (const auto deadline = hooks_.next_deadline()) {
    const long long left = std::max<long long>(std::chrono::ceil<std::chrono::milliseconds>(*deadline - now).count(), 0);
    ms = ms < 0 ? left : std::min(ms, left);
  }
  return static_cast<int>(std::min<long long>(ms, 60 * 1000));
}

void CaresChannel::wait_and_process(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.push_back(pollfd{wake_fd_, POLLIN, 0});
  for (const auto& [fd, events] : sockets_) fds.push_back(pollfd{fd, events, 0});
  const int n = ::poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
  if (n > 0 && (fds[0].revents & POLLIN)) {
    std::uint64_t count;
    [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
  }
  for (std::size_t i = 1; n > 0 && i < fds.size(); ++i) {
    const short ev = fds[i].revents;
    if (ev == 0) continue;
    // Errors and hang-ups are reported to c-ares as readable: its read fails and it
    // moves the query to the next server or try.
    const bool readable = ev & (POLLIN | POLLERR | POLLHUP);
    const bool writable = ev & POLLOUT;
    ares_process_fd(channel_, readable ? fds[i].fd : ARES_SOCKET_BAD, writable ? fds[i].fd : ARES_SOCKET_BAD);
  }
  ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares' own retry timeouts
}

} // namespace mh::dns::internal
