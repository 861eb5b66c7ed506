"""Bash completion of mh-user (completions/mh-user.bash), driven through a real bash in two
ways: CompletionTest sets COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT as readline does (the
line cut at blanks and at COMP_WORDBREAKS, '@' ':' '=' included) and compares COMPREPLY
exactly; InteractiveTest types lines and Tab into an interactive bash on a pty and reads
the edited line back, so what bash really does with the reply is checked, and checks the
cutting CompletionTest imitates against the words the real readline hands over."""

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
import unittest

import mhtest

COMPLETION = os.path.join(mhtest.SOURCE, "completions", "mh-user.bash")
DEFAULT_WORDBREAKS = " \t\n\"'@><=;|&(:"

# Sources the completion file, then calls the function like bash's programmable
# completion does ($1 = command, $2 = text readline replaces, $3 = word before it).
# The words arrive as positional parameters after the line and its readline text, so
# nothing needs shell quoting. It is sourced inside a function, as bash-completion's
# on-demand loader does, so definitions that would be local to that function are caught.
DRIVER = r"""
load() { source "$COMPLETION"; }
load || exit 90
[[ $(complete -p mh-user) == "complete -F _mh_user mh-user" ]] || exit 92
PATH="$TOOL_DIR:$PATH"
# In this order: turning hostcomplete on or off adds or removes '@' in COMP_WORDBREAKS.
shopt "$HOSTCOMPLETE" hostcomplete
COMP_WORDBREAKS=$WORDBREAKS
COMP_LINE=$1
COMP_POINT=${#COMP_LINE}
text=$2
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
prev=''
(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD - 1]}
_mh_user mh-user "$text" "$prev" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
"""


def readline_words(line, wordbreaks=DEFAULT_WORDBREAKS, hostcomplete=True):
    """(COMP_WORDS, text) for `line` with the cursor at its end, as bash 5 makes them:
    blanks part words; a run of other COMP_WORDBREAKS characters is a word of its own;
    quotes and backslashes protect what they cover. `text` is what readline replaces:
    the end after the last break, with an '@' break kept while hostcomplete is on
    (readline's "special prefix")."""
    breaks = {c for c in wordbreaks if c not in " \t\n\"'"}
    words, current, kind, text_start = [], "", None, 0  # kind: None, "word", "break"
    i = 0
    while i < len(line):
        c = line[i]
        if c in " \t\n":
            if kind:
                words.append(current)
            current, kind, text_start = "", None, i + 1
            i += 1
            continue
        is_break = c in breaks
        if kind and (kind == "break") != is_break:
            words.append(current)
            current = ""
        kind = "break" if is_break else "word"
        if is_break:
            text_start = i if c == "@" and hostcomplete else i + 1
            current += c
            i += 1
        elif c == "\\":
            current += line[i:i + 2]
            i += 2
        elif c in "\"'":
            close = line.find(c, i + 1)
            close = len(line) - 1 if close < 0 else close
            current += line[i:close + 1]
            i = close + 1
        else:
            current += c
            i += 1
    words.append(current if kind else "")
    return words, line[text_start:]


COMMANDS = ["domain", "add", "del", "passwd", "list", "show", "suspend", "resume", "auth-test"]
COMMON_LONG = ["--spool", "--json", "--quiet", "--help"]


