// filters_test.cc — filters.yaml (filters.h): the COND parser with the exact column of
// every error, the canonical form reading back to itself, forward destinations (no
// program, no file, no loop to the account), the whole-config limits, the YAML round trip
// and hand-broken files (each with its one exact error naming file and line), the parse
// cache, and update_filters() refusing a change that breaks a limit.
#include "spool/filters.h"

#include "spool/atomic_file.h"
#include "store_fixture.h"
#include "test_support.h"

#include <string>
#include <vector>

using spool::Condition;
using spool::Errc;
using spool::FilterConfig;
using mhtest::error_from;
using mhtest::TempDir;
namespace fs = std::filesystem;

namespace {

std::string condition_error(const std::string& input) {
  spool::Error e = error_from([&] { (void)spool::parse_condition(input); });
  CHECK(e.code() == Errc::invalid_input);
  return e.what();
}

std::string destination_error(const spool::Address& account, const std::string& input) {
  spool::Error e = error_from([&] { (void)spool::check_forward_destination(account, input); });
  CHECK(e.code() == Errc::invalid_input);
  return e.what();
}

std::string validation_error(const spool::Address& account, const FilterConfig& c) {
  spool::Error e = error_from([&] { spool::validate_filter_config(account, c); });
  CHECK(e.code() == Errc::invalid_input);
  return e.what();
}

spool::ForwardProfile profile(const std::string& cond, std::vector<std::string> to, bool keep = true) {
  spool::ForwardProfile p;
  p.condition = spool::parse_condition(cond);
  p.destinations = std::move(to);
  p.keep = keep;
  return p;
}

spool::FilterRule rule(const std::string& cond, spool::FilterRule::Action action = spool::FilterRule::Action::discard) {
  spool::FilterRule r;
  r.condition = spool::parse_condition(cond);
  r.action = action;
  return r;
}

// Writes `yaml` as filters.yaml in `dir`; returns the bad_config message loading it gives.
std::string file_rejection(const TempDir& dir, const std::string& yaml,
                           const spool::Address& account = spool::Address::parse("taro@example.org")) {
  const fs::path file = dir / "filters.yaml";
  mhtest::write_text(file, yaml);
  spool::Error e = error_from([&] { (void)spool::load_filter_config(file, account); });
  CHECK(e.code() == Errc::bad_config);
  CHECK(e.exit_code() == 78);
  return e.what();
}

// A full config with every part on and texts that stress YAML quoting.
FilterConfig full_config() {
  FilterConfig c;
  c.spam.enabled = true;
  c.spam.action = spool::SpamFilter::Action::tag;
  c.spam.tag = "[迷惑] \"spam\": #1";
  c.rules.push_back(rule("subject contains 未承諾広告"));
  c.rules.push_back(rule("subject is key: value # not a comment", spool::FilterRule::Action::bounce));
  c.rules.push_back(rule("header X-Mailer matches *Bulk \"Mailer\"* 'v2' \\ {x} [y]"));
  c.rules.push_back(rule("size > 10M", spool::FilterRule::Action::bounce));
  c.autoreply.enabled = true;
  c.autoreply.subject = "不在のお知らせ: Away\u00a0now\ufeff";  // NBSP and BOM: yaml-cpp escapes them
  c.autoreply.days = 14;
  c.autoreply.message = "  leading spaces\n\tand a tab\r\n\"quoted\" 'single' \\ backslash\n# hash\n---\n\n"
                        "日本語の本文です。\n- item: yes\n";
  c.forwards.push_back(profile("from contains 上司 さん", {"boss.copy@example.net"}, false));
  c.forwards.push_back(profile("cc is null", {"a@example.org"}));
  c.forwards.push_back(profile("all", {"a@example.org", "B.Sato+x@xn--wgv71a.jp"}));
  return c;
}

} // namespace

