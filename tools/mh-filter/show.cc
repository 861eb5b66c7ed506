// show.cc — mh-filter show ADDRESS: an account's filters in evaluation order (SPEC §6:
// spam, rules, auto-reply, forward profiles), numbered as `del` takes them, with the
// profiles that can never run marked inert and why.
#include "commands.h"

#include <spool/config.h>

#include <memory>

namespace mh::filter {
namespace {

struct ShowOptions {
  std::string address;
};

// Text from filters.yaml made safe for a terminal (a hand-edited file may hold
// anything): control characters other than tab are shown as U+FFFD.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) out += "\uFFFD";
    else out += c;
  }
  return out;
}

// Each line of `text` behind `prefix`.
std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out += prefix + printable(std::string_view(text).substr(start, nl - start)) + "\n";
    start = nl + 1;
  }
  return out;
}

std::string show_text(const spool::Address& a, const spool::FilterConfig& c, bool rspamd_configured) {
  std::string t = "filters of " + a.str() + " (evaluation order; the first step that matches ends it)\n";
  t += "1. spam filter: ";
  if (!c.spam.enabled) t += "off\n";
  else {
    t += c.spam.action == spool::SpamFilter::Action::discard
             ? "on: delete spam"
             : "on: tag spam (subject prefix \"" + printable(c.spam.tag) + "\", X-Spam-Flag: YES) and deliver it";
    t += rspamd_configured ? "\n" : " (inert: spam.rspamd is not set in mailhost.yaml)\n";
  }
  t += "2. rules:";
  if (c.rules.empty()) t += " none\n";
  else {
    t += "\n";
    for (std::size_t i = 0; i < c.rules.size(); ++i) t += "   " + std::to_string(i + 1) + ". " + rule_text(c.rules[i]) + "\n";
  }
  t += "3. auto-reply: ";
  if (!c.autoreply.enabled) t += "off\n";
  else {
    t += "on: deliver and answer each sender at most once per " + std::to_string(c.autoreply.days) +
         (c.autoreply.days == 1 ? " day\n" : " days\n");
    t += "   subject: " + (c.autoreply.subject.empty() ? "Auto: <the original subject>" : printable(c.autoreply.subject)) + "\n";
    t += "   message:\n" + indent(c.autoreply.message, "     | ");
  }
  t += "4. forward profiles:";
  if (c.forwards.empty()) t += " none\n";
  else {
    t += "\n";
    for (std::size_t i = 0; i < c.forwards.size(); ++i) {
      t += "   " + std::to_string(i + 1) + ". " + forward_text(c.forwards[i]);
      if (auto why = forward_inert_reason(c, i)) t += " (inert: " + *why + ")";
      t += "\n";
    }
  }
  return t;
}

Result run_show(const Tool& tool, const ShowOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  spool::FilterConfig c = spool::read_filters(layout, a);
  const bool rspamd = !spool::load_server_config(layout.server_config()).spam_rspamd.empty();
  Result r;
  r.data = filters_json(a, c);
  // Enabled but without a scanner to ask, the spam step never fires (spam_check.h).
  r.data["spam"]["inert"] = c.spam.enabled && !rspamd;
  r.text = show_text(a, c, rspamd);
  return r;
}

} // namespace

void setup_show(Tool& tool) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* show = tool.app().add_subcommand("show", "Show an account's filters in evaluation order, numbered");
  show->add_option("address", o->address, "name@domain")->required();
  tool.on(show, [&tool, o] { return run_show(tool, *o); });
}

} // namespace mh::filter
