// dsn_test.cc — bounces (dsn.h): the message has the headers, the three parts and every
// RFC 3464 field a mail administrator expects; statuses come from the enhanced code only
// when it is well formed and agrees with the basic code; a hostile remote reply stays
// bounded and cannot add a header, a field or a boundary line; and read_header_block
// stops at the blank line or a line end within its limit without moving the fd.
#include "spool/dsn.h"

#include "spool/error.h"
#include "test_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <set>

using mhtest::TempDir;
using mhtest::write_text;
using spool::DsnRecipient;
using spool::DsnReport;

namespace {

constexpr std::int64_t arrived = 1796457600;  // Sat, 05 Dec 2026 08:00:00 +0000
constexpr std::int64_t now = 1796464800;      // Sat, 05 Dec 2026 10:00:00 +0000

const std::string original =
    "Return-Path: <alice@example.org>\n"
    "Received: from client.example.org by mail.example.org; Sat, 05 Dec 2026 08:00:00 +0000\n"
    "From: Alice <alice@example.org>\n"
    "To: bob@remote.example, carol@other.example\n"
    "Subject: lunch?\n"
    "Message-ID: <1234@example.org>\n";

DsnReport report() {
  DsnReport r;
  r.reporting_mta = "mail.example.org";
  r.original_sender = "alice@example.org";
  r.queue_id = "674815F00A1B2P3E8Q1R0A1B2C3D";
  r.arrival = arrived;
  r.now = now;
  DsnRecipient bob;
  bob.address = "bob@remote.example";
  bob.diagnostic = "550 5.1.1 <bob@remote.example>: Recipient address rejected: User unknown";
  bob.remote_mta = "mx.remote.example";
  DsnRecipient carol;
  carol.address = "carol@other.example";
  carol.status = "5.4.4";
  carol.diagnostic = "Host or domain name not found";
  carol.smtp_diagnostic = false;
  r.recipients = {bob, carol};
  r.original_headers = original;
  return r;
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

// A message (or a delivery-status group) split at its first blank line.
struct Entity {
  std::string head;  // header lines, each ending in LF
  std::string body;
};

Entity split_entity(const std::string& text) {
  const auto blank = text.find("\n\n");
  REQUIRE(blank != std::string::npos);
  return {text.substr(0, blank + 1), text.substr(blank + 2)};
}

// The value of the one field `name` (our output is never folded); nullopt when absent.
// A field given twice fails the test.
std::optional<std::string> field(const std::string& head, const std::string& name) {
  std::optional<std::string> found;
  for (const auto& line : lines_of(head)) {
    if (line.size() > name.size() && line.compare(0, name.size() + 2, name + ": ") == 0) {
      CHECK_FALSE(found.has_value());
      found = line.substr(name.size() + 2);
    }
  }
  return found;
}

std::string boundary_of(const std::string& content_type) {
  const std::string key = "boundary=\"";
  const auto at = content_type.find(key);
  REQUIRE(at != std::string::npos);
  const auto end = content_type.find('"', at + key.size());
  REQUIRE(end != std::string::npos);
  return content_type.substr(at + key.size(), end - at - key.size());
}

struct Parsed {
  Entity message;
  std::string boundary;
  std::string preamble;
  std::vector<Entity> parts;
  std::string epilogue;
};

// RFC 2046 §5.1.1: delimiter lines are "--B", the last one "--B--"; the line break
// before a delimiter belongs to it. Fails the test on anything out of shape.
Parsed parse(const std::string& dsn) {
  Parsed p;
  p.message = split_entity(dsn);
  const auto ct = field(p.message.head, "Content-Type");
  REQUIRE(ct);
  p.boundary = boundary_of(*ct);
  const std::string delimiter = "--" + p.boundary;
  std::vector<std::string> chunks;
  std::string current;
  bool closed = false;
  for (const auto& line : lines_of(p.message.body)) {
    if (closed) {
      p.epilogue += line + "\n";
    } else if (line == delimiter || line == delimiter + "--") {
      chunks.push_back(current);
      current.clear();
      closed = line == delimiter + "--";
    } else {
      current += line + "\n";
    }
  }
  REQUIRE(closed);
  REQUIRE(!chunks.empty());
  p.preamble = chunks.front();
  for (std::size_t i = 1; i < chunks.size(); ++i) {
    std::string chunk = chunks[i];
    REQUIRE(!chunk.empty());
    chunk.pop_back();  // the LF that belongs to the next delimiter
    p.parts.push_back(split_entity(chunk));
  }
  return p;
}

// The per-message group and the per-recipient groups of a message/delivery-status body.
std::vector<std::string> status_groups(const std::string& body) {
  std::vector<std::string> groups;
  std::string current;
  for (const auto& line : lines_of(body)) {
    if (line.empty()) {
      if (!current.empty()) groups.push_back(current);
      current.clear();
    } else {
      current += line + "\n";
    }
  }
  if (!current.empty()) groups.push_back(current);
  return groups;
}

std::string decode_quoted_printable(const std::string& text) {
  auto hex = [](char c) { return c <= '9' ? c - '0' : c - 'A' + 10; };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') {
      out += text[i];
    } else if (i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;  // soft line break
    } else {
      REQUIRE(i + 2 < text.size());
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    }
  }
  return out;
}