TEST_CASE("filters: conditions that parse", "[filters]") {
  struct Good {
    std::string input;
    Condition::Kind kind;
    Condition::Field field;
    Condition::Op op;
    std::string header;
    std::string text;
    std::uint64_t size;
  };
  using K = Condition::Kind;
  using F = Condition::Field;
  using O = Condition::Op;
  const std::vector<Good> table = {
      {"all", K::all, F::subject, O::contains, "", "", 0},
      {"  ALL \t", K::all, F::subject, O::contains, "", "", 0},
      {"size > 500K", K::size_over, F::subject, O::contains, "", "", 500 * 1024},
      {"Size\t>  2M", K::size_over, F::subject, O::contains, "", "", 2 * 1024 * 1024},
      {"size > 1234", K::size_over, F::subject, O::contains, "", "", 1234},
      {"subject contains 未承諾広告", K::field, F::subject, O::contains, "", "未承諾広告", 0},
      {"Subject CONTAINS hello   world", K::field, F::subject, O::contains, "", "hello   world", 0},
      {"from is \t a@example.org \t ", K::field, F::from, O::is, "", "a@example.org", 0},
      {"to matches *@example.org", K::field, F::to, O::matches, "", "*@example.org", 0},
      {"cc is ＡＢＣ", K::field, F::cc, O::is, "", "ＡＢＣ", 0},
      {"header X-Mailer matches Foo*  bar", K::field, F::header, O::matches, "X-Mailer", "Foo*  bar", 0},
      {"HEADER list-id IS <news.example.org>", K::field, F::header, O::is, "list-id", "<news.example.org>", 0},
      // Keywords are only keywords where a keyword is expected.
      {"subject is all contains size > 5", K::field, F::subject, O::is, "", "all contains size > 5", 0},
  };
  for (const Good& g : table) {
    INFO(g.input);
    const Condition c = spool::parse_condition(g.input);
    CHECK(c.kind == g.kind);
    CHECK(c.field == g.field);
    CHECK(c.op == g.op);
    CHECK(c.header_name == g.header);
    CHECK(c.text == g.text);
    CHECK(c.size == g.size);
  }
}

TEST_CASE("filters: conditions refused, with the column where they went wrong", "[filters]") {
  const std::string fields = "(expected all, size, from, to, cc, subject, header)";
  const std::string ops = "(expected contains, is, matches)";
  const std::string size_usage = "(write it as: size > SIZE, e.g. size > 500K)";
  const std::vector<std::pair<std::string, std::string>> table = {
      {"subjet contains x", "in 'subjet contains x' at column 1: unknown field 'subjet' " + fields},
      {"", "in '' at column 1: empty condition " + fields},
      {"   ", "in '   ' at column 4: empty condition " + fields},
      {"件名 contains x", "in '件名 contains x' at column 1: unknown field '件名' " + fields},
      {"subject", "in 'subject' at column 8: missing operator after 'subject' " + ops},
      {"subject contain x", "in 'subject contain x' at column 9: unknown operator 'contain' " + ops},
      {"subject  =  x", "in 'subject  =  x' at column 10: unknown operator '=' " + ops},
      {"subject contains", "in 'subject contains' at column 17: missing the text to compare with after the operator"},
      {"from is   ", "in 'from is   ' at column 11: missing the text to compare with after the operator"},
      {"all x", "in 'all x' at column 5: nothing may follow 'all', got 'x'"},
      {"all  and more", "in 'all  and more' at column 6: nothing may follow 'all', got 'and more'"},
      {"size", "in 'size' at column 5: missing '>' after 'size' " + size_usage},
      {"size 5M", "in 'size 5M' at column 6: expected '>' after 'size', got '5M' " + size_usage},
      {"size >5M", "in 'size >5M' at column 6: expected '>' after 'size', got '>5M' " + size_usage},
      {"size>5M", "in 'size>5M' at column 5: expected a space after 'size' " + size_usage},
      {"size >", "in 'size >' at column 7: missing the size after 'size >' " + size_usage},
      {"size > 5X", "in 'size > 5X' at column 8: invalid size '5X': unit must be K, M, G or T"},
      {"size > big", "in 'size > big' at column 8: invalid size 'big': expected a number"},
      {"size > 5M more", "in 'size > 5M more' at column 11: nothing may follow the size, got 'more'"},
      {"header", "in 'header' at column 7: missing the field name after 'header' (e.g. header X-Mailer contains foo)"},
      {"header X-Foo", "in 'header X-Foo' at column 13: missing operator after 'X-Foo' " + ops},
      {"header X:Y is a",
       "in 'header X:Y is a' at column 9: 'X:Y' is not a header field name (printable ASCII without ':', RFC 5322 §3.6.8)"},
      {"header Ｘ-Foo is a",
       "in 'header Ｘ-Foo is a' at column 8: 'Ｘ-Foo' is not a header field name (printable ASCII without ':', RFC 5322 §3.6.8)"},
      // Columns count characters: 重要 is two columns, not six bytes.
      {"header X-Test is 重要\x7f", "in 'header X-Test is 重要\uFFFD' at column 20: the text holds control character U+007F"},
      {"subject is a\tb", "in 'subject is a b' at column 13: the text holds control character U+0009"},
      {"subject is a\nb", "in 'subject is a\uFFFDb' at column 13: the text holds control character U+000A"},
      {"subject is \xc2\x85x", "in 'subject is \uFFFDx' at column 12: the text holds control character U+0085"},
      {"subject contains 重\xff要", "in 'subject contains 重\uFFFD要' at column 19: the text is not valid UTF-8"},
      {"subject is \xc0\xafx", "in 'subject is \uFFFD\uFFFDx' at column 12: the text is not valid UTF-8"},  // overlong '/'
      {"subject is \xed\xa0\x80", "in 'subject is \uFFFD\uFFFD\uFFFD' at column 12: the text is not valid UTF-8"},  // surrogate
  };
  for (const auto& [input, message] : table) {
    INFO(input);
    CHECK(condition_error(input) == message);
  }
}

