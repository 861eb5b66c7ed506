// spool_backend.cc — recipient lookup and delivery through libspool.
// Order of a delivery with local and remote recipients (250 only after both are durable):
//   1. the message is complete and fsynced in the first local Maildir's tmp/
//   2. it is hard-linked into the queue and its .env committed (queue.h) — still locked
//   3. spool::deliver() links it into every local new/ and fsyncs
//   4. if a local Maildir failed temporarily, the queue entry is withdrawn (the client
//      will resend to everyone, remote recipients must not get it twice); else the lock
//      is released and the runner may take it.
#include "smtp/spool_backend.h"

#include "content/mapped_file.h"

#include <spool/accounts.h>
#include <spool/atomic_file.h>
#include <spool/bounce.h>
#include <spool/delivery.h>
#include <spool/error.h>
#include <spool/filtered_delivery.h>
#include <spool/list_mail.h>
#include <spool/maildir.h>
#include <spool/queue.h>
#include <spool/quota.h>
#include <spool/sending_rate.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>

namespace mh::smtp {
namespace {

namespace fs = std::filesystem;
using Kind = RecipientCheck::Kind;

RecipientCheck verdict(Kind kind, std::string canonical = {}, std::string detail = {}) {
  RecipientCheck r;
  r.kind = kind;
  r.canonical = std::move(canonical);
  r.detail = std::move(detail);
  return r;
}

constexpr std::size_t max_captured_headers = 64 * 1024;  // for a DSN's text/rfc822-headers

// Runs `f`, turning a full disk into StorageFull for the session (452 4.3.1, SPEC §8).
template <class F>
decltype(auto) storage_checked(F&& f) {
  try {
    return f();
  } catch (const spool::Error& e) {
    if (e.storage_full()) throw StorageFull(e.what());
    throw;
  }
}

// The Maildir of a postmaster destination (Envelope::postmaster): the server's own one,
// made on first use (maildir.5 tmp/ new/ cur/; mutt -f reads it), or an account's.
fs::path postmaster_maildir(const spool::Layout& layout, const std::string& destination) {
  if (destination != "postmaster") return layout.maildir(spool::Address::parse(destination));
  const fs::path dir = layout.postmaster_maildir();
  layout.verify_no_symlinks(dir / "tmp");
  if (::access((dir / "new").c_str(), F_OK) != 0) {
    if (::mkdir(dir.parent_path().c_str(), 0700) != 0 && errno != EEXIST)
      spool::throw_errno("cannot create directory", dir.parent_path(), errno);
    try {
      spool::create_maildir(dir);
    } catch (const spool::Error& e) {
      if (e.code() != spool::Errc::exists) throw;  // another session made it first
    }
  }
  return dir;
}

// Postmaster mail (RFC 5321 §4.5.1): the finished message hard-linked into new/ and new/
// fsynced, as deliver() does, but with no quota check and no filters. An account's copy
// is counted in its maildirsize (it is there, using space); the server's mailbox is in
// no quota. Returns the outcome for the session.
DeliveryResult store_postmaster(const spool::Layout& layout, const spool::PendingMessage& msg,
                                const std::string& destination) {
  DeliveryResult r;
  r.recipient = destination;
  try {
    spool::Maildir md(postmaster_maildir(layout, destination));
    layout.verify_no_symlinks(md.new_dir());
    const fs::path target = md.new_dir() / (msg.unique_name() + ",S=" + std::to_string(msg.size()) +
                                            ",W=" + std::to_string(msg.wire_size()));
    bool shrink = false;
    {
      spool::FileLock writer = md.writer_lock();
      if (::link(msg.tmp_path().c_str(), target.c_str()) != 0)
        spool::throw_errno("cannot link message into", target, errno);
      try {
        if (destination != "postmaster") shrink = md.record(static_cast<std::int64_t>(msg.size()), 1);
        spool::fsync_directory(md.new_dir());
      } catch (const spool::Error&) {
        ::unlink(target.c_str());  // not durable or not counted: must not stay visible
        throw;
      }
    }
    if (shrink) md.shrink_maildirsize();
    r.status = DeliveryResult::Status::delivered;
    r.uidl = msg.unique_name();
    r.detail = "postmaster mail stored in " + md.path().string();
  } catch (const spool::Error& e) {
    r.status = DeliveryResult::Status::temporary;
    r.storage_full = e.storage_full();
    r.detail = e.what();
  }
  return r;
}

class SpoolSink : public MessageSink {
public:
  // Local or postmaster recipients: stream into the first one's Maildir.
  SpoolSink(const spool::Layout& layout, const SpoolBackend::Outbound& outbound, const ContentCheck& content,
            const spool::FilterServices& filters, spool::PendingMessage message, std::vector<spool::Address> local,
            Envelope envelope, std::int64_t now)
      : layout_(layout), outbound_(outbound), content_(content), filters_(filters), message_(std::move(message)),
        local_(std::move(local)),
        envelope_(std::move(envelope)), now_(now),
        queue_id_(envelope_.remote.empty() ? std::string() : spool::new_queue_id()) {
    filters_.client_ip = envelope_.client_ip;
    filters_.helo = envelope_.helo;
    filters_.queued = outbound_.queued;
  }
  // Remote recipients only: stream into the queue.
  SpoolSink(const spool::Layout& layout, const SpoolBackend::Outbound& outbound, const ContentCheck& content,
            spool::QueueMessage queued, Envelope envelope, std::int64_t now)
      : layout_(layout), outbound_(outbound), content_(content), queued_(std::move(queued)),
        envelope_(std::move(envelope)), now_(now),
        queue_id_(queued_->id()) {}

