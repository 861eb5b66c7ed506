// mlist_test.cc — mailing lists on a real temp spool (mlist.h): provisioning and the
// list/account name clash, --force, strict list.yaml and every settings limit, address
// normalization, members in bulk, bounces, the mail-bomb window, sequence numbers, the
// archive listing and pending items.
#include "spool/mlist.h"

#include "spool/accounts.h"
#include "spool/maildir.h"
#include "test_support.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <sstream>

using spool::Address;
using spool::Domain;
using spool::Errc;
using spool::LocalPart;
using mhtest::error_from;
using mhtest::read_text;
using mhtest::TempDir;
using mhtest::write_text;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1'700'000'000;
constexpr std::int64_t day = 24 * 3600;

// A private spool with the domain example.jp and, once make_list() ran, news@example.jp.
struct Spool {
  TempDir tmp;
  spool::Layout layout{tmp.path() / "spool"};
  Domain example = Domain::parse("example.jp");
  Address news = Address::parse("news@example.jp");

  Spool() { REQUIRE(spool::add_domain(layout, example, {}, false)); }
  Address address(const std::string& name) const { return Address(LocalPart::parse(name), example); }
  void make_list() const { REQUIRE(spool::create_list(layout, news, {}, false)); }
  void add_account(const std::string& name) const {
    spool::AccountConfig c;
    c.password_hash = "$y$j9T$salt$hash-of-" + name;
    REQUIRE(spool::add_account(layout, address(name), c, false));
  }
};

std::size_t lines_in(const std::string& text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); }

void set_mtime(const fs::path& p, std::int64_t secs) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(secs);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), times, 0) == 0);
}

std::set<std::string> entries_of(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

spool::ListConfig valid_config() { return spool::ListConfig{}; }

} // namespace

TEST_CASE("mlist: create, read, exist_ok and delete a list", "[mlist]") {
  Spool s;
  CHECK_FALSE(spool::list_exists(s.layout, s.news));
  s.make_list();
  CHECK(spool::list_exists(s.layout, s.news));

  const fs::path dir = s.layout.list_dir(s.news);
  CHECK(entries_of(dir) == std::set<std::string>{"archive", "list.yaml", "members"});
  CHECK(read_text(s.layout.list_members(s.news)).empty());
  const fs::path archive = s.layout.list_archive(s.news);
  for (const char* sub : {"tmp", "new", "cur"}) CHECK(fs::is_directory(archive / sub));
  CHECK(fs::is_regular_file(archive / "maildirsize"));
  // No temp directory is left beside the list.
  CHECK(entries_of(s.layout.lists_dir(s.example)) == std::set<std::string>{"news"});
  CHECK(spool::list_list_names(s.layout, s.example).size() == 1);

  const spool::ListConfig c = spool::read_list(s.layout, s.news);
  CHECK(c.policy == spool::ListPolicy::members);
  CHECK(c.max_size == spool::list_max_post_size);
  CHECK(c.subject_tag == "[{list}:{seq}]");
  CHECK(c.bomb_posts == 3);
  CHECK(c.bomb_age == std::chrono::seconds(300));
  CHECK(c.bomb_block == std::chrono::seconds(3600));
  CHECK(c.confirm_expiry == std::chrono::seconds(7 * day));
  CHECK(c.moderators.empty());
  CHECK(c.created.size() == 20);  // RFC 3339 UTC, filled in when not given

  // exist_ok: nothing changes, even when the settings asked for differ.
  const std::string before = read_text(s.layout.list_config(s.news));
  spool::ListConfig other;
  other.policy = spool::ListPolicy::anyone;
  CHECK_FALSE(spool::create_list(s.layout, s.news, other, true));
  CHECK(read_text(s.layout.list_config(s.news)) == before);

  const spool::Error dup = error_from([&] { spool::create_list(s.layout, s.news, other, false); });
  CHECK(dup.code() == Errc::exists);
  CHECK(dup.exit_code() == 73);
  CHECK(std::string(dup.what()) == "list news@example.jp already exists");

  spool::delete_list(s.layout, s.news, false);
  CHECK_FALSE(spool::list_exists(s.layout, s.news));
  CHECK(entries_of(s.layout.lists_dir(s.example)).empty());  // no ".deleted-" left either
}

TEST_CASE("mlist: missing domain and missing list", "[mlist]") {
  Spool s;
  const Address elsewhere = Address::parse("news@other.jp");
  const spool::Error no_domain = error_from([&] { spool::create_list(s.layout, elsewhere, {}, false); });
  CHECK(no_domain.code() == Errc::no_domain);
  CHECK(std::string(no_domain.what()) == "no such domain: other.jp");
  CHECK_FALSE(spool::domain_exists(s.layout, elsewhere.domain()));

  const Address ghost = s.address("ghost");
  for (const spool::Error& e : {
           error_from([&] { (void)spool::read_list(s.layout, ghost); }),
           error_from([&] { spool::delete_list(s.layout, ghost, true); }),
           error_from([&] { spool::update_list(s.layout, ghost, [](spool::ListConfig&) {}); }),
           error_from([&] { (void)spool::read_members(s.layout, ghost); }),
           error_from([&] { (void)spool::add_members(s.layout, ghost, {"a@example.org"}); }),
           error_from([&] { (void)spool::remove_members(s.layout, ghost, {"a@example.org"}); }),
           error_from([&] { (void)spool::add_moderators(s.layout, ghost, {"a@example.org"}); }),
           error_from([&] { (void)spool::is_member(s.layout, ghost, "a@example.org"); }),
           error_from([&] { (void)spool::next_sequence(s.layout, ghost); }),
           error_from([&] { (void)spool::list_archive_posts(s.layout, ghost); }),
           error_from([&] { (void)spool::list_pending(s.layout, ghost); }),
           error_from([&] { (void)spool::summarize_list(s.layout, ghost, t0); }),
       }) {
    CHECK(e.code() == Errc::no_account);
    CHECK(e.exit_code() == 67);
    CHECK(std::string(e.what()) == "no such list: ghost@example.jp");
  }
  CHECK_FALSE(fs::exists(s.layout.list_dir(ghost)));
}

