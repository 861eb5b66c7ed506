// password.h — crypt(3) password hashes (libxcrypt), Dovecot-compatible.
// New hashes are yescrypt ("$y$"); verification accepts whatever crypt_r knows
// (yescrypt, SHA-512-crypt "$6$", bcrypt "$2b$", …). Clear passwords live only in a
// Secret, which wipes its memory; they are never logged or stored. Comparison of the
// computed hash is constant-time.
#pragma once

#include <string>
#include <string_view>

namespace spool {

// Holds a clear-text password; zeroes its buffer when destroyed.
class Secret {
public:
  Secret() = default;
  explicit Secret(std::string s) : value_(std::move(s)) {}
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& o) noexcept;
  Secret& operator=(Secret&& o) noexcept;
  ~Secret();
  const std::string& reveal() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }

private:
  void wipe() noexcept;
  std::string value_;
};

// libxcrypt hashes at most CRYPT_MAX_PASSPHRASE_SIZE - 1 = 511 bytes (crypt_r gives "*0"
// for longer ones), so this is the longest password that can be stored and verified.
inline constexpr std::size_t max_password_length = 511;

// Hashes with yescrypt (default cost) and a fresh random salt. Throws on an empty
// or over-long password (Error invalid_input).
std::string hash_password(const Secret& password);

// True when `password` matches `hash`. False for a malformed or unknown hash scheme.
// Takes the same time whether or not the hash is malformed (see dummy_verify()).
bool verify_password(const Secret& password, std::string_view hash);

// Burns the same time as a real verification; used for unknown users so a login
// attempt cannot tell "no such user" from "wrong password" by timing.
void dummy_verify(const Secret& password);

// A random password for --random-password: 20 characters from an unambiguous alphabet
// (~115 bits).
Secret random_password();

} // namespace spool
