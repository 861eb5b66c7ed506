// deliver_bench — N sequential safe deliveries of one message into one account through
// libspool (spool::deliver_bytes: tmp/ + fsync + link into new/ + fsync new/ + maildirsize),
// timed. bench/store.sh compares its rate with fsbench.c, the physical floor of this disk.
//
// usage: deliver_bench SPOOL ADDRESS COUNT SIZE
// prints one line in fsbench's format: files=N secs=S files_per_s=R ok=0|1
#include <spool/delivery.h>
#include <spool/error.h>
#include <spool/layout.h>
#include <spool/names.h>
#include <spool/owner.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// A plain RFC 5322 message of exactly `size` bytes (LF line ends, 76-byte body lines).
std::string make_message(const spool::Address& to, std::size_t size) {
  std::string m = "Return-Path: <sender@example.invalid>\n"
                  "From: Bench Sender <sender@example.invalid>\n"
                  "To: " + to.str() + "\n"
                  "Subject: delivery benchmark\n"
                  "Date: Mon, 01 Jan 2024 00:00:00 +0000\n\n";
  while (m.size() < size) m += m.size() % 76 == 75 ? '\n' : 'x';
  m.resize(size);
  if (!m.empty()) m.back() = '\n';
  return m;
}

// Delivers `count` copies; stops at the first delivery that is not "delivered".
long deliver_all(const spool::Layout& layout, const spool::Address& to, const std::string& message,
                 long count) {
  const std::vector<spool::Address> recipients{to};
  for (long i = 0; i < count; ++i) {
    const auto outcomes = spool::deliver_bytes(layout, message, recipients);
    if (outcomes.size() != 1 || outcomes[0].status != spool::DeliveryOutcome::Status::delivered) {
      std::fprintf(stderr, "deliver_bench: delivery %ld failed: %s\n", i + 1,
                   outcomes.empty() ? "no outcome" : outcomes[0].detail.c_str());
      return i;
    }
  }
  return count;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: deliver_bench SPOOL ADDRESS COUNT SIZE\n");
    return 64;
  }
  const long count = std::atol(argv[3]);
  const long size = std::atol(argv[4]);
  if (count <= 0 || size <= 0) {
    std::fprintf(stderr, "deliver_bench: COUNT and SIZE must be positive\n");
    return 64;
  }
  try {
    const spool::Layout layout(argv[1]);
    spool::act_as_spool_owner(layout);  // as the tools do: files belong to the spool owner
    const spool::Address to = spool::Address::parse(argv[2]);
    const std::string message = make_message(to, static_cast<std::size_t>(size));

    const auto t0 = std::chrono::steady_clock::now();
    const long done = deliver_all(layout, to, message, count);
    const std::chrono::duration<double> secs = std::chrono::steady_clock::now() - t0;

    std::printf("files=%ld secs=%.6f files_per_s=%.1f ok=%d\n", done, secs.count(),
                static_cast<double>(done) / secs.count(), done == count ? 1 : 0);
    return done == count ? 0 : 1;
  } catch (const spool::Error& e) {
    std::fprintf(stderr, "deliver_bench: error: %s\n", e.what());
    return e.exit_code();
  }
}
