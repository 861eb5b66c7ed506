// mh-user — provisioning of domains and accounts (SPEC §3). Thin front over libspool.
#include "commands.h"

int main(int argc, char** argv) {
  mh::Tool tool("mh-user", "Manage mail domains and accounts in the mailhost spool");
  mh::user::setup_domain(tool);
  mh::user::setup_add(tool);
  mh::user::setup_del(tool);
  mh::user::setup_passwd(tool);
  mh::user::setup_list(tool);
  mh::user::setup_show(tool);
  mh::user::setup_suspend_resume(tool);
  mh::user::setup_auth_test(tool);
  return tool.run(argc, argv);
}
