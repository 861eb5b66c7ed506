"""`mh-filter export --sieve` against Dovecot Pigeonhole (package dovecot-sieve): every
exported script compiles with `sievec`, and for a grid of filter configs × messages,
`sieve-test` performs the same actions as `mh-filter test` says mailhost will: keep or
not, redirects, reject (mailhost's bounce), vacation reply sent or not.

sieve-test runs standalone (no dovecot server): `-c` names a tiny dovecot.conf with a
mail_location in a fresh home per run, `-e` executes the actions (so vacation applies its
RFC 3834 checks: list mail, Auto-Submitted, recipient in the header, and says "sent" or
"discarding"), and its log lines are read. As root it must drop to another user
(mail_uid nobody), so the files it reads are made world-readable.

The spam step is compared through a fake rspamd (test_mh_filter.FakeRspamd) that calls a
message spam when it carries `X-Spam-Flag: YES`, which is what the exported script tests.

The one known difference, deliberately not in the grid: mailhost compares after Unicode
NFKC case folding, so `subject contains abc` matches a full-width "ＡＢＣ" (and "Ｅ" matches
"é" never, but "É" matches "é"); Sieve's default comparator i;ascii-casemap folds ASCII
letters only, and Pigeonhole 2.3 offers no i;unicode-casemap (which would not be NFKC
either). The export says so in a comment. Messages here use ASCII and RFC 2047
encoded-words (ISO-2022-JP, UTF-8), which both decode the same way."""

import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402
from test_mh_filter import FakeRspamd, encoded  # noqa: E402


def find(name):
    return shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)


SIEVEC = find("sievec")
SIEVE_TEST = find("sieve-test")
ACCOUNT = "u@d.jp"


def msg(subject="hello", sender="Alice <alice@example.org>", to=ACCOUNT, extra=(), body="hi\n"):
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", "Date: Mon, 2 Dec 2024 10:00:00 +0900",
             "Message-ID: <t@example.org>", *extra]
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


# (name, envelope sender, message)
MESSAGES = [
    ("plain", "alice@example.org", msg()),
    ("iso-2022-jp subject", "alice@example.org", msg(subject=encoded("【重要】会議", "iso-2022-jp"))),
    ("boss", "boss@corp.example", msg(sender="Boss <boss@corp.example>")),
    ("boss, encoded name", "boss@corp.example", msg(sender=encoded("上司") + " <boss@corp.example>")),
    ("spam domain", "x@spam.example", msg(sender="Deals <x@spam.example>", subject="offer")),
    ("big", "carol@example.org", msg(body="z" * 75 + "\n" * 1 + ("y" * 75 + "\n") * 60)),
    ("priority", "dave@example.org", msg(extra=["X-Priority: 1"])),
    ("list mail", "owner@lists.example.org", msg(extra=["List-Id: <dev.lists.example.org>"])),
    ("auto-submitted", "robot@example.org", msg(extra=["Auto-Submitted: auto-generated"])),
    ("spam flag", "spammer@example.net", msg(subject="cheap", extra=["X-Spam-Flag: YES"])),
    ("glob subject", "erin@example.org", msg(subject=encoded("Re: Q3 report final"))),
    ("to sales, cc boss", "frank@example.org", msg(to="Sales <sales@d.jp>", extra=[f"Cc: boss@corp.example, {ACCOUNT}"])),
    ("lottery", "lucky@example.org", msg(subject="You won the LOTTERY")),
]

