// autoreply_spam.cc — mh-filter autoreply set|off and spam set|off: the two on/off steps
// of an account's filters. The reply text is read from a file or stdin (bounded by
// spool::max_autoreply_message) before the spool is opened, as the invoking user, and
// must be UTF-8 text; the spam setting is saved even when no scanner is configured
// (it is a preference), with a warning that it does nothing until spam.rspamd is set.
#include "commands.h"

#include <spool/config.h>
#include <spool/error.h>

#include <charconv>
#include <fstream>
#include <iostream>
#include <memory>

namespace mh::filter {
namespace {

struct StepOptions {
  std::string address;
  std::string message_file;
  std::string subject;
  std::string days;
  std::string action;
  std::string tag;
  CLI::Option* tag_option = nullptr;   // given or not ('--tag ""' is an error, not the default)
};

// The whole of `in`, failing once it exceeds `limit` bytes (never reads more than limit + 1).
std::string read_bounded(std::istream& in, std::size_t limit, const std::string& name) {
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > limit)
      throw spool::Error(spool::Errc::invalid_input, "the message in " + name + " is larger than " +
                                                         std::to_string(limit) + " bytes, the most allowed");
  }
  if (in.bad()) throw spool::Error(spool::Errc::other, "cannot read " + name);
  return text;
}

// One line of text: UTF-8, no control characters, 1..limit bytes.
void check_line(const std::string& text, const std::string& what, std::size_t limit) {
  if (text.empty()) throw spool::Error(spool::Errc::invalid_input, what + " is empty");
  if (text.size() > limit)
    throw spool::Error(spool::Errc::invalid_input,
                       what + " is longer than " + std::to_string(limit) + " bytes (" + std::to_string(text.size()) + ")");
  if (!utf8_ok(text)) throw spool::Error(spool::Errc::invalid_input, what + " is not valid UTF-8");
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      throw spool::Error(spool::Errc::invalid_input, what + " contains a control character");
}

// The reply's text: UTF-8, line ends made LF, no control characters but tab and LF.
std::string read_message(const std::string& file) {
  const std::string name = file == "-" ? "standard input" : file;
  std::string text;
  if (file == "-") {
    text = read_bounded(std::cin, spool::max_autoreply_message, name);
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw spool::Error(spool::Errc::invalid_input, "cannot open message file " + file);
    text = read_bounded(in, spool::max_autoreply_message, name);
  }
  if (!utf8_ok(text))
    throw spool::Error(spool::Errc::invalid_input, "the message in " + name + " is not valid UTF-8 (convert it first, "
                                                   "e.g. iconv -f SHIFT_JIS -t UTF-8)");
  std::string lf;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7F)
      throw spool::Error(spool::Errc::invalid_input, "the message in " + name + " contains a control character "
                                                     "(byte " + std::to_string(i + 1) + ")");
    lf += c;
  }
  if (lf.find_first_not_of(" \t\n") == std::string::npos)
    throw spool::Error(spool::Errc::invalid_input, "the message in " + name + " is empty");
  if (lf.back() != '\n') lf += '\n';
  return lf;
}

std::uint32_t parse_days(const std::string& text) {
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n < 1 || n > spool::max_autoreply_days)
    throw spool::Error(spool::Errc::invalid_input, "invalid --days '" + text + "': expected a number of days from 1 to " +
                                                       std::to_string(spool::max_autoreply_days));
  return n;
}

Result run_autoreply_set(const Tool& tool, const StepOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::AutoReply reply;
  reply.enabled = true;
  if (!o.days.empty()) reply.days = parse_days(o.days);
  if (!o.subject.empty()) check_line(o.subject, "the subject", spool::max_autoreply_subject);
  reply.subject = o.subject;
  reply.message = read_message(o.message_file);   // as the invoking user, before switching to the spool owner
  spool::Layout layout = tool.open_spool();
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    c.autoreply = reply;
    after = c;
  });
  Result r;
  r.data = {{"address", a.str()}, {"autoreply", autoreply_json(after.autoreply)}, {"warnings", nlohmann::json::array()}};
  r.text = "auto-reply of " + a.str() + " on: each sender is answered at most once per " + std::to_string(reply.days) +
           (reply.days == 1 ? " day\n" : " days\n");
  if (!after.forwards.empty())
    warn(r, std::to_string(after.forwards.size()) +
                (after.forwards.size() == 1 ? " forward profile does" : " forward profiles do") +
                " not run while auto-reply is on");
  return r;
}

