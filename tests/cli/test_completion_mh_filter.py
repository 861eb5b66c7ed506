"""Bash completion of mh-filter (completions/mh-filter.bash), driven through a real bash:
COMP_LINE/COMP_POINT (and COMP_WORDS, cut at COMP_WORDBREAKS as readline does, '@'
included) are set, the completion function runs with the built mh-user and mh-filter
first on PATH, and COMPREPLY is compared exactly: commands, subcommands, options,
--action values, addresses from the spool named by --spool or $MH_SPOOL, and the profile
and rule numbers `del` takes, read from `mh-filter show --json`."""

import os
import re
import subprocess

import mhtest

# Sources the completion file inside a function (as bash-completion's loader does),
# checks the registration, then calls the function as programmable completion would.
DRIVER = r'''
load() { source "$COMPLETION"; }
load || exit 90
[[ $(complete -p mh-filter) == "complete -F _mh_filter mh-filter" ]] || exit 92
PATH="$TOOL_DIRS:$PATH"
COMP_LINE=$LINE
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$SPLIT"
[[ $LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_mh_filter mh-filter "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
'''

COMMANDS = ["show", "forward", "rule", "autoreply", "spam", "test", "export"]
COMMON_LONG = ["--spool", "--json", "--quiet", "--help"]


class CompletionTest(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        for d in ["example.jp", "shop.jp"]:
            self.add_domain(d)
        for a in ["taro@example.jp", "hanako@example.jp", "info@shop.jp"]:
            self.add_account(a)
        # MH_SPOOL points at a decoy unless a test says otherwise, so a test of --spool
        # fails if the completion reads the environment instead.
        self.decoy = os.path.join(self.tmp, "decoy")
        os.mkdir(self.decoy)
        self.user("--spool", self.decoy, "domain", "add", "decoy.example")

    def filt(self, *args, stdin=None):
        r = self.run_tool("mh-filter", *args, stdin=stdin)
        self.assertExit(r, 0)

    def complete(self, line, mh_spool=None):
        """COMPREPLY for the command line `line` with the cursor at its end."""
        env = {k: v for k, v in os.environ.items() if k != "MH_SPOOL"}
        dirs = [os.path.dirname(mhtest.tool_path(t)) for t in ("mh-user", "mh-filter")]
        env.update(MH_SPOOL=mh_spool or self.decoy, LINE=line, SPLIT=re.sub(r"([@:=])", r" \1 ", line),
                   COMPLETION=os.path.join(mhtest.SOURCE, "completions", "mh-filter.bash"),
                   TOOL_DIRS=":".join(dirs))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER], capture_output=True, text=True,
                              env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "completion must not print errors")
        return [w for w in proc.stdout.split("\n") if w]

    def test_commands_and_subcommands(self):
        self.assertEqual(self.complete("mh-filter "), COMMANDS)
        self.assertEqual(self.complete("mh-filter s"), ["show", "spam"])
        self.assertEqual(self.complete("mh-filter --json e"), ["export"])
        self.assertEqual(self.complete("mh-filter forward "), ["add", "del"])
        self.assertEqual(self.complete("mh-filter rule d"), ["del"])
        self.assertEqual(self.complete("mh-filter autoreply "), ["set", "off"])
        self.assertEqual(self.complete("mh-filter --spool /x spam "), ["set", "off"])

    def test_options_per_command(self):
        self.assertEqual(self.complete("mh-filter forward add --"), ["--to", "--if", "--no-keep"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-filter forward del --a"), ["--all"])
        self.assertEqual(self.complete("mh-filter rule add --"), ["--if", "--action"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-filter autoreply set --"),
                         ["--message-file", "--subject", "--days"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-filter spam set --t"), ["--tag"])
        self.assertEqual(self.complete("mh-filter test --s"), ["--sender", "--spool"])
        self.assertEqual(self.complete("mh-filter export x@y.jp --"), ["--sieve"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-filter show --"), COMMON_LONG)
        self.assertEqual(self.complete("mh-filter --"), ["--version"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-filter -"), ["--version"] + COMMON_LONG + ["-q", "-h"])

    def test_action_values(self):
        self.assertEqual(self.complete("mh-filter rule add taro@example.jp --action "), ["delete", "bounce"])
        self.assertEqual(self.complete("mh-filter rule add --if all --action b"), ["bounce"])
        self.assertEqual(self.complete("mh-filter spam set --action "), ["tag", "delete"])
        self.assertEqual(self.complete("mh-filter spam set --action=d"), ["delete"])

    def test_values_are_not_operands(self):
        s = self.spool
        # A COND is one quoted word with spaces; it is neither completed nor an operand.
        self.assertEqual(self.complete(f"mh-filter --spool {s} forward add --if 'subject contains a b' t"),
                         ["taro@example.jp"])
        self.assertEqual(self.complete(f'mh-filter --spool {s} rule add --if "from is x@y" --action delete i'),
                         ["info@shop.jp"])
        self.assertEqual(self.complete("mh-filter forward add --if "), [])
        self.assertEqual(self.complete("mh-filter forward add --to "), [])
        self.assertEqual(self.complete("mh-filter autoreply set --days "), [])
        self.assertEqual(self.complete(f"mh-filter --spool {s} forward add --to a@x.org taro@example.jp "), [])

    def test_message_file_completes_files_and_dash(self):
        f = os.path.join(self.tmp, "away-message.txt")
        with open(f, "w") as fh:
            fh.write("away\n")
        self.assertEqual(self.complete(f"mh-filter autoreply set --message-file {self.tmp}/away"), [f])
        self.assertIn("-", self.complete("mh-filter autoreply set --message-file "))

    def test_addresses_from_the_spool(self):
        s = self.spool
        everyone = ["hanako@example.jp", "taro@example.jp", "info@shop.jp"]
        self.assertEqual(self.complete(f"mh-filter --spool {s} show "), everyone)
        self.assertEqual(self.complete("mh-filter show ", mh_spool=s), everyone)
        self.assertEqual(self.complete(f"mh-filter --spool={s} test h"), ["hanako@example.jp"])
        for cmd in ["forward add", "forward del", "rule add", "rule del", "autoreply set", "autoreply off",
                    "spam set", "spam off", "test", "export"]:
            self.assertEqual(self.complete(f"mh-filter --spool {s} {cmd} i"), ["info@shop.jp"], cmd)
        # Bash cuts "taro@ex" at '@' and replaces "@ex": the reply starts at the '@'.
        self.assertEqual(self.complete(f"mh-filter --spool {s} show taro@ex"), ["@example.jp"])
        self.assertEqual(self.complete(f"mh-filter --spool {s} show taro@example.jp "), [])
        self.assertEqual(self.complete("mh-filter show "), [], "the decoy spool has no accounts")

    def test_numbers_for_del(self):
        s = self.spool
        for i in range(3):
            self.filt("--spool", s, "forward", "add", "taro@example.jp", "--to", f"a{i}@x.org",
                      "--if", f'subject contains "number": {i}')
        self.filt("--spool", s, "rule", "add", "taro@example.jp", "--if", "all", "--action", "delete")
        self.assertEqual(self.complete(f"mh-filter --spool {s} forward del taro@example.jp "), ["1", "2", "3"])
        self.assertEqual(self.complete(f"mh-filter --spool {s} rule del taro@example.jp "), ["1"])
        self.assertEqual(self.complete(f"mh-filter --spool {s} forward del taro@example.jp --"),
                         ["--all"] + COMMON_LONG)
        self.assertEqual(self.complete(f"mh-filter --spool {s} rule del hanako@example.jp "), [])
        self.assertEqual(self.complete(f"mh-filter --spool {s} forward del taro@example.jp 2 "), [])
        self.assertEqual(self.complete(f"mh-filter --spool {s} forward del nobody@example.jp "), [])

    def test_after_double_dash(self):
        s = self.spool
        self.assertEqual(self.complete(f"mh-filter --spool {s} show -- -"), [])
        self.assertEqual(self.complete(f"mh-filter --spool {s} show -- t"), ["taro@example.jp"])

    def test_missing_spool_or_tool_is_silent(self):
        missing = os.path.join(self.tmp, "no-such-spool")
        self.assertEqual(self.complete(f"mh-filter --spool {missing} show "), [])
        self.assertEqual(self.complete(f"mh-filter --spool {missing} forward del a@b.jp "), [])
        self.assertFalse(os.path.exists(missing), "completion must not create a spool")


if __name__ == "__main__":
    mhtest.main()