TEST_CASE("mlist: list and account names collide in both directions", "[mlist]") {
  Spool s;
  s.add_account("bob");
  for (bool exist_ok : {false, true}) {
    const spool::Error e = error_from([&] { spool::create_list(s.layout, s.address("bob"), {}, exist_ok); });
    CHECK(e.code() == Errc::exists);
    CHECK(std::string(e.what()) == "the name bob is used by the account bob@example.jp");
  }
  CHECK_FALSE(spool::list_exists(s.layout, s.address("bob")));
  CHECK(entries_of(s.layout.lists_dir(s.example)).empty());

  s.make_list();
  const spool::Error e = error_from([&] { spool::add_account(s.layout, s.news, {}, false); });
  CHECK(e.code() == Errc::exists);
  CHECK(std::string(e.what()) == "the name news is used by the mailing list news@example.jp");
  CHECK_FALSE(spool::account_exists(s.layout, s.news));
}

TEST_CASE("mlist: deleting a list with members or archived posts needs force", "[mlist]") {
  Spool s;
  s.make_list();
  REQUIRE(spool::add_members(s.layout, s.news, {"alice@example.org"}).added == 1);

  const spool::Error members = error_from([&] { spool::delete_list(s.layout, s.news, false); });
  CHECK(members.code() == Errc::other);
  CHECK(members.exit_code() == 1);
  CHECK(std::string(members.what()) ==
        "list news@example.jp still has 1 member; use --force to delete it with its members and archive");
  CHECK(spool::list_exists(s.layout, s.news));

  REQUIRE(spool::remove_members(s.layout, s.news, {"alice@example.org"}).added == 1);
  write_text(s.layout.list_archive(s.news) / "new" / "00000001", "Subject: one\n\nbody\n");
  const spool::Error archive = error_from([&] { spool::delete_list(s.layout, s.news, false); });
  CHECK(archive.code() == Errc::other);
  CHECK(std::string(archive.what()) ==
        "list news@example.jp still holds archived posts; use --force to delete it with its archive");
  CHECK(spool::list_exists(s.layout, s.news));

  spool::delete_list(s.layout, s.news, true);
  CHECK_FALSE(spool::list_exists(s.layout, s.news));
  CHECK(entries_of(s.layout.lists_dir(s.example)).empty());
  // The name is free again, for an account too.
  s.add_account("news");
}

TEST_CASE("mlist: list.yaml keeps every setting, in a stable order", "[mlist]") {
  Spool s;
  s.make_list();
  spool::update_list(s.layout, s.news, [](spool::ListConfig& c) {
    c.policy = spool::ListPolicy::moderators;
    c.admin = "Owner@Example.JP";
    c.max_size = 512 * 1024;
    c.subject_tag = "";
    c.bomb_posts = 5;
    c.bomb_age = std::chrono::seconds(600);
    c.bomb_block = std::chrono::seconds(1800);
    c.confirm_expiry = std::chrono::seconds(2 * day);
    c.moderators = {"Mod@Example.JP", "mod@example.jp", "other@例え.jp"};
  });
  const spool::ListConfig c = spool::read_list(s.layout, s.news);
  CHECK(c.policy == spool::ListPolicy::moderators);
  CHECK(c.admin == "Owner@example.jp");
  CHECK(c.max_size == 512 * 1024);
  CHECK(c.subject_tag.empty());
  CHECK(c.bomb_posts == 5);
  CHECK(c.bomb_age == std::chrono::seconds(600));
  CHECK(c.bomb_block == std::chrono::seconds(1800));
  CHECK(c.confirm_expiry == std::chrono::seconds(2 * day));
  CHECK(c.moderators == std::vector<std::string>{"Mod@example.jp", "other@xn--r8jz45g.jp"});

  const std::string text = read_text(s.layout.list_config(s.news));
  std::size_t at = 0;
  for (const char* line : {"policy: moderators\n", "admin: \"Owner@example.jp\"\n", "max_size: 512K\n",
                           "subject_tag: \"\"\n", "bomb: 5/10m\n", "bomb_block: 30m\n", "confirm_expiry: 2d\n",
                           "moderators:\n", "  - \"Mod@example.jp\"\n", "created: "}) {
    const auto found = text.find(line, at);
    CHECK(found != std::string::npos);
    if (found == std::string::npos) FAIL_CHECK("missing or out of order: " << line << "\nin:\n" << text);
    else at = found;
  }
  // Defaults are written too: every key is in the file.
  const std::string created = spool::read_list(s.layout, s.news).created;
  spool::update_list(s.layout, s.news, [](spool::ListConfig& cfg) { cfg = spool::ListConfig{}; });
  CHECK(spool::read_list(s.layout, s.news).created == created);  // kept: a list.yaml always has one
  const std::string defaults = read_text(s.layout.list_config(s.news));
  for (const char* line : {"max_size: 10000K\n", "subject_tag: \"[{list}:{seq}]\"\n", "bomb: 3/5m\n",
                           "bomb_block: 1h\n", "confirm_expiry: 1w\n", "moderators: []\n", "admin: \"\"\n"})
    CHECK(defaults.find(line) != std::string::npos);
}

