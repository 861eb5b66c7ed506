// mlist.cc — mailing lists on disk (mlist.h, SPEC §7): list.yaml through the strict
// YAML reader, the line files (members, bounces, posters, seq) each read with a size
// limit, parsed strictly and replaced whole, the archive Maildir and pending/ items.
#include "spool/mlist.h"

#include "spool/accounts.h"
#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/lock.h"
#include "spool/maildir.h"
#include "spool/units.h"

#include "dir_entries.h"
#include "file_io.h"
#include "domain_usage.h"
#include "spool_dirs.h"
#include "text_util.h"
#include "yaml_reader.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <tuple>
#include <unordered_set>

namespace spool {
namespace {

using detail::Reader;

constexpr std::size_t small_file_limit = 1 << 20;     // list.yaml, bounces, posters, seq, pending
constexpr std::size_t members_file_limit = 16 << 20;  // ~300,000 addresses
constexpr std::size_t archive_header_limit = 64 * 1024;
constexpr std::size_t max_invalid_kept = 100;
constexpr std::size_t max_subject_tag_length = 64;
constexpr std::uint32_t max_bomb_posts = 1000;
constexpr std::int64_t max_bomb_age = 24 * 3600;
constexpr std::int64_t min_confirm_expiry = 3600;
constexpr std::int64_t max_confirm_expiry = 90 * 24 * 3600;
constexpr std::size_t max_address_length = 254;        // RFC 5321 §4.5.3.1.3 path minus <>
constexpr std::size_t max_address_local_length = 64;   // RFC 5321 §4.5.3.1.1
constexpr int archive_seq_digits = 8;

// The files a list's writers replace under the list lock (their temp leftovers are swept).
constexpr const char* list_state_files[] = {"list.yaml", "members", "bounces", "posters", "seq"};

using detail::is_directory_nofollow;
using detail::make_dir;
using detail::printable;
using detail::require_domain;
using detail::sweep_leftovers;

void require_list(const Layout& layout, const Address& list) {
  require_domain(layout, list.domain());
  layout.verify_no_symlinks(layout.list_config(list));
  if (!is_directory_nofollow(layout.list_dir(list))) throw Error(Errc::no_account, "no such list: " + list.str());
}

// Checks before the lock (a typo must not leave a lock file), locks, checks again.
FileLock lock_list(const Layout& layout, const Address& list) {
  require_list(layout, list);
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.list_lock(list));
  require_list(layout, list);
  return lock;
}

// Temp files of writers killed between create and rename (".members.tmp.<pid>…").
// Callers hold the list lock. Done at admin operations only, never per post.
void sweep_temp_files(const fs::path& list_dir) {
  for (const char* file : list_state_files) detail::sweep_temp_files(list_dir / file);
}

[[noreturn]] void fail_line(const fs::path& file, std::size_t line, const std::string& what) {
  throw Error(Errc::bad_config, file.string() + ":" + std::to_string(line) + ": " + what);
}

// Reads a spool file of at most `limit` bytes (whole MiB): never through a symlink, never
// a FIFO or other non-regular file, never more than limit + 1 bytes. nullopt when missing.
std::optional<std::string> read_limited(const Layout& layout, const fs::path& file,
                                        std::size_t limit = small_file_limit) {
  layout.verify_no_symlinks(file);
  return detail::read_small_file_if_exists(file, nullptr, limit);
}

void write_state(const Layout& layout, const fs::path& file, std::string_view text) {
  layout.verify_no_symlinks(file);
  write_file_atomic(file, text, 0640);
}

// Calls each(line number, line) for every line; a CR before the LF is dropped and a
// last line without LF still counts (a file edited by hand).
template <class Each>
void for_each_line(std::string_view text, Each each) {
  std::size_t number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    each(++number, line);
  }
}

