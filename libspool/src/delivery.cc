// delivery.cc — the qmail delivery protocol (maildir.5) with exact per-domain quota.
// On-disk states of one message, in order (a crash in any of them is safe):
//   1. tmp/<unique>             being written; invisible to readers, removed after 36 h
//   2. tmp/<unique> fsynced     still invisible
//   3. maildirsize "+<size> 1" appended, then new/<unique>,S=<size>,W=<crlf size> linked,
//                               both under the quota lock: a crash between the two
//                               over-counts until the next recount, never under-counts
//                               (SPEC §8); a failed link appends the compensating line
//   4. new/ fsynced             durable: only now is "delivered" reported
//   5. tmp/<unique> unlinked    after every recipient got its link
#include "spool/delivery.h"

#include "spool/accounts.h"
#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/lock.h"
#include "spool/maildir.h"
#include "spool/quota.h"
#include "file_io.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <map>
#include <optional>

namespace spool {
namespace {

using detail::fsync_or_throw;

constexpr std::size_t max_uidl_length = 70;

std::string this_host() {
  char raw[256] = {};
  if (::gethostname(raw, sizeof raw - 1) != 0 || raw[0] == '\0') return "localhost";
  return raw;
}

std::string random_hex() {
  std::uint32_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) r = static_cast<std::uint32_t>(::getpid()) * 2654435761u;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", r);
  return buf;
}

std::string quota_refusal(QuotaVerdict v, const Address& a) {
  // SPEC §4: the sender is told "Disk quota exceeded" (552 5.2.2).
  if (v == QuotaVerdict::account_full) return "Disk quota exceeded: mailbox " + a.str() + " is full";
  return "Disk quota exceeded: domain " + a.domain().str() + " is full";
}

// A link made in phase 1 of deliver(), not yet durable.
struct Linked {
  std::size_t outcome;
  Maildir maildir;
  std::string name;        // in maildir's new/
  bool made_here = true;   // false: the name was there already (a resumed distribution)
};

class Delivery {
public:
  Delivery(const Layout& layout, PendingMessage& msg) : layout_(layout), msg_(msg) {}

  // Phase 1 for one recipient: account check, then quota check + link + maildirsize
  // append under the domain's quota lock. Returns the link to make durable in phase 2.
  std::optional<Linked> link(const Address& rcpt, DeliveryOutcome& out, std::size_t index) {
    try {
      return link_under_quota(rcpt, out, index);
    } catch (const Error& e) {
      if (e.code() == Errc::no_account || e.code() == Errc::no_domain) {
        out.status = DeliveryOutcome::Status::no_account;
        out.detail = "no such account: " + rcpt.str();
        return std::nullopt;
      }
      out.status = DeliveryOutcome::Status::failed_temporary;
      out.detail = e.what();
      return std::nullopt;
    }
  }

