// inspection_test.cc — inspect_message + apply_edits with fake scanners (test_support.h):
// clean mail untouched, an infected part removed and the notice put at the top of the
// first text part in every charset / transfer-encoding combination SPEC §8 names, every
// other part byte-identical, limits (archives, MIME parts and depth) and MIME bombs that
// must finish, scanner failure, and decode_file_name for RFC 2231 / RFC 2047 names.
#include "content/inspection.h"
#include "content/notice.h"
#include "content/test_archives.h"
#include "content/test_support.h"

#include <spool/text.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

using namespace mh::content;
using namespace mh::content::testing;
using Verdict = Inspection::Verdict;

namespace {

// EICAR in 76-column base64 lines, as a mail client attaches it.
const std::string eicar_base64 =
    "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNU\n"
    "LUZJTEUhJEgrSCo=\n";
const std::string png_part =
    "X-Part: image\n"
    "Content-Type: image/png; name=\"dot.png\"\n"
    "Content-Disposition: attachment; filename=\"dot.png\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n";

std::string virus_part(const std::string& disposition = "attachment; filename=\"eicar.com\"",
                       const std::string& type = "application/octet-stream; name=\"eicar.com\"") {
  return "X-Part: virus\nContent-Type: " + type + "\nContent-Disposition: " + disposition +
         "\nContent-Transfer-Encoding: base64\n\n" + eicar_base64;
}

const std::string top_header =
    "Return-Path: <alice@example.org>\n"
    "From: Alice <alice@example.org>\n"
    "To: bob@example.net\n"
    "Subject: report\n"
    "MIME-Version: 1.0\n";

// Each "\n" of `text` as `eol` (the tests are written with "\n", run with both).
std::string with_eol(std::string_view text, std::string_view eol) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += eol;
    else out.push_back(c);
  }
  return out;
}

// A multipart/mixed body with boundary "BB" around `parts` (each ends in "\n").
std::string multipart(const std::vector<std::string>& parts, const std::string& type = "multipart/mixed") {
  std::string m = top_header + "Content-Type: " + type + "; boundary=\"BB\"\n\nThis is a multi-part message in MIME format.\n";
  for (const std::string& p : parts) m += "--BB\n" + p;
  return m + "--BB--\nepilogue\n";
}

Inspection inspect(std::string_view message, VirusScanner& scanner, const ContentLimits& limits = {}) {
  return inspect_message(message, scanner, limits);
}

std::string edited(std::string_view message, const Inspection& r) {
  std::string out;
  apply_edits(message, r.edits, [&](std::string_view chunk) {
    CHECK(chunk.size() <= 65536);
    out.append(chunk);
  });
  return out;
}

// inspection.h's promise about edits: sorted by offset, not overlapping, inside the message.
void check_edits(const Inspection& r, std::size_t message_size) {
  std::uint64_t end = 0;
  for (const Edit& e : r.edits) {
    CHECK(e.offset >= end);
    CHECK(e.offset + e.length <= message_size);
    end = e.offset + e.length;
  }
}

