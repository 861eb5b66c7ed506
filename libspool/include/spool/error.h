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

class Error : public std::runtime_error {
public:
  Error(Errc code, const std::string& message, bool temporary = false)
      : std::runtime_error(message), code_(code), temporary_(temporary) {}

  Errc code() const noexcept { return code_; }
  int exit_code() const noexcept { return static_cast<int>(code_); }
  // True when the same operation may succeed later (lock busy, disk full).
  bool temporary() const noexcept { return temporary_ || code_ == Errc::busy; }

private:
  Errc code_;
  bool temporary_;
};

// Throws an Error for a failed system call: "<what> <path>: <strerror>", with the
// errno mapped (EACCES/EPERM → permission, EEXIST → exists, ENOSPC/EDQUOT → temporary).
[[noreturn]] void throw_errno(std::string_view what, const std::filesystem::path& path, int err);

} // namespace spool
