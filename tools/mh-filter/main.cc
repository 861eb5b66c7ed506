// mh-filter — an account's mail filters (SPEC §6): spam filter, delete/bounce rules,
// auto-reply and forward profiles; `test` shows what they do to a message and `export`
// writes them as Sieve. Thin front over libspool's filters.h and filter_match.h.
#include "commands.h"

int main(int argc, char** argv) {
  mh::Tool tool("mh-filter", "Manage the mail filters of an account: spam, rules, auto-reply, forwarding");
  mh::filter::setup_show(tool);
  mh::filter::setup_forward(tool);
  mh::filter::setup_rule(tool);
  mh::filter::setup_autoreply(tool);
  mh::filter::setup_spam(tool);
  mh::filter::setup_test(tool);
  mh::filter::setup_export(tool);
  return tool.run(argc, argv);
}
