// backend.h — what the SMTP session asks of the outside world, as a small interface so
// the session stays free of sockets, Asio and the spool (STYLE §9, §13): tests give it a
// fake, mh-serve gives it SpoolBackend (spool_backend.h). The session maps every answer
// below to its reply text; backends never build SMTP replies themselves, except the
// ClientVerdict, whose texts are fixed by the check that produced them.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mh::smtp {

// Thrown by begin_message(), MessageSink::append() and deliver() when the disk or the
// file-system quota is full (ENOSPC, EDQUOT): the session answers 452 4.3.1 rather than
// 451 4.3.0 (SPEC §8 "Disk full"). Whatever was half-written is gone by then.
class StorageFull : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The peer of a session, as the network layer knows it. Whether it has authenticated is
// the session's own state (SMTP AUTH), not the network layer's.
struct ClientInfo {
  std::string ip;              // "192.0.2.1" or "2001:db8::1"
  std::string rdns_name;       // verified reverse-DNS name; empty = unknown
};

// The forward-confirmed reverse-DNS check's outcome (SPEC §8, client_check.h), consulted
// at every RCPT of an unauthenticated client to a local domain. Until the network layer
// sets one, a client is "accepted" with no name. `rejected`/`temporary` carry sendmail's
// texts, e.g. "550 5.7.1 Relaying denied. IP name lookup failed".
struct ClientVerdict {
  enum class Kind { accepted, rejected, temporary } kind = Kind::accepted;
  std::string reply;           // full reply line without CRLF, used unless accepted
  std::string rdns_name;       // the verified name (accepted only): Received, log
  std::string detail;          // for the transaction log: what the check saw
};

// The answer to "may this message go to that recipient?" at RCPT time.
struct RecipientCheck {
  enum class Kind {
    local,          // a hosted, active account with room: accept
    not_local,      // domain not hosted here (or not a domain at all): relaying
    unknown_user,   // hosted domain, no such account
    disabled,       // account or domain suspended
    over_quota,     // domain (or account) already full / SIZE= does not fit
    srs_return,     // a valid SRS0 address of ours: relay to `canonical`, the original sender
    srs_invalid,    // an SRS0 address of ours that is forged or expired (detail says which)
    list,           // a mailing list or one of its control addresses: queued for the list
                    // processor under `canonical` (spool/list_mail.h)
    temporary,      // lookup failed (I/O, malformed spool file): try again later
    redirect,       // postmaster mail routed to an outside address: queued under `canonical`
  } kind = Kind::temporary;
  std::string canonical;       // "local@domain" as stored (lower case, punycode) when local
  std::string detail;          // for the log only
  // RFC 5321 §4.5.1 / SPEC §8: postmaster, always accepted — no FCrDNS, quota or
  // suspension refusal. With kind `local`, `canonical` is the account or "postmaster"
  // (the server's own mailbox), and the message goes to Envelope::postmaster.
  bool postmaster = false;
};

// What DATA stores: local recipients get the message in their Maildir, remote ones (an
// authenticated client's relay) through the outbound queue (spool/queue.h).
struct Envelope {
  std::string sender;                  // "" = the null sender <>
  std::vector<std::string> local;      // canonical, each checked as RecipientCheck::local
  std::vector<std::string> remote;     // as the client wrote them (domain lower-cased)
  // Postmaster destinations (RecipientCheck::postmaster), stored straight into the
  // Maildir: no filters, never refused for quota. "postmaster" = the server's mailbox.
  std::vector<std::string> postmaster;
  std::string auth;                    // the authenticated account, "" = none
  std::string client_ip;               // for the spam scanner (filters)
  std::string helo;
};

// Per-recipient result of a delivery.
struct DeliveryResult {
  std::string recipient;       // canonical address (local) or as queued (remote)
  enum class Status { delivered, over_quota, no_account, temporary, queued } status = Status::temporary;
  std::string detail;          // for the log
  std::string uidl;            // Maildir unique name when delivered, queue id when queued
  std::string filter;          // for the log: what the recipient's filters did ("" = nothing)
  bool stored = true;          // delivered but not in the Maildir (a filter discarded,
                               // bounced or forwarded it): not logged as stored
  bool storage_full = false;   // temporary because the disk is full (452 4.3.1)
};

