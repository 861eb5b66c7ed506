// mh-serve — the mail daemon (SPEC §8). This file only reads the command line and
// picks a mode: --check-config, --stdio smtp|pop3 (one session on stdin/stdout), or the
// network server (net/server.h). Runs in the foreground; logs to stderr.
#include "auth/spool_authenticator.h"
#include "client_check.h"
#include "common/cli.h"
#include "content/clamd.h"
#include "net/server.h"
#include "net/stdio.h"
#include "outbound/runner.h"
#include "pop3/spool_maildrop.h"
#include "queue_cli.h"
#include "serve_config.h"
#include "smtp/spool_backend.h"

#include <spool/accounts.h>
#include <spool/error.h>
#include <spool/owner.h>
#include <spool/units.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <optional>

namespace {

struct ServeOptions {
  bool check_config = false;
  std::optional<std::string> stdio_service;
  std::optional<std::string> client_ip;
  unsigned threads = 0;
  unsigned delivery_threads = 0;
  std::string shutdown_grace = "10s";
  mh::serve::Identity identity;
};

// --stdio pop3: one POP3 session on stdin/stdout (no STLS on a pipe; plaintext logins
// only from auth.allow_plaintext networks, as on the network).
int serve_stdio_pop3(const spool::Layout& layout, const mh::serve::Settings& settings, const ServeOptions& o) {
  spool::act_as_spool_owner(layout);
  mh::net::StdioPop3Options so;
  so.session.hostname = settings.hostname;
  so.client_ip = o.client_ip ? *o.client_ip : mh::net::stdin_peer_ip();
  if (so.client_ip.empty()) so.client_ip = "127.0.0.1";
  const mh::serve::ClientCheck client_check(layout, settings);  // also validates auth.allow_plaintext
  so.session.plaintext_allowed = client_check.plaintext_login_allowed(so.client_ip);
  so.timeout = settings.pop3_timeout();
  // Under inetd every connection is a process of its own, so the failed-login throttle
  // only sees one connection's attempts; the daemon's is shared by all.
  mh::auth::SpoolAuthenticator authenticator(layout);
  mh::pop3::SpoolMaildropProvider maildrops(layout);
  return mh::net::run_stdio_pop3(so, authenticator, maildrops);
}

// --check-config: where postmaster mail goes (SPEC §8), for the bare <postmaster> and
// for every hosted domain, so an administrator sees it before the first message does.
void describe_postmaster(const spool::Layout& layout, const std::string& configured, mh::Result& result) {
  const spool::PostmasterRoute bare = spool::bare_postmaster_route(layout, configured);
  result.text += "postmaster: " + bare.describe() + "\n";
  result.data["postmaster"]["bare"] = bare.describe();
  result.data["postmaster"]["domains"] = nlohmann::json::object();
  for (const spool::Domain& d : spool::list_domains(layout)) {
    const spool::PostmasterRoute r = spool::postmaster_route(layout, d);
    result.text += "postmaster@" + d.str() + ": " + r.describe() + "\n";
    result.data["postmaster"]["domains"][d.str()] = r.describe();
  }
}

// With clamd configured: its version, and a warning when it cuts a stream shorter than
// the largest message we accept (Debian's StreamMaxLength is 25M; limits.message_size
// is 30 MB): such a message would get 451 for ever. A clamd that does not answer is a
// warning, not a configuration error: it may simply not be started yet.
void describe_clamd(const mh::serve::Settings& settings, mh::Result& result) {
  const spool::ServerConfig& config = settings.config;
  if (config.clamd_address.empty()) {
    result.data["clamd"] = nullptr;
    return;
  }
  mh::content::ClamdScanner clamd(mh::content::ClamdAddress::parse(config.clamd_address), config.clamd_timeout);
  nlohmann::json& j = result.data["clamd"];
  j["address"] = config.clamd_address;
  const mh::content::ScanVerdict version = clamd.version();
  if (version.kind != mh::content::ScanVerdict::Kind::clean) {
    j["version"] = nullptr;
    j["warning"] = "clamd does not answer: " + version.detail;
    result.text += "clamd: warning: does not answer: " + version.detail + "\n";
    return;
  }
  j["version"] = version.detail;
  result.text += "clamd: " + version.detail + "\n";
  const mh::content::ScanVerdict probe = clamd.probe_stream_limit(config.limit_message_size);
  if (probe.kind == mh::content::ScanVerdict::Kind::clean) return;
  const std::string warning = "clamd StreamMaxLength is below limits.message_size (" +
                              std::to_string(config.limit_message_size) + " bytes): " + probe.detail +
                              "; set StreamMaxLength " + std::to_string(config.limit_message_size / 1048576 + 1) +
                              "M or more in clamd.conf";
  j["warning"] = warning;
  result.text += "clamd: warning: " + warning + "\n";
}

mh::Result run_serve(const mh::Tool& tool, const ServeOptions& o) {
  const spool::Layout layout(spool::resolve_spool_root(tool.common().spool));
  const bool privileged = ::geteuid() == 0;
  mh::serve::Settings settings = mh::serve::load_settings(layout, privileged, o.identity);
  mh::Result result;

  if (o.check_config) {
    // Builds the resolver too: a DNS server c-ares cannot use is a config error.
    const mh::serve::ClientCheck client_check(layout, settings);
    mh::net::check_tls(layout, settings);
    const mh::outbound::QueueRunner runner(layout, settings);  // relay.host, dns.servers
    result.text = layout.server_config().string() + ": ok\n";
    result.data = {{"config", layout.server_config().string()}, {"ok", true}, {"hostname", settings.hostname}};
    for (const auto& l : settings.listeners) {
      result.data["listen"][mh::serve::service_name(l.service)].push_back(l.endpoint.text());
      if (l.service == mh::serve::Service::smtp) result.data["smtp"].push_back(l.endpoint.text());  // since 0.1
    }
    result.data["trusted_networks"] = nlohmann::json::array();
    for (const auto& n : client_check.trusted_networks()) result.data["trusted_networks"].push_back(n.text());
    describe_postmaster(layout, settings.config.postmaster, result);
    describe_clamd(settings, result);
    return result;
  }

  if (o.stdio_service) {
    // stdout is the session's channel: a JSON document after it would be protocol garbage.
    if (tool.common().json) throw spool::Error(spool::Errc::usage, "--json cannot be used with --stdio");
    if (o.client_ip && !mh::serve::ip_literal_ok(*o.client_ip))
      throw spool::Error(spool::Errc::usage, "--client-ip " + *o.client_ip + ": not an IPv4 or IPv6 address");
    if (*o.stdio_service == "pop3") {
      result.exit_code = serve_stdio_pop3(layout, settings, o);
      return result;
    }
    spool::act_as_spool_owner(layout);
    mh::smtp::SpoolBackend backend(layout, settings.config.limit_sending_per_hour);
    backend.set_postmaster(settings.config.postmaster);
    backend.set_outbound({settings.hostname, nullptr});  // the running daemon's runner finds what it queues
    backend.set_filter_services(mh::serve::filter_services(layout, settings));
    backend.set_content_check(mh::serve::content_check(settings));
    mh::auth::SpoolAuthenticator authenticator(layout);  // per process under inetd, like POP3's
    mh::net::StdioOptions so;
    so.session = mh::serve::session_config(settings);
    so.session.tls_available = false;  // no STARTTLS on a pipe
    so.client.ip = o.client_ip ? *o.client_ip : mh::net::stdin_peer_ip();
    if (so.client.ip.empty()) so.client.ip = "127.0.0.1";
    // Before the greeting: one session has nothing else to overlap the lookup with.
    mh::serve::ClientCheck client_check(layout, settings);
    so.verdict = client_check.check_blocking(so.client.ip);
    so.session.plaintext_auth_allowed = client_check.plaintext_login_allowed(so.client.ip);
    so.timeout_command = settings.config.timeout_command;
    so.timeout_data = settings.config.timeout_data;
    result.exit_code = mh::net::run_stdio_smtp(so, backend, authenticator);
    return result;
  }

  mh::net::ServerOptions so;
  so.settings = std::move(settings);
  so.threads = o.threads;
  so.delivery_threads = o.delivery_threads;
  so.shutdown_grace = spool::parse_duration(o.shutdown_grace);
  mh::smtp::SpoolBackend backend(layout, so.settings.config.limit_sending_per_hour);
  backend.set_postmaster(so.settings.config.postmaster);
  backend.set_content_check(mh::serve::content_check(so.settings));
  // The outbound queue runner: built now (a resolver c-ares cannot use is a config
  // error before any port is bound), started once privileges are dropped.
  mh::outbound::QueueRunner runner(layout, so.settings);
  backend.set_outbound({so.settings.hostname, [&runner](const std::string& id) { runner.notify(id); }});
  so.start_background = [&] {
    // As the spool owner (after the privilege drop): the SRS key is made on first start.
    const spool::FilterServices filters = mh::serve::filter_services(layout, so.settings);
    backend.set_filter_services(filters);
    runner.set_filter_services(filters);
    runner.start();
  };
  so.stop_background = [&runner] { runner.stop(); };
  // One authenticator for every session, so the failed-login throttle sees all of them.
  mh::auth::SpoolAuthenticator authenticator(layout);
  mh::pop3::SpoolMaildropProvider maildrops(layout);
  result.exit_code = mh::net::run_server(so, layout, {backend, authenticator, maildrops});
  return result;
}

} // namespace

