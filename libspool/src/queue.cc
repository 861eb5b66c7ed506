// queue.cc — the outbound queue's files. On-disk states of one entry, in order (a crash
// in any of them is safe; nothing before state 4 has been acknowledged):
//   1. tmp/<id>             being written, locked; invisible (or: a Maildir tmp/ file
//                           being written, for adopt())
//   2. tmp/<id> fsynced     still invisible
//   3. <id>.msg             linked into queue/ (tmp name unlinked), still locked; not
//                           listed: no .env yet
//   4. <id>.env             written atomically, queue/ fsynced: committed, durable,
//                           listed; the writer may still withdraw it while it holds the lock
//   5. lock released        the runner may claim it
// Removal goes the other way: .env first (the entry stops existing), then .msg.
#include "spool/queue.h"

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "dir_entries.h"
#include "file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <map>

namespace spool {
namespace {

constexpr std::size_t max_value_length = 998;  // RFC 5322's line limit; addresses are ≤ 254

fs::path tmp_dir(const Layout& l) { return l.queue_dir() / "tmp"; }
fs::path msg_path(const Layout& l, std::string_view id) { return l.queue_dir() / (std::string(id) + ".msg"); }
fs::path env_path(const Layout& l, std::string_view id) { return l.queue_dir() / (std::string(id) + ".env"); }

bool try_lock(int fd) { return ::flock(fd, LOCK_EX | LOCK_NB) == 0; }

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void ensure_tmp_dir(const Layout& layout) {
  layout.verify_no_symlinks(tmp_dir(layout));
  if (::mkdir(layout.queue_dir().c_str(), 0750) != 0 && errno != EEXIST)
    throw_errno("cannot create directory", layout.queue_dir(), errno);
  if (::mkdir(tmp_dir(layout).c_str(), 0750) != 0 && errno != EEXIST)
    throw_errno("cannot create directory", tmp_dir(layout), errno);
}

// Creates tmp/<id> exclusively and locks it (nobody else can know the name yet).
TmpFile create_locked(const Layout& layout, const std::string& id) {
  DirFd dir = layout.find_dir(tmp_dir(layout));
  if (!dir) throw_errno("cannot open directory", tmp_dir(layout), ENOENT);
  TmpFile file = TmpFile::create(std::move(dir), tmp_dir(layout), id);
  if (!try_lock(file.fd())) throw_errno("cannot lock", file.path(), errno);  // the destructor removes it
  return file;
}

using detail::DirEntry;
using detail::read_entries;

bool regular_file(const fs::path& p, struct stat* out = nullptr) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return false;
  if (out) *out = st;
  return S_ISREG(st.st_mode);
}

// Nothing at all under the name. The sweep's test for "the other half is gone": a
// directory, symlink or FIFO there is damage the runner moves to corrupt/ with its
// partner, never a reason to delete either.
bool nothing_at(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) != 0 && errno == ENOENT;
}

// "<id>.msg" → "<id>" when the id is valid; empty otherwise.
std::string id_of(std::string_view name, std::string_view suffix) {
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return {};
  std::string_view id = name.substr(0, name.size() - suffix.size());
  return queue_id_ok(id) ? std::string(id) : std::string();
}

// --- the .env line format -------------------------------------------------------------

[[noreturn]] void bad_env(const fs::path& file, int line, const std::string& what) {
  throw Error(Errc::bad_config, file.string() + ":" + std::to_string(line) + ": " + what);
}

template <class Int>
Int parse_int(const fs::path& file, int line, std::string_view key, std::string_view value) {
  Int v{};
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || value.empty())
    bad_env(file, line, "key '" + std::string(key) + "': '" + std::string(value) + "' is not a number");
  return v;
}

