// spool_backend.cc — recipient lookup and delivery through libspool.
#include "smtp/spool_backend.h"

#include <spool/accounts.h>
#include <spool/delivery.h>
#include <spool/error.h>
#include <spool/quota.h>

#include <chrono>
#include <filesystem>
#include <cstdio>

namespace mh::smtp {
namespace {

using Kind = RecipientCheck::Kind;

RecipientCheck verdict(Kind kind, std::string canonical = {}, std::string detail = {}) {
  RecipientCheck r;
  r.kind = kind;
  r.canonical = std::move(canonical);
  r.detail = std::move(detail);
  return r;
}

class SpoolSink : public MessageSink {
public:
  SpoolSink(const spool::Layout& layout, spool::PendingMessage message, std::vector<spool::Address> recipients)
      : layout_(layout), message_(std::move(message)), recipients_(std::move(recipients)) {}

  void append(std::string_view bytes) override { message_.append(bytes); }

  std::vector<DeliveryResult> deliver() override {
    std::vector<DeliveryResult> out;
    for (const auto& o : spool::deliver(layout_, message_, recipients_)) {
      DeliveryResult r;
      r.recipient = o.recipient.str();
      r.detail = o.detail;
      r.uidl = o.uidl;
      switch (o.status) {
      case spool::DeliveryOutcome::Status::delivered: r.status = DeliveryResult::Status::delivered; break;
      case spool::DeliveryOutcome::Status::over_quota: r.status = DeliveryResult::Status::over_quota; break;
      case spool::DeliveryOutcome::Status::no_account: r.status = DeliveryResult::Status::no_account; break;
      case spool::DeliveryOutcome::Status::failed_temporary: r.status = DeliveryResult::Status::temporary; break;
      }
      out.push_back(std::move(r));
    }
    return out;
  }

  void abort() noexcept override { message_.abort(); }

private:
  const spool::Layout& layout_;
  spool::PendingMessage message_;
  std::vector<spool::Address> recipients_;
};

} // namespace

RecipientCheck SpoolBackend::check_recipient(std::string_view mailbox, std::uint64_t size_hint) {
  const auto at = mailbox.rfind('@');
  if (at == std::string_view::npos) return verdict(Kind::unknown_user);
  std::optional<spool::Domain> domain;
  try {
    domain = spool::Domain::parse(mailbox.substr(at + 1));
  } catch (const spool::Error&) {
    return verdict(Kind::not_local);  // an address literal or no valid domain: not ours
  }
  try {
    if (!spool::domain_exists(layout_, *domain)) return verdict(Kind::not_local);
    if (spool::read_domain(layout_, *domain).suspended) return verdict(Kind::disabled, {}, "domain suspended");
    std::optional<spool::LocalPart> local;
    try {
      local = spool::LocalPart::parse(mailbox.substr(0, at));
    } catch (const spool::Error&) {
      return verdict(Kind::unknown_user);  // cannot be the name of any account
    }
    const spool::Address address(*local, *domain);
    if (!spool::account_exists(layout_, address)) {
      // Mailing lists live beside accounts; their delivery comes with mh-list support.
      // Until then say "later" rather than bounce their mail for good.
      if (std::filesystem::is_directory(layout_.list_dir(address)))
        return verdict(Kind::temporary, {}, "mailing list delivery is not implemented yet");
      return verdict(Kind::unknown_user);
    }
    if (spool::read_account(layout_, address).suspended) return verdict(Kind::disabled, {}, "account suspended");
    if (spool::check_quota(layout_, address, size_hint) != spool::QuotaVerdict::fits)
      return verdict(Kind::over_quota);
    return verdict(Kind::local, address.str());
  } catch (const spool::Error& e) {
    if (e.code() == spool::Errc::no_account) return verdict(Kind::unknown_user);  // deleted meanwhile
    if (e.code() == spool::Errc::no_domain) return verdict(Kind::not_local);
    return verdict(Kind::temporary, {}, e.what());
  }
}

std::unique_ptr<MessageSink> SpoolBackend::begin_message(const std::vector<std::string>& recipients) {
  std::vector<spool::Address> addresses;
  for (const auto& r : recipients) addresses.push_back(spool::Address::parse(r));
  if (addresses.empty()) throw spool::Error(spool::Errc::other, "no recipients");
  // The tmp file lives in the first recipient's Maildir, so the link into each new/ is on
  // the same file system in the common case (deliver() copies on EXDEV).
  auto message = spool::PendingMessage::begin(layout_.maildir(addresses.front()));
  return std::make_unique<SpoolSink>(layout_, std::move(message), std::move(addresses));
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

} // namespace mh::smtp
