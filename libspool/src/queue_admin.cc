// queue_admin.cc — list, show, retry and delete queue entries for an administrator
// (queue_admin.h). Changes are made only while holding the entry's lock (QueueClaim),
// exactly as a runner would, so a runner and this code never act on one entry at once.
#include "spool/queue_admin.h"

#include "spool/atomic_file.h"
#include "spool/bounce.h"
#include "spool/dsn.h"
#include "spool/error.h"
#include "spool/header_decode.h"
#include "dir_entries.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>

namespace spool {
namespace {

using namespace std::chrono_literals;

// How often a held entry is tried again while waiting for its runner.
constexpr auto claim_poll = 50ms;

fs::path msg_path(const Layout& l, std::string_view id) { return l.queue_dir() / (std::string(id) + ".msg"); }
fs::path env_path(const Layout& l, std::string_view id) { return l.queue_dir() / (std::string(id) + ".env"); }
fs::path corrupt_dir(const Layout& l) { return l.queue_dir() / "corrupt"; }

// An id as it may be echoed in a message: the command line can hold anything.
std::string shown_id(std::string_view id) {
  std::string out;
  for (char c : id.substr(0, 80)) out += (c > 0x20 && c < 0x7f) ? c : '?';
  return out;
}

void check_id(std::string_view id) {
  if (!queue_id_ok(id)) throw Error(Errc::invalid_input, "not a queue id: " + shown_id(id));
}

[[noreturn]] void no_such_entry(std::string_view id) {
  throw Error(Errc::no_account, "no such queue entry: " + std::string(id));
}

[[noreturn]] void entry_busy(std::string_view id) {
  throw Error(Errc::busy, "queue entry " + std::string(id) + " is being delivered; try again");
}

// Both files of the entry exist (as anything: a planted symlink is refused later, by the
// function that would follow it). A lone .msg is being written; a lone .env is debris.
bool entry_exists(const Layout& layout, std::string_view id) {
  struct stat st;
  return ::lstat(env_path(layout, id).c_str(), &st) == 0 && ::lstat(msg_path(layout, id).c_str(), &st) == 0;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The entry's claim; while a runner holds it, tried again until `wait_until`.
QueueClaim claim_entry(const Layout& layout, std::string_view id, std::chrono::steady_clock::time_point wait_until) {
  for (;;) {
    if (auto claim = QueueClaim::try_claim(layout, id)) return std::move(*claim);
    if (!entry_exists(layout, id)) no_such_entry(id);  // never there, or delivered meanwhile
    if (std::chrono::steady_clock::now() >= wait_until) entry_busy(id);
    std::this_thread::sleep_for(claim_poll);
  }
}

// Removes an entry whose .env does not parse (QueueClaim cannot hold it), under the same
// lock on its .msg, in the same order as QueueClaim::remove(): .env first.
void remove_unreadable(const Layout& layout, std::string_view id, std::chrono::steady_clock::time_point wait_until) {
  const fs::path msg = msg_path(layout, id);
  const fs::path env = env_path(layout, id);
  layout.verify_no_symlinks(msg);
  for (;;) {
    Fd fd(::open(msg.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (fd.fd < 0) {
      if (errno == ENOENT) no_such_entry(id);
      throw_errno("cannot open", msg, errno);
    }
    if (::flock(fd.fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) throw_errno("cannot lock", msg, errno);
      if (std::chrono::steady_clock::now() >= wait_until) entry_busy(id);
      std::this_thread::sleep_for(claim_poll);
      continue;
    }
    // Removed (or quarantined) between open and lock: nothing left to delete.
    struct stat held, now;
    if (::fstat(fd.fd, &held) != 0 || held.st_nlink == 0 || ::lstat(msg.c_str(), &now) != 0 ||
        now.st_ino != held.st_ino || now.st_dev != held.st_dev)
      no_such_entry(id);
    if (::unlink(env.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", env, errno);
    if (::unlink(msg.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", msg, errno);
    fsync_directory(layout.queue_dir());
    return;
  }
}

// `text` as valid UTF-8 that cannot drive a terminal: LF and tab kept, CR dropped, other
// C0/C1 controls, DEL and malformed sequences (overlong, surrogates, > U+10FFFF) become
// U+FFFD.
std::string printable_text(std::string_view text) {
  static constexpr std::string_view replacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  auto cont = [&](std::size_t i) { return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '\r') {
      } else if (c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) {
        out += static_cast<char>(c);
      } else {
        out += replacement;
      }
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    bool ok = len > 0;
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = cont(i + k);
      if (ok) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    if (ok) {
      ok = !(len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) && !(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) &&
           !(cp >= 0x80 && cp <= 0x9F);
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += replacement;
      ++i;  // resynchronise on the next byte
    }
  }
  return out;
}

// True when the message continues after `head` with more header lines, i.e. the header
// block was cut at the limit rather than ended by its empty line (or the end of file).
bool header_block_cut(int fd, std::size_t head_size) {
  char next[2];
  ssize_t n;
  do n = ::pread(fd, next, sizeof next, static_cast<off_t>(head_size));
  while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  if (next[0] == '\n') return false;
  if (n == 2 && next[0] == '\r' && next[1] == '\n') return false;
  return true;
}

// Error texts quote .env content (a key, a value), which can be any bytes: made valid
// UTF-8 without controls, so they can go to a terminal and into a JSON document.
template <class F>
auto clean_errors(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    const std::string what = e.what();
    std::string clean = printable_text(what);
    if (clean == what) throw;
    throw Error(e.code(), clean, e.temporary());
  }
}

std::size_t count_corrupt(const Layout& layout) {
  const fs::path dir = corrupt_dir(layout);
  layout.verify_no_symlinks(dir);
  std::set<std::string> ids;
  for (const auto& e : detail::read_entries(dir, /*with_dot_files=*/false)) {
    const auto dot = e.name.rfind('.');
    if (dot == std::string::npos) continue;
    const std::string_view suffix = std::string_view(e.name).substr(dot);
    if (suffix == ".msg" || suffix == ".env") ids.insert(e.name.substr(0, dot));
  }
  return ids.size();
}

QueueEntryDetails show_entry(const Layout& layout, std::string_view id) {
  check_id(id);
  layout.verify_no_symlinks(layout.queue_dir());
  if (!entry_exists(layout, id)) no_such_entry(id);
  QueueEntryDetails d;
  try {
    d.envelope = load_queue_entry(layout, id);
  } catch (const Error& e) {
    if (e.code() == Errc::other && !entry_exists(layout, id)) no_such_entry(id);
    throw;
  }
  const fs::path msg = msg_path(layout, id);
  layout.verify_no_symlinks(msg);
  Fd fd(::open(msg.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (fd.fd < 0) {
    if (errno == ENOENT) no_such_entry(id);
    throw_errno("cannot open", msg, errno);
  }
  struct stat st;
  if (::fstat(fd.fd, &st) != 0) throw_errno("cannot inspect", msg, errno);
  if (!S_ISREG(st.st_mode)) throw Error::planted("not a regular file: " + msg.string());
  d.size = static_cast<std::uint64_t>(st.st_size);
  const std::string head = read_header_block(fd.fd, max_queue_show_headers);
  d.headers_cut = header_block_cut(fd.fd, head.size());
  d.headers = printable_text(head);
  if (auto from = header_field(head, "From")) d.from = decode_header_value(*from);
  if (auto subject = header_field(head, "Subject")) d.subject = decode_header_value(*subject);
  return d;
}

void retry_entry(const Layout& layout, std::string_view id, std::int64_t now,
                 std::chrono::steady_clock::time_point wait_until) {
  check_id(id);
  layout.verify_no_symlinks(layout.queue_dir());
  QueueClaim claim = claim_entry(layout, id, wait_until);
  QueueEnvelope e = claim.envelope();
  e.next_attempt = now;
  // A new .env (new inode) even when it was due already: that is what a runner notices.
  claim.update(std::move(e));
}

std::string delete_entry(const Layout& layout, std::string_view id, const QueueDeleteOptions& o) {
  check_id(id);
  layout.verify_no_symlinks(layout.queue_dir());
  std::optional<QueueClaim> claim;
  try {
    claim.emplace(claim_entry(layout, id, o.wait_until));
  } catch (const Error& e) {
    if (e.code() != Errc::bad_config) throw;
    if (o.bounce)
      throw Error(Errc::bad_config, std::string(e.what()) +
                                        " (the envelope cannot be read, so there is no sender to bounce to; "
                                        "delete the entry without --bounce)");
    remove_unreadable(layout, id, o.wait_until);
    return {};
  }
  std::string dsn;
  if (o.bounce) {
    const QueueEnvelope& env = claim->envelope();
    std::vector<BounceFailure> failures;
    failures.reserve(env.recipients.size());
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
      std::string reply = queue_deleted_reply;
      if (i < env.recipient_errors.size() && !env.recipient_errors[i].empty())
        reply += " (last attempt: " + env.recipient_errors[i] + ")";
      else if (!env.last_error.empty())
        reply += " (last attempt: " + env.last_error + ")";
      failures.push_back({env.recipients[i], std::move(reply), ""});
    }
    // Queued (durable) before the entry goes: a crash in between sends the DSN and
    // leaves the entry, never loses both.
    dsn = queue_bounce(layout, o.reporting_mta, env, claim->message_fd(), failures, o.now);
  }
  claim->remove();
  return dsn;
}

} // namespace

QueueListing list_queue_entries(const Layout& layout) {
  QueueScan scan = scan_queue(layout);
  QueueListing out;
  out.entries.reserve(scan.entries.size() + scan.suspect.size());
  for (const auto& e : scan.entries) {
    QueueListEntry item;
    item.id = e.id;
    try {
      item.envelope = load_queue_entry(layout, e.id);
    } catch (const Error& err) {
      if (!entry_exists(layout, e.id)) continue;  // delivered while we listed
      item.error = printable_text(err.what());
    }
    struct stat st;
    if (::lstat(msg_path(layout, e.id).c_str(), &st) == 0) item.size = static_cast<std::uint64_t>(st.st_size);
    else if (errno == ENOENT) continue;
    out.entries.push_back(std::move(item));
  }
  for (const auto& id : scan.suspect) {
    QueueListEntry item;
    item.id = id;
    item.error = "queue/" + id + ".msg or .env is not a regular file";
    out.entries.push_back(std::move(item));
  }
  std::sort(out.entries.begin(), out.entries.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  out.corrupt = count_corrupt(layout);
  return out;
}

std::vector<std::string> queue_entry_ids(const Layout& layout) {
  QueueScan scan = scan_queue(layout);
  std::vector<std::string> ids;
  ids.reserve(scan.entries.size() + scan.suspect.size());
  for (auto& e : scan.entries) ids.push_back(std::move(e.id));
  for (auto& id : scan.suspect) ids.push_back(std::move(id));
  std::sort(ids.begin(), ids.end());
  return ids;
}

QueueEntryDetails show_queue_entry(const Layout& layout, std::string_view id) {
  return clean_errors([&] { return show_entry(layout, id); });
}

void queue_retry(const Layout& layout, std::string_view id, std::int64_t now,
                 std::chrono::steady_clock::time_point wait_until) {
  clean_errors([&] { retry_entry(layout, id, now, wait_until); });
}

std::string queue_delete(const Layout& layout, std::string_view id, const QueueDeleteOptions& options) {
  return clean_errors([&] { return delete_entry(layout, id, options); });
}

} // namespace spool
