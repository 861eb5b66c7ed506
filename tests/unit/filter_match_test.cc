// filter_match_test.cc — SPEC §6 matching (filter_match.h): NFKC case folding, the glob
// (`?` over multibyte, linear on pathological patterns), the header as filters see it
// (fields, RFC 2047 in ISO-2022-JP / Shift_JIS / EUC-JP / UTF-8 Q, address lists),
// conditions, the order of evaluate_filters() and the Delivered-To loop check, and the
// linear-time guards: 10,000 encoded words, a 1 MiB header, unterminated words.
#include "spool/filter_match.h"

#include "spool/header_decode.h"

#include <catch2/catch.hpp>

#include <string>

using spool::Condition;
using spool::FilterDecision;
using spool::FilterMessage;
using spool::fold_text;
using spool::glob_match;

namespace {

Condition field_condition(Condition::Field field, Condition::Op op, std::string text, std::string header_name = {}) {
  Condition c;
  c.kind = Condition::Kind::field;
  c.field = field;
  c.op = op;
  c.text = std::move(text);
  c.header_name = std::move(header_name);
  return c;
}

Condition subject(Condition::Op op, std::string text) {
  return field_condition(Condition::Field::subject, op, std::move(text));
}

Condition from(Condition::Op op, std::string text) { return field_condition(Condition::Field::from, op, std::move(text)); }

Condition all_condition() { return Condition{}; }

FilterMessage message(const std::string& head, std::uint64_t size = 1000, std::string sender = "s@example.net") {
  return FilterMessage(head, size, std::move(sender));
}

bool matches(const Condition& c, const std::string& head) { return spool::condition_matches(c, message(head)); }

constexpr auto contains = Condition::Op::contains;
constexpr auto is = Condition::Op::is;
constexpr auto glob = Condition::Op::matches;

} // namespace

// --- folding ---

TEST_CASE("fold_text: NFKC case folding", "[filter_match]") {
  CHECK(fold_text("Hello WORLD 123") == "hello world 123");      // ASCII fast path
  CHECK(fold_text("ＡＢＣ") == "abc");                            // full-width
  CHECK(fold_text("abc") == fold_text("ＡＢＣ"));
  CHECK(fold_text("【重要】会議") == "【重要】会議");               // CJK unchanged
  CHECK(fold_text("ｶﾀｶﾅ") == "カタカナ");                         // half-width katakana → full-width
  CHECK(fold_text("ﾊﾟｽﾜｰﾄﾞ") == "パスワード");                    // with voiced marks composed
  CHECK(fold_text("Straße") == "strasse");
  CHECK(fold_text("ÉCOLE") == "école");
  CHECK(fold_text("①") == "1");
  CHECK(fold_text("") == "");
}

TEST_CASE("fold_text: invalid UTF-8 becomes U+FFFD", "[filter_match]") {
  CHECK(fold_text("Caf\xe9") == "caf\xef\xbf\xbd");
  CHECK(fold_text("\xff\xfe") == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(fold_text("\xe6\x97") == "\xef\xbf\xbd"); // truncated 日
}

// --- glob ---

TEST_CASE("glob_match: stars, question marks, literals", "[filter_match]") {
  CHECK(glob_match("*", ""));
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("", ""));
  CHECK_FALSE(glob_match("", "x"));
  CHECK(glob_match("abc", "abc"));
  CHECK_FALSE(glob_match("abc", "abcd"));
  CHECK_FALSE(glob_match("abc", "xabc"));
  CHECK(glob_match("a*", "abc"));
  CHECK(glob_match("*c", "abc"));
  CHECK(glob_match("a*c", "ac"));
  CHECK(glob_match("a**c", "abbbc"));
  CHECK(glob_match("*b*", "abc"));
  CHECK_FALSE(glob_match("*x*", "abc"));
  CHECK(glob_match("a*b*c", "a-b-b-c"));
  CHECK_FALSE(glob_match("a*a", "a"));          // the two pieces may not overlap
  CHECK_FALSE(glob_match("*ab*b", "ab"));
  CHECK(glob_match("*ab*b", "abb"));
  CHECK(glob_match("*.example.com", "mx.example.com"));
  CHECK_FALSE(glob_match("*.example.com", "mx-example.com")); // '.' is literal
  CHECK(glob_match("[x]+(y)", "[x]+(y)"));      // no regex or class syntax
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "ac"));          // `?` is exactly one
  CHECK_FALSE(glob_match("a?c", "abbc"));
  CHECK(glob_match("*?", "x"));
  CHECK_FALSE(glob_match("*?", ""));
}

