// host_state.h — the per-process corner of a shared spool (SPEC §8 "Several daemons on
// one spool"): SPOOL/run/HOSTNAME/, named by the daemon's host name. Everything global
// lives elsewhere in the spool under locks; what is here belongs to one running mh-serve.
#pragma once

#include "spool/layout.h"
#include "spool/lock.h"

#include <string>

namespace spool {

// Throws Error(bad_config) unless `hostname` can name a per-process directory: 1–253
// characters of letters, digits, '.' and '-', not starting with '.' or '-', and not
// "locks" (run/locks/ holds the spool's locks).
void check_host_name(const std::string& hostname);

// run/HOSTNAME/mh-serve.pid, held under an exclusive flock for the life of the process
// (released by the kernel when it dies, kill -9 included) and holding its pid. A second
// daemon with the same host name on the same spool — on this host or another — is
// refused with Error(busy) naming the holder's pid.
class HostClaim {
public:
  static HostClaim take(const Layout& layout, const std::string& hostname);

  const fs::path& dir() const noexcept { return dir_; }

private:
  HostClaim(fs::path dir, FileLock lock) : dir_(std::move(dir)), lock_(std::move(lock)) {}
  fs::path dir_;
  FileLock lock_;
};

} // namespace spool
