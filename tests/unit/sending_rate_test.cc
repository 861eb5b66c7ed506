// sending_rate_test.cc — limits.sending_per_hour (sending_rate.h) on a real temp spool:
// the exact limit, a message refused as a whole, the sliding window, counts kept across
// processes and never lost by racing ones, the suspension as mh-user records it, the
// resume that clears the window, malformed and hostile records, the bounded record.
#include "spool/sending_rate.h"

#include "spool/accounts.h"
#include "store_fixture.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>

using spool::Errc;
using spool::RateCheck;
using Kind = spool::RateCheck::Kind;
using mhtest::error_from;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1700000040;  // a minute boundary (28333334 * 60)

struct RateSpool : mhtest::StoreSpool {
  spool::Address alice = account("alice@example.org");

  RateCheck charge(std::uint32_t recipients, std::uint32_t per_hour, std::int64_t now) {
    return spool::charge_sending(layout(), alice, recipients, per_hour, now);
  }
  std::uint64_t in_window(std::int64_t now) { return spool::sending_in_window(layout(), alice, now); }
  spool::AccountConfig config() { return spool::read_account(layout(), alice); }
  fs::path record() { return layout().sending_record(alice); }
  // What `mh-user resume --sending` does (tools/mh-user/state.cc).
  void resume() {
    spool::update_account(layout(), alice, [](spool::AccountConfig& c) {
      c.sending_suspended = false;
      c.sending_reason = "";
    });
  }
};

} // namespace

TEST_CASE("sending_rate: the limit is exact, the 501st recipient suspends sending") {
  RateSpool s;
  for (int i = 0; i < 500; ++i) {
    RateCheck r = s.charge(1, 500, t0 + i);
    REQUIRE(r.kind == Kind::allowed);
    REQUIRE(r.in_window == static_cast<std::uint64_t>(i + 1));
  }
  CHECK_FALSE(s.config().sending_suspended);
  RateCheck over = s.charge(1, 500, t0 + 600);
  CHECK(over.kind == Kind::over);
  CHECK(over.in_window == 500);
  CHECK(over.reason == "rate");
  CHECK(over.detail == "500 + 1 recipients in the last hour exceed 500");
  // Recorded exactly as `mh-user suspend --sending --reason rate` would.
  spool::AccountConfig c = s.config();
  CHECK(c.sending_suspended);
  CHECK(c.sending_reason == "rate");
  CHECK_FALSE(c.suspended);
  // Suspended now: nothing more is counted, whatever the size.
  RateCheck again = s.charge(1, 500, t0 + 601);
  CHECK(again.kind == Kind::suspended);
  CHECK(again.reason == "rate");
  CHECK(s.in_window(t0 + 601) == 500);
}

TEST_CASE("sending_rate: a message that would cross the limit is refused as a whole") {
  RateSpool s;
  CHECK(s.charge(3, 5, t0).kind == Kind::allowed);
  RateCheck r = s.charge(3, 5, t0 + 1);
  CHECK(r.kind == Kind::over);
  CHECK(r.in_window == 3);
  CHECK(s.in_window(t0 + 1) == 3);  // none of the three counted
  CHECK(s.config().sending_suspended);
  SECTION("one message larger than the whole limit") {
    RateSpool big;
    CHECK(big.charge(6, 5, t0).kind == Kind::over);
    CHECK(big.in_window(t0) == 0);
  }
}

TEST_CASE("sending_rate: the window slides, a charge counts for at least an hour") {
  RateSpool s;
  CHECK(s.charge(6, 10, t0).kind == Kind::allowed);
  CHECK(s.charge(4, 10, t0 + 1800).kind == Kind::allowed);
  CHECK(s.in_window(t0 + 3599) == 10);
  CHECK(s.in_window(t0 + 3659) == 10);  // per-minute buckets: up to 61 minutes
  CHECK(s.in_window(t0 + 3660) == 4);   // the first charge is forgotten
  CHECK(s.charge(6, 10, t0 + 3660).kind == Kind::allowed);
  CHECK(s.charge(1, 10, t0 + 3661).kind == Kind::over);
  SECTION("a charge late in its minute still counts a full hour") {
    RateSpool late;
    CHECK(late.charge(1, 10, t0 + 59).kind == Kind::allowed);
    CHECK(late.in_window(t0 + 59 + 3600) == 1);
    CHECK(late.in_window(t0 + 59 + 3601) == 0);
  }
}

