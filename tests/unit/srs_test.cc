// srs_test.cc — SRS0 addresses (srs.h): the libsrs2 shape, the round trip, addresses an
// MTA re-cased on the way back, tampering (forged), the 21-day lifetime and the 1024-day
// wrap of the timestamp, our own and other forwarders' SRS addresses, and the key file:
// made 0600 once, reused, malformed → bad_config, and one key when creators race.
#include "spool/srs.h"

#include "spool/atomic_file.h"
#include "store_fixture.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <set>
#include <vector>

using spool::Errc;
using spool::SrsKey;
using Verdict = spool::SrsKey::Verdict;
using mhtest::error_from;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t day = 86400;
constexpr std::int64_t t0 = 1700000000;  // 2023-11-14 22:13:20 UTC, day 19675
constexpr const char* ours = "mail.example.jp";

SrsKey test_key(char fill = 'k') { return SrsKey::from_bytes(std::string(32, fill)); }

std::string local_of(const std::string& address) { return address.substr(0, address.rfind('@')); }

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The fields of "SRS0=HHHH=TT=domain=local": hash, timestamp, domain, local.
std::vector<std::string> fields_of(const std::string& local) {
  std::vector<std::string> f;
  std::string rest = local.substr(5);
  for (int i = 0; i < 3; ++i) {
    const auto eq = rest.find('=');
    f.push_back(rest.substr(0, eq));
    rest = rest.substr(eq + 1);
  }
  f.push_back(rest);
  return f;
}

std::string join(const std::vector<std::string>& f) { return "SRS0=" + f[0] + "=" + f[1] + "=" + f[2] + "=" + f[3]; }

} // namespace

TEST_CASE("srs: the forward address has the libsrs2 shape and reverses to the sender", "[srs]") {
  const SrsKey key = test_key();
  const std::string a = key.forward_address("alice@example.org", ours, t0);
  INFO(a);
  REQUIRE(a.rfind("SRS0=", 0) == 0);
  REQUIRE(a.size() > std::string(ours).size());
  CHECK(a.substr(a.size() - std::string("@mail.example.jp").size()) == "@mail.example.jp");
  const auto f = fields_of(local_of(a));
  CHECK(f[0].size() == 4);
  // Day 19675 mod 1024 = 219 = 6*32 + 27 → "G3".
  CHECK(f[1] == "G3");
  CHECK(f[2] == "example.org");
  CHECK(f[3] == "alice");

  const auto r = key.reverse(local_of(a), t0);
  CHECK(r.verdict == Verdict::original);
  CHECK(r.original == "alice@example.org");
  // Deterministic for one key and day; another key gives another hash.
  CHECK(key.forward_address("alice@example.org", ours, t0 + 60) == a);
  CHECK(test_key('x').forward_address("alice@example.org", ours, t0) != a);
  CHECK(test_key('x').reverse(local_of(a), t0).verdict == Verdict::forged);
}

TEST_CASE("srs: the hash never holds '/' or '+' (base64url), so our addresses pass RCPT", "[srs]") {
  // SPEC §8 refuses '/' in any address; with libsrs2's alphabet about 1 in 16 of our
  // SRS addresses would be refused when its bounce comes back.
  const SrsKey key = test_key();
  std::set<char> seen;
  for (int i = 0; i < 2000; ++i) {
    const auto f = fields_of(local_of(key.forward_address("user" + std::to_string(i) + "@example.org", ours, t0)));
    seen.insert(f[0].begin(), f[0].end());
    INFO(f[0]);
    CHECK(f[0].find_first_of("/+") == std::string::npos);
  }
  CHECK(seen.count('-') + seen.count('_') == 2);  // the replacements are in use
}

TEST_CASE("srs: a local part with '=' and an address split at the last '@' round-trip", "[srs]") {
  const SrsKey key = test_key();
  for (const std::string sender : {"a=b=c@example.org", "user+tag@sub.example.org", "\"odd@local\"@example.org"}) {
    INFO(sender);
    const std::string a = key.forward_address(sender, ours, t0);
    const auto r = key.reverse(local_of(a), t0);
    CHECK(r.verdict == Verdict::original);
    CHECK(r.original == sender);
  }
}

TEST_CASE("srs: an address whose case an MTA changed still verifies", "[srs]") {
  const SrsKey key = test_key();
  const std::string a = key.forward_address("John.Doe@Example.ORG", ours, t0);
  const auto as_sent = key.reverse(local_of(a), t0);
  CHECK(as_sent.verdict == Verdict::original);
  CHECK(as_sent.original == "John.Doe@Example.ORG");

  const auto lowered = key.reverse(lower(local_of(a)), t0 + day);
  CHECK(lowered.verdict == Verdict::original);
  CHECK(lowered.original == "john.doe@example.org");
  const auto raised = key.reverse(upper(local_of(a)), t0 + day);
  CHECK(raised.verdict == Verdict::original);
  CHECK(raised.original == "JOHN.DOE@EXAMPLE.ORG");
}

