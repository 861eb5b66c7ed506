// connection.cc — the SMTP connection coroutine: TLS (SMTPS, STARTTLS), the client
// check, and the hand-off of deliveries and logins to the blocking pool.
#include "net/connection.h"

#include "net/deadline.h"
#include "net/log.h"
#include "net/session_io.h"

#include <optional>

namespace mh::net {
namespace {

using std::chrono::steady_clock;
using namespace std::chrono_literals;

smtp::SessionConfig config_for(const SharedState& shared, serve::Service service, const std::string& ip) {
  smtp::SessionConfig config = shared.smtp;
  // RFC 8314 §3.3: port 465 is message submission over implicit TLS, so SMTPS asks for
  // AUTH like the submission listener; inbound mail from other hosts comes to smtp.
  config.submission = service == serve::Service::submission || service == serve::Service::smtps;
  config.tls_active = service == serve::Service::smtps;
  config.tls_available = shared.tls != nullptr;  // on SMTPS, STARTTLS gets "TLS already active"
  config.plaintext_auth_allowed = shared.client_check->plaintext_login_allowed(ip);
  config.sync_required = true;  // RFC 2920 §3.1 on every listener (--stdio is exempt)
  return config;
}

// Feeds one read's worth of bytes to the session; replies are written once per read
// (RFC 2920: a pipelined group gets its replies together). False: close.
asio::awaitable<bool> process(std::shared_ptr<Connection> c, std::size_t n) {
  std::string_view in(c->buffer.data(), n);
  std::string replies;
  // Sent already but not yet read: a DATA at the end of this read has company.
  const bool more_pending = c->stream.input_pending();
  while (!in.empty()) {
    smtp::Output o = c->session.feed(in, more_pending);
    in.remove_prefix(o.consumed);
    replies += o.replies;
    log_output<Connection>(o);
    if (o.action == smtp::Action::starttls) {
      // The 220 goes out; what the client pipelined behind STARTTLS goes with this read.
      const bool secured = co_await start_tls(c, std::move(replies));
      co_return secured;
    }
    if (o.action == smtp::Action::deliver || o.action == smtp::Action::authenticate) {
      const bool deliver = o.action == smtp::Action::deliver;
      if (deliver) c->deadline = steady_clock::now() + c->shared.timeout_data;
      smtp::Output d = co_await on_blocking_pool(
          c, deliver ? &smtp::SmtpSession::deliver : &smtp::SmtpSession::authenticate);
      if (d.delay.count() > 0) {
        const bool waited = co_await send_then_pause(c, std::exchange(replies, {}), d.delay);
        if (!waited) co_return false;
      }
      replies += d.replies;
      log_output<Connection>(d);
      if (d.action == smtp::Action::close) o.action = smtp::Action::close;
    }
    if (o.action == smtp::Action::close) {
      co_await send_reply(c, std::move(replies));
      co_return false;
    }
    if (o.consumed == 0 && o.action == smtp::Action::none) break;  // cannot happen; never spin
  }
  co_return co_await send_reply(c, std::move(replies));
}

// Waits for the client check's verdict, which must be known before the first command
// is processed (RCPT needs it; delaying HELO/MAIL costs nothing). The wait counts as the
// server's time, not the client's: the deadline covers the longest check. False when
// woken by a timeout or a stop instead.
asio::awaitable<bool> wait_for_client_check(std::shared_ptr<Connection> c) {
  c->deadline = steady_clock::now() + c->shared.timeout_command + c->shared.client_check->longest_check();
  while (!c->client_checked && !c->timed_out && !c->force_stop && !c->shared.stopping) {
    c->client_check_done.expires_at(steady_clock::time_point::max());
    asio::error_code ec;
    co_await c->client_check_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return c->client_checked;
}

// Whether the client sent something before the greeting (SPEC §8): on the smtp listener
// within timeouts.greet_wait (postscreen's pregreet test, shortened: spam software that
// talks first is caught before it costs a delivery), elsewhere at once (submission and
// SMTPS clients are our own users). A client that hangs up meanwhile is `gone` at once,
// so its connection slot is not held for the rest of the wait.
enum class BeforeGreeting { quiet, talked, gone };
asio::awaitable<BeforeGreeting> talked_first(std::shared_ptr<Connection> c) {
  if (c->service == serve::Service::smtp && c->shared.greet_wait.count() > 0) {
    const Readiness r = co_await wait_for_client(c, c->shared.greet_wait);
    if (r == Readiness::stopped) co_return BeforeGreeting::quiet;  // the loop says goodbye
    if (r == Readiness::readable && !c->stream.input_pending()) co_return BeforeGreeting::gone;
  }
  co_return c->stream.input_pending() ? BeforeGreeting::talked : BeforeGreeting::quiet;
}

// Deadlines, not idle timers (SPEC §8; net/deadline.h): a command line must be complete
// within timeouts.command of the previous reply — the bytes of the line do not move the
// deadline, so a trickler is cut as surely as a silent client. DATA runs on DataDeadline.
void set_read_deadline(Connection& c, std::optional<DataDeadline>& data) {
  const auto now = steady_clock::now();
  if (c.session.in_data()) {
    if (!data) data.emplace(now, c.shared.timeout_data, c.shared.min_data_rate);  // its 354 just went out
    set_deadline(c, data->deadline());
    c.replied = false;
    return;
  }
  data.reset();
  if (std::exchange(c.replied, false)) set_deadline(c, now + c.shared.timeout_command);
}

asio::awaitable<void> session_loop(std::shared_ptr<Connection> c) {
  const bool secured = co_await secure_from_first_byte(c, c->service == serve::Service::smtps, "smtps");
  if (!secured) co_return;
  const BeforeGreeting early = co_await talked_first(c);
  if (early == BeforeGreeting::gone) co_return;  // hung up before the greeting: nothing to say
  if (early == BeforeGreeting::talked) {
    co_await last_words(c, c->session.protocol_sync_error("bytes before the greeting"));
    co_return;
  }
  std::string greeting = c->session.greeting().replies;
  const bool greeted = co_await send_reply(c, std::move(greeting));
  if (!greeted) co_return;
  std::optional<DataDeadline> data;
  while (!c->session.closed()) {
    if (must_stop(*c, c->shared, c->session.in_transaction())) {
      smtp::Output bye = c->session.shutdown();
      co_await last_words(c, std::move(bye));
      co_return;
    }
    set_read_deadline(*c, data);
    c->waiting_idle = !c->session.in_transaction();
    const IoResult r = co_await read_some(c);
    c->waiting_idle = false;
    if (r.ec) {
      const bool go_on = co_await read_failed(c, r.ec);
      if (go_on) continue;
      co_return;
    }
    if (data) data->received(steady_clock::now(), r.bytes);
    if (!c->client_checked) {
      const bool checked = co_await wait_for_client_check(c);
      if (!checked) {
        smtp::Output bye = c->timed_out ? c->session.timeout() : c->session.shutdown();
        co_await last_words(c, std::move(bye));
        co_return;
      }
    }
    const bool go_on = co_await process(c, r.bytes);
    if (!go_on) co_return;
  }
}

} // namespace

Connection::Connection(SharedState& shared_state, Worker& owner, asio::ip::tcp::socket s, smtp::ClientInfo client,
                       std::unique_ptr<ConnectionLimits::Ticket> t, serve::Service svc)
    : Link(owner, std::move(s), client.ip, std::move(t), shared_state.timeout_command),
      shared(shared_state),
      service(svc),
      session(config_for(shared_state, svc, client.ip), client, *shared_state.backend, *shared_state.authenticator),
      client_check_done(stream.socket().get_executor()) {}

asio::awaitable<void> serve_smtp(std::shared_ptr<Connection> c) {
  open_link(c);
  try {
    co_await session_loop(c);
  } catch (const std::exception& e) {
    log_line("smtp: client=" + c->client_ip + " internal error: " + e.what());
  }
  co_await close_link(c);
}

void start_client_check(const std::shared_ptr<Connection>& c) {
  // Submission (and SMTPS) needs AUTH and never consults the verdict (SPEC §8).
  if (c->service == serve::Service::submission || c->service == serve::Service::smtps) {
    c->client_checked = true;
    return;
  }
  if (auto verdict = c->shared.client_check->trusted_verdict(c->client_ip)) {
    c->session.set_verdict(std::move(*verdict));
    c->client_checked = true;
    return;
  }
  // The answer comes on the resolver's thread: hand it to the connection's own thread.
  // A weak_ptr, so a client that left does not keep its slot (ticket) until DNS answers.
  // The server destroys the resolver before the workers' io_contexts, so the executor
  // is still valid when the last answers ("resolver stopped") are posted.
  std::weak_ptr<Connection> weak = c;
  auto executor = c->stream.socket().get_executor();
  c->shared.client_check->check(c->client_ip, [weak, executor](smtp::ClientVerdict verdict) {
    asio::post(executor, [weak, verdict = std::move(verdict)]() mutable {
      auto conn = weak.lock();
      if (!conn || conn->done) return;
      conn->session.set_verdict(std::move(verdict));
      conn->client_checked = true;
      conn->client_check_done.cancel();
    });
  });
}

void refuse_connection(asio::ip::tcp::socket& socket, std::string_view reply) {
  // The reply is a few dozen bytes: it fits the socket buffer, so this never waits on
  // a client that does not read.
  asio::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(reply), ec);
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

} // namespace mh::net