  // Phase 2: fsync new/. After the first recipient's fsync the journal commit usually
  // already covers the other links, so N recipients cost far less than N commits.
  void make_durable(Linked& l, DeliveryOutcome& out) {
    try {
      fsync_or_throw(l.maildir.new_fd(), l.maildir.new_dir());
      out.status = DeliveryOutcome::Status::delivered;
      out.uidl = msg_.unique_name();
      out.detail = "delivered to " + out.recipient.str() + " as " + out.uidl;
    } catch (const Error& e) {
      out.status = DeliveryOutcome::Status::failed_temporary;
      out.detail = e.what();
      if (l.made_here) undo(l);  // never take back a copy an earlier run delivered
    }
  }

private:
  std::optional<Linked> link_under_quota(const Address& rcpt, DeliveryOutcome& out, std::size_t index) {
    // Both files are read first: a missing account is no_account (view_account throws
    // it), whatever the state of its Maildir. (A limit set while this delivery runs
    // binds from the next one on, as if it came later.)
    const AccountView view = view_account(layout_, rcpt);
    const QuotaLimits limits{view.domain.quota, view.account.quota};
    // The walk on from the account's directory: a symlink on the way to new/, or in
    // place of cur/ (the mailbox is unavailable as a whole), fails here, before any lock,
    // and the recipient gets a temporary failure (SPEC §8: 451 4.3.0).
    Maildir md(layout_, layout_.maildir(rcpt), view.account_dir);
    md.require_deliverable();
    // ",W=": the size with CRLF line ends (Maildir++/Dovecot), so POP3's LIST/STAT/RETR
    // need not read the file to know what it will send.
    const std::string name =
        msg_.unique_name() + ",S=" + std::to_string(msg_.size()) + ",W=" + std::to_string(msg_.wire_size());
    // Under a limit, check + link + append are one step for every deliverer of the
    // domain, so racing deliveries can never both take the last free bytes. Without one
    // there is nothing to race for: the Maildir's writer lock keeps maildirsize exact.
    FileLock quota_lock;
    if (limits.any()) {
      quota_lock = FileLock::acquire(layout_.quota_lock(rcpt.domain()));
      const QuotaVerdict verdict = check_quota(layout_, rcpt, limits, msg_.size());
      if (verdict != QuotaVerdict::fits) {
        out.status = DeliveryOutcome::Status::over_quota;
        out.detail = quota_refusal(verdict, rcpt);
        return std::nullopt;
      }
    }
    const auto size = static_cast<std::int64_t>(msg_.size());
    FileLock writer = md.writer_lock();
    // Counted first, linked second (SPEC §8): a crash in between only over-counts.
    bool oversized = md.record(size, 1);
    bool made_here = false;
    try {
      made_here = link_into(md, name);
    } catch (const Error&) {
      md.record(-size, -1);  // not linked → uncount (a crash here leaves the over-count)
      throw;
    }
    if (!made_here) oversized = md.record(-size, -1);  // there already: counted back then
    writer.release();
    if (oversized) md.shrink_maildirsize();  // Maildir++: whichever writer sees it
    return Linked{index, std::move(md), name, made_here};
  }

  // False when the name is taken: only an adopted message's fixed name can be (a
  // resumed list distribution), and then it is this very message, delivered before.
  bool link_into(const Maildir& md, const std::string& name) {
    const int new_fd = md.new_fd();
    if (msg_.link_at(new_fd, name) == 0) return true;
    if (errno == EEXIST) return false;
    if (errno != EXDEV) throw_errno("cannot link message into", md.new_dir() / name, errno);
    // Another filesystem: the one copy per recipient maildir.5 would make anyway.
    TmpFile copy = TmpFile::copy_of(msg_.tmp_path(), DirFd(::dup(md.tmp_fd())), md.tmp_dir(), msg_.unique_name());
    if (::linkat(copy.dir_fd(), copy.name().c_str(), new_fd, name.c_str(), 0) == 0) return true;
    if (errno == EEXIST) return false;
    throw_errno("cannot link message into", md.new_dir() / name, errno);
  }

  // The link could not be made durable: take it back and uncount it.
  void undo(Linked& l) noexcept {
    try {
      FileLock writer = l.maildir.writer_lock();
      if (::unlinkat(l.maildir.new_fd(), l.name.c_str(), 0) == 0)
        l.maildir.record(-static_cast<std::int64_t>(msg_.size()), -1);
    } catch (const Error&) {
      // maildirsize now over-counts by one message until the next recalc: the safe side.
    }
  }

  const Layout& layout_;
  PendingMessage& msg_;
};

} // namespace

std::string maildir_safe_host(std::string_view host, std::size_t budget) {
  std::string out;
  for (char ch : host) {
    unsigned char c = static_cast<unsigned char>(ch);
    char piece[8];
    if (c == '/' || c == ':' || c == ',' || c == '\\' || c < 0x21 || c > 0x7e)
      std::snprintf(piece, sizeof piece, "\\%03o", c);
    else
      piece[0] = static_cast<char>(c), piece[1] = '\0';
    std::string_view pv(piece);
    if (out.size() + pv.size() > budget) break;
    out += pv;
  }
  return out;
}

std::string unique_maildir_name() {
  static const std::string host = this_host();
  static std::atomic<unsigned long> counter{0};
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  char prefix[96];
  std::snprintf(prefix, sizeof prefix, "%lld.M%06ldP%ldQ%luR%s", static_cast<long long>(tv.tv_sec),
                static_cast<long>(tv.tv_usec), static_cast<long>(::getpid()), counter.fetch_add(1) + 1,
                random_hex().c_str());
  std::string name = prefix;
  name += '.';
  name += maildir_safe_host(host, max_uidl_length - name.size());
  return name;
}