QueueEnvelope parse_envelope(const fs::path& file, std::string_view expected_id, std::string_view text) {
  if (text.size() > max_queue_env_size) bad_env(file, 1, "file is larger than " + std::to_string(max_queue_env_size) + " bytes");
  if (!text.empty() && text.back() != '\n') bad_env(file, 1, "last line is not complete");
  QueueEnvelope e;
  std::map<std::string, int> seen;  // key → line, for duplicates and required keys
  std::vector<std::pair<std::size_t, std::string>> errors;  // recipient_error lines
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto eol = text.find('\n');
    const std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) bad_env(file, line_no, "expected 'key: value'");
    const std::string key(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (!queue_value_ok(value)) bad_env(file, line_no, "key '" + key + "': value has forbidden characters");
    if (line_no == 1 && key != "format") bad_env(file, line_no, "the first line must be 'format: 1'");
    if (key != "recipient" && key != "recipient_error" && !seen.emplace(key, line_no).second)
      bad_env(file, line_no, "key '" + key + "' given twice");
    if (key == "format") {
      if (parse_int<int>(file, line_no, key, value) != queue_format)
        bad_env(file, line_no, "key 'format': version " + std::string(value) + " is not known");
    } else if (key == "id") {
      if (value != expected_id) bad_env(file, line_no, "key 'id': '" + std::string(value) + "' does not match the file name");
      e.id = std::string(value);
    } else if (key == "created") {
      e.created = parse_int<std::int64_t>(file, line_no, key, value);
    } else if (key == "sender") {
      e.sender = std::string(value);
    } else if (key == "auth") {
      e.auth = std::string(value);
    } else if (key == "attempts") {
      e.attempts = parse_int<std::uint32_t>(file, line_no, key, value);
    } else if (key == "next_attempt") {
      e.next_attempt = parse_int<std::int64_t>(file, line_no, key, value);
    } else if (key == "last_error") {
      e.last_error = std::string(value);
    } else if (key == "recipient_error") {
      // "N TEXT": N is the 1-based index of a recipient line (which may come later).
      const auto space = value.find(' ');
      const auto n = parse_int<std::size_t>(file, line_no, key, value.substr(0, space));
      if (n == 0 || n > max_queue_recipients) bad_env(file, line_no, "key 'recipient_error': no recipient " + std::to_string(n));
      errors.emplace_back(n - 1, std::string(space == std::string_view::npos ? "" : value.substr(space + 1)));
    } else if (key == "recipient") {
      if (value.empty()) bad_env(file, line_no, "key 'recipient': empty");
      if (e.recipients.size() >= max_queue_recipients)
        bad_env(file, line_no, "more than " + std::to_string(max_queue_recipients) + " recipients");
      e.recipients.emplace_back(value);
    } else {
      bad_env(file, line_no, "unknown key '" + key + "'");
    }
  }
  for (const char* required : {"format", "id", "created", "sender", "attempts", "next_attempt"})
    if (!seen.count(required)) bad_env(file, line_no, "required key '" + std::string(required) + "' is missing");
  if (e.recipients.empty()) bad_env(file, line_no, "no 'recipient' line");
  for (auto& [index, text] : errors) {
    if (index >= e.recipients.size())
      bad_env(file, line_no, "key 'recipient_error': no recipient " + std::to_string(index + 1));
    e.recipient_errors.resize(e.recipients.size());
    e.recipient_errors[index] = std::move(text);
  }
  return e;
}

