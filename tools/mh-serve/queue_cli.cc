// queue_cli.cc — mh-serve queue list [--ids] | show ID | retry (ID... | --all) |
// delete (ID... | --all) [--bounce] (queue_cli.h). Ids named on the command line are all
// checked (syntax, then existence) before anything changes; once changes have begun an
// entry that fails (busy, unreadable) does not stop the others, and the exit status is
// the first failure's.
#include "queue_cli.h"

#include "common/output.h"
#include "serve_config.h"

#include <spool/error.h>
#include <spool/queue_admin.h>
#include <spool/units.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <set>

namespace mh::serve {
namespace {

using nlohmann::json;

// On a terminal, a sender longer than this is cut in the list (the full one: show, --json).
constexpr std::size_t list_sender_width = 40;
// Narrowest a cut "last error" column gets, however narrow the terminal.
constexpr std::size_t list_error_min_width = 20;

struct ListOptions {
  bool ids = false;
};

struct ShowOptions {
  std::string id;
};

struct ChangeOptions {
  std::vector<std::string> ids;
  bool all = false;
  bool bounce = false;
  std::string wait = "5s";
};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utc(std::int64_t t) { return spool::format_utc(std::chrono::system_clock::time_point(std::chrono::seconds(t))); }

// "45s", "3m", "2h", "5d": the largest whole unit, for ages and waits in tables.
std::string short_duration(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600) return std::to_string(seconds / 60) + "m";
  if (seconds < 86400) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string next_try_text(std::int64_t next_attempt, std::int64_t now) {
  return next_attempt <= now ? "now" : "in " + short_duration(next_attempt - now);
}

std::string sender_text(const std::string& sender) { return "<" + sender + ">"; }

std::string cut(const std::string& text, std::size_t width) {
  if (text.size() <= width) return text;
  if (width <= 3) return text.substr(0, width);
  return text.substr(0, width - 3) + "...";
}

// The lines of `text`, each without its line end.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::size_t terminal_columns() {
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void warn(const Tool& tool, const std::string& text) {
  if (!tool.common().quiet) std::cerr << tool.name() << ": warning: " << text << "\n";
}

// The same text as an error Tool::run() prints, for failures that do not end the run.
void report_error(const Tool& tool, const std::string& text) { std::cerr << tool.name() << ": error: " << text << "\n"; }

std::string shown_id(const std::string& id) {
  std::string out;
  for (char c : id.substr(0, 80)) out += (c > 0x20 && c < 0x7f) ? c : '?';
  return out;
}

json recipients_json(const spool::QueueEnvelope& e) {
  json out = json::array();
  for (std::size_t i = 0; i < e.recipients.size(); ++i) {
    const std::string error = i < e.recipient_errors.size() ? e.recipient_errors[i] : "";
    out.push_back({{"address", e.recipients[i]}, {"state", error.empty() ? "pending" : "deferred"}, {"last_error", error}});
  }
  return out;
}

// Fields shared by list and show.
json entry_json(const spool::QueueEnvelope& e, std::uint64_t size, std::int64_t now) {
  return {{"id", e.id},
          {"created", e.created},
          {"age", std::max<std::int64_t>(0, now - e.created)},
          {"sender", e.sender},
          {"auth", e.auth},
          {"size", size},
          {"recipients", recipients_json(e)},
          {"attempts", e.attempts},
          {"next_attempt", e.next_attempt},
          {"due", e.next_attempt <= now},
          {"last_error", e.last_error}};
}

// --- list ------------------------------------------------------------------------------

Result run_list(const Tool& tool, const ListOptions& o) {
  const spool::Layout layout = tool.open_spool();
  Result r;
  if (o.ids) {
    // For completion: one readdir, nothing parsed.
    r.data["ids"] = json::array();
    for (const auto& id : spool::queue_entry_ids(layout)) {
      r.data["ids"].push_back(id);
      r.text += id + "\n";
    }
    return r;
  }
  const std::int64_t now = unix_now();
  const spool::QueueListing listing = spool::list_queue_entries(layout);
  const bool tty = !tool.common().json && ::isatty(STDOUT_FILENO) == 1;
  r.data["entries"] = json::array();
  json unreadable = json::array();
  std::vector<std::vector<std::string>> rows{{"ID", "AGE", "SENDER", "RCPTS", "TRIES", "NEXT", "LAST ERROR"}};
  for (const auto& entry : listing.entries) {
    if (!entry.envelope) {
      unreadable.push_back({{"id", entry.id}, {"error", entry.error}});
      warn(tool, "queue entry " + entry.id + " is unreadable: " + entry.error);
      rows.push_back({entry.id, "-", "-", "-", "-", "-", "(unreadable envelope)"});
      continue;
    }
    const spool::QueueEnvelope& e = *entry.envelope;
    r.data["entries"].push_back(entry_json(e, entry.size, now));
    const std::string sender = sender_text(e.sender);
    rows.push_back({e.id, short_duration(now - e.created), tty ? cut(sender, list_sender_width) : sender,
                    std::to_string(e.recipients.size()), std::to_string(e.attempts), next_try_text(e.next_attempt, now),
                    e.last_error});
  }
  if (!unreadable.empty()) r.data["unreadable"] = std::move(unreadable);
  if (listing.corrupt > 0) {
    r.data["corrupt"] = listing.corrupt;
    if (!tool.common().json)
      warn(tool, std::to_string(listing.corrupt) + " quarantined " + (listing.corrupt == 1 ? "entry" : "entries") +
                     " in " + (layout.queue_dir() / "corrupt").string() + "/ (not queued)");
  }
  if (rows.size() == 1) {
    r.text = "queue is empty\n";
    return r;
  }
  if (tty) {
    // Keep one line per entry: the last error gets what the other columns leave.
    std::size_t used = 0;
    for (std::size_t col = 0; col + 1 < rows[0].size(); ++col) {
      std::size_t w = 0;
      for (const auto& row : rows) w = std::max(w, display_width(row[col]));
      used += w + 2;
    }
    const std::size_t columns = terminal_columns();
    const std::size_t room = std::max(list_error_min_width, columns > used ? columns - used : 0);
    for (auto& row : rows) row.back() = cut(row.back(), room);
  }
  // format_table pads every column but the last: an empty last error leaves blanks.
  for (const std::string& line : lines_of(format_table(rows)))
    r.text += line.substr(0, line.find_last_not_of(' ') + 1) + "\n";
  return r;
}

// --- show ------------------------------------------------------------------------------

Result run_show(const Tool& tool, const ShowOptions& o) {
  if (!spool::queue_id_ok(o.id)) throw spool::Error(spool::Errc::invalid_input, "not a queue id: " + shown_id(o.id));
  const spool::Layout layout = tool.open_spool();
  const std::int64_t now = unix_now();
  const spool::QueueEntryDetails d = spool::show_queue_entry(layout, o.id);
  const spool::QueueEnvelope& e = d.envelope;
  Result r;
  r.data = entry_json(e, d.size, now);
  r.data["from"] = d.from;
  r.data["subject"] = d.subject;
  r.data["headers"] = d.headers;
  r.data["headers_cut"] = d.headers_cut;

  std::vector<std::pair<std::string, std::string>> fields{
      {"id", e.id},
      {"created", utc(e.created) + " (" + short_duration(now - e.created) + " ago)"},
      {"sender", sender_text(e.sender)},
  };
  if (!e.auth.empty()) fields.emplace_back("auth", e.auth);
  fields.emplace_back("size", spool::format_size(d.size));
  fields.emplace_back("attempts", std::to_string(e.attempts));
  fields.emplace_back("next try",
                      e.next_attempt <= now ? "now" : next_try_text(e.next_attempt, now) + " (" + utc(e.next_attempt) + ")");
  if (!e.last_error.empty()) fields.emplace_back("last error", e.last_error);
  if (!d.from.empty()) fields.emplace_back("from", d.from);
  if (!d.subject.empty()) fields.emplace_back("subject", d.subject);
  fields.emplace_back("recipients", std::to_string(e.recipients.size()) + " left");
  r.text = format_fields(fields);
  std::vector<std::vector<std::string>> rows;
  for (const auto& rcpt : recipients_json(e)) {
    const std::string error = rcpt["last_error"];
    rows.push_back({rcpt["address"], error.empty() ? "pending" : "deferred: " + error});
  }
  for (const std::string& line : lines_of(format_table(rows))) r.text += "  " + line + "\n";
  r.text += "\nheader" + std::string(d.headers_cut ? " (cut at " + spool::format_size(spool::max_queue_show_headers) + ")" : "") +
            ":\n" + d.headers;
  if (!d.headers.empty() && d.headers.back() != '\n') r.text += "\n";
  return r;
}

// --- retry and delete --------------------------------------------------------------------

// The entries to act on: every queued one for --all, else the ids given, each checked.
std::vector<std::string> targets(const spool::Layout& layout, const ChangeOptions& o) {
  if (o.all) return spool::queue_entry_ids(layout);
  const auto queued = spool::queue_entry_ids(layout);
  const std::set<std::string> known(queued.begin(), queued.end());
  std::vector<std::string> out;
  for (const auto& id : o.ids)
    if (!known.count(id)) throw spool::Error(spool::Errc::no_account, "no such queue entry: " + id);
  for (const auto& id : o.ids)
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);  // named twice: once
  return out;
}

void check_operands(const ChangeOptions& o) {
  if (!o.all && o.ids.empty()) throw spool::Error(spool::Errc::usage, "name queue entries (IDs) or give --all");
  for (const auto& id : o.ids)
    if (!spool::queue_id_ok(id)) throw spool::Error(spool::Errc::invalid_input, "not a queue id: " + shown_id(id));
}

// Runs `act` on each target; failures are reported and collected, not fatal to the rest.
// With --all an entry that went away meanwhile (delivered) is no failure.
template <class Act>
void for_each_target(const Tool& tool, const std::vector<std::string>& ids, bool all, Result& r, Act&& act) {
  json failed = json::array();
  for (const auto& id : ids) {
    try {
      act(id);
    } catch (const spool::Error& e) {
      if (all && e.code() == spool::Errc::no_account) continue;
      report_error(tool, e.what());
      failed.push_back({{"id", id}, {"code", e.exit_code()}, {"message", e.what()}});
      if (r.exit_code == 0) {
        r.exit_code = e.exit_code();
        r.data["error"] = {{"code", e.exit_code()}, {"message", e.what()}};
      }
    }
  }
  if (!failed.empty()) r.data["failed"] = std::move(failed);
}

Result run_retry(const Tool& tool, const ChangeOptions& o) {
  check_operands(o);
  const auto wait = spool::parse_duration(o.wait);
  const spool::Layout layout = tool.open_spool();
  const auto ids = targets(layout, o);
  const auto wait_until = std::chrono::steady_clock::now() + wait;
  const std::int64_t now = unix_now();
  Result r;
  r.data["retried"] = json::array();
  if (ids.empty()) r.text = "queue is empty: nothing to retry\n";
  for_each_target(tool, ids, o.all, r, [&](const std::string& id) {
    spool::queue_retry(layout, id, now, wait_until);
    r.data["retried"].push_back(id);
    r.text += id + ": due now\n";
  });
  return r;
}

Result run_delete(const Tool& tool, const ChangeOptions& o) {
  check_operands(o);
  const auto wait = spool::parse_duration(o.wait);
  const bool privileged = ::geteuid() == 0;  // before open_spool() switches to the spool owner
  const spool::Layout layout = tool.open_spool();
  const auto ids = targets(layout, o);
  spool::QueueDeleteOptions d;
  d.bounce = o.bounce;
  // The DSN's Reporting-MTA is the daemon's host name; only read (and checked) when needed.
  if (o.bounce && !ids.empty()) d.reporting_mta = load_settings(layout, privileged).hostname;
  d.now = unix_now();
  d.wait_until = std::chrono::steady_clock::now() + wait;
  Result r;
  r.data["deleted"] = json::array();
  if (ids.empty()) r.text = "queue is empty: nothing to delete\n";
  for_each_target(tool, ids, o.all, r, [&](const std::string& id) {
    const std::string dsn = spool::queue_delete(layout, id, d);
    r.data["deleted"].push_back({{"id", id}, {"dsn", dsn.empty() ? json(nullptr) : json(dsn)}});
    r.text += id + ": deleted";
    if (!dsn.empty()) r.text += "; DSN to the sender queued as " + dsn;
    else if (o.bounce) r.text += "; no DSN (null sender)";
    r.text += "\n";
  });
  return r;
}

void add_change_operands(CLI::App* sub, const std::shared_ptr<ChangeOptions>& o) {
  CLI::Option* ids = sub->add_option("id", o->ids, "Queue ids (see: mh-serve queue list)")->type_name("ID");
  sub->add_flag("--all", o->all, "Every entry of the queue")->excludes(ids);
  sub->add_option("--wait", o->wait,
                  "How long to wait for an entry that is being delivered, then exit 75 (default: 5s)")
      ->type_name("DURATION");
}

} // namespace

