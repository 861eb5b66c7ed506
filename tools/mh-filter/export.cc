// export.cc — mh-filter export ADDRESS --sieve: an account's filters as a Sieve script
// (RFC 5228) for a Sieve-capable server (Dovecot Pigeonhole), to take the filters along
// when a mailbox moves. Steps come in mailhost's evaluation order, each ending in `stop`
// (first match wins); steps that never run in mailhost (inert forward profiles) are
// exported as comments.
// Where Sieve cannot say what mailhost does, the script says so in a comment:
//   * Matching: mailhost decodes RFC 2047 and compares after ICU NFKC case folding, so
//     full-width "ＡＢＣ" matches "abc". Sieve's default comparator, i;ascii-casemap,
//     folds ASCII letters only; i;unicode-casemap (RFC 5051) would fold more but is not
//     NFKC and Pigeonhole 2.3 does not offer it, so the default is used everywhere.
//   * The spam verdict: Sieve sees only the header the scanner added (X-Spam-Flag: YES).
//   * Tagging spam (a Subject prefix) needs the editheader extension: not exported; the
//     tagged mail is kept and ends the evaluation, as in mailhost.
//   * Loops (Delivered-To already naming the account) are the server's business.
// Sieve extensions are required only when used: vacation (RFC 5230), copy (RFC 3894),
// reject (RFC 5429).
#include "commands.h"

#include <spool/error.h>

#include <algorithm>
#include <memory>

