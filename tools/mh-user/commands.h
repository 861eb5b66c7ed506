// commands.h — mh-user's subcommands; one setup_* per file, each registering its
// CLI11 subcommand(s) on the tool and the function that runs them.
#pragma once

#include "common/cli.h"

#include <spool/config.h>
#include <spool/names.h>

namespace mh::user {

void setup_domain(Tool& tool);
void setup_add(Tool& tool);
void setup_del(Tool& tool);
void setup_passwd(Tool& tool);
void setup_list(Tool& tool);
void setup_show(Tool& tool);
void setup_suspend_resume(Tool& tool);
void setup_auth_test(Tool& tool);

// JSON fields shared by list and show.
nlohmann::json account_json(const spool::Address& address, const spool::AccountConfig& config);

} // namespace mh::user