Result run_autoreply_off(const Tool& tool, const StepOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  bool was_on = false;
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    was_on = c.autoreply.enabled;
    c.autoreply = spool::AutoReply{};
    after = c;
  });
  Result r;
  r.data = {{"address", a.str()}, {"autoreply", autoreply_json(after.autoreply)}, {"changed", was_on}};
  r.text = was_on ? "auto-reply of " + a.str() + " off\n" : "auto-reply of " + a.str() + " was already off\n";
  if (was_on && !after.forwards.empty())
    r.text += std::to_string(after.forwards.size()) +
              (after.forwards.size() == 1 ? " forward profile runs" : " forward profiles run") + " again\n";
  return r;
}

Result run_spam_set(const Tool& tool, const StepOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::SpamFilter spam;
  spam.enabled = true;
  spam.action = o.action == "delete" ? spool::SpamFilter::Action::discard : spool::SpamFilter::Action::tag;
  if (o.tag_option->count() > 0) {
    if (spam.action != spool::SpamFilter::Action::tag)
      throw spool::Error(spool::Errc::usage, "--tag applies only to --action tag (see mh-filter spam set --help)");
    check_line(o.tag, "the tag", spool::max_spam_tag);
    spam.tag = o.tag;
  }
  spool::Layout layout = tool.open_spool();
  // Read before the change, so a malformed mailhost.yaml (exit 78) changes nothing.
  const bool rspamd = !spool::load_server_config(layout.server_config()).spam_rspamd.empty();
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    c.spam = spam;
    after = c;
  });
  Result r;
  r.data = {{"address", a.str()}, {"spam", spam_json(after.spam)}, {"warnings", nlohmann::json::array()}};
  r.data["spam"]["inert"] = !rspamd;
  r.text = "spam filter of " + a.str() + " on: " +
           (spam.action == spool::SpamFilter::Action::tag ? "tag spam with \"" + spam.tag + "\" and deliver it\n"
                                                           : "delete spam\n");
  if (!rspamd)
    warn(r, "spam filters are inert until spam.rspamd is configured in " + layout.server_config().string() +
                " (the setting is saved)");
  return r;
}

Result run_spam_off(const Tool& tool, const StepOptions& o) {
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  bool was_on = false;
  spool::FilterConfig after;
  spool::update_filters(layout, a, [&](spool::FilterConfig& c) {
    was_on = c.spam.enabled;
    c.spam = spool::SpamFilter{};
    after = c;
  });
  Result r;
  r.data = {{"address", a.str()}, {"spam", spam_json(after.spam)}, {"changed", was_on}};
  r.text = was_on ? "spam filter of " + a.str() + " off\n" : "spam filter of " + a.str() + " was already off\n";
  return r;
}

} // namespace

void setup_autoreply(Tool& tool) {
  CLI::App* group = add_group(tool.app(), "autoreply", "Turn the auto-reply (vacation message) on or off");
  auto o = std::make_shared<StepOptions>();
  CLI::App* set = group->add_subcommand("set", "Turn auto-reply on with this message (forwards pause meanwhile)");
  set->add_option("address", o->address, "name@domain")->required();
  set->add_option("--message-file", o->message_file, "UTF-8 text of the reply; - reads standard input")
      ->type_name("FILE")->required();
  set->add_option("--subject", o->subject, "Subject of the reply (default: \"Auto: \" + the original subject)")
      ->type_name("TEXT");
  set->add_option("--days", o->days, "Answer each sender at most once per N days (1-365, default 7)")->type_name("N");
  tool.on(set, [&tool, o] { return run_autoreply_set(tool, *o); });

  CLI::App* off = group->add_subcommand("off", "Turn auto-reply off (forward profiles run again)");
  off->add_option("address", o->address, "name@domain")->required();
  tool.on(off, [&tool, o] { return run_autoreply_off(tool, *o); });
}

void setup_spam(Tool& tool) {
  CLI::App* group = add_group(tool.app(), "spam", "Turn the spam filter on or off (needs spam.rspamd)");
  auto o = std::make_shared<StepOptions>();
  CLI::App* set = group->add_subcommand("set", "Turn the spam filter on: tag or delete what rspamd calls spam");
  set->add_option("address", o->address, "name@domain")->required();
  set->add_option("--action", o->action, "tag (subject prefix + X-Spam-Flag: YES, delivered) or delete")
      ->type_name("tag|delete")->required()->check(CLI::IsMember({"tag", "delete"}));
  o->tag_option = set->add_option("--tag", o->tag, "Subject prefix for --action tag (default \"[SPAM]\")")->type_name("TEXT");
  tool.on(set, [&tool, o] { return run_spam_set(tool, *o); });

  CLI::App* off = group->add_subcommand("off", "Turn the spam filter off");
  off->add_option("address", o->address, "name@domain")->required();
  tool.on(off, [&tool, o] { return run_spam_off(tool, *o); });
}

} // namespace mh::filter
