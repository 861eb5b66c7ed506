"""Bash completion of mh-serve (completions/mh-serve.bash), driven through a real bash as
in test_completion_quota_purge.py: COMP_LINE/COMP_POINT (and COMP_WORDS, split at the
default COMP_WORDBREAKS as readline does) are set, the completion function runs, and
COMPREPLY is compared exactly: options, directories after --spool, services after
--stdio, durations after --shutdown-grace, nothing where a number or an address goes.
The option list is also checked against the built mh-serve's --help, so the completion
cannot fall behind the tool."""

import os
import re
import subprocess

import mhtest

# Sources the completion file inside a function (as bash-completion's loader does),
# checks the registration, then calls the function as programmable completion would.
DRIVER = r'''
load() { source "$COMPLETION"; }
load || exit 90
[[ $(complete -p mh-serve) == "complete -F _mh_serve mh-serve" ]] || exit 92
COMP_LINE=$LINE
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$SPLIT"
[[ $LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_mh_serve mh-serve "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 91
printf '%s\n' "${COMPREPLY[@]}"
'''

OPTIONS = ["--spool", "--check-config", "--stdio", "--client-ip", "--threads", "--delivery-threads",
           "--shutdown-grace", "--json", "--quiet", "-q", "--help", "-h", "--version"]
DURATIONS = ["5s", "10s", "30s", "1m", "5m"]


class MhServeCompletionTest(mhtest.SpoolTestCase):
    def complete(self, line):
        """COMPREPLY for the command line `line` with the cursor at its end."""
        env = dict(os.environ)
        env.update(COMPLETION=os.path.join(mhtest.SOURCE, "completions", "mh-serve.bash"),
                   LINE=line, SPLIT=re.sub(r"([@:=])", r" \1 ", line))
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER], capture_output=True, text=True,
                              env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", "completion must not print errors")
        return [w for w in proc.stdout.split("\n") if w]

    def test_options(self):
        self.assertEqual(self.complete("mh-serve "), OPTIONS)
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
        for option in ["--client-ip", "--threads", "--delivery-threads"]:
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
        run = subprocess.run([mhtest.tool_path("mh-serve"), "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, run)
        helped = set()
        for line in run.stdout.splitlines():
            m = re.match(r"\s+(-[-\w,]+)", line)
            if m:
                helped.update(m.group(1).split(","))
        self.assertEqual(helped, set(OPTIONS))
        self.assertIn("{smtp,pop3}", run.stdout, "the services completed after --stdio")


if __name__ == "__main__":
    mhtest.main()
