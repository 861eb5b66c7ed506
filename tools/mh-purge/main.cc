// mh-purge — bulk and cron removal of received mail (SPEC §5). One command, no verbs:
// targets + selectors; see purge.h for the parts and mh-purge(8) for the contract.
#include "purge.h"

int main(int argc, char** argv) {
  mh::Tool tool("mh-purge", "Remove received mail from mailboxes, by age, size, UIDL or all of it");
  mh::purge::setup_purge(tool);
  return tool.run(argc, argv);
}