// May an authenticated account send now? Asked at every MAIL, so `mh-user suspend
// --sending` stops the very next message of a session that logged in before it.
struct SenderState {
  enum class Kind {
    active,
    sending_suspended,   // may log in (POP3), may not send
    disabled,            // account or domain suspended, or the account is gone
    temporary,           // the spool could not be read
  } kind = Kind::temporary;
  std::string reason;          // sending_suspended: the administrator's reason (may be "")
  std::string detail;          // for the log
};

// The hourly sending limit (limits.sending_per_hour, SPEC §8), charged once per message
// of an authenticated account, after DATA and before anything is stored.
struct SendingCharge {
  enum class Kind {
    allowed,     // counted (or no limit): deliver
    suspended,   // over the limit — sending is now suspended — or suspended meanwhile: refuse
    temporary,   // the spool could not be read or written: try again later
  } kind = Kind::temporary;
  std::string reason;          // suspended: the account's recorded reason ("rate")
  std::string detail;          // for the log
};

// The content check of a complete message (SPEC §8 virus scanning), done before anything
// is stored. `cleaned`: infected parts were removed and the notice added; the sink now
// holds the cleaned copy, and that is what deliver() stores.
struct ContentVerdict {
  enum class Kind {
    clean,
    cleaned,
    rejected,    // 550 5.7.1: archive or MIME limits, or infected and not cleanable
    temporary,   // 451 4.3.0: the scanner gave no verdict
  } kind = Kind::clean;
  std::string detail;          // for the log: what was removed, or why refused
};

// A message being received: bytes stream in, then one deliver() to all recipients.
class MessageSink {
public:
  virtual ~MessageSink() = default;
  virtual void append(std::string_view bytes) = 0;   // may throw on I/O error
  // The session's own trace header (Return-Path, Received, Delivered-To), appended first
  // and only once: filters match the message below it.
  virtual void append_trace(std::string_view bytes) { append(bytes); }
  // Makes the message durable in every local recipient's Maildir that has room and, if
  // there are remote recipients, in the outbound queue; blocking (fsync). One result per
  // recipient. If any result is `temporary`, nothing was queued (the client will resend
  // to all: remote recipients must not get it twice). Throws only when nothing could be
  // stored (the caller replies 451).
  virtual std::vector<DeliveryResult> deliver() = 0;
  // Checks the complete message's content (blocking: the scanner is asked), once, before
  // deliver(). Without a scanner configured: clean. Throws StorageFull or another error
  // when the cleaned copy cannot be written (the session replies 452/451).
  virtual ContentVerdict check_content() { return {}; }
  virtual void abort() noexcept = 0;                  // discard; also done by the destructor
  // The id the message will be queued under when it has remote recipients (known from
  // the start, so the Received header and "250 … queued as ID" name the real queue
  // entry); "" when nothing will be queued (the session then makes an id of its own).
  virtual std::string queue_id() const { return {}; }
};

class MailBackend {
public:
  virtual ~MailBackend() = default;
  // `mailbox` is the address as the client wrote it (without <>). size_hint is the
  // SIZE= value of MAIL (0 = unknown: "is there room at all?").
  virtual RecipientCheck check_recipient(std::string_view mailbox, std::uint64_t size_hint) = 0;
  // Starts a message for this envelope (at least one recipient, local or remote).
  // Throws on failure (the session replies 451 to DATA).
  virtual std::unique_ptr<MessageSink> begin_message(const Envelope& envelope) = 0;
  // The sending state of an authenticated account ("user@domain", canonical).
  virtual SenderState sender_state(std::string_view account) = 0;
  // Charges `recipients` (local and remote alike) to the account's hourly window. A
  // backend with no limit (the fuzzer's) keeps the default.
  virtual SendingCharge charge_sending(std::string_view account, std::size_t recipients) {
    (void)account;
    (void)recipients;
    return {SendingCharge::Kind::allowed, {}, {}};
  }
  // A short, unique id for the log and the Received header ("queued as <id>").
  virtual std::string new_message_id() = 0;
  // Current time in seconds since the epoch, for the Received header; a seam for tests.
  virtual std::int64_t now() = 0;
};

} // namespace mh::smtp
