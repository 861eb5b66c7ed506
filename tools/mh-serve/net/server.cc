// server.cc — listeners, worker threads, TLS contexts, signals and the graceful stop.
// Threads: the main thread runs the acceptors and signals; N workers each run one
// single-threaded io_context (one per core by default) and own the connections handed
// to them round-robin; a small thread pool absorbs the blocking fsync of deliveries;
// the reverse-DNS resolver (client_check.h) runs one thread of its own.
#include "net/server.h"

#include "net/connection.h"
#include "net/pop3_connection.h"
#include "net/tls.h"
#include "net/log.h"

#include <spool/error.h>
#include <spool/host_state.h>
#include <spool/owner.h>

#include <sys/resource.h>
#include <unistd.h>

#include <thread>

namespace mh::net {
namespace {

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Listen queue per socket; the kernel caps it at net.core.somaxconn.
constexpr int listen_backlog = 1024;

class Server {
public:
  Server(const ServerOptions& o, const spool::Layout& layout, Backends backends)
      : options_(o),
        limits_(o.settings.config.limit_connections, o.settings.config.limit_connections_per_ip),
        pool_(o.delivery_threads),
        tls_(layout, o.settings) {
    for (unsigned i = 0; i < o.threads; ++i) workers_.push_back(std::make_unique<Worker>());
    client_check_ = std::make_unique<serve::ClientCheck>(layout, o.settings);
    shared_.client_check = client_check_.get();
    shared_.smtp = serve::session_config(o.settings);
    shared_.pop3.hostname = o.settings.hostname;
    shared_.backend = &backends.mail;
    shared_.authenticator = &backends.logins;
    shared_.maildrops = &backends.maildrops;
    shared_.timeout_command = o.settings.config.timeout_command;
    shared_.timeout_pop3 = o.settings.pop3_timeout();
    shared_.timeout_data = o.settings.config.timeout_data;
    shared_.greet_wait = o.settings.config.timeout_greet_wait;
    shared_.min_data_rate = o.settings.config.limit_min_data_rate;
    shared_.blocking_pool = &pool_;
  }

  // Before the privilege drop, so a key only root may read works.
  void load_existing_tls() { tls_.load_existing(); }
  // After the privilege drop, so a certificate made on first start belongs to the
  // spool owner.
  void load_tls() {
    tls_.load();
    shared_.tls = &tls_;
  }

  void bind_all() {
    for (const auto& [service, ep] : options_.settings.listeners) {
      const auto address = asio::ip::make_address(ep.ip);
      tcp::acceptor acceptor(main_);
      const tcp::endpoint endpoint(address, ep.port);
      asio::error_code ec;
      acceptor.open(endpoint.protocol(), ec);
      if (ec && address.is_v6() && address.is_unspecified() && !options_.settings.config.listen_given) {
        continue;  // the default "*" on a host without IPv6
      }
      if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
      // "*" binds 0.0.0.0 and :: separately, so :: must not also claim IPv4.
      if (!ec && address.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
      if (!ec) acceptor.bind(endpoint, ec);
      if (!ec) acceptor.listen(listen_backlog, ec);
      const std::string name = serve::service_name(service);
      if (ec) throw spool::Error(spool::Errc::other, "cannot listen for " + name + " on " + ep.text() + ": " + ec.message());
      acceptors_.push_back({std::move(acceptor), service});
      bound_.push_back(name + " on " + ep.text());
    }
    if (acceptors_.empty()) throw spool::Error(spool::Errc::bad_config, "no listener could be bound");
  }

  // Logged once privileges are dropped: "listening" means ready, as whom it will stay.
  void announce() const {
    for (const auto& text : bound_) log_line("listening for " + text);
  }

  int run() {
    asio::signal_set signals(main_, SIGTERM, SIGINT, SIGHUP);
    wait_for_signal(signals);
    for (auto& a : acceptors_) asio::co_spawn(main_, accept_loop(this, &a), asio::detached);

    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    std::vector<std::thread> threads;
    for (auto& w : workers_) {
      guards.push_back(asio::make_work_guard(w->ctx));
      threads.emplace_back([ctx = &w->ctx] { ctx->run(); });
    }
    main_.run();
    // main_.stop() leaves the aborted accepts queued; each holds a socket of a worker's
    // io_context, which is destroyed before main_. Let them finish now (the accept loops
    // see `stopping` and return), while every io_context still exists.
    signals.cancel();
    main_.restart();
    main_.run();
    guards.clear();
    for (auto& w : workers_) w->ctx.stop();
    for (auto& t : threads) t.join();
    pool_.join();
    log_line("stopped");
    return 0;
  }

private:
  void wait_for_signal(asio::signal_set& signals) {
    signals.async_wait([this, &signals](const asio::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        // New connections get the new certificate; open sessions keep the one they have.
        if (shared_.tls) {
          const std::string why = tls_.reload();
          log_line(why.empty() ? "SIGHUP: TLS certificate reloaded from " + tls_.cert_path().string()
                               : "SIGHUP: TLS certificate NOT reloaded, keeping the old one: " + why);
        }
        wait_for_signal(signals);
        return;
      }
      begin_stop(signo);
    });
  }

  // SIGTERM/SIGINT: stop accepting, say 421 to idle sessions, give open transactions
  // `shutdown_grace`, then 421 to the rest; exit when no connection is left.
  void begin_stop(int signo) {
    if (shared_.stopping.exchange(true)) return;
    log_line(std::string("signal ") + (signo == SIGTERM ? "TERM" : "INT") + ": stopping; " +
             std::to_string(limits_.active()) + " connection(s) open");
    for (auto& a : acceptors_) {
      asio::error_code ec;
      a.acceptor.close(ec);
    }
    for (auto& w : workers_) asio::post(w->ctx, [worker = w.get()] { worker->request_stop(false); });
    stop_deadline_ = std::chrono::steady_clock::now() + options_.shutdown_grace;
    poll_stop();
  }

