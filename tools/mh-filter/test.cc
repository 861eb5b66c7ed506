// test.cc — mh-filter test ADDRESS [--sender ADDR] < message: which step of the
// account's filters fires for a message and what it would do, by the same
// evaluate_filters() delivery uses. Sends, queues and stores nothing; the auto-reply
// memory is read, never written.
// The message on stdin is read once, in chunks: only its header (up to
// max_filter_header_block) is kept for matching, the rest is counted, so a 30 MB message
// costs no more memory than a small one. When rspamd must be asked, the message is
// spilled to an unlinked temp file outside the spool ($TMPDIR, else /tmp) for
// check_spam's fd, and gone when the tool exits.
#include "commands.h"

#include <spool/autoreply.h>
#include <spool/config.h>
#include <spool/error.h>
#include <spool/filter_match.h>
#include <spool/header_decode.h>
#include <spool/spam_check.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <tuple>

#include <fcntl.h>
#include <unistd.h>

namespace mh::filter {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;

struct TestOptions {
  std::string address;
  std::string sender;
  CLI::Option* sender_option = nullptr;
};

// An anonymous temp file (no name left behind even if we are killed); mkstemp + unlink
// where O_TMPFILE is not supported.
class SpillFile {
public:
  SpillFile() {
    const char* env = std::getenv("TMPDIR");
    std::string dir = env && *env ? env : "/tmp";
#ifdef O_TMPFILE
    fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd_ < 0) {
      std::string name = dir + "/mh-filter-test.XXXXXX";
      fd_ = ::mkstemp(name.data());
      if (fd_ < 0) spool::throw_errno("cannot create a temp file in", dir, errno);
      ::unlink(name.c_str());
    }
  }
  ~SpillFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  void write(const char* data, std::size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) spool::throw_errno("cannot write the temp copy of the message", "(temp file)", errno);
      data += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  int fd() const { return fd_; }

private:
  int fd_ = -1;
};

struct ReadMessage {
  std::string header;       // the header block (each field with its line end), at most max_filter_header_block
  std::uint64_t size = 0;   // every byte of the message
};

// Reads stdin to the end: keeps the header, counts the rest, copies all to `spill` if given.
// The end of the header is searched only in the bytes each chunk adds.
ReadMessage read_stdin(SpillFile* spill) {
  ReadMessage m;
  bool header_done = false;
  std::size_t scanned = 0;   // header bytes already searched for the blank line
  std::string buf(read_chunk, '\0');
  for (;;) {
    ssize_t n = ::read(0, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) spool::throw_errno("cannot read the message from", "standard input", errno);
    if (n == 0) break;
    const auto got = static_cast<std::size_t>(n);
    m.size += got;
    if (spill) spill->write(buf.data(), got);
    if (header_done) continue;
    const std::size_t take = std::min(got, spool::max_filter_header_block - m.header.size());
    m.header.append(buf.data(), take);
    // A header that starts with the blank line is empty.
    if (m.header.starts_with("\n") || m.header.starts_with("\r\n")) {
      m.header.clear();
      header_done = true;
      continue;
    }
    // The blank line is LF LF or LF CR LF; look back two bytes for one split between chunks.
    for (std::size_t i = scanned > 2 ? scanned - 2 : 0; i < m.header.size(); ++i) {
      if (m.header[i] != '\n') continue;
      std::size_t j = i + 1;
      if (j < m.header.size() && m.header[j] == '\r') ++j;
      if (j < m.header.size() && m.header[j] == '\n') {
        m.header.resize(i + 1);
        header_done = true;
        break;
      }
    }
    scanned = m.header.size();
    if (m.header.size() >= spool::max_filter_header_block) header_done = true;
  }
  return m;
}

