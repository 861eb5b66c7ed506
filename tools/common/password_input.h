// password_input.h — how a tool obtains a password: never from argv (SPEC §3).
// --password-stdin reads one line; on a terminal the user is asked twice with echo
// off (via /dev/tty, so it works when stdin is redirected); --random-password makes one.
#pragma once

#include <spool/password.h>

namespace mh {

enum class PasswordSource { prompt, stdin_line, random };

// Reads one line from stdin (without the line ending); Error(usage) on empty input.
spool::Secret read_password_stdin();
// Prompts twice on the terminal; Error(usage) when there is no terminal or they differ.
spool::Secret prompt_new_password();
// Prompts once (for auth-test on a terminal).
spool::Secret prompt_password(const char* prompt);

spool::Secret obtain_new_password(PasswordSource source);

} // namespace mh