class CompletionTest(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        # A second spool that MH_SPOOL points at unless a test says otherwise, so a
        # test of --spool fails if the completion reads the environment instead.
        self.decoy = os.path.join(self.tmp, "decoy")
        os.mkdir(self.decoy)
        self.user("--spool", self.decoy, "domain", "add", "decoy.example")

    def complete(self, *words, mh_spool=None, path_has_tool=True, wordbreaks=DEFAULT_WORDBREAKS,
                 hostcomplete=True):
        """COMPREPLY for the command line `mh-user words...` (the last word is the one
        being completed; pass "" to complete a new word), cut into COMP_WORDS as bash would."""
        env = {k: v for k, v in os.environ.items() if k != "MH_SPOOL"}
        env["MH_SPOOL"] = mh_spool if mh_spool is not None else self.decoy
        env["COMPLETION"] = COMPLETION
        env["WORDBREAKS"] = wordbreaks
        env["HOSTCOMPLETE"] = "-s" if hostcomplete else "-u"
        tool_dir = os.path.dirname(mhtest.tool_path("mh-user"))
        env["TOOL_DIR"] = tool_dir if path_has_tool else self.tmp
        if not path_has_tool:
            env["PATH"] = "/usr/bin:/bin"
        line = " ".join(["mh-user", *words])
        comp_words, text = readline_words(line, wordbreaks, hostcomplete)
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER, "bash", line, text, *comp_words],
                              capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "completion must not print errors")
        return [line for line in proc.stdout.split("\n") if line]

    def make_spool(self):
        """The private spool: three domains (one IDN) and three accounts."""
        for d in ["example.jp", "shop.jp", "例え.jp"]:
            self.add_domain(d)
        for a in ["taro@example.jp", "hanako@example.jp", "info@shop.jp"]:
            self.add_account(a)

    # --- commands and options ---

    def test_top_level_commands(self):
        self.assertEqual(self.complete(""), COMMANDS)
        self.assertEqual(self.complete("d"), ["domain", "del"])
        self.assertEqual(self.complete("s"), ["show", "suspend"])

    def test_commands_after_common_options(self):
        self.assertEqual(self.complete("--json", "--spool", self.spool, "a"), ["add", "auth-test"])

    def test_domain_subcommands(self):
        self.assertEqual(self.complete("domain", ""), ["add", "del", "list", "show"])
        self.assertEqual(self.complete("domain", "l"), ["list"])

    def test_options_of_add(self):
        self.assertEqual(self.complete("add", "--"),
                         ["--password-stdin", "--random-password", "--name", "--quota", "--exist-ok"]
                         + COMMON_LONG)

    def test_options_per_command(self):
        self.assertEqual(self.complete("domain", "add", "--"), ["--quota", "--exist-ok"] + COMMON_LONG)
        self.assertEqual(self.complete("domain", "del", "--"), ["--force"] + COMMON_LONG)
        self.assertEqual(self.complete("domain", "list", "--n"), ["--names"])
        self.assertEqual(self.complete("del", "--f"), ["--force"])
        self.assertEqual(self.complete("passwd", "--"), ["--password-stdin", "--random-password"] + COMMON_LONG)
        self.assertEqual(self.complete("suspend", "--"), ["--sending", "--reason"] + COMMON_LONG)
        self.assertEqual(self.complete("resume", "--"), ["--sending"] + COMMON_LONG)
        self.assertEqual(self.complete("show", "--"), COMMON_LONG)
        self.assertEqual(self.complete("--"), ["--version"] + COMMON_LONG)
        self.assertEqual(self.complete("-"), ["--version"] + COMMON_LONG + ["-q", "-h"])

    def test_no_options_after_double_dash(self):
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "show", "--", "-"), [])
        self.assertEqual(self.complete("--spool", self.spool, "show", "--", "t"), ["taro@example.jp"])

    def test_option_values_are_not_operands(self):
        self.make_spool()
        # The --reason value is not completed, and does not count as the address.
        self.assertEqual(self.complete("--spool", self.spool, "suspend", "--sending", "--reason", ""), [])
        self.assertEqual(self.complete("--spool", self.spool, "suspend", "--reason", "spam", "h"),
                         ["hanako@example.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "add", "--quota", ""), [])

    def test_spool_option_completes_directories(self):
        os.mkdir(os.path.join(self.tmp, "spool-two"))
        self.assertEqual(sorted(self.complete("--spool", os.path.join(self.tmp, "spo"))),
                         [os.path.join(self.tmp, "spool"), os.path.join(self.tmp, "spool-two")])

    def test_every_command_and_option_of_the_tool_is_completed(self):
        """Guards against drift: what `mh-user ... --help` lists is what completes."""
        def tool_help(*path):
            r = self.user(*path, "--help")
            self.assertExit(r, 0)
            section, options, commands = None, set(), []
            for line in r.out.splitlines():
                if line and not line.startswith(" "):
                    section = line.rstrip(":")
                elif section == "Options" and line.startswith("  -"):
                    options |= {o for o in line.split()[0].split(",") if o.startswith("--")}
                elif section == "Subcommands" and line.strip():
                    commands.append(line.split()[0])
            return options - {"--help"}, commands

        options, commands = tool_help()
        self.assertEqual(set(self.complete("--")), options | {"--help"})
        self.assertEqual(self.complete(""), commands)
        _, domain_commands = tool_help("domain")
        self.assertEqual(self.complete("domain", ""), domain_commands)
        paths = [[c] for c in commands if c != "domain"] + [["domain", c] for c in domain_commands]
        for path in paths:
            options, _ = tool_help(*path)
            completed = set(self.complete(*path, "--")) - set(COMMON_LONG)
            self.assertEqual(completed, options, " ".join(path))

    # --- names from the spool ---

    def test_domains_from_spool_option(self):
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "domain", "show", ""),
                         ["example.jp", "shop.jp", "xn--r8jz45g.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "domain", "del", "s"), ["shop.jp"])
        # --spool after the command counts too (common options go anywhere).
        self.assertEqual(self.complete("list", "--spool", self.spool, "x"), ["xn--r8jz45g.jp"])

    def test_domains_from_spool_option_with_equals(self):
        # Bash cuts "--spool=DIR" into "--spool" "=" "DIR" (and at ':' in the path).
        self.make_spool()
        self.assertEqual(self.complete("--spool=" + self.spool, "list", "e"), ["example.jp"])
        self.assertEqual(self.complete("domain", "show", "--spool=" + self.spool, "s"), ["shop.jp"])
        colon_spool = os.path.join(self.tmp, "a:b")
        os.mkdir(colon_spool)
        self.user("--spool", colon_spool, "domain", "add", "colon.example")
        self.assertEqual(self.complete("--spool=" + colon_spool, "list", ""), ["colon.example"])
        self.assertEqual(self.complete("--spool", colon_spool, "list", ""), ["colon.example"])

    def test_quoted_spool_path(self):
        spaced = os.path.join(self.tmp, "my spool")
        os.mkdir(spaced)
        self.user("--spool", spaced, "domain", "add", "spaced.example")
        self.assertEqual(self.complete("--spool", f"'{spaced}'", "list", ""), ["spaced.example"])
        self.assertEqual(self.complete("--spool", f'"{spaced}"', "list", ""), ["spaced.example"])
        self.assertEqual(self.complete("--spool", spaced.replace(" ", "\\ "), "list", ""), ["spaced.example"])

    def test_spool_value_after_equals_completes_directories(self):
        # Bash replaces only the text after '=': the replies are bare paths.
        os.mkdir(os.path.join(self.tmp, "spool-two"))
        self.assertEqual(sorted(self.complete("--spool=" + os.path.join(self.tmp, "spo"))),
                         [os.path.join(self.tmp, "spool"), os.path.join(self.tmp, "spool-two")])
        self.assertEqual(self.complete("--spool="), self.complete("--spool", ""))
        # A spool option value is never an option or a command.
        self.assertEqual(self.complete("--spool=" + os.path.join(self.tmp, "nothing-here")), [])

    def test_domains_from_environment(self):
        self.make_spool()
        self.assertEqual(self.complete("list", "", mh_spool=self.spool),
                         ["example.jp", "shop.jp", "xn--r8jz45g.jp"])
        self.assertEqual(self.complete("domain", "show", "", mh_spool=self.spool),
                         ["example.jp", "shop.jp", "xn--r8jz45g.jp"])
        # And the decoy spool is what MH_SPOOL names by default in these tests.
        self.assertEqual(self.complete("domain", "show", ""), ["decoy.example"])

    def test_addresses_for_show(self):
        self.make_spool()
        all_accounts = ["hanako@example.jp", "taro@example.jp", "info@shop.jp"]
        self.assertEqual(self.complete("--spool", self.spool, "show", ""), all_accounts)
        self.assertEqual(self.complete("show", "", mh_spool=self.spool), all_accounts)
        self.assertEqual(self.complete("--spool", self.spool, "show", "t"), ["taro@example.jp"])
        for cmd in ["del", "passwd", "suspend", "resume", "auth-test"]:
            self.assertEqual(self.complete("--spool", self.spool, cmd, "i"), ["info@shop.jp"], cmd)

    def test_address_after_the_at_sign(self):
        # Bash cuts "taro@ex" into taro @ ex, and readline replaces "@ex" ('@' is a
        # readline special prefix): the reply starts at the '@'.
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@ex"), ["@example.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@"), ["@example.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "suspend", "info@"), ["@shop.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@shop"), [])
        # An address is one operand even though bash made three words of it.
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@example.jp", ""), [])
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@example.jp", "--"), COMMON_LONG)

    def test_address_without_at_in_wordbreaks(self):
        # A user may drop '@' from COMP_WORDBREAKS (`shopt -u hostcomplete` does): then
        # the whole address is replaced.
        self.make_spool()
        breaks = DEFAULT_WORDBREAKS.replace("@", "")
        for hostcomplete in [True, False]:
            self.assertEqual(self.complete("--spool", self.spool, "show", "taro@ex", wordbreaks=breaks,
                                           hostcomplete=hostcomplete), ["taro@example.jp"])
            self.assertEqual(self.complete("--spool", self.spool, "add", "user@", wordbreaks=breaks,
                                           hostcomplete=hostcomplete),
                             ["user@example.jp", "user@shop.jp", "user@xn--r8jz45g.jp"])

    def test_address_when_at_is_a_plain_word_break(self):
        # hostcomplete off but '@' put back in COMP_WORDBREAKS: readline replaces "ex".
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@ex", hostcomplete=False),
                         ["example.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "add", "user@", hostcomplete=False),
                         ["example.jp", "shop.jp", "xn--r8jz45g.jp"])

    def test_only_first_operand_is_completed(self):
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@example.jp", ""), [])
        self.assertEqual(self.complete("--spool", self.spool, "domain", "show", "shop.jp", ""), [])

    def test_add_completes_the_domain_part(self):
        self.make_spool()
        # Replies start at the '@': readline replaces from there (see above).
        self.assertEqual(self.complete("--spool", self.spool, "add", "user@ex"), ["@example.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "add", "user@"),
                         ["@example.jp", "@shop.jp", "@xn--r8jz45g.jp"])
        self.assertEqual(self.complete("add", "sales@s", mh_spool=self.spool), ["@shop.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "add", "user@example.jp", "--n"), ["--name"])
        # The account name is new, so nothing is offered before the '@'.
        self.assertEqual(self.complete("--spool", self.spool, "add", "us"), [])

    def test_missing_spool_or_tool_is_silent(self):
        self.make_spool()
        missing = os.path.join(self.tmp, "no-such-spool")
        self.assertEqual(self.complete("--spool", missing, "show", ""), [])
        self.assertEqual(self.complete("--spool", missing, "domain", "show", ""), [])
        self.assertFalse(os.path.exists(missing), "completion must not create a spool")
        self.assertEqual(self.complete("--spool", self.spool, "show", "", path_has_tool=False), [])
        self.assertEqual(self.complete("", path_has_tool=False), COMMANDS)



# Startup file of the interactive bash: the completion as a user's shell loads it, a
# recorder around it (same `complete` options) that saves what bash handed over and
# what came back, and Ctrl-X printing the edited line between << >> and clearing it.
INTERACTIVE_RC = r"""
unset HISTFILE
PS1='$ '
source "$COMPLETION"
_mh_user_recorded() {
  _mh_user "$@"
  local status=$?
  printf '%s\0' "$COMP_CWORD" "$2" "${#COMP_WORDS[@]}" "${COMP_WORDS[@]}" "${COMPREPLY[@]}" >"$RECORD"
  return $status
}
eval "$(complete -p mh-user | sed 's/ -F _mh_user / -F _mh_user_recorded /')"
bind -x '"\C-x": printf "<<%s>>\n" "$READLINE_LINE"; READLINE_LINE=; READLINE_POINT=0'
# After `bind`: readline's start-up puts '@' back while hostcomplete is on.
eval "$SETUP"
echo READY
"""


class InteractiveBash:
    """An interactive bash on a pty with the completion loaded; type() edits a line."""

    def __init__(self, tmp, env):
        self.record = os.path.join(tmp, "completion-record")
        rc = os.path.join(tmp, "bashrc")
        inputrc = os.path.join(tmp, "inputrc")
        with open(rc, "w") as f:
            f.write(INTERACTIVE_RC)
        with open(inputrc, "w") as f:
            f.write("set bell-style none\n")
        env = dict(env, COMPLETION=COMPLETION, RECORD=self.record, INPUTRC=inputrc, TERM="dumb", HOME=tmp)
        self.fd, tty = os.openpty()
        # Wide enough that readline never scrolls the line.
        fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 1000, 0, 0))
        self.proc = subprocess.Popen(["bash", "--noprofile", "--rcfile", rc, "-i"], stdin=tty, stdout=tty,
                                     stderr=tty, env=env, cwd=tmp, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(tty)
        self.output = b""
        self._read_until(rb"READY")

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.fd)

    def _read_until(self, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.output)
            if found:
                self.output = self.output[found.end():]
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"bash printed no {pattern!r}; output: {self.output!r}")
            if select.select([self.fd], [], [], left)[0]:
                self.output += os.read(self.fd, 65536)

    def type(self, keys):
        """Types `keys` on an empty line, then Ctrl-X: returns (the edited line, the
        record of the completion call or None if none ran). The record is a dict with
        words (COMP_WORDS), cword, text ($2, what readline replaces) and reply."""
        if os.path.exists(self.record):
            os.unlink(self.record)
        os.write(self.fd, keys.encode() + b"\x18")
        line = self._read_until(rb"<<(.*?)>>\r?\n").group(1).decode()
        if not os.path.exists(self.record):
            return line, None
        with open(self.record, "rb") as f:
            fields = f.read().decode().split("\0")[:-1]
        count = int(fields[2])
        return line, {"cword": int(fields[0]), "text": fields[1], "words": fields[3:3 + count],
                      "reply": fields[3 + count:]}


