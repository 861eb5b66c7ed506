// accounts_test.cc — provisioning of domains and accounts (accounts.h) on a real temp
// spool: add/list/delete, exist_ok, every error code, the account/list name clash,
// --force for mail, symlinks planted in the spool, and sweeping crash leftovers.
#include "spool/accounts.h"

#include "spool/maildir.h"
#include "spool/password.h"
#include "test_support.h"

#include <set>

using spool::Address;
using spool::Domain;
using spool::Errc;
using spool::LocalPart;
using mhtest::error_from;
using mhtest::TempDir;
namespace fs = std::filesystem;

namespace {

// A private spool inside a temp dir; the spool root itself does not exist yet, as on a
// fresh machine, so the first add has to create the skeleton.
struct Spool {
  TempDir tmp;
  spool::Layout layout{tmp.path() / "spool"};
  Domain example = Domain::parse("example.jp");

  Address address(const std::string& name) const { return Address(LocalPart::parse(name), example); }
  void add_example() const { REQUIRE(spool::add_domain(layout, example, {}, false)); }
  void add(const std::string& name) const {
    spool::AccountConfig c;
    c.password_hash = "$y$j9T$salt$hash-of-" + name;
    REQUIRE(spool::add_account(layout, address(name), c, false));
  }
};

std::vector<std::string> names_of(const std::vector<LocalPart>& v) {
  std::vector<std::string> out;
  for (const auto& n : v) out.push_back(n.str());
  return out;
}

std::vector<std::string> names_of(const std::vector<Domain>& v) {
  std::vector<std::string> out;
  for (const auto& d : v) out.push_back(d.str());
  return out;
}

// Every path below `root` (following no symlink), for "nothing changed" checks. Lock
// files under run/locks are left out: taking a lock may create its (empty) file.
std::set<std::string> tree_of(const fs::path& root) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = it->path().lexically_relative(root).string();
    if (rel.rfind("run/locks/", 0) != 0) out.insert(rel);
  }
  return out;
}

} // namespace

TEST_CASE("accounts: add, list and delete a domain", "[accounts]") {
  Spool s;
  CHECK(spool::list_domains(s.layout).empty());
  CHECK_FALSE(spool::domain_exists(s.layout, s.example));

  CHECK(spool::add_domain(s.layout, s.example, {}, false));
  CHECK(spool::domain_exists(s.layout, s.example));
  CHECK(fs::is_directory(s.layout.accounts_dir(s.example)));
  CHECK(fs::is_directory(s.layout.lists_dir(s.example)));
  CHECK(fs::is_regular_file(s.layout.domain_config(s.example)));
  spool::DomainConfig c = spool::read_domain(s.layout, s.example);
  CHECK(c.created.size() == 20); // RFC 3339 UTC, filled in when not given
  CHECK_FALSE(c.suspended);

  REQUIRE(spool::add_domain(s.layout, Domain::parse("例え.jp"), {}, false));
  REQUIRE(spool::add_domain(s.layout, Domain::parse("a.example"), {}, false));
  CHECK(names_of(spool::list_domains(s.layout)) ==
        std::vector<std::string>{"a.example", "example.jp", "xn--r8jz45g.jp"});

  spool::delete_domain(s.layout, s.example, false);
  CHECK_FALSE(spool::domain_exists(s.layout, s.example));
  CHECK(names_of(spool::list_domains(s.layout)) == std::vector<std::string>{"a.example", "xn--r8jz45g.jp"});
  // The deleted tree is gone too, not just renamed aside.
  for (const auto& e : fs::directory_iterator(s.layout.domains_dir()))
    CHECK(e.path().filename().string().rfind(".deleted-", 0) != 0);
}

TEST_CASE("accounts: domain exist_ok, duplicates and missing domains", "[accounts]") {
  Spool s;
  spool::DomainConfig first;
  first.quota = 1ULL << 30;
  REQUIRE(spool::add_domain(s.layout, s.example, first, false));
  const std::string before = mhtest::read_text(s.layout.domain_config(s.example));

  spool::DomainConfig second;
  second.quota = 5ULL << 30;
  CHECK_FALSE(spool::add_domain(s.layout, s.example, second, true)); // exist_ok: no change
  CHECK(mhtest::read_text(s.layout.domain_config(s.example)) == before);

  spool::Error dup = error_from([&] { spool::add_domain(s.layout, s.example, second, false); });
  CHECK(dup.code() == Errc::exists);
  CHECK(dup.exit_code() == 73);
  CHECK(std::string(dup.what()) == "domain example.jp already exists");
  CHECK(mhtest::read_text(s.layout.domain_config(s.example)) == before);

  const Domain other = Domain::parse("other.jp");
  for (auto& e : {error_from([&] { spool::delete_domain(s.layout, other, false); }),
                  error_from([&] { (void)spool::read_domain(s.layout, other); }),
                  error_from([&] { (void)spool::list_accounts(s.layout, other); }),
                  error_from([&] { spool::update_domain(s.layout, other, [](spool::DomainConfig&) {}); })}) {
    CHECK(e.code() == Errc::no_domain);
    CHECK(e.exit_code() == 68);
    CHECK(std::string(e.what()) == "no such domain: other.jp");
  }
}