TEST_CASE("srs: a tampered hash, timestamp, domain or local part is forged", "[srs]") {
  const SrsKey key = test_key();
  const auto f = fields_of(local_of(key.forward_address("alice@example.org", ours, t0)));

  auto other_char = [](char c) { return std::tolower(static_cast<unsigned char>(c)) == 'q' ? 'z' : 'q'; };
  auto hash = f;
  hash[0][1] = other_char(hash[0][1]);
  auto domain = f;
  domain[2] = "evil.example";
  auto local = f;
  local[3] = "mallory";
  auto stamp = f;  // an older (still valid-looking) day: the hash covers the timestamp
  stamp[1] = stamp[1] == "G2" ? "G1" : "G2";
  for (const auto& t : {hash, domain, local, stamp}) {
    INFO(join(t));
    CHECK(key.reverse(join(t), t0).verdict == Verdict::forged);
  }
  // Tampered and old: forged, not merely expired.
  CHECK(key.reverse(join(domain), t0 + 40 * day).verdict == Verdict::forged);
}

TEST_CASE("srs: valid for 21 days, expired on the 22nd", "[srs]") {
  const SrsKey key = test_key();
  const std::string local = local_of(key.forward_address("alice@example.org", ours, t0));
  CHECK(key.reverse(local, t0 + 21 * day).verdict == Verdict::original);
  const auto late = key.reverse(local, t0 + 22 * day);
  CHECK(late.verdict == Verdict::expired);
  CHECK(late.original.empty());
  // A timestamp from the future (another host's clock a day ahead) is refused as well.
  CHECK(key.reverse(local, t0 - day).verdict == Verdict::expired);
}

TEST_CASE("srs: the 1024-day timestamp counter wraps around", "[srs]") {
  const SrsKey key = test_key();
  // Day 19455 = 19 * 1024 - 1 → slot 1023 ("77"); five days later the slot is 4.
  const std::int64_t last_slot = 19455 * day + 3600;
  const std::string local = local_of(key.forward_address("alice@example.org", ours, last_slot));
  CHECK(fields_of(local)[1] == "77");
  CHECK(key.reverse(local, last_slot + 5 * day).verdict == Verdict::original);
  CHECK(key.reverse(local, last_slot + 21 * day).verdict == Verdict::original);
  CHECK(key.reverse(local, last_slot + 22 * day).verdict == Verdict::expired);
  const std::string next = local_of(key.forward_address("alice@example.org", ours, last_slot + day));
  CHECK(fields_of(next)[1] == "AA");
}

TEST_CASE("srs: our own SRS0 address is kept, another forwarder's is wrapped", "[srs]") {
  const SrsKey key = test_key();
  const std::string a = key.forward_address("alice@example.org", ours, t0);
  CHECK(key.forward_address(a, ours, t0 + day) == a);
  CHECK(key.forward_address(lower(local_of(a)) + "@MAIL.example.JP", ours, t0) ==
        lower(local_of(a)) + "@MAIL.example.JP");

  const std::string theirs = "SRS0=abcd=G3=example.org=alice@fwd.example.net";
  const std::string wrapped = key.forward_address(theirs, ours, t0);
  CHECK(fields_of(local_of(wrapped))[2] == "fwd.example.net");
  const auto r = key.reverse(local_of(wrapped), t0);
  CHECK(r.verdict == Verdict::original);
  CHECK(r.original == theirs);
  const std::string srs1 = "SRS1=x=fwd.example.net==abcd=G3=example.org=alice@fwd2.example.net";
  CHECK(key.reverse(local_of(key.forward_address(srs1, ours, t0)), t0).original == srs1);
}

TEST_CASE("srs: not SRS, malformed, and senders that cannot be rewritten", "[srs]") {
  const SrsKey key = test_key();
  CHECK(key.reverse("alice", t0).verdict == Verdict::not_srs);
  CHECK(key.reverse("SRS1=abcd=x.org==G3=a.org=b", t0).verdict == Verdict::not_srs);
  CHECK(key.reverse("SRS", t0).verdict == Verdict::not_srs);
  for (const char* bad : {"SRS0=", "SRS0=abcd", "SRS0=abcd=G3=example.org", "SRS0=abcd=G3=example.org=",
                          "SRS0=abc=G3=example.org=alice", "SRS0=abcde=G3=example.org=alice",
                          "SRS0=abcd=G=example.org=alice", "SRS0=abcd=G1=example.org=alice",  // '1' is not base32
                          "SRS0==G3=example.org=alice", "SRS0=abcd==example.org=alice", "srs0=abcd=G3==alice"}) {
    INFO(bad);
    CHECK(key.reverse(bad, t0).verdict == Verdict::malformed);
  }
  for (const char* bad : {"alice", "@example.org", "alice@", "al ice@example.org", "alice@ex=ample.org",
                          "alice@example.org\r\nX: y"}) {
    INFO(bad);
    CHECK(error_from([&] { (void)key.forward_address(bad, ours, t0); }).code() == Errc::invalid_input);
  }
}

