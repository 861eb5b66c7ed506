"""Bash completion of mh-serve (completions/mh-serve.bash), driven through a real bash as
in test_completion_quota_purge.py: COMP_LINE/COMP_POINT (and COMP_WORDS, split at the
default COMP_WORDBREAKS as readline does) are set, the completion function runs, and
COMPREPLY is compared exactly: options, directories after --spool, services after
--stdio, durations after --shutdown-grace and --wait, nothing where a number or an
address goes, and the queue commands with their options and the queue ids of the spool
(asked from mh-serve itself, `queue list --ids`, in the spool of --spool, else
$MH_SPOOL). The option lists are also checked against the built mh-serve's --help, so
the completion cannot fall behind the tool."""

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
[[ $(complete -p mh-serve) == "complete -F _mh_serve mh-serve" ]] || exit 92
PATH="$TOOL_DIR:$PATH"
COMP_LINE=$LINE
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$SPLIT"
[[ $LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_mh_serve mh-serve "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
'''

OPTIONS = ["--spool", "--check-config", "--stdio", "--client-ip", "--threads", "--delivery-threads",
           "--shutdown-grace", "--hostname", "--listen", "--json", "--quiet", "-q", "--help", "-h", "--version"]
DURATIONS = ["5s", "10s", "30s", "1m", "5m"]
COMMON = ["--spool", "--json", "--quiet", "-q", "--help", "-h"]
QUEUE_OPTIONS = {"list": ["--ids"], "show": [], "retry": ["--all", "--wait"], "delete": ["--all", "--bounce", "--wait"]}


def help_options(*args):
    """The options `mh-serve ARGS --help` lists."""
    run = subprocess.run([mhtest.tool_path("mh-serve"), *args, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run
    helped = set()
    for line in run.stdout.splitlines():
        m = re.match(r"\s+(-[-\w,]+)", line)
        if m:
            helped.update(m.group(1).split(","))
    return helped, run.stdout


class MhServeCompletionTest(mhtest.SpoolTestCase):
    def complete(self, line, mh_spool=None):
        """COMPREPLY for the command line `line` with the cursor at its end."""
        env = dict(os.environ)
        env.update(COMPLETION=os.path.join(mhtest.SOURCE, "completions", "mh-serve.bash"),
                   LINE=line, SPLIT=re.sub(r"([@:=])", r" \1 ", line),
                   TOOL_DIR=os.path.dirname(mhtest.tool_path("mh-serve")),
                   MH_SPOOL=mh_spool or os.path.join(self.tmp, "no-spool"))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER], capture_output=True, text=True,
                              env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "completion must not print errors")
        return [w for w in proc.stdout.split("\n") if w]

    def test_options(self):
        # A new word: the queue command or an option.
        self.assertEqual(self.complete("mh-serve "), ["queue"] + OPTIONS)
        self.assertEqual(self.complete("mh-serve --"), [o for o in OPTIONS if o.startswith("--")])
        self.assertEqual(self.complete("mh-serve --s"), ["--spool", "--stdio", "--shutdown-grace"])
        self.assertEqual(self.complete("mh-serve --check-config --j"), ["--json"])
        self.assertEqual(self.complete("mh-serve --d"), ["--delivery-threads"])
        self.assertEqual(self.complete("mh-serve --stdio pop3 --client-ip 192.0.2.1 --c"),
                         ["--check-config", "--client-ip"])

    def test_no_operands(self):
        # mh-serve takes no operands: a word that is not an option gets nothing.
        self.assertEqual(self.complete("mh-serve x"), [])
        self.assertEqual(self.complete("mh-serve --check-config s"), [])

    def test_stdio_services(self):
        self.assertEqual(self.complete("mh-serve --stdio "), ["smtp", "pop3"])
        self.assertEqual(self.complete("mh-serve --stdio p"), ["pop3"])
        self.assertEqual(self.complete("mh-serve --spool /x --stdio s"), ["smtp"])
        # "=" is a word break: bash replaces what follows it.
        self.assertEqual(self.complete("mh-serve --stdio=s"), ["smtp"])
        self.assertEqual(self.complete("mh-serve --stdio="), ["smtp", "pop3"])

    def test_shutdown_grace_durations(self):
        self.assertEqual(self.complete("mh-serve --shutdown-grace "), DURATIONS)
        self.assertEqual(self.complete("mh-serve --shutdown-grace 1"), ["10s", "1m"])
        self.assertEqual(self.complete("mh-serve --shutdown-grace=3"), ["30s"])

    def test_values_left_to_the_user(self):
        for option in ["--client-ip", "--threads", "--delivery-threads", "--hostname", "--listen"]:
            self.assertEqual(self.complete(f"mh-serve {option} "), [], option)
        self.assertEqual(self.complete("mh-serve --stdio smtp --client-ip ::"), [])
        self.assertEqual(self.complete("mh-serve --stdio smtp --client-ip 2001:db8::"), [])
        self.assertEqual(self.complete("mh-serve --threads=4"), [])

    def test_spool_directories(self):
        os.mkdir(os.path.join(self.tmp, "spool-two"))
        open(os.path.join(self.tmp, "spool-file"), "w").close()
        self.assertEqual(self.complete(f"mh-serve --spool {self.tmp}/spool-t"), [f"{self.tmp}/spool-two"])
        self.assertEqual(sorted(self.complete(f"mh-serve --spool {self.tmp}/sp")),
                         [f"{self.tmp}/spool", f"{self.tmp}/spool-two"])
        self.assertEqual(self.complete(f"mh-serve --check-config --spool={self.tmp}/spool-t"),
                         [f"{self.tmp}/spool-two"])

    def test_options_match_the_tool(self):
        """Every option of `mh-serve --help` is completed, and nothing else."""
        helped, text = help_options()
        self.assertEqual(helped, set(OPTIONS))
        self.assertIn("{smtp,pop3}", text, "the services completed after --stdio")

    # --- queue ---

    def enqueue(self, spool):
        tool = os.path.join(os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests")), "mh-test-enqueue")
        run = subprocess.run([tool, "--spool", spool, "--sender", "a@example.org", "b@remote.example"],
                             input=b"Subject: x\n\nbody\n", capture_output=True, timeout=60)
        self.assertEqual(run.returncode, 0, run)
        time.sleep(0.001)
        return run.stdout.decode().strip()

    def test_queue_commands(self):
        self.assertEqual(self.complete("mh-serve q"), ["queue"])
        self.assertEqual(self.complete("mh-serve --spool /x --json q"), ["queue"])
        self.assertEqual(self.complete("mh-serve queue "), ["list", "show", "retry", "delete"])
        self.assertEqual(self.complete("mh-serve queue r"), ["retry"])
        self.assertEqual(self.complete("mh-serve --quiet queue d"), ["delete"])
        self.assertEqual(self.complete("mh-serve queue list "), [])
        # A daemon option rules the queue command out, and the other way round.
        self.assertEqual(self.complete("mh-serve --check-config q"), [])
        self.assertEqual(self.complete("mh-serve --stdio smtp "), [o for o in OPTIONS])
        self.assertEqual(self.complete("mh-serve queue --c"), [])

    def test_queue_options(self):
        for command, own in QUEUE_OPTIONS.items():
            self.assertEqual(self.complete(f"mh-serve queue {command} -"), own + COMMON, command)
        self.assertEqual(self.complete("mh-serve queue -"), COMMON)
        self.assertEqual(self.complete("mh-serve queue delete --b"), ["--bounce"])
        self.assertEqual(self.complete("mh-serve queue delete X --all --w"), ["--wait"])
        self.assertEqual(self.complete("mh-serve queue retry --wait "), DURATIONS)
        self.assertEqual(self.complete("mh-serve queue retry --wait 1"), ["10s", "1m"])
        self.assertEqual(self.complete("mh-serve queue delete --wait=3"), ["30s"])
        self.assertEqual(self.complete("mh-serve queue list --spool=" + self.tmp + "/sp"), [self.spool])

    def test_queue_options_match_the_tool(self):
        for command, own in QUEUE_OPTIONS.items():
            # The common options are the app's (mh-serve --help); each command lists its own.
            helped, _ = help_options("queue", command)
            self.assertEqual(helped, set(own + ["--help", "-h"]), command)

    def test_queue_ids_from_the_spool(self):
        ids = sorted(self.enqueue(self.spool) for _ in range(3))
        decoy = os.path.join(self.tmp, "decoy")
        os.mkdir(decoy)
        decoy_id = self.enqueue(decoy)
        self.assertEqual(self.complete(f"mh-serve --spool {self.spool} queue show ", mh_spool=decoy), ids)
        self.assertEqual(self.complete(f"mh-serve queue show --spool {self.spool} ", mh_spool=decoy), ids)
        self.assertEqual(self.complete(f"mh-serve queue retry --spool={self.spool} ", mh_spool=decoy), ids)
        self.assertEqual(self.complete(f"mh-serve queue show --spool '{self.spool}' {ids[1][:-2]}", mh_spool=decoy),
                         [ids[1]])
        # Without --spool: $MH_SPOOL.
        self.assertEqual(self.complete("mh-serve queue delete ", mh_spool=decoy), [decoy_id])
        # show takes one id; retry and delete several, each once; none after --all.
        self.assertEqual(self.complete(f"mh-serve --spool {self.spool} queue show {ids[0]} "), [])
        self.assertEqual(self.complete(f"mh-serve --spool {self.spool} queue retry {ids[0]} "), ids[1:])
        self.assertEqual(self.complete(f"mh-serve --spool {self.spool} queue delete {ids[2]} {ids[0]} "), [ids[1]])
        self.assertEqual(self.complete(f"mh-serve --spool {self.spool} queue delete --all "), [])
        self.assertEqual(self.complete(f"mh-serve --spool {self.spool} queue delete -- "), ids)
        # No such spool, or no mh-serve on PATH: nothing, and no error printed.
        self.assertEqual(self.complete(f"mh-serve --spool {self.tmp}/none queue show "), [])


if __name__ == "__main__":
    mhtest.main()