TEST_CASE("accounts: add, read, list and delete accounts", "[accounts]") {
  Spool s;
  s.add_example();
  spool::AccountConfig c;
  c.password_hash = spool::hash_password(spool::Secret("pw"));
  c.display_name = "Taro";
  c.quota = 100ULL << 20;
  REQUIRE(spool::add_account(s.layout, s.address("Taro"), c, false)); // folded to "taro"
  s.add("hanako");
  s.add("a_.b");

  CHECK(spool::account_exists(s.layout, s.address("taro")));
  CHECK(names_of(spool::list_accounts(s.layout, s.example)) == std::vector<std::string>{"a_.b", "hanako", "taro"});

  spool::AccountConfig back = spool::read_account(s.layout, s.address("taro"));
  CHECK(back.password_hash == c.password_hash);
  CHECK(spool::verify_password(spool::Secret("pw"), back.password_hash));
  CHECK(back.display_name == "Taro");
  CHECK(back.created.size() == 20);
  CHECK(back.quota == c.quota);

  // A Maildir per maildir.5 with a Maildir++ quota line carrying the account's quota.
  const fs::path md = s.layout.maildir(s.address("taro"));
  for (const char* sub : {"tmp", "new", "cur"}) CHECK(fs::is_directory(md / sub));
  CHECK(mhtest::read_text(md / "maildirsize") == "104857600S\n0 0\n");
  CHECK_FALSE(spool::maildir_holds_mail(md));

  spool::update_account(s.layout, s.address("taro"), [](spool::AccountConfig& a) { a.suspended = true; });
  CHECK(spool::read_account(s.layout, s.address("taro")).suspended);

  spool::delete_account(s.layout, s.address("taro"), false);
  CHECK_FALSE(spool::account_exists(s.layout, s.address("taro")));
  CHECK(names_of(spool::list_accounts(s.layout, s.example)) == std::vector<std::string>{"a_.b", "hanako"});
  CHECK(mhtest::entries_in(s.layout.accounts_dir(s.example)) == 2);
}

TEST_CASE("accounts: exist_ok, duplicates, missing domain and missing account", "[accounts]") {
  Spool s;
  // No domain yet: adding an account says so, and creates no domain on the way.
  spool::Error no_domain = error_from([&] { spool::add_account(s.layout, s.address("bob"), {}, false); });
  CHECK(no_domain.code() == Errc::no_domain);
  CHECK(std::string(no_domain.what()) == "no such domain: example.jp");
  CHECK_FALSE(spool::domain_exists(s.layout, s.example));

  s.add_example();
  s.add("bob");
  const std::string before = mhtest::read_text(s.layout.account_config(s.address("bob")));

  spool::AccountConfig other;
  other.password_hash = "$y$j9T$other$hash";
  CHECK_FALSE(spool::add_account(s.layout, s.address("bob"), other, true));
  CHECK(mhtest::read_text(s.layout.account_config(s.address("bob"))) == before);

  spool::Error dup = error_from([&] { spool::add_account(s.layout, s.address("BOB"), other, false); });
  CHECK(dup.code() == Errc::exists);
  CHECK(std::string(dup.what()) == "account bob@example.jp already exists");
  CHECK(mhtest::read_text(s.layout.account_config(s.address("bob"))) == before);

  const Address carol = s.address("carol");
  for (auto& e : {error_from([&] { spool::delete_account(s.layout, carol, true); }),
                  error_from([&] { (void)spool::read_account(s.layout, carol); }),
                  error_from([&] { spool::update_account(s.layout, carol, [](spool::AccountConfig&) {}); })}) {
    CHECK(e.code() == Errc::no_account);
    CHECK(e.exit_code() == 67);
    CHECK(std::string(e.what()) == "no such account: carol@example.jp");
  }
}