TEST_CASE("srs: a long sender gives a local part over 64 octets, produced anyway", "[srs]") {
  const SrsKey key = test_key();
  const std::string sender = std::string(60, 'a') + "@example.org";
  const std::string a = key.forward_address(sender, ours, t0);
  CHECK(local_of(a).size() > 64);
  CHECK(key.reverse(local_of(a), t0).original == sender);
}

TEST_CASE("srs: the key file is made 0600 on first use and reused", "[srs]") {
  mhtest::StoreSpool spool;
  const fs::path file = spool.layout().tls_dir() / "srs.key";
  REQUIRE_FALSE(fs::exists(file));
  const SrsKey first = SrsKey::load_or_create(spool.layout());
  REQUIRE(fs::exists(file));
  struct stat st;
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string text = mhtest::read_text(file);
  REQUIRE(text.size() == 65);
  CHECK(text.back() == '\n');
  CHECK(text.find_first_not_of("0123456789abcdef") == 64);
  CHECK(mhtest::entries_in(spool.layout().tls_dir()) == 1);  // no temp file left

  const SrsKey again = SrsKey::load_or_create(spool.layout());
  CHECK(mhtest::read_text(file) == text);
  const std::string a = first.forward_address("alice@example.org", ours, t0);
  CHECK(again.forward_address("alice@example.org", ours, t0) == a);
  CHECK(again.reverse(local_of(a), t0).verdict == Verdict::original);

  // A key written by hand (upper-case hex, no newline) loads too.
  mhtest::write_text(file, std::string(64, 'A'));
  const SrsKey by_hand = SrsKey::load_or_create(spool.layout());
  CHECK(by_hand.forward_address("alice@example.org", ours, t0) ==
        SrsKey::from_bytes(std::string(32, '\xaa')).forward_address("alice@example.org", ours, t0));
}

TEST_CASE("srs: a malformed key file is bad_config naming the file", "[srs]") {
  mhtest::StoreSpool spool;
  const fs::path file = spool.layout().tls_dir() / "srs.key";
  const std::string hex64(64, '0');
  for (const std::string& bad : {std::string(), std::string("\n"), hex64.substr(1) + "\n", hex64 + "0\n",
                                hex64.substr(2) + "zz\n", hex64 + "\n\n", " " + hex64.substr(1)}) {
    INFO("content: '" << bad << "'");
    mhtest::write_text(file, bad);
    const auto e = error_from([&] { (void)SrsKey::load_or_create(spool.layout()); });
    CHECK(e.code() == Errc::bad_config);
    CHECK(std::string(e.what()).rfind(file.string() + ": ", 0) == 0);
    CHECK(mhtest::read_text(file) == bad);  // never replaced
  }
  fs::remove(file);
  fs::create_directory(file);
  CHECK(error_from([&] { (void)SrsKey::load_or_create(spool.layout()); }).code() == Errc::bad_config);
  fs::remove(file);
  fs::create_symlink("/etc/passwd", file);
  CHECK(error_from([&] { (void)SrsKey::load_or_create(spool.layout()); }).code() == Errc::other);
}

TEST_CASE("srs: processes creating the key at once all end with the same key", "[srs]") {
  mhtest::StoreSpool spool;
  const fs::path out = spool.layout().root() / "out";
  fs::create_directories(out);
  constexpr int creators = 6;
  int gate[2];
  REQUIRE(::pipe(gate) == 0);
  std::vector<pid_t> children;
  for (int i = 0; i < creators; ++i) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      }  // EOF when the parent closes the write end: all start together
      int code = 1;
      try {
        const SrsKey k = SrsKey::load_or_create(spool.layout());
        mhtest::write_text(out / std::to_string(i), k.forward_address("alice@example.org", ours, t0));
        code = 0;
      } catch (...) {
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);
  for (pid_t pid : children) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  std::set<std::string> seen;
  for (int i = 0; i < creators; ++i) seen.insert(mhtest::read_text(out / std::to_string(i)));
  CHECK(seen.size() == 1);
  CHECK(*seen.begin() == SrsKey::load_or_create(spool.layout()).forward_address("alice@example.org", ours, t0));
  CHECK(mhtest::entries_in(spool.layout().tls_dir()) == 1);
}
