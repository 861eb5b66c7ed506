// error.cc — errno → spool::Error mapping, in one place.
#include "spool/error.h"

#include <cerrno>
#include <cstring>

namespace spool {

void throw_errno(std::string_view what, const std::filesystem::path& path, int err) {
  std::string msg = std::string(what) + " " + path.string() + ": " + std::strerror(err);
  switch (err) {
  case EACCES:
  case EPERM:
  case EROFS:
    throw Error(Errc::permission, msg);
  case ELOOP:  // O_NOFOLLOW met a symlink planted in the spool
    throw Error::planted(msg);
  case EEXIST:
  case ENOTEMPTY:
    throw Error(Errc::exists, msg);
  case ENOSPC:
  case EDQUOT: {
    Error e(Errc::other, msg, /*temporary=*/true);
    e.storage_full_ = true;
    throw e;
  }
  case EINTR:
  case EAGAIN:
  case EMFILE:
  case ENFILE:
  case ENOMEM:
    throw Error(Errc::other, msg, /*temporary=*/true);
  default:
    throw Error(Errc::other, msg);
  }
}

} // namespace spool