TEST_CASE("sending_rate: 0 means no limit, and nothing is written") {
  RateSpool s;
  RateCheck r = s.charge(100000, 0, t0);
  CHECK(r.kind == Kind::allowed);
  CHECK_FALSE(fs::exists(s.record()));
  CHECK(s.in_window(t0) == 0);
}

TEST_CASE("sending_rate: counts survive the process that made them") {
  RateSpool s;
  CHECK(mhtest::run_in_child([&] { return s.charge(4, 5, t0).kind == Kind::allowed ? 0 : 1; }) == 0);
  CHECK(s.in_window(t0 + 10) == 4);
  CHECK(s.charge(1, 5, t0 + 10).kind == Kind::allowed);
  CHECK(s.charge(1, 5, t0 + 11).kind == Kind::over);
  CHECK(mhtest::run_in_child([&] { return s.charge(1, 5, t0 + 12).kind == Kind::suspended ? 0 : 1; }) == 0);
}

TEST_CASE("sending_rate: racing processes never lose a charge") {
  RateSpool s;
  constexpr int children = 4, each = 40;
  std::vector<pid_t> pids;
  for (int c = 0; c < children; ++c) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int code = 0;
      try {
        for (int i = 0; i < each; ++i)
          if (s.charge(1, 100000, t0 + i).kind != Kind::allowed) code = 1;
      } catch (...) {
        code = 99;
      }
      ::_exit(code);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(s.in_window(t0 + each) == children * each);
  std::vector<std::string> files = mhtest::files_in(s.layout().account_dir(s.alice));
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"Maildir", "account.yaml", "sending.rate"});
}

TEST_CASE("sending_rate: resume clears the window") {
  RateSpool s;
  CHECK(s.charge(5, 5, t0).kind == Kind::allowed);
  CHECK(s.charge(1, 5, t0 + 60).kind == Kind::over);
  s.resume();
  // Within the same hour: without the clearing, this message would suspend again.
  RateCheck r = s.charge(5, 5, t0 + 120);
  CHECK(r.kind == Kind::allowed);
  CHECK(r.in_window == 5);
  CHECK(r.detail == "window cleared: sending was resumed");
  CHECK(s.charge(1, 5, t0 + 180).kind == Kind::over);
  CHECK(s.config().sending_reason == "rate");
}

TEST_CASE("sending_rate: an administrator's suspension is kept, and its resume does not clear") {
  RateSpool s;
  CHECK(s.charge(4, 5, t0).kind == Kind::allowed);
  spool::update_account(s.layout(), s.alice, [](spool::AccountConfig& c) {
    c.sending_suspended = true;
    c.sending_reason = "spam complaint";
  });
  RateCheck r = s.charge(1, 5, t0 + 1);
  CHECK(r.kind == Kind::suspended);
  CHECK(r.reason == "spam complaint");
  CHECK(s.config().sending_reason == "spam complaint");
  s.resume();
  // The window was not what stopped the account: it still holds the four.
  CHECK(s.charge(1, 5, t0 + 2).kind == Kind::allowed);
  CHECK(s.charge(1, 5, t0 + 3).kind == Kind::over);
}

