"""Bash completion of mh-user (completions/mh-user.bash), driven through a real bash:
COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT are set as readline would set them, the
completion function runs with the built mh-user first on PATH, and COMPREPLY is compared
exactly: commands, per-command options, and names read from a temp spool."""

import os
import subprocess

import mhtest

COMPLETION = os.path.join(mhtest.SOURCE, "completions", "mh-user.bash")

# Sources the completion file, then calls the function like bash's programmable
# completion does ($1 = command, $2 = word being completed, $3 = word before it).
# The words arrive as positional parameters, so nothing needs shell quoting.
# It is sourced inside a function, as bash-completion's on-demand loader does, so
# definitions that would be local to that function are caught.
DRIVER = r'''
load() { source "$COMPLETION"; }
load || exit 90
[[ $(complete -p mh-user) == "complete -F _mh_user mh-user" ]] || exit 92
PATH="$TOOL_DIR:$PATH"
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
prev=''
(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD - 1]}
_mh_user mh-user "${COMP_WORDS[COMP_CWORD]}" "$prev" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
'''

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

    def complete(self, *words, mh_spool=None, path_has_tool=True):
        """COMPREPLY for the command line `words` (the last word is the one being
        completed; pass "" to complete a new word)."""
        env = {k: v for k, v in os.environ.items() if k != "MH_SPOOL"}
        env["MH_SPOOL"] = mh_spool if mh_spool is not None else self.decoy
        env["COMPLETION"] = COMPLETION
        tool_dir = os.path.dirname(mhtest.tool_path("mh-user"))
        env["TOOL_DIR"] = tool_dir if path_has_tool else self.tmp
        if not path_has_tool:
            env["PATH"] = "/usr/bin:/bin"
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER, "bash", "mh-user", *words],
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
        # Default COMP_WORDBREAKS splits "--spool=DIR" into "--spool" "=" "DIR".
        self.make_spool()
        self.assertEqual(self.complete("--spool", "=", self.spool, "list", "e"), ["example.jp"])

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

    def test_only_first_operand_is_completed(self):
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "show", "taro@example.jp", ""), [])
        self.assertEqual(self.complete("--spool", self.spool, "domain", "show", "shop.jp", ""), [])

    def test_add_completes_the_domain_part(self):
        self.make_spool()
        self.assertEqual(self.complete("--spool", self.spool, "add", "user@ex"), ["user@example.jp"])
        self.assertEqual(self.complete("--spool", self.spool, "add", "user@"),
                         ["user@example.jp", "user@shop.jp", "user@xn--r8jz45g.jp"])
        self.assertEqual(self.complete("add", "sales@s", mh_spool=self.spool), ["sales@shop.jp"])
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


if __name__ == "__main__":
    mhtest.main()
