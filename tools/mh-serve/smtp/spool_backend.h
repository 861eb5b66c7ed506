// spool_backend.h — MailBackend over libspool: recipients are looked up in the spool at
// every RCPT (cheap: a directory check and two small YAML files), so accounts, domains,
// suspensions and quota changed by the tools count for the very next command without a
// reload. Messages stream into a spool::PendingMessage in the first local recipient's
// Maildir/tmp and are hard-linked to every recipient by spool::deliver(); remote
// recipients (authenticated relay) get the same file hard-linked into the outbound queue
// (spool/queue.h) — or, with no local recipient, the message streams straight into
// queue/tmp/. Never more than a write buffer of a message is in memory. Thread-safe:
// one instance serves all sessions. Postmaster mail (RFC 5321 §4.5.1) bypasses the
// suspension and quota checks and the filters: it is linked straight into its Maildir
// (the server's own SPOOL/postmaster/Maildir/ made on first use, in no quota).
// Disk full (ENOSPC/EDQUOT) anywhere is thrown as StorageFull (backend.h).
#pragma once

#include "content/inspection.h"
#include "smtp/backend.h"

#include <spool/accounts.h>
#include <spool/config.h>
#include <spool/filtered_delivery.h>
#include <spool/layout.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace mh::smtp {

// Virus scanning and content limits (SPEC §8): mailhost.yaml `clamd` and `limits`.
struct ContentCheck {
  std::shared_ptr<content::VirusScanner> scanner;   // null: no content checking at all
  content::ContentLimits limits;
};

class SpoolBackend : public MailBackend {
public:
  // `sending_per_hour`: limits.sending_per_hour of mailhost.yaml (0 = no limit).
  explicit SpoolBackend(spool::Layout layout,
                        std::uint32_t sending_per_hour = spool::ServerConfig().limit_sending_per_hour)
      : layout_(std::move(layout)), sending_per_hour_(sending_per_hour) {}

  RecipientCheck check_recipient(std::string_view mailbox, std::uint64_t size_hint) override;
  std::unique_ptr<MessageSink> begin_message(const Envelope& envelope) override;
  SenderState sender_state(std::string_view account) override;
  SendingCharge charge_sending(std::string_view account, std::size_t recipients) override;
  std::string new_message_id() override;
  std::int64_t now() override;

  // What the outbound side needs to know: our host name (the Reporting-MTA of a DSN for
  // a local recipient found over quota after DATA) and whom to tell that an entry was
  // committed (the queue runner, so it need not wait for its next scan). Set once,
  // before serving.
  struct Outbound {
    std::string reporting_mta = "localhost";
    std::function<void(const std::string& queue_id)> queued;
  };
  void set_outbound(Outbound outbound) { outbound_ = std::move(outbound); }
  // Filters at local delivery and SRS addresses at RCPT (serve::filter_services). Set
  // once, before serving; without it forwards keep their sender and SRS0 is not ours.
  void set_filter_services(spool::FilterServices services) { filters_ = std::move(services); }
  // mailhost.yaml `postmaster:`, where the bare <postmaster> goes ("" = the server's
  // mailbox, spool::bare_postmaster_route). Set once, before serving.
  void set_postmaster(std::string configured) { postmaster_ = std::move(configured); }
  // Every message is checked before it is stored (MessageSink::check_content). Set once,
  // before serving.
  void set_content_check(ContentCheck check) { content_ = std::move(check); }

private:
  RecipientCheck check_postmaster(const spool::PostmasterRoute& route);

  spool::Layout layout_;
  std::string postmaster_;
  Outbound outbound_;
  spool::FilterServices filters_;
  ContentCheck content_;
  std::atomic<std::uint32_t> id_counter_{0};
  std::uint32_t sending_per_hour_;
};

} // namespace mh::smtp