// --- PendingMessage ---

PendingMessage PendingMessage::begin(const Layout& layout, const fs::path& maildir) {
  const fs::path tmp = maildir / "tmp";
  DirFd dir = layout.find_dir(tmp);
  if (!dir) throw_errno("cannot open directory", tmp, ENOENT);
  PendingMessage m;
  m.unique_ = unique_maildir_name();
  m.file_ = TmpFile::create(std::move(dir), tmp, m.unique_);
  return m;
}

PendingMessage PendingMessage::adopt(const fs::path& complete_file, std::string unique, std::uint64_t size,
                                     std::uint64_t wire_size) {
  PendingMessage m;
  m.unique_ = std::move(unique);
  m.adopted_ = complete_file;
  m.adopted_size_ = size;
  m.bare_lfs_ = wire_size >= size ? wire_size - size : 0;
  m.finished_ = true;
  return m;
}

void PendingMessage::append(std::string_view bytes) {
  if (finished_) throw Error(Errc::other, "message is no longer open for writing");
  // Every byte passes here once, so the CRLF size (",W=") costs one scan of memory that
  // is hot anyway. memchr-speed: find() jumps from LF to LF.
  for (std::size_t lf = bytes.find('\n'); lf != std::string_view::npos; lf = bytes.find('\n', lf + 1)) {
    const bool after_cr = lf > 0 ? bytes[lf - 1] == '\r' : last_was_cr_;
    if (!after_cr) ++bare_lfs_;
  }
  if (!bytes.empty()) last_was_cr_ = bytes.back() == '\r';
  file_.append(bytes);
}

int PendingMessage::open_for_reading() {
  if (!adopted_.empty()) {
    const int fd = ::open(adopted_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw_errno("cannot open", adopted_, errno);
    return fd;
  }
  return file_.open_for_reading();
}

int PendingMessage::link_at(int dir, const std::string& name) const noexcept {
  if (!adopted_.empty()) return ::linkat(AT_FDCWD, adopted_.c_str(), dir, name.c_str(), 0);
  return ::linkat(file_.dir_fd(), file_.name().c_str(), dir, name.c_str(), 0);
}

void PendingMessage::finish() {
  if (finished_) return;
  if (!file_.named()) throw Error(Errc::other, "message was aborted");
  file_.sync();
  file_.close();
  finished_ = true;
}

// --- deliver ---

std::vector<DeliveryOutcome> deliver(const Layout& layout, PendingMessage& msg,
                                     const std::vector<Address>& recipients) {
  msg.finish(); // the one data fsync, before any lock is taken
  Delivery delivery(layout, msg);
  std::vector<DeliveryOutcome> outcomes;
  std::vector<Linked> linked;
  std::map<Address, std::size_t> first_of; // a repeated recipient gets one copy
  for (const Address& rcpt : recipients) {
    if (first_of.count(rcpt)) continue;
    first_of.emplace(rcpt, outcomes.size());
    outcomes.push_back({rcpt, DeliveryOutcome::Status::failed_temporary, {}, {}});
    if (auto l = delivery.link(rcpt, outcomes.back(), outcomes.size() - 1)) linked.push_back(std::move(*l));
  }
  for (Linked& l : linked) delivery.make_durable(l, outcomes[l.outcome]);
  msg.abort(); // step 5: every link is in place (or refused); drop the tmp/ name

  std::vector<DeliveryOutcome> in_order;
  for (const Address& rcpt : recipients) in_order.push_back(outcomes[first_of.at(rcpt)]);
  return in_order;
}

std::vector<DeliveryOutcome> deliver_bytes(const Layout& layout, std::string_view message,
                                           const std::vector<Address>& recipients) {
  for (const Address& rcpt : recipients) {
    if (!account_exists(layout, rcpt)) continue;
    PendingMessage msg = PendingMessage::begin(layout, layout.maildir(rcpt));
    msg.append(message);
    return deliver(layout, msg, recipients);
  }
  std::vector<DeliveryOutcome> outcomes;
  for (const Address& rcpt : recipients)
    outcomes.push_back({rcpt, DeliveryOutcome::Status::no_account, "no such account: " + rcpt.str(), {}});
  return outcomes;
}

} // namespace spool
