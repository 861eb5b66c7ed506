// list_message_test.cc — the texts of mailing-list mail (list_message.h): header fields
// read back unfolded, first addresses, system posters, fml's one-line body in every
// transfer encoding, the Subject tag (never twice), the distributed post's exact header,
// the mails the list writes parsed back (fields, MIME parts, the FAQ's Japanese after
// base64), and failed recipients of RFC 3464 DSNs with bounded work on garbage.
#include "spool/list_message.h"

#include "spool/dsn.h"
#include "spool/header_decode.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

using spool::first_address;
using spool::header_value;
using spool::is_one_line_body;
using spool::is_system_poster;
using spool::ListRefusal;
using spool::tag_subject;

namespace {

constexpr std::int64_t now = 1796464800;      // Sat, 05 Dec 2026 10:00:00 +0000
constexpr std::int64_t expires = 1797069600;  // Sat, 12 Dec 2026 10:00:00 +0000

// --- a small reader for the mails the list writes ---

std::string decode_base64(std::string_view s) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned bits = 0;
  int n = 0;
  for (char c : s) {
    const auto v = alphabet.find(c);
    if (v == std::string::npos) continue;
    bits = (bits << 6) | static_cast<unsigned>(v);
    n += 6;
    if (n >= 8) {
      n -= 8;
      out += static_cast<char>((bits >> n) & 0xff);
    }
  }
  return out;
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    out.emplace_back(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  }
  return out;
}

std::string body_of(std::string_view message) {
  const auto head = spool::header_block(message);
  return std::string(message.substr(std::min(message.size(), head.size() + 1)));
}

// The parts of a multipart message: each with its header and content (the LF before the
// next delimiter removed, RFC 2046 §5.1.1).
std::vector<std::string> parts_of(const std::string& message) {
  const std::string type = header_value(message, "Content-Type").value_or("");
  const auto b = type.find("boundary=\"");
  REQUIRE(b != std::string::npos);
  const std::string boundary = type.substr(b + 10, type.find('"', b + 10) - b - 10);
  const std::string body = body_of(message);
  const std::string delimiter = "\n--" + boundary;
  std::vector<std::string> parts;
  auto pos = body.find(delimiter);
  REQUIRE(pos != std::string::npos);
  while (true) {
    pos += delimiter.size();
    if (body.compare(pos, 2, "--") == 0) break;
    REQUIRE(body[pos] == '\n');
    const auto next = body.find(delimiter, pos + 1);
    REQUIRE(next != std::string::npos);
    parts.push_back(body.substr(pos + 1, next - pos - 1));
    pos = next;
  }
  return parts;
}

// The text of a text/plain part (or single-part message), base64 decoded when so sent.
std::string text_of(const std::string& part) {
  const std::string cte = header_value(part, "Content-Transfer-Encoding").value_or("7bit");
  return cte == "base64" ? decode_base64(body_of(part)) : body_of(part);
}

// The text with its line breaks made spaces: English sentences are wrapped at 72.
std::string flat(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// Checks every mail the list writes shares: LF only, lines ≤ 76 in the header, the
// common fields, no Precedence.
void check_common(const std::string& m, const std::string& auto_submitted) {
  CHECK(m.find('\r') == std::string::npos);
  for (const std::string& line : lines_of(spool::header_block(m))) CHECK(line.size() <= 76);
  CHECK(header_value(m, "Date") == "Sat, 05 Dec 2026 10:00:00 +0000");
  CHECK(header_value(m, "MIME-Version") == "1.0");
  CHECK(header_value(m, "Auto-Submitted") == auto_submitted);
  CHECK(header_value(m, "X-ML-Name") == "ml");
  CHECK_FALSE(header_value(m, "Precedence"));
  const std::string id = header_value(m, "Message-ID").value_or("");
  CHECK(id.front() == '<');
  CHECK(id.find("@mail.example.jp>") != std::string::npos);
}

spool::ListMailContext context(const std::string& to = "alice@example.org") {
  spool::ListMailContext c;
  c.list_address = "ml@example.jp";
  c.from = "ml+bounces@example.jp";
  c.to = to;
  c.hostname = "mail.example.jp";
  c.now = now;
  return c;
}

const std::string post_headers =
    "Return-Path: <alice@example.org>\n"
    "Received: from client.example.org by mail.example.jp; Sat, 05 Dec 2026 09:59:00 +0000\n"
    "From: Alice <alice@example.org>\n"
    "To: ml@example.jp\n"
    "Subject: =?UTF-8?B?5pel5pys6Kqe?= lunch\n"
    "Message-ID: <1234@example.org>\n";

const std::string post = post_headers + "\nHello all,\nlunch at noon?\n";

} // namespace

