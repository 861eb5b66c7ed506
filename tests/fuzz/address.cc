// address.cc — libFuzzer target over the parsers that turn outside text into addresses and
// names: SMTP MAIL/RCPT arguments (smtp/path.h), libspool's LocalPart/Domain/Address
// (names.h), list and forward addresses (mlist.h, filters.h), header decoding
// (header_decode.h, which shows From:/Subject: to people), and the submission From:
// parser (smtp/from_header.h). Besides "no crash", each accepted value must keep its
// promise; a broken one traps:
//  * an SMTP path accepted as a mailbox holds no '/', '\', NUL or control character and
//    no empty, "." or ".." domain label (SPEC §8 "Addresses"), at most 254 octets;
//  * names are lower-case LDH / SPEC §3 characters and parse back to themselves;
//  * normalized list and forward addresses are fixed points of their normalizer;
//  * decoded header text is valid UTF-8 without control characters (tabs become spaces);
//  * From: addresses are non-empty, hold '@' and no CR, LF or NUL.
// Errors other than spool::Error(invalid_input) from libspool are findings too.
#include "smtp/from_header.h"
#include "smtp/path.h"

#include <spool/error.h>
#include <spool/filters.h>
#include <spool/header_decode.h>
#include <spool/mlist.h>
#include <spool/names.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void require(bool ok, const char* what, std::string_view value) {
  if (ok) return;
  std::fprintf(stderr, "address: %s: \"%.*s\"\n", what, static_cast<int>(value.size()), value.data());
  __builtin_trap();
}

bool control(unsigned char c) { return c < 0x20 || c == 0x7f; }

