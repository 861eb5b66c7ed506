// filtered_delivery.cc — carrying out each recipient's filter decision (filtered_delivery.h).
// Everything a decision asks for is durable before this returns: forwards and bounce
// DSNs are committed queue entries, stored copies are linked and fsynced. A step that
// cannot be carried out makes that recipient fail temporarily (the client retries), so a
// filter never loses mail; only an auto-reply that cannot be queued is merely logged.
#include "spool/filtered_delivery.h"

#include "spool/accounts.h"
#include "spool/autoreply.h"
#include "spool/bounce.h"
#include "spool/error.h"
#include "spool/filter_match.h"
#include "spool/filters.h"
#include "spool/header_decode.h"
#include "spool/queue.h"
#include "spool/spam_check.h"

#include "text_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <map>
#include <optional>
#include <string_view>

namespace spool {
namespace {

using Status = DeliveryOutcome::Status;
using detail::base64;
using detail::is_ascii;
using detail::starts_with_field;

// The received file, open for reading while the decisions are carried out (its tmp
// name may be unlinked meanwhile by deliver()).
class MessageFile {
public:
  explicit MessageFile(const fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd_ < 0) throw Error(Errc::other, "cannot reopen " + path.string() + ": " + std::strerror(errno), true);
  }
  ~MessageFile() { ::close(fd_); }
  MessageFile(const MessageFile&) = delete;
  MessageFile& operator=(const MessageFile&) = delete;

  int fd() const { return fd_; }

  // Up to `max` bytes from `offset` (fewer at the end of the file).
  std::string read(std::uint64_t offset, std::size_t max) const {
    std::string out(max, '\0');
    std::size_t got = 0;
    while (got < max) {
      const ssize_t n = ::pread(fd_, out.data() + got, max - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(Errc::other, "cannot read " + path_.string() + ": " + std::strerror(errno), true);
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
  }

  // Appends bytes [offset, end of file) to `sink` in 64 KiB pieces.
  template <typename Sink>
  void copy_from(std::uint64_t offset, Sink&& sink) const {
    for (;;) {
      const std::string piece = read(offset, 64 * 1024);
      if (piece.empty()) return;
      sink(piece);
      offset += piece.size();
    }
  }

private:
  fs::path path_;
  int fd_ = -1;
};

// Our trace block without the lines that belong to one final delivery (Return-Path,
// Delivered-To): what a forwarded copy keeps of it.
std::string trace_for_forward(std::string_view trace) {
  std::string out;
  bool skipping = false;
  std::size_t pos = 0;
  while (pos < trace.size()) {
    std::size_t eol = trace.find('\n', pos);
    eol = eol == std::string_view::npos ? trace.size() : eol + 1;
    const std::string_view line = trace.substr(pos, eol - pos);
    const bool continuation = line[0] == ' ' || line[0] == '\t';
    if (!continuation) skipping = starts_with_field(line, "Return-Path") || starts_with_field(line, "Delivered-To");
    if (!skipping) out += line;
    pos = eol;
  }
  return out;
}

// The header with the spam tag in front of the Subject (a Subject is added when there
// is none). A non-ASCII tag is one RFC 2047 word; the original Subject is left as written.
std::string tagged_header(std::string_view header, const std::string& tag) {
  const std::string word = is_ascii(tag) ? tag : "=?UTF-8?B?" + base64(tag) + "?=";
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t eol = header.find('\n', pos);
    eol = eol == std::string_view::npos ? header.size() : eol + 1;
    const std::string_view line = header.substr(pos, eol - pos);
    if (starts_with_field(line, "Subject")) {
      std::size_t value = pos + 8;  // after "Subject:"
      while (value < eol && (header[value] == ' ' || header[value] == '\t')) ++value;
      return std::string(header.substr(0, pos)) + "Subject: " + word + " " + std::string(header.substr(value));
    }
    pos = eol;
  }
  return "Subject: " + word + "\n" + std::string(header);
}

struct Plan {
  Address recipient;
  FilterConfig config;
  FilterDecision decision;
  std::string error;        // filters.yaml could not be read: a temporary failure
  std::size_t outcome = 0;  // index into the result
  // A forward that keeps a copy: committed but held until the copy is stored, so a
  // temporary failure can take it back (the client's retry must not forward twice).
  std::optional<QueueMessage> held_forward;
};

class FilteredDelivery {
public:
  FilteredDelivery(const Layout& layout, PendingMessage& msg, std::uint64_t trace_size, const std::string& sender,
                   const FilterServices& services, std::int64_t now)
      : layout_(layout), msg_(msg), trace_size_(trace_size), sender_(sender), services_(services), now_(now) {}

