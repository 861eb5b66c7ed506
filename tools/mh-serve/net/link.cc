// link.cc — deadlines, writes, pauses and TLS hand-over shared by SMTP and POP3.
#include "net/link.h"

#include "net/log.h"

namespace mh::net {
namespace {

using std::chrono::steady_clock;

// Closes the socket when the deadline passes, unless the connection moved it on.
// First expiry: cancel pending I/O so the connection can say goodbye; second: close.
asio::awaitable<void> watchdog(std::shared_ptr<Link> c) {
  while (!c->done) {
    c->timer.expires_at(c->deadline);
    asio::error_code ec;
    co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (c->done) break;
    if (c->deadline > steady_clock::now()) continue;
    if (!c->timed_out) {
      c->timed_out = true;
      c->deadline = steady_clock::now() + last_words_time;
      c->stream.socket().cancel(ec);
      c->wake();
    } else {
      c->stream.socket().close(ec);
      break;
    }
  }
}

} // namespace

void Worker::request_stop(bool force) {
  for (Link* c : links) {
    asio::error_code ec;
    c->wake();
    if (force) {
      c->force_stop = true;
      c->stream.socket().cancel(ec);
    } else if (c->waiting_idle) {
      c->stream.socket().cancel(ec);
    }
  }
}

Link::Link(Worker& owner, asio::ip::tcp::socket s, std::string ip, std::unique_ptr<ConnectionLimits::Ticket> t,
           std::chrono::milliseconds first_deadline)
    : worker(owner),
      stream(std::move(s)),
      timer(stream.socket().get_executor()),
      deadline(steady_clock::now() + first_deadline),
      ticket(std::move(t)),
      client_ip(std::move(ip)) {}

void open_link(const std::shared_ptr<Link>& link) {
  link->worker.links.insert(link.get());
  asio::co_spawn(link->stream.socket().get_executor(), watchdog(link), asio::detached);
}

void set_deadline(Link& c, steady_clock::time_point when) {
  if (c.timed_out) return;  // the goodbye's own deadline stands
  c.deadline = when;
  if (when < c.timer.expiry()) c.timer.cancel();  // the watchdog re-arms at the new time
}

asio::awaitable<bool> send_all(std::shared_ptr<Link> c, std::string text, std::chrono::milliseconds timeout) {
  if (text.empty()) co_return true;
  if (!c->timed_out) c->deadline = steady_clock::now() + timeout;
  const IoResult r = co_await c->stream.write_all(asio::buffer(text));
  if (!r.ec) c->replied = true;
  co_return !r.ec;
}

asio::awaitable<void> say_last(std::shared_ptr<Link> c, std::string text) {
  if (!c->timed_out) c->deadline = steady_clock::now() + last_words_time;
  const IoResult r = co_await c->stream.write_all(asio::buffer(text));
  (void)r;
}

asio::awaitable<IoResult> read_some(std::shared_ptr<Link> c) {
  co_return co_await c->stream.read_some(asio::buffer(c->buffer));
}

asio::awaitable<bool> pause(std::shared_ptr<Link> c, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) co_return true;
  asio::steady_timer t(c->stream.socket().get_executor());
  t.expires_after(delay);
  asio::error_code ec;
  // The deadline must not fire during our own slow-down.
  if (!c->timed_out) c->deadline = std::max(c->deadline, steady_clock::now() + delay + last_words_time);
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return !c->force_stop && !c->timed_out;
}

asio::awaitable<Readiness> wait_for_client(std::shared_ptr<Link> c, std::chrono::milliseconds delay) {
  // Shared with the socket's completion handler, which may run after we return.
  auto timer = std::make_shared<asio::steady_timer>(c->stream.socket().get_executor());
  auto readable = std::make_shared<bool>(false);
  timer->expires_after(delay);
  if (!c->timed_out) c->deadline = std::max(c->deadline, steady_clock::now() + delay + last_words_time);
  c->stream.socket().async_wait(asio::ip::tcp::socket::wait_read, [timer, readable](const asio::error_code& ec) {
    if (ec) return;
    *readable = true;
    timer->cancel();
  });
  asio::error_code ec;
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!*readable) c->stream.socket().cancel(ec);  // the wait for bytes: nothing else is pending
  if (c->force_stop || c->timed_out) co_return Readiness::stopped;
  co_return *readable ? Readiness::readable : Readiness::quiet;
}

asio::awaitable<bool> handshake(std::shared_ptr<Link> c, std::shared_ptr<asio::ssl::context> context,
                                std::chrono::milliseconds timeout, const char* service) {
  if (!context) {
    log_line(std::string(service) + ": client=" + c->client_ip + " TLS unavailable");
    co_return false;
  }
  c->deadline = steady_clock::now() + timeout;
  const asio::error_code ec = co_await c->stream.start_tls(std::move(context));
  if (ec) {
    log_line(std::string(service) + ": client=" + c->client_ip + " TLS handshake failed: " +
             (c->timed_out ? std::string("timeout") : ec.message()));
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> close_link(std::shared_ptr<Link> c) {
  if (c->stream.secure() && !c->timed_out && !c->force_stop) {
    c->deadline = std::min(c->deadline, steady_clock::now() + last_words_time);
    co_await c->stream.close();
  } else {
    asio::error_code ec;
    c->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    c->stream.socket().close(ec);
  }
  c->done = true;
  c->timer.cancel();
  c->worker.links.erase(c.get());
}

} // namespace mh::net
