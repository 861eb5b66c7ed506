// names.h — the only way a string from outside becomes an account, list or domain name.
// LocalPart enforces SPEC §3 (a-z 0-9 . - _, 1–32 chars, starts and ends with a letter
// or digit, no two of '.'/'-' in a row); input is folded to lower case. Domain converts
// IDN to punycode (ICU UTS #46) and enforces LDH labels, so both are safe as path
// components: no '/', no "..", no NUL, no control or non-ASCII character survives.
// parse() throws Error(invalid_input) with a message saying what is wrong.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace spool {

inline constexpr std::size_t max_local_part_length = 32;
inline constexpr std::size_t max_domain_length = 253;
inline constexpr std::size_t max_label_length = 63;

// Returns an explanation when `name` (already lower case) is not a valid account or
// list name, std::nullopt when it is.
std::optional<std::string> local_part_problem(std::string_view name);

class LocalPart {
public:
  static LocalPart parse(std::string_view input);
  const std::string& str() const noexcept { return value_; }
  auto operator<=>(const LocalPart&) const = default;

private:
  explicit LocalPart(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

class Domain {
public:
  // Accepts Unicode (UTF-8) or ASCII; stores lower-case ASCII (A-labels).
  static Domain parse(std::string_view input);
  const std::string& str() const noexcept { return ascii_; }
  // The Unicode form for display (same as str() for a plain ASCII domain).
  std::string unicode() const;
  auto operator<=>(const Domain&) const = default;

private:
  explicit Domain(std::string v) : ascii_(std::move(v)) {}
  std::string ascii_;
};

// user@domain where user is a LocalPart and domain a Domain (a hosted address).
class Address {
public:
  static Address parse(std::string_view input);
  Address(LocalPart local, Domain domain) : local_(std::move(local)), domain_(std::move(domain)) {}
  const LocalPart& local() const noexcept { return local_; }
  const Domain& domain() const noexcept { return domain_; }
  std::string str() const { return local_.str() + "@" + domain_.str(); }
  auto operator<=>(const Address&) const = default;

private:
  LocalPart local_;
  Domain domain_;
};

} // namespace spool
