"""Bash completion of mh-list (completions/mh-list.bash), driven through a real bash:
COMP_LINE/COMP_POINT (and COMP_WORDS, cut at COMP_WORDBREAKS as readline does, '@'
included) are set, the completion function runs with the built mh-user and mh-list first
on PATH, and COMPREPLY is compared exactly: commands, `members`/`moderators`
subcommands, options, --policy values, lists and domains from the spool named by --spool
or $MH_SPOOL, member and moderator addresses for `del`, and pending ids for
approve/reject."""

import os
import re
import subprocess
import time

import mhtest

# Sources the completion file inside a function (as bash-completion's loader does),
# checks the registration, then calls the function as programmable completion would.
DRIVER = r'''
load() { source "$COMPLETION"; }
load || exit 90
[[ $(complete -p mh-list) == "complete -F _mh_list mh-list" ]] || exit 92
PATH="$TOOL_DIRS:$PATH"
COMP_LINE=$LINE
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$SPLIT"
[[ $LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_mh_list mh-list "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
'''

COMMANDS = ["create", "delete", "show", "set", "list", "members", "moderators", "pending", "approve", "reject",
            "archive"]
COMMON_LONG = ["--spool", "--json", "--quiet", "--help"]
LISTS = ["ml@example.jp", "news@example.jp", "info@shop.jp"]