  std::string queue_id() const override { return queue_id_; }

  void append_trace(std::string_view bytes) override {
    trace_size_ += bytes.size();
    append(bytes);
  }

  void append(std::string_view bytes) override {
    capture_headers(bytes);
    storage_checked([&] {
      if (message_) message_->append(bytes);
      else queued_->append(bytes);
    });
  }

  std::vector<DeliveryResult> deliver() override {
    return storage_checked([&] { return deliver_all(); });
  }

  ContentVerdict check_content() override {
    if (!content_.scanner) return {};
    const content::MappedFile file(message_ ? message_->open_for_reading() : queued_->open_for_reading());
    const content::Inspection found = content::inspect_message(file.bytes(), *content_.scanner, content_.limits);
    switch (found.verdict) {
    case content::Inspection::Verdict::clean: return {};
    case content::Inspection::Verdict::rejected: return {ContentVerdict::Kind::rejected, found.detail};
    case content::Inspection::Verdict::failed: return {ContentVerdict::Kind::temporary, found.detail};
    case content::Inspection::Verdict::cleaned: break;
    }
    storage_checked([&] { replace_with_cleaned(file.bytes(), found.edits); });
    return {ContentVerdict::Kind::cleaned, found.detail};
  }

  void abort() noexcept override {
    if (message_) message_->abort();
    if (queued_) queued_->abort();
  }

private:
  // The cleaned copy takes the place of the received one: a new tmp file in the same
  // Maildir, or the same queue id (the Received header and the 250 reply name it). The
  // received file is unlinked only once the copy is complete; `original` stays readable
  // through its mapping meanwhile.
  void replace_with_cleaned(std::string_view original, const std::vector<content::Edit>& edits) {
    if (message_) {
      auto cleaned = spool::PendingMessage::begin(layout_, message_->maildir());
      content::apply_edits(original, edits, [&](std::string_view bytes) { cleaned.append(bytes); });
      message_->abort();
      message_ = std::move(cleaned);
    } else {
      const std::string id = queued_->id();
      queued_->abort();  // frees the id; the bytes stay mapped
      auto cleaned = spool::QueueMessage::begin(layout_, id);
      content::apply_edits(original, edits, [&](std::string_view bytes) { cleaned.append(bytes); });
      queued_ = std::move(cleaned);
    }
  }

