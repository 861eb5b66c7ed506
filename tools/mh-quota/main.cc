// mh-quota — disk usage and the per-domain quota (SPEC §4): show, set, recalc, report.
// Thin front over libspool's quota.h; usage comes from maildirsize, so it is instant.
#include "commands.h"

int main(int argc, char** argv) {
  mh::Tool tool("mh-quota", "Show and manage the disk quota shared by each mail domain");
  mh::quota::setup_show(tool);
  mh::quota::setup_set(tool);
  mh::quota::setup_recalc(tool);
  mh::quota::setup_report(tool);
  return tool.run(argc, argv);
}