// The addr-spec of a Return-Path or From value: inside <…>, else the first word with '@'.
std::string address_in(const std::string& value) {
  auto lt = value.find('<');
  if (lt != std::string::npos) {
    auto gt = value.find('>', lt);
    return value.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
  }
  std::size_t i = 0;
  while (i < value.size()) {
    std::size_t end = value.find_first_of(" \t,;", i);
    if (end == std::string::npos) end = value.size();
    std::string word = value.substr(i, end - i);
    if (word.find('@') != std::string::npos) return word;
    i = end + 1;
  }
  return "";
}

// The envelope sender delivery would have seen: Return-Path (the final MTA's record of
// it), else the From address, else the null sender.
std::string default_sender(const std::string& header) {
  if (auto rp = spool::header_field(header, "Return-Path")) return address_in(*rp);
  if (auto from = spool::header_field(header, "From")) return address_in(*from);
  return "";
}

// Stable tokens for --json and text for people, for why no auto-reply goes out.
std::pair<std::string, std::string> no_reply_words(spool::NoReplyReason r) {
  using R = spool::NoReplyReason;
  switch (r) {
  case R::none: break;
  case R::null_sender: return {"null_sender", "null sender"};
  case R::mailer_daemon: return {"mailer_daemon", "the sender is a mailer daemon"};
  case R::list_mail: return {"list_mail", "list mail"};
  case R::auto_submitted: return {"auto_submitted", "automatic mail (Auto-Submitted)"};
  case R::not_addressed: return {"not_addressed", "the account is not named in To or Cc"};
  case R::loop: return {"loop", "mail loop: Delivered-To already names the account"};
  }
  return {"", ""};
}

std::string action_name(spool::FilterDecision::Action a) {
  using A = spool::FilterDecision::Action;
  switch (a) {
  case A::deliver: return "deliver";
  case A::tag: return "tag";
  case A::discard: return "discard";
  case A::bounce: return "bounce";
  case A::autoreply: return "autoreply";
  case A::forward: return "forward";
  }
  return "deliver";
}

std::string step_name(spool::FilterDecision::Step s) {
  using S = spool::FilterDecision::Step;
  switch (s) {
  case S::none: return "none";
  case S::spam: return "spam";
  case S::rule: return "rule";
  case S::autoreply: return "autoreply";
  case S::forward: return "forward";
  }
  return "none";
}

