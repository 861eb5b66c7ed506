// host_state.cc — run/HOSTNAME/ and the pid file that keeps two daemons from sharing one
// identity on a spool.
#include "spool/host_state.h"

#include "spool/atomic_file.h"
#include "spool/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

namespace spool {

void check_host_name(const std::string& hostname) {
  const auto bad = [&](const std::string& why) {
    throw Error(Errc::bad_config, "host name '" + hostname + "' " + why);
  };
  if (hostname.empty() || hostname.size() > 253) bad("must be 1 to 253 characters");
  for (char c : hostname)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'))
      bad("may hold only letters, digits, '.' and '-'");
  if (hostname.front() == '.' || hostname.front() == '-') bad("must start with a letter or digit");
  if (hostname == "locks") bad("is taken: run/locks/ holds the spool's locks");
}

HostClaim HostClaim::take(const Layout& layout, const std::string& hostname) {
  check_host_name(hostname);
  layout.ensure_skeleton();
  const fs::path dir = layout.run_dir() / hostname;
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create directory", dir, errno);
  layout.verify_no_symlinks(dir);
  const fs::path pid_file = dir / "mh-serve.pid";
  FileLock lock = FileLock::try_acquire(pid_file);
  if (!lock.holds()) {
    std::string holder = read_file_if_exists(pid_file).value_or("");
    while (!holder.empty() && std::isspace(static_cast<unsigned char>(holder.back()))) holder.pop_back();
    throw Error(Errc::busy, "another mh-serve with host name " + hostname + " serves this spool" +
                                (holder.empty() ? "" : " (pid " + holder + ")") + ": " + pid_file.string() +
                                " is locked; give each daemon its own --hostname");
  }
  // Informational for the administrator; the lock, not the number, is what counts.
  const int fd = ::open(pid_file.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open", pid_file, errno);
  const std::string pid = std::to_string(::getpid()) + "\n";
  const bool ok = ::ftruncate(fd, 0) == 0 && ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
  const int err = errno;
  ::close(fd);
  if (!ok) throw_errno("cannot write", pid_file, err);
  return HostClaim(dir, std::move(lock));
}

} // namespace spool