  std::vector<FilteredOutcome> run(const std::vector<Address>& recipients) {
    bool any_filters = false;
    for (const Address& r : recipients) {
      if (seen_.count(r)) continue;
      seen_.emplace(r, plans_.size());
      Plan p{r, {}, {}, {}, plans_.size(), std::nullopt};
      try {
        p.config = load_filter_config(layout_.filters_config(r), r);
      } catch (const Error& e) {
        if (e.code() != Errc::no_account && e.code() != Errc::no_domain) p.error = e.what();
      }
      any_filters = any_filters || !p.config.empty() || !p.error.empty();
      plans_.push_back(std::move(p));
      out_.push_back({{r, Status::failed_temporary, {}, {}}, {}});
    }
    if (!any_filters) {
      std::vector<Address> distinct;
      for (const Plan& p : plans_) distinct.push_back(p.recipient);
      return plain_delivery(distinct);
    }
    msg_.finish();
    file_.emplace(msg_.tmp_path());
    const std::string head = read_header();
    message_.emplace(head, msg_.size(), sender_);
    const SpamVerdict verdict = spam_verdict();
    for (Plan& p : plans_) carry_out(p, verdict);
    store(plain_);
    for (auto& [tag, group] : tagged_) store_tagged(tag, group);
    for (Plan& p : plans_)
      if (p.held_forward) settle_forward(p);
    for (Plan& p : plans_)
      if (p.error.empty() && p.decision.action == FilterDecision::Action::autoreply) reply(p);
    return std::move(out_);
  }

private:
  std::vector<FilteredOutcome> plain_delivery(const std::vector<Address>& recipients) {
    std::vector<FilteredOutcome> out;
    for (auto& o : deliver(layout_, msg_, recipients)) out.push_back({std::move(o), {}});
    return out;
  }

  // The header block below our trace, read in growing pieces: most headers fit the
  // first 16 KiB, and a 1 MiB buffer per message would cost more than the matching.
  std::string read_header() const {
    std::string text;
    std::size_t want = 16 * 1024;
    for (;;) {
      text += file_->read(trace_size_ + text.size(), want - text.size());
      const std::string_view head = header_block(text);
      if (head.size() < text.size() || text.size() < want || want >= max_filter_header_block)
        return std::string(head);
      want = std::min(want * 4, max_filter_header_block);
    }
  }

  SpamVerdict spam_verdict() {
    const Plan* wants = nullptr;
    for (const Plan& p : plans_)
      if (p.error.empty() && p.config.spam.enabled) {
        wants = &p;
        break;
      }
    if (!wants) return SpamVerdict::unknown;
    if (services_.rspamd_url.empty()) {
      spam_note_ = "spam filter inert: spam.rspamd is not set in mailhost.yaml";
      return SpamVerdict::unknown;
    }
    SpamCheckRequest rq;
    rq.rspamd_url = services_.rspamd_url;
    rq.timeout = services_.spam_timeout;
    rq.message_fd = file_->fd();
    rq.message_size = msg_.size();
    rq.sender = sender_;
    rq.recipient = wants->recipient.str();
    rq.client_ip = services_.client_ip;
    rq.helo = services_.helo;
    rq.hostname = services_.hostname;
    const SpamCheckResult r = check_spam(rq);
    spam_note_ = (r.verdict == SpamVerdict::unknown ? "spam check failed, delivered untagged: " : "spam check: ") + r.detail;
    spam_status_ = r.detail;
    return r.verdict;
  }