class InteractiveTest(mhtest.SpoolTestCase):
    """What a user at a real bash gets from Tab."""

    def setUp(self):
        super().setUp()
        for d in ["example.jp", "shop.jp", "例え.jp"]:
            self.add_domain(d)
        for a in ["taro@example.jp", "hanako@example.jp", "info@shop.jp"]:
            self.add_account(a)
        self.decoy = os.path.join(self.tmp, "decoy")
        os.mkdir(self.decoy)
        self.user("--spool", self.decoy, "domain", "add", "decoy.example")

    def start_bash(self, setup=""):
        env = {k: v for k, v in os.environ.items() if k not in ("MH_SPOOL", "BASH_ENV", "ENV")}
        tool_dir = os.path.dirname(mhtest.tool_path("mh-user"))
        env.update(MH_SPOOL=self.decoy, PATH=tool_dir + ":" + env.get("PATH", "/usr/bin:/bin"),
                   SETUP=setup)
        shell = InteractiveBash(self.tmp, env)
        self.addCleanup(shell.close)
        return shell

    def assertTab(self, shell, typed, expected_line):
        line, record = shell.type(typed + "\t")
        self.assertIsNotNone(record, f"no completion ran for {typed!r}")
        self.assertEqual(line, expected_line, record)
        return record

    def test_addresses_complete_across_the_at_sign(self):
        shell = self.start_bash()
        s = self.spool
        record = self.assertTab(shell, f"mh-user --spool {s} show taro@ex", f"mh-user --spool {s} show taro@example.jp ")
        # Bash did cut the address, and readline replaced "@ex".
        self.assertEqual(record["words"][-3:], ["taro", "@", "ex"])
        self.assertEqual(record["text"], "@ex")
        self.assertTab(shell, f"mh-user --spool {s} show taro@", f"mh-user --spool {s} show taro@example.jp ")
        self.assertTab(shell, f"mh-user --spool {s} passwd ha", f"mh-user --spool {s} passwd hanako@example.jp ")
        self.assertTab(shell, f"mh-user --spool {s} suspend info@s", f"mh-user --spool {s} suspend info@shop.jp ")
        self.assertTab(shell, "mh-user show in", "mh-user show in")  # the decoy spool has no accounts
        self.assertTab(shell, f"mh-user show taro@example.jp --spool {s} --j",
                       f"mh-user show taro@example.jp --spool {s} --json ")

    def test_add_completes_the_domain_after_the_at_sign(self):
        shell = self.start_bash()
        s = self.spool
        self.assertTab(shell, f"mh-user --spool {s} add user@sh", f"mh-user --spool {s} add user@shop.jp ")
        self.assertTab(shell, f"mh-user --spool {s} add user@xn", f"mh-user --spool {s} add user@xn--r8jz45g.jp ")
        # Ambiguous: the line keeps "user@" and the candidates are the domains.
        record = self.assertTab(shell, f"mh-user --spool {s} add user@", f"mh-user --spool {s} add user@")
        self.assertEqual(record["reply"], ["@example.jp", "@shop.jp", "@xn--r8jz45g.jp"])
        self.assertTab(shell, f"mh-user --spool {s} add user@example.jp --ex",
                       f"mh-user --spool {s} add user@example.jp --exist-ok ")

    def test_spool_given_with_equals(self):
        shell = self.start_bash()
        s = self.spool
        self.assertTab(shell, f"mh-user --spool={s} list sh", f"mh-user --spool={s} list shop.jp ")
        self.assertTab(shell, f"mh-user --spool={s} show taro@e", f"mh-user --spool={s} show taro@example.jp ")
        os.mkdir(os.path.join(self.tmp, "only-dir"))
        self.assertTab(shell, f"mh-user --spool={self.tmp}/only-d", f"mh-user --spool={self.tmp}/only-dir/")
        self.assertTab(shell, f"mh-user --spool {self.tmp}/only-d", f"mh-user --spool {self.tmp}/only-dir/")

    def test_address_when_at_is_not_a_word_break(self):
        for setup in ["COMP_WORDBREAKS=${COMP_WORDBREAKS//@/}", "shopt -u hostcomplete"]:
            shell = self.start_bash(setup)
            s = self.spool
            record = self.assertTab(shell, f"mh-user --spool {s} show taro@ex",
                                    f"mh-user --spool {s} show taro@example.jp ")
            self.assertEqual(record["words"][-1], "taro@ex", setup)
            self.assertTab(shell, f"mh-user --spool {s} add user@sh", f"mh-user --spool {s} add user@shop.jp ")

    def test_address_when_at_is_a_plain_word_break(self):
        # hostcomplete off, '@' put back: readline replaces "ex", not "@ex".
        shell = self.start_bash("shopt -u hostcomplete; COMP_WORDBREAKS=$COMP_WORDBREAKS@")
        s = self.spool
        record = self.assertTab(shell, f"mh-user --spool {s} show taro@ex", f"mh-user --spool {s} show taro@example.jp ")
        self.assertEqual(record["text"], "ex")
        self.assertTab(shell, f"mh-user --spool {s} add user@sh", f"mh-user --spool {s} add user@shop.jp ")

    def test_cursor_inside_the_line(self):
        shell = self.start_bash()
        s = self.spool
        # Cursor moved back (Ctrl-B) to just after "ta", before " --json".
        self.assertTab(shell, f"mh-user --spool {s} show ta --json" + "\x02" * 7,
                       f"mh-user --spool {s} show taro@example.jp --json")

    def test_words_are_cut_as_the_real_readline_cuts_them(self):
        """readline_words(), which CompletionTest relies on, against bash itself."""
        shell = self.start_bash()
        lines = ["mh-user show taro@ex", "mh-user show taro@", "mh-user add user@", "mh-user --spool=",
                 "mh-user --spool=/x:=y list e", "mh-user --spool = /x list ", "mh-user show a@@b c",
                 "mh-user --reason 'x@y z' h", "mh-user --spool \"/a b\" show t", "mh-user --spool /a\\ b show ",
                 "mh-user a=@b", "mh-user "]
        for line in lines:
            _, record = shell.type(line + "\t")
            self.assertIsNotNone(record, line)
            words, text = readline_words(line)
            self.assertEqual((record["words"], record["cword"], record["text"]), (words, len(words) - 1, text), line)


if __name__ == "__main__":
    mhtest.main()
