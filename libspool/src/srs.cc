// srs.cc — SRS0 addresses (srs.h) in the format of libsrs2 / postsrsd:
//   SRS0=HHHH=TT=domain=local@srs.domain
// TT is the day number mod 1024 in two base32 characters; HHHH the first 4 base64url
// characters of HMAC-SHA256(key, TT domain local). MTAs may change the case of an
// address on the way back, so, as libsrs2 does, the HMAC input is lower-cased and the
// hash and timestamp are compared case-insensitively (4 case-folded base64 characters
// still leave about 2^21 guesses per address and day).
// Deviations from libsrs2, on purpose:
//  * the hash is in base64url ("-_" for "+/"): a "/" in an address is refused (SPEC §8);
//  * no SRS1: an SRS0/SRS1 address of another forwarder is wrapped as SRS0 again (the
//    bounce then goes back to that forwarder, which reverses its own address);
//  * the hash is checked before the timestamp, so a tampered address is always reported
//    as forged, never as merely expired;
//  * the local part of the result may exceed RFC 5321's 64 octets for long senders;
//    it is produced anyway (Postfix, Exim and most MTAs accept it; libsrs2 does the same).
// The key file is made once, by whoever comes first: temp file, fsync, link() (never
// overwrites), so two mh-serve starting together end with the same key.
#include "spool/srs.h"

#include "spool/atomic_file.h"
#include "spool/error.h"

#include "file_io.h"
#include "text_util.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace spool {
namespace {

constexpr std::size_t key_bytes = 32;
constexpr std::size_t max_key_file = 4096;    // a key file larger than this is not read whole
constexpr std::int64_t seconds_per_day = 86400;
constexpr std::int64_t time_slots = 1024;     // 2 base32 characters (libsrs2 SRS_TIME_SLOTS)
constexpr std::size_t hash_length = 4;        // libsrs2's default hash length
constexpr std::string_view srs0_prefix = "SRS0=";
constexpr std::string_view base32_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
// base64url: SPEC §8 refuses "/" in any address, and SRS addresses come back to us as
// RCPT TO; libsrs2 uses "+/" here (one of our documented deviations).
constexpr std::string_view base64_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using detail::ascii_lowered;
using detail::iequals;

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool starts_with_srs0(std::string_view s) { return s.size() >= srs0_prefix.size() && iequals(s.substr(0, 5), srs0_prefix); }

std::int64_t day_slot(std::int64_t now) {
  std::int64_t day = now / seconds_per_day;
  if (now % seconds_per_day < 0) --day;  // floor, also before 1970
  const std::int64_t slot = day % time_slots;
  return slot < 0 ? slot + time_slots : slot;
}

std::string encode_timestamp(std::int64_t slot) {
  return {base32_chars[static_cast<std::size_t>((slot >> 5) & 31)], base32_chars[static_cast<std::size_t>(slot & 31)]};
}

// -1 when `tt` is not two base32 characters (either case).
std::int64_t decode_timestamp(std::string_view tt) {
  if (tt.size() != 2) return -1;
  std::int64_t slot = 0;
  for (char c : tt) {
    const auto pos = base32_chars.find(ascii_upper(c));
    if (pos == std::string_view::npos) return -1;
    slot = slot * 32 + static_cast<std::int64_t>(pos);
  }
  return slot;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0x0f];
  }
  return out;
}

// 64 hex digits, then optionally one newline (a key written by `openssl rand -hex 32`
// or by printf both load). Returns the 32 bytes, or an explanation.
std::pair<std::string, std::string> parse_key_file(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.size() != key_bytes * 2)
    return {{}, "expected " + std::to_string(key_bytes * 2) + " hex digits and a newline, found " +
                    std::to_string(text.size()) + " characters"};
  std::string key;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return {{}, "not a hex digit at character " + std::to_string(hi < 0 ? i + 1 : i + 2)};
    key += static_cast<char>(hi * 16 + lo);
  }
  return {key, {}};
}

using detail::Fd;

// At most max_key_file + 1 bytes of a regular file; nullopt when it does not exist.
// O_NONBLOCK: a FIFO planted at the key's name must not hang mh-serve's start.
std::optional<std::string> read_key_file(const fs::path& file) {
  struct stat st;
  const Fd fd = detail::open_regular_for_reading(file, st, Errc::bad_config);
  if (fd.get() < 0) return std::nullopt;
  return detail::read_at_most(fd.get(), max_key_file, file);
}

std::string key_from_file(const fs::path& file, const std::string& text) {
  auto [key, problem] = parse_key_file(text);
  if (!problem.empty()) throw Error(Errc::bad_config, file.string() + ": " + problem);
  return key;
}

std::string random_key() {
  std::string key(key_bytes, '\0');
  std::size_t got = 0;
  while (got < key.size()) {
    // Blocks until the kernel's pool is initialised: a key must never be guessable.
    const ssize_t n = ::getrandom(key.data() + got, key.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot get random bytes for", "srs.key", errno);
    }
    got += static_cast<std::size_t>(n);
  }
  return key;
}