// `s` without spaces and tabs at either end (unlike detail::trimmed, a CR stays: the
// one before LF is gone already, see for_each_line, and any other is part of the line).
std::string_view wsp_trimmed(std::string_view s) {
  while (!s.empty() && detail::is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && detail::is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Calls each(line number, fields) for every line of a small state file (bounces,
// posters) that is not blank; fields are separated by spaces. A missing file has none.
template <class Each>
void for_each_record(const Layout& layout, const fs::path& file, Each each) {
  const auto text = read_limited(layout, file);
  if (!text) return;
  for_each_line(*text, [&](std::size_t number, std::string_view line) {
    const auto fields = fields_of(line);
    if (!fields.empty()) each(number, fields);
  });
}

// Decimal digits only (no sign, at most 18 digits: no overflow of int64).
std::optional<std::int64_t> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// "3600s" → "1h": the shortest exact spelling parse_age() reads back.
std::string format_age(std::chrono::seconds age) {
  static constexpr std::pair<char, std::int64_t> units[] = {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}};
  const std::int64_t s = age.count();
  if (s == 0) return "0s";
  for (const auto& [unit, size] : units)
    if (s % size == 0) return std::to_string(s / size) + unit;
  return std::to_string(s) + "s";
}

// --- list.yaml values: one check per key, shared by list_config_problem and the loader
// (which reports FILE:LINE: key 'k' with the same words) ---

std::optional<std::string> max_size_problem(std::uint64_t size) {
  if (size < list_min_post_size || size > list_max_post_size)
    return "max size " + format_size_exact(size) + " is outside " + format_size_exact(list_min_post_size) + "–" +
           format_size_exact(list_max_post_size);
  return std::nullopt;
}

// The tag goes into a header line: only printable characters, and only the
// placeholders list_message.h fills in.
std::optional<std::string> subject_tag_problem(std::string_view tag) {
  if (tag.size() > max_subject_tag_length)
    return "subject tag is longer than " + std::to_string(max_subject_tag_length) + " characters";
  for (unsigned char c : tag)
    if (c < 0x20 || c == 0x7f) return "subject tag '" + printable(tag) + "' contains a control character";
  for (std::size_t i = 0; i < tag.size(); ++i) {
    if (tag[i] == '{') {
      const std::string_view rest = tag.substr(i);
      if (rest.rfind("{list}", 0) == 0) {
        i += 5;
        continue;
      }
      if (rest.rfind("{seq}", 0) == 0) {
        i += 4;
        continue;
      }
      const auto close = rest.find('}');
      const std::string what = std::string(close == std::string_view::npos ? rest.substr(0, 1) : rest.substr(0, close + 1));
      return "subject tag '" + printable(tag) + "' has an unknown placeholder '" + printable(what) +
             "' (only {list} and {seq})";
    }
    if (tag[i] == '}') return "subject tag '" + printable(tag) + "' has a '}' outside {list} and {seq}";
  }
  return std::nullopt;
}

std::optional<std::string> bomb_problem(std::uint32_t posts, std::chrono::seconds age) {
  if (posts < 1 || posts > max_bomb_posts)
    return "bomb posts " + std::to_string(posts) + " is outside 1–" + std::to_string(max_bomb_posts);
  if (age.count() < 1 || age.count() > max_bomb_age)
    return "bomb age " + format_age(age) + " is outside 1s–" + format_age(std::chrono::seconds(max_bomb_age));
  return std::nullopt;
}

std::optional<std::string> bomb_block_problem(std::chrono::seconds block) {
  if (block.count() < 0 || block.count() > list_max_bomb_block)
    return "bomb block " + format_age(block) + " is outside 0s–" + format_age(std::chrono::seconds(list_max_bomb_block));
  return std::nullopt;
}

std::optional<std::string> confirm_expiry_problem(std::chrono::seconds expiry) {
  if (expiry.count() < min_confirm_expiry || expiry.count() > max_confirm_expiry)
    return "confirm expiry " + format_age(expiry) + " is outside " + format_age(std::chrono::seconds(min_confirm_expiry)) +
           "–" + format_age(std::chrono::seconds(max_confirm_expiry));
  return std::nullopt;
}

std::optional<std::string> admin_problem(const std::string& admin) {
  if (!admin.empty() && !normalize_list_address(admin)) return "admin '" + printable(admin) + "' is not an address";
  return std::nullopt;
}

std::optional<std::string> moderator_problem(const std::string& moderator) {
  if (!normalize_list_address(moderator)) return "moderator '" + printable(moderator) + "' is not an address";
  return std::nullopt;
}

// "N/AGE" as in `mh-list set --bomb 3/5m`; throws Error(invalid_input).
std::pair<std::uint32_t, std::chrono::seconds> parse_bomb(std::string_view text) {
  const auto slash = text.find('/');
  const auto posts = slash == std::string_view::npos || slash > 10 ? std::nullopt : parse_count(text.substr(0, slash));
  if (!posts)
    throw Error(Errc::invalid_input, "invalid bomb rule '" + printable(text) + "': expected POSTS/AGE like 3/5m");
  return {static_cast<std::uint32_t>(std::min<std::int64_t>(*posts, 0xffffffff)), parse_age(text.substr(slash + 1))};
}

std::string format_bomb(std::uint32_t posts, std::chrono::seconds age) {
  return std::to_string(posts) + "/" + format_age(age);
}

// Stored addresses are canonical; moderators once each (case-insensitively).
void canonicalize(ListConfig& c) {
  if (!c.admin.empty()) c.admin = normalize_list_address(c.admin).value_or(c.admin);
  std::vector<std::string> moderators;
  std::unordered_set<std::string> seen;
  for (const std::string& m : c.moderators) {
    std::string n = normalize_list_address(m).value_or(m);
    if (seen.insert(list_key(n)).second) moderators.push_back(std::move(n));
  }
  c.moderators = std::move(moderators);
}

void require_usable(const ListConfig& c) {
  if (auto why = list_config_problem(c)) throw Error(Errc::invalid_input, *why);
}

ListConfig parse_list_config(const fs::path& file, const std::string& text) {
  Reader r(file);
  YAML::Node root = r.parse(text);
  r.only_keys(root, {"policy", "admin", "max_size", "subject_tag", "bomb", "bomb_block", "confirm_expiry",
                     "moderators", "created"});
  const auto check = [&](const YAML::Node& n, const char* key, const std::optional<std::string>& why) {
    if (why) r.fail(n, key, *why);
  };
  const auto age = [&](const YAML::Node& n, const char* key) {
    const std::string s = r.str(n, key);
    try {
      return parse_age(s);
    } catch (const Error& e) {
      r.fail(n, key, e.what());
    }
  };
  ListConfig c;
  if (auto n = root["policy"]) {
    const std::string s = r.str(n, "policy");
    try {
      c.policy = parse_policy(s);
    } catch (const Error& e) {
      r.fail(n, "policy", e.what());
    }
  }
  if (auto n = root["admin"]) {
    c.admin = r.str(n, "admin");
    check(n, "admin", admin_problem(c.admin));
  }
  if (auto n = root["max_size"]) {
    c.max_size = r.size(n, "max_size");
    check(n, "max_size", max_size_problem(c.max_size));
  }
  if (auto n = root["subject_tag"]) {
    c.subject_tag = r.str(n, "subject_tag");
    check(n, "subject_tag", subject_tag_problem(c.subject_tag));
  }
  if (auto n = root["bomb"]) {
    const std::string s = r.str(n, "bomb");
    try {
      std::tie(c.bomb_posts, c.bomb_age) = parse_bomb(s);
    } catch (const Error& e) {
      r.fail(n, "bomb", e.what());
    }
    check(n, "bomb", bomb_problem(c.bomb_posts, c.bomb_age));
  }
  if (auto n = root["bomb_block"]) {
    c.bomb_block = age(n, "bomb_block");
    check(n, "bomb_block", bomb_block_problem(c.bomb_block));
  }
  if (auto n = root["confirm_expiry"]) {
    c.confirm_expiry = age(n, "confirm_expiry");
    check(n, "confirm_expiry", confirm_expiry_problem(c.confirm_expiry));
  }
  if (auto n = root["moderators"]) {
    if (!n.IsSequence() && !n.IsNull()) r.fail(n, "moderators", "expected a list of addresses");
    for (const auto& item : n) {
      const std::string m = r.str(item, "moderators");
      check(item, "moderators", moderator_problem(m));
      c.moderators.push_back(m);
    }
  }
  if (auto n = root["created"]) c.created = r.str(n, "created");
  // A list.yaml without these was not written by us (an empty or truncated file).
  r.require_keys(root, {"policy", "created"});
  canonicalize(c);
  return c;
}

ListConfig load_list_config(const Layout& layout, const fs::path& file) {
  static detail::ParsedCache<ListConfig> cache;
  // The cache's read refuses a planted huge file or a FIFO (yaml_reader.h).
  layout.verify_no_symlinks(file);
  return cache.load(file, [&](const std::string& text) { return parse_list_config(file, text); });
}

void save_list_config(const Layout& layout, const fs::path& file, const ListConfig& c) {
  layout.verify_no_symlinks(file);
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "policy" << YAML::Value << std::string(policy_name(c.policy));
  out << YAML::Key << "admin" << YAML::Value << YAML::DoubleQuoted << c.admin;
  out << YAML::Key << "max_size" << YAML::Value << format_size_exact(c.max_size);
  out << YAML::Key << "subject_tag" << YAML::Value << YAML::DoubleQuoted << c.subject_tag;
  out << YAML::Key << "bomb" << YAML::Value << format_bomb(c.bomb_posts, c.bomb_age);
  out << YAML::Key << "bomb_block" << YAML::Value << format_age(c.bomb_block);
  out << YAML::Key << "confirm_expiry" << YAML::Value << format_age(c.confirm_expiry);
  out << YAML::Key << "moderators" << YAML::Value;
  if (c.moderators.empty()) out << YAML::Flow;  // "moderators: []" on one line
  out << YAML::BeginSeq;
  for (const std::string& m : c.moderators) out << YAML::DoubleQuoted << m;
  out << YAML::EndSeq;
  out << YAML::Key << "created" << YAML::Value << c.created;
  out << YAML::EndMap;
  detail::save_yaml(file, out, "list.yaml", "mh-list");
}

// --- members ---

struct Members {
  std::vector<std::string> addresses;  // file order, canonical
  std::unordered_set<std::string> keys;
};

Members read_members_file(const Layout& layout, const fs::path& file) {
  Members m;
  const auto text = read_limited(layout, file, members_file_limit);
  if (!text) return m;
  for_each_line(*text, [&](std::size_t number, std::string_view raw) {
    const std::string_view line = wsp_trimmed(raw);
    if (line.empty() || line.front() == '#') return;
    auto address = normalize_list_address(line);
    if (!address) fail_line(file, number, "not an address: '" + printable(line) + "'");
    if (m.keys.insert(list_key(*address)).second) m.addresses.push_back(std::move(*address));
  });
  return m;
}

void write_members_file(const Layout& layout, const fs::path& file, const std::vector<std::string>& addresses) {
  std::string text;
  for (const std::string& a : addresses) (text += a) += '\n';
  // Refused here rather than written: a file the readers would refuse stops the list.
  if (text.size() > members_file_limit)
    throw Error(Errc::invalid_input, "too many members: " + file.string() + " would be larger than 16 MiB");
  write_state(layout, file, text);
}

// --- bounces: "ADDR T1 T2 …" (ascending) or "ADDR disabled T" ---

struct BounceRecord {
  std::string address;
  bool disabled = false;
  std::int64_t since = 0;
  std::vector<std::int64_t> times;
};
using Bounces = std::map<std::string, BounceRecord>;  // by list_key: a stable file order

Bounces read_bounces(const Layout& layout, const fs::path& file) {
  Bounces out;
  for_each_record(layout, file, [&](std::size_t number, const std::vector<std::string_view>& fields) {
    BounceRecord rec;
    auto address = normalize_list_address(fields[0]);
    if (!address) fail_line(file, number, "not an address: '" + printable(fields[0]) + "'");
    rec.address = *address;
    if (fields.size() >= 2 && fields[1] == "disabled") {
      const auto since = fields.size() == 3 ? parse_count(fields[2]) : std::nullopt;
      if (!since) fail_line(file, number, "expected 'ADDRESS disabled TIME'");
      rec.disabled = true;
      rec.since = *since;
    } else {
      if (fields.size() < 2) fail_line(file, number, "expected 'ADDRESS TIME…'");
      for (std::size_t i = 1; i < fields.size(); ++i) {
        const auto t = parse_count(fields[i]);
        if (!t) fail_line(file, number, "expected a time (unix seconds), got '" + printable(fields[i]) + "'");
        if (!rec.times.empty() && *t < rec.times.back()) fail_line(file, number, "times are not in ascending order");
        rec.times.push_back(*t);
      }
    }
    if (!out.emplace(list_key(rec.address), std::move(rec)).second)
      fail_line(file, number, "a second line for " + printable(fields[0]));
  });
  return out;
}

void write_bounces(const Layout& layout, const fs::path& file, const Bounces& bounces) {
  std::string text;
  for (const auto& [key, rec] : bounces) {
    if (rec.disabled) {
      text += rec.address + " disabled " + std::to_string(rec.since) + "\n";
      continue;
    }
    if (rec.times.empty()) continue;
    text += rec.address;
    for (std::int64_t t : rec.times) (text += ' ') += std::to_string(t);
    text += '\n';
  }
  write_state(layout, file, text);
}

// Bounces of `rec` that still count at `now`.
std::size_t recent_bounces(const BounceRecord& rec, std::int64_t now) {
  return static_cast<std::size_t>(std::count_if(rec.times.begin(), rec.times.end(),
                                                [&](std::int64_t t) { return t >= now - list_bounce_window; }));
}

// --- posters: "ADDR BLOCKED_UNTIL T1 T2 …" ---

struct PosterRecord {
  std::int64_t blocked_until = 0;
  std::vector<std::int64_t> times;
};
using Posters = std::map<std::string, PosterRecord>;

Posters read_posters(const Layout& layout, const fs::path& file) {
  Posters out;
  for_each_record(layout, file, [&](std::size_t number, const std::vector<std::string_view>& fields) {
    const auto blocked = fields.size() >= 2 ? parse_count(fields[1]) : std::nullopt;
    if (!blocked) fail_line(file, number, "expected 'ADDRESS BLOCKED-UNTIL TIME…'");
    PosterRecord rec;
    rec.blocked_until = *blocked;
    for (std::size_t i = 2; i < fields.size(); ++i) {
      const auto t = parse_count(fields[i]);
      if (!t) fail_line(file, number, "expected a time (unix seconds), got '" + printable(fields[i]) + "'");
      rec.times.push_back(*t);
    }
    std::sort(rec.times.begin(), rec.times.end());
    if (!out.emplace(std::string(fields[0]), std::move(rec)).second)
      fail_line(file, number, "a second line for " + printable(fields[0]));
  });
  return out;
}

std::string poster_line(const std::string& key, const PosterRecord& rec) {
  std::string line = key + " " + std::to_string(rec.blocked_until);
  for (std::int64_t t : rec.times) (line += ' ') += std::to_string(t);
  return line + "\n";
}

std::string format_posters(const Posters& posters) {
  std::string text;
  for (const auto& [key, rec] : posters) text += poster_line(key, rec);
  return text;
}

// The posters file key: the canonical address lower-cased; an envelope sender that is
// no such address (a quoted local part) keeps its bytes, with space and controls as
// \xNN so the line format holds.
std::string poster_key(std::string_view poster) {
  const auto canonical = normalize_list_address(poster);
  const std::string key = list_key(canonical ? std::string_view(*canonical) : poster);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : key.substr(0, 2 * max_address_length)) {
    if (c <= 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out.empty() ? std::string("<>") : out;
}

std::int64_t newest(const PosterRecord& rec) { return rec.times.empty() ? 0 : rec.times.back(); }

// --- seq ---

std::uint64_t read_sequence(const Layout& layout, const fs::path& file) {
  const auto text = read_limited(layout, file);
  if (!text) return 0;
  std::string_view line = *text;
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  const auto n = parse_count(line);
  if (!n) fail_line(file, 1, "expected the last sequence number, got '" + printable(line) + "'");
  return static_cast<std::uint64_t>(*n);
}

// --- archive ---

// "00000042" (new/) or "00000042:2,S" (cur/): the sequence number, nullopt for anything else.
std::optional<std::uint64_t> archive_seq_of(std::string_view name, bool in_new) {
  std::size_t digits = 0;
  while (digits < name.size() && name[digits] >= '0' && name[digits] <= '9') ++digits;
  if (digits < archive_seq_digits || digits > 18) return std::nullopt;
  if (digits != name.size() && (in_new || name[digits] != ':')) return std::nullopt;
  return static_cast<std::uint64_t>(*parse_count(name.substr(0, digits)));
}

std::string archive_name(std::uint64_t seq) {
  std::string digits = std::to_string(seq);
  if (digits.size() < archive_seq_digits) digits.insert(0, archive_seq_digits - digits.size(), '0');
  return digits;
}

// Subject and From of a header block (RFC 5322 §2.2.3: continuation lines start with
// white space; unfolded here with one space between the pieces).
void read_header_fields(std::string_view header, ArchivedPost& post) {
  std::string* current = nullptr;
  bool have_subject = false, have_from = false;
  for_each_line(header, [&](std::size_t, std::string_view line) {
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      if (current) {
        const std::string_view more = wsp_trimmed(line);
        if (!more.empty()) (current->empty() ? *current : (*current += ' ')) += more;
      }
      return;
    }
    current = nullptr;
    if (!have_subject && detail::starts_with_field(line, "Subject")) {
      post.subject = std::string(wsp_trimmed(line.substr(8)));
      current = &post.subject;
      have_subject = true;
    } else if (!have_from && detail::starts_with_field(line, "From")) {
      post.from = std::string(wsp_trimmed(line.substr(5)));
      current = &post.from;
      have_from = true;
    }
  });
}

// An fd of -1 for a file that is gone (moved new/ → cur/, purged) or is no post (a
// symlink or directory planted in the archive).
detail::Fd open_post(const fs::path& file, struct stat& st) { return detail::open_regular_or_skip(file, st); }

std::optional<ArchivedPost> read_archived(const fs::path& file, std::uint64_t seq) {
  struct stat st;
  const detail::Fd fd = open_post(file, st);
  if (fd.get() < 0) return std::nullopt;
  ArchivedPost post;
  post.seq = seq;
  post.size = static_cast<std::uint64_t>(st.st_size);
  post.date = st.st_mtim.tv_sec;
  std::string text = detail::read_at_most(fd.get(), archive_header_limit, file);
  if (text.size() > archive_header_limit) text.resize(archive_header_limit);
  const auto end_lf = text.find("\n\n");
  const auto end_crlf = text.find("\r\n\r\n");
  text.resize(std::min({text.size(), end_lf, end_crlf}));
  read_header_fields(text, post);
  return post;
}

// --- pending ---

fs::path pending_file(const Layout& layout, const Address& list, std::string_view id, const char* ext) {
  return layout.list_pending(list) / (std::string(id) + ext);
}

PendingItem parse_pending(const fs::path& file, const std::string& text, std::string_view id) {
  Reader r(file);
  YAML::Node root = r.parse(text);
  r.only_keys(root, {"kind", "poster", "subject", "size", "created", "expires"});
  const auto number = [&](const YAML::Node& n, const char* key) {
    const std::string s = r.str(n, key);
    const auto v = parse_count(s);
    if (!v) r.fail(n, key, "expected a number, got '" + printable(s) + "'");
    return *v;
  };
  PendingItem item;
  item.id = std::string(id);
  if (auto n = root["kind"])
    item.kind = r.state(n, "kind", "post", "unsubscribe") == "post" ? PendingItem::Kind::post
                                                                     : PendingItem::Kind::unsubscribe;
  if (auto n = root["poster"]) item.poster = r.str(n, "poster");
  if (auto n = root["subject"]) item.subject = r.str(n, "subject");
  if (auto n = root["size"]) item.size = static_cast<std::uint64_t>(number(n, "size"));
  if (auto n = root["created"]) item.created = number(n, "created");
  if (auto n = root["expires"]) item.expires = number(n, "expires");
  r.require_keys(root, {"kind", "poster", "created", "expires"});
  return item;
}

// Calls each(canonical address) for every input that is an address; the others are
// counted in result.invalid, and the first max_invalid_kept kept to be shown.
template <class Each>
void for_each_address(const std::vector<std::string>& inputs, MemberChange& result, Each each) {
  for (const std::string& input : inputs) {
    auto address = normalize_list_address(input);
    if (!address) {
      ++result.invalid;
      if (result.invalid_inputs.size() < max_invalid_kept) result.invalid_inputs.push_back(input);
      continue;
    }
    each(std::move(*address));
  }
}

template <class Change>
MemberChange change_moderators(const Layout& layout, const Address& list, const std::vector<std::string>& addresses,
                               Change change) {
  MemberChange result;
  update_list(layout, list, [&](ListConfig& c) {
    std::unordered_set<std::string> keys;
    for (const std::string& m : c.moderators) keys.insert(list_key(m));
    for_each_address(addresses, result, [&](const std::string& address) { change(c, keys, address, result); });
  });
  return result;
}

} // namespace

// --- policy and settings ---

std::string_view policy_name(ListPolicy p) {
  switch (p) {
  case ListPolicy::members: return "members";
  case ListPolicy::anyone: return "anyone";
  case ListPolicy::moderators: return "moderators";
  }
  return "members";
}

ListPolicy parse_policy(std::string_view text) {
  for (ListPolicy p : {ListPolicy::members, ListPolicy::anyone, ListPolicy::moderators})
    if (text == policy_name(p)) return p;
  throw Error(Errc::invalid_input,
              "invalid policy '" + printable(text) + "': expected 'members', 'anyone' or 'moderators'");
}

std::optional<std::string> list_config_problem(const ListConfig& c) {
  if (auto why = max_size_problem(c.max_size)) return why;
  if (auto why = subject_tag_problem(c.subject_tag)) return why;
  if (auto why = bomb_problem(c.bomb_posts, c.bomb_age)) return why;
  if (auto why = bomb_block_problem(c.bomb_block)) return why;
  if (auto why = confirm_expiry_problem(c.confirm_expiry)) return why;
  if (auto why = admin_problem(c.admin)) return why;
  for (const std::string& m : c.moderators)
    if (auto why = moderator_problem(m)) return why;
  return std::nullopt;
}

std::optional<std::string> normalize_list_address(std::string_view input) {
  const auto at = input.rfind('@');
  if (at == std::string_view::npos || input.size() > 4 * max_address_length) return std::nullopt;
  const std::string_view local = input.substr(0, at);
  if (local.empty() || local.size() > max_address_local_length) return std::nullopt;
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) return std::nullopt;
  static constexpr std::string_view specials = "\"@<>(),;:\\[]";
  for (char ch : local) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || specials.find(ch) != std::string_view::npos) return std::nullopt;
  }
  std::string domain;
  try {
    domain = Domain::parse(input.substr(at + 1)).str();
  } catch (const Error& e) {
    if (e.code() != Errc::invalid_input) throw;  // ICU missing is trouble, not a bad address
    return std::nullopt;
  }
  std::string out = std::string(local) + "@" + domain;
  if (out.size() > max_address_length) return std::nullopt;
  return out;
}

