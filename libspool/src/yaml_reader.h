// yaml_reader.h — libspool-internal: the strict yaml-cpp reading and saving shared by the
// loaders of spool files (config.cc: mailhost.yaml, domain.yaml, account.yaml;
// filters.cc: filters.yaml). These two files are the only users of yaml-cpp, and no
// YAML type leaves them: public headers stay plain structs.
// Strictness is the point: malformed YAML, a second document, a wrong type, an unknown or
// duplicate key throw Error(bad_config) "FILE:LINE: key 'k': what", and yaml-cpp's own
// exceptions are caught here, at the module edge (STYLE.md guideline 7).
#pragma once

#include "spool/atomic_file.h"
#include "spool/error.h"
#include "spool/units.h"

#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace spool::detail {

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
    try {
      // LoadAll, not Load: Load silently drops everything after a "---" line, and
      // ignoring part of a spool file is what strict loading exists to prevent.
      std::vector<YAML::Node> docs = YAML::LoadAll(text);
      for (std::size_t i = 1; i < docs.size(); ++i)
        if (!docs[i].IsNull())
          throw Error(Errc::bad_config, file_.string() + ":" + std::to_string(docs[i].Mark().line + 1) +
                                            ": more than one YAML document ('---'); a spool file holds exactly one");
      YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
      if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
      if (!root.IsMap()) throw Error(Errc::bad_config, file_.string() + ":" + std::to_string(root.Mark().line + 1) + ": expected a mapping of keys at the top level");
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
    const std::string key = key_of(file, variant);
    if (auto hit = unchanged(file, key)) return std::move(*hit);
    FileIdentity identity;
    const std::string text = read_file(file, &identity);
    return lookup_or_parse(key, identity, text, parse);
  }

  // As load(), but a missing file is nullopt (and forgets what was cached for it).
  template <typename Parse>
  std::optional<Config> load_if_exists(const std::filesystem::path& file, Parse parse, std::string_view variant = {}) {
    const std::string key = key_of(file, variant);
    if (auto hit = unchanged(file, key)) return hit;
    FileIdentity identity;
    const std::optional<std::string> text = read_file_if_exists(file, &identity);
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
  // symlink, an error — goes the reading way, which reports it.
  std::optional<Config> unchanged(const std::filesystem::path& file, const std::string& key) {
    struct stat st;
    if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    const FileIdentity identity{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                                st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
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