TEST_CASE("mlist: list.yaml is loaded strictly", "[mlist]") {
  Spool s;
  s.make_list();
  const fs::path file = s.layout.list_config(s.news);
  const std::string head = "policy: members\ncreated: 2024-01-01T00:00:00Z\n";
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {head + "colour: blue\n", ":3: key 'colour': unknown key"},
      {head + "max_size: 20000K\n", ":3: key 'max_size': max size 20000K is outside 1K–10000K"},
      {head + "max_size: [1]\n", ":3: key 'max_size': expected a string"},
      {"policy: everyone\ncreated: x\n",
       ":1: key 'policy': invalid policy 'everyone': expected 'members', 'anyone' or 'moderators'"},
      {head + "bomb: 3\n", ":3: key 'bomb': invalid bomb rule '3': expected POSTS/AGE like 3/5m"},
      {head + "bomb: 0/5m\n", ":3: key 'bomb': bomb posts 0 is outside 1–1000"},
      {head + "bomb_block: 2h\n", ":3: key 'bomb_block': bomb block 2h is outside 0s–1h"},
      {head + "subject_tag: \"[{name}]\"\n",
       ":3: key 'subject_tag': subject tag '[{name}]' has an unknown placeholder '{name}' (only {list} and {seq})"},
      {head + "moderators:\n  - ok@example.jp\n  - not an address\n",
       ":5: key 'moderators': moderator 'not an address' is not an address"},
      {head + "admin: nobody\n", ":3: key 'admin': admin 'nobody' is not an address"},
      {head + "policy: anyone\n", ":3: key 'policy': duplicate key"},
      {"policy: members\n", ":1: key 'created': missing (the file is incomplete)"},
  };
  for (const Case& c : cases) {
    write_text(file, c.text);
    const spool::Error e = error_from([&] { (void)spool::read_list(s.layout, s.news); });
    CHECK(e.code() == Errc::bad_config);
    CHECK(std::string(e.what()) == file.string() + c.error);
    // A broken file is never rewritten by an update.
    CHECK(error_from([&] { spool::update_list(s.layout, s.news, [](spool::ListConfig&) {}); }).code() ==
          Errc::bad_config);
    CHECK(read_text(file) == c.text);
  }
  write_text(file, head + "subject_tag: \"\"\nmoderators: []\n");
  CHECK(spool::read_list(s.layout, s.news).subject_tag.empty());

  write_text(file, head + "# " + std::string(1 << 20, 'x') + "\n");
  const spool::Error big = error_from([&] { (void)spool::read_list(s.layout, s.news); });
  CHECK(big.code() == Errc::bad_config);
  CHECK(std::string(big.what()) ==
        file.string() + ": too large (" + std::to_string(fs::file_size(file)) + " bytes, limit 1 MiB)");
}