class CompletionTest(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        for d in ["example.jp", "shop.jp"]:
            self.add_domain(d)
        self.add_account("taro@example.jp")
        for lst in LISTS:
            self.lst("create", lst)
        self.lst("members", "add", "ml@example.jp", "alice@example.org", "Bob@example.net", "carol@example.org")
        self.lst("moderators", "add", "news@example.jp", "chair@example.jp")
        # MH_SPOOL points at a decoy unless a test says otherwise, so a test of --spool
        # fails if the completion reads the environment instead.
        self.decoy = os.path.join(self.tmp, "decoy")
        os.mkdir(self.decoy)
        self.user("--spool", self.decoy, "domain", "add", "decoy.example")
        r = self.run_tool("mh-list", "--spool", self.decoy, "create", "decoy@decoy.example")
        self.assertExit(r, 0)

    def lst(self, *args):
        r = self.run_tool("mh-list", *args)
        self.assertExit(r, 0)
        return r

    def complete(self, line, mh_spool=None):
        """COMPREPLY for the command line `line` with the cursor at its end."""
        env = {k: v for k, v in os.environ.items() if k != "MH_SPOOL"}
        dirs = [os.path.dirname(mhtest.tool_path(t)) for t in ("mh-user", "mh-list")]
        env.update(MH_SPOOL=mh_spool or self.decoy, LINE=line, SPLIT=re.sub(r"([@:=])", r" \1 ", line),
                   COMPLETION=os.path.join(mhtest.SOURCE, "completions", "mh-list.bash"),
                   TOOL_DIRS=":".join(dirs))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER], capture_output=True, text=True,
                              env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "completion must not print errors")
        return [w for w in proc.stdout.split("\n") if w]

    def test_commands_and_subcommands(self):
        self.assertEqual(self.complete("mh-list "), COMMANDS)
        self.assertEqual(self.complete("mh-list m"), ["members", "moderators"])
        self.assertEqual(self.complete("mh-list --json a"), ["approve", "archive"])
        self.assertEqual(self.complete("mh-list members "), ["add", "del", "list"])
        self.assertEqual(self.complete("mh-list moderators d"), ["del"])
        self.assertEqual(self.complete("mh-list --spool /x members l"), ["list"])

    def test_options_per_command(self):
        self.assertEqual(self.complete("mh-list create --"),
                         ["--policy", "--admin", "--max-size", "--exist-ok"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-list set ml@example.jp --"),
                         ["--policy", "--admin", "--max-size", "--subject-tag", "--bomb", "--bomb-block"]
                         + COMMON_LONG)
        self.assertEqual(self.complete("mh-list set --b"), ["--bomb", "--bomb-block"])
        self.assertEqual(self.complete("mh-list delete --f"), ["--force"])
        self.assertEqual(self.complete("mh-list list --"), ["--names"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-list members add --"), COMMON_LONG)
        self.assertEqual(self.complete("mh-list show --"), COMMON_LONG)
        self.assertEqual(self.complete("mh-list --"), ["--version"] + COMMON_LONG)
        self.assertEqual(self.complete("mh-list -"), ["--version"] + COMMON_LONG + ["-q", "-h"])

    def test_policy_values(self):
        self.assertEqual(self.complete("mh-list create ml@example.jp --policy "), ["members", "anyone", "moderators"])
        self.assertEqual(self.complete("mh-list set --policy m"), ["members", "moderators"])
        self.assertEqual(self.complete("mh-list set --policy=a"), ["anyone"])

    def test_values_are_not_operands(self):
        s = self.spool
        for opt in ["--admin", "--max-size", "--subject-tag", "--bomb", "--bomb-block"]:
            self.assertEqual(self.complete(f"mh-list --spool {s} set {opt} "), [], opt)
        self.assertEqual(self.complete(f"mh-list --spool {s} set --subject-tag '[x y]' n"), ["news@example.jp"])
        self.assertEqual(self.complete(f"mh-list --spool {s} set --bomb 3/5m ml@example.jp "), [])

    def test_lists_from_the_spool(self):
        s = self.spool
        everything = ["ml@example.jp", "news@example.jp", "info@shop.jp"]
        self.assertEqual(self.complete(f"mh-list --spool {s} show "), everything)
        self.assertEqual(self.complete("mh-list show ", mh_spool=s), everything)
        self.assertEqual(self.complete(f"mh-list --spool={s} show n"), ["news@example.jp"])
        for cmd in ["delete", "set", "members add", "members del", "members list", "moderators add",
                    "moderators del", "moderators list", "pending", "approve", "reject", "archive"]:
            self.assertEqual(self.complete(f"mh-list --spool {s} {cmd} i"), ["info@shop.jp"], cmd)
        # Bash cuts "ml@ex" at '@' and replaces "@ex": the reply starts at the '@'.
        self.assertEqual(self.complete(f"mh-list --spool {s} show ml@ex"), ["@example.jp"])
        self.assertEqual(self.complete(f"mh-list --spool {s} show ml@example.jp "), [])
        self.assertEqual(self.complete("mh-list show "), ["decoy@decoy.example"], "the decoy spool")
        self.assertEqual(self.complete(f"mh-list --spool {s} show t"), [], "accounts are not lists")

    def test_create_and_list_complete_domains(self):
        s = self.spool
        self.assertEqual(self.complete(f"mh-list --spool {s} create new@"), ["@example.jp", "@shop.jp"])
        self.assertEqual(self.complete(f"mh-list --spool {s} create new@s"), ["@shop.jp"])
        self.assertEqual(self.complete(f"mh-list --spool {s} create new"), [])
        self.assertEqual(self.complete(f"mh-list --spool {s} list "), ["example.jp", "shop.jp"])
        self.assertEqual(self.complete(f"mh-list --spool {s} list example.jp "), [])

    def test_member_and_moderator_addresses_for_del(self):
        s = self.spool
        self.assertEqual(self.complete(f"mh-list --spool {s} members del ml@example.jp "),
                         ["alice@example.org", "Bob@example.net", "carol@example.org"])
        self.assertEqual(self.complete(f"mh-list --spool {s} members del ml@example.jp c"), ["carol@example.org"])
        self.assertEqual(self.complete(f"mh-list --spool {s} members del ml@example.jp alice@ex"), ["@example.org"])
        # Addresses already on the line are not offered again (compared without case).
        self.assertEqual(self.complete(f"mh-list --spool {s} members del ml@example.jp bob@example.net "),
                         ["alice@example.org", "carol@example.org"])
        self.assertEqual(self.complete(f"mh-list --spool {s} moderators del news@example.jp "), ["chair@example.jp"])
        self.assertEqual(self.complete(f"mh-list --spool {s} members del news@example.jp "), [])
        self.assertEqual(self.complete(f"mh-list --spool {s} members add ml@example.jp "), [])
        self.assertEqual(self.complete(f"mh-list --spool {s} members list ml@example.jp "), [])

    def test_disabled_member_completes_as_its_address(self):
        s = self.spool
        with open(self.path("domains", "example.jp", "lists", "ml", "bounces"), "w") as f:
            f.write("carol@example.org disabled 1700000000\n")
        self.assertEqual(self.complete(f"mh-list --spool {s} members del ml@example.jp c"), ["carol@example.org"])

    def test_pending_ids_for_approve_and_reject(self):
        s = self.spool
        pending = self.path("domains", "example.jp", "lists", "ml", "pending")
        os.mkdir(pending)
        now = int(time.time())
        for pid in ["0123456789abcdef0123", "fedcba9876543210fedc"]:
            with open(os.path.join(pending, pid + ".yaml"), "w") as f:
                f.write(f"kind: post\nposter: a@example.org\nsubject: hi\nsize: 10\ncreated: {now}\n"
                        f"expires: {now + 3600}\n")
            with open(os.path.join(pending, pid + ".msg"), "w") as f:
                f.write("Subject: hi\n\nhello\n")
        self.assertEqual(self.complete(f"mh-list --spool {s} approve ml@example.jp "),
                         ["0123456789abcdef0123", "fedcba9876543210fedc"])
        self.assertEqual(self.complete(f"mh-list --spool {s} reject ml@example.jp f"), ["fedcba9876543210fedc"])
        self.assertEqual(self.complete(f"mh-list --spool {s} approve ml@example.jp 0123456789abcdef0123 "), [])
        self.assertEqual(self.complete(f"mh-list --spool {s} approve news@example.jp "), [])

    def test_after_double_dash(self):
        s = self.spool
        self.assertEqual(self.complete(f"mh-list --spool {s} show -- -"), [])
        self.assertEqual(self.complete(f"mh-list --spool {s} show -- m"), ["ml@example.jp"])

    def test_missing_spool_or_list_is_silent(self):
        missing = os.path.join(self.tmp, "no-such-spool")
        self.assertEqual(self.complete(f"mh-list --spool {missing} show "), [])
        self.assertEqual(self.complete(f"mh-list --spool {missing} members del a@b.jp "), [])
        self.assertEqual(self.complete(f"mh-list --spool {missing} create x@"), [])
        self.assertEqual(self.complete(f"mh-list --spool {self.spool} members del nope@example.jp "), [])
        self.assertEqual(self.complete(f"mh-list --spool {self.spool} approve nope@example.jp "), [])
        self.assertFalse(os.path.exists(missing), "completion must not create a spool")


if __name__ == "__main__":
    mhtest.main()