TEST_CASE("sending_rate: a malformed record counts as a full window") {
  SECTION("suspended, replaced by an empty window that a resume clears") {
    const char* bodies[] = {"", "mailhost-sending-rate 1\nsuspended no\n28333334 3", "garbage\n",
                            "mailhost-sending-rate 1\nsuspended maybe\n",
                            "mailhost-sending-rate 1\nsuspended no\n28333334 0\n",
                            "mailhost-sending-rate 1\nsuspended no\n28333334 03\n",
                            "mailhost-sending-rate 1\nsuspended no\n28333335 1\n28333334 1\n",
                            "mailhost-sending-rate 1\nsuspended no\n-5 1\n",
                            "mailhost-sending-rate 1\nsuspended no\n28333334 99999999999\n",
                            "mailhost-sending-rate 1\n"};
    for (const char* body : bodies) {
      CAPTURE(body);
      RateSpool s;
      mhtest::write_text(s.record(), body);
      RateCheck r = s.charge(1, 500, t0);
      CHECK(r.kind == Kind::over);
      CHECK(r.reason == "rate");
      CHECK(r.detail.find("malformed " + s.record().string() + " (") == 0);
      CHECK(s.config().sending_suspended);
      CHECK(s.in_window(t0) == 0);  // replaced by an empty window, marked suspended …
      s.resume();                   // … so the resume lets mail through again
      CHECK(s.charge(1, 500, t0 + 1).kind == Kind::allowed);
    }
  }
  SECTION("read without charging: an error naming file and line") {
    RateSpool s;
    mhtest::write_text(s.record(), "mailhost-sending-rate 1\nsuspended no\nx y\n");
    spool::Error e = error_from([&] { (void)s.in_window(t0); });
    CHECK(e.code() == Errc::bad_config);
    CHECK(std::string(e.what()) == s.record().string() + ": line 3: expected 'MINUTE COUNT'");
  }
  SECTION("too big: not read whole") {
    RateSpool s;
    mhtest::write_text(s.record(), std::string(1 << 20, '\n'));
    CHECK(s.charge(1, 500, t0).kind == Kind::over);
  }
  SECTION("already suspended: refused, the record replaced all the same") {
    RateSpool s;
    mhtest::write_text(s.record(), "junk\n");
    spool::update_account(s.layout(), s.alice, [](spool::AccountConfig& c) {
      c.sending_suspended = true;
      c.sending_reason = "by hand";
    });
    RateCheck r = s.charge(1, 500, t0);
    CHECK(r.kind == Kind::suspended);
    CHECK(r.reason == "by hand");
    CHECK(s.in_window(t0) == 0);
  }
}

TEST_CASE("sending_rate: the record stays small whatever the rate") {
  RateSpool s;
  for (int minute = 0; minute < 5 * 60; ++minute)
    REQUIRE(s.charge(3, 1000000, t0 + minute * 60 + 7).kind == Kind::allowed);
  const std::string text = mhtest::read_text(s.record());
  CHECK(std::count(text.begin(), text.end(), '\n') == 2 + 61);
  CHECK(text.rfind("mailhost-sending-rate 1\nsuspended no\n", 0) == 0);
  CHECK(s.in_window(t0 + 299 * 60 + 7) == 3 * 61);
}

TEST_CASE("sending_rate: buckets from a clock far ahead keep their count") {
  RateSpool s;
  // Written by a host whose clock was a day ahead.
  const std::int64_t ahead = t0 / 60 + 24 * 60;
  mhtest::write_text(s.record(), "mailhost-sending-rate 1\nsuspended no\n" + std::to_string(ahead) + " 4\n");
  CHECK(s.in_window(t0) == 4);
  CHECK(s.charge(1, 5, t0).kind == Kind::allowed);
  CHECK(s.charge(1, 5, t0 + 1).kind == Kind::over);
  // Pulled back to an hour ahead: forgotten two hours later, not a day later.
  s.resume();
  CHECK(s.in_window(t0 + 2 * 3600 + 60) == 0);
}

TEST_CASE("sending_rate: hostile spool entries") {
  RateSpool s;
  SECTION("a symlink planted as the record is not followed") {
    const fs::path target = s.layout().root() / "elsewhere";
    mhtest::write_text(target, "mailhost-sending-rate 1\nsuspended no\n");
    fs::create_symlink(target, s.record());
    CHECK(error_from([&] { (void)s.charge(1, 5, t0); }).code() == Errc::other);
    CHECK(mhtest::read_text(target) == "mailhost-sending-rate 1\nsuspended no\n");
  }
  SECTION("a FIFO does not hang the reader") {
    REQUIRE(::mkfifo(s.record().c_str(), 0600) == 0);
    CHECK(error_from([&] { (void)s.charge(1, 5, t0); }).code() == Errc::other);
  }
  SECTION("an account deleted meanwhile") {
    spool::Address gone = spool::Address::parse("gone@example.org");
    CHECK(error_from([&] { (void)spool::charge_sending(s.layout(), gone, 1, 5, t0); }).code() == Errc::no_account);
    CHECK_FALSE(fs::exists(s.layout().account_dir(gone)));
  }
  SECTION("a leftover temp file of a killed writer is swept at the next clearing") {
    const fs::path stale = s.layout().account_dir(s.alice) / ".sending.rate.tmp.123.0.deadbeef";
    mhtest::write_text(stale, "half");
    CHECK(s.charge(5, 5, t0).kind == Kind::allowed);
    CHECK(s.charge(1, 5, t0).kind == Kind::over);
    CHECK_FALSE(fs::exists(stale));
  }
}
