// spool_maildrop.cc — SpoolMaildrop: lock, snapshot, open and remove over spool::Maildir.
#include "pop3/spool_maildrop.h"

#include <spool/error.h>
#include <spool/names.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mh::pop3 {

std::uint64_t count_wire_size(int fd, const std::filesystem::path& for_errors) {
  std::uint64_t size = 0, bare_lfs = 0;
  bool last_was_cr = false;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) spool::throw_errno("cannot read message", for_errors, errno);
    if (n == 0) break;
    const std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
    for (std::size_t lf = chunk.find('\n'); lf != std::string_view::npos; lf = chunk.find('\n', lf + 1))
      if (!(lf > 0 ? chunk[lf - 1] == '\r' : last_was_cr)) ++bare_lfs;
    last_was_cr = chunk.back() == '\r';
    size += chunk.size();
  }
  return size + bare_lfs;
}

namespace {

// A planted symlink (spool::Error::planted) or a permission error makes the mailbox
// unusable until an administrator acts: [SYS/PERM], not the [SYS/TEMP] of other errors.
template <class F>
auto unless_planted(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const spool::Error& e) {
    if (e.planted() || e.code() == spool::Errc::permission) throw MaildropUnavailable(e.what());
    throw;
  }
}

} // namespace

SpoolMaildrop::SpoolMaildrop(const spool::Layout& layout, const std::filesystem::path& maildir)
    : maildir_(layout, maildir) {
  unless_planted([&] { return maildir_.exists(); });  // the walk, before a lock file is made in it
  unless_planted([&] { lock_and_list(); });
}

void SpoolMaildrop::lock_and_list() {
  lock_ = spool::FileLock::try_acquire(maildir_.pop3_lock_path());
  if (!lock_.holds()) throw MaildropBusy("mailbox " + maildir_.path().string() + " is locked by another POP3 session");
  infos_ = maildir_.list();
  messages_.reserve(infos_.size());
  std::vector<spool::MessageInfo> kept;
  kept.reserve(infos_.size());
  for (auto& info : infos_) {
    std::uint64_t wire = info.wire_size;
    if (wire == 0 && info.size > 0) {
      // No ",W=" (see the header): count once. A message that vanished meanwhile is
      // simply not part of this snapshot.
      auto fd = maildir_.open_message(info);
      if (!fd) continue;
      try {
        wire = count_wire_size(*fd, maildir_.path() / info.filename);
      } catch (...) {
        ::close(*fd);
        throw;
      }
      ::close(*fd);
    }
    messages_.push_back({info.uidl, wire});
    kept.push_back(std::move(info));
  }
  infos_ = std::move(kept);
}

std::optional<int> SpoolMaildrop::open(std::size_t index) {
  return unless_planted([&] { return maildir_.open_message(infos_.at(index)); });
}

bool SpoolMaildrop::remove(std::size_t index) {
  try {
    maildir_.remove(infos_.at(index));  // false: already gone, which is what was asked
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// One writer lock and one maildirsize (and domainsize) line for the whole QUIT, not one
// per message: an expunge of 2,000 messages is 2,000 unlinkat() calls and little else.
std::size_t SpoolMaildrop::remove_all(const std::vector<std::size_t>& indices) {
  std::vector<spool::MessageInfo> chosen;
  chosen.reserve(indices.size());
  for (std::size_t i : indices) chosen.push_back(infos_.at(i));
  try {
    const auto outcome = maildir_.remove_all(chosen);
    return static_cast<std::size_t>(std::count(outcome.begin(), outcome.end(), spool::Maildir::Removal::failed));
  } catch (const std::exception&) {
    return indices.size();  // the lock or the Maildir itself: nothing is known removed
  }
}

std::unique_ptr<Maildrop> SpoolMaildropProvider::open(const std::string& address) {
  const spool::Address a = spool::Address::parse(address);
  return std::make_unique<SpoolMaildrop>(layout_, layout_.maildir(a));
}

} // namespace mh::pop3
