// outcome_test.cc — per-recipient fates from a transcript (2xx sent, 4xx deferred,
// 5xx bounced; a refused recipient does not fail the others), when the next MX host is
// tried, and the back-off steps.
#include "outbound/outcome.h"

#include <catch2/catch.hpp>

using namespace mh::outbound;
using namespace std::chrono_literals;

namespace {

Transcript accepted_until_data(const std::vector<std::pair<std::string, std::string>>& rcpts) {
  Transcript t;
  t.on_received("220 hi\r\n");
  t.on_sent("EHLO me\r\n");
  t.on_received("250 hi\r\n");
  t.on_sent("MAIL FROM:<a@b.example>\r\n");
  t.on_received("250 ok\r\n");
  for (const auto& [r, reply] : rcpts) {
    t.on_sent("RCPT TO:<" + r + ">\r\n");
    t.on_received(reply + "\r\n");
  }
  t.on_sent("DATA\r\n");
  t.on_received("354 go\r\n");
  return t;
}

Fate fate(const std::vector<RecipientOutcome>& v, const std::string& r) {
  for (const auto& o : v)
    if (o.recipient == r) return o.fate;
  FAIL("no outcome for " << r);
  return Fate::deferred;
}

} // namespace

TEST_CASE("per-recipient fates: one refused recipient fails alone", "[outbound][outcome]") {
  Transcript t = accepted_until_data({{"ok@x", "250 ok"}, {"no@x", "550 5.1.1 no such user"}, {"busy@x", "452 4.2.2 full"}});
  t.on_received("250 2.0.0 queued\r\n");
  const auto v = judge_transfer(t, {"ok@x", "no@x", "busy@x"}, true, "");
  CHECK(fate(v, "ok@x") == Fate::delivered);
  CHECK(fate(v, "no@x") == Fate::bounced);
  CHECK(fate(v, "busy@x") == Fate::deferred);
  CHECK(v[1].reply == "550 5.1.1 no such user");
}

TEST_CASE("the reply after the data decides for every accepted recipient", "[outbound][outcome]") {
  Transcript t = accepted_until_data({{"a@x", "250 ok"}, {"b@x", "250 ok"}});
  t.on_received("554 5.7.1 content rejected\r\n");
  const auto v = judge_transfer(t, {"a@x", "b@x"}, false, "Failed sending data to the peer");
  CHECK(fate(v, "a@x") == Fate::bounced);
  CHECK(fate(v, "b@x") == Fate::bounced);
  CHECK(v[0].reply == "554 5.7.1 content rejected");
}

TEST_CASE("a lost connection after the data defers (at-least-once)", "[outbound][outcome]") {
  Transcript t = accepted_until_data({{"a@x", "250 ok"}});
  const auto v = judge_transfer(t, {"a@x"}, false, "Timeout was reached");
  CHECK(fate(v, "a@x") == Fate::deferred);
  CHECK(v[0].reply == "Timeout was reached");
  CHECK_FALSE(try_next_host(t, false));
}

TEST_CASE("a refused sender fails every recipient the same way", "[outbound][outcome]") {
  Transcript t;
  t.on_sent("MAIL FROM:<a@b>\r\n");
  t.on_received("553 5.7.1 sender rejected\r\n");
  const auto v = judge_transfer(t, {"a@x", "b@x"}, false, "error");
  CHECK(fate(v, "a@x") == Fate::bounced);
  CHECK(fate(v, "b@x") == Fate::bounced);
  CHECK_FALSE(try_next_host(t, false));
  Transcript busy;
  busy.on_sent("MAIL FROM:<a@b>\r\n");
  busy.on_received("421 4.3.2 shutting down\r\n");
  CHECK(try_next_host(busy, false));
}

TEST_CASE("failures before the transaction try the next host", "[outbound][outcome]") {
  Transcript refused;  // nothing at all: connection refused
  CHECK(try_next_host(refused, false));
  Transcript greeting;
  greeting.on_received("554 no service\r\n");
  CHECK(try_next_host(greeting, false));
  const auto v = judge_transfer(greeting, {"a@x"}, false, "Weird server reply");
  CHECK(fate(v, "a@x") == Fate::deferred);
  CHECK(v[0].reply.find("554 no service") != std::string::npos);
  CHECK_FALSE(try_next_host(greeting, true));
}

TEST_CASE("retry steps: the last one repeats; give-up after the configured time", "[outbound][outcome]") {
  const std::vector<std::chrono::seconds> steps{300s, 900s, 3600s};
  CHECK(retry_delay(steps, 1) == 300s);
  CHECK(retry_delay(steps, 2) == 900s);
  CHECK(retry_delay(steps, 3) == 3600s);
  CHECK(retry_delay(steps, 50) == 3600s);
  CHECK(past_give_up(1000, 1000 + 5 * 86400, std::chrono::hours(120)));
  CHECK_FALSE(past_give_up(1000, 1000 + 5 * 86400 - 1, std::chrono::hours(120)));
}