// --- reading header fields ---

TEST_CASE("header_value finds a field by any case and unfolds it with one space", "[list_message]") {
  const std::string head =
      "Received: from a\n\tby b\n"
      "subject: a long\n   subject\n\tthat was folded  \n"
      "X-Empty:\n"
      "To: ml@example.jp\n"
      "\n"
      "X-In-Body: no\n";
  CHECK(header_value(head, "Subject") == "a long subject that was folded");
  CHECK(header_value(head, "RECEIVED") == "from a by b");
  CHECK(header_value(head, "x-empty") == "");
  CHECK(header_value(head, "To") == "ml@example.jp");
  CHECK_FALSE(header_value(head, "X-In-Body"));  // the body is not header
  CHECK_FALSE(header_value(head, "Cc"));
  CHECK_FALSE(header_value(head, "Subj"));
  CHECK(header_value("Subject: crlf\r\n folded\r\n\r\nbody\r\n", "Subject") == "crlf folded");
  CHECK(header_value("Subject: no final line end", "subject") == "no final line end");
}

TEST_CASE("first_address takes the first mailbox of a From-like field", "[list_message]") {
  CHECK(first_address("Alice <alice@example.org>") == "alice@example.org");
  CHECK(first_address("\"Quoted, Name\" <q@example.org>") == "q@example.org");
  CHECK(first_address("bare@example.org") == "bare@example.org");
  CHECK(first_address("  bare@example.org (Bare Person)") == "bare@example.org");
  CHECK(first_address("a@example.org, c@example.net") == "a@example.org");
  CHECK(first_address("\"x <y@z>\" <real@example.org>") == "real@example.org");
  CHECK(first_address("Team: one@example.org, two@example.org;") == "one@example.org");
  CHECK(first_address("undisclosed-recipients:;, later@example.org") == "later@example.org");
  CHECK(first_address("=?UTF-8?B?5bGx55Sw?= <yamada@example.jp>") == "yamada@example.jp");
  CHECK(first_address("<@relay.example:user@example.org>") == "user@example.org");
  CHECK(first_address("\"john doe\"@example.org") == "\"john doe\"@example.org");
  CHECK_FALSE(first_address("<>"));
  CHECK_FALSE(first_address("undisclosed-recipients:;"));
  CHECK_FALSE(first_address(""));
}

// --- posting rules ---

TEST_CASE("system posters are the FAQ's names and suffixes, in any case", "[list_message]") {
  for (const char* a : {"root@example.org", "POSTMASTER@example.org", "mailer-daemon@example.org",
                        "MAILER-DAEMON@example.org", "msgs@x", "nobody@x", "news@x", "Majordomo@x", "listserv@x",
                        "listproc@x", "foo-help@example.org", "bar-subscribe@x", "baz-UNSUBSCRIBE@x", "root",
                        "<root@example.org>", "", "<>"})
    CHECK(is_system_poster(a));
  for (const char* a : {"alice@example.org", "rooted@example.org", "newsletter@x", "helpdesk@x",
                        "subscribe@x", "foo-help-desk@x", "alice@root"})
    CHECK_FALSE(is_system_poster(a));
  // The local part is what precedes the LAST '@'.
  CHECK(is_system_poster("\"a@b\"root@example.org") == false);
  CHECK(is_system_poster("x@root@example.org") == false);
  CHECK(is_system_poster("x@y-help@example.org"));
}