// Writes a fresh key under a temp name and links it to `file`. Returns the key that is
// in `file` afterwards: ours, or a racing creator's when the link found it taken.
std::string create_key_file(const fs::path& file) {
  const fs::path dir = file.parent_path();
  const fs::path tmp = dir / ("." + file.filename().string() + ".tmp" + unique_suffix());
  const std::string key = random_key();
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) throw_errno("cannot create", tmp, errno);
    try {
      if (::fchmod(fd.get(), 0600) != 0) throw_errno("cannot chmod", tmp, errno);  // whatever the umask
      write_all(fd.get(), to_hex(key) + "\n", tmp);
      if (::fsync(fd.get()) != 0) throw_errno("cannot fsync", tmp, errno);
      if (::close(fd.release()) != 0) throw_errno("cannot close", tmp, errno);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  // link(), not rename(): it fails with EEXIST instead of replacing a key that another
  // process made (and may already have used) in the meantime.
  const int linked = ::link(tmp.c_str(), file.c_str());
  const int err = errno;
  ::unlink(tmp.c_str());
  if (linked != 0 && err != EEXIST) throw_errno("cannot link into place", file, err);
  fsync_directory(dir);
  if (linked == 0) return key;
  auto theirs = read_key_file(file);
  if (!theirs) throw_errno("cannot open", file, ENOENT);  // made and removed meanwhile
  return key_from_file(file, *theirs);
}

} // namespace

SrsKey SrsKey::load_or_create(const Layout& layout) {
  const fs::path file = layout.tls_dir() / "srs.key";
  layout.verify_no_symlinks(file);
  if (auto text = read_key_file(file)) return SrsKey(key_from_file(file, *text));
  return SrsKey(create_key_file(file));
}

SrsKey SrsKey::from_bytes(std::string bytes) { return SrsKey(std::move(bytes)); }

std::string SrsKey::hash(std::string_view timestamp, std::string_view domain, std::string_view local) const {
  // Lower-cased, as libsrs2 hashes: a reply whose address an MTA re-cased still verifies.
  const std::string data = ascii_lowered(timestamp) + ascii_lowered(domain) + ascii_lowered(local);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), mac, &mac_length) == nullptr ||
      mac_length < 3)
    throw Error(Errc::other, "SRS: HMAC-SHA256 failed", /*temporary=*/true);
  // The first 3 bytes give exactly the first 4 base64 characters.
  const unsigned v = (unsigned{mac[0]} << 16) | (unsigned{mac[1]} << 8) | unsigned{mac[2]};
  std::string out;
  for (int shift = 18; shift >= 0; shift -= 6) out += base64_chars[(v >> shift) & 63];
  static_assert(hash_length == 4);
  return out;
}

std::string SrsKey::forward_address(std::string_view sender, std::string_view srs_domain, std::int64_t now) const {
  const auto at = sender.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == sender.size())
    throw Error(Errc::invalid_input, "SRS: sender '" + std::string(sender) + "' is not local@domain");
  for (char c : sender)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      throw Error(Errc::invalid_input, "SRS: sender contains a space or control character");
  const std::string_view local = sender.substr(0, at);
  const std::string_view domain = sender.substr(at + 1);
  // '=' separates the fields; a domain can never hold one, so reverse() splits on it.
  if (domain.find('=') != std::string_view::npos)
    throw Error(Errc::invalid_input, "SRS: sender domain '" + std::string(domain) + "' contains '='");
  if (starts_with_srs0(local) && iequals(domain, srs_domain)) return std::string(sender);  // already ours

  const std::string tt = encode_timestamp(day_slot(now));
  std::string out;
  out.reserve(sender.size() + srs_domain.size() + 16);
  out += srs0_prefix;
  out += hash(tt, domain, local);
  out += '=';
  out += tt;
  out += '=';
  out += domain;
  out += '=';
  out += local;
  out += '@';
  out += srs_domain;
  return out;
}

SrsKey::Reversal SrsKey::reverse(std::string_view local_part, std::int64_t now) const {
  Reversal r;
  if (!starts_with_srs0(local_part)) return r;  // not_srs
  r.verdict = Verdict::malformed;
  std::string_view rest = local_part.substr(srs0_prefix.size());
  std::string_view field[3];  // hash, timestamp, domain; the rest is the local part
  for (auto& f : field) {
    const auto eq = rest.find('=');
    if (eq == std::string_view::npos || eq == 0) return r;
    f = rest.substr(0, eq);
    rest.remove_prefix(eq + 1);
  }
  const std::string_view given_hash = field[0], tt = field[1], domain = field[2], local = rest;
  const std::int64_t then = decode_timestamp(tt);
  if (given_hash.size() != hash_length || then < 0 || local.empty()) return r;

  // Constant time, so the hash cannot be found one character at a time by timing.
  const std::string want = ascii_lowered(hash(tt, domain, local));
  const std::string got = ascii_lowered(given_hash);
  if (CRYPTO_memcmp(want.data(), got.data(), hash_length) != 0) {
    r.verdict = Verdict::forged;
    return r;
  }
  // Days since `then`, modulo the 1024-day cycle (libsrs2's srs_timestamp_check): a
  // timestamp from tomorrow (clock skew) reads as 1023 days old and is refused too.
  std::int64_t age = day_slot(now) - then;
  if (age < 0) age += time_slots;
  if (age > static_cast<std::int64_t>(srs_lifetime_days)) {
    r.verdict = Verdict::expired;
    return r;
  }
  r.verdict = Verdict::original;
  r.original = std::string(local) + "@" + std::string(domain);
  return r;
}

} // namespace spool
