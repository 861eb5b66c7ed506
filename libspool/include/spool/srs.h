// srs.h — the Sender Rewriting Scheme for forwarded mail (SPEC §8 `srs`): a forward
// leaves with the envelope sender SRS0=HASH=TT=domain=local@<srs.domain>, so SPF at the
// destination checks our domain and a bounce comes back to us; we then send it on to
// the original sender. HASH is an HMAC-SHA256 (key in SPOOL/tls/srs.key, 32 random
// bytes made on first use) over the timestamp, domain and local part, cut to 4 base64
// characters as libsrs2 does; TT is the day number mod 1024 in base32. An address whose
// hash does not verify (forged) or whose timestamp is older than the lifetime (expired)
// is refused at RCPT.
#pragma once

#include "spool/layout.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

inline constexpr std::uint32_t srs_lifetime_days = 21;

class SrsKey {
public:
  // Reads SPOOL/tls/srs.key, creating it (0600, atomically; a racing creator's key wins)
  // when absent. Error(bad_config) when it exists but is not 64 hex digits.
  static SrsKey load_or_create(const Layout& layout);
  static SrsKey from_bytes(std::string bytes);   // tests

  // The SRS0 address for `sender` ("local@domain", non-empty) on `srs_domain` at `now`.
  // A sender that is already one of our SRS0 addresses is returned unchanged.
  std::string forward_address(std::string_view sender, std::string_view srs_domain, std::int64_t now) const;

  enum class Verdict { original, not_srs, forged, expired, malformed };
  struct Reversal {
    Verdict verdict = Verdict::not_srs;
    std::string original;   // Verdict::original: the sender to send the bounce on to
  };
  // `local_part`: the part before '@' of an address at our srs.domain ("SRS0=…",
  // matched case-insensitively, as MTAs may change case).
  Reversal reverse(std::string_view local_part, std::int64_t now) const;

private:
  explicit SrsKey(std::string bytes) : key_(std::move(bytes)) {}
  std::string hash(std::string_view timestamp, std::string_view domain, std::string_view local) const;
  std::string key_;
};

} // namespace spool