TEST_CASE("accounts: a name held by a mailing list is refused, naming the list", "[accounts]") {
  Spool s;
  s.add_example();
  fs::create_directory(s.layout.lists_dir(s.example) / "news"); // as mh-list will make it

  spool::Error e = error_from([&] { spool::add_account(s.layout, s.address("news"), {}, false); });
  CHECK(e.code() == Errc::exists);
  CHECK(std::string(e.what()) == "the name news is used by the mailing list news@example.jp");
  CHECK_FALSE(spool::account_exists(s.layout, s.address("news")));
  // exist_ok is about an existing account, not a list: still refused.
  CHECK(error_from([&] { spool::add_account(s.layout, s.address("news"), {}, true); }).code() == Errc::exists);
  CHECK(mhtest::entries_in(s.layout.accounts_dir(s.example)) == 0);

  CHECK(names_of(spool::list_list_names(s.layout, s.example)) == std::vector<std::string>{"news"});
  s.add("bob");
  CHECK(error_from([&] { spool::ensure_name_free(s.layout, s.example, LocalPart::parse("bob")); }).code() ==
        Errc::exists);
  CHECK_NOTHROW(spool::ensure_name_free(s.layout, s.example, LocalPart::parse("free")));
}

TEST_CASE("accounts: deleting an account that holds mail needs force", "[accounts]") {
  Spool s;
  s.add_example();
  s.add("bob");
  const fs::path md = s.layout.maildir(s.address("bob"));
  // A dot file is not a message (maildir.5): no --force needed for it alone.
  mhtest::write_text(md / "new" / ".hidden", "");
  CHECK_FALSE(spool::maildir_holds_mail(md));
  mhtest::write_text(md / "new" / "1700000000.M1P1.host,S=5", "hello");
  CHECK(spool::maildir_holds_mail(md));

  spool::Error e = error_from([&] { spool::delete_account(s.layout, s.address("bob"), false); });
  CHECK(e.code() == Errc::other);
  CHECK(e.exit_code() == 1);
  CHECK(std::string(e.what()) == "account bob@example.jp still holds mail; use --force to delete it with its mail");
  CHECK(mhtest::read_text(md / "new" / "1700000000.M1P1.host,S=5") == "hello");

  spool::delete_account(s.layout, s.address("bob"), true);
  CHECK_FALSE(spool::account_exists(s.layout, s.address("bob")));
  CHECK(mhtest::entries_in(s.layout.accounts_dir(s.example)) == 0);
}

TEST_CASE("accounts: deleting a domain that holds mail needs force", "[accounts]") {
  Spool s;
  s.add_example();
  s.add("bob");
  s.add("empty");
  mhtest::write_text(s.layout.maildir(s.address("bob")) / "cur" / "1700000000.M2P2.host,S=3:2,S", "hi!");

  spool::Error e = error_from([&] { spool::delete_domain(s.layout, s.example, false); });
  CHECK(e.code() == Errc::other);
  CHECK(std::string(e.what()) ==
        "domain example.jp still holds mail (account bob@example.jp); use --force to delete it with its mail");
  CHECK(spool::account_exists(s.layout, s.address("bob")));

  spool::delete_domain(s.layout, s.example, true);
  CHECK_FALSE(spool::domain_exists(s.layout, s.example));
  CHECK(mhtest::entries_in(s.layout.domains_dir()) == 0);
}

TEST_CASE("accounts: a symlink planted at an account path is refused, nothing changes", "[accounts][hostile]") {
  Spool s;
  s.add_example();
  const fs::path outside = s.tmp / "outside";
  fs::create_directory(outside);
  mhtest::write_text(outside / "account.yaml", "password: \"$y$j9T$victim$hash\"\n");
  const fs::path planted = s.layout.accounts_dir(s.example) / "bob";
  fs::create_directory_symlink(outside, planted);
  const auto spool_before = tree_of(s.layout.root());
  const auto outside_before = tree_of(outside);

  const Address bob = s.address("bob");
  std::vector<spool::Error> errors = {
      error_from([&] { spool::add_account(s.layout, bob, {}, false); }),
      error_from([&] { spool::add_account(s.layout, bob, {}, true); }),
      error_from([&] { spool::delete_account(s.layout, bob, true); }),
      error_from([&] { (void)spool::read_account(s.layout, bob); }),
      error_from([&] { spool::update_account(s.layout, bob, [](spool::AccountConfig& a) { a.suspended = true; }); }),
  };
  for (const spool::Error& e : errors) {
    CHECK(e.code() == Errc::other);
    CHECK(e.exit_code() == 1);
    CHECK(std::string(e.what()) == "refusing to follow symlink planted in the spool: " + planted.string());
  }
  CHECK(mhtest::is_symlink(planted));
  CHECK(tree_of(outside) == outside_before);
  CHECK(mhtest::read_text(outside / "account.yaml") == "password: \"$y$j9T$victim$hash\"\n");
  CHECK(tree_of(s.layout.root()) == spool_before);
  // Regression: the planted link was listed as an account (read_name_dir did not check
  // that an entry is a real directory, unlike list_domains).
  CHECK(spool::list_accounts(s.layout, s.example).empty());
  CHECK_FALSE(spool::account_exists(s.layout, bob));
}

