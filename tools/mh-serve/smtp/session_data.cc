// session_data.cc — the SMTP message phase: DATA, reading the message to its end, the
// checks once it is in (From: policy, content, the sending charge) and delivery with its
// per-recipient outcome in the reply to DATA.
#include "smtp/session.h"

#include "smtp/session_internal.h"
#include "smtp/trace.h"
#include "text.h"

#include <algorithm>

namespace mh::smtp {

namespace {

using session_detail::sending_suspended_reply;
using text::quoted;

// SPEC §8 "Disk full": ENOSPC/EDQUOT while storing (the backend throws StorageFull).
const std::string storage_full_reply = "452 4.3.1 Insufficient system storage";

bool is_storage_full(const std::exception& e) { return dynamic_cast<const StorageFull*>(&e) != nullptr; }
// The temporary refusal of a message we could not store: the disk's own reply when full.
std::string delivery_failed_reply(bool storage_full) {
  return storage_full ? storage_full_reply : "451 4.3.0 Error: local delivery failed, try again later";
}

// The From: policy reads at most this much of a message: a header block longer than
// this without a From: counts as having none (the bound keeps memory flat).
constexpr std::size_t max_head_capture = 64 * 1024;

} // namespace

void SmtpSession::proceed_data(const Command&, Output& out) {
  try {
    Envelope envelope;
    envelope.sender = tx_->sender;
    envelope.local = tx_->recipients;
    envelope.remote = tx_->remote;
    envelope.postmaster = tx_->postmaster;
    envelope.auth = auth_address_;
    envelope.client_ip = client_.ip;
    envelope.helo = helo_;
    tx_->sink = backend_.begin_message(envelope);
    tx_->id = tx_->sink->queue_id();
    if (tx_->id.empty()) tx_->id = backend_.new_message_id();
    TraceInfo t;
    t.helo = helo_;
    t.esmtp = esmtp_;
    t.tls = config_.tls_active;
    t.authenticated = !auth_address_.empty();
    t.relayed = !tx_->remote.empty();
    t.client_ip = client_.ip;
    t.client_rdns = client_.rdns_name;
    t.hostname = config_.hostname;
    t.id = tx_->id;
    t.sender = tx_->sender;
    t.recipients = tx_->recipients;
    t.recipients.insert(t.recipients.end(), tx_->remote.begin(), tx_->remote.end());
    t.recipients.insert(t.recipients.end(), tx_->postmaster.begin(), tx_->postmaster.end());
    t.time = backend_.now();
    tx_->sink->append_trace(trace_headers(t));
  } catch (const std::exception& e) {
    if (tx_->sink) tx_->sink->abort();
    tx_->sink.reset();
    const std::string line =
        is_storage_full(e) ? storage_full_reply : "451 4.3.0 Error: cannot store the message now, try again later";
    reply(out, line);
    finish_transaction(out, line, "error=" + quoted(e.what()));
    return;
  }
  Transaction* tx = tx_.get();
  tx_->keep_head = !auth_address_.empty() && config_.from_header != FromPolicy::any;
  tx_->data = std::make_unique<DataReader>(config_.message_size_limit, [tx](std::string_view bytes) {
    if (tx->keep_head && tx->head.size() < max_head_capture)
      tx->head.append(bytes.substr(0, max_head_capture - tx->head.size()));
    if (!tx->write_error.empty()) return;
    try {
      tx->sink->append(bytes);
    } catch (const std::exception& e) {
      tx->write_error = e.what();
      tx->storage_full = is_storage_full(e);
      tx->sink->abort();
    }
  });
  state_ = State::data;
  reply(out, "354 End data with <CR><LF>.<CR><LF>");
}

std::size_t SmtpSession::feed_data(std::string_view in, Output& out) {
  const std::size_t used = tx_->data->feed(in);
  if (tx_->data->finished()) end_of_data(out);
  return used;
}

void SmtpSession::end_of_data(Output& out) {
  const DataReader& d = *tx_->data;
  std::string problem;
  if (d.bare_line_ending()) {
    problem = "554 5.6.0 Bare LF or CR in message; see RFC 5321 section 2.3.8";
  } else if (d.too_big()) {
    problem = "552 5.3.4 Message size exceeds fixed limit";
  } else if (!tx_->write_error.empty()) {
    problem = delivery_failed_reply(tx_->storage_full);
  } else if (!from_header_allowed()) {
    problem = "550 5.7.1 From: header does not match the authenticated sender";
  }
  if (!problem.empty()) {
    reply(out, problem);
    finish_transaction(out, problem, tx_->write_error.empty() ? "" : "error=" + quoted(tx_->write_error));
    return;
  }
  state_ = State::delivering;
  out.action = Action::deliver;
}
// SPEC §8 submission.from_header: only authenticated mail is held to it.
bool SmtpSession::from_header_allowed() const {
  if (!tx_->keep_head) return true;
  return from_header_ok(config_.from_header, tx_->head, auth_address_);
}

// --- delivery ------------------------------------------------------------------------

// The hourly limit of an authenticated account (SPEC §8), charged with every recipient
// of the message, local and remote, once the whole message is in and before any of it
// is stored. Past the limit the message is refused as a whole — the sink discards it,
// nothing reaches a Maildir or the queue — with the same 550 as MAIL gives a suspended
// account. Unauthenticated mail is never charged. A charge is not given back when the
// delivery then fails with 451: the retry counts again (over-count, never under).
// Returns false when the transaction is over.
bool SmtpSession::charge_sending(Output& out) {
  SendingCharge charge;
  try {
    charge = backend_.charge_sending(auth_address_, tx_->recipients.size() + tx_->remote.size());
  } catch (const std::exception& e) {
    charge.kind = SendingCharge::Kind::temporary;
    charge.detail = e.what();
  }
  std::string line;
  switch (charge.kind) {
  case SendingCharge::Kind::allowed:
    return true;
  case SendingCharge::Kind::suspended:
    line = sending_suspended_reply(auth_address_, charge.reason);
    break;
  case SendingCharge::Kind::temporary:
    line = "451 4.3.0 Temporary lookup failure, try again later";
    break;
  }
  reply(out, line);
  finish_transaction(out, line, charge.detail.empty() ? "" : "rate=" + quoted(charge.detail));  // aborts the sink
  return false;
}

// The content check (SPEC §8): before the sending charge and before anything is stored.
// Refused content costs the sender nothing; a scanner failure is a 451 like any other
// temporary failure, so unscanned mail is never delivered. Returns false when the
// transaction is over; `virus_log` gets what a cleaned message lost.
bool SmtpSession::check_content(Output& out, std::string& virus_log) {
  ContentVerdict verdict;
  try {
    verdict = tx_->sink->check_content();
  } catch (const std::exception& e) {
    const std::string line = delivery_failed_reply(is_storage_full(e));
    reply(out, line);
    finish_transaction(out, line, "error=" + quoted(e.what()));
    return false;
  }
  std::string line;
  switch (verdict.kind) {
  case ContentVerdict::Kind::clean:
    return true;
  case ContentVerdict::Kind::cleaned:
    virus_log = "virus=" + quoted(verdict.detail);
    return true;
  case ContentVerdict::Kind::rejected:
    line = "550 5.7.1 Error: message content rejected";
    break;
  case ContentVerdict::Kind::temporary:
    line = "451 4.3.0 Error: virus scanner unavailable, try again later";
    break;
  }
  reply(out, line);
  finish_transaction(out, line, "content=" + quoted(verdict.detail));
  return false;
}

Output SmtpSession::deliver() {
  Output out;
  if (state_ != State::delivering || !tx_) return out;
  std::string virus_log;
  if (!check_content(out, virus_log)) return out;
  if (!auth_address_.empty() && !charge_sending(out)) return out;
  std::vector<DeliveryResult> results;
  try {
    results = tx_->sink->deliver();
  } catch (const std::exception& e) {
    const std::string line = delivery_failed_reply(is_storage_full(e));
    reply(out, line);
    finish_transaction(out, line, "error=" + quoted(e.what()));
    return out;
  }
  std::vector<std::string> failed_lines;
  bool temporary = false, over_quota = false;
  std::size_t delivered = 0;
  std::string stored, queued, failed, filtered;  // for the log: where each copy went, why others did not
  for (const auto& r : results) {
    if (!r.filter.empty()) filtered += (filtered.empty() ? "filters=" : ",") + r.recipient + ":" + quoted(r.filter);
    switch (r.status) {
    case DeliveryResult::Status::delivered:
      ++delivered;
      if (r.stored) stored += (stored.empty() ? "stored=" : ",") + r.recipient + ":" + r.uidl;
      continue;
    case DeliveryResult::Status::queued:
      ++delivered;
      queued += (queued.empty() ? "queued=" : ",") + r.recipient + ":" + r.uidl;
      continue;
    case DeliveryResult::Status::over_quota:
      over_quota = true;
      failed_lines.push_back("<" + r.recipient + ">: Disk quota exceeded");
      break;
    case DeliveryResult::Status::no_account:
      failed_lines.push_back("<" + r.recipient + ">: User unknown");
      break;
    case DeliveryResult::Status::temporary:
      temporary = true;
      break;
    }
    failed += (failed.empty() ? "failed=" : ",") + r.recipient + ":" + quoted(r.detail);
  }
  const std::string ok_text = "Ok: queued as " + tx_->id;
  std::string result;
  if (temporary) {
    // A local Maildir could not take it: the only safe answer is "try again". The
    // client then resends to everyone, so local recipients already served may get the
    // message twice — a duplicate is better than a silent loss. The backend has taken
    // the queued copy back, so remote recipients do not (backend.h).
    const bool full = std::any_of(results.begin(), results.end(), [](const DeliveryResult& r) { return r.storage_full; });
    result = delivery_failed_reply(full);
    reply(out, result);
  } else if (failed_lines.empty()) {
    result = "250 2.0.0 " + ok_text;
    reply(out, result);
  } else if (delivered > 0) {
    // Delivered to some: 250 for the transaction, one line per recipient left out
    // (SMTP has no per-recipient reply after DATA; the sender is told here).
    std::vector<std::string> lines;
    for (const auto& f : failed_lines) lines.push_back("2.0.0 " + f + ", not delivered");
    lines.push_back("2.0.0 " + ok_text);
    reply_lines(out, lines, 250);
    result = "250 2.0.0 " + ok_text + " (" + std::to_string(failed_lines.size()) + " not delivered)";
  } else {
    const int code = over_quota ? 552 : 550;
    std::vector<std::string> lines;
    for (const auto& r : results)
      lines.push_back((r.status == DeliveryResult::Status::over_quota ? "5.2.2 " : "5.1.1 ") +
                      std::string("<") + r.recipient + ">: " +
                      (r.status == DeliveryResult::Status::over_quota ? "Disk quota exceeded" : "User unknown"));
    reply_lines(out, lines, code);
    result = std::to_string(code) + " " + lines.back();
  }
  std::string details;
  for (const std::string* part : {&stored, &queued, &failed, &filtered, &virus_log})
    if (!part->empty()) details += (details.empty() ? "" : " ") + *part;
  finish_transaction(out, result, details);
  if (errors_ >= config_.max_errors) close_with(out, "421 4.7.0 Too many errors");
  return out;
}

} // namespace mh::smtp
