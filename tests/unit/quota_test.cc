// quota_test.cc — usage and quota decisions (quota.h): domain usage is the sum of the
// accounts' and list archives' maildirsize files, check_quota's boundaries (exactly full
// fits, RCPT-time "any room at all"), per-account limits, recalc and set_domain_quota.
#include "spool/quota.h"

#include "spool/delivery.h"
#include "store_fixture.h"

namespace fs = std::filesystem;
using mhtest::deliver_ok;
using mhtest::message_of_size;
using mhtest::read_text;
using mhtest::StoreSpool;
using mhtest::write_text;
using spool::QuotaVerdict;
using spool::Usage;

TEST_CASE("domain usage sums accounts and list archives", "[quota]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  auto b = s.account("b@example.com");
  auto other = s.account("x@other.example");
  auto list = s.list_with_archive("news@example.com");
  fs::create_directories(s.layout().list_dir(spool::Address::parse("noarchive@example.com")));
  deliver_ok(s, a, 100);
  deliver_ok(s, a, 200);
  deliver_ok(s, b, 50);
  deliver_ok(s, other, 999);
  // A post in the list archive, counted the way the archiver records it.
  spool::Maildir archive(s.layout().list_archive(list));
  write_text(archive.new_dir() / "1700000000.M1P1Q1R1.h,S=70", message_of_size(70));
  archive.record(70, 1);

  CHECK(spool::account_usage(s.layout(), a) == Usage{300, 2});
  CHECK(spool::list_archive_usage(s.layout(), list) == Usage{70, 1});
  CHECK(spool::list_archive_usage(s.layout(), spool::Address::parse("noarchive@example.com")) == Usage{});
  CHECK(spool::domain_usage(s.layout(), a.domain()) == Usage{420, 4});
  CHECK(spool::domain_usage(s.layout(), other.domain()) == Usage{999, 1});
  CHECK_FALSE(fs::exists(s.layout().list_archive(spool::Address::parse("noarchive@example.com"))));
}

TEST_CASE("usage is read from maildirsize, not from the message files", "[quota]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  deliver_ok(s, a, 100);
  // A file nobody recorded: only recalc sees it (that is what recalc is for).
  write_text(s.layout().maildir(a) / "new" / "1700000000.M1P1Q1R1.h,S=5", "12345");
  CHECK(spool::account_usage(s.layout(), a) == Usage{100, 1});
  CHECK(spool::recalc_account(s.layout(), a) == Usage{105, 2});
  CHECK(spool::account_usage(s.layout(), a) == Usage{105, 2});
}

TEST_CASE("check_quota boundaries for the domain", "[quota]") {
  StoreSpool s;
  s.domain("example.com", 1000);
  auto a = s.account("a@example.com");
  CHECK(spool::check_quota(s.layout(), a, 0) == QuotaVerdict::fits);
  CHECK(spool::check_quota(s.layout(), a, 1000) == QuotaVerdict::fits);
  CHECK(spool::check_quota(s.layout(), a, 1001) == QuotaVerdict::domain_full);
  deliver_ok(s, a, 999);
  CHECK(spool::check_quota(s.layout(), a, 0) == QuotaVerdict::fits); // 1 byte left
  CHECK(spool::check_quota(s.layout(), a, 1) == QuotaVerdict::fits);
  CHECK(spool::check_quota(s.layout(), a, 2) == QuotaVerdict::domain_full);
  deliver_ok(s, a, 1);
  // Full: RCPT-time question "any room at all?" is no, for every address of the domain.
  auto b = s.account("b@example.com");
  CHECK(spool::check_quota(s.layout(), a, 0) == QuotaVerdict::domain_full);
  CHECK(spool::check_quota(s.layout(), b, 0) == QuotaVerdict::domain_full);
}

TEST_CASE("quota 0 means unlimited", "[quota]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  CHECK(spool::check_quota(s.layout(), a, std::uint64_t(1) << 50) == QuotaVerdict::fits);
}

TEST_CASE("the account quota from account.yaml is checked after the domain's", "[quota]") {
  StoreSpool s;
  s.domain("example.com", 10000);
  auto a = s.account("a@example.com", 300);
  auto b = s.account("b@example.com");
  deliver_ok(s, a, 300);
  CHECK(spool::check_quota(s.layout(), a, 0) == QuotaVerdict::account_full);
  CHECK(spool::check_quota(s.layout(), a, 1) == QuotaVerdict::account_full);
  CHECK(spool::check_quota(s.layout(), b, 9700) == QuotaVerdict::fits);
  CHECK(spool::check_quota(s.layout(), a, 9701) == QuotaVerdict::domain_full);
}

TEST_CASE("recalc_account writes the account quota into maildirsize's first line", "[quota]") {
  StoreSpool s;
  auto a = s.account("a@example.com", 4096);
  CHECK(read_text(s.layout().maildir(a) / "maildirsize") == "4096S\n0 0\n");
  spool::update_account(s.layout(), a, [](spool::AccountConfig& c) { c.quota = 8192; });
  deliver_ok(s, a, 10);
  CHECK(spool::recalc_account(s.layout(), a) == Usage{10, 1});
  CHECK(read_text(s.layout().maildir(a) / "maildirsize") == "8192S\n10 1\n");
}

TEST_CASE("recalc of a list archive; a missing archive stays missing", "[quota]") {
  StoreSpool s;
  s.domain("example.com");
  auto list = s.list_with_archive("news@example.com");
  write_text(s.layout().list_archive(list) / "new" / "1700000000.M1P1Q1R1.h,S=3", "abc");
  CHECK(spool::recalc_list_archive(s.layout(), list) == Usage{3, 1});
  auto bare = spool::Address::parse("bare@example.com");
  fs::create_directories(s.layout().list_dir(bare));
  CHECK(spool::recalc_list_archive(s.layout(), bare) == Usage{});
  CHECK_FALSE(fs::exists(s.layout().list_archive(bare)));
}

TEST_CASE("set_domain_quota updates domain.yaml and takes effect at once", "[quota]") {
  StoreSpool s;
  auto a = s.account("a@example.com");
  deliver_ok(s, a, 500);
  spool::set_domain_quota(s.layout(), a.domain(), 400);
  CHECK(spool::read_domain(s.layout(), a.domain()).quota == 400);
  CHECK(spool::check_quota(s.layout(), a, 0) == QuotaVerdict::domain_full);
  spool::set_domain_quota(s.layout(), a.domain(), 0);
  CHECK(spool::check_quota(s.layout(), a, 1) == QuotaVerdict::fits);
}

TEST_CASE("usage of unknown domains is an error naming them", "[quota]") {
  StoreSpool s;
  auto err = mhtest::error_from([&] { spool::domain_usage(s.layout(), spool::Domain::parse("nowhere.example")); });
  CHECK(err.code() == spool::Errc::no_domain);
  CHECK(std::string(err.what()) == "no such domain: nowhere.example");
}
