// password.cc — crypt_r/crypt_gensalt wrappers, constant-time compare, random passwords.
#include "spool/password.h"

#include "spool/error.h"

#include <crypt.h>
#include <sys/random.h>

#include <cstring>
#include <memory>

namespace spool {
namespace {

void secure_zero(void* p, std::size_t n) {
  volatile unsigned char* v = static_cast<volatile unsigned char*>(p);
  while (n--) *v++ = 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// crypt_data is ~32 KiB: keep it off the stack of coroutine-heavy callers.
struct CryptBuffer {
  CryptBuffer() : data(std::make_unique<crypt_data>()) { std::memset(data.get(), 0, sizeof(crypt_data)); }
  ~CryptBuffer() { secure_zero(data.get(), sizeof(crypt_data)); }
  std::unique_ptr<crypt_data> data;
};

void fill_random(void* buf, std::size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom", "(kernel)", errno);
    }
    p += got;
    n -= static_cast<std::size_t>(got);
  }
}


static_assert(max_password_length < CRYPT_MAX_PASSPHRASE_SIZE, "crypt_r refuses longer passphrases");

} // namespace

Secret::Secret(Secret&& o) noexcept : value_(std::move(o.value_)) { o.wipe(); }
Secret& Secret::operator=(Secret&& o) noexcept {
  if (this != &o) {
    wipe();
    value_ = std::move(o.value_);
    o.wipe();
  }
  return *this;
}
Secret::~Secret() { wipe(); }
void Secret::wipe() noexcept {
  if (!value_.empty()) secure_zero(value_.data(), value_.size());
  value_.clear();
}

std::string hash_password(const Secret& password) {
  const std::string& pw = password.reveal();
  if (pw.empty()) throw Error(Errc::invalid_input, "password is empty");
  if (pw.size() > max_password_length)
    throw Error(Errc::invalid_input, "password is longer than " + std::to_string(max_password_length) + " bytes");
  if (pw.find('\0') != std::string::npos) throw Error(Errc::invalid_input, "password contains a NUL byte");
  unsigned char rnd[32];
  fill_random(rnd, sizeof rnd);
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!::crypt_gensalt_rn("$y$", 0, reinterpret_cast<const char*>(rnd), sizeof rnd, setting, sizeof setting))
    throw_errno("crypt_gensalt", "$y$", errno);
  CryptBuffer buf;
  const char* h = ::crypt_r(pw.c_str(), setting, buf.data.get());
  if (!h || h[0] == '*') throw Error(Errc::other, "crypt_r failed to hash the password");
  return h;
}

bool verify_password(const Secret& password, std::string_view hash) {
  const std::string& pw = password.reveal();
  std::string stored(hash);
  if (stored.empty() || stored[0] != '$' || pw.size() > max_password_length) {
    dummy_verify(password);
    return false;
  }
  CryptBuffer buf;
  const char* h = ::crypt_r(pw.c_str(), stored.c_str(), buf.data.get());
  if (!h || h[0] == '*') return false;
  return constant_time_equal(h, stored);
}

void dummy_verify(const Secret& password) {
  // A real yescrypt hash made once per process, so the dummy run has the same
  // algorithm and cost as a real account's (a malformed setting would return at once).
  static const std::string dummy_hash = hash_password(random_password());
  CryptBuffer buf;
  std::string pw = password.reveal().substr(0, max_password_length);
  (void)::crypt_r(pw.c_str(), dummy_hash.c_str(), buf.data.get());
  secure_zero(pw.data(), pw.size());
}

Secret random_password() {
  static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  constexpr std::size_t n = sizeof alphabet - 1; // 55
  std::string out;
  while (out.size() < 20) {
    unsigned char b[32];
    fill_random(b, sizeof b);
    for (unsigned char c : b) {
      if (c >= 220) continue; // 220 = 4 * 55: reject to keep the choice uniform
      if (out.size() < 20) out += alphabet[c % n];
    }
    secure_zero(b, sizeof b);
  }
  return Secret(std::move(out));
}

} // namespace spool