TEST_CASE("glob_match: `?` is one code point, whatever its UTF-8 length", "[filter_match]") {
  CHECK(glob_match("会?", "会議"));            // 3 bytes
  CHECK_FALSE(glob_match("会?", "会議室"));
  CHECK(glob_match("会??", "会議室"));
  CHECK(glob_match("caf?", "café"));           // 2 bytes
  CHECK(glob_match("?", "𝄞"));                 // 4 bytes
  CHECK_FALSE(glob_match("??", "𝄞"));
  CHECK(glob_match("*重要*", "【重要】会議"));
  CHECK(glob_match("【??】*", "【重要】会議"));
  CHECK_FALSE(glob_match("【?】*", "【重要】会議"));
  CHECK(glob_match("*?議", "【重要】会議"));
  // Invalid bytes are units of their own.
  CHECK(glob_match("a?b", "a\xff" "b"));
  CHECK_FALSE(glob_match("a\xfe", "a\xff"));
}

TEST_CASE("glob_match: pieces longer than one 64-bit word", "[filter_match]") {
  const std::string a100(100, 'a');
  CHECK(glob_match("*" + a100 + "b*", std::string(150, 'a') + "b" + "zz"));
  CHECK_FALSE(glob_match("*" + a100 + "b*", std::string(99, 'a') + "b" + std::string(200, 'a')));
  CHECK(glob_match("*" + std::string(70, '?') + "x", std::string(80, 'y') + "x"));
  CHECK_FALSE(glob_match("*" + std::string(70, '?') + "x", std::string(69, 'y') + "x"));
}

TEST_CASE("glob_match is linear on patterns that make backtracking explode", "[filter_match]") {
  const std::string text(100 * 1024, 'a');
  CHECK_FALSE(glob_match("*a*a*a*a*a*b", text));
  CHECK(glob_match("*a*a*a*a*a*b", text + "b"));
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  CHECK_FALSE(glob_match("*" + std::string(1000, 'a') + "b*", text)); // 1000-unit piece: 16 words per step
  CHECK_FALSE(glob_match("*" + std::string(500, '?') + "b", text));
}

// --- the message ---

TEST_CASE("FilterMessage: fields found by name, unfolded, in order", "[filter_match]") {
  const FilterMessage m("From x@y Mon Jan  1 00:00:00 2024\r\n"
                        "Received: one\r\n"
                        "subject: first\r\n"
                        "\tcontinued\r\n"
                        "X-Foo: Bar\r\n"
                        "garbage line without colon\r\n"
                        " stray continuation\r\n"
                        "RECEIVED: two\r\n"
                        "Subject : second  \r\n"
                        "\r\n"
                        "Subject: in the body\r\n",
                        5000, "");
  CHECK(m.size() == 5000);
  CHECK(m.sender().empty());
  CHECK(m.raw_fields("Received") == std::vector<std::string>{"one", "two"});
  CHECK(m.raw_fields("SUBJECT") == std::vector<std::string>{"first\tcontinued", "second"});
  CHECK(m.raw_fields("X-Foo") == std::vector<std::string>{"Bar"});
  CHECK(m.raw_fields("From").empty()); // the mbox line is no field
  CHECK(m.raw_fields("X-Fo").empty());
  CHECK(m.header_block().find("in the body") == std::string::npos);
  CHECK(m.folded_fields("subject") == std::vector<std::string>{"first continued", "second"});
}