  std::vector<DeliveryResult> deliver_all() {
    if (!envelope_.remote.empty()) {
      if (message_) {
        message_->finish();  // step 1: the one data fsync
        queued_ = spool::QueueMessage::adopt(layout_, message_->tmp_path(), queue_id_);
      }
      queued_->commit(queue_envelope());  // step 2; throws → 451 for everyone
    }
    std::vector<DeliveryResult> out;
    bool temporary = false;
    std::vector<spool::BounceFailure> failed;  // local recipients refused after DATA
    if (message_ && !envelope_.postmaster.empty()) {
      try {
        message_->finish();  // the one data fsync (a no-op when the queue step did it)
      } catch (...) {
        if (queued_) queued_->withdraw();
        throw;
      }
      for (const auto& destination : envelope_.postmaster) {
        out.push_back(store_postmaster(layout_, *message_, destination));
        temporary = temporary || out.back().status == DeliveryResult::Status::temporary;
      }
      if (local_.empty()) message_->abort();  // every link is made: drop the tmp/ name
    }
    if (message_ && !local_.empty()) {
      std::vector<spool::FilteredOutcome> outcomes;
      try {
        // Step 3, with each recipient's filters (spool/filtered_delivery.h).
        outcomes = spool::deliver_filtered(layout_, *message_, trace_size_, local_, envelope_.sender, filters_, now_);
      } catch (...) {
        if (queued_) queued_->withdraw();  // the client will send again, to everyone
        throw;
      }
      for (const auto& filtered : outcomes) {
        const spool::DeliveryOutcome& o = filtered.delivery;
        DeliveryResult r;
        r.filter = filtered.filter;
        r.recipient = o.recipient.str();
        r.detail = o.detail;
        r.uidl = o.uidl;
        r.stored = filtered.stored;
        switch (o.status) {
        case spool::DeliveryOutcome::Status::delivered: r.status = DeliveryResult::Status::delivered; break;
        case spool::DeliveryOutcome::Status::over_quota:
          r.status = DeliveryResult::Status::over_quota;
          failed.push_back({r.recipient, "552 5.2.2 <" + r.recipient + ">: Disk quota exceeded", ""});
          break;
        case spool::DeliveryOutcome::Status::no_account:
          r.status = DeliveryResult::Status::no_account;
          failed.push_back({r.recipient, "550 5.1.1 <" + r.recipient + ">: User unknown", ""});
          break;
        case spool::DeliveryOutcome::Status::failed_temporary:
          r.status = DeliveryResult::Status::temporary;
          temporary = true;
          break;
        }
        out.push_back(std::move(r));
      }
    }
    if (queued_) {
      // Step 4. A withdrawal that fails leaves the entry queued: a duplicate for the
      // remote recipients on the client's retry, never a loss.
      const bool withdrawn = temporary && queued_->withdraw();
      for (const auto& rcpt : envelope_.remote) {
        DeliveryResult r;
        r.recipient = rcpt;
        r.uidl = queued_->id();
        r.status = withdrawn ? DeliveryResult::Status::temporary : DeliveryResult::Status::queued;
        r.detail = withdrawn ? "queue entry " + queued_->id() + " withdrawn: a local delivery failed"
                             : "queued as " + queued_->id();
        out.push_back(std::move(r));
      }
      queued_->release();
      if (!withdrawn && outbound_.queued) outbound_.queued(queued_->id());
    }
    if (!temporary && failed.size() < out.size()) bounce_refused(failed);
    return out;
  }

  // The header block, kept while it streams by: after delivery the message exists only
  // under its recipients' names, and a DSN quotes the headers (RFC 3464 §2).
  void capture_headers(std::string_view bytes) {
    if (headers_done_) return;
    // Only the new bytes (and the two before them) are searched: called per chunk.
    const std::size_t from = headers_.size() < 2 ? 0 : headers_.size() - 2;
    headers_.append(bytes.substr(0, max_captured_headers - headers_.size()));
    const std::size_t lf = headers_.find("\n\n", from), crlf = headers_.find("\n\r\n", from);
    if (const std::size_t blank = std::min(lf, crlf); blank != std::string::npos) {
      headers_.resize(blank + 1);  // the header block with its last line end
      headers_done_ = true;
    } else if (headers_.size() >= max_captured_headers) {
      const auto last = headers_.rfind('\n');
      headers_.resize(last == std::string::npos ? 0 : last + 1);
      headers_done_ = true;
    }
  }

  // Delivered to some, refused for others (the domain filled up between RCPT and the
  // end of DATA): SMTP can only answer 250 for the whole message, so the refused
  // recipients are reported by a DSN (SPEC §4). When nobody got it, the session answers
  // 552/550 itself and no DSN is needed. A failure to queue the DSN is only logged by
  // the caller's transaction line: the message itself was stored.
  void bounce_refused(const std::vector<spool::BounceFailure>& failed) {
    if (failed.empty() || envelope_.sender.empty()) return;
    spool::QueueEnvelope original;
    original.id = queue_id_;
    original.sender = envelope_.sender;
    original.created = now_;
    try {
      const std::string id = spool::queue_bounce_with_headers(layout_, outbound_.reporting_mta, original, headers_,
                                                              failed, now_);
      if (!id.empty() && outbound_.queued) outbound_.queued(id);
    } catch (const spool::Error&) {
      // Disk full: the sender still saw "not delivered" lines in the 250 reply.
    }
  }

