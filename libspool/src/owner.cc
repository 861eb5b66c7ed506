// owner.cc — permanent switch from root to the spool owner.
#include "spool/owner.h"

#include "spool/error.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace spool {

std::optional<Owner> spool_owner(const Layout& layout) {
  struct stat st;
  if (::stat(layout.root().c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot inspect spool root", layout.root(), errno);
  }
  if (!S_ISDIR(st.st_mode)) throw Error(Errc::bad_config, "spool root " + layout.root().string() + " is not a directory");
  return Owner{st.st_uid, st.st_gid};
}

void act_as_spool_owner(const Layout& layout) {
  ::umask(027);
  if (::geteuid() != 0) return;
  auto owner = spool_owner(layout);
  if (!owner || owner->uid == 0) return;
  if (::setgroups(0, nullptr) != 0 || ::setgid(owner->gid) != 0 || ::setuid(owner->uid) != 0)
    throw_errno("cannot switch to the spool owner of", layout.root(), errno);
  if (::setuid(0) == 0) throw Error(Errc::permission, "could regain root after dropping privileges");
}

} // namespace spool