std::string list_key(std::string_view address) { return detail::ascii_lowered(address); }

// --- provisioning ---

bool list_exists(const Layout& layout, const Address& list) { return is_directory_nofollow(layout.list_dir(list)); }

bool create_list(const Layout& layout, const Address& list, const ListConfig& initial, bool exist_ok) {
  require_usable(initial);
  require_domain(layout, list.domain());  // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock lock = FileLock::acquire(layout.domain_lock(list.domain()));
  require_domain(layout, list.domain());
  layout.verify_no_symlinks(layout.list_dir(list));
  if (list_exists(layout, list)) {
    if (exist_ok) return false;
    throw Error(Errc::exists, "list " + list.str() + " already exists");
  }
  layout.verify_no_symlinks(layout.account_dir(list));
  if (is_directory_nofollow(layout.account_dir(list)))
    throw Error(Errc::exists, "the name " + list.local().str() + " is used by the account " + list.str());
  ensure_name_free(layout, list.domain(), list.local());

  const fs::path lists = layout.lists_dir(list.domain());
  if (::mkdir(lists.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create directory", lists, errno);
  sweep_leftovers(lists);
  const fs::path built = lists / (".new-" + list.local().str() + unique_suffix());
  make_dir(built);
  try {
    ListConfig c = initial;
    canonicalize(c);
    if (c.created.empty()) c.created = now_utc();
    save_list_config(layout, built / "list.yaml", c);
    write_file_atomic(built / "members", "", 0640);
    create_maildir(built / "archive");
    fsync_directory(built);
    if (::rename(built.c_str(), layout.list_dir(list).c_str()) != 0) throw_errno("cannot create", layout.list_dir(list), errno);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(built, ec);
    throw;
  }
  fsync_directory(lists);
  return true;
}

void delete_list(const Layout& layout, const Address& list, bool force) {
  require_list(layout, list);  // before the lock: a typo must not leave a lock file
  layout.ensure_skeleton();
  FileLock domain_lock = FileLock::acquire(layout.domain_lock(list.domain()));
  FileLock list_lock = FileLock::acquire(layout.list_lock(list));
  require_list(layout, list);
  if (!force) {
    const std::size_t members = read_members_file(layout, layout.list_members(list)).addresses.size();
    if (members > 0)
      throw Error(Errc::other, "list " + list.str() + " still has " + std::to_string(members) + " member" +
                                   (members == 1 ? "" : "s") + "; use --force to delete it with its members and archive");
    layout.verify_no_symlinks(layout.list_archive(list));
    if (maildir_holds_mail(layout.list_archive(list)))
      throw Error(Errc::other,
                  "list " + list.str() + " still holds archived posts; use --force to delete it with its archive");
  }
  detail::remove_tree_atomically(layout.list_dir(list));
  detail::drop_domain_usage(layout, list.domain());  // its archive left the domain unrecorded
}

ListConfig read_list(const Layout& layout, const Address& list) {
  require_list(layout, list);
  return load_list_config(layout, layout.list_config(list));
}

void update_list(const Layout& layout, const Address& list, const std::function<void(ListConfig&)>& change) {
  FileLock lock = lock_list(layout, list);
  const ListConfig old = load_list_config(layout, layout.list_config(list));
  ListConfig c = old;
  change(c);
  if (c.created.empty()) c.created = old.created;  // the loader requires it: never save it empty
  require_usable(c);
  canonicalize(c);
  sweep_temp_files(layout.list_dir(list));
  save_list_config(layout, layout.list_config(list), c);
}

// --- members and moderators ---

std::vector<std::string> read_members(const Layout& layout, const Address& list) {
  require_list(layout, list);
  return read_members_file(layout, layout.list_members(list)).addresses;
}

std::vector<Member> list_members(const Layout& layout, const Address& list, std::int64_t now) {
  const std::vector<std::string> addresses = read_members(layout, list);
  const Bounces bounces = read_bounces(layout, layout.list_bounces(list));
  std::vector<Member> out;
  out.reserve(addresses.size());
  for (const std::string& a : addresses) {
    Member m;
    m.address = a;
    if (auto it = bounces.find(list_key(a)); it != bounces.end()) {
      m.disabled = it->second.disabled;
      m.disabled_since = it->second.since;
      m.bounces = static_cast<std::uint32_t>(recent_bounces(it->second, now));
    }
    out.push_back(std::move(m));
  }
  return out;
}

MemberChange add_members(const Layout& layout, const Address& list, const std::vector<std::string>& addresses) {
  FileLock lock = lock_list(layout, list);
  Members members = read_members_file(layout, layout.list_members(list));
  Bounces bounces = read_bounces(layout, layout.list_bounces(list));
  MemberChange result;
  bool bounces_changed = false;
  for_each_address(addresses, result, [&](std::string address) {
    std::string key = list_key(address);
    if (members.keys.count(key)) {
      // Subscribing again is how an administrator re-enables a bounced member.
      auto it = bounces.find(key);
      if (it != bounces.end() && it->second.disabled) {
        bounces.erase(it);
        bounces_changed = true;
        ++result.enabled;
      } else {
        ++result.already;
      }
      return;
    }
    members.keys.insert(std::move(key));
    members.addresses.push_back(std::move(address));
    ++result.added;
  });
  sweep_temp_files(layout.list_dir(list));
  if (result.added > 0) write_members_file(layout, layout.list_members(list), members.addresses);
  if (bounces_changed) write_bounces(layout, layout.list_bounces(list), bounces);
  return result;
}

MemberChange remove_members(const Layout& layout, const Address& list, const std::vector<std::string>& addresses) {
  FileLock lock = lock_list(layout, list);
  Members members = read_members_file(layout, layout.list_members(list));
  Bounces bounces = read_bounces(layout, layout.list_bounces(list));
  MemberChange result;
  std::unordered_set<std::string> removed;
  bool bounces_changed = false;
  for_each_address(addresses, result, [&](const std::string& address) {
    std::string key = list_key(address);
    if (!members.keys.count(key) || removed.count(key)) {
      ++result.absent;
      return;
    }
    bounces_changed = bounces.erase(key) > 0 || bounces_changed;
    removed.insert(std::move(key));
    ++result.added;  // the removed count (MemberChange)
  });
  sweep_temp_files(layout.list_dir(list));
  if (!removed.empty()) {
    std::vector<std::string> kept;
    kept.reserve(members.addresses.size() - removed.size());
    for (std::string& a : members.addresses)
      if (!removed.count(list_key(a))) kept.push_back(std::move(a));
    write_members_file(layout, layout.list_members(list), kept);
  }
  if (bounces_changed) write_bounces(layout, layout.list_bounces(list), bounces);
  return result;
}

MemberChange add_moderators(const Layout& layout, const Address& list, const std::vector<std::string>& addresses) {
  return change_moderators(layout, list, addresses,
                           [](ListConfig& c, std::unordered_set<std::string>& keys, const std::string& address,
                              MemberChange& result) {
                             if (keys.insert(list_key(address)).second) {
                               c.moderators.push_back(address);
                               ++result.added;
                             } else {
                               ++result.already;
                             }
                           });
}

MemberChange remove_moderators(const Layout& layout, const Address& list, const std::vector<std::string>& addresses) {
  return change_moderators(layout, list, addresses,
                           [](ListConfig& c, std::unordered_set<std::string>& keys, const std::string& address,
                              MemberChange& result) {
                             const std::string key = list_key(address);
                             if (!keys.erase(key)) {
                               ++result.absent;
                               return;
                             }
                             std::erase_if(c.moderators, [&](const std::string& m) { return list_key(m) == key; });
                             ++result.added;  // the removed count (MemberChange)
                           });
}

bool is_member(const Layout& layout, const Address& list, std::string_view address) {
  const auto canonical = normalize_list_address(address);
  const std::string key = list_key(canonical ? std::string_view(*canonical) : address);
  require_list(layout, list);
  return read_members_file(layout, layout.list_members(list)).keys.count(key) > 0;
}

bool record_member_bounce(const Layout& layout, const Address& list, std::string_view address, std::int64_t now) {
  const auto canonical = normalize_list_address(address);
  if (!canonical) return false;
  FileLock lock = lock_list(layout, list);
  const std::string key = list_key(*canonical);
  if (!read_members_file(layout, layout.list_members(list)).keys.count(key)) return false;
  Bounces bounces = read_bounces(layout, layout.list_bounces(list));
  BounceRecord& rec = bounces[key];
  if (rec.disabled) return false;
  if (rec.address.empty()) rec.address = *canonical;
  std::erase_if(rec.times, [&](std::int64_t t) { return t < now - list_bounce_window; });
  rec.times.insert(std::upper_bound(rec.times.begin(), rec.times.end(), now), now);
  const bool disable = rec.times.size() >= list_bounce_limit;
  if (disable) {
    rec.disabled = true;
    rec.since = now;
    rec.times.clear();
  }
  write_bounces(layout, layout.list_bounces(list), bounces);
  return disable;
}

// --- sequence numbers, mail-bomb window ---

std::uint64_t last_sequence(const Layout& layout, const Address& list) {
  require_list(layout, list);
  return read_sequence(layout, layout.list_sequence(list));
}

std::uint64_t next_sequence(const Layout& layout, const Address& list) {
  require_list(layout, list);
  const fs::path file = layout.list_sequence(list);
  const std::uint64_t next = read_sequence(layout, file) + 1;
  write_state(layout, file, std::to_string(next) + "\n");
  return next;
}

BombCheck count_post(const Layout& layout, const Address& list, const ListConfig& config, std::string_view poster,
                     std::int64_t now) {
  require_list(layout, list);
  const fs::path file = layout.list_posters(list);
  Posters posters = read_posters(layout, file);
  const std::string key = poster_key(poster);
  BombCheck check;
  if (auto it = posters.find(key); it != posters.end() && it->second.blocked_until > now) {
    // Still blocked: refused, and the block is not extended (SPEC §7: up to 3600 s).
    check.refused = true;
    check.blocked_until = it->second.blocked_until;
    return check;
  }
  const std::int64_t window_start = now - config.bomb_age.count();
  PosterRecord& rec = posters[key];
  rec.blocked_until = 0;
  std::erase_if(rec.times, [&](std::int64_t t) { return t <= window_start; });
  rec.times.push_back(now);
  std::sort(rec.times.begin(), rec.times.end());
  if (rec.times.size() >= config.bomb_posts) {
    check.refused = true;
    check.blocked_until = now + config.bomb_block.count();
    rec.blocked_until = check.blocked_until;
    rec.times.clear();
  }
  // Only posters inside their window or block are remembered, so the file stays small.
  std::erase_if(posters, [&](const auto& entry) {
    return entry.second.blocked_until <= now && newest(entry.second) <= window_start;
  });
  std::string text = format_posters(posters);
  if (text.size() > small_file_limit) {
    // Thousands of posters inside one window: forget the quietest ones (never a block)
    // rather than write a file every later read would refuse.
    std::vector<std::pair<std::int64_t, std::string>> quiet;
    for (const auto& [k, r] : posters)
      if (r.blocked_until <= now && k != key) quiet.emplace_back(newest(r), k);
    std::sort(quiet.begin(), quiet.end());
    std::size_t size = text.size();
    for (const auto& [when, k] : quiet) {
      if (size <= small_file_limit / 2) break;
      size -= poster_line(k, posters[k]).size();
      posters.erase(k);
    }
    text = format_posters(posters);
  }
  write_state(layout, file, text);
  return check;
}

// --- archive ---

std::vector<ArchivedPost> list_archive_posts(const Layout& layout, const Address& list) {
  require_list(layout, list);
  const fs::path archive = layout.list_archive(list);
  std::map<std::uint64_t, ArchivedPost> posts;
  for (const char* sub : {"new", "cur"}) {
    const fs::path dir = archive / sub;
    layout.verify_no_symlinks(dir);
    for (const detail::DirEntry& e : detail::read_entries(dir)) {
      if (e.type != DT_REG && e.type != DT_UNKNOWN) continue;
      const auto seq = archive_seq_of(e.name, sub[0] == 'n');
      if (!seq || posts.count(*seq)) continue;  // the same post seen in new/ and cur/ while it moved
      if (auto post = read_archived(dir / e.name, *seq)) posts.emplace(*seq, std::move(*post));
    }
  }
  std::vector<ArchivedPost> out;
  out.reserve(posts.size());
  for (auto& [seq, post] : posts) out.push_back(std::move(post));
  return out;
}

std::optional<fs::path> archived_post_path(const Layout& layout, const Address& list, std::uint64_t seq) {
  require_list(layout, list);
  const fs::path archive = layout.list_archive(list);
  layout.verify_no_symlinks(archive / "cur");
  layout.verify_no_symlinks(archive / "new");
  struct stat st;
  const fs::path in_new = archive / "new" / archive_name(seq);
  if (::lstat(in_new.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return in_new;
  for (const detail::DirEntry& e : detail::read_entries(archive / "cur")) {
    if (archive_seq_of(e.name, false) != seq) continue;
    const fs::path p = archive / "cur" / e.name;
    if (::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
  }
  return std::nullopt;
}

// --- pending confirmations ---

bool pending_id_ok(std::string_view id) {
  return id.size() == 20 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::vector<PendingItem> list_pending(const Layout& layout, const Address& list) {
  require_list(layout, list);
  const fs::path dir = layout.list_pending(list);
  layout.verify_no_symlinks(dir);
  std::vector<PendingItem> out;
  for (const detail::DirEntry& e : detail::read_entries(dir)) {
    const std::string_view name = e.name;
    if (name.size() != 25 || name.substr(20) != ".yaml" || !pending_id_ok(name.substr(0, 20))) continue;
    if (auto item = read_pending(layout, list, name.substr(0, 20))) out.push_back(std::move(*item));
  }
  std::sort(out.begin(), out.end(), [](const PendingItem& a, const PendingItem& b) {
    return std::tie(a.created, a.id) < std::tie(b.created, b.id);
  });
  return out;
}

std::optional<PendingItem> read_pending(const Layout& layout, const Address& list, std::string_view id) {
  if (!pending_id_ok(id)) return std::nullopt;
  require_list(layout, list);
  const fs::path file = pending_file(layout, list, id, ".yaml");
  const auto text = read_limited(layout, file);
  if (!text) return std::nullopt;
  return parse_pending(file, *text, id);
}

void write_pending(const Layout& layout, const Address& list, const PendingItem& item) {
  if (!pending_id_ok(item.id))
    throw Error(Errc::invalid_input, "invalid pending id '" + printable(item.id) + "': expected 20 hex digits");
  require_list(layout, list);
  const fs::path dir = layout.list_pending(list);
  layout.verify_no_symlinks(dir);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create directory", dir, errno);
  const fs::path file = pending_file(layout, list, item.id, ".yaml");
  layout.verify_no_symlinks(file);
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "kind" << YAML::Value << (item.kind == PendingItem::Kind::post ? "post" : "unsubscribe");
  out << YAML::Key << "poster" << YAML::Value << YAML::DoubleQuoted << item.poster;
  out << YAML::Key << "subject" << YAML::Value << YAML::DoubleQuoted << item.subject;
  out << YAML::Key << "size" << YAML::Value << std::to_string(item.size);
  out << YAML::Key << "created" << YAML::Value << std::to_string(item.created);
  out << YAML::Key << "expires" << YAML::Value << std::to_string(item.expires);
  out << YAML::EndMap;
  detail::save_yaml(file, out, "pending confirmation", "mh-list");
}

bool remove_pending(const Layout& layout, const Address& list, std::string_view id) {
  if (!pending_id_ok(id)) return false;
  require_list(layout, list);
  const fs::path dir = layout.list_pending(list);
  layout.verify_no_symlinks(dir);
  // Missing is fine: false for the .yaml, and a .msg whose .yaml is gone is an orphan.
  const auto unlink_if_exists = [](const fs::path& p) {
    if (::unlink(p.c_str()) == 0) return true;
    if (errno != ENOENT && errno != ENOTDIR) throw_errno("cannot remove", p, errno);
    return false;
  };
  const bool existed = unlink_if_exists(pending_file(layout, list, id, ".yaml"));
  unlink_if_exists(pending_file(layout, list, id, ".msg"));
  if (is_directory_nofollow(dir)) fsync_directory(dir);
  return existed;
}

// --- summary ---

ListSummary summarize_list(const Layout& layout, const Address& list, std::int64_t now) {
  ListSummary s;
  s.config = read_list(layout, list);
  for (const Member& m : list_members(layout, list, now)) {
    ++s.members;
    if (m.disabled) ++s.disabled_members;
  }
  s.pending = list_pending(layout, list).size();
  s.last_sequence = last_sequence(layout, list);
  s.archive = list_archive_usage(layout, list);
  return s;
}

} // namespace spool