TEST_CASE("one line mail body: a lone line of letters and digits, blank lines and a signature", "[list_message]") {
  const std::string h = "From: a@example.org\nSubject: x\n\n";
  CHECK(is_one_line_body(h + "subscribe\n"));
  CHECK(is_one_line_body(h + "\n\nunsubscribe me@x.jp\n"));
  CHECK(is_one_line_body(h + "help\n\n-- \nTaro\nExample Inc.\n"));
  CHECK(is_one_line_body(h + "help\n--\nTaro\n"));
  CHECK(is_one_line_body(h + "Hello, world\n"));
  CHECK(is_one_line_body(h + "get 1-10\n\n\n"));
  CHECK(is_one_line_body(h + "chaddr old@a.example.jp new@b.example.jp\n"));
  CHECK(is_one_line_body(h + "no final line end"));
  CHECK(is_one_line_body("From: a@x\r\nSubject: x\r\n\r\nsubscribe\r\n\r\n"));

  CHECK_FALSE(is_one_line_body(h + "hello\nworld\n"));
  CHECK_FALSE(is_one_line_body(h + "hello\n\nsecond paragraph\n"));
  CHECK_FALSE(is_one_line_body(h + "こんにちは\n"));
  CHECK_FALSE(is_one_line_body(h + "hello!\n"));
  CHECK_FALSE(is_one_line_body(h + "hello\tworld\n"));
  // fml leaves '.' out so that a one-sentence post still goes out; only addresses hold one.
  CHECK_FALSE(is_one_line_body(h + "Thanks.\n"));
  CHECK_FALSE(is_one_line_body(h + "see example.jp\n"));
  CHECK_FALSE(is_one_line_body(h));
  CHECK_FALSE(is_one_line_body(h + "\n\n"));
  CHECK_FALSE(is_one_line_body(h + ":-, @\n"));  // no letter or digit
  CHECK_FALSE(is_one_line_body("From: a@x\nSubject: no body at all\n"));
}

TEST_CASE("one line mail body looks through base64 and quoted-printable text/plain only", "[list_message]") {
  const std::string plain = "From: a@x\nContent-Type: Text/Plain; charset=\"ISO-2022-JP\"\n";
  // "subscribe\n\n-- \nTaro\n" and "hello\nworld\n" in base64, folded oddly.
  CHECK(is_one_line_body(plain + "Content-Transfer-Encoding: BASE64\n\nc3Vic2NyaWJl\nCgotLSAKVGFybwo=\n"));
  CHECK_FALSE(is_one_line_body(plain + "Content-Transfer-Encoding: base64\n\naGVsbG8Kd29ybGQK\n"));
  // Quoted-printable: a soft break joins one line; "=0A" is a real line break.
  CHECK(is_one_line_body(plain + "Content-Transfer-Encoding: quoted-printable\n\nsubscr=\nibe =3D\n") == false);
  CHECK(is_one_line_body(plain + "Content-Transfer-Encoding: quoted-printable\n\nsubscr=\nibe me=40x.jp\n"));
  CHECK_FALSE(is_one_line_body(plain + "Content-Transfer-Encoding: quoted-printable\n\nhello=0Aworld\n"));
  CHECK_FALSE(is_one_line_body(plain + "Content-Transfer-Encoding: quoted-printable\n\n=E3=81=82\n"));
  CHECK(is_one_line_body(plain + "Content-Transfer-Encoding: 8bit\n\nsubscribe\n"));
  CHECK_FALSE(is_one_line_body(plain + "Content-Transfer-Encoding: x-uuencode\n\nsubscribe\n"));
  // Never multipart or another type, whatever the first part holds.
  CHECK_FALSE(is_one_line_body("From: a@x\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nsubscribe\n--b--\n"));
  CHECK_FALSE(is_one_line_body("From: a@x\nContent-Type: text/html\n\nsubscribe\n"));
}

// --- the Subject tag ---

TEST_CASE("the subject tag is the format with the name and a 5-digit number", "[list_message]") {
  CHECK(spool::format_subject_tag("[{list}:{seq}]", "ml", 1) == "[ml:00001]");
  CHECK(spool::format_subject_tag("({list} {seq})", "ml", 123456) == "(ml 123456)");
  CHECK(spool::format_subject_tag("{seq}-{list}-{list}", "a", 42) == "00042-a-a");
  CHECK(spool::format_subject_tag("[{other}]", "ml", 3) == "[{other}]");
}

TEST_CASE("a reply's subject is tagged once, with the new number in front", "[list_message]") {
  const char* f = "[{list}:{seq}]";
  CHECK(tag_subject("Re: [ml:00012] hello", f, "ml", 13) == "[ml:00013] Re: hello");
  CHECK(tag_subject("hello", f, "ml", 1) == "[ml:00001] hello");
  CHECK(tag_subject("", f, "ml", 7) == "[ml:00007]");
  CHECK(tag_subject("[ml:00012]", f, "ml", 13) == "[ml:00013]");
  CHECK(tag_subject("  [ml:12]   spaced  ", f, "ml", 13) == "[ml:00013] spaced");
  CHECK(tag_subject("Re: [ML:00012] case", f, "ml", 13) == "[ml:00013] Re: case");
  // Only the first tag goes; another list's tag stays.
  CHECK(tag_subject("Fwd: [other:00001] [ml:00002] [ml:00003] x", f, "ml", 4) ==
        "[ml:00004] Fwd: [other:00001] [ml:00003] x");
  CHECK(tag_subject("[ml:] not a tag", f, "ml", 2) == "[ml:00002] [ml:] not a tag");
  CHECK(tag_subject("[mlx:00001] other list", f, "ml", 2) == "[ml:00002] [mlx:00001] other list");
  // Regex metacharacters in a format are literal.
  CHECK(tag_subject("Re: (ml 00009) paren", "({list} {seq})", "ml", 10) == "(ml 00010) Re: paren");
  CHECK(tag_subject("a.b+c", "{list}.*", "a", 1) == "a.* a.b+c");
  // No format: unchanged.
  CHECK(tag_subject("  Re: [ml:00012] x", "", "ml", 13) == "  Re: [ml:00012] x");
}

