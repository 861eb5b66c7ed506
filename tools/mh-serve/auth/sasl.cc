// sasl.cc — strict base64 and the PLAIN / LOGIN exchanges. Written out rather than
// taken from OpenSSL: EVP_DecodeBlock skips whitespace and does not check the padding
// or the pad bits, and STYLE keeps OpenSSL to password.cc and net/tls.
#include "auth/sasl.h"

#include <array>

namespace mh::auth {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// -1 for a byte outside the alphabet ('=' included: padding is handled apart).
constexpr std::array<signed char, 256> make_table() {
  std::array<signed char, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
  return t;
}
constexpr auto table = make_table();

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'a' && a[i] <= 'z' ? static_cast<char>(a[i] - 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

// Decodes straight into a Secret so a password never sits in a buffer nobody wipes.
std::optional<spool::Secret> decode_secret(std::string_view text) {
  auto decoded = decode_base64(text);
  if (!decoded) return std::nullopt;
  return spool::Secret(std::move(*decoded));
}

} // namespace

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() > max_response || text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const unsigned char c = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      // '=' only in the last quantum, only in its last two places, and only trailing.
      if (c == '=' && last && k >= 2 && (k == 3 || text[i + 3] == '=')) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (table[c] < 0 || pad > 0) return std::nullopt;
      v[k] = table[c];
    }
    const unsigned n = (static_cast<unsigned>(v[0]) << 18) | (static_cast<unsigned>(v[1]) << 12) |
                       (static_cast<unsigned>(v[2]) << 6) | static_cast<unsigned>(v[3]);
    // Canonical form only (RFC 4648 §3.5): the bits under the padding must be zero.
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) return std::nullopt;
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t left = bytes.size() - i;
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (left > 1) n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    if (left > 2) n |= static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += left > 1 ? alphabet[(n >> 6) & 63] : '=';
    out += left > 2 ? alphabet[n & 63] : '=';
  }
  return out;
}

std::optional<Credentials> parse_plain(std::string_view message) {
  const auto first = message.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const std::string_view authzid = message.substr(0, first);
  const std::string_view authcid = message.substr(first + 1, second - first - 1);
  const std::string_view passwd = message.substr(second + 1);
  if (authcid.empty() || passwd.empty() || passwd.find('\0') != std::string_view::npos) return std::nullopt;
  // RFC 4616 §2: an authzid asks to act as someone else; only "as myself" is allowed.
  if (!authzid.empty() && authzid != authcid) return std::nullopt;
  Credentials c;
  c.login = std::string(authcid);
  c.password = spool::Secret(std::string(passwd));
  return c;
}

std::optional<SaslExchange::Mechanism> SaslExchange::mechanism(std::string_view name) {
  if (iequals(name, "PLAIN")) return Mechanism::plain;
  if (iequals(name, "LOGIN")) return Mechanism::login;
  return std::nullopt;
}

SaslExchange::Step SaslExchange::start(std::optional<std::string_view> initial) {
  if (!initial) {
    Step s;
    s.kind = Step::Kind::challenge;
    // PLAIN sends everything in one response, so its challenge is empty (RFC 4954 §4).
    if (mechanism_ == Mechanism::login) s.challenge = std::string(login_username_prompt);
    return s;
  }
  // RFC 4954 §4: "=" is an initial response of zero length.
  return respond(*initial == "=" ? std::string_view() : *initial);
}

SaslExchange::Step SaslExchange::respond(std::string_view line) {
  return mechanism_ == Mechanism::plain ? plain(line) : login_step(line);
}

SaslExchange::Step SaslExchange::plain(std::string_view response) {
  Step s;
  auto decoded = decode_secret(response);
  if (!decoded) {
    s.kind = Step::Kind::bad_base64;
    return s;
  }
  auto c = parse_plain(decoded->reveal());
  if (!c) return s;  // malformed
  credentials_ = std::move(*c);
  s.kind = Step::Kind::done;
  return s;
}

SaslExchange::Step SaslExchange::login_step(std::string_view response) {
  Step s;
  auto decoded = decode_secret(response);
  if (!decoded) {
    s.kind = Step::Kind::bad_base64;
    return s;
  }
  if (decoded->empty() || decoded->reveal().find('\0') != std::string::npos) return s;  // malformed
  if (!have_login_) {
    credentials_.login = decoded->reveal();
    have_login_ = true;
    s.kind = Step::Kind::challenge;
    s.challenge = std::string(login_password_prompt);
    return s;
  }
  credentials_.password = std::move(*decoded);
  s.kind = Step::Kind::done;
  return s;
}

} // namespace mh::auth