// SPEC §8 "Addresses": a queue file never names a domain holding a path character or an
// empty, "." or ".." label (the SMTP session refuses such addresses; this is the last
// line, so no caller can ever write one). Local parts are the remote side's business
// (an SRS0 hash may hold '/').
bool address_domain_ok(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) return true;  // no domain to name
  const std::string_view domain = address.substr(at + 1);
  if (domain.find_first_of("/\\") != std::string_view::npos) return false;
  for (std::size_t start = 0;;) {
    const auto dot = domain.find('.', start);
    if ((dot == std::string_view::npos ? domain.size() : dot) == start) return false;  // empty label
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

void check_envelope(const QueueEnvelope& e) {
  if (e.recipients.empty()) throw Error(Errc::invalid_input, "queue entry without recipients");
  if (e.recipients.size() > max_queue_recipients) throw Error(Errc::invalid_input, "too many recipients for one queue entry");
  for (const std::string* v : {&e.sender, &e.auth, &e.last_error})
    if (!queue_value_ok(*v)) throw Error(Errc::invalid_input, "queue envelope value has forbidden characters");
  for (const auto& r : e.recipients)
    if (r.empty() || !queue_value_ok(r)) throw Error(Errc::invalid_input, "bad queue recipient");
  for (const auto& r : e.recipients)
    if (!address_domain_ok(r)) throw Error(Errc::invalid_input, "queue recipient names a bad domain: " + r.substr(0, 254));
  if (!address_domain_ok(e.sender)) throw Error(Errc::invalid_input, "queue sender names a bad domain: " + e.sender.substr(0, 254));
  if (!e.recipient_errors.empty() && e.recipient_errors.size() != e.recipients.size())
    throw Error(Errc::invalid_input, "queue envelope: recipient_errors does not match recipients");
  for (const auto& t : e.recipient_errors)
    if (!queue_value_ok(t)) throw Error(Errc::invalid_input, "queue envelope value has forbidden characters");
}

} // namespace

bool queue_id_ok(std::string_view id) {
  if (id.empty() || id.size() > max_queue_id_length) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  });
}

bool queue_value_ok(std::string_view value) {
  if (value.size() > max_value_length) return false;
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string new_queue_id() {
  static std::atomic<unsigned long> counter{0};
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  std::uint32_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) r = static_cast<std::uint32_t>(::getpid()) * 2654435761u;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%llX%05lXP%lXQ%lXR%08X", static_cast<unsigned long long>(tv.tv_sec),
                static_cast<unsigned long>(tv.tv_usec), static_cast<unsigned long>(::getpid()),
                counter.fetch_add(1) + 1, r);
  return buf;
}

std::string format_queue_envelope(const QueueEnvelope& e) {
  std::string out = "format: " + std::to_string(queue_format) + "\n";
  out += "id: " + e.id + "\n";
  out += "created: " + std::to_string(e.created) + "\n";
  out += "sender: " + e.sender + "\n";
  if (!e.auth.empty()) out += "auth: " + e.auth + "\n";
  out += "attempts: " + std::to_string(e.attempts) + "\n";
  out += "next_attempt: " + std::to_string(e.next_attempt) + "\n";
  if (!e.last_error.empty()) out += "last_error: " + e.last_error + "\n";
  for (const auto& r : e.recipients) out += "recipient: " + r + "\n";
  for (std::size_t i = 0; i < e.recipient_errors.size(); ++i)
    if (!e.recipient_errors[i].empty())
      out += "recipient_error: " + std::to_string(i + 1) + " " + e.recipient_errors[i] + "\n";
  return out;
}

// --- QueueMessage -------------------------------------------------------------------

QueueMessage QueueMessage::begin(const Layout& layout, std::string id) {
  if (!id.empty() && !queue_id_ok(id)) throw Error(Errc::invalid_input, "not a queue id: " + id.substr(0, 80));
  ensure_tmp_dir(layout);
  QueueMessage m;
  m.layout_ = &layout;
  m.id_ = id.empty() ? new_queue_id() : std::move(id);
  m.file_ = create_locked(layout, m.id_);
  return m;
}