// Every byte printable ASCII, TAB or LF; no line over RFC 5322's 998.
void check_seven_bit(const std::string& dsn) {
  for (char ch : dsn) {
    const auto c = static_cast<unsigned char>(ch);
    INFO("byte " << static_cast<int>(c));
    REQUIRE(((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t'));
  }
  for (const auto& line : lines_of(dsn)) REQUIRE(line.size() <= 998);
  REQUIRE(!dsn.empty());
  REQUIRE(dsn.back() == '\n');
}

int open_file(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

std::string header_block_of(const TempDir& dir, const std::string& content,
                            std::size_t limit = spool::max_dsn_headers) {
  write_text(dir / "msg", content);
  const int fd = open_file(dir / "msg");
  std::string block = spool::read_header_block(fd, limit);
  ::close(fd);
  return block;
}

} // namespace

TEST_CASE("a bounce carries the header fields a mail administrator expects", "[dsn]") {
  const std::string dsn = spool::build_dsn(report());
  check_seven_bit(dsn);
  const Entity m = split_entity(dsn);
  CHECK(field(m.head, "From") == "Mail Delivery System <MAILER-DAEMON@mail.example.org>");
  CHECK(field(m.head, "To") == "<alice@example.org>");
  CHECK(field(m.head, "Subject") == "Undelivered Mail Returned to Sender");
  CHECK(field(m.head, "Date") == "Sat, 05 Dec 2026 10:00:00 +0000");
  CHECK(field(m.head, "Auto-Submitted") == "auto-replied");
  CHECK(field(m.head, "MIME-Version") == "1.0");
  const auto id = field(m.head, "Message-ID");
  REQUIRE(id);
  CHECK(id->front() == '<');
  CHECK(id->size() > std::string("<@mail.example.org>").size());
  CHECK(id->substr(id->size() - std::string("@mail.example.org>").size()) == "@mail.example.org>");
  CHECK(id->find(' ') == std::string::npos);
  const auto ct = field(m.head, "Content-Type");
  REQUIRE(ct);
  CHECK(ct->rfind("multipart/report; report-type=delivery-status; boundary=\"", 0) == 0);
  CHECK(field(m.head, "Content-Transfer-Encoding") == std::nullopt);
  CHECK(lines_of(m.head).size() == 8);
}

TEST_CASE("dates are RFC 5322 in UTC for any instant", "[dsn]") {
  DsnReport r = report();
  r.now = 951782400;  // a leap day
  CHECK(field(split_entity(spool::build_dsn(r)).head, "Date") == "Tue, 29 Feb 2000 00:00:00 +0000");
  r.now = 1700000000;
  CHECK(field(split_entity(spool::build_dsn(r)).head, "Date") == "Tue, 14 Nov 2023 22:13:20 +0000");
}

TEST_CASE("a bounce is a multipart/report of explanation, delivery status and headers", "[dsn]") {
  const Parsed p = parse(spool::build_dsn(report()));
  CHECK(p.boundary.size() >= 20);
  CHECK(p.boundary.size() <= 70);  // RFC 2046 §5.1.1
  CHECK(p.preamble.find("MIME") != std::string::npos);
  CHECK(p.epilogue.empty());
  REQUIRE(p.parts.size() == 3);
  CHECK(field(p.parts[0].head, "Content-Type") == "text/plain; charset=us-ascii");
  CHECK(field(p.parts[1].head, "Content-Type") == "message/delivery-status");
  CHECK(field(p.parts[2].head, "Content-Type") == "text/rfc822-headers");
  CHECK(field(p.parts[2].head, "Content-Transfer-Encoding") == std::nullopt);
  for (const auto& part : p.parts) CHECK(part.body.find(p.boundary) == std::string::npos);
  // Plain headers travel exactly as they were.
  CHECK(p.parts[2].body == original);
}

TEST_CASE("two bounces never share a boundary or a Message-ID", "[dsn]") {
  std::set<std::string> boundaries, ids;
  for (int i = 0; i < 50; ++i) {
    const std::string dsn = spool::build_dsn(report());
    const Entity m = split_entity(dsn);
    boundaries.insert(boundary_of(*field(m.head, "Content-Type")));
    ids.insert(*field(m.head, "Message-ID"));
  }
  CHECK(boundaries.size() == 50);
  CHECK(ids.size() == 50);
}

TEST_CASE("the delivery-status part has the RFC 3464 fields of the message and of each recipient", "[dsn]") {
  const Parsed p = parse(spool::build_dsn(report()));
  const auto groups = status_groups(p.parts[1].body);
  REQUIRE(groups.size() == 3);

  const std::string& message = groups[0];
  CHECK(field(message, "Reporting-MTA") == "dns; mail.example.org");
  CHECK(field(message, "X-Mailhost-Queue-ID") == "674815F00A1B2P3E8Q1R0A1B2C3D");
  CHECK(field(message, "Arrival-Date") == "Sat, 05 Dec 2026 08:00:00 +0000");
  CHECK(lines_of(message).size() == 3);

  const std::string& bob = groups[1];
  CHECK(field(bob, "Final-Recipient") == "rfc822; bob@remote.example");
  CHECK(field(bob, "Action") == "failed");
  CHECK(field(bob, "Status") == "5.1.1");  // derived from the reply
  CHECK(field(bob, "Remote-MTA") == "dns; mx.remote.example");
  CHECK(field(bob, "Diagnostic-Code") ==
        "smtp; 550 5.1.1 <bob@remote.example>: Recipient address rejected: User unknown");
  CHECK(field(bob, "Last-Attempt-Date") == "Sat, 05 Dec 2026 10:00:00 +0000");
  CHECK(lines_of(bob).size() == 6);

  const std::string& carol = groups[2];
  CHECK(field(carol, "Final-Recipient") == "rfc822; carol@other.example");
  CHECK(field(carol, "Action") == "failed");
  CHECK(field(carol, "Status") == "5.4.4");  // given by the caller
  CHECK(field(carol, "Remote-MTA") == std::nullopt);
  CHECK(field(carol, "Diagnostic-Code") == "X-Mailhost; Host or domain name not found");
  CHECK(field(carol, "Last-Attempt-Date") == "Sat, 05 Dec 2026 10:00:00 +0000");
  CHECK(lines_of(carol).size() == 5);
}

TEST_CASE("optional per-message fields are left out when unknown", "[dsn]") {
  DsnReport r = report();
  r.queue_id.clear();
  r.arrival = 0;
  r.recipients.resize(1);
  r.recipients[0].diagnostic.clear();
  const Parsed p = parse(spool::build_dsn(r));
  const auto groups = status_groups(p.parts[1].body);
  REQUIRE(groups.size() == 2);
  CHECK(lines_of(groups[0]) == std::vector<std::string>{"Reporting-MTA: dns; mail.example.org"});
  CHECK(field(groups[1], "Diagnostic-Code") == std::nullopt);
  CHECK(field(groups[1], "Status") == "4.0.0");
}

TEST_CASE("a caller's malformed status is replaced by the one of the reply", "[dsn]") {
  DsnReport r = report();
  r.recipients.resize(1);
  r.recipients[0].status = "5.1.1\nX-Injected: yes";
  const Parsed p = parse(spool::build_dsn(r));
  const auto groups = status_groups(p.parts[1].body);
  REQUIRE(groups.size() == 2);
  CHECK(field(groups[1], "Status") == "5.1.1");
  CHECK(p.parts[1].body.find("X-Injected") == std::string::npos);
}

TEST_CASE("the explanation names the host and quotes each reply", "[dsn]") {
  const Parsed p = parse(spool::build_dsn(report()));
  const std::string& text = p.parts[0].body;
  CHECK(text.rfind("This is the mail system at host mail.example.org.\n", 0) == 0);
  CHECK(text.find("could not be delivered to one or more recipients") != std::string::npos);
  CHECK(text.find("\n<bob@remote.example>: host mx.remote.example said: 550 5.1.1\n"
                  "    <bob@remote.example>: Recipient address rejected: User unknown\n") != std::string::npos);
  CHECK(text.find("\n<carol@other.example>: Host or domain name not found\n") != std::string::npos);
  for (const auto& line : lines_of(text)) CHECK(line.size() <= 76);
}

TEST_CASE("a delay warning says so in its subject, text and actions", "[dsn]") {
  DsnReport r = report();
  r.delayed = true;
  r.recipients[0].diagnostic = "451 4.2.0 Mailbox busy, try later";
  const std::string dsn = spool::build_dsn(r);
  check_seven_bit(dsn);
  const Parsed p = parse(dsn);
  CHECK(field(p.message.head, "Subject") == "Delayed Mail (still being retried)");
  CHECK(p.parts[0].body.find("warning only") != std::string::npos);
  CHECK(p.parts[0].body.find("could not be delivered") == std::string::npos);
  const auto groups = status_groups(p.parts[1].body);
  REQUIRE(groups.size() == 3);
  CHECK(field(groups[1], "Action") == "delayed");
  CHECK(field(groups[1], "Status") == "4.2.0");
  CHECK(field(groups[2], "Action") == "delayed");
}

TEST_CASE("without original headers the report has two parts", "[dsn]") {
  DsnReport r = report();
  r.original_headers.clear();
  const Parsed p = parse(spool::build_dsn(r));
  REQUIRE(p.parts.size() == 2);
  CHECK(p.parts[0].body.find("attached") == std::string::npos);
}

TEST_CASE("original headers: CRLF ends, a body, long lines and 8-bit bytes", "[dsn]") {
  DsnReport r = report();
  SECTION("CRLF becomes LF and the body after the blank line is left out") {
    r.original_headers = "Subject: a\r\nFrom: b@example.org\r\n\r\nsecret body\r\n";
    const Parsed p = parse(spool::build_dsn(r));
    CHECK(p.parts[2].body == "Subject: a\nFrom: b@example.org\n");
  }
  SECTION("a last line without LF is kept") {
    r.original_headers = "Subject: a\nX-Last: b";
    CHECK(parse(spool::build_dsn(r)).parts[2].body == "Subject: a\nX-Last: b\n");
  }
  SECTION("a line over 998 characters is cut") {
    r.original_headers = "Subject: a\nX-Long: " + std::string(5000, 'x') + "\nX-After: c\n";
    const std::string dsn = spool::build_dsn(r);
    check_seven_bit(dsn);
    const auto lines = lines_of(parse(dsn).parts[2].body);
    REQUIRE(lines.size() == 3);
    CHECK(lines[1] == "X-Long: " + std::string(998 - 8, 'x'));
    CHECK(lines[2] == "X-After: c");
  }
  SECTION("8-bit bytes and controls travel quoted-printable, byte for byte") {
    const std::string hostile = "Subject: \xe6\x97\xa5\xe6\x9c\xac = caf\xc3\xa9\x01\x7f \n"
                                "X-Long: " + std::string(300, '\xff') + "\nX-Plain: ok\n";
    r.original_headers = hostile;
    const std::string dsn = spool::build_dsn(r);
    check_seven_bit(dsn);
    const Parsed p = parse(dsn);
    CHECK(field(p.parts[2].head, "Content-Type") == "text/rfc822-headers");  // not UTF-8: no charset
    CHECK(field(p.parts[2].head, "Content-Transfer-Encoding") == "quoted-printable");
    for (const auto& line : lines_of(p.parts[2].body)) CHECK(line.size() <= 76);
    CHECK(decode_quoted_printable(p.parts[2].body) == hostile);
  }
  SECTION("UTF-8 headers (RFC 6532) are labelled as such") {
    r.original_headers = "Subject: caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x93\xa7\nTo: b@example.org\n";
    const Parsed p = parse(spool::build_dsn(r));
    CHECK(field(p.parts[2].head, "Content-Type") == "text/rfc822-headers; charset=utf-8");
    CHECK(field(p.parts[2].head, "Content-Transfer-Encoding") == "quoted-printable");
    CHECK(p.parts[2].body == "Subject: caf=C3=A9 =E6=97=A5=E6=9C=AC =F0=9F=93=A7\nTo: b@example.org\n");
  }
  SECTION("overlong, surrogate and truncated UTF-8 is not labelled UTF-8") {
    for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xe6\x97", "\xf4\x90\x80\x80", "\x80"}) {
      r.original_headers = std::string("Subject: ") + bad + "\n";
      const Parsed p = parse(spool::build_dsn(r));
      CHECK(field(p.parts[2].head, "Content-Type") == "text/rfc822-headers");
      CHECK(decode_quoted_printable(p.parts[2].body) == r.original_headers);
    }
  }
  SECTION("the header block is bounded") {
    r.original_headers.clear();
    for (int i = 0; i < 20000; ++i) r.original_headers += "X-Filler-" + std::to_string(i) + ": yes\n";
    const std::string body = parse(spool::build_dsn(r)).parts[2].body;
    CHECK(body.size() <= spool::max_dsn_headers);
    CHECK(body.size() > spool::max_dsn_headers - 100);
    CHECK(body.back() == '\n');
  }
}

TEST_CASE("a hostile remote reply stays bounded and cannot add fields or boundaries", "[dsn]") {
  DsnReport r = report();
  const std::string boundary_guess = "\n--=_mailhost_dsn_000000000000000000000000\n";
  std::string reply = "550 5.1.1 evil\r\nSubject: injected\r\n\r\n--\n" + boundary_guess +
                      "Content-Type: text/html\n" + std::string("\0\x1b[2J\xc3\xa9\x80\xff", 9);
  while (reply.size() < 100 * 1024) reply += "\r\nX-Injected: " + std::string(200, 'A') + "\n\n--x\n";
  r.recipients[0].diagnostic = reply;
  r.recipients[0].remote_mta = "mx.remote.example\nX-Host-Injected: yes";
  r.recipients[0].address = "bob@remote.example\r\nX-Addr-Injected: yes";
  r.original_sender = "alice@example.org>\nBcc: victim@example.net";
  r.reporting_mta = "mail.example.org\nX-Ours: no";

  const std::string dsn = spool::build_dsn(r);
  check_seven_bit(dsn);
  CHECK(dsn.size() < 8 * 1024);
  for (const auto& line : lines_of(dsn)) {
    INFO(line);
    CHECK(line.rfind("Subject: injected", 0) == std::string::npos);
    CHECK(line.rfind("X-Injected", 0) == std::string::npos);
    CHECK(line.rfind("X-Host-Injected", 0) == std::string::npos);
    CHECK(line.rfind("X-Addr-Injected", 0) == std::string::npos);
    CHECK(line.rfind("Bcc:", 0) == std::string::npos);
    CHECK(line.rfind("Content-Type: text/html", 0) == std::string::npos);
  }
  const Parsed p = parse(dsn);
  REQUIRE(p.parts.size() == 3);
  for (const auto& line : lines_of(dsn))
    if (line.rfind("--", 0) == 0) CHECK((line == "--" + p.boundary || line == "--" + p.boundary + "--"));

  const auto groups = status_groups(p.parts[1].body);
  REQUIRE(groups.size() == 3);
  const auto diagnostic = field(groups[1], "Diagnostic-Code");
  REQUIRE(diagnostic);
  CHECK(diagnostic->rfind("smtp; 550 5.1.1 evil Subject: injected -- --=_mailhost_dsn_", 0) == 0);
  CHECK(diagnostic->size() == std::string("smtp; ").size() + spool::max_dsn_diagnostic);
  CHECK(diagnostic->substr(diagnostic->size() - 3) == "...");
  CHECK(field(groups[1], "Status") == "5.1.1");
  CHECK(field(groups[1], "Remote-MTA") == "dns; mx.remote.exampleX-Host-Injected:yes");
  CHECK(field(groups[1], "Final-Recipient") == "rfc822; bob@remote.example X-Addr-Injected: yes");
  CHECK(field(p.message.head, "To") == "<alice@example.org> Bcc: victim@example.net>");
  CHECK(field(p.message.head, "From") == "Mail Delivery System <MAILER-DAEMON@mail.example.orgX-Oursno>");
  // Controls and 8-bit bytes became '?', not something else.
  CHECK(diagnostic->find("?[2J????") != std::string::npos);
}

TEST_CASE("a reply without spaces is wrapped and split in the explanation", "[dsn]") {
  DsnReport r = report();
  r.recipients[0].diagnostic = "550 " + std::string(2000, 'z');
  const std::string dsn = spool::build_dsn(r);
  check_seven_bit(dsn);
  for (const auto& line : lines_of(parse(dsn).parts[0].body)) CHECK(line.size() <= 76);
}

TEST_CASE("the status of a reply comes from a well-formed, agreeing enhanced code", "[dsn]") {
  using spool::dsn_status_of;
  // Enhanced code present.
  CHECK(dsn_status_of("550 5.1.1 <x@y>: User unknown") == "5.1.1");
  CHECK(dsn_status_of("452 4.5.3 Too many recipients") == "4.5.3");
  CHECK(dsn_status_of("552 5.2.2 Disk quota exceeded") == "5.2.2");
  CHECK(dsn_status_of("554 5.123.456 odd but legal") == "5.123.456");
  CHECK(dsn_status_of("  550 5.7.1") == "5.7.1");
  CHECK(dsn_status_of("550 5.7.1; more") == "5.7.1");
  // Multi-line replies, joined by the caller.
  CHECK(dsn_status_of("550-5.1.1 The email account that you tried to reach does not exist.; 550 5.1.1 Please "
                      "try again") == "5.1.1");
  CHECK(dsn_status_of("550-Sorry; 550 5.1.1 no") == "5.0.0");
  // Absent: the basic code's class.
  CHECK(dsn_status_of("550 User unknown") == "5.0.0");
  CHECK(dsn_status_of("421 Service not available") == "4.0.0");
  CHECK(dsn_status_of("554") == "5.0.0");
  // Mismatched class or malformed enhanced code.
  CHECK(dsn_status_of("550 4.1.1 confused") == "5.0.0");
  CHECK(dsn_status_of("450 5.1.1 confused") == "4.0.0");
  CHECK(dsn_status_of("550 3.1.1 no such class") == "5.0.0");
  CHECK(dsn_status_of("550 5.1234.1 too long") == "5.0.0");
  CHECK(dsn_status_of("550 5.1.1234 too long") == "5.0.0");
  CHECK(dsn_status_of("550 5.1. missing") == "5.0.0");
  CHECK(dsn_status_of("550 5..1 missing") == "5.0.0");
  CHECK(dsn_status_of("550 5.1.1.1 extra") == "5.0.0");
  CHECK(dsn_status_of("550 5.1.1x glued") == "5.0.0");
  CHECK(dsn_status_of("550 5.a.1") == "5.0.0");
  // Garbage: nothing says it is permanent.
  CHECK(dsn_status_of("") == "4.0.0");
  CHECK(dsn_status_of("Connection refused") == "4.0.0");
  CHECK(dsn_status_of("5.1.1 no basic code") == "4.0.0");
  CHECK(dsn_status_of("55 short") == "4.0.0");
  CHECK(dsn_status_of("5501 5.1.1 glued") == "4.0.0");
  CHECK(dsn_status_of("250 2.0.0 Ok") == "4.0.0");
  CHECK(dsn_status_of("354 go ahead") == "4.0.0");
  CHECK(dsn_status_of(std::string("550\0 5.1.1", 10)) == "4.0.0");
}

TEST_CASE("status codes are checked for sane class, subject and detail", "[dsn]") {
  CHECK(spool::dsn_status_ok("5.1.1"));
  CHECK(spool::dsn_status_ok("2.0.0"));
  CHECK(spool::dsn_status_ok("4.999.999"));
  CHECK_FALSE(spool::dsn_status_ok(""));
  CHECK_FALSE(spool::dsn_status_ok("5.1"));
  CHECK_FALSE(spool::dsn_status_ok("3.1.1"));
  CHECK_FALSE(spool::dsn_status_ok("5.1000.1"));
  CHECK_FALSE(spool::dsn_status_ok("5.1.1000"));
  CHECK_FALSE(spool::dsn_status_ok("5.1.1 "));
  CHECK_FALSE(spool::dsn_status_ok(" 5.1.1"));
  CHECK_FALSE(spool::dsn_status_ok("5.1.1\n"));
  CHECK_FALSE(spool::dsn_status_ok("55.1.1"));
}

TEST_CASE("read_header_block stops at the blank line without touching the fd's offset", "[dsn]") {
  TempDir dir;
  SECTION("stops at the first empty line") {
    CHECK(header_block_of(dir, "A: 1\nB: 2\n\nbody\n\nmore: body\n") == "A: 1\nB: 2\n");
  }
  SECTION("a CRLF message stops at its empty line too") {
    CHECK(header_block_of(dir, "A: 1\r\nB: 2\r\n\r\nbody\r\n") == "A: 1\r\nB: 2\r\n");
  }
  SECTION("a message without body is read whole") {
    CHECK(header_block_of(dir, "A: 1\nB: 2\n") == "A: 1\nB: 2\n");
    CHECK(header_block_of(dir, "A: 1\nB: 2") == "A: 1\nB: 2\n");
  }
  SECTION("an empty message or one without headers has no header block") {
    CHECK(header_block_of(dir, "") == "");
    CHECK(header_block_of(dir, "\nbody\n") == "");
    CHECK(header_block_of(dir, "\r\nbody\r\n") == "");
  }
  SECTION("the limit cuts at a line end") {
    const std::string msg = "Aa: 1\nBb: 2\nCc: 3\n\nbody\n";
    CHECK(header_block_of(dir, msg, 17) == "Aa: 1\nBb: 2\n");
    CHECK(header_block_of(dir, msg, 18) == "Aa: 1\nBb: 2\nCc: 3\n");
    CHECK(header_block_of(dir, msg, 12) == "Aa: 1\nBb: 2\n");
    CHECK(header_block_of(dir, msg, 11) == "Aa: 1\n");
    CHECK(header_block_of(dir, msg, 5) == "");
    CHECK(header_block_of(dir, "X: " + std::string(100000, 'y') + "\n\nbody\n") == "");
  }
  SECTION("a blank line straddling the read chunks is found") {
    for (std::size_t at : {8189u, 8190u, 8191u, 8192u, 8193u}) {
      const std::string head = "X: " + std::string(at - 4, 'y') + "\n";
      REQUIRE(head.size() == at);
      CHECK(header_block_of(dir, head + "\nbody\n" + std::string(20000, 'b')) == head);
      CHECK(header_block_of(dir, head.substr(0, at - 1) + "\r\n\r\nbody\n" + std::string(20000, 'b')) ==
            head.substr(0, at - 1) + "\r\n");
    }
  }
  SECTION("a long header ends at the default limit, the body is never read") {
    std::string head;
    while (head.size() < 100 * 1024) head += "X-Filler: " + std::string(60, 'f') + "\n";
    const std::string block = header_block_of(dir, head + "\n" + std::string(1 << 20, 'b'));
    CHECK(block.size() <= spool::max_dsn_headers);
    CHECK(block.size() > spool::max_dsn_headers - 80);
    CHECK(head.rfind(block, 0) == 0);
  }
  SECTION("the fd's offset stays where it was") {
    write_text(dir / "msg", "A: 1\n\nbody\n");
    const int fd = open_file(dir / "msg");
    REQUIRE(::lseek(fd, 7, SEEK_SET) == 7);
    CHECK(spool::read_header_block(fd) == "A: 1\n");
    CHECK(::lseek(fd, 0, SEEK_CUR) == 7);
    ::close(fd);
  }
  SECTION("a failed read is a temporary spool::Error") {
    const spool::Error e = mhtest::error_from([] { (void)spool::read_header_block(-1); });
    CHECK(e.temporary());
    CHECK(std::string(e.what()).find("cannot read message header") != std::string::npos);
  }
}