TEST_CASE("mlist: list_config_problem at every boundary", "[mlist]") {
  const auto problem = [](const std::function<void(spool::ListConfig&)>& change) {
    spool::ListConfig c = valid_config();
    change(c);
    return spool::list_config_problem(c);
  };
  const auto ok = [&](const std::function<void(spool::ListConfig&)>& change) { return !problem(change).has_value(); };
  using std::chrono::seconds;

  CHECK(ok([](auto&) {}));
  CHECK(ok([](auto& c) { c.max_size = 1024; }));
  CHECK(problem([](auto& c) { c.max_size = 1023; }) == "max size 1023 is outside 1K–10000K");
  CHECK(ok([](auto& c) { c.max_size = 10000 * 1024; }));
  CHECK(problem([](auto& c) { c.max_size = 10001 * 1024; }) == "max size 10001K is outside 1K–10000K");

  CHECK(ok([](auto& c) { c.subject_tag = ""; }));
  CHECK(ok([](auto& c) { c.subject_tag = "({seq}) {list} {list}"; }));
  CHECK(problem([](auto& c) { c.subject_tag = "[{name}:{seq}]"; }) ==
        "subject tag '[{name}:{seq}]' has an unknown placeholder '{name}' (only {list} and {seq})");
  CHECK(problem([](auto& c) { c.subject_tag = "[{list"; }) ==
        "subject tag '[{list' has an unknown placeholder '{' (only {list} and {seq})");
  CHECK(problem([](auto& c) { c.subject_tag = "[list}]"; }) == "subject tag '[list}]' has a '}' outside {list} and {seq}");
  // The tag goes into a header: no line break can be smuggled in.
  CHECK(problem([](auto& c) { c.subject_tag = "[x]\r\nBcc: victim@example.org"; }).has_value());

  CHECK(ok([](auto& c) { c.bomb_posts = 1; }));
  CHECK(problem([](auto& c) { c.bomb_posts = 0; }) == "bomb posts 0 is outside 1–1000");
  CHECK(ok([](auto& c) { c.bomb_posts = 1000; }));
  CHECK(problem([](auto& c) { c.bomb_posts = 1001; }) == "bomb posts 1001 is outside 1–1000");
  CHECK(ok([](auto& c) { c.bomb_age = seconds(1); }));
  CHECK(problem([](auto& c) { c.bomb_age = seconds(0); }) == "bomb age 0s is outside 1s–1d");
  CHECK(ok([](auto& c) { c.bomb_age = seconds(day); }));
  CHECK(problem([](auto& c) { c.bomb_age = seconds(day + 1); }) == "bomb age 86401s is outside 1s–1d");
  CHECK(ok([](auto& c) { c.bomb_block = seconds(0); }));
  CHECK(ok([](auto& c) { c.bomb_block = seconds(3600); }));
  CHECK(problem([](auto& c) { c.bomb_block = seconds(3601); }) == "bomb block 3601s is outside 0s–1h");
  CHECK(problem([](auto& c) { c.bomb_block = seconds(-1); }) == "bomb block -1s is outside 0s–1h");

  CHECK(ok([](auto& c) { c.confirm_expiry = seconds(3600); }));
  CHECK(problem([](auto& c) { c.confirm_expiry = seconds(3599); }) == "confirm expiry 3599s is outside 1h–90d");
  CHECK(ok([](auto& c) { c.confirm_expiry = seconds(90 * day); }));
  CHECK(problem([](auto& c) { c.confirm_expiry = seconds(90 * day + 1); }) ==
        "confirm expiry 7776001s is outside 1h–90d");

  CHECK(ok([](auto& c) { c.admin = ""; }));
  CHECK(ok([](auto& c) { c.admin = "owner@example.org"; }));
  CHECK(problem([](auto& c) { c.admin = "owner"; }) == "admin 'owner' is not an address");
  CHECK(problem([](auto& c) { c.moderators = {"ok@example.org", "bad@"}; }) == "moderator 'bad@' is not an address");
}

TEST_CASE("mlist: an invalid setting is refused and nothing is written", "[mlist]") {
  Spool s;
  spool::ListConfig bad;
  bad.max_size = 100;
  const spool::Error create = error_from([&] { spool::create_list(s.layout, s.news, bad, false); });
  CHECK(create.code() == Errc::invalid_input);
  CHECK(std::string(create.what()) == "max size 100 is outside 1K–10000K");
  CHECK_FALSE(spool::list_exists(s.layout, s.news));

  s.make_list();
  const std::string before = read_text(s.layout.list_config(s.news));
  const spool::Error update = error_from(
      [&] { spool::update_list(s.layout, s.news, [](spool::ListConfig& c) { c.subject_tag = "{oops}"; }); });
  CHECK(update.code() == Errc::invalid_input);
  CHECK(update.exit_code() == 65);
  CHECK(read_text(s.layout.list_config(s.news)) == before);
}

TEST_CASE("mlist: policy names", "[mlist]") {
  for (auto p : {spool::ListPolicy::members, spool::ListPolicy::anyone, spool::ListPolicy::moderators})
    CHECK(spool::parse_policy(spool::policy_name(p)) == p);
  CHECK(spool::policy_name(spool::ListPolicy::anyone) == "anyone");
  const spool::Error e = error_from([] { (void)spool::parse_policy("Members"); });
  CHECK(e.code() == Errc::invalid_input);
}

TEST_CASE("mlist: normalize_list_address", "[mlist]") {
  using spool::normalize_list_address;
  CHECK(normalize_list_address("Bob.Smith@EXAMPLE.JP") == "Bob.Smith@example.jp");
  CHECK(normalize_list_address("taro@例え.jp") == "taro@xn--r8jz45g.jp");
  CHECK(normalize_list_address("taro@例え.JP") == "taro@xn--r8jz45g.jp");
  CHECK(normalize_list_address("user+tag@example.com") == "user+tag@example.com");
  CHECK(normalize_list_address("o'brien_x-y=z!#$%&*/?^`{|}~@example.ie") == "o'brien_x-y=z!#$%&*/?^`{|}~@example.ie");
  CHECK(normalize_list_address("a@example.jp.") == "a@example.jp");

  const std::string local64(64, 'a');
  CHECK(normalize_list_address(local64 + "@example.jp") == local64 + "@example.jp");
  CHECK_FALSE(normalize_list_address(local64 + "a@example.jp"));
  // 64 + 1 + 189 = 254 octets is the longest address; one more is refused.
  const std::string label(63, 'd');
  const std::string domain189 = label + "." + label + "." + std::string(58, 'e') + ".jp";
  REQUIRE(domain189.size() == 189);
  CHECK(normalize_list_address(local64 + "@" + domain189) == local64 + "@" + domain189);
  CHECK_FALSE(normalize_list_address(local64 + "@" + label + "." + label + "." + std::string(59, 'e') + ".jp"));

  for (const char* bad : {"", "bob", "@example.jp", "bob@", ".bob@example.jp", "bob.@example.jp", "b..ob@example.jp",
                          "\"bob\"@example.jp", "bob smith@example.jp", "<bob@example.jp>", "a@b@example.jp",
                          "bob@localhost", "bob@exa mple.jp", "bob@-bad.jp", "bob@example.jp\n", "bób@example.jp",
                          "bob,x@example.jp", "bob:x@example.jp", "bob\\x@example.jp", "bob[1]@example.jp",
                          "bob\t@example.jp"})
    CHECK_FALSE(normalize_list_address(bad));
  CHECK_FALSE(normalize_list_address(std::string("bo\0b@example.jp", 15)));

  CHECK(spool::list_key("Bob.Smith@Example.JP") == "bob.smith@example.jp");
}

