// list_message.h — the texts of mailing-list mail (SPEC §7), as pure functions: the
// posting rules that look at a message (system posters, fml's one-line body), the
// distributed post's headers (Subject tag, X-ML-Name, X-Mail-Count, List-*, Precedence),
// the mails the list sends itself (refusals, confirmation requests, notices) and the
// reading of delivery-status notifications that come back to LIST+bounces. No I/O:
// list_mail.cc stores and queues what these build. Messages use LF line ends.
#pragma once

#include "spool/mlist.h"
#include "spool/names.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spool {

// The header block of a message: everything before the first empty line, with the line
// end of its last line, without the empty line. The whole text when there is no body.
// (The same function header_decode.h declares; defined in header_decode.cc.)
std::string_view header_block(std::string_view message);
// The raw (not RFC 2047-decoded) value of the first `name:` field of a header block
// (case-insensitive name; only the header_block() of `headers` is searched), unfolded:
// its lines trimmed and joined with one space; nullopt when absent.
std::optional<std::string> header_value(std::string_view headers, std::string_view name);
// The first address of a From:-like field value ("Name <a@b>", "\"Last, First\" <a@b>",
// "a@b (c)", "a@b, c@d", groups) as written between <> (or bare, comments and white space
// dropped), or nullopt when there is none with an '@' ("<>", "undisclosed-recipients:;").
std::optional<std::string> first_address(std::string_view field_value);

// SPEC §7: the poster's local part is root, postmaster, MAILER-DAEMON, msgs, nobody,
// news, majordomo, listserv or listproc, or ends in -help, -subscribe, -unsubscribe
// (case-insensitive; the local part is the text before the last '@', angle brackets
// around the address allowed). Such mail is dropped without a reply. "" (the null
// sender) is one too.
bool is_system_poster(std::string_view address);

// fml's "one line mail body": the body's first paragraph (after leading blank lines) is a
// single line of ASCII letters/digits, ':', ',', '@', '-' and spaces (with at least one
// letter or digit; '.' only inside a word holding '@', so "unsubscribe me@x.jp" is one
// but "Thanks." is not), and whatever follows is only blank lines or a signature (a line
// "-- " or "--" and anything after it). Looks at text/plain bodies (no Content-Type, or
// text/plain; the charset does not matter) in 7bit/8bit/binary, quoted-printable or
// base64; never at multipart or another encoding. A body with no letter or digit (empty
// included) is not one.
bool is_one_line_body(std::string_view message);

// `format` with {list} → the list's name and {seq} → seq zero-padded to 5 digits.
std::string format_subject_tag(std::string_view format, std::string_view list_name, std::uint64_t seq);
// The Subject value of the distributed post: the tag put in front, and any tag of this
// list already in it (a reply: "Re: [ml:00012] x" → "[ml:00013] Re: x") taken out so it is
// never tagged twice; one space after it goes too, then the rest is trimmed. A tag is the
// format with {list} the name and {seq} any run of digits (literals compared ASCII
// case-insensitively). A tag of this list found only in the RFC 2047-decoded form leaves
// the value unchanged. An empty format returns the value unchanged.
std::string tag_subject(std::string_view subject_value, std::string_view format, std::string_view list_name,
                        std::uint64_t seq);

struct ListPostHeaders {
  std::string list_name;        // "ml"
  std::string list_address;     // "ml@example.jp"
  std::string bounces_address;  // "ml+bounces@example.jp" (the Return-Path)
  std::string unsubscribe_address;
  std::string subject_tag;      // the format; "" = none
  std::uint64_t seq = 0;
};
// The header block of the distributed post from the original one: Return-Path first
// (<bounces_address>), then the original fields minus those the list owns (Return-Path,
// Delivered-To, List-*, X-ML-Name, X-Mail-Count, Precedence), Subject tagged (added if
// absent), then X-ML-Name, X-Mail-Count (seq, unpadded), List-Id: <name.domain>,
// List-Post: <mailto:LIST>, List-Unsubscribe: <mailto:LIST+unsubscribe>, Precedence: list.
// Folded continuation lines stay with their field; the tagged Subject is one line (folded
// only past 998 characters); a second Subject field and lines that are not fields are
// dropped. With no tag format the Subject stays as written, and none is added. LF ends.
std::string distribution_headers(std::string_view original_headers, const ListPostHeaders& h);

// Why a post was not distributed (the reason text each refusal mail names).
enum class ListRefusal { one_line_body, mail_bomb, too_large, not_member, rejected, domain_full };
// "one line mail body", "mail bomb", "Your mail exceeds the size this mailing list
// allows", "you are not a member of this mailing list", "rejected by the moderator",
// "the mailing list's domain is out of disk space".
std::string_view refusal_reason(ListRefusal r);
// The same in Japanese (the FAQ's text where it has one).
std::string_view refusal_reason_ja(ListRefusal r);

// Common fields of every mail the list writes itself.
struct ListMailContext {
  std::string list_address;     // "ml@example.jp"
  std::string from;             // From: of the mail (e.g. "ml+bounces@example.jp")
  std::string to;               // the recipient
  std::string hostname;         // for Message-ID
  std::int64_t now = 0;         // Date
};

// The error mail to a poster: Subject "[NAME] your post was not distributed: REASON",
// Auto-Submitted: auto-replied, multipart/mixed: a text/plain UTF-8 part (English, then
// Japanese) naming the reason (and for too_large the size and the limit in KB), and a
// text/rfc822-headers part with the post's header block (at most 64 KiB).
// Every mail below carries Date, From, To, Subject (RFC 2047 B-encoded UTF-8 when not
// ASCII), Message-ID, MIME-Version, Auto-Submitted and X-ML-Name (NAME = the local part
// of c.list_address); text parts are UTF-8, base64 when not ASCII. No Precedence.
std::string build_refusal_mail(const ListMailContext& c, ListRefusal reason, std::string_view original_headers,
                               std::uint64_t size, std::uint64_t limit);

// A confirmation request: plain text, From: and Reply-To: the confirm address
// (LIST+confirm-TOKEN@DOMAIN), so any reply — HTML or plain — confirms; Auto-Submitted:
// auto-generated. Moderation: multipart/mixed with the explanation (English, then
// Japanese; it names `mh-list approve|reject LIST TOKEN`) and the post as message/rfc822
// (a leading Return-Path field removed), Subject "[NAME] approval needed: <post's
// Subject>". Unsubscribe (to c.to): text/plain only. `expires` (unix seconds) is named in
// the text. c.from is not used here. The envelope sender must not be the confirm
// address (a DSN there would confirm): the null sender or LIST+bounces.
std::string build_moderation_request(const ListMailContext& c, std::string_view confirm_address,
                                     std::string_view poster, std::string_view post, std::int64_t expires);
std::string build_unsubscribe_request(const ListMailContext& c, std::string_view confirm_address,
                                      std::int64_t expires);
// "ADDRESS has been removed from the mailing list LIST" (plain text, English then
// Japanese; ADDRESS = c.to). A post the moderator rejects is answered by
// build_refusal_mail(…, ListRefusal::rejected, …).
std::string build_unsubscribed_notice(const ListMailContext& c);

// The recipients a delivery-status notification (RFC 3464) reports as failed: every
// per-recipient block of a message/delivery-status part with "Action: failed", by its
// Final-Recipient (else Original-Recipient) "rfc822; ADDR" value. Empty when the message
// is not a DSN. Bounded work on any input: the first 1 MiB is read, at most 1,000
// addresses are returned, each once (case-insensitive).
std::vector<std::string> failed_recipients(std::string_view message);

} // namespace spool