TEST_CASE("accounts: a symlink planted at a domain path is refused", "[accounts][hostile]") {
  Spool s;
  s.add_example();
  const fs::path outside = s.tmp / "outside";
  fs::create_directories(outside / "accounts");
  const Domain evil = Domain::parse("evil.jp");
  const fs::path planted = s.layout.domain_dir(evil);
  fs::create_directory_symlink(outside, planted);

  for (const spool::Error& e : {error_from([&] { spool::add_account(s.layout, Address::parse("x@evil.jp"), {}, false); }),
                                error_from([&] { spool::add_domain(s.layout, evil, {}, false); }),
                                error_from([&] { spool::delete_domain(s.layout, evil, true); }),
                                error_from([&] { (void)spool::read_domain(s.layout, evil); })}) {
    CHECK(e.code() == Errc::other);
    CHECK(std::string(e.what()) == "refusing to follow symlink planted in the spool: " + planted.string());
  }
  CHECK(fs::is_empty(outside / "accounts"));
  CHECK(mhtest::is_symlink(planted));
  CHECK(names_of(spool::list_domains(s.layout)) == std::vector<std::string>{"example.jp"});
}

TEST_CASE("accounts: leftovers of a crashed add or delete are swept", "[accounts]") {
  Spool s;
  s.add_example();
  const fs::path accounts = s.layout.accounts_dir(s.example);
  fs::create_directories(accounts / ".new-ghost.123.0.deadbeef" / "Maildir" / "new");
  fs::create_directories(accounts / ".deleted-old.456.1.cafebabe" / "Maildir");
  mhtest::write_text(accounts / ".deleted-old.456.1.cafebabe" / "account.yaml", "x");
  // Readers skip dot entries, before and after the sweep.
  CHECK(spool::list_accounts(s.layout, s.example).empty());

  s.add("bob");
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(accounts)) left.insert(e.path().filename().string());
  CHECK(left == std::set<std::string>{"bob"});

  const fs::path domains = s.layout.domains_dir();
  fs::create_directories(domains / ".new-half.example.1.2.3" / "accounts");
  REQUIRE(spool::add_domain(s.layout, Domain::parse("second.jp"), {}, false));
  left.clear();
  for (const auto& e : fs::directory_iterator(domains)) left.insert(e.path().filename().string());
  CHECK(left == std::set<std::string>{"example.jp", "second.jp"});
}

TEST_CASE("accounts: names read back from disk are re-validated", "[accounts][hostile]") {
  Spool s;
  s.add_example();
  const fs::path accounts = s.layout.accounts_dir(s.example);
  for (const char* foreign : {"Upper", "-dash", "a..b", "with space", "toolong-aaaaaaaaaaaaaaaaaaaaaaaaaaa"})
    fs::create_directory(accounts / foreign);
  mhtest::write_text(accounts / "stray", "a file is not an account");
  fs::create_directory_symlink(s.tmp.path(), accounts / "link");
  fs::create_directory_symlink(s.tmp / "dangling", accounts / "dangling");
  s.add("ok");
  CHECK(names_of(spool::list_accounts(s.layout, s.example)) == std::vector<std::string>{"ok"});
  CHECK(spool::read_name_dir(s.tmp / "no-such-dir").empty());

  fs::create_directory(s.layout.domains_dir() / "Not.A.Lowercase.Name");
  fs::create_directory(s.layout.domains_dir() / "localhost");
  mhtest::write_text(s.layout.domains_dir() / "file.jp", "not a directory");
  CHECK(names_of(spool::list_domains(s.layout)) == std::vector<std::string>{"example.jp"});
}

TEST_CASE("accounts: parallel adds from several processes lose nothing", "[accounts]") {
  Spool s;
  s.add_example();
  constexpr int processes = 4;
  constexpr int each = 10;
  std::vector<pid_t> children;
  for (int p = 0; p < processes; ++p) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int failures = 0;
      for (int i = 0; i < each; ++i) {
        try {
          spool::add_account(s.layout, s.address("u" + std::to_string(p) + "-" + std::to_string(i)), {}, false);
        } catch (...) {
          ++failures;
        }
      }
      ::_exit(failures);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  const auto names = spool::list_accounts(s.layout, s.example);
  CHECK(names.size() == processes * each);
  for (const auto& n : names) CHECK_NOTHROW(spool::read_account(s.layout, Address(n, s.example)));
  CHECK(mhtest::entries_in(s.layout.accounts_dir(s.example)) == processes * each);
}