TEST_CASE("mlist: 10,000 members in one call", "[mlist]") {
  Spool s;
  s.make_list();
  std::vector<std::string> input;
  for (int i = 0; i < 10000; ++i) input.push_back("user" + std::to_string(i) + "@Example.ORG");
  for (int i = 0; i < 10; ++i) input.push_back("USER" + std::to_string(i) + "@example.org");  // again, other case
  const std::vector<std::string> invalid = {"not-an-address", "", "a b@example.org", "x@", "@example.org"};
  input.insert(input.begin() + 5000, invalid.begin(), invalid.end());

  const spool::MemberChange first = spool::add_members(s.layout, s.news, input);
  CHECK(first.added == 10000);
  CHECK(first.already == 10);
  CHECK(first.enabled == 0);
  CHECK(first.invalid == 5);
  CHECK(first.invalid_inputs == invalid);

  const std::string text = read_text(s.layout.list_members(s.news));
  CHECK(lines_in(text) == 10000);
  CHECK(text.rfind("user0@example.org\nuser1@example.org\n", 0) == 0);  // input order, domain lowered
  const std::vector<std::string> members = spool::read_members(s.layout, s.news);
  REQUIRE(members.size() == 10000);
  CHECK(members[9999] == "user9999@example.org");
  // One replacement of the file: no temp file left behind.
  CHECK(entries_of(s.layout.list_dir(s.news)) == std::set<std::string>{"archive", "list.yaml", "members"});

  const spool::MemberChange again = spool::add_members(s.layout, s.news, {"user42@example.org", "new@example.org"});
  CHECK(again.added == 1);
  CHECK(again.already == 1);
  CHECK(lines_in(read_text(s.layout.list_members(s.news))) == 10001);

  CHECK(spool::is_member(s.layout, s.news, "USER77@EXAMPLE.ORG"));
  CHECK_FALSE(spool::is_member(s.layout, s.news, "user10000@example.org"));

  // Only the first 100 invalid inputs are kept, but all are counted.
  std::vector<std::string> junk(150, "junk");
  const spool::MemberChange bad = spool::add_members(s.layout, s.news, junk);
  CHECK(bad.invalid == 150);
  CHECK(bad.invalid_inputs.size() == 100);
  CHECK(bad.added == 0);
}

TEST_CASE("mlist: removing members", "[mlist]") {
  Spool s;
  s.make_list();
  REQUIRE(spool::add_members(s.layout, s.news, {"a@example.org", "b@example.org", "c@example.org", "d@example.org"})
              .added == 4);
  REQUIRE_FALSE(spool::record_member_bounce(s.layout, s.news, "c@example.org", t0));
  REQUIRE(read_text(s.layout.list_bounces(s.news)).find("c@example.org") != std::string::npos);

  const spool::MemberChange r = spool::remove_members(
      s.layout, s.news, {"B@EXAMPLE.ORG", "c@example.org", "nobody@example.org", "b@example.org", "bad"});
  CHECK(r.added == 2);  // the removed count
  CHECK(r.absent == 2); // nobody, and b a second time
  CHECK(r.invalid == 1);
  CHECK(r.invalid_inputs == std::vector<std::string>{"bad"});
  CHECK(spool::read_members(s.layout, s.news) == std::vector<std::string>{"a@example.org", "d@example.org"});
  CHECK(read_text(s.layout.list_bounces(s.news)).find("c@example.org") == std::string::npos);
}

TEST_CASE("mlist: the members file is read strictly", "[mlist]") {
  Spool s;
  s.make_list();
  const fs::path file = s.layout.list_members(s.news);
  write_text(file, "# our members\nalice@example.org\n\nBob@Example.ORG\r\nalice@EXAMPLE.org\n  carol@example.org  \n# end");
  CHECK(spool::read_members(s.layout, s.news) ==
        std::vector<std::string>{"alice@example.org", "Bob@example.org", "carol@example.org"});

  write_text(file, "alice@example.org\n\nnot an address\n");
  for (const spool::Error& e : {error_from([&] { (void)spool::read_members(s.layout, s.news); }),
                                error_from([&] { (void)spool::add_members(s.layout, s.news, {"x@example.org"}); })}) {
    CHECK(e.code() == Errc::bad_config);
    CHECK(std::string(e.what()) == file.string() + ":3: not an address: 'not an address'");
  }
  CHECK(read_text(file) == "alice@example.org\n\nnot an address\n");
}