TEST_CASE("filters: TEXT is limited to max_condition_text bytes", "[filters]") {
  CHECK(spool::parse_condition("subject is " + std::string(spool::max_condition_text, 'a')).text.size() ==
        spool::max_condition_text);
  // 341 three-byte characters = 1023 bytes: fits.
  std::string japanese;
  for (int i = 0; i < 341; ++i) japanese += "語";
  CHECK(spool::parse_condition("subject is " + japanese).text == japanese);

  const std::string message = condition_error("subject is " + std::string(spool::max_condition_text + 1, 'a'));
  // The quoted input is cut after 100 characters, so a huge argument gives a short message.
  CHECK(message == "in 'subject is " + std::string(89, 'a') + "…' at column 12: the text is 1025 bytes, at most 1024");
  CHECK(condition_error("subject is " + japanese + "語").find("at column 12: the text is 1026 bytes, at most 1024") !=
        std::string::npos);
}

TEST_CASE("filters: str() is canonical and reads back to an equal condition", "[filters]") {
  const std::vector<std::pair<std::string, std::string>> table = {
      {"ALL", "all"},
      {"size   >   524288", "size > 512K"},
      {"size > 2048K", "size > 2M"},
      {"size > 1000", "size > 1000"},
      {"size > 0", "size > 0"},
      {"SUBJECT  Contains  重要なお知らせ  ", "subject contains 重要なお知らせ"},
      {"subject is two  spaces  inside", "subject is two  spaces  inside"},
      {"from matches *@例え.jp", "from matches *@例え.jp"},
      {"to is a@example.org", "to is a@example.org"},
      {"cc contains ｶﾀｶﾅ 半角", "cc contains ｶﾀｶﾅ 半角"},
      {"Header X-Spam-Level CONTAINS ***", "header X-Spam-Level contains ***"},
      {"header x-mailer is Microsoft Outlook 16.0", "header x-mailer is Microsoft Outlook 16.0"},
      {"subject matches [広告]*", "subject matches [広告]*"},
      {"subject contains 'quoted' \"double\" \\ # : -", "subject contains 'quoted' \"double\" \\ # : -"},
      {"subject is 🎉 emoji", "subject is 🎉 emoji"},
  };
  for (const auto& [input, canonical] : table) {
    INFO(input);
    const Condition c = spool::parse_condition(input);
    CHECK(c.str() == canonical);
    CHECK(spool::parse_condition(c.str()) == c);
    CHECK(spool::parse_condition(c.str()).str() == canonical);
  }
}

