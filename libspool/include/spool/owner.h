// owner.h — least privilege for tools: the spool has one owner (the user mh-serve runs
// as). A tool started as root switches, for good, to the owner's uid and gid before it
// touches the spool, so every file it creates belongs to that owner. A spool owned by
// root (or not yet created) leaves the process as it is.
#pragma once

#include "spool/layout.h"

#include <optional>
#include <sys/types.h>

namespace spool {

struct Owner {
  uid_t uid;
  gid_t gid;
};

// Owner of the spool root, or nullopt when it does not exist yet.
std::optional<Owner> spool_owner(const Layout& layout);

// If euid is 0 and the spool root belongs to another user, drop to that user
// (setgroups, setgid, setuid — irreversible). Also sets a private umask (027).
void act_as_spool_owner(const Layout& layout);

} // namespace spool