// Cleans `message` and checks what every cleaned result must satisfy: edits in order,
// the marker gone, and the output clean when inspected again.
std::string clean(std::string_view message, std::size_t expected_findings = 1) {
  MarkerScanner scanner;
  const Inspection r = inspect(message, scanner);
  INFO(r.detail);
  REQUIRE(r.verdict == Verdict::cleaned);
  REQUIRE(r.findings.size() == expected_findings);
  for (const Finding& f : r.findings) CHECK(f.virus == eicar_name);
  check_edits(r, message.size());
  const std::string out = edited(message, r);
  CHECK(out.find(eicar_base64.substr(0, 40)) == std::string::npos);
  CHECK(out.find("X-Part: virus") == std::string::npos);
  MarkerScanner again;
  const Inspection second = inspect(out, again);
  INFO(second.detail);
  CHECK(second.verdict == Verdict::clean);
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

struct RawPart {
  std::string header;  // from its first field to the empty line (exclusive)
  std::string body;    // after the empty line up to the line end before the next delimiter
};

// The part whose header starts with the line `marker` ("X-Part: text").
std::optional<RawPart> part_with(std::string_view message, const std::string& marker, std::string_view eol) {
  const auto at = message.find(std::string(eol) + marker + std::string(eol));
  if (at == std::string_view::npos) return std::nullopt;
  const std::string blank = std::string(eol) + std::string(eol);
  const auto header_end = message.find(blank, at);
  const auto body = header_end + blank.size();
  const auto next = message.find(std::string(eol) + "--", body);
  return RawPart{std::string(message.substr(at + eol.size(), header_end - at - eol.size())),
                 std::string(message.substr(body, next - body))};
}

// The unfolded value of header field `name` (lower case), "" when absent.
std::string field(std::string_view header, std::string_view eol, const std::string& name) {
  const std::string h = std::string(eol) + lower(std::string(header));
  const auto at = h.find(std::string(eol) + lower(name) + ":");
  if (at == std::string::npos) return "";
  std::string value;
  for (auto i = at + eol.size() + name.size() + 1;;) {
    const auto end = h.find(eol, i);
    value += h.substr(i, end == std::string::npos ? end : end - i);
    if (end == std::string::npos || end + eol.size() >= h.size() || (h[end + eol.size()] != ' ' && h[end + eol.size()] != '\t'))
      break;
    i = end + eol.size();
  }
  const auto first = value.find_first_not_of(" \t");
  return first == std::string::npos ? "" : value.substr(first);
}

std::string charset_of(const std::string& content_type) {
  const auto at = content_type.find("charset=");
  if (at == std::string::npos) return "";
  std::string v = content_type.substr(at + 8);
  v = v.substr(0, v.find_first_of("; \t"));
  v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
  return v;
}

std::string decode_transfer(const std::string& body, const std::string& cte) {
  if (cte == "base64") return decode_base64(body);
  if (cte == "quoted-printable") return decode_quoted_printable(body);
  return body;
}

// The text of a part: transfer encoding and charset undone (UTF-8); "\x01" when invalid.
std::string text_of(const RawPart& p, std::string_view eol) {
  const std::string cte = field(p.header, eol, "Content-Transfer-Encoding");
  std::string charset = charset_of(field(p.header, eol, "Content-Type"));
  if (charset.empty()) charset = "us-ascii";
  return decode_charset(decode_transfer(p.body, cte), charset).value_or("\x01undecodable");
}

// The notice block for `findings`: two lines each, then the empty line.
std::string notice_block(const std::vector<Finding>& findings, std::string_view eol) {
  std::string block;
  for (const Finding& f : findings)
    for (const std::string& line : notice_lines(f)) block += line + std::string(eol);
  return block + std::string(eol);
}

const Finding eicar_com{std::string(eicar_name), "eicar.com", "application/octet-stream"};

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// The text part of a charset / transfer-encoding case, "\n" line ends.
std::string text_part(const std::string& charset, const std::string& cte, const std::string& utf8_text,
                      std::string_view eol) {
  std::string header = "X-Part: text\nContent-Type: text/plain";
  if (!charset.empty()) header += "; charset=" + charset;
  if (!cte.empty()) header += "\nContent-Transfer-Encoding: " + cte;
  const auto bytes = encode_charset(with_eol(utf8_text, eol), charset.empty() ? "us-ascii" : charset);
  REQUIRE(bytes);
  std::string body = *bytes;
  if (cte == "base64") body = encode_base64_lines(body, eol);
  if (cte == "quoted-printable") body = encode_quoted_printable(body, eol);
  // Back to "\n": with_eol() turns the whole message into `eol` again.
  std::string lf;
  for (std::size_t i = 0; i < body.size(); ++i)
    if (!(body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n')) lf.push_back(body[i]);
  return header + "\n\n" + lf;
}

} // namespace

TEST_CASE("inspect_message: clean multipart mail is left alone, one scan per leaf", "[content][inspection]") {
  const std::string message = with_eol(
      multipart({"X-Part: text\nContent-Type: text/plain; charset=UTF-8\n\nこんにちは\n", png_part,
                 "X-Part: pdf\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n"
                 "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n"}),
      "\r\n");
  MarkerScanner scanner;
  const Inspection r = inspect(message, scanner);
  CHECK(r.verdict == Verdict::clean);
  CHECK(r.edits.empty());
  CHECK(r.findings.empty());
  CHECK(r.parts_scanned == 3);
  CHECK(scanner.calls == 3);
  CHECK(r.expanded_bytes == message.size());
  CHECK(edited(message, r) == message);
}

TEST_CASE("inspect_message: the scanner sees each part decoded", "[content][inspection]") {
  const std::string single = top_header + "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=\n";
  MarkerScanner scanner;
  CHECK(inspect(with_eol(single, "\r\n"), scanner).verdict == Verdict::clean);
  CHECK(scanner.last == "hello world");

  // EICAR hidden by quoted-printable ("=58" is 'X') is found once decoded.
  const std::string qp = with_eol(
      multipart({"X-Part: text\nContent-Type: text/plain\n\nsee attached\n",
                 "X-Part: virus\nContent-Type: text/plain; name=\"e.txt\"\nContent-Disposition: attachment; "
                 "filename=\"e.txt\"\nContent-Transfer-Encoding: quoted-printable\n\n=58" +
                     std::string(eicar.substr(1)) + "\n"}),
      "\r\n");
  MarkerScanner qp_scanner;
  const Inspection r = inspect(qp, qp_scanner);
  REQUIRE(r.verdict == Verdict::cleaned);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].file_name == "e.txt");
}