TEST_CASE("filters: forward destinations", "[filters]") {
  const spool::Address taro = spool::Address::parse("taro@example.org");
  CHECK(spool::check_forward_destination(taro, "hanako@example.org") == "hanako@example.org");
  // The local part is kept as written; the domain is lower-cased, IDN as punycode.
  CHECK(spool::check_forward_destination(taro, "Hanako.Sato+news@Example.ORG") == "Hanako.Sato+news@example.org");
  CHECK(spool::check_forward_destination(taro, "hanako@日本.JP") == "hanako@xn--wgv71a.jp");
  CHECK(spool::check_forward_destination(taro, "x!#$%&*=?^_`{|}~-y@example.org") == "x!#$%&*=?^_`{|}~-y@example.org");
  CHECK(spool::check_forward_destination(taro, "taro@example.net") == "taro@example.net");
  CHECK(spool::check_forward_destination(taro, "jiro@example.org") == "jiro@example.org");

  const std::string full = "expected a full address like user@example.org";
  const std::vector<std::pair<std::string, std::string>> table = {
      {"|/bin/sh", "forward destination '|/bin/sh': a forward to a program is not possible"},
      {"|\"/usr/bin/procmail -f-\"", "forward destination '|\"/usr/bin/procmail -f-\"': a forward to a program is not possible"},
      {"/etc/passwd", "forward destination '/etc/passwd': a forward to a file is not possible (" + full + ")"},
      {"../../x@example.org", "forward destination '../../x@example.org': a forward to a file is not possible (" + full + ")"},
      {"hanako", "forward destination 'hanako': no '@' (" + full + ")"},
      {"@example.org", "forward destination '@example.org': the local part before '@' is empty"},
      {"hanako@", "forward destination 'hanako@': the domain after '@' is empty"},
      {"a@b@example.org", "forward destination 'a@b@example.org': more than one '@'"},
      {"hanako sato@example.org", "forward destination 'hanako sato@example.org': contains a space or a control character"},
      {"hanako@example.org\n", "forward destination 'hanako@example.org\uFFFD': contains a space or a control character"},
      {std::string("hana\0ko@example.org", 19),
       "forward destination 'hana\uFFFDko@example.org': contains a space or a control character"},
      {"\"hanako\"@example.org",
       "forward destination '\"hanako\"@example.org': quotes and backslashes are not accepted in a forward destination"},
      {"han\\ako@example.org",
       "forward destination 'han\\ako@example.org': quotes and backslashes are not accepted in a forward destination"},
      {"<hanako@example.org>", "forward destination '<hanako@example.org>': '<' is not allowed in the local part"},
      {"a,b@example.org", "forward destination 'a,b@example.org': ',' is not allowed in the local part"},
      {".hanako@example.org",
       "forward destination '.hanako@example.org': the local part must not start or end with '.' or hold '..'"},
      {"hana..ko@example.org",
       "forward destination 'hana..ko@example.org': the local part must not start or end with '.' or hold '..'"},
      {"花子@example.org", "forward destination '花子@example.org': the local part must be ASCII"},
      {"hanako@localhost",
       "forward destination 'hanako@localhost': invalid domain 'localhost': domain needs at least two labels (example.jp)"},
      {"hanako@[192.0.2.1]", "forward destination 'hanako@[192.0.2.1]': invalid domain '[192.0.2.1]': domain contains a "
                             "character other than a-z 0-9 - ."},
      // The account itself, however it is spelled, is a loop.
      {"taro@example.org", "forward destination 'taro@example.org': a forward to the account itself would loop"},
      {"TARO@Example.ORG.", "forward destination 'TARO@Example.ORG.': a forward to the account itself would loop"},
  };
  for (const auto& [input, message] : table) {
    INFO(input);
    CHECK(destination_error(taro, input) == message);
  }
  CHECK(destination_error(taro, "") == "empty forward destination (" + full + ")");
  CHECK(destination_error(taro, std::string(64, 'a') + "b@example.org") ==
        "forward destination '" + std::string(64, 'a') + "b@example.org': the local part is longer than 64 bytes "
        "(RFC 5321 §4.5.3.1.1)");
  const std::string long_domain = std::string(63, 'd') + "." + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                                  std::string(51, 'd') + ".jp";  // 246 bytes
  CHECK(spool::check_forward_destination(taro, "abcdefg@" + long_domain).size() == 254);
  CHECK(destination_error(taro, "abcdefgh@" + long_domain).find("': 255 bytes, at most 254") != std::string::npos);

  // An IDN account: the Unicode spelling of its own domain is still itself.
  const spool::Address idn = spool::Address::parse("taro@日本.jp");
  CHECK(destination_error(idn, "Taro@日本.jp") ==
        "forward destination 'Taro@日本.jp': a forward to the account itself would loop");
  CHECK(destination_error(idn, "taro@XN--WGV71A.JP") ==
        "forward destination 'taro@XN--WGV71A.JP': a forward to the account itself would loop");
}