std::string verdict_name(spool::SpamVerdict v) {
  return v == spool::SpamVerdict::spam ? "spam" : v == spool::SpamVerdict::ham ? "ham" : "unknown";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

Result run_test(const Tool& tool, const TestOptions& o) {
  using Step = spool::FilterDecision::Step;
  using Action = spool::FilterDecision::Action;
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  const spool::FilterConfig config = spool::read_filters(layout, a);

  // rspamd is asked only when its answer can matter (SPEC §6: the spam filter is opt-in).
  std::optional<spool::ServerConfig> server;
  if (config.spam.enabled) server = spool::load_server_config(layout.server_config());
  const bool ask_rspamd = server && !server->spam_rspamd.empty();
  std::unique_ptr<SpillFile> spill;
  if (ask_rspamd) spill = std::make_unique<SpillFile>();

  ReadMessage read = read_stdin(spill.get());
  std::string sender = o.sender_option->count() > 0 ? o.sender : default_sender(read.header);
  spool::FilterMessage message(std::move(read.header), read.size, sender);

  Result r;
  r.data = {{"address", a.str()}, {"sender", sender}, {"size", read.size}, {"spam", nullptr}, {"reply", nullptr}};
  std::string text;
  spool::SpamVerdict verdict = spool::SpamVerdict::unknown;
  if (config.spam.enabled) {
    std::string detail;
    if (ask_rspamd) {
      spool::SpamCheckRequest req;
      req.rspamd_url = server->spam_rspamd;
      req.timeout = server->spam_timeout;
      req.message_fd = spill->fd();
      req.message_size = read.size;
      req.sender = sender;
      req.recipient = a.str();
      req.hostname = server->hostname;
      spool::SpamCheckResult res = spool::check_spam(req);
      verdict = res.verdict;
      detail = res.detail;
    } else {
      detail = "spam.rspamd is not set in mailhost.yaml: the spam filter is inert";
    }
    r.data["spam"] = {{"verdict", verdict_name(verdict)}, {"detail", detail}};
    text += "spam check: " + verdict_name(verdict) + (detail.empty() ? "" : " (" + detail + ")") + "\n";
  }

  const spool::FilterDecision d = spool::evaluate_filters(config, a, message, verdict);
  const bool numbered = d.step == Step::rule || d.step == Step::forward;
  const bool stored = d.action == Action::deliver || d.action == Action::tag || d.action == Action::autoreply ||
                      (d.action == Action::forward && d.keep);
  r.data["step"] = step_name(d.step);
  r.data["number"] = numbered ? nlohmann::json(d.index + 1) : nlohmann::json(nullptr);
  r.data["action"] = action_name(d.action);
  r.data["keep"] = stored;
  r.data["destinations"] = d.destinations;
  r.data["loop"] = d.loop;
  r.data["detail"] = d.detail;

  switch (d.step) {
  case Step::none: text += "step: none (no filter matched)\n"; break;
  case Step::spam: text += "step: spam filter (" + spam_action_name(config.spam.action) + ")\n"; break;
  case Step::rule:
    text += "step: rule " + std::to_string(d.index + 1) + " (" + config.rules.at(d.index).condition.str() + ")\n";
    break;
  case Step::autoreply: text += "step: auto-reply\n"; break;
  case Step::forward:
    text += "step: forward profile " + std::to_string(d.index + 1) + " (" +
            config.forwards.at(d.index).condition.str() + ")\n";
    break;
  }
  switch (d.action) {
  case Action::deliver:
    text += d.loop ? "action: deliver to the mailbox (forward suppressed: the message already went through " + a.str() +
                         ", a mail loop)\n"
                   : "action: deliver to the mailbox\n";
    break;
  case Action::tag:
    text += "action: deliver with the subject prefixed \"" + config.spam.tag + "\" and X-Spam-Flag: YES\n";
    break;
  case Action::discard: text += "action: discard (not stored, no notice to anyone)\n"; break;
  case Action::bounce:
    text += "action: bounce (not stored; an error mail to " + (sender.empty() ? std::string("<>: none, null sender") : sender) +
            ")\n";
    break;
  case Action::autoreply: text += "action: deliver to the mailbox and answer the sender\n"; break;
  case Action::forward:
    text += "action: forward to " + join(d.destinations) + "; " + (d.keep ? "keep a copy" : "no copy kept") + "\n";
    break;
  }

  if (d.step == Step::autoreply) {
    spool::NoReplyReason why = d.no_reply != spool::NoReplyReason::none ? d.no_reply : spool::autoreply_refusal(a, message);
    std::string token, words;
    bool would = false;
    if (why != spool::NoReplyReason::none) {
      std::tie(token, words) = no_reply_words(why);
    } else {
      would = spool::autoreply_would_send(layout, a, sender, config.autoreply.days, std::time(nullptr));
      if (!would) {
        token = "answered_recently";
        words = sender + " was answered less than " + std::to_string(config.autoreply.days) + " days ago";
      }
    }
    r.data["reply"] = {{"would_send", would}, {"reason", would ? nlohmann::json(nullptr) : nlohmann::json(token)}};
    text += would ? "auto-reply: would be sent to " + sender + "\n" : "auto-reply: not sent (" + words + ")\n";
  }
  r.text = text;
  return r;
}

} // namespace

void setup_test(Tool& tool) {
  auto o = std::make_shared<TestOptions>();
  CLI::App* test = tool.app().add_subcommand(
      "test", "Show which filter step fires for the message on stdin and what it would do (sends nothing)");
  test->add_option("address", o->address, "name@domain")->required();
  o->sender_option = test->add_option("--sender", o->sender,
                                      "Envelope sender (default: Return-Path, else the From address; '' = <>)")
                         ->type_name("ADDR");
  tool.on(test, [&tool, o] { return run_test(tool, *o); });
}

} // namespace mh::filter