TEST_CASE("inspect_message: the notice is written in the text part's charset and encoding", "[content][inspection]") {
  struct Case {
    std::string charset, cte;  // "" = no such parameter / field
    std::string text;          // UTF-8, "\n" line ends
    std::string out_charset, out_cte;
  };
  const std::string ja = "こんにちは。\n添付をご確認ください。\n";
  const std::string en = "Hello Bob,\nsee the attachment.\n";
  const Case cases[] = {
      {"UTF-8", "8bit", ja, "utf-8", "8bit"},
      {"UTF-8", "base64", ja, "utf-8", "base64"},
      {"UTF-8", "quoted-printable", ja, "utf-8", "quoted-printable"},
      {"ISO-2022-JP", "7bit", ja, "iso-2022-jp", "7bit"},
      {"ISO-2022-JP", "", ja, "iso-2022-jp", ""},
      {"ISO-2022-JP", "base64", ja, "iso-2022-jp", "base64"},
      {"Shift_JIS", "8bit", ja, "shift_jis", "8bit"},
      {"Shift_JIS", "base64", ja, "shift_jis", "base64"},
      {"EUC-JP", "8bit", ja, "euc-jp", "8bit"},
      {"EUC-JP", "quoted-printable", ja, "euc-jp", "quoted-printable"},
      // Charsets that cannot carry the Japanese line: relabelled UTF-8, 7bit becomes QP.
      {"us-ascii", "7bit", en, "utf-8", "quoted-printable"},
      {"us-ascii", "", en, "utf-8", "quoted-printable"},
      {"", "7bit", en, "utf-8", "quoted-printable"},
      {"us-ascii", "base64", en, "utf-8", "base64"},
      {"ISO-8859-1", "8bit", "Café crème\n", "utf-8", "8bit"},
      {"ISO-8859-1", "quoted-printable", "Café crème\n", "utf-8", "quoted-printable"},
  };
  for (const Case& c : cases) {
    for (std::string_view eol : {std::string_view("\r\n"), std::string_view("\n")}) {
      INFO("charset '" << c.charset << "' cte '" << c.cte << "' eol " << eol.size());
      const std::string message =
          with_eol(multipart({text_part(c.charset, c.cte, c.text, eol), virus_part(), png_part}), eol);
      const std::string out = clean(message);

      const auto before = part_with(message, "X-Part: text", eol);
      const auto after = part_with(out, "X-Part: text", eol);
      REQUIRE(before);
      REQUIRE(after);
      const std::string type = field(after->header, eol, "Content-Type");
      CHECK(type.rfind("text/plain", 0) == 0);
      CHECK(charset_of(type) == c.out_charset);
      const std::string cte = field(after->header, eol, "Content-Transfer-Encoding");
      if (c.out_cte.empty()) CHECK((cte.empty() || cte == "7bit"));  // 7bit, said or not
      else CHECK(cte == c.out_cte);
      CHECK(text_of(*after, eol) == notice_block({eicar_com}, eol) + text_of(*before, eol));
      if (c.out_cte == "7bit" || c.out_cte.empty() || c.out_cte == "quoted-printable" || c.out_cte == "base64")
        CHECK_FALSE(has_8bit(after->body));
      if (c.out_cte == "quoted-printable" || c.out_cte == "base64")
        for (std::size_t end, i = 0; (end = after->body.find(eol, i)) != std::string::npos; i = end + eol.size())
          CHECK(end - i <= 76);

      // Everything else as it was: the top header, preamble, the image part, the end.
      const auto first_part = message.find(std::string(eol) + "--BB" + std::string(eol));
      CHECK(out.substr(0, first_part) == message.substr(0, first_part));
      const auto image = part_with(message, "X-Part: image", eol);
      REQUIRE(image);
      const std::string image_raw = std::string(eol) + "--BB" + std::string(eol) + image->header +
                                    std::string(eol) + std::string(eol) + image->body + std::string(eol) +
                                    "--BB--" + std::string(eol) + "epilogue" + std::string(eol);
      CHECK(out.size() > image_raw.size());
      CHECK(out.substr(out.size() - image_raw.size()) == image_raw);
    }
  }
}

TEST_CASE("inspect_message: the part is removed with its delimiter, whatever its position", "[content][inspection]") {
  const std::string text = "X-Part: text\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nbody\n";
  const std::string expected = with_eol(top_header +
                                            "Content-Type: multipart/mixed; boundary=\"BB\"\n\nThis is a multi-part message "
                                            "in MIME format.\n--BB\n" + text.substr(0, text.size() - 5),
                                        "\r\n") +
                               with_eol(notice_block({eicar_com}, "\n") + "body\n", "\r\n");
  for (const auto& parts : {std::vector<std::string>{text, virus_part()}, std::vector<std::string>{text, virus_part(), png_part},
                            std::vector<std::string>{virus_part(), text, png_part}}) {
    const std::string message = with_eol(multipart(parts), "\r\n");
    const std::string out = clean(message);
    std::size_t delimiters = 0;
    for (std::size_t at = 0; (at = out.find("\r\n--BB\r\n", at)) != std::string::npos; ++at) ++delimiters;
    CHECK(delimiters == parts.size() - 1);
    if (parts.front() == text) CHECK(out.substr(0, expected.size()) == expected);
    CHECK(out.find("\r\n--BB--\r\nepilogue\r\n") == out.size() - 20);
  }
}

