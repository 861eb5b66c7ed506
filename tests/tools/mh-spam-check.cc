// mh-spam-check — test-only driver of spool::check_spam (spam_check.h): asks the rspamd
// at URL about the message in FILE, the way filtered delivery does, and prints one JSON
// line: {"verdict":"spam|ham|unknown","action":…,"score":…,"detail":…,"elapsed_ms":…,
// "fd_offset":…,"peak_rss_kb":…} — the last two let tests see that the message was
// streamed with pread (offset still 0, memory not growing with the message).
// Built only with MH_BUILD_TESTS, installed nowhere. Exit 0 whatever the verdict (an
// unknown verdict is an answer too), 64 on usage errors, 66 when FILE cannot be opened.
//   mh-spam-check URL FILE [--timeout-ms N] [--sender ADDR] [--recipient ADDR]
//                 [--ip IP] [--helo NAME] [--hostname NAME] [--client-hostname NAME]
#include <spool/spam_check.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

namespace {

// VmHWM of this process image: unlike getrusage's ru_maxrss it does not carry the
// peak of the (python) process that forked us before exec.
long peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app("Test helper: ask rspamd whether FILE is spam (spool::check_spam)", "mh-spam-check");
  spool::SpamCheckRequest rq;
  std::string file;
  long timeout_ms = 10000;
  rq.recipient = "bob@example.org";
  rq.hostname = "mx.example.org";
  app.add_option("url", rq.rspamd_url, "rspamd's normal worker, e.g. http://127.0.0.1:11333")->required();
  app.add_option("file", file, "The message")->required();
  app.add_option("--timeout-ms", timeout_ms, "Deadline for the whole exchange")->check(CLI::PositiveNumber);
  app.add_option("--sender", rq.sender, "Envelope sender (default: the null sender)");
  app.add_option("--recipient", rq.recipient, "Envelope recipient (default bob@example.org)");
  app.add_option("--ip", rq.client_ip, "Client IP (default: none, as for local mail)");
  app.add_option("--helo", rq.helo, "Client's HELO name");
  app.add_option("--hostname", rq.hostname, "Our name, sent as MTA-Name (default mx.example.org)");
  app.add_option("--client-hostname", rq.client_hostname, "Client's verified PTR name");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : 64;
  }
  rq.timeout = std::chrono::milliseconds(timeout_ms);

  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    std::cerr << "mh-spam-check: cannot open " << file << ": " << std::strerror(errno) << "\n";
    return 66;
  }
  rq.message_fd = fd;
  rq.message_size = static_cast<std::uint64_t>(st.st_size);

  const auto start = std::chrono::steady_clock::now();
  const spool::SpamCheckResult r = spool::check_spam(rq);
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  // check_spam reads with pread: the descriptor's offset must still be 0.
  const off_t offset = ::lseek(fd, 0, SEEK_CUR);
  ::close(fd);

  const char* verdict = r.verdict == spool::SpamVerdict::spam  ? "spam"
                        : r.verdict == spool::SpamVerdict::ham ? "ham"
                                                               : "unknown";
  nlohmann::json out = {{"verdict", verdict},   {"action", r.action},     {"score", r.score},
                        {"detail", r.detail},   {"elapsed_ms", elapsed}, {"fd_offset", offset},
                        {"peak_rss_kb", peak_rss_kb()}};
  std::cout << out.dump() << "\n";
  return 0;
}
