// names.cc — validation of account/list names (SPEC §3) and domains (LDH + IDN via ICU).
#include "spool/names.h"

#include "spool/error.h"

#include "icu_runtime.h"
#include "text_util.h"

#include <memory>

namespace spool {
namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_symbol(char c) { return c == '.' || c == '-' || c == '_'; }

using detail::ascii_lowered;
using detail::printable;

struct UidnaCloser {
  void operator()(UIDNA* p) const { detail::icu().close_uts46(p); }
};

// One UTS #46 converter per thread: uidna objects are immutable after open but the
// calls are documented per-object; a thread_local keeps it simple and lock-free.
UIDNA* uts46() {
  thread_local std::unique_ptr<UIDNA, UidnaCloser> idna = [] {
    UErrorCode status = U_ZERO_ERROR;
    UIDNA* p = detail::icu().open_uts46(UIDNA_NONTRANSITIONAL_TO_ASCII | UIDNA_NONTRANSITIONAL_TO_UNICODE |
                                            UIDNA_CHECK_BIDI | UIDNA_CHECK_CONTEXTJ | UIDNA_USE_STD3_RULES,
                                        &status);
    if (U_FAILURE(status)) throw Error(Errc::other, std::string("ICU UTS46: ") + detail::icu().error_name(status));
    return std::unique_ptr<UIDNA, UidnaCloser>(p);
  }();
  return idna.get();
}

std::optional<std::string> ldh_problem(const std::string& d) {
  if (d.empty()) return "domain is empty";
  if (d.size() > max_domain_length) return "domain is longer than 253 characters";
  if (d.find('.') == std::string::npos) return "domain needs at least two labels (example.jp)";
  std::size_t start = 0;
  while (start <= d.size()) {
    std::size_t end = d.find('.', start);
    if (end == std::string::npos) end = d.size();
    std::string_view label(d.data() + start, end - start);
    if (label.empty()) return "domain has an empty label";
    if (label.size() > max_label_length) return "domain label longer than 63 characters";
    if (label.front() == '-' || label.back() == '-') return "domain label starts or ends with '-'";
    for (char c : label)
      if (!is_alnum(c) && c != '-') return "domain contains a character other than a-z 0-9 - .";
    start = end + 1;
  }
  std::string_view tld(d);
  tld.remove_prefix(d.rfind('.') + 1);
  bool numeric = true;
  for (char c : tld) numeric = numeric && c >= '0' && c <= '9';
  if (numeric) return "top-level label is numeric (an IP address is not a domain)";
  return std::nullopt;
}

} // namespace

std::optional<std::string> local_part_problem(std::string_view name) {
  if (name.empty()) return "name is empty";
  if (name.size() > max_local_part_length) return "name is longer than 32 characters";
  for (char c : name)
    if (!is_alnum(c) && !is_symbol(c)) return "name may contain only a-z, 0-9, '.', '-' and '_'";
  if (is_symbol(name.front())) return "name must not start with a symbol";
  if (is_symbol(name.back())) return "name must not end with a symbol";
  for (std::size_t i = 1; i < name.size(); ++i) {
    bool dotdash_prev = name[i - 1] == '.' || name[i - 1] == '-';
    bool dotdash_here = name[i] == '.' || name[i] == '-';
    if (dotdash_prev && dotdash_here) return "name must not contain two of '.' and '-' in a row";
  }
  return std::nullopt;
}

LocalPart LocalPart::parse(std::string_view input) {
  std::string folded = ascii_lowered(input);
  if (auto why = local_part_problem(folded))
    throw Error(Errc::invalid_input, "invalid name '" + printable(input) + "': " + *why);
  return LocalPart(std::move(folded));
}

Domain Domain::parse(std::string_view input) {
  std::string_view in = input;
  if (!in.empty() && in.back() == '.') in.remove_suffix(1); // absolute form
  auto reject = [&](const std::string& why) -> Error {
    return Error(Errc::invalid_input, "invalid domain '" + printable(input) + "': " + why);
  };
  if (in.empty()) throw reject("domain is empty");
  if (in.size() > 4 * max_domain_length) throw reject("domain is too long");
  for (unsigned char c : in)
    if (c < 0x20 || c == 0x7f) throw reject("domain contains a control character");

  bool ascii = true;
  for (unsigned char c : in) ascii = ascii && c < 0x80;
  std::string result;
  if (ascii) {
    result = ascii_lowered(in);
  } else {
    char buf[512];
    UErrorCode status = U_ZERO_ERROR;
    UIDNAInfo info = UIDNA_INFO_INITIALIZER;
    int32_t n = detail::icu().name_to_ascii(uts46(), in.data(), static_cast<int32_t>(in.size()), buf,
                                            sizeof buf, &info, &status);
    if (U_FAILURE(status) || info.errors != 0 || n <= 0 || n >= static_cast<int32_t>(sizeof buf))
      throw reject("not a valid internationalized domain name");
    result.assign(buf, static_cast<std::size_t>(n));
    result = ascii_lowered(result);
  }
  if (auto why = ldh_problem(result)) throw reject(*why);
  // An ASCII name with xn-- labels must decode, or it is not a real A-label.
  if (result.find("xn--") != std::string::npos) {
    char buf[1024];
    UErrorCode status = U_ZERO_ERROR;
    UIDNAInfo info = UIDNA_INFO_INITIALIZER;
    detail::icu().name_to_unicode(uts46(), result.data(), static_cast<int32_t>(result.size()), buf,
                                  sizeof buf, &info, &status);
    if (U_FAILURE(status) || info.errors != 0) throw reject("invalid punycode label");
  }
  return Domain(std::move(result));
}

std::string Domain::unicode() const {
  if (ascii_.find("xn--") == std::string::npos) return ascii_;
  char buf[1024];
  UErrorCode status = U_ZERO_ERROR;
  UIDNAInfo info = UIDNA_INFO_INITIALIZER;
  int32_t n = detail::icu().name_to_unicode(uts46(), ascii_.data(), static_cast<int32_t>(ascii_.size()),
                                            buf, sizeof buf, &info, &status);
  if (U_FAILURE(status) || info.errors != 0 || n <= 0 || n >= static_cast<int32_t>(sizeof buf))
    return ascii_;
  return std::string(buf, static_cast<std::size_t>(n));
}

Address Address::parse(std::string_view input) {
  auto at = input.rfind('@');
  if (at == std::string_view::npos)
    throw Error(Errc::invalid_input, "invalid address '" + printable(input) + "': expected name@domain");
  return Address(LocalPart::parse(input.substr(0, at)), Domain::parse(input.substr(at + 1)));
}

} // namespace spool