  void note(Plan& p, const std::string& text) {
    std::string& f = out_[p.outcome].filter;
    f += (f.empty() ? "" : "; ") + text;
  }

  void carry_out(Plan& p, SpamVerdict verdict) {
    if (!p.error.empty()) {
      out_[p.outcome].delivery.detail = "filters unreadable: " + p.error;
      note(p, "filters unreadable, delivery deferred: " + p.error);
      return;
    }
    if (p.config.empty()) {
      plain_.push_back(p.recipient);
      return;
    }
    if (p.config.spam.enabled && !spam_note_.empty()) note(p, spam_note_);
    p.decision = evaluate_filters(p.config, p.recipient, *message_, verdict);
    if (p.decision.step != FilterDecision::Step::none || p.decision.loop) note(p, p.decision.detail);
    using Action = FilterDecision::Action;
    switch (p.decision.action) {
    case Action::deliver:
    case Action::autoreply: plain_.push_back(p.recipient); break;
    case Action::tag: tagged_[p.config.spam.tag].push_back(p.recipient); break;
    case Action::discard:
      note(p, "discarded");
      done(p, "discarded by filter");
      break;
    case Action::bounce: bounce(p); break;
    case Action::forward: forward(p); break;
    }
  }

  void done(Plan& p, std::string detail, std::string uidl = {}) {
    out_[p.outcome].stored = false;
    auto& o = out_[p.outcome].delivery;
    o.status = Status::delivered;
    o.detail = std::move(detail);
    o.uidl = std::move(uidl);
  }

  void deferred(Plan& p, const std::string& what, const Error& e) {
    out_[p.outcome].delivery.detail = what + ": " + e.what();
    note(p, what + " failed, delivery deferred: " + e.what());
  }

  void announce(const std::string& id) {
    if (!id.empty() && services_.queued) services_.queued(id);
  }

  void bounce(Plan& p) {
    if (sender_.empty()) {
      note(p, "no DSN: the sender is <>");
      done(p, "refused by filter (null sender: no DSN)");
      return;
    }
    QueueEnvelope original;
    original.sender = sender_;
    original.created = now_;
    const std::string rcpt = p.recipient.str();
    try {
      const std::string id = queue_bounce(layout_, services_.hostname, original, file_->fd(),
                                          {{rcpt, "550 5.7.1 <" + rcpt + ">: Message refused by the recipient's mail filter", ""}},
                                          now_);
      announce(id);
      note(p, "DSN queued as " + id);
      done(p, "refused by filter, DSN " + id, id);
    } catch (const Error& e) {
      deferred(p, "queueing the DSN", e);
    }
  }

  void forward(Plan& p) {
    try {
      QueueMessage q = QueueMessage::begin(layout_);
      q.append("Delivered-To: " + p.recipient.str() + "\n");
      q.append(trace_for_forward(file_->read(0, static_cast<std::size_t>(trace_size_))));
      file_->copy_from(trace_size_, [&](std::string_view piece) { q.append(piece); });
      QueueEnvelope e;
      e.sender = forward_sender();
      e.recipients = p.decision.destinations;
      e.created = now_;
      e.next_attempt = now_;
      q.commit(std::move(e));
      const std::string id = q.id();
      note(p, "forward queued as " + id);
      if (p.decision.keep) {
        p.held_forward.emplace(std::move(q));
        plain_.push_back(p.recipient);
        return;
      }
      q.release();
      announce(id);
      done(p, "forwarded without a local copy, queued as " + id, id);
    } catch (const Error& e) {
      deferred(p, "queueing the forward", e);
    }
  }

  // SRS0 when we have a key; a sender SRS cannot rewrite (not local@domain) is kept.
  std::string forward_sender() const {
    if (sender_.empty() || !services_.srs) return sender_;
    try {
      return services_.srs->forward_address(sender_, services_.srs_domain, now_);
    } catch (const Error&) {
      return sender_;
    }
  }

