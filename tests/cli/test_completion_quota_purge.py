"""Bash completion of mh-quota and mh-purge (completions/mh-quota.bash, mh-purge.bash),
driven through a real bash: COMP_LINE/COMP_POINT (and COMP_WORDS, split at the default
COMP_WORDBREAKS as readline does, '@' included) are set, the completion function runs with
the built mh-user first on PATH, and COMPREPLY is compared exactly: commands, options, and
domain/account names read from a temp spool chosen by --spool or $MH_SPOOL."""

import os
import re
import subprocess

import mhtest

# Sources the completion file inside a function (as bash-completion's loader does),
# checks the registration, then calls the function as programmable completion would.
DRIVER = r'''
load() { source "$COMPLETION"; }
load || exit 90
[[ $(complete -p "$TOOL") == "complete -F $FUNC $TOOL" ]] || exit 92
PATH="$TOOL_DIR:$PATH"
COMP_LINE=$LINE
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$SPLIT"
[[ $LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
"$FUNC" "$TOOL" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
'''

QUOTA_COMMANDS = ["show", "set", "recalc", "report"]


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

    def complete(self, tool, line, mh_spool=None):
        """COMPREPLY for the command line `line` with the cursor at its end."""
        env = {k: v for k, v in os.environ.items() if k != "MH_SPOOL"}
        env.update(MH_SPOOL=mh_spool or self.spool, TOOL=tool, FUNC="_" + tool.replace("-", "_"),
                   COMPLETION=os.path.join(mhtest.SOURCE, "completions", tool + ".bash"),
                   TOOL_DIR=os.path.dirname(mhtest.tool_path("mh-user")),
                   LINE=line, SPLIT=re.sub(r"([@:=])", r" \1 ", line))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER], capture_output=True, text=True,
                              env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "completion must not print errors")
        return [w for w in proc.stdout.split("\n") if w]

    # --- mh-quota ---

    def test_quota_commands(self):
        self.assertEqual(self.complete("mh-quota", "mh-quota "), QUOTA_COMMANDS)
        self.assertEqual(self.complete("mh-quota", "mh-quota re"), ["recalc", "report"])
        self.assertEqual(self.complete("mh-quota", "mh-quota --json s"), ["show", "set"])

    def test_quota_options(self):
        self.assertEqual(self.complete("mh-quota", "mh-quota report --w"), ["--warn-percent", "--warn-messages"])
        self.assertEqual(self.complete("mh-quota", "mh-quota set example.jp --a"), ["--add"])
        self.assertEqual(self.complete("mh-quota", "mh-quota --j"), ["--json"])
        self.assertEqual(self.complete("mh-quota", "mh-quota show --"),
                         ["--spool", "--json", "--quiet", "--help", "--version"])
        self.assertEqual(self.complete("mh-quota", "mh-quota report --warn-percent "), [])

    def test_quota_names_from_the_spool(self):
        self.assertEqual(self.complete("mh-quota", "mh-quota show "),
                         ["example.jp", "shop.jp", "hanako@example.jp", "taro@example.jp", "info@shop.jp"])
        self.assertEqual(self.complete("mh-quota", "mh-quota recalc sh"), ["shop.jp"])
        # set takes a domain only, and only one operand is a name.
        self.assertEqual(self.complete("mh-quota", "mh-quota set "), ["example.jp", "shop.jp"])
        self.assertEqual(self.complete("mh-quota", "mh-quota set shop.jp "), [])
        self.assertEqual(self.complete("mh-quota", "mh-quota show shop.jp "), [])

    def test_quota_address_after_the_at_sign(self):
        # Bash replaces the text from '@' on (a word break that hostcomplete, on by
        # default, hands over with the word): the reply is that part.
        self.assertEqual(self.complete("mh-quota", "mh-quota show taro@"), ["@example.jp"])
        self.assertEqual(self.complete("mh-quota", "mh-quota show ta"), ["taro@example.jp"])

    def test_quota_spool_option_is_honoured(self):
        self.assertEqual(self.complete("mh-quota", "mh-quota show ", mh_spool=self.decoy), ["decoy.example"])
        self.assertEqual(self.complete("mh-quota", f"mh-quota --spool {self.spool} show e", mh_spool=self.decoy),
                         ["example.jp"])
        self.assertEqual(self.complete("mh-quota", f"mh-quota show --spool={self.spool} e", mh_spool=self.decoy),
                         ["example.jp"])
        os.mkdir(os.path.join(self.tmp, "spool-two"))
        self.assertEqual(self.complete("mh-quota", f"mh-quota --spool {self.tmp}/spool-t"), [f"{self.tmp}/spool-two"])

    def test_no_spool_no_names_no_errors(self):
        missing = os.path.join(self.tmp, "missing")
        self.assertEqual(self.complete("mh-quota", f"mh-quota --spool {missing} show "), [])
        self.assertEqual(self.complete("mh-purge", f"mh-purge --spool {missing} "), [])

    # --- mh-purge ---

    def test_purge_options(self):
        self.assertEqual(self.complete("mh-purge", "mh-purge --l"), ["--larger-than", "--list"])
        self.assertEqual(self.complete("mh-purge", "mh-purge info@shop.jp --e"), ["--everything"])
        self.assertEqual(self.complete("mh-purge", "mh-purge --d"), ["--dry-run"])
        self.assertEqual(self.complete("mh-purge", "mh-purge --all-domains --older-than "),
                         ["1d", "7d", "30d", "90d", "180d", "365d"])
        self.assertEqual(self.complete("mh-purge", "mh-purge --larger-than 1"), ["1M", "10M", "100M"])
        self.assertEqual(self.complete("mh-purge", "mh-purge taro@example.jp --uid "), [])

    def test_purge_targets_from_the_spool(self):
        self.assertEqual(self.complete("mh-purge", "mh-purge "),
                         ["example.jp", "shop.jp", "hanako@example.jp", "taro@example.jp", "info@shop.jp"])
        self.assertEqual(self.complete("mh-purge", "mh-purge --older-than 30d h"), ["hanako@example.jp"])
        self.assertEqual(self.complete("mh-purge", "mh-purge info@s"), ["@shop.jp"])
        self.assertEqual(self.complete("mh-purge", f"mh-purge --spool {self.decoy} "), ["decoy.example"])


if __name__ == "__main__":
    mhtest.main()
