// error.h — the one error type libspool throws, and how it maps to exit codes.
// Every expected failure (bad name, missing domain, busy lock, malformed YAML, full
// disk) is a spool::Error carrying an Errc whose value is the sysexits code of SPEC §9,
// plus whether retrying later may succeed (SMTP 4xx vs 5xx). Bugs are not Errors.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace spool {

enum class Errc : int {
  other = 1,          // anything else, incl. refused destructive action without --force
  usage = 64,         // EX_USAGE
  invalid_input = 65, // EX_DATAERR: a name or value that can never be valid
  no_account = 67,    // EX_NOUSER: no such account or list
  no_domain = 68,     // EX_NOHOST: no such domain
  exists = 73,        // EX_CANTCREAT: already exists
  busy = 75,          // EX_TEMPFAIL: lock not obtained in time
  permission = 77,    // EX_NOPERM
  bad_config = 78,    // EX_CONFIG: malformed spool file or unknown key
};

// Throws an Error for a failed system call: "<what> <path>: <strerror>", with the
// errno mapped (EACCES/EPERM → permission, ELOOP → other: a planted symlink, EEXIST →
// exists, ENOSPC/EDQUOT → temporary and storage_full).
[[noreturn]] void throw_errno(std::string_view what, const std::filesystem::path& path, int err);

class Error : public std::runtime_error {
public:
  Error(Errc code, const std::string& message, bool temporary = false)
      : std::runtime_error(message), code_(code), temporary_(temporary) {}

  Errc code() const noexcept { return code_; }
  int exit_code() const noexcept { return static_cast<int>(code_); }
  // True when the same operation may succeed later (lock busy, disk full).
  bool temporary() const noexcept { return temporary_ || code_ == Errc::busy; }
  // True when a write failed for want of space (ENOSPC, EDQUOT): SMTP's own reply for it
  // is 452 4.3.1 Insufficient system storage (SPEC §8), not the generic 451.
  bool storage_full() const noexcept { return storage_full_; }
  // A symlink (or other non-file) planted where a spool directory, message or file
  // belongs: never followed, exit 1 naming the path, and the mailbox or queue entry
  // it sits in is unusable until an administrator acts (SPEC §8 "The spool walk").
  static Error planted(const std::string& message) {
    Error e(Errc::other, message);
    e.planted_ = true;
    return e;
  }
  bool planted() const noexcept { return planted_; }

private:
  friend void throw_errno(std::string_view, const std::filesystem::path&, int);
  Errc code_;
  bool temporary_;
  bool storage_full_ = false;
  bool planted_ = false;
};

} // namespace spool