TEST_CASE("filters: validate_filter_config limits, numbered as mh-filter show lists them", "[filters]") {
  const spool::Address taro = spool::Address::parse("taro@example.org");
  FilterConfig ok = full_config();
  spool::validate_filter_config(taro, ok);
  spool::validate_filter_config(taro, FilterConfig{});

  FilterConfig c;
  for (int i = 0; i < 10; ++i) c.forwards.push_back(profile("all", {"a@example.org"}));
  spool::validate_filter_config(taro, c);
  c.forwards.push_back(profile("all", {"a@example.org"}));
  CHECK(validation_error(taro, c) == "at most 10 forward profiles (there would be 11)");

  c = FilterConfig{};
  c.forwards.push_back(profile("all", {"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"}));
  spool::validate_filter_config(taro, c);
  c.forwards.front().destinations.push_back("f@example.org");
  CHECK(validation_error(taro, c) == "forward profile 1: 6 destinations, at most 5");
  c.forwards.front().destinations.clear();
  CHECK(validation_error(taro, c) == "forward profile 1: no destination (a profile forwards to 1..5 addresses)");

  c = FilterConfig{};
  c.forwards.push_back(profile("from is x", {"a@example.org"}));
  c.forwards.push_back(profile("all", {"b@example.org", "|/usr/bin/vacation taro"}));
  CHECK(validation_error(taro, c) == "forward profile 2, destination 2: forward destination '|/usr/bin/vacation taro': "
                                     "a forward to a program is not possible");
  c.forwards.back().destinations = {"b@example.org", "Taro@EXAMPLE.org"};
  CHECK(validation_error(taro, c) == "forward profile 2, destination 2: forward destination 'Taro@EXAMPLE.org': "
                                     "a forward to the account itself would loop");
  c.forwards.back().destinations = {"b@example.org", "b@EXAMPLE.org"};
  CHECK(validation_error(taro, c) == "forward profile 2, destination 2: 'b@example.org' repeats destination 1");

  // A condition built by hand must be one parse_condition() would give.
  c = FilterConfig{};
  c.rules.push_back(rule("all"));
  c.rules.push_back(rule("subject is x"));
  c.rules.back().condition.text = " x";
  CHECK(validation_error(taro, c) == "rule 2: condition 'subject is  x' does not read back as itself (TEXT with leading "
                                     "or trailing blanks?)");
  c.rules.back().condition.text = "";
  CHECK(validation_error(taro, c) ==
        "rule 2: in 'subject is ' at column 12: missing the text to compare with after the operator");
  c.rules.clear();
  for (std::size_t i = 0; i <= spool::max_rules; ++i) c.rules.push_back(rule("subject is x"));
  CHECK(validation_error(taro, c) == "at most 100 rules (there would be 101)");

  c = FilterConfig{};
  c.autoreply.enabled = true;
  c.autoreply.message = "away";
  spool::validate_filter_config(taro, c);
  c.autoreply.days = 0;
  CHECK(validation_error(taro, c) == "auto-reply days must be 1..365, got 0");
  c.autoreply.days = 366;
  CHECK(validation_error(taro, c) == "auto-reply days must be 1..365, got 366");
  c.autoreply.days = 365;
  c.autoreply.message = std::string(spool::max_autoreply_message, 'x');
  spool::validate_filter_config(taro, c);
  c.autoreply.message += "x";
  CHECK(validation_error(taro, c) == "the auto-reply message is 65537 bytes, at most 65536");
  c.autoreply.message = "ok\n\xff";
  CHECK(validation_error(taro, c) == "the auto-reply message is not valid UTF-8 (at byte 4)");
  c.autoreply.message = "bell\a";
  CHECK(validation_error(taro, c) == "the auto-reply message holds control character U+0007 (at byte 5)");
  c.autoreply.message = "ok";
  c.autoreply.subject = "Away\r\nBcc: victim@example.net";  // header injection
  CHECK(validation_error(taro, c) == "the auto-reply subject holds control character U+000D");
  c.autoreply.enabled = false;  // settings of a part that is off are not checked (nor saved)
  spool::validate_filter_config(taro, c);

  c = FilterConfig{};
  c.spam.enabled = true;
  c.spam.tag = std::string(64, 't');
  spool::validate_filter_config(taro, c);
  c.spam.tag += "t";
  CHECK(validation_error(taro, c) == "the spam tag is 65 bytes, at most 64");
  c.spam.tag = "[SPAM]\n";
  CHECK(validation_error(taro, c) == "the spam tag holds control character U+000A");
  c.spam.tag = "[\xe8\xbf]";
  CHECK(validation_error(taro, c) == "the spam tag is not valid UTF-8");
}

TEST_CASE("filters: filters.yaml round trip", "[filters]") {
  TempDir dir;
  const fs::path file = dir / "filters.yaml";
  const spool::Address taro = spool::Address::parse("taro@example.org");
  const FilterConfig c = full_config();
  spool::save_filter_config(file, c);
  CHECK(spool::load_filter_config(file, taro) == c);

  // Readable like the command line, in the documented shape.
  const std::string text = mhtest::read_text(file);
  INFO(text);
  CHECK(text.rfind("# filters.yaml — managed by mh-filter; see mailhost(5)\n", 0) == 0);
  CHECK(text.find("\nrules:\n  - {if: \"subject contains 未承諾広告\", action: delete}\n") != std::string::npos);
  CHECK(text.find("  - {if: \"size > 10M\", action: bounce}\n") != std::string::npos);
  CHECK(text.find("\nautoreply:\n  subject: \"不在のお知らせ: Away\\xa0now\\ufeff\"\n  days: 14\n") != std::string::npos);
  CHECK(text.find("  - {if: \"all\", to: [\"a@example.org\", \"B.Sato+x@xn--wgv71a.jp\"], keep: true}\n") !=
        std::string::npos);
  CHECK(text.find("keep: false") != std::string::npos);
  CHECK(mhtest::entries_in(dir.path()) == 1);  // no temp file left behind

  struct stat st;
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);

  // Each part alone, and the spam action delete.
  FilterConfig spam_only;
  spam_only.spam.enabled = true;
  spam_only.spam.action = spool::SpamFilter::Action::discard;
  spool::save_filter_config(file, spam_only);
  CHECK(spool::load_filter_config(file, taro) == spam_only);
  FilterConfig autoreply_only;
  autoreply_only.autoreply.enabled = true;
  autoreply_only.autoreply.message = "";
  spool::save_filter_config(file, autoreply_only);
  CHECK(spool::load_filter_config(file, taro) == autoreply_only);

  // Empty: a file with just the comment, which loads as no filters.
  spool::save_filter_config(file, FilterConfig{});
  CHECK(mhtest::read_text(file) == "# filters.yaml — managed by mh-filter; see mailhost(5)\n");
  CHECK(spool::load_filter_config(file, taro).empty());
  CHECK(spool::load_filter_config(dir / "missing.yaml", taro) == FilterConfig{});
}