TEST_CASE("inspect_message: two infected parts give two notices, in order", "[content][inspection]") {
  const std::string message = with_eol(
      multipart({"X-Part: text\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nbody\n",
                 virus_part("attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.exe", "application/x-msdownload"),
                 png_part,
                 virus_part("attachment; filename=\"=?ISO-2022-JP?B?GyRCQEE1YT1xGyhCLmV4ZQ==?=\"", "application/x-msdownload")}),
      "\r\n");
  const std::string out = clean(message, 2);
  const std::vector<Finding> findings{{std::string(eicar_name), "請求書.exe", "application/x-msdownload"},
                                      {std::string(eicar_name), "請求書.exe", "application/x-msdownload"}};
  const auto text = part_with(out, "X-Part: text", "\r\n");
  REQUIRE(text);
  CHECK(text->body == notice_block(findings, "\r\n") + "body");
  CHECK(part_with(out, "X-Part: image", "\r\n"));
}

TEST_CASE("inspect_message: a text attachment or an attached message's text does not get the notice", "[content][inspection]") {
  const std::string inner =
      "X-Part: forwarded\nContent-Type: message/rfc822\n\n"
      "From: carol@example.com\nSubject: inner\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"in\"\n\n"
      "--in\nX-Part: inner-text\nContent-Type: text/plain; charset=UTF-8\n\ninner text\n"
      "--in\n" + virus_part() + "--in--\n";
  const std::string text_attachment =
      "X-Part: notes\nContent-Type: text/plain; charset=UTF-8\nContent-Disposition: attachment; filename=notes.txt\n\nnotes\n";
  const std::string body = "X-Part: text\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nbody\n";
  const std::string message = with_eol(multipart({inner, text_attachment, body}), "\r\n");
  const std::string out = clean(message);

  const auto text = part_with(out, "X-Part: text", "\r\n");
  REQUIRE(text);
  CHECK(text->body == notice_block({eicar_com}, "\r\n") + "body");
  // The nested message lost its infected part, nothing else; the other texts are unchanged.
  for (const char* marker : {"X-Part: inner-text", "X-Part: notes"}) {
    INFO(marker);
    const auto a = part_with(message, marker, "\r\n"), b = part_with(out, marker, "\r\n");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->header == b->header);
    CHECK(a->body == b->body);
  }
  CHECK(out.find("\r\n--in--\r\n") != std::string::npos);
}

TEST_CASE("inspect_message: the first text part may be inside multipart/alternative", "[content][inspection]") {
  const std::string alternative =
      "Content-Type: multipart/alternative; boundary=\"alt\"\n\n"
      "--alt\nX-Part: text\nContent-Type: text/plain; charset=UTF-8\n\nplain\n"
      "--alt\nX-Part: html\nContent-Type: text/html; charset=UTF-8\n\n<p>html</p>\n--alt--\n";
  const std::string message = with_eol(multipart({alternative, virus_part()}), "\r\n");
  const std::string out = clean(message);
  const auto text = part_with(out, "X-Part: text", "\r\n");
  REQUIRE(text);
  // A 7bit UTF-8 part: the Japanese line needs 8 bits, so it becomes quoted-printable.
  CHECK(field(text->header, "\r\n", "Content-Transfer-Encoding") == "quoted-printable");
  CHECK(text_of(*text, "\r\n") == notice_block({eicar_com}, "\r\n") + "plain");
  const auto html = part_with(out, "X-Part: html", "\r\n");
  REQUIRE(html);
  CHECK(html->body == "<p>html</p>");
}

TEST_CASE("inspect_message: a text part without a body", "[content][inspection]") {
  // Found by tests/fuzz/mime_walk (corpus/mime_walk/regression_text_part_without_body):
  // GMime gives such a part no content at all.
  const std::string message = with_eol(multipart({"X-Part: text\nX-Note: a part without a body\n", virus_part()}), "\r\n");
  (void)clean(message);  // cleaned, the copy clean: where the notice goes is the core's choice
}