bool labels_ok(std::string_view domain) {
  for (std::size_t start = 0;;) {
    const auto dot = domain.find('.', start);
    const std::string_view label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label == "." || label == "..") return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// SPEC §8: nothing in an accepted SMTP mailbox can name a path.
void check_mailbox(std::string_view address) {
  require(address.size() <= 254, "mailbox over 254 octets", address);
  for (unsigned char c : address) require(c != '/' && c != '\\' && !control(c), "path or control character", address);
  const auto at = address.rfind('@');
  require(at != std::string_view::npos && at > 0, "mailbox without local part", address);
  require(labels_ok(address.substr(at + 1)), "empty, . or .. domain label", address);
}

void check_smtp(std::string_view args, std::uint8_t flags) {
  const bool rcpt = flags & 1, null_ok = flags & 2;
  const mh::smtp::PathCommand p =
      mh::smtp::parse_path_command(args, rcpt ? "TO:" : "FROM:", null_ok, /*allow_bare_postmaster=*/rcpt);
  if (p.problem == mh::smtp::PathCommand::Problem::none) {
    if (p.address.empty()) require(null_ok, "null path accepted where not allowed", args);
    else if (!(rcpt && mh::smtp::is_bare_postmaster(p.address))) {
      require(mh::smtp::mailbox_syntax_ok(p.address), "accepted path fails mailbox_syntax_ok", p.address);
      check_mailbox(p.address);
    }
  }
  if (mh::smtp::mailbox_syntax_ok(args)) check_mailbox(args);
}

// Runs `parse`; a spool::Error other than invalid_input is a finding.
template <typename Parse>
void expect_invalid_input_only(Parse parse, std::string_view input) {
  try {
    parse();
  } catch (const spool::Error& e) {
    require(e.code() == spool::Errc::invalid_input, e.what(), input);
  }
}

void check_names(std::string_view input) {
  expect_invalid_input_only([&] {
    const spool::Domain d = spool::Domain::parse(input);
    require(d.str().size() <= spool::max_domain_length && labels_ok(d.str()), "domain length or labels", d.str());
    for (char c : d.str())
      require((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.', "domain character", d.str());
    require(spool::Domain::parse(d.str()) == d, "domain does not parse back to itself", d.str());
    (void)d.unicode();
  }, input);
  expect_invalid_input_only([&] {
    const spool::LocalPart l = spool::LocalPart::parse(input);
    require(!spool::local_part_problem(l.str()), "local part with a problem", l.str());
    require(spool::LocalPart::parse(l.str()) == l, "local part does not parse back to itself", l.str());
  }, input);
  expect_invalid_input_only([&] {
    const spool::Address a = spool::Address::parse(input);
    require(spool::Address::parse(a.str()) == a, "address does not parse back to itself", a.str());
  }, input);
}

void check_outside_addresses(std::string_view input) {
  if (const auto list = spool::normalize_list_address(input)) {
    for (unsigned char c : *list) require(!control(c) && c != ' ', "list address character", *list);
    require(spool::normalize_list_address(*list) == list, "list address not a fixed point", *list);
  }
  static const spool::Address account = spool::Address::parse("alice@fuzz.test");
  expect_invalid_input_only([&] {
    const std::string to = spool::check_forward_destination(account, input);
    // '|' and '/' are atext in a local part (RFC 5322 §3.2.3); only a leading one would
    // make a program or a path of it, and in the domain they would name a queue path.
    require(!to.empty() && to[0] != '|' && to[0] != '/', "forward destination is a program or path", to);
    for (unsigned char c : to) require(!control(c), "control character in forward destination", to);
    const std::string_view domain = std::string_view(to).substr(to.rfind('@') + 1);
    require(domain.find_first_of("/\\") == std::string_view::npos, "path character in forward domain", to);
    require(spool::check_forward_destination(account, to) == to, "forward destination not a fixed point", to);
  }, input);
}

// Length of the UTF-8 sequence at s[i], 0 when invalid (overlong, surrogate, > U+10FFFF).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  const std::size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (n == 0 || c > 0xf4 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && b(i + 1) < 0xa0) return 0;  // overlong
  if (c == 0xed && b(i + 1) >= 0xa0) return 0; // surrogate
  if (c == 0xf0 && b(i + 1) < 0x90) return 0;  // overlong
  if (c == 0xf4 && b(i + 1) >= 0x90) return 0; // past U+10FFFF
  return n;
}

void check_header(std::string_view input) {
  const std::string head(spool::header_block(input));
  const std::string decoded = spool::decode_header_value(spool::unfold_header(input));
  for (std::size_t i = 0; i < decoded.size();) {
    const std::size_t n = utf8_length(decoded, i);
    require(n != 0, "decoded header is not UTF-8", decoded);
    if (n == 1) require(!control(static_cast<unsigned char>(decoded[i])), "control in decoded header", decoded);
    // C1 controls (U+0080..U+009F) drive terminals as well as C0 ones do.
    if (n == 2) require(!(decoded[i] == '\xc2' && static_cast<unsigned char>(decoded[i + 1]) < 0xa0), "C1 control in decoded header", decoded);
    i += n;
  }
  if (const auto from = spool::header_field(head, "From")) (void)spool::decode_header_value(*from);
}

// The submission From: policy's parser (smtp/from_header.h) on the same text as a header.
void check_from_header(std::string_view input) {
  if (const auto addresses = mh::smtp::from_addresses(input)) {
    require(!addresses->empty(), "From: parsed to no address", input);
    for (const std::string& a : *addresses) {
      require(a.find('@') != std::string::npos, "From: address without @", a);
      for (char c : a) require(c != '\r' && c != '\n' && c != '\0', "From: address with CR, LF or NUL", a);
    }
  }
  for (auto policy : {mh::smtp::FromPolicy::any, mh::smtp::FromPolicy::own_domain, mh::smtp::FromPolicy::own_address})
    (void)mh::smtp::from_header_ok(policy, input, "alice@fuzz.test");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  check_smtp(input, data[0]);
  check_names(input);
  check_outside_addresses(input);
  check_header(input);
  check_from_header(input);
  return 0;
}