void setup_queue(Tool& tool) {
  CLI::App& app = tool.app();
  CLI::App* queue = add_group(app, "queue", "Administer the outbound queue (works with or without a running daemon)");

  auto list_o = std::make_shared<ListOptions>();
  CLI::App* list = queue->add_subcommand("list", "List queued mail: id, age, sender, recipients left, attempts, next try, last error");
  list->add_flag("--ids", list_o->ids, "Print the queue ids only (for scripts and completion)");
  tool.on(list, [&tool, list_o] { return run_list(tool, *list_o); });

  auto show_o = std::make_shared<ShowOptions>();
  CLI::App* show = queue->add_subcommand("show", "Show one entry: envelope, state per recipient, message header");
  show->add_option("id", show_o->id, "Queue id")->type_name("ID")->required();
  tool.on(show, [&tool, show_o] { return run_show(tool, *show_o); });

  auto retry_o = std::make_shared<ChangeOptions>();
  CLI::App* retry = queue->add_subcommand("retry", "Make entries due now (a running daemon tries them within a second)");
  add_change_operands(retry, retry_o);
  tool.on(retry, [&tool, retry_o] { return run_retry(tool, *retry_o); });

  auto delete_o = std::make_shared<ChangeOptions>();
  CLI::App* del = queue->add_subcommand("delete", "Remove entries from the queue");
  add_change_operands(del, delete_o);
  del->add_flag("--bounce", delete_o->bounce, "First send the sender a DSN (bounce) for the recipients left");
  tool.on(del, [&tool, delete_o] { return run_delete(tool, *delete_o); });

  // The daemon's own options mean nothing to a queue command: refuse them (64).
  for (const char* name : {"--check-config", "--stdio", "--client-ip", "--threads", "--delivery-threads", "--shutdown-grace"})
    if (CLI::Option* opt = app.get_option_no_throw(name)) queue->excludes(opt);
  // CLI11 runs the app's own callback after its subcommands' by default, which would
  // choose the daemon over the queue command; run it first instead.
  app.immediate_callback();
}

} // namespace mh::serve