TEST_CASE("inspect_message: without a text part a new first part holds the notice", "[content][inspection]") {
  const std::string message = with_eol(multipart({png_part, virus_part()}), "\r\n");
  const std::string out = clean(message);
  // The new part comes first: between the preamble and the image part.
  const auto first = out.find("\r\n--BB\r\n");
  const auto image = out.find("\r\n--BB\r\nX-Part: image\r\n");
  REQUIRE(first != std::string::npos);
  REQUIRE(image != std::string::npos);
  REQUIRE(first < image);
  const std::string part = out.substr(first + 8, image - first - 8);
  const auto blank = part.find("\r\n\r\n");
  REQUIRE(blank != std::string::npos);
  const std::string header = part.substr(0, blank);
  CHECK(field(header, "\r\n", "Content-Type").rfind("text/plain", 0) == 0);
  CHECK(charset_of(field(header, "\r\n", "Content-Type")) == "utf-8");
  CHECK(field(header, "\r\n", "Content-Transfer-Encoding") == "base64");
  const std::string notice = decode_base64(part.substr(blank + 4));
  const std::string lines = notice_block({eicar_com}, "\r\n");
  CHECK(notice.substr(0, lines.size() - 2) == lines.substr(0, lines.size() - 2));
  CHECK(out.substr(image) == "\r\n--BB\r\n" + with_eol(png_part, "\r\n") + "--BB--\r\nepilogue\r\n");
}

TEST_CASE("inspect_message: a message whose only part is infected becomes the notice", "[content][inspection]") {
  const std::string named = top_header +
                            "Content-Type: application/octet-stream; name=\"eicar.com\"\nContent-Transfer-Encoding: base64\n\n" +
                            eicar_base64;
  const std::string unnamed = top_header + "Content-Type: text/plain\n\n" + std::string(eicar) + "\n";
  const Finding unnamed_finding{std::string(eicar_name), "", "text/plain"};
  for (const auto& [raw, finding] : {std::pair{named, eicar_com}, std::pair{unnamed, unnamed_finding}}) {
    for (std::string_view eol : {std::string_view("\r\n"), std::string_view("\n")}) {
      const std::string message = with_eol(raw, eol);
      const std::string out = clean(message);
      const std::string blank = std::string(eol) + std::string(eol);
      const auto end = out.find(blank);
      REQUIRE(end != std::string::npos);
      const std::string header = out.substr(0, end);
      CHECK(header.find("From: Alice <alice@example.org>") != std::string::npos);
      CHECK(header.find("Subject: report") != std::string::npos);
      CHECK(field(header, eol, "Content-Type").rfind("text/plain", 0) == 0);
      CHECK(charset_of(field(header, eol, "Content-Type")) == "utf-8");
      const RawPart whole{header, out.substr(end + blank.size())};
      const std::string text = text_of(whole, eol);
      const std::string lines = notice_block({finding}, eol);
      CHECK(text.substr(0, lines.size() - eol.size()) == lines.substr(0, lines.size() - eol.size()));
    }
  }
}

TEST_CASE("inspect_message: a header line that is no field does not survive the rewrite", "[content][inspection]") {
  // Found by tests/fuzz/mime_walk (corpus/mime_walk/regression_single_part_junk_header):
  // the only part was replaced, but the line without a colon stayed at the top and the
  // copy, read again, was still infected.
  const std::string message = "Content-:\n" + std::string(eicar) + "\n\n" + std::string(eicar);
  (void)clean(message);
}

TEST_CASE("inspect_message: no verdict for a part means failed, never clean", "[content][inspection]") {
  const std::string message = with_eol(multipart({"X-Part: text\nContent-Type: text/plain\n\nhi\n", png_part}), "\r\n");
  FailingScanner failing;
  const Inspection r = inspect(message, failing);
  CHECK(r.verdict == Verdict::failed);
  CHECK(r.edits.empty());
  CHECK(failing.calls >= 1);
  CHECK_FALSE(r.detail.empty());
}

TEST_CASE("inspect_message: archives count towards limits.expanded_content", "[content][inspection][archive]") {
  const std::string zip = make_zip({{"data.bin", std::string(5000, '\0')}});
  const std::string message = with_eol(
      multipart({"X-Part: text\nContent-Type: text/plain\n\nhi\n",
                 "X-Part: zip\nContent-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n" +
                     encode_base64_lines(zip, "\n")}),
      "\r\n");
  MarkerScanner scanner;
  ContentLimits limits;
  limits.expanded_content = message.size() + 6000;
  const Inspection ok = inspect(message, scanner, limits);
  CHECK(ok.verdict == Verdict::clean);
  CHECK(ok.expanded_bytes == message.size() + 5000);

  limits.expanded_content = message.size() + 4000;
  const Inspection big = inspect(message, scanner, limits);
  CHECK(big.verdict == Verdict::rejected);
  CHECK(big.edits.empty());
  CHECK_FALSE(big.detail.empty());
}

TEST_CASE("inspect_message: a gzip of zeros counts towards limits.expanded_content", "[content][inspection][archive]") {
  const std::string message = with_eol(
      multipart({"X-Part: gz\nContent-Type: application/gzip; name=zeros.gz\nContent-Transfer-Encoding: base64\n\n" +
                 encode_base64_lines(make_gzip_of(4 << 20), "\n")}),
      "\r\n");
  MarkerScanner scanner;
  ContentLimits limits;
  limits.expanded_content = message.size() + (1 << 20);
  const Inspection r = inspect(message, scanner, limits);
  CHECK(r.verdict == Verdict::rejected);
  CHECK(r.expanded_bytes > limits.expanded_content);
}