  spool::QueueEnvelope queue_envelope() const {
    spool::QueueEnvelope e;
    e.sender = envelope_.sender;
    e.recipients = envelope_.remote;
    e.auth = envelope_.auth;
    e.created = now_;
    e.next_attempt = now_;
    return e;
  }

  const spool::Layout& layout_;
  const SpoolBackend::Outbound& outbound_;
  const ContentCheck& content_;
  spool::FilterServices filters_;   // the backend's, with this session's client
  std::optional<spool::PendingMessage> message_;
  std::optional<spool::QueueMessage> queued_;
  std::vector<spool::Address> local_;
  Envelope envelope_;
  std::int64_t now_;
  std::string queue_id_;
  std::uint64_t trace_size_ = 0;
  std::string headers_;
  bool headers_done_ = false;
};

} // namespace

// RFC 5321 §4.5.1: accepted whatever the domain's state or quota (SPEC §8 "postmaster").
RecipientCheck SpoolBackend::check_postmaster(const spool::PostmasterRoute& route) {
  using R = spool::PostmasterRoute::Kind;
  RecipientCheck r = route.kind == R::remote ? verdict(Kind::redirect, route.address)
                                             : verdict(Kind::local, route.kind == R::account ? route.address : "postmaster");
  r.postmaster = true;
  r.detail = "postmaster: " + route.describe();
  return r;
}

RecipientCheck SpoolBackend::check_recipient(std::string_view mailbox, std::uint64_t size_hint) {
  const auto at = mailbox.rfind('@');
  if (at == std::string_view::npos) {
    if (!spool::is_postmaster(mailbox)) return verdict(Kind::unknown_user);
    try {
      return check_postmaster(spool::bare_postmaster_route(layout_, postmaster_));
    } catch (const spool::Error& e) {
      return verdict(Kind::temporary, {}, e.what());
    }
  }
  std::optional<spool::Domain> domain;
  try {
    domain = spool::Domain::parse(mailbox.substr(at + 1));
  } catch (const spool::Error&) {
    return verdict(Kind::not_local);  // an address literal or no valid domain: not ours
  }
  if (filters_.srs && domain->str() == filters_.srs_domain) {
    const auto local = mailbox.substr(0, at);
    const auto r = filters_.srs->reverse(local, now());
    using V = spool::SrsKey::Verdict;
    switch (r.verdict) {
    case V::original: return verdict(Kind::srs_return, r.original, "SRS return to " + r.original);
    case V::forged: return verdict(Kind::srs_invalid, {}, "SRS address does not verify");
    case V::expired: return verdict(Kind::srs_invalid, {}, "SRS address has expired");
    case V::malformed: return verdict(Kind::srs_invalid, {}, "malformed SRS address");
    case V::not_srs: break;  // an ordinary address of that domain
    }
  }
  try {
    if (spool::is_postmaster(mailbox.substr(0, at))) {
      if (!spool::domain_exists(layout_, *domain)) return verdict(Kind::not_local);
      return check_postmaster(spool::postmaster_route(layout_, *domain));
    }
    // A missing domain or account is the no_domain / no_account error caught below: one
    // walk each, not an existence check and then the read.
    const spool::DomainConfig domain_config = spool::read_domain(layout_, *domain);
    if (domain_config.suspended) return verdict(Kind::disabled, {}, "domain suspended");
    const std::string_view written = mailbox.substr(0, at);
    if (auto list = spool::find_list_target(layout_, written, *domain)) {
      // A post counts against the domain quota (its archive copy): a full domain refuses
      // it like any other mail. Control addresses (bounces, confirmations) always pass.
      const spool::QuotaLimits limits{domain_config.quota, 0};
      if (list->kind == spool::ListTarget::Kind::post &&
          spool::check_quota(layout_, list->list, limits, size_hint) != spool::QuotaVerdict::fits)
        return verdict(Kind::over_quota);
      return verdict(Kind::list, list->str());
    }
    std::optional<spool::LocalPart> local;
    try {
      // NAME+ANYTHING is NAME's (recipient delimiter '+', SPEC §7).
      local = spool::LocalPart::parse(written.substr(0, written.find('+')));
    } catch (const spool::Error&) {
      return verdict(Kind::unknown_user);  // cannot be the name of any account
    }
    const spool::Address address(*local, *domain);
    const spool::AccountConfig account_config = spool::read_account(layout_, address);
    if (account_config.suspended) return verdict(Kind::disabled, {}, "account suspended");
    // The limits from the two files just read: each read walks and checks the path again.
    const spool::QuotaLimits limits{domain_config.quota, account_config.quota};
    if (spool::check_quota(layout_, address, limits, size_hint) != spool::QuotaVerdict::fits)
      return verdict(Kind::over_quota);
    return verdict(Kind::local, address.str());
  } catch (const spool::Error& e) {
    if (e.code() == spool::Errc::no_account) return verdict(Kind::unknown_user);
    if (e.code() == spool::Errc::no_domain) return verdict(Kind::not_local);
    return verdict(Kind::temporary, {}, e.what());
  }
}

std::unique_ptr<MessageSink> SpoolBackend::begin_message(const Envelope& envelope) {
  return storage_checked([&]() -> std::unique_ptr<MessageSink> {
    std::vector<spool::Address> local;
    for (const auto& r : envelope.local) local.push_back(spool::Address::parse(r));
    if (local.empty() && envelope.remote.empty() && envelope.postmaster.empty())
      throw spool::Error(spool::Errc::other, "no recipients");
    if (local.empty() && envelope.postmaster.empty())
      return std::make_unique<SpoolSink>(layout_, outbound_, content_, spool::QueueMessage::begin(layout_), envelope,
                                         now());
    // The tmp file lives in the first recipient's Maildir, so the link into each new/ is
    // on the same file system in the common case (deliver() copies on EXDEV).
    const fs::path first =
        local.empty() ? postmaster_maildir(layout_, envelope.postmaster.front()) : layout_.maildir(local.front());
    auto message = spool::PendingMessage::begin(layout_, first);
    return std::make_unique<SpoolSink>(layout_, outbound_, content_, filters_, std::move(message), std::move(local),
                                       envelope, now());
  });
}

SenderState SpoolBackend::sender_state(std::string_view account) {
  SenderState st;
  try {
    const spool::Address address = spool::Address::parse(account);
    const spool::AccountConfig a = spool::read_account(layout_, address);
    if (a.suspended || spool::read_domain(layout_, address.domain()).suspended) {
      st.kind = SenderState::Kind::disabled;
      st.detail = "account or domain suspended";
    } else if (a.sending_suspended) {
      st.kind = SenderState::Kind::sending_suspended;
      st.reason = a.sending_reason;
    } else {
      st.kind = SenderState::Kind::active;
    }
  } catch (const spool::Error& e) {
    const bool gone = e.code() == spool::Errc::no_account || e.code() == spool::Errc::no_domain ||
                      e.code() == spool::Errc::invalid_input;
    st.kind = gone ? SenderState::Kind::disabled : SenderState::Kind::temporary;
    st.detail = e.what();
  }
  return st;
}

std::string SpoolBackend::new_message_id() {
  // Seconds, microseconds and a per-process counter in hex: unique within this server,
  // sortable by time, and short enough for "queued as".
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08llX%05llX%04X", static_cast<unsigned long long>(usecs / 1000000),
                static_cast<unsigned long long>(usecs % 1000000), id_counter_.fetch_add(1) & 0xffffu);
  return buf;
}

std::int64_t SpoolBackend::now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// limits.sending_per_hour through spool/sending_rate.h: the window lives in the spool, so
// every mh-serve on it (and a restarted one) counts together.
SendingCharge SpoolBackend::charge_sending(std::string_view account, std::size_t recipients) {
  SendingCharge c;
  try {
    const spool::Address address = spool::Address::parse(account);
    const auto n = static_cast<std::uint32_t>(std::min<std::size_t>(recipients, UINT32_MAX));
    const spool::RateCheck r = spool::charge_sending(layout_, address, n, sending_per_hour_, now());
    c.kind = r.kind == spool::RateCheck::Kind::allowed ? SendingCharge::Kind::allowed : SendingCharge::Kind::suspended;
    c.reason = r.reason;
    if (r.kind == spool::RateCheck::Kind::over) c.detail = "sending suspended: " + r.detail;
    else if (r.kind == spool::RateCheck::Kind::suspended)
      c.detail = "sending was suspended meanwhile" + (r.detail.empty() ? std::string() : "; " + r.detail);
    else c.detail = r.detail;
  } catch (const spool::Error& e) {
    c.kind = SendingCharge::Kind::temporary;
    c.detail = e.what();
  }
  return c;
}

} // namespace mh::smtp
