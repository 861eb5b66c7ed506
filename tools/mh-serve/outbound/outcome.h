// outcome.h — the runner's decisions, as pure functions (unit-tested without a network):
// what became of each recipient of one transfer, whether to try the next MX host, and
// when to try again (outbound.retry, the last step repeats; outbound.give_up).
// RFC 5321 §4.2.1 / §4.5.4.1: 2xx done, 4xx try again later, 5xx never (a DSN);
// a failure before the mail transaction (connect, greeting, EHLO, STARTTLS) says
// nothing about the recipients: the next MX host is tried, then later (§5.1).
#pragma once

#include "outbound/transcript.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace mh::outbound {

enum class Fate { delivered, deferred, bounced };

struct RecipientOutcome {
  std::string recipient;
  Fate fate = Fate::deferred;
  std::string reply;   // the remote reply that decided it, or what went wrong
};

// `transfer_ok`: libcurl finished without error. `failure`: libcurl's error text
// otherwise ("Timeout was reached", "Couldn't connect to server" …).
std::vector<RecipientOutcome> judge_transfer(const Transcript& transcript, const std::vector<std::string>& recipients,
                                             bool transfer_ok, const std::string& failure);

// True when nothing about the recipients was decided on this host (no MAIL reply came,
// or the server refused the session itself with 4xx/5xx before MAIL, or MAIL got a 4xx):
// the next address or MX host may be tried in the same attempt.
bool try_next_host(const Transcript& transcript, bool transfer_ok);

// Seconds to wait after the `attempts`-th failed attempt (1-based): retry[attempts-1],
// the last step repeating.
std::chrono::seconds retry_delay(const std::vector<std::chrono::seconds>& retry, std::uint32_t attempts);

// True when an entry created at `created` is past outbound.give_up at `now`.
bool past_give_up(std::int64_t created, std::int64_t now, std::chrono::seconds give_up);

} // namespace mh::outbound
