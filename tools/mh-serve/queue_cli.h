// queue_cli.h — `mh-serve queue list|show|retry|delete` (SPEC §8 "Queue administration",
// mh-serve(8) QUEUE ADMINISTRATION): the command line over spool/queue_admin.h. Acts on
// the queue's files only, so it works whether or not a daemon runs on the spool.
#pragma once

#include "common/cli.h"

namespace mh::serve {

// Registers the `queue` command group on mh-serve's app. Call it last, after the
// daemon's own options and action (Tool::on on the app) are registered: it makes the
// app's action run before the subcommands' (so a queue command's action is the one
// chosen; CLI11 otherwise runs the app's callback last) and makes the daemon-only
// options (--check-config, --stdio, …) an error with `queue`.
void setup_queue(Tool& tool);

} // namespace mh::serve