TEST_CASE("mlist: bounces disable a member after 3 within 30 days", "[mlist]") {
  Spool s;
  s.make_list();
  REQUIRE(spool::add_members(s.layout, s.news, {"alice@example.org", "bob@example.org"}).added == 2);

  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "alice@example.org", t0));
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "ALICE@example.org", t0 + 10 * day));
  auto members = spool::list_members(s.layout, s.news, t0 + 10 * day);
  REQUIRE(members.size() == 2);
  CHECK(members[0].bounces == 2);
  CHECK_FALSE(members[0].disabled);
  CHECK(spool::record_member_bounce(s.layout, s.news, "alice@example.org", t0 + 29 * day));
  members = spool::list_members(s.layout, s.news, t0 + 29 * day);
  CHECK(members[0].disabled);
  CHECK(members[0].disabled_since == t0 + 29 * day);
  CHECK(read_text(s.layout.list_bounces(s.news)) == "alice@example.org disabled " + std::to_string(t0 + 29 * day) + "\n");
  // Already disabled: not disabled again. A disabled member is still a member.
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "alice@example.org", t0 + 30 * day));
  CHECK(spool::is_member(s.layout, s.news, "alice@example.org"));

  // Three bounces spread over 40 days: the first has left the window by the third.
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "bob@example.org", t0));
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "bob@example.org", t0 + 20 * day));
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "bob@example.org", t0 + 40 * day));
  members = spool::list_members(s.layout, s.news, t0 + 40 * day);
  CHECK_FALSE(members[1].disabled);
  CHECK(members[1].bounces == 2);
  CHECK(spool::list_members(s.layout, s.news, t0 + 71 * day)[1].bounces == 0);

  // Not a member: ignored, nothing recorded.
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "stranger@example.org", t0));
  CHECK_FALSE(spool::record_member_bounce(s.layout, s.news, "not an address", t0));
  CHECK(read_text(s.layout.list_bounces(s.news)).find("stranger") == std::string::npos);

  // Subscribing a disabled member again enables it.
  const spool::MemberChange again = spool::add_members(s.layout, s.news, {"Alice@Example.org", "bob@example.org"});
  CHECK(again.enabled == 1);
  CHECK(again.already == 1);
  CHECK(again.added == 0);
  members = spool::list_members(s.layout, s.news, t0 + 40 * day);
  CHECK_FALSE(members[0].disabled);
  CHECK(members[0].bounces == 0);
  CHECK(members[1].bounces == 2);  // bob's record is left alone
}

TEST_CASE("mlist: a malformed or oversized bounces file is a config error", "[mlist]") {
  Spool s;
  s.make_list();
  REQUIRE(spool::add_members(s.layout, s.news, {"alice@example.org"}).added == 1);
  const fs::path file = s.layout.list_bounces(s.news);
  write_text(file, "alice@example.org 5 x\n");
  spool::Error e = error_from([&] { (void)spool::list_members(s.layout, s.news, t0); });
  CHECK(e.code() == Errc::bad_config);
  CHECK(std::string(e.what()) == file.string() + ":1: expected a time (unix seconds), got 'x'");

  write_text(file, std::string((1 << 20) + 1, '\n'));
  e = error_from([&] { (void)spool::list_members(s.layout, s.news, t0); });
  CHECK(e.code() == Errc::bad_config);
  CHECK(std::string(e.what()) == file.string() + ": too large (1048577 bytes, limit 1 MiB)");
}

TEST_CASE("mlist: moderators are added and removed like members", "[mlist]") {
  Spool s;
  s.make_list();
  const spool::MemberChange add =
      spool::add_moderators(s.layout, s.news, {"Mod@Example.JP", "mod@example.jp", "bad", "second@example.jp"});
  CHECK(add.added == 2);
  CHECK(add.already == 1);
  CHECK(add.invalid == 1);
  CHECK(spool::read_list(s.layout, s.news).moderators ==
        std::vector<std::string>{"Mod@example.jp", "second@example.jp"});

  const spool::MemberChange del = spool::remove_moderators(s.layout, s.news, {"MOD@example.jp", "x@example.jp"});
  CHECK(del.added == 1);
  CHECK(del.absent == 1);
  CHECK(spool::read_list(s.layout, s.news).moderators == std::vector<std::string>{"second@example.jp"});
}

TEST_CASE("mlist: the mail-bomb rule", "[mlist]") {
  Spool s;
  s.make_list();
  const spool::ListConfig c = spool::read_list(s.layout, s.news);  // 3 posts within 5m, blocked 1h

  CHECK_FALSE(spool::count_post(s.layout, s.news, c, "bob@example.org", t0).refused);
  CHECK_FALSE(spool::count_post(s.layout, s.news, c, "Bob@Example.ORG", t0 + 10).refused);
  CHECK_FALSE(spool::count_post(s.layout, s.news, c, "carol@example.org", t0 + 15).refused);
  spool::BombCheck third = spool::count_post(s.layout, s.news, c, "bob@example.org", t0 + 20);
  CHECK(third.refused);
  CHECK(third.blocked_until == t0 + 20 + 3600);

  // Still blocked: refused, and the block is not extended.
  spool::BombCheck blocked = spool::count_post(s.layout, s.news, c, "bob@example.org", t0 + 100);
  CHECK(blocked.refused);
  CHECK(blocked.blocked_until == t0 + 3620);
  CHECK(spool::count_post(s.layout, s.news, c, "bob@example.org", t0 + 3619).refused);
  // Another poster is not affected.
  CHECK_FALSE(spool::count_post(s.layout, s.news, c, "carol@example.org", t0 + 200).refused);

  // After the block: allowed, with a fresh window.
  CHECK_FALSE(spool::count_post(s.layout, s.news, c, "bob@example.org", t0 + 3620).refused);
  CHECK_FALSE(spool::count_post(s.layout, s.news, c, "bob@example.org", t0 + 3630).refused);
  CHECK(spool::count_post(s.layout, s.news, c, "bob@example.org", t0 + 3640).refused);

  // Posts further apart than the window never add up.
  for (int i = 0; i < 10; ++i)
    CHECK_FALSE(spool::count_post(s.layout, s.news, c, "dave@example.org", t0 + 10000 + 301 * i).refused);
  // Posters whose window and block have passed are forgotten: the file stays small.
  const std::string text = read_text(s.layout.list_posters(s.news));
  CHECK(text == "dave@example.org 0 " + std::to_string(t0 + 10000 + 301 * 9) + "\n");
}