  void poll_stop() {
    if (limits_.active() == 0) {
      main_.stop();
      return;
    }
    if (!forced_ && std::chrono::steady_clock::now() >= stop_deadline_) {
      forced_ = true;
      log_line("shutdown grace over: closing " + std::to_string(limits_.active()) + " connection(s)");
      for (auto& w : workers_) asio::post(w->ctx, [worker = w.get()] { worker->request_stop(true); });
    }
    stop_timer_.expires_after(20ms);
    stop_timer_.async_wait([this](const asio::error_code&) { poll_stop(); });
  }

  Worker& next_worker() { return *workers_[next_++ % workers_.size()]; }

  static std::string peer_ip(const tcp::socket& s) {
    asio::error_code ec;
    auto address = s.remote_endpoint(ec).address();
    if (ec) return "unknown";
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    return address.to_string();
  }

  void admit(tcp::socket socket, Worker& worker, serve::Service service) {
    const std::string ip = peer_ip(socket);
    const bool pop3 = serve::is_pop3(service);
    auto ticket = limits_.admit(ip);
    if (!ticket) {
      log_line(std::string(serve::service_name(service)) + ": client=" + ip + " refused: too many connections");
      // On an implicit-TLS port a clear-text line would only confuse the client.
      if (serve::implicit_tls(service)) {
        asio::error_code ec;
        socket.close(ec);
        return;
      }
      refuse_connection(socket, pop3 ? "-ERR [SYS/TEMP] Too many connections\r\n" : "421 4.7.0 Too many connections\r\n");
      return;
    }
    socket.set_option(tcp::no_delay(true));
    if (pop3) {
      auto c = std::make_shared<Pop3Connection>(shared_, worker, std::move(socket), ip, std::move(ticket), service);
      asio::co_spawn(worker.ctx, serve_pop3(std::move(c)), asio::detached);
      return;
    }
    smtp::ClientInfo client{ip, ""};
    auto c = std::make_shared<Connection>(shared_, worker, std::move(socket), client, std::move(ticket), service);
    start_client_check(c);  // overlaps the greeting; the verdict is needed at the first command
    asio::co_spawn(worker.ctx, serve_smtp(std::move(c)), asio::detached);
  }

  struct Acceptor {
    tcp::acceptor acceptor;
    serve::Service service;
  };

  static asio::awaitable<void> accept_loop(Server* s, Acceptor* listener) {
    tcp::acceptor* acceptor = &listener->acceptor;
    asio::steady_timer backoff(s->main_);
    for (;;) {
      Worker& worker = s->next_worker();
      asio::error_code ec;
      tcp::socket socket = co_await acceptor->async_accept(worker.ctx, asio::redirect_error(asio::use_awaitable, ec));
      if (s->shared_.stopping) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of file descriptors and the like: say so, breathe, go on.
        log_line("accept: " + ec.message());
        backoff.expires_after(100ms);
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      s->admit(std::move(socket), worker, listener->service);
    }
  }

  const ServerOptions& options_;
  asio::io_context main_{1};
  ConnectionLimits limits_;
  asio::thread_pool pool_;
  TlsStore tls_;
  SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // Declared after workers_ so it is destroyed first: its last answers are posted to
  // the workers' io_contexts, which must still exist then.
  std::unique_ptr<serve::ClientCheck> client_check_;
  std::vector<Acceptor> acceptors_;
  std::vector<std::string> bound_;
  std::size_t next_ = 0;
  asio::steady_timer stop_timer_{main_};
  std::chrono::steady_clock::time_point stop_deadline_;
  bool forced_ = false;
};

// limits.connections (1000 by default) needs more descriptors than the usual soft limit
// of 1024 leaves once listeners, Maildir files and locks are counted: raise it to the
// hard limit, which the administrator (or systemd's LimitNOFILE) controls.
void raise_descriptor_limit(std::uint32_t connections) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < connections + 64ull)
    log_line("warning: only " + std::to_string(rl.rlim_cur) + " file descriptors for limits.connections " +
             std::to_string(connections));
}

} // namespace

void check_tls(const spool::Layout& layout, const serve::Settings& settings) {
  TlsStore(layout, settings).check();
}

int run_server(const ServerOptions& options, const spool::Layout& layout, Backends backends) {
  ServerOptions o = options;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (o.threads == 0) o.threads = cores;
  if (o.delivery_threads == 0) o.delivery_threads = 4 * cores;
  raise_descriptor_limit(o.settings.config.limit_connections);
  Server server(o, layout, backends);
  server.bind_all();
  server.load_existing_tls();
  // Least privilege (SPEC §2): ports are bound, now become the spool owner for good.
  spool::act_as_spool_owner(layout);
  if (::geteuid() == 0) log_line("warning: running as root (the spool is owned by root)");
  // Before anything is written: a second daemon with this identity stops here (75).
  const spool::HostClaim identity = spool::HostClaim::take(layout, o.settings.hostname);
  server.load_tls();
  // Before "listening": whoever waits for that line may signal at once, and the
  // handlers are set right after it (run()); starting threads takes a while.
  if (o.start_background) o.start_background();
  server.announce();
  const int code = server.run();
  if (o.stop_background) o.stop_background();
  return code;
}

} // namespace mh::net