TEST_CASE("inspect_message: archives nested past limits.archive_depth are rejected", "[content][inspection][archive]") {
  const auto message_with = [](const std::string& zip) {
    return with_eol(multipart({"X-Part: zip\nContent-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n" +
                               encode_base64_lines(zip, "\n")}),
                    "\r\n");
  };
  MarkerScanner scanner;
  CHECK(inspect(message_with(make_nested_zip(3, "x")), scanner).verdict == Verdict::clean);
  CHECK(inspect(message_with(make_nested_zip(12, "x")), scanner).verdict == Verdict::rejected);
  ContentLimits shallow;
  shallow.archive_depth = 2;
  CHECK(inspect(message_with(make_nested_zip(3, "x")), scanner, shallow).verdict == Verdict::rejected);
}

TEST_CASE("inspect_message: 42.zip-style nesting stops at the budget", "[content][inspection][archive]") {
  // 16 zips of 16 entries of 1 MiB zeros: 256 MiB expanded from a few hundred kilobytes.
  std::vector<ArchiveEntry> mid(16, {"", make_zip(std::vector<ArchiveEntry>(16, {"z", std::string(1 << 20, '\0')}))});
  for (std::size_t i = 0; i < mid.size(); ++i) mid[i].name = "m" + std::to_string(i) + ".zip";
  const std::string bomb = make_zip(mid);
  const std::string message = with_eol(
      multipart({"X-Part: zip\nContent-Type: application/zip; name=42.zip\nContent-Transfer-Encoding: base64\n\n" +
                 encode_base64_lines(bomb, "\n")}),
      "\r\n");
  MarkerScanner scanner;
  ContentLimits limits;
  limits.expanded_content = 32 << 20;
  const Inspection r = inspect(message, scanner, limits);
  CHECK(r.verdict == Verdict::rejected);
  CHECK(r.expanded_bytes > limits.expanded_content);
  CHECK(r.expanded_bytes < limits.expanded_content + (16u << 20));
}

TEST_CASE("inspect_message: limits.mime_parts and limits.mime_depth", "[content][inspection][limits]") {
  std::vector<std::string> five;
  for (int i = 0; i < 5; ++i) five.push_back("X-Part: p" + std::to_string(i) + "\nContent-Type: text/plain\n\nx\n");
  const std::string message = with_eol(multipart(five), "\r\n");
  ContentLimits limits;
  limits.mime_parts = 5;
  MarkerScanner scanner;
  CHECK(inspect(message, scanner, limits).verdict == Verdict::clean);
  limits.mime_parts = 4;
  MarkerScanner counted;
  const Inspection r = inspect(message, counted, limits);
  CHECK(r.verdict == Verdict::rejected);
  CHECK(counted.calls <= 4);

  // multipart inside multipart, `levels` deep.
  const auto nested = [](int levels) {
    std::string m = top_header;
    for (int i = 0; i < levels; ++i) m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" + std::to_string(i) + "\n";
    m += "Content-Type: text/plain\n\nx\n";
    for (int i = levels - 1; i >= 0; --i) m += "--b" + std::to_string(i) + "--\n";
    return with_eol(m, "\r\n");
  };
  ContentLimits depth;
  depth.mime_depth = 5;
  CHECK(inspect(nested(2), scanner, depth).verdict == Verdict::clean);
  CHECK(inspect(nested(10), scanner, depth).verdict == Verdict::rejected);
}