TEST_CASE("mlist: sequence numbers are monotonic and kept on disk", "[mlist]") {
  Spool s;
  s.make_list();
  CHECK(spool::last_sequence(s.layout, s.news) == 0);
  CHECK(spool::next_sequence(s.layout, s.news) == 1);
  CHECK(spool::next_sequence(s.layout, s.news) == 2);
  CHECK(spool::next_sequence(s.layout, s.news) == 3);
  CHECK(spool::last_sequence(s.layout, s.news) == 3);
  CHECK(read_text(s.layout.list_sequence(s.news)) == "3\n");
  // Another reader (a new process would be the same) sees the number on disk.
  const spool::Layout again(s.layout.root());
  CHECK(spool::next_sequence(again, s.news) == 4);

  write_text(s.layout.list_sequence(s.news), "four\n");
  const spool::Error e = error_from([&] { (void)spool::next_sequence(s.layout, s.news); });
  CHECK(e.code() == Errc::bad_config);
  CHECK(std::string(e.what()) == s.layout.list_sequence(s.news).string() + ":1: expected the last sequence number, got 'four'");
  CHECK(read_text(s.layout.list_sequence(s.news)) == "four\n");
}

TEST_CASE("mlist: the archive lists posts from new/ and cur/", "[mlist]") {
  Spool s;
  s.make_list();
  const fs::path archive = s.layout.list_archive(s.news);
  const std::string first = "From: Alice <alice@example.org>\nSubject: hello\n\tworld\nX-Other: y\n\nSubject: not a header\n";
  write_text(archive / "new" / "00000001", first);
  set_mtime(archive / "new" / "00000001", t0);
  write_text(archive / "cur" / "00000003:2,S", "subject: third\r\nfrom: bob@example.org\r\n\r\nbody\r\n");
  set_mtime(archive / "cur" / "00000003:2,S", t0 + 60);
  write_text(archive / "new" / "00000002", "X-No-Subject: 1\n\nbody\n");
  // Not posts: dot files, other names, a directory.
  write_text(archive / "new" / ".00000004", "x");
  write_text(archive / "new" / "123", "x");
  write_text(archive / "new" / "00000005,S=3", "x");
  fs::create_directory(archive / "new" / "00000006");

  const auto posts = spool::list_archive_posts(s.layout, s.news);
  REQUIRE(posts.size() == 3);
  CHECK(posts[0].seq == 1);
  CHECK(posts[0].subject == "hello world");
  CHECK(posts[0].from == "Alice <alice@example.org>");
  CHECK(posts[0].size == first.size());
  CHECK(posts[0].date == t0);
  CHECK(posts[1].seq == 2);
  CHECK(posts[1].subject.empty());
  CHECK(posts[1].from.empty());
  CHECK(posts[2].seq == 3);
  CHECK(posts[2].subject == "third");
  CHECK(posts[2].from == "bob@example.org");
  CHECK(posts[2].date == t0 + 60);

  CHECK(spool::archived_post_path(s.layout, s.news, 1) == archive / "new" / "00000001");
  CHECK(spool::archived_post_path(s.layout, s.news, 3) == archive / "cur" / "00000003:2,S");
  CHECK_FALSE(spool::archived_post_path(s.layout, s.news, 4));
  CHECK_FALSE(spool::archived_post_path(s.layout, s.news, 6));
}

