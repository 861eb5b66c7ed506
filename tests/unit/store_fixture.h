// store_fixture.h — a private spool for the mail-store tests (maildir, delivery, quota):
// domains, accounts and list archives made through the real provisioning code, plus
// helpers to build messages of an exact size and to count files in a Maildir.
#pragma once

#include "spool/accounts.h"
#include "spool/delivery.h"
#include "spool/layout.h"
#include "spool/maildir.h"

#include "spool/quota.h"
#include "test_support.h"

#include <optional>
#include <string>
#include <vector>

namespace Catch {
template <>
struct StringMaker<spool::Usage> {
  static std::string convert(const spool::Usage& u) {
    return "{" + std::to_string(u.bytes) + " bytes, " + std::to_string(u.messages) + " messages}";
  }
};
} // namespace Catch

namespace mhtest {

// A message of exactly `size` bytes (at least the header) whose body names `tag`.
inline std::string message_of_size(std::size_t size, const std::string& tag = "x") {
  std::string m = "From: a@example.org\nSubject: " + tag + "\n\n";
  while (m.size() < size) m += (m.size() % 64 == 63) ? '\n' : 'b';
  m.resize(size);
  return m;
}

// Regular files (not dot files) directly in `dir`.
inline std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string()[0] != '.') out.push_back(e.path().filename().string());
  return out;
}

// A private directory under `base` (e.g. /dev/shm), removed with its content at the end.
class TempDirUnder {
public:
  explicit TempDirUnder(const fs::path& base) {
    std::string pattern = (base / "mh-unit-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed under " + base.string());
    path_ = pattern;
  }
  ~TempDirUnder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDirUnder(const TempDirUnder&) = delete;
  TempDirUnder& operator=(const TempDirUnder&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

// Sets an environment variable for the test's duration (e.g. MH_LOCK_TIMEOUT).
class ScopedEnv {
public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
  const char* name_;
  std::optional<std::string> old_;
};

class StoreSpool {
public:
  // The spool lives in a private temp dir, or at `root` (e.g. on a test mount).
  explicit StoreSpool(const fs::path& root = {}) : layout_(root.empty() ? tmp_.path() / "spool" : root) {
    fs::create_directories(layout_.root());
    layout_.ensure_skeleton();
  }

  const spool::Layout& layout() const { return layout_; }

  spool::Domain domain(const std::string& name, std::uint64_t quota = 0) {
    spool::DomainConfig c;
    c.quota = quota;
    spool::Domain d = spool::Domain::parse(name);
    spool::add_domain(layout_, d, c, /*exist_ok=*/true);
    return d;
  }

  spool::Address account(const std::string& address, std::uint64_t quota = 0) {
    spool::Address a = spool::Address::parse(address);
    domain(a.domain().str());
    spool::AccountConfig c;
    c.quota = quota;
    spool::add_account(layout_, a, c, /*exist_ok=*/false);
    return a;
  }

  // A list directory whose archive is a Maildir (how mlist stores posts).
  spool::Address list_with_archive(const std::string& address) {
    spool::Address l = spool::Address::parse(address);
    fs::create_directories(layout_.list_dir(l));
    spool::create_maildir(layout_.list_archive(l));
    return l;
  }

  spool::Maildir maildir(const spool::Address& a) const { return spool::Maildir(layout_.maildir(a)); }

private:
  TempDir tmp_;
  spool::Layout layout_;
};

// One delivery through libspool that must succeed.
inline void deliver_ok(const StoreSpool& s, const spool::Address& to, std::size_t size) {
  auto out = spool::deliver_bytes(s.layout(), message_of_size(size), {to});
  REQUIRE(out.at(0).status == spool::DeliveryOutcome::Status::delivered);
}

} // namespace mhtest