TEST_CASE("inspect_message: MIME bombs finish without a scan per part or deep recursion", "[content][inspection][bomb]") {
  SECTION("100,000 parts in one multipart") {
    std::string m = top_header + "Content-Type: multipart/mixed; boundary=\"B\"\n\n";
    for (int i = 0; i < 100000; ++i) m += "--B\nContent-Type: text/plain\n\nx\n";
    m += "--B--\n";
    MarkerScanner scanner;
    const Inspection r = inspect(with_eol(m, "\r\n"), scanner);
    CHECK(r.verdict == Verdict::rejected);
    CHECK(scanner.calls <= ContentLimits{}.mime_parts);
  }
  SECTION("10,000 nested multiparts") {
    std::string m = top_header;
    for (int i = 0; i < 10000; ++i) m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" + std::to_string(i) + "\n";
    m += "Content-Type: text/plain\n\nx\n";
    for (int i = 9999; i >= 0; --i) m += "--b" + std::to_string(i) + "--\n";
    MarkerScanner scanner;
    CHECK(inspect(with_eol(m, "\r\n"), scanner).verdict == Verdict::rejected);
  }
  SECTION("10,000 nested message/rfc822") {
    std::string m = top_header;
    for (int i = 0; i < 10000; ++i) m += "Content-Type: message/rfc822\n\nSubject: level " + std::to_string(i) + "\n";
    m += "Content-Type: text/plain\n\n" + std::string(eicar) + "\n";
    MarkerScanner scanner;
    CHECK(inspect(with_eol(m, "\r\n"), scanner).verdict == Verdict::rejected);
  }
  SECTION("a 1 MB header line") {
    const std::string subject = top_header + "X-Long: " + std::string(1 << 20, 'a') + "\nContent-Type: text/plain\n\nhello\n";
    MarkerScanner scanner;
    CHECK(inspect(with_eol(subject, "\r\n"), scanner).verdict == Verdict::clean);
    const std::string in_part = with_eol(
        multipart({"X-Part: text\nX-Long: " + std::string(1 << 20, 'b') + "\nContent-Type: text/plain\n\nhi\n", virus_part()}),
        "\r\n");
    const std::string out = clean(in_part);
    CHECK(out.find(std::string(1 << 20, 'b')) != std::string::npos);
  }
  SECTION("a 1 MB boundary and a 1 MB file name") {
    const std::string m = top_header + "Content-Type: multipart/mixed; boundary=\"" + std::string(1 << 20, 'c') +
                          "\"\n\n--x\nContent-Type: application/octet-stream; name=\"" + std::string(1 << 20, 'n') +
                          "\"\n\n" + std::string(eicar) + "\n";
    MarkerScanner scanner;
    const Inspection r = inspect(with_eol(m, "\r\n"), scanner);
    CHECK(r.verdict != Verdict::failed);
    for (const Finding& f : r.findings) CHECK(f.file_name.size() <= 255);
  }
}

TEST_CASE("decode_file_name: filename wins over name; neither is \"\"", "[content][names]") {
  CHECK(decode_file_name("attachment; filename=\"report.pdf\"", "application/pdf; name=\"other.pdf\"") == "report.pdf");
  CHECK(decode_file_name("", "application/pdf; name=\"other.pdf\"") == "other.pdf");
  CHECK(decode_file_name("attachment", "application/pdf; name=plain.pdf") == "plain.pdf");
  CHECK(decode_file_name("attachment", "application/pdf") == "");
  CHECK(decode_file_name("", "") == "");
}

TEST_CASE("decode_file_name: RFC 2231 charsets and continuations", "[content][names]") {
  CHECK(decode_file_name("attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.exe", "") == "請求書.exe");
  CHECK(decode_file_name("attachment; filename*=utf-8'ja'%E8%AB%8B%E6%B1%82%E6%9B%B8.exe", "") == "請求書.exe");
  CHECK(decode_file_name("attachment; filename*=iso-2022-jp''%1B%24B%40A5a%3Dq%1B%28B.exe", "") == "請求書.exe");
  CHECK(decode_file_name("attachment; filename*=Shift_JIS''%90%BF%8B%81%8F%91.exe", "") == "請求書.exe");
  CHECK(decode_file_name("attachment; filename*0*=UTF-8''%E8%AB%8B%E6%B1%82; filename*1*=%E6%9B%B8; filename*2=\".exe\"", "") ==
        "請求書.exe");
  CHECK(decode_file_name("attachment; filename*0=\"long\"; filename*1=\"name\"; filename*2=\".txt\"", "") == "longname.txt");
  CHECK(decode_file_name("", "application/octet-stream; name*=UTF-8''caf%C3%A9.txt") == "café.txt");
}

TEST_CASE("decode_file_name: RFC 2047 words (B and Q, ISO-2022-JP and UTF-8)", "[content][names]") {
  CHECK(decode_file_name("attachment; filename=\"=?UTF-8?B?6KuL5rGC5pu4LmV4ZQ==?=\"", "") == "請求書.exe");
  CHECK(decode_file_name("attachment; filename=\"=?ISO-2022-JP?B?GyRCQEE1YT1xGyhCLmV4ZQ==?=\"", "") == "請求書.exe");
  CHECK(decode_file_name("attachment; filename=\"=?UTF-8?Q?caf=C3=A9_cr=C3=A8me.txt?=\"", "") == "café crème.txt");
  CHECK(decode_file_name("", "application/octet-stream; name=\"=?iso-2022-jp?Q?=1B$B@A5a=3Dq=1B(B.exe?=\"") == "請求書.exe");
}