TEST_CASE("a tag hidden in an encoded word leaves the subject as it is", "[list_message]") {
  // "=?UTF-8?B?W21sOjAwMDEyXSDjgZPjgpPjgavjgaHjga8=?=" is "[ml:00012] こんにちは".
  const std::string encoded = "Re: =?UTF-8?B?W21sOjAwMDEyXSDjgZPjgpPjgavjgaHjga8=?=";
  CHECK(spool::decode_header_value(encoded) == "Re: [ml:00012] こんにちは");
  CHECK(tag_subject(encoded, "[{list}:{seq}]", "ml", 13) == encoded);
  // An encoded subject without the tag is tagged (the tag stays outside the word).
  CHECK(tag_subject("=?UTF-8?B?44GT44KT44Gr44Gh44Gv?=", "[{list}:{seq}]", "ml", 1) ==
        "[ml:00001] =?UTF-8?B?44GT44KT44Gr44Gh44Gv?=");
}

TEST_CASE("the tag search stays linear on a hostile subject", "[list_message]") {
  const std::string digits(1000000, '7');
  const auto start = std::chrono::steady_clock::now();
  const std::string tagged = tag_subject("[ml:" + digits, "[{list}:{seq}]", "ml", 1);
  CHECK(tagged.substr(0, 11) == "[ml:00001] ");
  CHECK(tag_subject(digits, "{seq}x", "ml", 1) == "00001x " + digits);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

// --- the distributed post ---

namespace {
spool::ListPostHeaders post_fields(std::uint64_t seq) {
  spool::ListPostHeaders h;
  h.list_name = "ml";
  h.list_address = "ml@example.jp";
  h.bounces_address = "ml+bounces@example.jp";
  h.unsubscribe_address = "ml+unsubscribe@example.jp";
  h.subject_tag = "[{list}:{seq}]";
  h.seq = seq;
  return h;
}
} // namespace

TEST_CASE("the distributed header: our Return-Path first, the list's fields replaced and appended",
          "[list_message]") {
  const std::string original =
      "Return-Path: <alice@example.org>\n"
      "Delivered-To: ml@example.jp\n"
      "Received: from client.example.org\n"
      "\tby mail.example.org; Sat, 05 Dec 2026 09:59:00 +0000\n"
      "From: Alice <alice@example.org>\n"
      "Subject: Re: [ml:00011] a long subject that\n"
      " was folded\n"
      "List-Id: Old list <old.example.org>\n"
      "list-unsubscribe: <mailto:old-leave@example.org>,\n"
      "  <https://example.org/leave>\n"
      "Precedence: bulk\n"
      "X-Mail-Count: 11\n"
      "X-ML-Name: old\n"
      "Message-ID: <1@example.org>\n"
      "\n"
      "Subject: in the body\n";
  CHECK(spool::distribution_headers(original, post_fields(12)) ==
        "Return-Path: <ml+bounces@example.jp>\n"
        "Received: from client.example.org\n"
        "\tby mail.example.org; Sat, 05 Dec 2026 09:59:00 +0000\n"
        "From: Alice <alice@example.org>\n"
        "Subject: [ml:00012] Re: a long subject that was folded\n"
        "Message-ID: <1@example.org>\n"
        "X-ML-Name: ml\n"
        "X-Mail-Count: 12\n"
        "List-Id: <ml.example.jp>\n"
        "List-Post: <mailto:ml@example.jp>\n"
        "List-Unsubscribe: <mailto:ml+unsubscribe@example.jp>\n"
        "Precedence: list\n");
}

TEST_CASE("a post without Subject gets one; CRLF and a missing final line end give LF", "[list_message]") {
  const std::string tail =
      "X-ML-Name: ml\nX-Mail-Count: 7\nList-Id: <ml.example.jp>\nList-Post: <mailto:ml@example.jp>\n"
      "List-Unsubscribe: <mailto:ml+unsubscribe@example.jp>\nPrecedence: list\n";
  CHECK(spool::distribution_headers("From: a@x\r\nTo: ml@example.jp", post_fields(7)) ==
        "Return-Path: <ml+bounces@example.jp>\nFrom: a@x\nTo: ml@example.jp\nSubject: [ml:00007]\n" + tail);
  // No tag format: the Subject stays as written (folded too), and none is added.
  auto untagged = post_fields(7);
  untagged.subject_tag = "";
  CHECK(spool::distribution_headers("Subject: a\n b\nFrom: a@x\n", untagged) ==
        "Return-Path: <ml+bounces@example.jp>\nSubject: a\n b\nFrom: a@x\n" + tail);
  CHECK(spool::distribution_headers("From: a@x\n", untagged) ==
        "Return-Path: <ml+bounces@example.jp>\nFrom: a@x\n" + tail);
  // A second Subject and lines that are not fields are dropped.
  CHECK(spool::distribution_headers(" stray\nFrom a@x Sat Dec  5 2026\nSubject: one\nSubject: two\n", post_fields(7)) ==
        "Return-Path: <ml+bounces@example.jp>\nSubject: [ml:00007] one\n" + tail);
}

TEST_CASE("a tagged subject too long for one line is folded at its spaces", "[list_message]") {
  std::string words;
  for (int i = 0; i < 300; ++i) words += "word ";
  const std::string out = spool::distribution_headers("Subject: " + words + "\n", post_fields(1));
  for (const std::string& line : lines_of(out)) CHECK(line.size() <= 998);
  CHECK(header_value(out, "Subject") == "[ml:00001] " + words.substr(0, words.size() - 1));
}

// --- the mails the list writes ---

TEST_CASE("refusal reasons are the FAQ's texts", "[list_message]") {
  CHECK(spool::refusal_reason(ListRefusal::one_line_body) == "one line mail body");
  CHECK(spool::refusal_reason(ListRefusal::mail_bomb) == "mail bomb");
  CHECK(spool::refusal_reason(ListRefusal::too_large) == "Your mail exceeds the size this mailing list allows");
  CHECK(spool::refusal_reason(ListRefusal::not_member) == "you are not a member of this mailing list");
  CHECK(spool::refusal_reason(ListRefusal::rejected) == "rejected by the moderator");
  CHECK(spool::refusal_reason(ListRefusal::domain_full) == "the mailing list's domain is out of disk space");
  CHECK(spool::refusal_reason_ja(ListRefusal::too_large) ==
        "あなたのメールはこのメーリングリストが許すメールのサイズを越えています。");
  CHECK(spool::refusal_reason_ja(ListRefusal::one_line_body).find("「英数文字」1行のみの本文") == 0);
  CHECK(spool::refusal_reason_ja(ListRefusal::mail_bomb).find("連続してメール") != std::string_view::npos);
}

TEST_CASE("a too-large refusal names the reason, the sizes in KB and the FAQ's Japanese", "[list_message]") {
  const std::string m = spool::build_refusal_mail(context(), ListRefusal::too_large, post_headers,
                                                  12 * 1024 + 1, 10 * 1024);
  check_common(m, "auto-replied");
  CHECK(header_value(m, "From") == "<ml+bounces@example.jp>");
  CHECK(header_value(m, "To") == "<alice@example.org>");
  CHECK(header_value(m, "Subject") ==
        "[ml] your post was not distributed: Your mail exceeds the size this mailing list allows");
  CHECK_FALSE(header_value(m, "Reply-To"));
  CHECK(header_value(m, "Content-Type").value_or("").find("multipart/mixed; boundary=\"") == 0);

  const auto parts = parts_of(m);
  REQUIRE(parts.size() == 2);
  CHECK(header_value(parts[0], "Content-Type") == "text/plain; charset=UTF-8");
  CHECK(header_value(parts[0], "Content-Transfer-Encoding") == "base64");
  for (const std::string& line : lines_of(body_of(parts[0]))) CHECK(line.size() <= 76);
  const std::string text = text_of(parts[0]);
  CHECK(text.find("Your mail to ml@example.jp was not distributed to the list.\n") == 0);
  CHECK(text.find("Reason: Your mail exceeds the size this mailing list allows\n(your mail: 13 KB, limit: 10 KB)") !=
        std::string::npos);
  CHECK(text.find("\n\nml@example.jp 宛のメールはメーリングリストに配送されませんでした。\n") != std::string::npos);
  CHECK(text.find("理由: あなたのメールはこのメーリングリストが許すメールのサイズを越えています。"
                  "（あなたのメール: 13 KB、上限: 10 KB）\n") != std::string::npos);
  // English comes first.
  CHECK(text.find("Reason:") < text.find("理由:"));

  CHECK(header_value(parts[1], "Content-Type") == "text/rfc822-headers");
  CHECK(body_of(parts[1]) == post_headers + "\n");
}

TEST_CASE("one-line and mail-bomb refusals quote the FAQ's errors and advice", "[list_message]") {
  const std::string one = spool::build_refusal_mail(context(), ListRefusal::one_line_body, post_headers, 100, 0);
  CHECK(header_value(one, "Subject") == "[ml] your post was not distributed: one line mail body");
  const std::string one_text = text_of(parts_of(one)[0]);
  CHECK(one_text.find("Reason: one line mail body\n") != std::string::npos);
  CHECK(one_text.find("more than one line") != std::string::npos);
  CHECK(one_text.find("理由: 「英数文字」1行のみの本文") != std::string::npos);
  CHECK(one_text.find("KB") == std::string::npos);  // sizes only for too_large

  const std::string bomb = spool::build_refusal_mail(context(), ListRefusal::mail_bomb, post_headers, 100, 0);
  CHECK(header_value(bomb, "Subject") == "[ml] your post was not distributed: mail bomb");
  const std::string bomb_text = text_of(parts_of(bomb)[0]);
  CHECK(bomb_text.find("Reason: mail bomb\n") != std::string::npos);
  CHECK(bomb_text.find("too often in a short time") != std::string::npos);
  CHECK(bomb_text.find("3600") != std::string::npos);
  CHECK(bomb_text.find("連続してメール") != std::string::npos);
  CHECK(bomb_text.find("最大3600秒") != std::string::npos);
}

TEST_CASE("a refusal returns 8-bit original headers in base64, and nothing from them reaches our header",
          "[list_message]") {
  const std::string hostile = "Subject: 日本語\nX-Evil: a\rb\n";
  const std::string m =
      spool::build_refusal_mail(context("bob@example.net\nBcc: x@evil.example"), ListRefusal::not_member, hostile, 1, 1);
  CHECK(header_value(m, "To") == "<bob@example.netBcc:x@evil.example>");
  CHECK_FALSE(header_value(m, "Bcc"));
  const auto parts = parts_of(m);
  REQUIRE(parts.size() == 2);
  CHECK(header_value(parts[1], "Content-Type") == "text/rfc822-headers; charset=UTF-8");
  CHECK(header_value(parts[1], "Content-Transfer-Encoding") == "base64");
  CHECK(decode_base64(body_of(parts[1])) == hostile);
}

TEST_CASE("a moderation request: the confirm address to reply to and the post attached", "[list_message]") {
  const std::string confirm = "ml+confirm-4F2A9C00D1E2@example.jp";
  spool::ListMailContext c = context("moderator@example.net");
  const std::string m = spool::build_moderation_request(c, confirm, "alice@example.org", post, expires);
  check_common(m, "auto-generated");
  CHECK(header_value(m, "From") == "<" + confirm + ">");
  CHECK(header_value(m, "Reply-To") == "<" + confirm + ">");
  CHECK(header_value(m, "To") == "<moderator@example.net>");
  // The post's subject kept encoded after the ASCII prefix.
  CHECK(header_value(m, "Subject") == "[ml] approval needed: =?UTF-8?B?5pel5pys6Kqe?= lunch");
  CHECK(spool::decode_header_value(*header_value(m, "Subject")) == "[ml] approval needed: 日本語 lunch");

  const auto parts = parts_of(m);
  REQUIRE(parts.size() == 2);
  const std::string text = text_of(parts[0]);
  CHECK(flat(text).find("A post to ml@example.jp from alice@example.org needs a moderator's approval.") == 0);
  CHECK(flat(text).find("To approve it, reply to this mail (any reply, plain text or HTML, approves it; the text "
                        "does not matter), or run:") != std::string::npos);
  CHECK(text.find("mh-list approve ml@example.jp 4F2A9C00D1E2\n") != std::string::npos);
  CHECK(text.find("mh-list reject ml@example.jp 4F2A9C00D1E2\n") != std::string::npos);
  CHECK(text.find("expires on Sat, 12 Dec 2026 10:00:00 +0000.") != std::string::npos);
  CHECK(text.find("モデレーターの承認が必要です") != std::string::npos);

  CHECK(header_value(parts[1], "Content-Type") == "message/rfc822");
  CHECK_FALSE(header_value(parts[1], "Content-Transfer-Encoding"));
  const std::string attached = body_of(parts[1]);
  CHECK(attached == post.substr(post.find('\n') + 1));  // the post without its Return-Path
  CHECK(header_value(attached, "Message-ID") == "<1234@example.org>");
}

TEST_CASE("a moderation request for an 8-bit post says 8bit, and an 8-bit subject is encoded", "[list_message]") {
  const std::string raw = "Return-Path: <a@x>\n\tcontinued\r\nSubject: 会議\r\nFrom: a@x\r\n\r\n本文\r\n";
  const std::string m =
      spool::build_moderation_request(context("mod@x"), "ml+confirm-T@example.jp", "a@x", raw, expires);
  CHECK(header_value(m, "Content-Transfer-Encoding") == "8bit");
  const std::string subject = header_value(m, "Subject").value_or("");
  CHECK(subject.find("=?UTF-8?B?") == 0);
  CHECK(spool::decode_header_value(subject) == "[ml] approval needed: 会議");
  const auto parts = parts_of(m);
  REQUIRE(parts.size() == 2);
  CHECK(header_value(parts[1], "Content-Transfer-Encoding") == "8bit");
  CHECK(body_of(parts[1]) == "Subject: 会議\nFrom: a@x\n\n本文\n");
}

TEST_CASE("an unsubscribe request and the notice that follows", "[list_message]") {
  const std::string confirm = "ml+confirm-77AA@example.jp";
  const std::string r = spool::build_unsubscribe_request(context("bob@example.net"), confirm, expires);
  check_common(r, "auto-generated");
  CHECK(header_value(r, "From") == "<" + confirm + ">");
  CHECK(header_value(r, "Reply-To") == "<" + confirm + ">");
  CHECK(header_value(r, "To") == "<bob@example.net>");
  CHECK(header_value(r, "Content-Type") == "text/plain; charset=UTF-8");
  const std::string text = text_of(r);
  CHECK(flat(text).find("Someone (probably you) asked to remove bob@example.net from the mailing list ml@example.jp.") ==
        0);
  CHECK(text.find("To confirm, reply to this mail (any reply).\n") != std::string::npos);
  CHECK(text.find("If you did not ask, ignore this mail; nothing changes.\n") != std::string::npos);
  CHECK(text.find("This request expires on Sat, 12 Dec 2026 10:00:00 +0000.\n") != std::string::npos);
  CHECK(text.find("メーリングリスト ml@example.jp から bob@example.net を削除") != std::string::npos);

  const std::string n = spool::build_unsubscribed_notice(context("bob@example.net"));
  check_common(n, "auto-replied");
  CHECK(header_value(n, "From") == "<ml+bounces@example.jp>");
  CHECK_FALSE(header_value(n, "Reply-To"));
  CHECK(text_of(n) ==
        "bob@example.net has been removed from the mailing list ml@example.jp.\n\n"
        "bob@example.net はメーリングリスト ml@example.jp から削除されました。\n");
}

TEST_CASE("two mails never share a Message-ID or a boundary", "[list_message]") {
  const std::string a = spool::build_refusal_mail(context(), ListRefusal::mail_bomb, post_headers, 1, 1);
  const std::string b = spool::build_refusal_mail(context(), ListRefusal::mail_bomb, post_headers, 1, 1);
  CHECK(header_value(a, "Message-ID") != header_value(b, "Message-ID"));
  CHECK(header_value(a, "Content-Type") != header_value(b, "Content-Type"));
}

// --- delivery-status notifications ---

namespace {
const std::string dsn_one_failed =
    "Return-Path: <>\n"
    "From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\n"
    "To: ml+bounces@example.jp\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"4C2F1E0A.1796464800/mx.remote.example\"\n"
    "\n"
    "This is a MIME-encapsulated message.\n"
    "\n"
    "--4C2F1E0A.1796464800/mx.remote.example\n"
    "Content-Description: Notification\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "Action: failed\n"
    "Final-Recipient: rfc822; not-this-one@example.net\n"
    "\n"
    "--4C2F1E0A.1796464800/mx.remote.example\n"
    "Content-Description: Delivery report\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.remote.example\n"
    "X-Postfix-Queue-ID: 4C2F1E0A\n"
    "Arrival-Date: Sat,  5 Dec 2026 10:00:00 +0900 (JST)\n"
    "\n"
    "Final-Recipient: rfc822; gone@remote.example\n"
    "Original-Recipient: rfc822;gone@remote.example\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "Remote-MTA: dns; mx2.remote.example\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <gone@remote.example>: Recipient address\n"
    "    rejected: User unknown in local recipient table\n"
    "\n"
    "Final-Recipient: rfc822; here@remote.example\n"
    "Action: delivered\n"
    "Status: 2.0.0\n"
    "\n"
    "--4C2F1E0A.1796464800/mx.remote.example\n"
    "Content-Description: Undelivered Message Headers\n"
    "Content-Type: text/rfc822-headers\n"
    "\n"
    "From: alice@example.org\n"
    "\n"
    "--4C2F1E0A.1796464800/mx.remote.example--\n";
} // namespace

TEST_CASE("failed recipients of an RFC 3464 report: the failed one only", "[list_message]") {
  CHECK(spool::failed_recipients(dsn_one_failed) == std::vector<std::string>{"gone@remote.example"});
  std::string crlf;
  for (const std::string& line : lines_of(dsn_one_failed)) crlf += line + "\r\n";
  CHECK(spool::failed_recipients(crlf) == std::vector<std::string>{"gone@remote.example"});
}

TEST_CASE("failed recipients: Original-Recipient as fallback, odd case, brackets, folding, once each",
          "[list_message]") {
  const std::string dsn =
      "Content-Type: multipart/report; boundary=b\n\n--b\n"
      "content-type: Message/Delivery-Status\n\n"
      "Reporting-MTA: dns; x\n\n"
      "Original-Recipient: RFC822; <First@Example.org>\n"
      "ACTION: Failed\n\n"
      "Final-Recipient: rfc822;\n  folded@example.org\n"
      "Action: failed (permanent)\n\n"
      "Final-Recipient: rfc822; first@example.org\n"
      "Action: failed\n\n"
      "Final-Recipient: rfc822; later@example.org\n"
      "Action: delayed\n\n"
      "Final-Recipient: x400; whatever\n"
      "Action: failed\n"
      "--b--\n";
  CHECK(spool::failed_recipients(dsn) == std::vector<std::string>{"First@Example.org", "folded@example.org"});
}

TEST_CASE("failed recipients of our own DSNs are read back", "[list_message]") {
  spool::DsnReport r;
  r.reporting_mta = "mail.example.jp";
  r.original_sender = "ml+bounces@example.jp";
  r.now = now;
  spool::DsnRecipient a, b;
  a.address = "a@remote.example";
  a.diagnostic = "550 5.1.1 unknown";
  b.address = "b@other.example";
  b.diagnostic = "554 5.7.1 refused";
  r.recipients = {a, b};
  r.original_headers = post_headers;
  CHECK(spool::failed_recipients(spool::build_dsn(r)) ==
        std::vector<std::string>{"a@remote.example", "b@other.example"});
  r.delayed = true;
  CHECK(spool::failed_recipients(spool::build_dsn(r)).empty());
}

TEST_CASE("failed recipients: none for ordinary mail, bounded on garbage and huge reports", "[list_message]") {
  CHECK(spool::failed_recipients(post).empty());
  CHECK(spool::failed_recipients("").empty());
  CHECK(spool::failed_recipients("Action: failed\nFinal-Recipient: rfc822; a@b\n").empty());

  const auto start = std::chrono::steady_clock::now();
  std::string garbage;
  garbage.reserve(2 * 1024 * 1024);
  for (std::uint32_t x = 1; garbage.size() < 2 * 1024 * 1024;) {
    x = x * 1103515245u + 12345u;
    garbage += static_cast<char>(x >> 24);
  }
  CHECK(spool::failed_recipients(garbage).empty());

  // 2 MiB of failed recipients: at most 1,000 come back, all from the first MiB.
  std::string huge = "Content-Type: message/delivery-status\n\n";
  for (int i = 0; huge.size() < 2 * 1024 * 1024; ++i)
    huge += "Final-Recipient: rfc822; r" + std::to_string(i) + "@example.org\nAction: failed\n\n";
  const auto many = spool::failed_recipients(huge);
  CHECK(many.size() == 1000);
  CHECK(many.front() == "r0@example.org");
  CHECK(many.back() == "r999@example.org");
  // Past the first MiB nothing is read: a report that starts there is not seen.
  const std::string late = std::string(1024 * 1024, 'x') + "\n" + dsn_one_failed;
  CHECK(spool::failed_recipients(late).empty());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}
