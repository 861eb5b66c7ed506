// from_header.h — the submission From: policy (SPEC §8 submission.from_header): which
// From: header an authenticated sender may put on a message. The header block is the
// client's text and is not trusted: it is parsed as RFC 5322 §3.6.2 says (folded lines,
// comments, quoted strings, display names incl. RFC 2047 encoded words, angle-addr),
// with a fixed bound on what is read; anything that does not parse is "no From:".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mh::smtp {

enum class FromPolicy { any, own_domain, own_address };

// The addr-specs ("local@domain", quoted local parts unquoted) of the one From: field in
// `head` (the message's header lines, LF or CRLF ended; stops at the first empty line).
// nullopt when there is no From:, more than one (RFC 5322 §3.6: exactly one), or its
// value is not a mailbox-list (groups, empty elements, routes, stray text).
std::optional<std::vector<std::string>> from_addresses(std::string_view head);

// True when every From: address belongs to `account` ("user@domain") under `policy`:
// own_domain compares domains, own_address whole addresses, both case-insensitively
// (our account names are case-insensitive). A missing or malformed From: fails.
bool from_header_ok(FromPolicy policy, std::string_view head, std::string_view account);

} // namespace mh::smtp