# Each config is a list of mh-filter commands (after the program name, before the address
# is added: the address goes right after the subcommand words).
CONFIGS = {
    "rules and forwards": [
        ["rule", "add", "--if", "subject contains 重要", "--action", "delete"],
        ["rule", "add", "--if", "from matches *@spam.example", "--action", "bounce"],
        ["rule", "add", "--if", "subject matches re: ?? REPORT*", "--action", "delete"],
        ["forward", "add", "--if", "from contains boss", "--to", "a@x.org", "--to", "b@y.org"],
        ["forward", "add", "--if", "size > 2K", "--to", "big@x.org", "--no-keep"],
        ["forward", "add", "--if", "header X-Priority is 1", "--to", "urgent@x.org"],
    ],
    "auto-reply": [
        ["rule", "add", "--if", "subject contains lottery", "--action", "delete"],
        ["forward", "add", "--to", "never@x.org"],
        ["autoreply", "set", "--message-file", "-", "--subject", "不在のお知らせ", "--days", "3"],
    ],
    "spam delete, forward all": [
        ["spam", "set", "--action", "delete"],
        ["forward", "add", "--if", "cc is boss@corp.example", "--to", "cc@x.org"],
        ["forward", "add", "--to", "c@z.org", "--no-keep"],
        ["forward", "add", "--if", "from contains boss", "--to", "inert@x.org"],
    ],
    "spam tag, to and cc": [
        ["spam", "set", "--action", "tag"],
        ["rule", "add", "--if", "to contains sales", "--action", "bounce"],
        ["forward", "add", "--if", "from is boss@corp.example", "--to", "a@x.org"],
        ["autoreply", "set", "--message-file", "-"],
    ],
    "empty": [],
}


def mailhost_outcome(j):
    """What mh-filter test --json says, in sieve-test's terms."""
    return {"stored": j["keep"],
            "redirects": sorted(j["destinations"]) if j["action"] == "forward" else [],
            "reject": j["action"] == "bounce",
            "reply": bool(j["reply"] and j["reply"]["would_send"])}


def sieve_outcome(log):
    """What sieve-test -e did, from its "info:" lines (its log repeats each one with a
    "sieve-test: Info: sieve:" prefix; those are skipped)."""
    log = "\n".join(line for line in log.splitlines() if line.startswith("info: "))
    return {"stored": "stored mail into mailbox 'INBOX'" in log,
            "redirects": sorted(re.findall(r"redirect action: forwarded to <([^>]*)>", log)),
            "reject": "reject action: rejected message" in log,
            "reply": "vacation action: sent vacation response" in log}


