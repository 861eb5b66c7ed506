// yaml_reader.h — libspool-internal: the strict yaml-cpp reading and saving shared by the
// loaders of spool files (config.cc: mailhost.yaml, domain.yaml, account.yaml;
// filters.cc: filters.yaml). These two files are the only users of yaml-cpp, and no
// YAML type leaves them: public headers stay plain structs.
// Strictness is the point: malformed YAML, a second document, a wrong type, an unknown or
// duplicate key throw Error(bad_config) "FILE:LINE: key 'k': what", and yaml-cpp's own
// exceptions are caught here, at the module edge (STYLE.md guideline 7). Nothing from
// the file is trusted (SPEC §8 "Spool files are bounded and strict"): a file over 1 MiB
// is refused before it is read, invalid UTF-8 anywhere is refused with its line, and so
// is a quoted scalar left open at the end of the file, which yaml-cpp would silently
// close (and the next rewrite would then make permanent).
#pragma once

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/text.h"
#include "spool/units.h"

#include "file_io.h"

#include <yaml-cpp/yaml.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace spool::detail {

// The largest spool file read whole (SPEC §8): YAML, and a list's line files. Ours are
// a few hundred bytes; filters.yaml at its limits (100 rules, 10 profiles) stays far below.
inline constexpr std::size_t max_small_file = 1024 * 1024;

