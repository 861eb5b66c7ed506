// sending_rate.cc — the per-account sliding window of sending_rate.h: a strict parser,
// the per-minute buckets, and the charge under the domain's sending lock.
#include "spool/sending_rate.h"

#include "spool/accounts.h"
#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/lock.h"

#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <string_view>

namespace spool {
namespace {

constexpr std::string_view magic = "mailhost-sending-rate 1";
constexpr std::size_t max_record_size = 8192;  // 123 lines of at most 31 bytes, with room
constexpr std::int64_t window_minutes = 60;    // buckets cur-60 … cur count
constexpr std::int64_t max_ahead_minutes = 60; // buckets later than this are pulled back

struct Record {
  bool suspended = false;                       // this module suspended the account
  std::map<std::int64_t, std::uint64_t> buckets;  // minute since the epoch → recipients
};

// What reading found: a record (empty when there is no file) or a malformed one.
struct Read {
  Record record;
  std::string problem;  // non-empty: malformed
};

std::int64_t minute_of(std::int64_t now) { return now < 0 ? 0 : now / 60; }

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

// Decimal digits only, no sign, no leading zero (one canonical spelling per value).
template <class T>
std::optional<T> parse_number(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string parse_record(std::string_view text, Record& out) {
  if (text.empty()) return "line 1: empty record";
  if (text.back() != '\n') return "the last line is not complete";
  int number = 0;
  std::optional<std::int64_t> previous;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++number;
    const std::string where = "line " + std::to_string(number) + ": ";
    if (number == 1) {
      if (line != magic) return where + "expected '" + std::string(magic) + "'";
      continue;
    }
    if (number == 2) {
      if (line == "suspended yes") out.suspended = true;
      else if (line != "suspended no") return where + "expected 'suspended yes' or 'suspended no'";
      continue;
    }
    const auto space = line.find(' ');
    if (space == std::string_view::npos) return where + "expected 'MINUTE COUNT'";
    const auto minute = parse_number<std::int64_t>(line.substr(0, space));
    const auto count = parse_number<std::uint32_t>(line.substr(space + 1));
    if (!minute || !count || *count == 0) return where + "expected 'MINUTE COUNT'";
    if (previous && *minute <= *previous) return where + "minutes are not in increasing order";
    previous = *minute;
    out.buckets[*minute] = *count;
  }
  if (number < 2) return "line 2: missing 'suspended' line";
  return {};
}

// Reads at most max_record_size + 1 bytes: a bigger file is malformed, never read whole.
Read read_record(const fs::path& file) {
  Read r;
  // O_NONBLOCK: a FIFO planted in the spool must not hang the reader.
  struct stat st;
  const detail::Fd fd = detail::open_regular_for_reading(file, st);
  if (fd.get() < 0) return r;
  const std::string text = detail::read_at_most(fd.get(), max_record_size, file);
  if (text.size() > max_record_size)
    r.problem = "larger than " + std::to_string(max_record_size) + " bytes";
  else
    r.problem = parse_record(text, r.record);
  if (!r.problem.empty()) r.record = Record{};
  return r;
}

// Forgets buckets older than the window; pulls those too far ahead back (keeping their
// count: over-count, never under). Returns the recipients counted.
std::uint64_t slide(Record& r, std::int64_t current) {
  std::uint64_t ahead = 0;
  for (auto it = r.buckets.begin(); it != r.buckets.end();) {
    if (it->first < current - window_minutes) {
      it = r.buckets.erase(it);
    } else if (it->first > current + max_ahead_minutes) {
      ahead = saturating_add(ahead, it->second);
      it = r.buckets.erase(it);
    } else {
      ++it;
    }
  }
  if (ahead > 0) {
    std::uint64_t& last = r.buckets[current + max_ahead_minutes];
    last = saturating_add(last, ahead);
  }
  std::uint64_t total = 0;
  for (const auto& [minute, count] : r.buckets) total = saturating_add(total, count);
  return total;
}

std::string format_record(const Record& r) {
  std::string out = std::string(magic) + "\nsuspended " + (r.suspended ? "yes" : "no") + "\n";
  for (const auto& [minute, count] : r.buckets) out += std::to_string(minute) + " " + std::to_string(count) + "\n";
  return out;
}

// Temp file + rename, without fsync (see the header). Callers hold the sending lock.
void write_record(const Layout& layout, const fs::path& file, const Record& r) {
  layout.verify_no_symlinks(file);
  struct stat st;
  if (::lstat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error::planted("refusing to replace " + file.string() + ": not a regular file");
  const fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".tmp" + unique_suffix());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) throw_errno("cannot create", tmp, errno);
  try {
    write_all(fd, format_record(r), tmp);
    const int closed = ::close(fd);
    if (closed != 0) throw_errno("cannot close", tmp, errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_errno("cannot rename into place", file, err);
  }
}

// Temp files of a writer killed between create and rename (".sending.rate.tmp.*").
// Swept when the suspension state changes — rare, so no directory scan per message.
void sweep_temp_files(const fs::path& file) {
  const std::string prefix = "." + file.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(file.parent_path(), ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) fs::remove(entry.path(), ec);
}

// As `mh-user suspend --sending --reason rate` records it, under the domain lock. An
// administrator's suspension that came first is kept with its own reason.
std::string suspend_sending(const Layout& layout, const Address& account) {
  std::string reason;
  update_account(layout, account, [&](AccountConfig& c) {
    if (!c.sending_suspended) {
      c.sending_suspended = true;
      c.sending_reason = sending_rate_reason;
    }
    reason = c.sending_reason;
  });
  return reason;
}

} // namespace

RateCheck charge_sending(const Layout& layout, const Address& account, std::uint32_t recipients,
                         std::uint32_t per_hour, std::int64_t now) {
  RateCheck result;
  if (per_hour == 0) {
    result.kind = RateCheck::Kind::allowed;
    return result;
  }
  const fs::path file = layout.sending_record(account);
  const std::int64_t current = minute_of(now);
  FileLock lock = FileLock::acquire(layout.sending_lock(account.domain()));
  const AccountConfig config = read_account(layout, account);  // no_account when gone
  layout.verify_no_symlinks(file);
  Read read = read_record(file);

  if (!read.problem.empty()) {
    // Over-count-safe: the window is unknown, so it is full. The replacement is marked
    // suspended, so the administrator's resume clears it like any rate suspension.
    result.detail = "malformed " + file.string() + " (" + read.problem + "): counted as a full window";
    result.reason = config.sending_suspended ? config.sending_reason : suspend_sending(layout, account);
    result.kind = config.sending_suspended ? RateCheck::Kind::suspended : RateCheck::Kind::over;
    result.in_window = per_hour;
    Record fresh;
    fresh.suspended = true;
    write_record(layout, file, fresh);
    sweep_temp_files(file);
    return result;
  }

  Record& record = read.record;
  if (config.sending_suspended) {
    // Suspended by an earlier charge (here or on another host) or by an administrator:
    // the message is refused, nothing is counted, the record stays as it is.
    result.kind = RateCheck::Kind::suspended;
    result.reason = config.sending_reason;
    result.in_window = slide(record, current);
    return result;
  }

  bool changed = false;
  if (record.suspended) {
    // Suspended by this module, active now: resumed since. Start a new window.
    record = Record{};
    changed = true;
    result.detail = "window cleared: sending was resumed";
  }
  const std::uint64_t before = slide(record, current);
  if (recipients > 0 && before + recipients > per_hour) {
    result.kind = RateCheck::Kind::over;
    result.in_window = before;
    result.reason = suspend_sending(layout, account);  // first: a crash after it over-counts
    record.suspended = true;
    write_record(layout, file, record);
    sweep_temp_files(file);
    const std::string why = std::to_string(before) + " + " + std::to_string(recipients) +
                            " recipients in the last hour exceed " + std::to_string(per_hour);
    result.detail = result.detail.empty() ? why : result.detail + "; " + why;
    return result;
  }
  if (recipients > 0) {
    record.buckets[current] += recipients;
    changed = true;
  }
  if (changed) write_record(layout, file, record);
  if (!result.detail.empty()) sweep_temp_files(file);  // the window was cleared
  result.kind = RateCheck::Kind::allowed;
  result.in_window = before + recipients;
  return result;
}

std::uint64_t sending_in_window(const Layout& layout, const Address& account, std::int64_t now) {
  const fs::path file = layout.sending_record(account);
  layout.verify_no_symlinks(file);
  Read read = read_record(file);
  if (!read.problem.empty()) throw Error(Errc::bad_config, file.string() + ": " + read.problem);
  return slide(read.record, minute_of(now));
}

} // namespace spool