TEST_CASE("FilterMessage: decoded and folded fields, references stay valid", "[filter_match]") {
  const FilterMessage m("Subject: =?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEGyhC?=\n"
                        "X-Wide: ＡＢＣ\n"
                        "To: a@b\n",
                        10, "s@x");
  const std::vector<std::string>& subjects = m.folded_fields("Subject");
  const std::vector<std::string>& wide = m.folded_fields("X-Wide");
  for (const char* name : {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q"})
    (void)m.folded_fields(name); // many cache entries: earlier references must survive
  (void)m.folded_addresses("To");
  CHECK(subjects == std::vector<std::string>{"【重要】会議"});
  CHECK(wide == std::vector<std::string>{"abc"});
  CHECK(&m.folded_fields("SUBJECT") == &subjects);
  CHECK(m.folded_fields("Nope").empty());
}

TEST_CASE("FilterMessage: addr-specs out of address lists", "[filter_match]") {
  const FilterMessage m("From: \"Tanaka, Taro\" <Taro@Example.JP>\n"
                        "To: a@b (the A team), \"Quoted Name\" <c@d>, plain@x.org\n"
                        "To: undisclosed-recipients:;\n"
                        "To: List: l1@x, L2@X;, after@group\n"
                        "Cc: =?UTF-8?B?55Sw5LitIOWkqumDjg==?= <tanaka@example.jp>, <>, lonelyword\n"
                        "Cc: <@relay.example:routed@x> , Name (comment) <  spaced@x  >\n"
                        "Cc: \"john doe\"@example.com, (only a comment)\n",
                        10, "s@x");
  CHECK(m.folded_addresses("From") == std::vector<std::string>{"taro@example.jp"});
  CHECK(m.folded_addresses("to") ==
        std::vector<std::string>{"a@b", "c@d", "plain@x.org", "l1@x", "l2@x", "after@group"});
  CHECK(m.folded_addresses("Cc") ==
        std::vector<std::string>{"tanaka@example.jp", "routed@x", "spaced@x", "\"john doe\"@example.com"});
  CHECK(m.folded_addresses("Bcc").empty());
}

// --- conditions ---

TEST_CASE("SPEC §6: a Japanese subject in any common encoding matches `subject contains 重要`", "[filter_match]") {
  const Condition c = subject(contains, "重要");
  CHECK(matches(c, "Subject: =?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEGyhC?=\r\n"));
  CHECK(matches(c, "Subject: =?Shift_JIS?B?gXmPZJd2gXqJ74tj?=\r\n"));
  CHECK(matches(c, "Subject: =?EUC-JP?B?odq9xc3Xoduy8bXE?=\r\n"));
  CHECK(matches(c, "Subject: =?UTF-8?Q?=E3=80=90=E9=87=8D=E8=A6=81=E3=80=91=E4=BC=9A=E8=AD=B0?=\r\n"));
  CHECK(matches(c, "Subject: Re: =?utf-8?q?=E3=80=90=E9=87=8D?=\r\n =?utf-8?q?=E8=A6=81=E3=80=91?=\r\n")); // split, folded
  CHECK(matches(c, "Subject: 【重要】raw UTF-8\r\n"));
  CHECK_FALSE(matches(c, "Subject: =?Shift_JIS?B?gqiSbYLngrk=?=\r\n")); // お知らせ
  CHECK_FALSE(matches(c, "From: a@b\r\n"));                           // absent field never matches
  CHECK(matches(subject(is, "【重要】会議"), "Subject: =?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEGyhC?=\n"));
}

TEST_CASE("full-width and case differences fold away, both ways", "[filter_match]") {
  CHECK(matches(subject(contains, "abc"), "Subject: xx ＡＢＣ yy\n"));
  CHECK(matches(subject(contains, "ＡＢＣ"), "Subject: xx abc yy\n"));
  CHECK(matches(subject(is, "ABC"), "Subject: abc\n"));
  CHECK(matches(subject(is, "abc"), "Subject: =?UTF-8?B?77yh77yi77yj?=\n")); // ＡＢＣ encoded
  CHECK(matches(subject(contains, "カタカナ"), "Subject: ｶﾀｶﾅ\n"));
  CHECK_FALSE(matches(subject(is, "abc"), "Subject: abcd\n"));
}

TEST_CASE("from/to/cc match the whole field or any one address", "[filter_match]") {
  const Condition boss = from(is, "boss@example.com");
  CHECK(matches(boss, "From: \"Boss\" <Boss@Example.com>\n"));
  CHECK(matches(boss, "From: Boss <boss@example.com>\n"));
  CHECK(matches(boss, "From: boss@example.com (The Boss)\n"));
  CHECK(matches(boss, "From: BOSS@EXAMPLE.COM\n"));
  CHECK(matches(boss, "From: =?UTF-8?B?55Sw5LitIOWkqumDjg==?= <boss@example.com>\n"));
  // A display name that looks like the address is not the address (`is` on the whole
  // field fails, and display names are not addresses).
  CHECK_FALSE(matches(boss, "From: \"boss@example.com\" <impostor@evil.example>\n"));
  CHECK_FALSE(matches(boss, "From: underboss@example.com\n"));
  CHECK_FALSE(matches(boss, "To: boss@example.com\n"));
  // An encoded display name (UTF-8 and ISO-2022-JP).
  CHECK(matches(from(contains, "田中"), "From: =?UTF-8?B?55Sw5LitIOWkqumDjg==?= <tanaka@example.jp>\n"));
  CHECK(matches(from(contains, "田中"), "From: =?ISO-2022-JP?B?GyRCRURDZhsoQiAbJEJCQE86GyhC?= <t@example.jp>\n"));
  CHECK(matches(from(glob, "*@example.jp"), "From: =?UTF-8?B?55Sw5LitIOWkqumDjg==?= <tanaka@example.jp>\n"));
  CHECK_FALSE(matches(from(glob, "*@example.com"), "From: Tanaka <tanaka@example.jp>\n"));
  // To and Cc: any occurrence, any address.
  const Condition to_team = field_condition(Condition::Field::to, is, "team@example.org");
  CHECK(matches(to_team, "To: a@x\nTo: \"Team, all\" <team@example.org>, b@y\n"));
  CHECK(matches(to_team, "To: Everyone: a@x, team@example.org;\n"));
  CHECK_FALSE(matches(to_team, "Cc: team@example.org\n"));
  CHECK(matches(field_condition(Condition::Field::cc, contains, "example.org"), "Cc: team@example.org\n"));
}

TEST_CASE("header NAME, size and all", "[filter_match]") {
  const Condition foo = field_condition(Condition::Field::header, is, "bar", "X-Foo");
  CHECK(matches(foo, "X-Other: 1\nx-foo: BAR\n"));
  CHECK(matches(foo, "X-Foo: nope\nX-Foo: Bar\n")); // any occurrence
  CHECK_FALSE(matches(foo, "X-Foo: bar baz\n"));
  CHECK_FALSE(matches(foo, "X-Foobar: bar\n"));
  CHECK_FALSE(matches(foo, "Subject: x\n"));
  CHECK(matches(field_condition(Condition::Field::header, glob, "mutt/?.*", "X-Mailer"), "X-Mailer: Mutt/2.2\n"));

  Condition big;
  big.kind = Condition::Kind::size_over;
  big.size = 1000;
  CHECK_FALSE(spool::condition_matches(big, message("", 1000)));
  CHECK(spool::condition_matches(big, message("", 1001)));
  CHECK(spool::condition_matches(all_condition(), message("")));
}

// --- evaluation order ---

namespace {

spool::Address alice() { return spool::Address::parse("alice@example.org"); }
const std::string urgent_head = "From: Boss <boss@example.com>\r\n"
                                "To: alice@example.org\r\n"
                                "Subject: =?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEGyhC?=\r\n";

spool::FilterConfig full_config() {
  spool::FilterConfig c;
  c.spam.enabled = true;
  c.rules.push_back({subject(contains, "unrelated"), spool::FilterRule::Action::bounce});
  c.rules.push_back({subject(contains, "重要"), spool::FilterRule::Action::discard});
  c.autoreply.enabled = true;
  c.autoreply.message = "away";
  c.forwards.push_back({from(is, "boss@example.com"), {"a@x.example", "b@y.example"}, true});
  return c;
}

FilterDecision evaluate(const spool::FilterConfig& c, const std::string& head,
                        spool::SpamVerdict v = spool::SpamVerdict::ham) {
  return spool::evaluate_filters(c, alice(), message(head), v);
}

} // namespace

TEST_CASE("evaluate_filters: spam beats rules beats auto-reply beats forwards", "[filter_match]") {
  using Step = FilterDecision::Step;
  using Action = FilterDecision::Action;
  spool::FilterConfig c = full_config();

  FilterDecision d = evaluate(c, urgent_head, spool::SpamVerdict::spam);
  CHECK(d.step == Step::spam);
  CHECK(d.action == Action::tag);
  CHECK(d.detail == "spam: tagged \"[SPAM]\"");
  c.spam.action = spool::SpamFilter::Action::discard;
  d = evaluate(c, urgent_head, spool::SpamVerdict::spam);
  CHECK(d.action == Action::discard);
  CHECK(d.detail == "spam: delete");
  // Unknown verdict (no scanner, or it failed): not spam.
  CHECK(evaluate(c, urgent_head, spool::SpamVerdict::unknown).step == Step::rule);

  d = evaluate(c, urgent_head);
  CHECK(d.step == Step::rule);
  CHECK(d.index == 1);
  CHECK(d.action == Action::discard);
  CHECK(d.detail == "rule 2 (subject contains 重要): delete");

  c.rules.erase(c.rules.begin() + 1);
  d = evaluate(c, urgent_head);
  CHECK(d.step == Step::autoreply);
  CHECK(d.action == Action::autoreply);
  CHECK(d.no_reply == spool::NoReplyReason::none);
  CHECK_FALSE(d.loop);
  CHECK(d.destinations.empty()); // auto-reply on: forwards never run

  c.autoreply.enabled = false;
  d = evaluate(c, urgent_head);
  CHECK(d.step == Step::forward);
  CHECK(d.index == 0);
  CHECK(d.action == Action::forward);
  CHECK(d.destinations == std::vector<std::string>{"a@x.example", "b@y.example"});
  CHECK(d.keep);
  CHECK(d.detail == "forward profile 1 (from is boss@example.com): to a@x.example, b@y.example, keeping a copy");

  d = evaluate(c, "From: someone@else.example\nSubject: hi\n");
  CHECK(d.step == Step::none);
  CHECK(d.action == Action::deliver);
  CHECK_FALSE(d.loop);
}

TEST_CASE("evaluate_filters: a bounce rule, and the first matching rule wins", "[filter_match]") {
  spool::FilterConfig c;
  c.rules.push_back({subject(contains, "nothing here"), spool::FilterRule::Action::discard});
  c.rules.push_back({from(glob, "*@example.com"), spool::FilterRule::Action::bounce});
  c.rules.push_back({all_condition(), spool::FilterRule::Action::discard});
  const FilterDecision d = evaluate(c, urgent_head);
  CHECK(d.step == FilterDecision::Step::rule);
  CHECK(d.index == 1);
  CHECK(d.action == FilterDecision::Action::bounce);
  CHECK(d.detail == "rule 2 (from matches *@example.com): bounce");
}

TEST_CASE("evaluate_filters: first matching forward profile wins; after `all` nothing fires", "[filter_match]") {
  spool::FilterConfig c;
  c.forwards.push_back({subject(contains, "invoice"), {"billing@x.example"}, false});
  c.forwards.push_back({all_condition(), {"everything@x.example"}, true});
  c.forwards.push_back({from(is, "boss@example.com"), {"boss-copy@x.example"}, true}); // inert

  FilterDecision d = evaluate(c, "From: boss@example.com\nSubject: Invoice 42\n");
  CHECK(d.index == 0);
  CHECK_FALSE(d.keep);
  CHECK(d.destinations == std::vector<std::string>{"billing@x.example"});
  CHECK(d.detail == "forward profile 1 (subject contains invoice): to billing@x.example, no local copy");

  d = evaluate(c, "From: boss@example.com\nSubject: hello\n");
  CHECK(d.step == FilterDecision::Step::forward);
  CHECK(d.index == 1);
  CHECK(d.destinations == std::vector<std::string>{"everything@x.example"});
}

TEST_CASE("evaluate_filters: Delivered-To the account stops forwards and replies", "[filter_match]") {
  using Action = FilterDecision::Action;
  const std::string looped = "Delivered-To: other@example.net\r\n"
                             "Delivered-To: Alice@Example.ORG\r\n" + urgent_head;
  spool::FilterConfig c;
  c.forwards.push_back({all_condition(), {"a@x.example"}, false});
  FilterDecision d = evaluate(c, looped);
  CHECK(d.step == FilterDecision::Step::forward);
  CHECK(d.loop);
  CHECK(d.action == Action::deliver); // the local copy is kept although keep was off
  CHECK(d.keep);
  CHECK(d.destinations.empty());
  CHECK(d.detail == "forward profile 1 (all): looping: Delivered-To <alice@example.org> already present (5.4.6): "
                    "stored, not forwarded");
  CHECK_FALSE(evaluate(c, "Delivered-To: other@example.net\n" + urgent_head).loop);
  CHECK(evaluate(c, "Delivered-To: <alice@example.org>\n").loop);

  c.autoreply.enabled = true;
  d = evaluate(c, looped);
  CHECK(d.step == FilterDecision::Step::autoreply);
  CHECK(d.action == Action::autoreply); // still stored
  CHECK(d.loop);
  CHECK(d.no_reply == spool::NoReplyReason::loop);
  CHECK(d.detail.find("looping: Delivered-To <alice@example.org> already present (5.4.6)") != std::string::npos);

  // Rules still run on looping mail.
  c.rules.push_back({all_condition(), spool::FilterRule::Action::discard});
  CHECK(evaluate(c, looped).step == FilterDecision::Step::rule);
}

TEST_CASE("to_string(NoReplyReason) words are stable", "[filter_match]") {
  using R = spool::NoReplyReason;
  CHECK(spool::to_string(R::none).empty());
  CHECK(spool::to_string(R::null_sender) == "null sender");
  CHECK(spool::to_string(R::mailer_daemon) == "mailer-daemon");
  CHECK(spool::to_string(R::list_mail) == "list mail");
  CHECK(spool::to_string(R::auto_submitted) == "auto-submitted");
  CHECK(spool::to_string(R::not_addressed) == "not addressed to the account");
  CHECK(spool::to_string(R::loop) == "loop");
}

// --- linear time on hostile headers (the results are checked; run with --durations yes) ---

TEST_CASE("linear: a subject of 10,000 encoded words", "[filter_match][linear]") {
  std::string value;
  for (int i = 0; i < 10000; ++i) value += "=?UTF-8?B?5L2g?= ";
  const FilterMessage m("Subject: " + value + "\r\n", 1, "");
  const std::vector<std::string>& folded = m.folded_fields("Subject");
  REQUIRE(folded.size() == 1);
  std::string expected;
  for (int i = 0; i < 10000; ++i) expected += "你";
  CHECK(folded[0] == expected); // §6.2: the spaces between the words are dropped
  CHECK(spool::condition_matches(subject(contains, "你你你"), m));
  CHECK(spool::condition_matches(subject(glob, "*你*你*你"), m));
  CHECK_FALSE(spool::condition_matches(subject(glob, "*你*你*x"), m));
}

TEST_CASE("linear: 10,000 ISO-2022-JP words, unterminated and bogus words", "[filter_match][linear]") {
  std::string iso;
  for (int i = 0; i < 10000; ++i) iso += "=?ISO-2022-JP?B?GyRCIVo9RU1XIVsycTVEGyhC?= ";
  CHECK(spool::condition_matches(subject(contains, "会議【重要】"), message("Subject: " + iso + "\n")));
  // Words that never close, or close far away after a bad charset or bad base64: every
  // candidate used to rescan to the end (quadratic in header_decode.cc).
  for (const char* unit : {"=?x?q?a ", "=?x?q?a", "=?UTF-8?B?@", "=?no-such-charset?Q?a=", "=?UTF-8?Q?a"}) {
    std::string value;
    while (value.size() < 512 * 1024) value += unit;
    const std::string decoded = spool::decode_header_value(value);
    CHECK_FALSE(decoded.empty());
  }
}

TEST_CASE("linear: a 1 MiB header with many fields and long address lists", "[filter_match][linear]") {
  std::string head;
  int received = 0;
  while (head.size() < 600 * 1024) {
    head += "Received: from relay" + std::to_string(received++) + ".example (=?UTF-8?B?5L2g?=)\r\n\tby x\r\n";
  }
  head += "To: ";
  int recipients = 0;
  while (head.size() < spool::max_filter_header_block - 100) {
    head += "\"User, " + std::to_string(recipients) + "\" <u" + std::to_string(recipients) + "@example.org>, ";
    ++recipients;
  }
  head += "last@example.org\r\n";
  // The cut falls inside this field; what follows is never seen.
  head += "X-Pad: " + std::string(spool::max_filter_header_block - head.size() + 100, 'p') + "\r\n";
  head += "Subject: never seen: past the 1 MiB cut\r\n";
  const FilterMessage m(head, head.size(), "s@x");
  CHECK(m.header_block().size() == spool::max_filter_header_block);
  CHECK(m.raw_fields("Received").size() == static_cast<std::size_t>(received));
  CHECK(m.folded_fields("Received").size() == static_cast<std::size_t>(received));
  CHECK(m.folded_fields("Subject").empty());
  const std::vector<std::string>& to = m.folded_addresses("To");
  CHECK(to.size() == static_cast<std::size_t>(recipients) + 1);
  CHECK(to.back() == "last@example.org");
  CHECK(spool::condition_matches(field_condition(Condition::Field::to, is, "last@example.org"), m));
  CHECK_FALSE(spool::condition_matches(field_condition(Condition::Field::to, glob, "*@nowhere.example"), m));
  CHECK_FALSE(spool::condition_matches(field_condition(Condition::Field::header, contains, std::string(500, 'x') + "y", "Received"), m));
}