inline FileIdentity identity_of(const struct stat& st) {
  return FileIdentity{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                      st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
}

[[noreturn]] inline void throw_too_large(const std::filesystem::path& file, const std::string& size, std::size_t limit) {
  throw Error(Errc::bad_config,
              file.string() + ": too large (" + size + " bytes, limit " + std::to_string(limit >> 20) + " MiB)");
}

// A small spool file's text, nullopt when it does not exist. The size is checked on the
// open descriptor before reading, and at most limit + 1 bytes are ever read (a file
// growing meanwhile), so a planted 100 MB file costs one fstat, not 700 MB of
// memory. Never through a symlink (Error(permission)), never a FIFO or directory
// (bad_config). `identity` receives the identity of the file read.
// `limit` is a whole number of MiB (a list's members file is allowed 16).
inline std::optional<std::string> read_small_file_if_exists(const std::filesystem::path& file, FileIdentity* identity,
                                                            std::size_t limit = max_small_file);
// The same for `name` in the open directory `dir` (AT_FDCWD: a path); `file` names it.
inline std::optional<std::string> read_small_file_if_exists_at(int dir, const char* name,
                                                               const std::filesystem::path& file,
                                                               FileIdentity* identity,
                                                               std::size_t limit = max_small_file) {
  struct stat st;
  const Fd fd = open_regular_for_reading_at(dir, name, file, st, Errc::bad_config);
  if (fd.get() < 0) return std::nullopt;
  if (static_cast<std::uint64_t>(st.st_size) > limit) throw_too_large(file, std::to_string(st.st_size), limit);
  std::string text = read_at_most(fd.get(), limit, file);
  if (text.size() > limit) throw_too_large(file, "over " + std::to_string(limit), limit);
  if (identity) *identity = identity_of(st);
  return text;
}

inline std::optional<std::string> read_small_file_if_exists(const std::filesystem::path& file, FileIdentity* identity,
                                                            std::size_t limit) {
  return read_small_file_if_exists_at(AT_FDCWD, file.c_str(), file, identity, limit);
}

// Where a quoted scalar starting at `open` (a ' or ") ends: the offset just past its
// closing quote, or npos when the text ends first. YAML 1.2 §7.3: in double quotes a
// backslash escapes the next character; in single quotes '' is a quote.
inline std::size_t quoted_scalar_end(std::string_view text, std::size_t open) {
  const char quote = text[open];
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;
    } else if (text[i] == quote) {
      if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;
        continue;
      }
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Counts the documents of a stream without building them, noting the first that holds
// something (a second document is refused; a trailing "---" with nothing is not).
// YAML::LoadAll is not used: on input such as a lone "," yaml-cpp 0.7 yields empty
// documents forever without consuming a byte (its issue #1040, found by our fuzzer),
// growing until memory runs out; this pass stops after a bounded number instead.
class DocumentCounter : public YAML::EventHandler {
public:
  int documents = 0;
  std::optional<YAML::Mark> extra_content;  // first content of a document after the first

  void OnDocumentStart(const YAML::Mark&) override { ++documents; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { content(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { content(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    content(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    content(m);
  }
  void OnMapEnd() override {}

private:
  void content(const YAML::Mark& m) {
    if (documents > 1 && !extra_content) extra_content = m;
  }
};

// Reading context: every error names the file and the 1-based line of the node.
class Reader {
public:
  explicit Reader(std::filesystem::path file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& what) const {
    std::string where = file_.string();
    if (node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
    throw Error(Errc::bad_config, where + ": key '" + key + "': " + what);
  }

  YAML::Node parse(const std::string& text) const {
    check_utf8(text);
    try {
      // Every document is looked at, not only the first (Load alone silently drops all
      // after a "---" line, and ignoring part of a spool file is what strict loading
      // exists to prevent); then the first is built.
      check_single_document(text);
      YAML::Node root = YAML::Load(text);
      if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
      if (!root.IsMap()) throw Error(Errc::bad_config, file_.string() + ":" + std::to_string(root.Mark().line + 1) + ": expected a mapping of keys at the top level");
      check_last_scalar_closed(text, root);
      return root;
    } catch (const YAML::Exception& e) {
      throw Error(Errc::bad_config, file_.string() + ":" + std::to_string(e.mark.line + 1) +
                                        ": malformed YAML: " + e.msg);
    }
  }

  // Rejects keys not in `allowed`, and keys given twice (yaml-cpp would silently use
  // one of them), reporting the line of the offending key.
  void only_keys(const YAML::Node& map, std::initializer_list<const char*> allowed,
                 const std::string& prefix = "") const {
    std::set<std::string> ok(allowed.begin(), allowed.end());
    std::set<std::string> seen;
    for (const auto& kv : map) {
      std::string key = kv.first.Scalar();
      if (!kv.first.IsScalar() || !ok.count(key)) fail(kv.first, prefix + key, "unknown key");
      if (!seen.insert(key).second) fail(kv.first, prefix + key, "duplicate key");
    }
  }

  void require_keys(const YAML::Node& map, std::initializer_list<const char*> required,
                    const std::string& prefix = "") const {
    for (const char* key : required)
      if (!map[key])
        throw Error(Errc::bad_config, file_.string() + ":" + std::to_string(std::max(map.Mark().line, 0) + 1) +
                                          ": key '" + prefix + key + "': missing (the file is incomplete)");
  }

  std::string str(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, key, "expected a string");
    return n.Scalar();
  }

  bool boolean(const YAML::Node& n, const std::string& key) const {
    const std::string s = str(n, key);
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(n, key, "expected true or false, got '" + s + "'");
  }

  // str() stays outside the try: its error already names file, line and key.
  std::uint64_t size(const YAML::Node& n, const std::string& key) const {
    const std::string text = str(n, key);
    try {
      return parse_size(text);
    } catch (const Error& e) {
      fail(n, key, e.what());
    }
  }

  std::uint32_t count(const YAML::Node& n, const std::string& key) const {
    std::uint64_t v = size(n, key);
    if (v > 0xffffffffULL) fail(n, key, "value too large");
    return static_cast<std::uint32_t>(v);
  }

  // A plain decimal number in min..max (no size units: "7K" days is a typo, not 7168).
  std::uint32_t number(const YAML::Node& n, const std::string& key, std::uint32_t min, std::uint32_t max) const {
    const std::string s = str(n, key);
    const std::string range = std::to_string(min) + ".." + std::to_string(max);
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
      fail(n, key, "expected a number " + range + ", got '" + s + "'");
    const std::uint64_t v = std::stoull(s);
    if (v < min || v > max) fail(n, key, "expected a number " + range + ", got " + s);
    return static_cast<std::uint32_t>(v);
  }

  std::chrono::milliseconds duration(const YAML::Node& n, const std::string& key) const {
    const std::string text = str(n, key);
    try {
      return parse_duration(text);
    } catch (const Error& e) {
      fail(n, key, e.what());
    }
  }

  std::vector<std::string> str_list(const YAML::Node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (const auto& item : n) out.push_back(str(item, key));
    } else if (!n.IsNull()) {
      fail(n, key, "expected a string or a list of strings");
    }
    return out;
  }

  std::string state(const YAML::Node& n, const std::string& key, const char* a, const char* b) const {
    std::string s = str(n, key);
    if (s != a && s != b) fail(n, key, std::string("expected '") + a + "' or '" + b + "', got '" + s + "'");
    return s;
  }

  const std::filesystem::path& file() const { return file_; }

private:
  [[noreturn]] void fail_at_line(std::size_t line, const std::string& what) const {
    throw Error(Errc::bad_config, file_.string() + ":" + std::to_string(line) + ": " + what);
  }

  // One document, or one followed by empty ones ("---" alone); never more than a few:
  // see DocumentCounter for why this is not LoadAll.
  void check_single_document(const std::string& text) const {
    constexpr int max_documents = 8;
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentCounter counter;
    while (counter.documents <= max_documents && !counter.extra_content && parser.HandleNextDocument(counter)) {
    }
    if (counter.extra_content)
      fail_at_line(static_cast<std::size_t>(counter.extra_content->line) + 1,
                   "more than one YAML document ('---'); a spool file holds exactly one");
    if (counter.documents > max_documents)
      fail_at_line(1, "malformed YAML: no document structure (more than " + std::to_string(max_documents) +
                          " empty documents)");
  }

  // Before yaml-cpp sees the text: it passes stray bytes through, and they would reach
  // JSON output (which refuses them) and every rewrite of the file.
  void check_utf8(std::string_view text) const {
    const std::size_t bad = utf8_error_at(text);
    if (bad == std::string_view::npos) return;
    const std::string_view before = text.substr(0, bad);
    const std::size_t newline = before.rfind('\n');
    const std::size_t column = bad - (newline == std::string_view::npos ? 0 : newline + 1) + 1;
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    fail_at_line(static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n')) + 1,
                 "invalid UTF-8 (byte " + std::string(byte) + " in column " + std::to_string(column) +
                     "); spool files are UTF-8 text");
  }

  // yaml-cpp 0.7 ends a quoted scalar at the end of the input without complaint
  // ('name: "Alice' loads as Alice). Only the scalar that starts last can run into the
  // end of the file, so it is enough to find that one — by yaml-cpp's own marks, never by
  // guessing which quotes in comments or plain scalars are syntax — and check that its
  // quotes close. Its mark may sit on a tag or anchor (!!str "x, &a 'x): those are skipped.
  void check_last_scalar_closed(std::string_view text, const YAML::Node& root) const {
    std::optional<YAML::Mark> last;
    find_last_scalar(root, last);
    if (!last || last->pos < 0) return;
    std::size_t at = static_cast<std::size_t>(last->pos);
    if (text.starts_with("\xEF\xBB\xBF") && at + 3 <= text.size() && text[at] != '"' && text[at] != '\'') at += 3;
    while (at < text.size() && (text[at] == '!' || text[at] == '&')) {
      while (at < text.size() && text[at] != ' ' && text[at] != '\t' && text[at] != '\n') ++at;
      while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) ++at;
    }
    if (at >= text.size() || (text[at] != '"' && text[at] != '\'')) return;
    if (quoted_scalar_end(text, at) == std::string_view::npos)
      fail_at_line(static_cast<std::size_t>(last->line) + 1,
                   std::string("malformed YAML: quoted string not closed (no ") + text[at] +
                       " before the end of the file)");
  }

  // Bounded depth: an alias can make the node graph a cycle (&a [*a]), and no spool
  // file nests deeper than a few levels.
  void find_last_scalar(const YAML::Node& node, std::optional<YAML::Mark>& last, int depth = 0) const {
    if (depth > max_depth) fail_at_line(static_cast<std::size_t>(node.Mark().line) + 1, "malformed YAML: nested too deeply");
    if (node.IsScalar()) {
      if (!last || node.Mark().pos > last->pos) last = node.Mark();
    } else if (node.IsMap()) {
      for (const auto& kv : node) {
        find_last_scalar(kv.first, last, depth + 1);
        find_last_scalar(kv.second, last, depth + 1);
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) find_last_scalar(item, last, depth + 1);
    }
  }

  static constexpr int max_depth = 32;

  std::filesystem::path file_;
};

// Parsed spool files by path and FileIdentity. mh-serve reads an account's files at RCPT
// and again at delivery, and yaml-cpp spends ~0.1 ms per small file, more than the rest
// of a delivery's CPU. The file is still opened and read every time, so a replaced (or
// edited) file is parsed again at once. Files that fail to load are not kept: their
// error repeats. `variant` separates results that depend on more than the file (the
// account filters.yaml is validated for).
template <typename Config>
class ParsedCache {
public:
  template <typename Parse>
  Config load(const std::filesystem::path& file, Parse parse, std::string_view variant = {}) {
    return load_at(AT_FDCWD, file.c_str(), file, parse, variant);
  }

  // As load(), for `name` in the open directory `dir` (`file` names it in errors and is
  // the cache key): one lookup below a descriptor the caller walked to, not a path walk.
  template <typename Parse>
  Config load_at(int dir, const char* name, const std::filesystem::path& file, Parse parse,
                 std::string_view variant = {}) {
    const std::string key = key_of(file, variant);
    if (auto hit = unchanged(dir, name, key)) return std::move(*hit);
    FileIdentity identity;
    const std::optional<std::string> text = read_small_file_if_exists_at(dir, name, file, &identity);
    if (!text) throw_errno("cannot open", file, ENOENT);
    return lookup_or_parse(key, identity, *text, parse);
  }

  // As load(), but a missing file is nullopt (and forgets what was cached for it).
  template <typename Parse>
  std::optional<Config> load_if_exists(const std::filesystem::path& file, Parse parse, std::string_view variant = {}) {
    const std::string key = key_of(file, variant);
    bool missing = false;
    if (auto hit = unchanged(AT_FDCWD, file.c_str(), key, &missing)) return hit;
    FileIdentity identity;
    // The lstat() that found nothing is the answer: no second lookup to be told again.
    const std::optional<std::string> text =
        missing ? std::nullopt : read_small_file_if_exists(file, &identity);
    if (!text) {
      std::lock_guard guard(mutex_);
      entries_.erase(key);
      return std::nullopt;
    }
    return lookup_or_parse(key, identity, *text, parse);
  }

private:
  static constexpr std::size_t max_entries = 4096;
  struct Entry {
    FileIdentity identity;
    Config config;
  };

  // The cached config when lstat() shows the very file that was parsed (spool files are
  // replaced by rename, so an equal identity is equal content): one system call instead
  // of open, fstat, read and close at every delivery. Anything else — a new file, a
  // symlink, an error — goes the reading way, which reports it. `missing` (if given) is
  // set when the file does not exist.
  std::optional<Config> unchanged(int dir, const char* name, const std::string& key, bool* missing = nullptr) {
    struct stat st;
    if (::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (missing && errno == ENOENT) *missing = true;
      return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) return std::nullopt;
    const FileIdentity identity = identity_of(st);
    std::lock_guard guard(mutex_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.identity == identity) return it->second.config;
    return std::nullopt;
  }

  static std::string key_of(const std::filesystem::path& file, std::string_view variant) {
    std::string key = file.string();
    if (!variant.empty()) (key += '\0') += variant;
    return key;
  }

  template <typename Parse>
  Config lookup_or_parse(const std::string& key, const FileIdentity& identity, const std::string& text, Parse& parse) {
    {
      std::lock_guard guard(mutex_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second.identity == identity) return it->second.config;
    }
    Config config = parse(text);
    std::lock_guard guard(mutex_);
    if (entries_.size() >= max_entries) entries_.clear(); // bounded memory; refills as used
    entries_.insert_or_assign(key, Entry{identity, config});
    return config;
  }

  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// Writes the emitted document under a one-line comment naming the file and its manager:
// "# domain.yaml — managed by the mailhost tools; see mailhost(5)". An empty emitter
// (nothing to say) gives a file holding only the comment, which loads as an empty map.
inline void save_yaml(const std::filesystem::path& file, const YAML::Emitter& out, const char* what,
                      const char* manager = "the mailhost tools") {
  std::string text = std::string("# ") + what + " — managed by " + manager + "; see mailhost(5)\n";
  if (out.size() > 0) text += std::string(out.c_str()) + "\n";
  write_file_atomic(file, text, 0640);
}

} // namespace spool::detail