@unittest.skipUnless(SIEVEC and SIEVE_TEST, "Pigeonhole's sievec and sieve-test are needed (dovecot-sieve)")
class SieveExport(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("d.jp")
        self.add_account(ACCOUNT)
        self.fake = FakeRspamd()
        self.addCleanup(self.fake.close)
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'spam:\n  rspamd: "{self.fake.url}"\n')
        # sieve-test as root drops to nobody: it must reach everything it reads.
        os.chmod(self.tmp, 0o755)
        self.work = os.path.join(self.tmp, "sieve")
        os.mkdir(self.work, 0o755)
        self.runs = 0

    def filt(self, *args, stdin=None):
        e = dict(os.environ, MH_SPOOL=self.spool)
        p = subprocess.run([mhtest.tool_path("mh-filter"), *args], input=stdin, capture_output=True, env=e,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p)
        return p.stdout

    def configure(self, commands):
        for cmd in commands:
            args = cmd[:2] + [ACCOUNT] + cmd[2:]   # "rule add ADDRESS --if …"
            self.filt(*args, stdin="ただいま不在です。\nI am away.\n".encode() if "--message-file" in cmd else None)

    def export(self, name):
        script = os.path.join(self.work, name + ".sieve")
        with open(script, "wb") as f:
            f.write(self.filt("export", ACCOUNT, "--sieve"))
        os.chmod(script, 0o644)
        # Compiled beside the script (NAME.svbin), where sieve-test finds it up to date.
        p = subprocess.run([SIEVEC, script], capture_output=True, text=True, timeout=60)
        with open(script, encoding="utf-8") as f:
            self.assertEqual(p.returncode, 0, f"sievec refused the export:\n{p.stderr}\n{f.read()}")
        os.chmod(script[:-len(".sieve")] + ".svbin", 0o644)
        return script

    def sieve_test(self, script, sender, data):
        """sieve-test -e in a fresh home (its vacation and redirect memory starts empty)."""
        self.runs += 1
        home = os.path.join(self.work, f"home{self.runs}")
        os.mkdir(home, 0o755)
        message = os.path.join(self.work, f"msg{self.runs}.eml")
        with open(message, "wb") as f:
            f.write(data)
        os.chmod(message, 0o644)
        conf = os.path.join(self.work, f"dovecot{self.runs}.conf")
        with open(conf, "w") as f:
            f.write(f"mail_home = {home}\nmail_location = maildir:{home}/Maildir\n")
            if os.geteuid() == 0:
                f.write("mail_uid = 65534\nmail_gid = 65534\n")
                os.chown(home, 65534, 65534)
        p = subprocess.run([SIEVE_TEST, "-e", "-c", conf, "-f", sender, "-a", ACCOUNT, "-r", ACCOUNT, script, message],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("final result: success", p.stderr)
        self.assertNotIn("Error:", p.stderr)
        return p.stderr

    def test_actions_agree(self):
        compared, seen = 0, set()
        for config, commands in CONFIGS.items():
            self.filt("rule", "del", ACCOUNT, "--all")
            self.filt("forward", "del", ACCOUNT, "--all")
            self.filt("autoreply", "off", ACCOUNT)
            self.filt("spam", "off", ACCOUNT)
            self.configure(commands)
            script = self.export(re.sub(r"\W+", "-", config))
            for name, sender, data in MESSAGES:
                with self.subTest(config=config, message=name):
                    j = json.loads(self.filt("test", ACCOUNT, "--json", "--sender", sender, stdin=data))
                    expected = mailhost_outcome(j)
                    log = self.sieve_test(script, sender, data)
                    self.assertEqual(sieve_outcome(log), expected,
                                     f"mailhost: step {j['step']} {j['number']} {j['action']} ({j['detail']})\n"
                                     f"sieve-test said:\n{log}")
                    compared += 1
                    seen.add(j["action"] if j["action"] != "autoreply" else f"autoreply, sent={expected['reply']}")
        # The grid is worth something only if it reaches every kind of outcome.
        self.assertEqual(seen, {"deliver", "tag", "discard", "bounce", "forward", "autoreply, sent=True",
                                "autoreply, sent=False"})
        print(f"\nsieve-test agreed with mh-filter test on {compared} config × message pairs", file=sys.stderr)

    def test_exports_compile(self):
        # Quotes, backslashes, globs and every field in one script.
        self.configure([
            ["rule", "add", "--if", 'subject contains say "hi" \\ bye', "--action", "delete"],
            ["rule", "add", "--if", "subject matches a\\*b?*", "--action", "bounce"],
            ["rule", "add", "--if", "header X-Mailer is Foo \"Bar\"", "--action", "delete"],
            ["rule", "add", "--if", "cc matches *@例え.jp", "--action", "delete"],
            ["forward", "add", "--if", "to is a@b.example", "--to", "x@y.example"],
            ["forward", "add", "--to", "z@y.example", "--no-keep"],
            ["forward", "add", "--to", "inert@y.example"],
        ])
        script = self.export("quoting")
        with open(script, encoding="utf-8") as f:
            text = f.read()
        self.assertIn('require ["copy", "reject"];', text)
        self.assertIn('if header :contains "Subject" "say \\"hi\\" \\\\ bye" {', text)
        # A literal backslash in a mailhost glob is "\\" in a Sieve :matches key, "\\\\" quoted.
        self.assertIn('if header :matches "Subject" "a\\\\\\\\*b?*" {', text)
        self.assertIn('anyof(header :matches "Cc" "*@例え.jp", address :all :matches "Cc" "*@例え.jp")', text)
        self.assertIn('  redirect "z@y.example";\n  stop;\n', text)
        self.assertIn("# Inert (after profile 2, which matches all mail); it would read:\n", text)
        self.assertNotIn('\n  redirect :copy "inert@y.example"', text)
        self.assertIn("NFKC", text)
        # The empty config is a valid (do-nothing) script too.
        self.filt("rule", "del", ACCOUNT, "--all")
        self.filt("forward", "del", ACCOUNT, "--all")
        with open(self.export("empty"), encoding="utf-8") as f:
            self.assertNotIn("require", f.read())


if __name__ == "__main__":
    mhtest.main()
