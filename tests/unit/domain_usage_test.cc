// domain_usage_test.cc — the domain's usage record (DOMAIN/domainsize): built on first
// read, kept in step by every delivery, removal and recount, compacted, dropped when an
// account goes, corrected by recalc_domain_usage, and read without summing the accounts.
#include "spool/quota.h"

#include "spool/accounts.h"
#include "spool/delivery.h"
#include "spool/maildir.h"
#include "store_fixture.h"

namespace fs = std::filesystem;
using mhtest::deliver_ok;
using mhtest::message_of_size;
using mhtest::read_text;
using mhtest::StoreSpool;
using mhtest::write_text;
using spool::Usage;

namespace {

fs::path record_of(const StoreSpool& s, const spool::Domain& d) { return s.layout().domain_usage_record(d); }

// What the account Maildirs add up to from their files (the truth the record follows).
Usage counted_from_files(const StoreSpool& s, const std::vector<spool::Address>& accounts) {
  Usage total;
  for (const auto& a : accounts)
    for (const auto& m : spool::Maildir(s.layout(), s.layout().maildir(a)).list()) {
      total.bytes += m.size;
      total.messages += 1;
    }
  return total;
}

} // namespace

TEST_CASE("the domain record is made on first read and kept by every later change", "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  deliver_ok(s, a, 100);
  // Nobody asked yet (no quota): writers do not keep a record nobody reads.
  CHECK_FALSE(fs::exists(record_of(s, a.domain())));
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  REQUIRE(fs::exists(record_of(s, a.domain())));

  deliver_ok(s, a, 200);
  deliver_ok(s, b, 50);
  spool::Maildir md(s.layout(), s.layout().maildir(a));
  const auto listed = md.list();
  REQUIRE(listed.size() == 2);
  REQUIRE(md.remove(listed.front()));
  // The record holds lines, not a recount: later lines were appended to it.
  CHECK(read_text(record_of(s, a.domain())).find('\n') < read_text(record_of(s, a.domain())).size() - 1);
  CHECK(spool::domain_usage(s.layout(), a.domain()) == counted_from_files(s, {a, b}));
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{250, 2});
}

TEST_CASE("the domain record is read, not summed over the accounts", "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  deliver_ok(s, a, 100);
  REQUIRE(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  // An account's maildirsize edited behind everyone's back changes the account's usage
  // but not the domain's: a quota check costs one read whatever the number of accounts.
  write_text(s.layout().maildir(b) / "maildirsize", "0S\n5000 5\n");
  CHECK(spool::account_usage(s.layout(), b) == Usage{5000, 5});
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  // recalc of the domain makes every maildirsize exact and the record their sum.
  CHECK(spool::recalc_account(s.layout(), b) == Usage{0, 0});
  CHECK(spool::recalc_domain_usage(s.layout(), a.domain()) == Usage{100, 1});
}

TEST_CASE("a recount of one Maildir moves the domain record by its difference", "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  deliver_ok(s, a, 100);
  REQUIRE(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  // A file nobody recorded: the recount finds it and the domain follows.
  write_text(s.layout().maildir(a) / "new" / "1700000000.M1P1Q1R1.h,S=5", "12345");
  CHECK(spool::recalc_account(s.layout(), a) == Usage{105, 2});
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{105, 2});
  fs::remove(s.layout().maildir(a) / "new" / "1700000000.M1P1Q1R1.h,S=5");
  CHECK(spool::recalc_account(s.layout(), a) == Usage{100, 1});
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
}

TEST_CASE("an over-counting domain record is corrected by recalc_domain_usage only", "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  deliver_ok(s, a, 100);
  REQUIRE(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  // What a kill between the domain's line and the Maildir's leaves: counted, not stored.
  {
    std::ofstream out(record_of(s, a.domain()), std::ios::app);
    out << "4096 1\n";
  }
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{4196, 2});
  CHECK(spool::recalc_domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
}

TEST_CASE("a missing or torn maildirsize or a removed account drops the record; the next read rebuilds it",
          "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  deliver_ok(s, a, 100);
  deliver_ok(s, b, 30);
  REQUIRE(spool::domain_usage(s.layout(), a.domain()) == Usage{130, 2});

  SECTION("missing maildirsize") {
    fs::remove(s.layout().maildir(a) / "maildirsize");
    deliver_ok(s, a, 7);
    CHECK_FALSE(fs::exists(record_of(s, a.domain())));
    CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{137, 3});
  }
  SECTION("torn maildirsize") {
    {
      std::ofstream out(s.layout().maildir(a) / "maildirsize", std::ios::app);
      out << "12";  // a partial line
    }
    CHECK(spool::account_usage(s.layout(), a) == Usage{100, 1});  // rebuilt from the files
    CHECK_FALSE(fs::exists(record_of(s, a.domain())));
    CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{130, 2});
  }
  SECTION("account deleted with its mail") {
    spool::delete_account(s.layout(), b, /*force=*/true);
    CHECK_FALSE(fs::exists(record_of(s, a.domain())));
    CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  }
}

TEST_CASE("the domain record stays bounded and exact over many changes", "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  REQUIRE(spool::domain_usage(s.layout(), a.domain()) == Usage{});
  for (int i = 0; i < 600; ++i) deliver_ok(s, i % 2 ? a : b, 10 + static_cast<std::size_t>(i));
  CHECK(fs::file_size(record_of(s, a.domain())) <= spool::maildirsize_max_bytes + 64);
  CHECK(spool::domain_usage(s.layout(), a.domain()) == counted_from_files(s, {a, b}));
}

TEST_CASE("list archives count in the domain record", "[quota][domain-usage]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto list = s.list_with_archive("news@example.com");
  deliver_ok(s, a, 100);
  REQUIRE(spool::domain_usage(s.layout(), a.domain()) == Usage{100, 1});
  spool::Maildir archive(s.layout(), s.layout().list_archive(list));
  write_text(archive.new_dir() / "1700000000.M1P1Q1R1.h,S=70", message_of_size(70));
  archive.record(70, 1);
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{170, 2});
  CHECK(spool::recalc_domain_usage(s.layout(), a.domain()) == Usage{170, 2});
}