QueueMessage QueueMessage::adopt(const Layout& layout, const fs::path& complete_file, std::string id) {
  if (!id.empty() && !queue_id_ok(id)) throw Error(Errc::invalid_input, "not a queue id: " + id.substr(0, 80));
  ensure_tmp_dir(layout);
  QueueMessage m;
  m.layout_ = &layout;
  m.id_ = id.empty() ? new_queue_id() : std::move(id);
  m.adopted_ = complete_file;
  m.lock_fd_ = ::open(complete_file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (m.lock_fd_ < 0) throw_errno("cannot open", complete_file, errno);
  // Lock before the file gets its queue name, so no runner or sweep can take it first.
  if (!try_lock(m.lock_fd_)) throw_errno("cannot lock", complete_file, errno);
  struct stat st;
  if (::fstat(m.lock_fd_, &st) != 0) throw_errno("cannot inspect", complete_file, errno);
  m.adopted_size_ = static_cast<std::uint64_t>(st.st_size);
  return m;
}

QueueMessage::QueueMessage(QueueMessage&& o) noexcept
    : layout_(o.layout_), id_(std::move(o.id_)), file_(std::move(o.file_)), adopted_(std::move(o.adopted_)),
      adopted_size_(o.adopted_size_), lock_fd_(o.lock_fd_), committed_(o.committed_) {
  o.lock_fd_ = -1;
  o.committed_ = true;  // the moved-from object owns nothing to abort
}

QueueMessage& QueueMessage::operator=(QueueMessage&& o) noexcept {
  if (this != &o) {
    if (!committed_) abort();
    release();
    layout_ = o.layout_;
    id_ = std::move(o.id_);
    file_ = std::move(o.file_);
    adopted_ = std::move(o.adopted_);
    adopted_size_ = o.adopted_size_;
    lock_fd_ = o.lock_fd_;
    committed_ = o.committed_;
    o.lock_fd_ = -1;
    o.committed_ = true;
  }
  return *this;
}

QueueMessage::~QueueMessage() {
  if (!committed_) abort();
  release();
}

void QueueMessage::abort() noexcept {
  file_.discard();
  close_fd(lock_fd_);
}

void QueueMessage::release() noexcept {
  file_.discard();  // committed: the tmp name is gone already; this closes the descriptor
  close_fd(lock_fd_);
}

void QueueMessage::append(std::string_view bytes) {
  if (file_.fd() < 0 || committed_ || !adopted_.empty()) throw Error(Errc::other, "queue message is not open for writing");
  file_.append(bytes);  // a full disk discards the file: nothing stays behind in tmp/
}

int QueueMessage::open_for_reading() {
  if (lock_fd() < 0) throw Error(Errc::other, "queue message was aborted");
  if (adopted_.empty()) return file_.open_for_reading();
  const int fd = ::open(adopted_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open", adopted_, errno);
  return fd;
}

void QueueMessage::commit(QueueEnvelope envelope) {
  if (committed_ || lock_fd() < 0) throw Error(Errc::other, "queue message was already committed or aborted");
  envelope.id = id_;
  try {
    check_envelope(envelope);
  } catch (...) {
    abort();
    throw;
  }
  const fs::path msg = msg_path(*layout_, id_);
  const fs::path env = env_path(*layout_, id_);
  bool linked = false;
  try {
    if (adopted_.empty()) {
      file_.sync();
    } else if (::link(adopted_.c_str(), msg.c_str()) == 0) {
      linked = true;  // the adopted file was fsynced by its writer (PendingMessage::finish)
    } else if (errno == EXDEV) {
      // Another file system: our own copy, locked, then on as if streamed here.
      DirFd dir = layout_->find_dir(tmp_dir(*layout_));
      if (!dir) throw_errno("cannot open directory", tmp_dir(*layout_), ENOENT);
      file_ = TmpFile::copy_of(adopted_, std::move(dir), tmp_dir(*layout_), id_);
      if (!try_lock(file_.fd())) throw_errno("cannot lock", file_.path(), errno);
      close_fd(lock_fd_);
      adopted_.clear();
    } else {
      throw_errno("cannot link message into", msg, errno);
    }
    if (!linked) {
      // link, not rename: an existing entry of the same id is never replaced.
      if (::linkat(file_.dir_fd(), file_.name().c_str(), AT_FDCWD, msg.c_str(), 0) != 0)
        throw_errno("cannot link message into", msg, errno);
      linked = true;
      file_.unlink();
      lock_fd_ = file_.release_fd();  // the lock stays with the entry
    }
    // The commit point: temp + fsync + rename + fsync of queue/, which also makes the
    // .msg link above durable (same directory).
    write_file_atomic(env, format_queue_envelope(envelope), 0640);
  } catch (...) {
    if (linked) ::unlink(msg.c_str());
    abort();
    throw;
  }
  committed_ = true;
}

bool QueueMessage::withdraw() noexcept {
  if (!committed_ || lock_fd() < 0 || !layout_) return false;  // only the lock holder may
  const fs::path env = env_path(*layout_, id_);
  if (::unlink(env.c_str()) != 0 && errno != ENOENT) return false;
  ::unlink(msg_path(*layout_, id_).c_str());
  try {
    fsync_directory(layout_->queue_dir());
  } catch (const Error&) {
    // Not durable: after a crash the .env may come back; then the entry is delivered
    // once more (a duplicate), never lost.
  }
  release();
  return true;
}

// --- listing and reading ---------------------------------------------------------------

std::vector<std::string> list_queue(const Layout& layout) {
  layout.verify_no_symlinks(layout.queue_dir());
  std::vector<std::string> out;
  for (const auto& e : read_entries(layout.queue_dir(), /*with_dot_files=*/false)) {
    std::string id = id_of(e.name, ".env");
    if (id.empty()) continue;
    if (regular_file(env_path(layout, id)) && regular_file(msg_path(layout, id))) out.push_back(std::move(id));
  }
  std::sort(out.begin(), out.end());
  return out;
}

QueueScan scan_queue(const Layout& layout) {
  layout.verify_no_symlinks(layout.queue_dir());
  // Straight from readdir into two sorted lists (no map, no copy of every name): the
  // runner rescans a queue of 100,000 entries every second while it changes.
  struct Seen {
    std::string id;
    unsigned char type;
    std::uint64_t inode;
    bool operator<(const Seen& o) const { return id < o.id; }
  };
  std::vector<Seen> msgs, envs;
  DIR* d = ::opendir(layout.queue_dir().c_str());
  if (!d) {
    if (errno == ENOENT) return {};
    throw_errno("cannot read directory", layout.queue_dir(), errno);
  }
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    const bool msg = name.size() > 4 && name.substr(name.size() - 4) == ".msg";
    const bool env = name.size() > 4 && name.substr(name.size() - 4) == ".env";
    if (!msg && !env) continue;
    const std::string_view id = name.substr(0, name.size() - 4);
    if (!queue_id_ok(id)) continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {  // file systems without d_type: one lstat
      struct stat st;
      if (::lstat((layout.queue_dir() / std::string(name)).c_str(), &st) != 0) continue;
      type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_LNK;
    }
    (msg ? msgs : envs).push_back({std::string(id), type, static_cast<std::uint64_t>(e->d_ino)});
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) throw_errno("cannot read directory", layout.queue_dir(), err);
  std::sort(msgs.begin(), msgs.end());
  std::sort(envs.begin(), envs.end());
  QueueScan out;
  out.entries.reserve(std::min(msgs.size(), envs.size()));
  auto m = msgs.begin();
  auto e = envs.begin();
  while (m != msgs.end() || e != envs.end()) {
    const bool both = m != msgs.end() && e != envs.end() && m->id == e->id;
    const bool take_msg = !both && (e == envs.end() || (m != msgs.end() && m->id < e->id));
    const Seen* ms = both || take_msg ? &*m : nullptr;
    const Seen* es = both || !take_msg ? &*e : nullptr;
    if ((ms && ms->type != DT_REG) || (es && es->type != DT_REG)) out.suspect.push_back(ms ? ms->id : es->id);
    else if (ms && es) out.entries.push_back({std::move(m->id), es->inode});
    // One file alone: being written, or debris for sweep_queue().
    if (ms) ++m;
    if (es) ++e;
  }
  return out;
}

std::vector<fs::path> quarantine_queue_entry(const Layout& layout, std::string_view id) {
  if (!queue_id_ok(id)) throw Error(Errc::invalid_input, "not a queue id: " + std::string(id.substr(0, 80)));
  const fs::path corrupt = layout.queue_dir() / "corrupt";
  layout.verify_no_symlinks(corrupt);
  if (::mkdir(corrupt.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create directory", corrupt, errno);
  // A writer or runner holding the entry decides for itself.
  int fd = ::open(msg_path(layout, id).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0 && !try_lock(fd)) {
    ::close(fd);
    return {};
  }
  std::vector<fs::path> moved;
  // .env first: the entry stops existing for everyone before its message moves.
  for (const fs::path& from : {env_path(layout, id), msg_path(layout, id)}) {
    const fs::path to = corrupt / from.filename();
    if (::rename(from.c_str(), to.c_str()) == 0) moved.push_back(to);
    else if (errno != ENOENT) {
      int err = errno;
      if (fd >= 0) ::close(fd);
      throw_errno("cannot move to queue/corrupt/", from, err);
    }
  }
  if (fd >= 0) ::close(fd);
  fsync_directory(corrupt);
  fsync_directory(layout.queue_dir());
  return moved;
}

std::string enqueue_message(const Layout& layout, QueueEnvelope envelope, std::string_view message) {
  QueueMessage m = QueueMessage::begin(layout);
  m.append(message);
  m.commit(std::move(envelope));
  std::string id = m.id();
  m.release();
  return id;
}

QueueEnvelope load_queue_entry(const Layout& layout, std::string_view id) {
  if (!queue_id_ok(id)) throw Error(Errc::invalid_input, "not a queue id: " + std::string(id.substr(0, 80)));
  const fs::path file = env_path(layout, id);
  layout.verify_no_symlinks(file);
  auto text = read_file_if_exists(file);
  if (!text) throw Error(Errc::other, "no such queue entry: " + std::string(id));
  return parse_envelope(file, id, *text);
}

// --- QueueClaim -----------------------------------------------------------------------

std::optional<QueueClaim> QueueClaim::try_claim(const Layout& layout, std::string_view id) {
  if (!queue_id_ok(id)) throw Error(Errc::invalid_input, "not a queue id: " + std::string(id.substr(0, 80)));
  const fs::path msg = msg_path(layout, id);
  layout.verify_no_symlinks(msg);
  QueueClaim c;
  c.layout_ = &layout;
  c.fd_ = ::open(msg.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (c.fd_ < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot open", msg, errno);
  }
  if (!try_lock(c.fd_)) {
    if (errno == EWOULDBLOCK) return std::nullopt;
    throw_errno("cannot lock", msg, errno);
  }
  // Removed between open and lock (by a runner that finished it): not ours to deliver.
  struct stat held, now;
  if (::fstat(c.fd_, &held) != 0 || held.st_nlink == 0) return std::nullopt;
  if (::lstat(msg.c_str(), &now) != 0 || now.st_ino != held.st_ino || now.st_dev != held.st_dev) return std::nullopt;
  const fs::path env = env_path(layout, id);
  if (!regular_file(env)) return std::nullopt;  // not committed (or half removed)
  c.envelope_ = load_queue_entry(layout, id);
  c.size_ = static_cast<std::uint64_t>(held.st_size);
  c.stat_env();
  return c;
}

QueueClaim::QueueClaim(QueueClaim&& o) noexcept
    : layout_(o.layout_), envelope_(std::move(o.envelope_)), fd_(o.fd_), size_(o.size_), env_inode_(o.env_inode_) {
  o.fd_ = -1;
}

void QueueClaim::stat_env() {
  struct stat st;
  env_inode_ = ::lstat(env_path(*layout_, envelope_.id).c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

QueueClaim& QueueClaim::operator=(QueueClaim&& o) noexcept {
  if (this != &o) {
    close_fd(fd_);
    layout_ = o.layout_;
    envelope_ = std::move(o.envelope_);
    fd_ = o.fd_;
    size_ = o.size_;
    env_inode_ = o.env_inode_;
    o.fd_ = -1;
  }
  return *this;
}

QueueClaim::~QueueClaim() { close_fd(fd_); }

fs::path QueueClaim::message_path() const { return msg_path(*layout_, envelope_.id); }

void QueueClaim::update(QueueEnvelope envelope) {
  if (fd_ < 0) throw Error(Errc::other, "queue entry is no longer claimed");
  envelope.id = envelope_.id;
  check_envelope(envelope);
  write_file_atomic(env_path(*layout_, envelope.id), format_queue_envelope(envelope), 0640);
  envelope_ = std::move(envelope);
  stat_env();
}

void QueueClaim::remove(bool sync) {
  if (fd_ < 0) throw Error(Errc::other, "queue entry is no longer claimed");
  const fs::path env = env_path(*layout_, envelope_.id);
  if (::unlink(env.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", env, errno);
  const fs::path msg = message_path();
  if (::unlink(msg.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove", msg, errno);
  if (sync) fsync_directory(layout_->queue_dir());
  close_fd(fd_);
}

// --- sweeping -------------------------------------------------------------------------

namespace {

// Removes `p` when it is a regular file (old enough, if `now` is given) whose lock nobody
// holds, `still()` agrees once the lock is ours, and the name still holds that file.
template <typename Still>
bool remove_if_unlocked(const fs::path& p, std::optional<std::int64_t> now, Still&& still) {
  struct stat st;
  if (!regular_file(p, &st) || (now && *now - st.st_mtime < queue_garbage_seconds)) return false;
  const int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  bool removed = false;
  struct stat held, named;
  if (try_lock(fd) && still() && ::fstat(fd, &held) == 0 && ::lstat(p.c_str(), &named) == 0 &&
      held.st_ino == named.st_ino && held.st_dev == named.st_dev)
    removed = ::unlink(p.c_str()) == 0;
  ::close(fd);
  return removed;
}

// A .msg without .env that nobody holds locked belongs to no one, whatever its age:
// writers link it only while they hold the entry's lock and write the .env before they
// let go, and removers (runner, mh-queue, quarantine) take the .env first under the lock.
// So it is what a process killed between those two steps left behind.
bool remove_lone_message(const Layout& layout, const std::string& id) {
  const fs::path env = env_path(layout, id);
  return remove_if_unlocked(msg_path(layout, id), std::nullopt, [&] { return nothing_at(env); });
}

} // namespace

std::size_t sweep_lone_messages(const Layout& layout) {
  layout.verify_no_symlinks(layout.queue_dir());
  std::size_t removed = 0;
  for (const auto& e : read_entries(layout.queue_dir(), /*with_dot_files=*/false))
    if (std::string id = id_of(e.name, ".msg"); !id.empty() && remove_lone_message(layout, id)) ++removed;
  if (removed > 0) fsync_directory(layout.queue_dir());
  return removed;
}

QueueSweep sweep_queue(const Layout& layout, std::int64_t now) {
  QueueSweep result;
  layout.verify_no_symlinks(tmp_dir(layout));
  auto old_enough = [now](const struct stat& st) { return now - st.st_mtime >= queue_garbage_seconds; };

  for (const auto& e : read_entries(tmp_dir(layout), /*with_dot_files=*/false))
    if (remove_if_unlocked(tmp_dir(layout) / e.name, now, [] { return true; })) ++result.tmp_removed;

  for (const auto& e : read_entries(layout.queue_dir(), /*with_dot_files=*/true)) {
    if (e.name[0] == '.') {
      // write_file_atomic's temp of an .env: ".<id>.env.tmp.<pid>.<n>.<random>".
      struct stat st;
      const fs::path p = layout.queue_dir() / e.name;
      if (e.name.find(".env.tmp.") != std::string::npos && regular_file(p, &st) && old_enough(st) &&
          ::unlink(p.c_str()) == 0)
        ++result.temps_removed;
      continue;
    }
    if (std::string id = id_of(e.name, ".msg"); !id.empty()) {
      if (remove_lone_message(layout, id)) ++result.orphans_removed;
    } else if (std::string id2 = id_of(e.name, ".env"); !id2.empty()) {
      // Writers put .msg first and removers take .env first, so a lone .env is debris.
      struct stat st;
      const fs::path p = env_path(layout, id2);
      if (nothing_at(msg_path(layout, id2)) && regular_file(p, &st) && old_enough(st) && ::unlink(p.c_str()) == 0)
        ++result.orphans_removed;
    }
  }
  if (result.tmp_removed + result.orphans_removed + result.temps_removed > 0) fsync_directory(layout.queue_dir());
  return result;
}

} // namespace spool
