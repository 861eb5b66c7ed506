// maildrop.h — what the POP3 session asks of the mail store, as a small interface so the
// session stays free of the spool (STYLE §9, §13): tests give it a fake, mh-serve gives it
// SpoolMaildrop (spool_maildrop.h). A Maildrop is the locked snapshot a POP3 session works
// on (RFC 1939 §8): the message list is fixed when it is opened; messages delivered later
// appear in the next session, messages purged meanwhile fail to open.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mh::pop3 {

struct MaildropMessage {
  std::string uidl;        // RFC 1939 §7: 1–70 characters 0x21–0x7E, stable forever
  std::uint64_t size = 0;  // octets as sent: CRLF line ends, before dot-stuffing
};

class Maildrop {
public:
  virtual ~Maildrop() = default;  // releases the mailbox lock
  // The snapshot taken at open, oldest first; index = message number - 1.
  virtual const std::vector<MaildropMessage>& messages() const = 0;
  // A read-only fd for the message's bytes (LF or CRLF line ends; the transfer encoder
  // makes them CRLF); the caller closes it. nullopt when the message is gone (purged by
  // mh-purge or another reader since the snapshot). Throws MaildropUnavailable for a
  // symlink in the message's place, anything else on I/O errors.
  virtual std::optional<int> open(std::size_t index) = 0;
  // UPDATE state (RFC 1939 §6): removes the message for good. True when it is gone
  // afterwards (removed now, or already gone: the client's wish is fulfilled either
  // way); false when it could not be removed (I/O error). Never throws.
  virtual bool remove(std::size_t index) = 0;
  // UPDATE state for every message the client deleted; how many could not be removed.
  // A maildrop that can pay its lock and bookkeeping once for all of them overrides it.
  virtual std::size_t remove_all(const std::vector<std::size_t>& indices) {
    std::size_t failed = 0;
    for (std::size_t i : indices)
      if (!remove(i)) ++failed;
    return failed;
  }
};

// Another session holds the mailbox (RFC 2449 §8.1.2 [IN-USE]).
class MaildropBusy : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The mailbox cannot be used at all until an administrator acts: a symlink planted where
// the Maildir, one of its folders or a message belongs (SPEC §8, RFC 3206 [SYS/PERM]).
// what() names the path, for the log.
class MaildropUnavailable : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class MaildropProvider {
public:
  virtual ~MaildropProvider() = default;
  // Opens and locks the maildrop of a canonical address (as Authenticator returned it).
  // Blocking (directory listing): called from Pop3Session::authenticate() on the pool.
  // Throws MaildropBusy when another session holds it, MaildropUnavailable when the
  // mailbox is unusable (planted symlink), anything else on I/O errors.
  virtual std::unique_ptr<Maildrop> open(const std::string& address) = 0;
};

} // namespace mh::pop3