TEST_CASE("filters: a hand-written filters.yaml in the documented format loads", "[filters]") {
  TempDir dir;
  const fs::path file = dir / "filters.yaml";
  mhtest::write_text(file,
                     "# filters.yaml — managed by mh-filter; see mailhost(5)\n"
                     "spam: { action: tag, tag: \"[SPAM]\" }\n"
                     "rules:\n"
                     "  - { if: \"subject contains 未承諾広告\", action: delete }\n"
                     "  - if: size > 5M\n"
                     "    action: bounce\n"
                     "autoreply: { subject: \"Away\", days: 7, message: \"text…\" }\n"
                     "forward:\n"
                     "  - { if: all, to: [a@example.org, B@Example.ORG], keep: true }\n"
                     "  - { if: from is x, to: c@日本.jp }\n");
  const FilterConfig c = spool::load_filter_config(file, spool::Address::parse("taro@example.org"));
  CHECK(c.spam.enabled);
  CHECK(c.spam.tag == "[SPAM]");
  REQUIRE(c.rules.size() == 2);
  CHECK(c.rules[0].condition.text == "未承諾広告");
  CHECK(c.rules[1].condition.size == 5 * 1024 * 1024);
  CHECK(c.rules[1].action == spool::FilterRule::Action::bounce);
  CHECK(c.autoreply.enabled);
  CHECK(c.autoreply.message == "text…");
  REQUIRE(c.forwards.size() == 2);
  CHECK(c.forwards[0].destinations == std::vector<std::string>{"a@example.org", "B@example.org"});
  CHECK(c.forwards[1].destinations == std::vector<std::string>{"c@xn--wgv71a.jp"});
  CHECK(c.forwards[1].keep);

  // `rules:` / `forward:` left empty by hand mean no rules / profiles.
  mhtest::write_text(file, "rules:\nforward: []\n");
  CHECK(spool::load_filter_config(file, spool::Address::parse("taro@example.org")).empty());
}

