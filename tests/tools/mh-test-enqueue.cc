// mh-test-enqueue — test-only: puts the message on stdin into the outbound queue with
// libspool (spool::QueueMessage, as the SMTP backend does), with an envelope the test
// chooses, so python tests can make queue entries in any state (old, retried, failing).
// Built only with MH_BUILD_TESTS, installed nowhere. Prints the new queue id.
//   mh-test-enqueue [--spool DIR] [--sender ADDR] [--auth ACCOUNT] [--created UNIX]
//                   [--attempts N] [--next-attempt UNIX] [--last-error TEXT]
//                   [--recipient-error N:TEXT]... RECIPIENT...
// --sender "" (the default) is the null sender; --created and --next-attempt default to now.
#include "common/cli.h"

#include <spool/error.h>
#include <spool/queue.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  mh::Tool tool("mh-test-enqueue", "Test helper: queue stdin for RECIPIENT... with libspool");
  tool.app().require_subcommand(0);  // one command: no subcommands
  std::vector<std::string> recipients, recipient_errors;
  spool::QueueEnvelope e;
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  e.created = now;
  e.next_attempt = now;
  tool.app().add_option("recipient", recipients, "Envelope recipients")->required();
  tool.app().add_option("--sender", e.sender, "Envelope sender (default: the null sender)");
  tool.app().add_option("--auth", e.auth, "Submitting account");
  tool.app().add_option("--created", e.created, "Unix time of arrival (default: now)");
  tool.app().add_option("--attempts", e.attempts, "Delivery attempts made");
  tool.app().add_option("--next-attempt", e.next_attempt, "Unix time of the next attempt (default: now)");
  tool.app().add_option("--last-error", e.last_error, "The last attempt's failure");
  tool.app().add_option("--recipient-error", recipient_errors, "N:TEXT, the last reply for recipient N (1-based)")
      ->allow_extra_args(false);
  tool.on(&tool.app(), [&] {
    const spool::Layout layout = tool.open_spool();
    e.recipients = recipients;
    for (const auto& item : recipient_errors) {
      const auto colon = item.find(':');
      const std::size_t n = colon == std::string::npos ? 0 : std::stoul(item.substr(0, colon));
      if (n == 0 || n > recipients.size()) throw spool::Error(spool::Errc::usage, "--recipient-error " + item);
      e.recipient_errors.resize(recipients.size());
      e.recipient_errors[n - 1] = item.substr(colon + 1);
    }
    spool::QueueMessage m = spool::QueueMessage::begin(layout);
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) spool::throw_errno("cannot read", "stdin", errno);
      if (n == 0) break;
      m.append(std::string_view(buf, static_cast<std::size_t>(n)));
    }
    m.commit(e);
    m.release();
    mh::Result r;
    r.data["id"] = m.id();
    r.text = m.id() + "\n";
    return r;
  });
  return tool.run(argc, argv);
}
