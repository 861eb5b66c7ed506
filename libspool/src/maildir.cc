// maildir.cc — Maildir creation and inspection.
#include "spool/maildir.h"

#include "spool/atomic_file.h"
#include "spool/error.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>

namespace spool {

void create_maildir(const std::filesystem::path& dir, std::uint64_t quota_bytes) {
  for (const auto& d : {dir, dir / "tmp", dir / "new", dir / "cur"})
    if (::mkdir(d.c_str(), 0700) != 0) throw_errno("cannot create directory", d, errno);
  // Maildir++: first line is the quota definition, then "<bytes> <count>" lines.
  write_file_atomic(dir / "maildirsize", std::to_string(quota_bytes) + "S\n0 0\n", 0600);
}

bool maildir_holds_mail(const std::filesystem::path& dir) {
  for (const char* sub : {"new", "cur"}) {
    DIR* d = ::opendir((dir / sub).c_str());
    if (!d) continue;
    bool found = false;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') {
        found = true;
        break;
      }
    }
    ::closedir(d);
    if (found) return true;
  }
  return false;
}

} // namespace spool