int main(int argc, char** argv) {
  // A client that hangs up must not kill the daemon with SIGPIPE; writes report EPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  mh::Tool tool("mh-serve", "The mailhost daemon: SMTP, submission, SMTPS, POP3 and POP3S over the spool");
  CLI::App& app = tool.app();
  app.require_subcommand(0);
  auto o = std::make_shared<ServeOptions>();
  app.add_flag("--check-config", o->check_config, "Validate mailhost.yaml and exit (78 when it is bad)");
  app.add_option("--stdio", o->stdio_service, "Serve one SMTP or POP3 session on stdin/stdout (inetd-style, no TLS)")
      ->type_name("SERVICE")
      ->check(CLI::IsMember({"smtp", "pop3"}));
  app.add_option("--client-ip", o->client_ip, "Client address for --stdio (default: the peer of stdin, else 127.0.0.1)")
      ->type_name("IP");
  app.add_option("--threads", o->threads, "Event-loop threads (default: one per core)")->type_name("N");
  app.add_option("--delivery-threads", o->delivery_threads,
                 "Threads for blocking work: delivery fsync, password checks, POP3 removals (default: 4 per core)")
      ->type_name("N");
  app.add_option("--shutdown-grace", o->shutdown_grace,
                 "On SIGTERM, time open SMTP transactions get to finish (default: 10s)")
      ->type_name("DURATION");
  app.add_option("--hostname", o->identity.hostname,
                 "This daemon's host name instead of mailhost.yaml's (several daemons on one spool each need their own)")
      ->type_name("NAME");
  app.add_option("--listen", o->identity.listen,
                 "Listen on exactly these instead of mailhost.yaml's listen: (repeatable; SERVICE is smtp, submission, "
                 "smtps, pop3 or pop3s)")
      ->type_name("SERVICE=ADDR:PORT");
  tool.on(&app, [&tool, o] { return run_serve(tool, *o); });
  mh::serve::setup_queue(tool);  // mh-serve queue …; registered last (see queue_cli.h)
  return tool.run(argc, argv);
}
