// delivery.h — safe Maildir delivery by the qmail protocol (SPEC §2): the message is
// streamed into <maildir>/tmp/, fsynced once, then hard-linked into each recipient's
// new/ (copied on EXDEV), new/ fsynced, and maildirsize appended. Readers never see a
// partial file; one message to many accounts is stored once. When a quota applies it is
// checked per recipient under the domain's quota lock (quota.h), which is held only
// around the check + link + append — never around the data fsync.
#pragma once

#include "spool/layout.h"
#include "spool/names.h"
#include "spool/tmp_file.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// A message being received; streams to a file in <maildir>/tmp/ (mode 0600), written
// through TmpFile (tmp_file.h), the write path the queue shares.
class PendingMessage {
public:
  // A new file in <maildir>/tmp/. tmp/ is reached by the spool walk from the root (a
  // symlink on the way → throw_planted) and kept open: the create, the link into each
  // new/ and the final unlink are relative to it.
  static PendingMessage begin(const Layout& layout, const fs::path& maildir);
  // A complete, fsynced file that stays where it is (a list's archived post): deliver()
  // links it under `unique` and never removes it; a link that already exists under that
  // name counts as delivered (a distribution resumed after a crash), not again.
  static PendingMessage adopt(const fs::path& complete_file, std::string unique, std::uint64_t size,
                              std::uint64_t wire_size);

  PendingMessage(PendingMessage&& other) noexcept = default;
  PendingMessage& operator=(PendingMessage&& other) noexcept = default;
  PendingMessage(const PendingMessage&) = delete;
  PendingMessage& operator=(const PendingMessage&) = delete;
  ~PendingMessage() = default;                                    // the tmp file goes unless adopted

  void append(std::string_view bytes);                            // buffered; never whole in memory
  std::uint64_t size() const noexcept { return adopted_.empty() ? file_.size() : adopted_size_; }
  // The size with every LF not preceded by CR counted as CRLF: what POP3 sends (",W=").
  std::uint64_t wire_size() const noexcept { return size() + bare_lfs_; }
  void abort() noexcept { file_.discard(); }                      // unlink tmp (also in destructor)
  // A new read-only descriptor of the file as written so far (the write buffer is
  // flushed, nothing is fsynced): the content check reads the message before it is
  // delivered (mh-serve's content/). The caller closes it; it stays readable after
  // abort() unlinks the file.
  int open_for_reading();
  // The Maildir whose tmp/ holds the file (begin()'s argument).
  fs::path maildir() const { return tmp_path().parent_path().parent_path(); }

  // --- used by deliver() ---
  // Flushes the buffer, fsyncs and closes the file (once; later calls do nothing).
  void finish();
  // Where the file is, for errors and for links across directories the caller has no
  // descriptor of; link_at() is the way for a new/ the caller holds open.
  fs::path tmp_path() const { return adopted_.empty() ? file_.path() : adopted_; }
  // linkat(2) of the file to `name` in the open directory `dir`: 0, or -1 with errno.
  int link_at(int dir, const std::string& name) const noexcept;
  // The unique part of the final name (without ",S=" and flags); fixed at begin().
  const std::string& unique_name() const noexcept { return unique_; }

private:
  PendingMessage() = default;

  TmpFile file_;                 // begin(): the file in tmp/
  fs::path adopted_;             // adopt(): the complete file elsewhere, never removed here
  std::uint64_t adopted_size_ = 0;
  std::string unique_;
  std::uint64_t bare_lfs_ = 0;   // LFs not preceded by CR, counted as append() sees them
  bool last_was_cr_ = false;     // the previous chunk ended in CR (CRLF split across chunks)
  bool finished_ = false;
};

struct DeliveryOutcome {
  Address recipient;
  enum class Status { delivered, over_quota, no_account, failed_temporary } status;
  std::string detail;                  // human text for logs / SMTP replies
  std::string uidl;                    // when delivered
};

// A new unique Maildir name "<secs>.M<usecs>P<pid>Q<counter>R<hex>.<host>" (no ",S=").
// The host part is sanitized ('/' → \057, ':' → \072) and shortened so it is ≤ 70 chars.
std::string unique_maildir_name();
// The host part of a Maildir name (maildir.5): '/' → \057, ':' → \072, and also ','
// (it ends the UIDL), '\\' and anything outside 0x21–0x7E as \ooo octal; cut at an escape
// boundary so the result has at most `budget` characters.
std::string maildir_safe_host(std::string_view host, std::size_t budget);

// fsyncs the pending file once, then per recipient: checks quota (domain and optional account
// quota, if either is set) under the domain's quota lock and, if it fits, hard-links into <account>/Maildir/new/
// (copy if link fails with EXDEV), fsyncs new/, appends to maildirsize. The same bytes are
// written once for all recipients. Never reports "delivered" before the link is durable.
// A recipient without an account → no_account; disk full / I/O errors → failed_temporary.
// Throws spool::Error only when the pending file itself cannot be completed (e.g. ENOSPC
// while fsyncing it); the tmp file is removed in that case.
std::vector<DeliveryOutcome> deliver(const Layout& layout, PendingMessage& msg,
                                     const std::vector<Address>& recipients);
// Convenience for tools/tests/bench: deliver a whole message held in memory. The tmp file
// is created in the first recipient's Maildir that exists.
std::vector<DeliveryOutcome> deliver_bytes(const Layout& layout, std::string_view message,
                                           const std::vector<Address>& recipients);

} // namespace spool