  // After the copy's fate is known: a temporary failure takes the forward back (the
  // client will send again); a copy refused for good (quota) leaves the forward, which
  // then is the delivery.
  void settle_forward(Plan& p) {
    QueueMessage& q = *p.held_forward;
    const std::string id = q.id();
    auto& o = out_[p.outcome].delivery;
    if (o.status == Status::failed_temporary) {
      if (q.withdraw()) {
        note(p, "forward " + id + " withdrawn: the local copy failed");
        p.held_forward.reset();
        return;
      }
      note(p, "forward " + id + " could not be withdrawn: the retry may forward twice");
    } else if (o.status != Status::delivered) {
      note(p, "local copy refused (" + o.detail + "), forwarded only");
      done(p, "forwarded, local copy refused, queued as " + id, id);
    }
    q.release();
    announce(id);
    p.held_forward.reset();
  }

  void record(const std::vector<DeliveryOutcome>& outcomes) {
    for (const auto& o : outcomes) {
      auto it = seen_.find(o.recipient);
      if (it != seen_.end()) out_[plans_[it->second].outcome].delivery = o;
    }
  }

  void store(const std::vector<Address>& group) {
    if (group.empty()) return;
    record(deliver(layout_, msg_, group));
  }

  void store_tagged(const std::string& tag, const std::vector<Address>& group) {
    try {
      PendingMessage copy = PendingMessage::begin(layout_, layout_.maildir(group.front()));
      copy.append(file_->read(0, static_cast<std::size_t>(trace_size_)));
      copy.append("X-Spam-Flag: YES\n");
      if (!spam_status_.empty()) copy.append("X-Spam-Status: Yes, " + spam_status_ + "\n");
      const std::string& head = message_->header_block();
      copy.append(tagged_header(head, tag));
      file_->copy_from(trace_size_ + head.size(), [&](std::string_view piece) { copy.append(piece); });
      record(deliver(layout_, copy, group));
    } catch (const Error& e) {
      for (const Address& a : group) deferred(plans_[seen_.at(a)], "storing the tagged copy", e);
    }
  }

  void reply(Plan& p) {
    if (out_[p.outcome].delivery.status != Status::delivered) return;  // not stored: no answer
    const NoReplyReason why =
        p.decision.no_reply != NoReplyReason::none ? p.decision.no_reply : autoreply_refusal(p.recipient, *message_);
    if (why != NoReplyReason::none) {
      note(p, "auto-reply not sent: " + std::string(to_string(why)));
      return;
    }
    try {
      if (!autoreply_claim(layout_, p.recipient, sender_, p.config.autoreply.days, now_)) {
        note(p, "auto-reply not sent: answered within " + std::to_string(p.config.autoreply.days) + " days");
        return;
      }
      std::string name;
      try {
        name = read_account(layout_, p.recipient).display_name;
      } catch (const Error&) {
      }
      QueueEnvelope e;
      e.sender = "";  // RFC 3834 §3.3: replies go out with the null sender
      e.recipients = {sender_};
      e.created = now_;
      e.next_attempt = now_;
      const std::string id = enqueue_message(
          layout_, e, build_autoreply(p.recipient, name, p.config.autoreply, *message_, services_.hostname, now_));
      announce(id);
      note(p, "auto-reply queued as " + id);
    } catch (const Error& e) {
      note(p, std::string("auto-reply failed: ") + e.what());
    }
  }

  const Layout& layout_;
  PendingMessage& msg_;
  std::uint64_t trace_size_;
  const std::string& sender_;
  const FilterServices& services_;
  std::int64_t now_;
  std::vector<Plan> plans_;
  std::map<Address, std::size_t> seen_;
  std::vector<FilteredOutcome> out_;
  std::vector<Address> plain_;
  std::map<std::string, std::vector<Address>> tagged_;
  std::optional<MessageFile> file_;
  std::optional<FilterMessage> message_;
  std::string spam_note_, spam_status_;
};

} // namespace

std::vector<FilteredOutcome> deliver_filtered(const Layout& layout, PendingMessage& msg, std::uint64_t trace_size,
                                              const std::vector<Address>& recipients, const std::string& sender,
                                              const FilterServices& services, std::int64_t now) {
  return FilteredDelivery(layout, msg, trace_size, sender, services, now).run(recipients);
}

} // namespace spool