TEST_CASE("filters: broken filters.yaml files, each with its exact error", "[filters]") {
  TempDir dir;
  const std::string f = (dir / "filters.yaml").string();
  const std::string unknown_field = "unknown field 'subjet' (expected all, size, from, to, cc, subject, header)";

  CHECK(file_rejection(dir, "spam: {action: tag}\nspma: {action: tag}\n") == f + ":2: key 'spma': unknown key");
  CHECK(file_rejection(dir, "rules:\n  - {if: all, action: delete, stop: true}\n") ==
        f + ":2: key 'rules[1].stop': unknown key");
  CHECK(file_rejection(dir, "rules:\n  - {if: all, action: drop}\n") ==
        f + ":2: key 'rules[1].action': expected 'delete' or 'bounce', got 'drop'");
  CHECK(file_rejection(dir, "spam: {action: reject}\n") ==
        f + ":1: key 'spam.action': expected 'tag' or 'delete', got 'reject'");
  CHECK(file_rejection(dir, "rules:\n  - {if: all, action: delete}\n  - {if: subjet contains x, action: bounce}\n") ==
        f + ":3: key 'rules[2].if': in 'subjet contains x' at column 1: " + unknown_field);
  CHECK(file_rejection(dir, "forward:\n  - if: size >\n    to: a@example.org\n") ==
        f + ":2: key 'forward[1].if': in 'size >' at column 7: missing the size after 'size >' (write it as: size > "
            "SIZE, e.g. size > 500K)");
  CHECK(file_rejection(dir, "rules:\n  - {action: delete}\n") ==
        f + ":2: key 'rules[1].if': missing (the file is incomplete)");
  CHECK(file_rejection(dir, "spam: on\n") ==
        f + ":1: key 'spam': expected a mapping like {action: tag, tag: \"[SPAM]\"} (remove the key to turn the spam "
            "filter off)");
  CHECK(file_rejection(dir, "rules: {if: all}\n") ==
        f + ":1: key 'rules': expected a list of {if: COND, action: delete|bounce}");
  CHECK(file_rejection(dir, "autoreply:\n  message: hi\n  days: 0\n") ==
        f + ":3: key 'autoreply.days': expected a number 1..365, got 0");
  CHECK(file_rejection(dir, "autoreply:\n  message: hi\n  days: 1w\n") ==
        f + ":3: key 'autoreply.days': expected a number 1..365, got '1w'");
  CHECK(file_rejection(dir, "autoreply:\n  days: 3\n") ==
        f + ":2: key 'autoreply.message': missing (the file is incomplete)");
  CHECK(file_rejection(dir, "autoreply:\n  message: \"a\\x07\"\n") ==
        f + ":2: key 'autoreply.message': the auto-reply message holds control character U+0007 (at byte 2)");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: [a@example.org], keep: maybe}\n") ==
        f + ":2: key 'forward[1].keep': expected true or false, got 'maybe'");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: a@example.org, to: b@example.org}\n") ==
        f + ":2: key 'forward[1].to': duplicate key");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: []}\n") ==
        f + ":2: key 'forward[1].to': no destination (a profile forwards to 1..5 addresses)");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: {a: b}}\n") ==
        f + ":2: key 'forward[1].to': expected an address or a list of addresses");
  CHECK(file_rejection(dir, "forward:\n  - if: all\n    to:\n      - a@example.org\n      - \"|/bin/sh -c x\"\n") ==
        f + ":5: key 'forward[1].to[2]': forward destination '|/bin/sh -c x': a forward to a program is not possible");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: /home/taro/mbox}\n") ==
        f + ":2: key 'forward[1].to': forward destination '/home/taro/mbox': a forward to a file is not possible "
            "(expected a full address like user@example.org)");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: [Taro@example.org]}\n") ==
        f + ":2: key 'forward[1].to[1]': forward destination 'Taro@example.org': a forward to the account itself would "
            "loop");
  CHECK(file_rejection(dir, "forward:\n  - {if: all, to: [a@example.org, a@EXAMPLE.org]}\n") ==
        f + ":2: key 'forward[1].to[2]': 'a@example.org' repeats destination 1");
  CHECK(file_rejection(dir, "rules: []\n---\nrules: []\n") ==
        f + ":3: more than one YAML document ('---'); a spool file holds exactly one");
  CHECK(file_rejection(dir, "rules: [\n") .rfind(f + ":2: malformed YAML: ", 0) == 0);

  // 11 profiles: the error is on the 11th.
  std::string eleven = "forward:\n";
  for (int i = 1; i <= 11; ++i) eleven += "  - {if: \"subject is " + std::to_string(i) + "\", to: [a@example.org]}\n";
  CHECK(file_rejection(dir, eleven) == f + ":12: key 'forward[11]': at most 10 forward profiles");

  // 6 destinations: the error is on the 6th.
  CHECK(file_rejection(dir, "forward:\n  - if: all\n    to:\n" + [] {
          std::string list;
          for (char c = 'a'; c <= 'f'; ++c) list += std::string("      - ") + c + "@example.org\n";
          return list;
        }()) == f + ":9: key 'forward[1].to[6]': at most 5 destinations in a profile");

  std::string many_rules = "rules:\n";
  for (std::size_t i = 0; i <= spool::max_rules; ++i) many_rules += "  - {if: all, action: delete}\n";
  CHECK(file_rejection(dir, many_rules) == f + ":102: key 'rules[101]': at most 100 rules");

  CHECK(file_rejection(dir, "# " + std::string(spool::max_filters_file, 'x') + "\n") ==
        f + ": too large (1048579 bytes, limit 1 MiB)");
}

TEST_CASE("filters: the parse cache sees a replaced or edited file", "[filters]") {
  TempDir dir;
  const fs::path file = dir / "filters.yaml";
  const spool::Address taro = spool::Address::parse("taro@example.org");

  FilterConfig a;
  a.rules.push_back(rule("subject is a"));
  spool::save_filter_config(file, a);
  CHECK(spool::load_filter_config(file, taro) == a);
  CHECK(spool::load_filter_config(file, taro) == a);  // from the cache

  FilterConfig b;
  b.rules.push_back(rule("subject is b"));  // same size as a: only the inode tells them apart
  spool::save_filter_config(file, b);
  CHECK(spool::load_filter_config(file, taro) == b);

  // An edit in place (what an editor without rename does) is seen too.
  mhtest::write_text(file, "rules:\n  - {if: subject is c, action: bounce}\n");
  CHECK(spool::load_filter_config(file, taro).rules.at(0).condition.text == "c");

  // A broken file is not cached: the error repeats, and a fix is seen at once.
  mhtest::write_text(file, "rules:\n  - {if: subject is, action: bounce}\n");
  CHECK(error_from([&] { (void)spool::load_filter_config(file, taro); }).code() == Errc::bad_config);
  CHECK(error_from([&] { (void)spool::load_filter_config(file, taro); }).code() == Errc::bad_config);
  spool::save_filter_config(file, a);
  CHECK(spool::load_filter_config(file, taro) == a);

  // Removed: no filters, not the cached config.
  fs::remove(file);
  CHECK(spool::load_filter_config(file, taro).empty());

  // Whose file it is matters: the same file loops for one account and not for another.
  FilterConfig fw;
  fw.forwards.push_back(profile("all", {"hanako@example.org"}));
  spool::save_filter_config(file, fw);
  CHECK(spool::load_filter_config(file, taro) == fw);
  CHECK(error_from([&] { (void)spool::load_filter_config(file, spool::Address::parse("hanako@example.org")); }).code() ==
        Errc::bad_config);
  CHECK(spool::load_filter_config(file, taro) == fw);
}

