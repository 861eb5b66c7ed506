// spool_maildrop.h — the POP3 maildrop over libspool (maildrop.h): an account's Maildir
// (spool::Maildir, new/ + cur/), locked for the session by a non-blocking exclusive flock
// on "<Maildir>/.pop3.lock" (spool::Maildir::pop3_lock_path). flock is per open file
// description, so a second session fails to lock whether it runs in this process (the
// daemon's other threads) or another; the lock goes when the session or process ends
// (kill -9 included). Removal goes through spool::Maildir::remove, which keeps
// maildirsize exact.
//
// Sizes are CRLF sizes (what POP3 sends): the ",W=" of the file name, written by our
// delivery. A file without one (mail delivered by other software) is read once at open
// to count its bare LFs: one sequential read of each such message per login — cheap for
// a few, slow for a mailbox of thousands of foreign messages (a later delivery by us, or a
// rename adding W=, makes it free again; this code never renames).
#pragma once

#include "pop3/maildrop.h"

#include <spool/layout.h>
#include <spool/lock.h>
#include <spool/maildir.h>

#include <filesystem>

namespace mh::pop3 {

class SpoolMaildrop : public Maildrop {
public:
  // Opens the Maildir by the spool walk (no symlink followed below the root), locks and
  // lists it; throws MaildropBusy when another session holds it, MaildropUnavailable for
  // a planted symlink, spool::Error on I/O errors.
  SpoolMaildrop(const spool::Layout& layout, const std::filesystem::path& maildir);

  const std::vector<MaildropMessage>& messages() const override { return messages_; }
  std::optional<int> open(std::size_t index) override;
  bool remove(std::size_t index) override;
  std::size_t remove_all(const std::vector<std::size_t>& indices) override;

private:
  void lock_and_list();

  spool::Maildir maildir_;
  spool::FileLock lock_;
  std::vector<spool::MessageInfo> infos_;
  std::vector<MaildropMessage> messages_;
};

// Thread-safe (no state but the layout): the daemon's pool threads share one.
class SpoolMaildropProvider : public MaildropProvider {
public:
  explicit SpoolMaildropProvider(const spool::Layout& layout) : layout_(layout) {}
  // `address` is canonical (from the Authenticator); parsed again all the same, since it
  // becomes a path (STYLE §4).
  std::unique_ptr<Maildrop> open(const std::string& address) override;

private:
  const spool::Layout& layout_;
};

// The CRLF size of the bytes read from fd (from its current offset): size + bare LFs.
// Throws spool::Error on read errors.
std::uint64_t count_wire_size(int fd, const std::filesystem::path& for_errors);

} // namespace mh::pop3