TEST_CASE("mlist: pending items are written, listed, read and removed", "[mlist]") {
  Spool s;
  s.make_list();
  CHECK(spool::list_pending(s.layout, s.news).empty());  // no pending/ yet

  spool::PendingItem post;
  post.id = "0123456789abcdef0123";
  post.kind = spool::PendingItem::Kind::post;
  post.poster = "bob@example.org";
  post.subject = "a \"quoted\"\tsubject: yes";
  post.size = 1234;
  post.created = t0 + 100;
  post.expires = t0 + 100 + 7 * day;
  spool::PendingItem unsub;
  unsub.id = "ffffffffffffffffffff";
  unsub.kind = spool::PendingItem::Kind::unsubscribe;
  unsub.poster = "alice@example.org";
  unsub.created = t0;
  unsub.expires = t0 + day;
  spool::write_pending(s.layout, s.news, post);
  spool::write_pending(s.layout, s.news, unsub);
  const fs::path dir = s.layout.list_pending(s.news);
  CHECK((fs::status(dir).permissions() & fs::perms::all) == (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec));
  write_text(dir / (post.id + ".msg"), "Subject: x\n\nbody\n");
  // Not pending items: a dot file, a bad id, a .msg alone.
  write_text(dir / ".0000000000000000000a.yaml", "kind: post\n");
  write_text(dir / "0123456789ABCDEF0123.yaml", "kind: post\n");
  write_text(dir / "aaaaaaaaaaaaaaaaaaaa.msg", "x");

  const auto items = spool::list_pending(s.layout, s.news);
  REQUIRE(items.size() == 2);
  CHECK(items[0].id == unsub.id);  // oldest first
  CHECK(items[0].kind == spool::PendingItem::Kind::unsubscribe);
  CHECK(items[0].poster == "alice@example.org");
  CHECK(items[0].expires == t0 + day);
  CHECK(items[1].id == post.id);
  CHECK(items[1].subject == post.subject);
  CHECK(items[1].size == 1234);
  CHECK(items[1].created == post.created);
  CHECK(items[1].expires == post.expires);

  const auto one = spool::read_pending(s.layout, s.news, post.id);
  REQUIRE(one);
  CHECK(one->poster == "bob@example.org");
  CHECK_FALSE(spool::read_pending(s.layout, s.news, "00000000000000000000"));
  CHECK_FALSE(spool::read_pending(s.layout, s.news, "../../../../etc/passwd"));

  CHECK(spool::remove_pending(s.layout, s.news, post.id));
  CHECK_FALSE(fs::exists(dir / (post.id + ".yaml")));
  CHECK_FALSE(fs::exists(dir / (post.id + ".msg")));
  CHECK_FALSE(spool::remove_pending(s.layout, s.news, post.id));
  CHECK(spool::list_pending(s.layout, s.news).size() == 1);

  spool::PendingItem bad = post;
  bad.id = "../escape";
  CHECK(error_from([&] { spool::write_pending(s.layout, s.news, bad); }).code() == Errc::invalid_input);

  // The .yaml is read strictly.
  write_text(dir / (unsub.id + ".yaml"), "kind: unsubscribe\nposter: a@example.org\ncreated: 1\nexpires: 2\nextra: 3\n");
  const spool::Error e = error_from([&] { (void)spool::read_pending(s.layout, s.news, unsub.id); });
  CHECK(e.code() == Errc::bad_config);
  CHECK(std::string(e.what()) == (dir / (unsub.id + ".yaml")).string() + ":5: key 'extra': unknown key");
}

TEST_CASE("mlist: pending ids", "[mlist]") {
  CHECK(spool::pending_id_ok("0123456789abcdef0123"));
  CHECK_FALSE(spool::pending_id_ok("0123456789abcdef012"));
  CHECK_FALSE(spool::pending_id_ok("0123456789abcdef01234"));
  CHECK_FALSE(spool::pending_id_ok("0123456789ABCDEF0123"));
  CHECK_FALSE(spool::pending_id_ok("0123456789abcdef012g"));
  CHECK_FALSE(spool::pending_id_ok(""));
}

TEST_CASE("mlist: summary of a list", "[mlist]") {
  Spool s;
  s.make_list();
  REQUIRE(spool::add_members(s.layout, s.news, {"a@example.org", "b@example.org", "c@example.org"}).added == 3);
  for (int i = 0; i < 3; ++i) spool::record_member_bounce(s.layout, s.news, "b@example.org", t0 + i);
  spool::PendingItem item;
  item.id = "00000000000000000001";
  item.poster = "x@example.org";
  spool::write_pending(s.layout, s.news, item);
  spool::next_sequence(s.layout, s.news);
  spool::next_sequence(s.layout, s.news);
  write_text(s.layout.list_archive(s.news) / "new" / "00000001", "Subject: one\n\n12345\n");
  spool::recalc_list_archive(s.layout, s.news);

  const spool::ListSummary sum = spool::summarize_list(s.layout, s.news, t0 + 10);
  CHECK(sum.config.policy == spool::ListPolicy::members);
  CHECK(sum.members == 3);
  CHECK(sum.disabled_members == 1);
  CHECK(sum.pending == 1);
  CHECK(sum.last_sequence == 2);
  CHECK(sum.archive.messages == 1);
  CHECK(sum.archive.bytes == std::string("Subject: one\n\n12345\n").size());
}

TEST_CASE("mlist: a symlink planted at a list path is refused", "[mlist][hostile]") {
  Spool s;
  const fs::path outside = s.tmp / "outside";
  fs::create_directory(outside);
  write_text(outside / "list.yaml", "policy: members\ncreated: x\n");
  write_text(outside / "members", "victim@example.org\n");
  const fs::path planted = s.layout.list_dir(s.news);
  fs::create_directory_symlink(outside, planted);

  for (const spool::Error& e : {
           error_from([&] { spool::create_list(s.layout, s.news, {}, true); }),
           error_from([&] { (void)spool::read_list(s.layout, s.news); }),
           error_from([&] { (void)spool::add_members(s.layout, s.news, {"x@example.org"}); }),
           error_from([&] { spool::delete_list(s.layout, s.news, true); }),
       }) {
    CHECK(e.code() == Errc::other);
    CHECK(std::string(e.what()) == "refusing to follow symlink planted in the spool: " + planted.string());
  }
  CHECK(read_text(outside / "members") == "victim@example.org\n");
  CHECK(mhtest::is_symlink(planted));
}