TEST_CASE("decode_file_name: control characters become spaces, 255 bytes at most", "[content][names]") {
  CHECK(decode_file_name("attachment; filename*=UTF-8''a%01b%0Ac%7Fd.exe", "") == "a b c d.exe");
  // C1 controls (U+0080..U+009F) too, as spool's header decoder treats them: found by
  // tests/fuzz/mime_names (corpus/mime_names/controls).
  const std::string c1 = decode_file_name("attachment; filename*=UTF-8''a%C2%85b%C2%9Fc.exe", "");
  CHECK(spool::utf8_ok(c1));
  CHECK(c1.find("\u0085") == std::string::npos);
  CHECK(c1.find("\u009f") == std::string::npos);
  CHECK(c1.find(".exe") != std::string::npos);
  const std::string tab = decode_file_name("attachment; filename=\"a\tb.exe\"", "");
  CHECK(tab == "a b.exe");

  std::string hundred;  // "a" and 100 three-byte characters: cut after 84 of them (253 bytes)
  for (int i = 0; i < 100; ++i) hundred += "%E3%81%82";
  const std::string cut = decode_file_name("attachment; filename*=UTF-8''a" + hundred, "");
  std::string expected = "a";
  for (int i = 0; i < 84; ++i) expected += "あ";
  CHECK(cut == expected);
  CHECK(spool::utf8_ok(cut));

  // Bytes that are not valid in the declared charset never come out raw.
  const std::string bad = decode_file_name("attachment; filename*=UTF-8''%FF%FEx.exe", "");
  CHECK(spool::utf8_ok(bad));
  CHECK(decode_file_name("attachment; filename=\"" + std::string(1000, 'x') + "\"", "") == std::string(255, 'x'));
}

namespace {

// Like clamd: reads whole MIME messages itself. Here it flags a message whose raw bytes
// hold `raw_marker` (standing in for clamd's own decoding) and a part holding EICAR.
class MimeReadingScanner : public MarkerScanner {
public:
  explicit MimeReadingScanner(std::string raw_marker) : raw_marker_(std::move(raw_marker)) {}
  bool reads_mime() const override { return true; }
  ScanVerdict scan(const ChunkSource& source) override {
    ScanVerdict v = MarkerScanner::scan(source);
    if (v.kind == ScanVerdict::Kind::clean && last.find(raw_marker_) != std::string::npos)
      return {ScanVerdict::Kind::infected, "Raw.Marker", "FOUND"};
    return v;
  }

private:
  std::string raw_marker_;
};

} // namespace

TEST_CASE("inspect_message: a scanner that reads MIME gets a clean message once, whole", "[content][inspection]") {
  const std::string message = with_eol(
      multipart({"Content-Type: text/plain; charset=UTF-8\n\nhello\n", png_part, png_part}), "\r\n");
  MimeReadingScanner scanner("never-there");
  const Inspection r = inspect(message, scanner);
  CHECK(r.verdict == Verdict::clean);
  CHECK(scanner.calls == 1);
  CHECK(scanner.last == message);
}

TEST_CASE("inspect_message: when the whole message is infected, the parts are scanned to find it",
          "[content][inspection]") {
  SECTION("found in a part: removed as usual") {
    const std::string message = with_eol(
        multipart({"Content-Type: text/plain; charset=UTF-8\n\nhello\n", png_part, virus_part()}), "\r\n");
    MimeReadingScanner whole("WDVPIVAlQEFQWzRc");  // EICAR's base64, as clamd would find it decoding
    const Inspection r = inspect(message, whole);
    CHECK(r.verdict == Verdict::cleaned);
    CHECK(whole.calls == 1 + 3);
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].file_name == "eicar.com");
  }
  SECTION("found in no part: refused, never delivered as clean") {
    const std::string message =
        with_eol(multipart({"Content-Type: text/plain; charset=UTF-8\n\nhello\n", png_part}), "\r\n");
    MimeReadingScanner whole("Subject: report");  // a header only the whole message has
    const Inspection r = inspect(message, whole);
    CHECK(r.verdict == Verdict::rejected);
    CHECK(r.detail.find("in none of its parts") != std::string::npos);
  }
}

TEST_CASE("inspect_message: deeply nested mail goes part by part even to a scanner that reads MIME",
          "[content][inspection]") {
  // clamd stops descending at its MaxRecursion and calls the rest clean; past 8 levels
  // each part is scanned on its own.
  const auto nested = [](int levels) {
    std::string body = "Content-Type: text/plain\n\ndeep\n";
    for (int i = levels; i > 0; --i) {
      const std::string b = "L" + std::to_string(i);
      body = "Content-Type: multipart/mixed; boundary=\"" + b + "\"\n\n--" + b + "\n" + body + "--" + b +
             "\nContent-Type: text/plain\n\nsecond\n--" + b + "--\n";
    }
    return top_header + body;
  };
  SECTION("8 levels: one scan of the whole message") {
    MimeReadingScanner scanner("never-there");
    CHECK(inspect(nested(8), scanner).verdict == Verdict::clean);
    CHECK(scanner.calls == 1);
  }
  SECTION("9 levels: every leaf on its own") {
    MimeReadingScanner scanner("never-there");
    const Inspection r = inspect(nested(9), scanner);
    CHECK(r.verdict == Verdict::clean);
    CHECK(scanner.calls == 10);
    CHECK(r.parts_scanned == 10);
  }
}
