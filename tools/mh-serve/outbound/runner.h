// runner.h — the outbound queue runner (SPEC §8 "Outbound"): one thread that delivers
// SPOOL/queue/ entries with libcurl's multi interface (many transfers at once, no
// thread per message), to relay.host or by MX (dns/mx.h, c-ares), retries with back-off
// and bounces (spool/bounce.h). State lives in the queue files, not here: every
// attempt's result is written to the entry's .env (or the entry removed) before the next
// decision, so after kill -9 a restart delivers every entry, and only messages that were
// in flight may go out twice (at-least-once, like Postfix). In memory: one small record
// per entry (id, .env inode, when due), never a message body, so 100,000 queued entries
// cost a few MB and the first delivery starts before the whole queue has been read.
// Other processes (mh-serve queue retry/delete, another host's runner) act through the
// same files and locks; a rescan every second notices them (a replaced .env has a new
// inode). The entry's lock (QueueClaim) is held only while it is being delivered.
#pragma once

#include "serve_config.h"

#include <spool/layout.h>

#include <spool/filtered_delivery.h>

#include <memory>
#include <string>

namespace mh::outbound {

class QueueRunner {
public:
  // Reads the outbound settings; builds the resolver (throws std::runtime_error when
  // c-ares cannot use dns.servers).
  QueueRunner(const spool::Layout& layout, const serve::Settings& settings);
  ~QueueRunner();  // stop()s
  QueueRunner(const QueueRunner&) = delete;
  QueueRunner& operator=(const QueueRunner&) = delete;

  void start();
  // Ends transfers in flight (their entries stay queued as they were) and joins.
  void stop();
  // An entry this process has just committed and released: try it now, without
  // waiting for the next rescan. Thread-safe, cheap.
  void notify(const std::string& id);
  // Filters for mail it delivers to our own accounts (serve::filter_services); set
  // before start(). Entries the filters queue (forwards, replies) are taken at once.
  void set_filter_services(spool::FilterServices services);

private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

} // namespace mh::outbound