TEST_CASE("filters: read_filters and update_filters on a spool", "[filters]") {
  mhtest::StoreSpool spool_dir;
  const spool::Layout& layout = spool_dir.layout();
  const spool::Address taro = spool_dir.account("taro@example.org");
  const fs::path file = layout.filters_config(taro);

  CHECK(spool::read_filters(layout, taro).empty());
  CHECK_FALSE(fs::exists(file));

  spool::update_filters(layout, taro, [](FilterConfig& c) {
    c.forwards.push_back(profile("subject contains 請求書", {"keiri@日本.jp"}, false));
  });
  FilterConfig c = spool::read_filters(layout, taro);
  REQUIRE(c.forwards.size() == 1);
  CHECK(c.forwards[0].destinations == std::vector<std::string>{"keiri@xn--wgv71a.jp"});  // stored normalised
  CHECK_FALSE(c.forwards[0].keep);

  // Fill to the limit, then an 11th profile is refused and the file is left as it was.
  spool::update_filters(layout, taro, [](FilterConfig& c) {
    while (c.forwards.size() < spool::max_forward_profiles) c.forwards.push_back(profile("all", {"a@example.org"}));
  });
  const std::string before = mhtest::read_text(file);
  spool::Error e = error_from([&] {
    spool::update_filters(layout, taro, [](FilterConfig& c) { c.forwards.push_back(profile("all", {"b@example.org"})); });
  });
  CHECK(e.code() == Errc::invalid_input);
  CHECK(std::string(e.what()) == "at most 10 forward profiles (there would be 11)");
  CHECK(mhtest::read_text(file) == before);
  CHECK(spool::read_filters(layout, taro).forwards.size() == 10);

  // A forward to itself, added through update_filters, is refused the same way.
  e = error_from([&] {
    spool::update_filters(layout, taro, [](FilterConfig& c) { c.forwards[0].destinations.push_back("taro@example.org"); });
  });
  CHECK(std::string(e.what()) == "forward profile 1, destination 2: forward destination 'taro@example.org': a forward "
                                 "to the account itself would loop");
  CHECK(mhtest::read_text(file) == before);

  // A change that throws abandons the update.
  CHECK_THROWS_AS(spool::update_filters(layout, taro,
                                        [](FilterConfig& c) {
                                          c.forwards.clear();
                                          throw std::runtime_error("changed my mind");
                                        }),
                  std::runtime_error);
  CHECK(mhtest::read_text(file) == before);

  // A temp file left by a writer killed before its rename is swept by the next writer.
  mhtest::write_text(file.parent_path() / ".filters.yaml.tmp.12345.1.abc", "half");
  spool::update_filters(layout, taro, [](FilterConfig& c) { c.forwards.resize(1); });
  CHECK_FALSE(fs::exists(file.parent_path() / ".filters.yaml.tmp.12345.1.abc"));
  CHECK(spool::read_filters(layout, taro).forwards.size() == 1);

  // Missing domain / account.
  CHECK(error_from([&] { (void)spool::read_filters(layout, spool::Address::parse("taro@example.net")); }).code() ==
        Errc::no_domain);
  CHECK(error_from([&] { (void)spool::read_filters(layout, spool::Address::parse("jiro@example.org")); }).code() ==
        Errc::no_account);
  CHECK(error_from([&] {
          spool::update_filters(layout, spool::Address::parse("jiro@example.org"), [](FilterConfig&) {});
        }).code() == Errc::no_account);
  CHECK_FALSE(fs::exists(layout.account_dir(spool::Address::parse("jiro@example.org"))));

  // A hand-broken file is bad_config for read and update alike, and update writes nothing.
  mhtest::write_text(file, "forward:\n  - {if: all, to: [\"|/bin/sh\"]}\n");
  CHECK(error_from([&] { (void)spool::read_filters(layout, taro); }).code() == Errc::bad_config);
  CHECK(error_from([&] { spool::update_filters(layout, taro, [](FilterConfig& c) { c.forwards.clear(); }); }).code() ==
        Errc::bad_config);
  CHECK(mhtest::read_text(file) == "forward:\n  - {if: all, to: [\"|/bin/sh\"]}\n");

  // A symlink planted as filters.yaml is never followed.
  fs::remove(file);
  fs::create_symlink("/etc/passwd", file);
  CHECK(error_from([&] { (void)spool::read_filters(layout, taro); }).code() == Errc::other);
}