namespace mh::filter {
namespace {

// A Sieve quoted-string (RFC 5228 §2.4.2): '"' and '\' escaped; UTF-8 as is.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A :matches key for a mailhost glob: '*' and '?' mean the same in both; every other
// character is literal in mailhost, and '\' is Sieve's escape there (RFC 5228 §2.7.1).
std::string glob_key(std::string_view glob) {
  std::string out;
  for (char c : glob) {
    if (c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Comment text on one line.
std::string comment_text(std::string_view text) {
  std::string out;
  for (char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

std::string sieve_test(const spool::Condition& c) {
  using K = spool::Condition::Kind;
  using F = spool::Condition::Field;
  using O = spool::Condition::Op;
  if (c.kind == K::all) return "true";
  if (c.kind == K::size_over) return "size :over " + std::to_string(c.size);
  const std::string op = c.op == O::contains ? ":contains" : c.op == O::is ? ":is" : ":matches";
  const std::string key = quote(c.op == O::matches ? glob_key(c.text) : c.text);
  switch (c.field) {
  case F::subject: return "header " + op + " \"Subject\" " + key;
  case F::header: return "header " + op + " " + quote(c.header_name) + " " + key;
  case F::from:
  case F::to:
  case F::cc: {
    // mailhost matches the whole decoded field or any one address in it.
    const std::string name = c.field == F::from ? "\"From\"" : c.field == F::to ? "\"To\"" : "\"Cc\"";
    return "anyof(header " + op + " " + name + " " + key + ", address :all " + op + " " + name + " " + key + ")";
  }
  }
  return "false";
}

std::string redirects(const spool::ForwardProfile& p) {
  std::string out;
  for (const std::string& d : p.destinations) out += "  redirect " + std::string(p.keep ? ":copy " : "") + quote(d) + ";\n";
  return out;
}

} // namespace

std::string sieve_script(const spool::Address& address, const spool::FilterConfig& c) {
  std::vector<std::string> require;
  std::string body;

  body += "# 1. Spam filter";
  if (!c.spam.enabled) body += ": off.\n";
  else if (c.spam.action == spool::SpamFilter::Action::discard) {
    body += ": delete spam. Relies on the X-Spam-Flag header the spam scanner adds\n"
            "# (mailhost asks rspamd itself).\n"
            "if header :contains \"X-Spam-Flag\" \"YES\" {\n  discard;\n  stop;\n}\n";
  } else {
    body += ": tag spam with " + comment_text(quote(c.spam.tag)) +
            " and deliver it. The Subject prefix is not\n"
            "# exported (it needs the editheader extension); tagged mail is kept and ends the\n"
            "# evaluation, as in mailhost. Relies on the scanner's X-Spam-Flag header.\n"
            "if header :contains \"X-Spam-Flag\" \"YES\" {\n  keep;\n  stop;\n}\n";
  }

  body += "\n# 2. Rules";
  if (c.rules.empty()) body += ": none.\n";
  else body += ".\n";
  for (std::size_t i = 0; i < c.rules.size(); ++i) {
    const spool::FilterRule& rule = c.rules[i];
    body += "# rule " + std::to_string(i + 1) + ": " + comment_text(rule_text(rule)) + "\n";
    body += "if " + sieve_test(rule.condition) + " {\n";
    if (rule.action == spool::FilterRule::Action::discard) {
      body += "  discard;\n";
    } else {
      body += "  reject \"Message refused by the recipient's mail filter\";\n";
      if (std::find(require.begin(), require.end(), "reject") == require.end()) require.push_back("reject");
    }
    body += "  stop;\n}\n";
  }

  body += "\n# 3. Auto-reply";
  if (!c.autoreply.enabled) body += ": off.\n";
  else {
    require.push_back("vacation");
    body += ": on; the message is kept and answered. Forward profiles do not run\n"
            "# while it is on. Sieve's vacation keeps its own once-per-:days memory, and skips\n"
            "# list mail, automatic mail and mail not addressed to :addresses, as mailhost does.\n";
    if (c.autoreply.subject.empty()) body += "# No :subject: \"Auto: \" + the original subject, in both.\n";
    body += "vacation :days " + std::to_string(c.autoreply.days) + "\n";
    if (!c.autoreply.subject.empty()) body += "  :subject " + quote(c.autoreply.subject) + "\n";
    body += "  :addresses [" + quote(address.str()) + "]\n  " + quote(c.autoreply.message) + ";\n";
    body += "stop;\n";
  }

  body += "\n# 4. Forward profiles";
  if (c.forwards.empty()) body += ": none.\n";
  else body += ". mailhost also stops forwarding a message that already went through\n"
               "# this account (Delivered-To); Sieve leaves loops to the server.\n";
  for (std::size_t i = 0; i < c.forwards.size(); ++i) {
    const spool::ForwardProfile& p = c.forwards[i];
    const std::string head = "# forward profile " + std::to_string(i + 1) + ": " + comment_text(forward_text(p));
    if (auto why = forward_inert_reason(c, i)) {
      // Inert in mailhost: a comment, so the script does what mailhost does.
      std::string block = "if " + sieve_test(p.condition) + " {\n" + redirects(p) + "  stop;\n}\n";
      body += head + "\n# Inert (" + *why + "); it would read:\n";
      for (std::size_t at = 0; at < block.size();) {
        const std::size_t nl = block.find('\n', at);
        body += "#   " + block.substr(at, nl - at) + "\n";
        at = nl + 1;
      }
      continue;
    }
    body += head + "\n";
    body += "if " + sieve_test(p.condition) + " {\n" + redirects(p) + "  stop;\n}\n";
    if (p.keep && std::find(require.begin(), require.end(), "copy") == require.end()) require.push_back("copy");
  }

  std::string head = "# Sieve script (RFC 5228) exported by mh-filter from the filters of " + address.str() +
                     ".\n"
                     "# Steps in mailhost's order (spam filter, rules, auto-reply, forward profiles); the\n"
                     "# first that matches ends the evaluation (stop).\n"
                     "# Matching differs in one point: mailhost compares after Unicode NFKC case folding\n"
                     "# (full-width ＡＢＣ matches abc); Sieve's default comparator (i;ascii-casemap)\n"
                     "# folds ASCII letters only, so that equivalence is not exported. Both decode\n"
                     "# RFC 2047 headers, and '*' and '?' are wildcards of :matches in both.\n";
  if (!require.empty()) {
    std::sort(require.begin(), require.end());
    head += "require [";
    for (std::size_t i = 0; i < require.size(); ++i) head += (i ? ", " : "") + quote(require[i]);
    head += "];\n";
  }
  return head + "\n" + body;
}

namespace {

struct ExportOptions {
  std::string address;
  bool sieve = false;
};

Result run_export(const Tool& tool, const ExportOptions& o) {
  if (!o.sieve) throw spool::Error(spool::Errc::usage, "give the format: --sieve (the only one so far)");
  spool::Address a = spool::Address::parse(o.address);
  spool::Layout layout = tool.open_spool();
  const std::string script = sieve_script(a, spool::read_filters(layout, a));
  Result r;
  r.data = {{"address", a.str()}, {"format", "sieve"}, {"script", script}};
  r.text = script;
  return r;
}

} // namespace

void setup_export(Tool& tool) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* exp = tool.app().add_subcommand("export", "Print the account's filters as a Sieve script (RFC 5228)");
  exp->add_option("address", o->address, "name@domain")->required();
  exp->add_flag("--sieve", o->sieve, "Sieve format (required)");
  tool.on(exp, [&tool, o] { return run_export(tool, *o); });
}

} // namespace mh::filter
