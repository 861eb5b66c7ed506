"""mh-user run as a real binary: every exit code of SPEC §9 reached on purpose, --json
on every command, common options on either side of the subcommand, idempotent
provisioning, IDN, and the three ways a password gets in (stdin, random, a terminal)."""

import errno
import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

ERR = "mh-user: error: "
ACCOUNT_KEYS = {"password", "display_name", "created", "state", "sending", "quota"}


def only_json_document(run):
    """The one JSON document on stdout; json.loads fails on a second document."""
    return json.loads(run.out)


class UserTestCase(mhtest.SpoolTestCase):
    """A spool with domain d.jp and the account u@d.jp (password 'secret-pw')."""

    def setUp(self):
        super().setUp()
        self.add_domain("d.jp")
        self.add_account("u@d.jp")

    def assertError(self, run, code, *fragments):
        """Exit `code`, stderr exactly one `mh-user: error: …` line holding each fragment."""
        self.assertExit(run, code)
        self.assertTrue(run.err.startswith(ERR), repr(run))
        self.assertEqual(run.err.count("\n"), 1, repr(run))
        for f in fragments:
            self.assertIn(f, run.err)

    def read(self, *parts):
        with open(self.path(*parts), encoding="utf-8") as f:
            return f.read()

    def put_mail(self, local, domain="d.jp"):
        """One delivered message in the account's Maildir/new (as mh-serve would leave it)."""
        p = self.path("domains", domain, "accounts", local, "Maildir", "new", "1700000000.M1P1.host,S=5")
        with open(p, "w") as f:
            f.write("hi\r\n")


class ExitCodes(UserTestCase):
    def test_0_success(self):
        r = self.user("show", "u@d.jp")
        self.assertExit(r, 0)
        self.assertEqual(r.err, "")
        self.assertIn("login name:    u@d.jp\n", r.out)
        self.assertIn("POP3 server:   pop.d.jp\n", r.out)
        self.assertIn("SMTP server:   smtp.d.jp\n", r.out)
        self.assertExit(self.user("--version"), 0)

    def test_64_unknown_option_before_and_after_subcommand(self):
        self.assertError(self.user("--no-such-option", "list"), 64, "--no-such-option", "mh-user --help")
        self.assertError(self.user("list", "--no-such-option"), 64, "--no-such-option")

    def test_64_missing_operand_and_missing_subcommand(self):
        self.assertError(self.user("add"), 64, "address is required")
        self.assertError(self.user("domain", "add"), 64, "domain is required")
        self.assertError(self.user(), 64)
        self.assertError(self.user("domain"), 64)

    def test_64_password_as_positional_argument_is_refused(self):
        before = self.snapshot()
        # The stray operand is most likely a password: refused, and never echoed back.
        for cmd in ("add", "passwd"):
            r = self.user(cmd, "u@d.jp", "s3cret-typed")
            self.assertError(r, 64, "passwords are never accepted as arguments", "--password-stdin")
            self.assertNotIn("s3cret-typed", r.err + r.out)
        self.assertEqual(self.snapshot(), before)

    def test_65_bad_name(self):
        self.assertError(self.user("add", "test..123@d.jp", "--password-stdin", stdin="x\n"), 65,
                         "invalid name 'test..123'", "two of '.' and '-' in a row")
        self.assertError(self.user("domain", "add", "bad_domain"), 65, "invalid domain 'bad_domain'")
        self.assertError(self.user("show", "no-at-sign"), 65, "expected name@domain")

    def test_67_no_such_account(self):
        for args in (["show", "x@d.jp"], ["del", "x@d.jp"], ["suspend", "x@d.jp"], ["resume", "x@d.jp"],
                     ["passwd", "x@d.jp", "--password-stdin"], ["auth-test", "x@d.jp"]):
            with self.subTest(args=args):
                self.assertError(self.user(*args, stdin="pw\n"), 67, "no such account: x@d.jp")

    def test_68_no_such_domain(self):
        for args in (["add", "x@e.jp", "--password-stdin"], ["show", "x@e.jp"], ["list", "e.jp"],
                     ["domain", "show", "e.jp"], ["domain", "del", "e.jp"], ["passwd", "x@e.jp", "--password-stdin"]):
            with self.subTest(args=args):
                self.assertError(self.user(*args, stdin="pw\n"), 68, "no such domain: e.jp")

    def test_73_already_exists(self):
        self.assertError(self.user("domain", "add", "d.jp"), 73, "domain d.jp already exists")
        self.assertError(self.user("add", "u@d.jp", "--password-stdin", stdin="pw\n"), 73,
                         "account u@d.jp already exists")

    def test_73_account_name_held_by_a_list(self):
        os.makedirs(self.path("domains", "d.jp", "lists", "info"))
        before = self.snapshot()
        r = self.user("add", "info@d.jp", "--password-stdin", stdin="pw\n")
        self.assertError(r, 73, "mailing list info@d.jp")
        self.assertEqual(self.snapshot(), before)
        # --exist-ok means "an account exists", never "a list exists".
        self.assertError(self.user("add", "info@d.jp", "--password-stdin", "--exist-ok", stdin="pw\n"), 73)

    def test_75_domain_lock_held(self):
        lock = self.path("run", "locks", "d.jp.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            env = {"MH_LOCK_TIMEOUT": "0.5"}
            before = self.snapshot()
            start = time.monotonic()
            r = self.user("suspend", "u@d.jp", env=env)
            waited = time.monotonic() - start
            self.assertError(r, 75, "spool is busy", "d.jp.lock", "try again")
            self.assertGreaterEqual(waited, 0.45)
            self.assertLess(waited, 8)
            self.assertError(self.user("add", "v@d.jp", "--password-stdin", stdin="pw\n", env=env), 75)
            self.assertEqual(self.snapshot(), before)
        finally:
            os.close(fd)
        self.assertExit(self.user("suspend", "u@d.jp"), 0)

    def test_77_spool_not_writable(self):
        before = self.snapshot()
        if os.geteuid() == 0:
            # Root would act as the spool owner (root here), so run as nobody, who may read
            # but not write the spool.
            os.chmod(self.tmp, 0o755)
            subprocess.run(["chmod", "-R", "o+rX", self.spool], check=True)
            r = self.as_nobody("passwd", "u@d.jp", "--password-stdin", stdin="new-pw\n")
        else:
            account = self.path("domains", "d.jp", "accounts", "u")
            os.chmod(account, 0o555)
            try:
                r = self.user("passwd", "u@d.jp", "--password-stdin", stdin="new-pw\n")
            finally:
                os.chmod(account, 0o750)  # before tearDown, or rmtree could not empty it
        self.assertError(r, 77, "Permission denied")
        self.assertEqual(self.snapshot(), before)
        self.assertExit(self.user("auth-test", "u@d.jp", stdin="secret-pw\n"), 0)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run mh-user as another user (nobody)")
    def test_77_not_68_when_the_spool_cannot_be_searched(self):
        # A domain the caller may not even look at is a permission problem, not "no such domain".
        os.chmod(self.tmp, 0o755)
        os.chmod(self.spool, 0o755)
        r = self.as_nobody("add", "n@d.jp", "--password-stdin", stdin="pw\n")
        self.assertError(r, 77, "Permission denied")

    def test_1_planted_symlink(self):
        outside = os.path.join(self.tmp, "outside")
        os.mkdir(outside)
        os.symlink(outside, self.path("domains", "d.jp", "accounts", "evil"))
        self.assertError(self.user("show", "evil@d.jp"), 1, "symlink planted in the spool")

    def test_78_account_yaml_unknown_key(self):
        f = self.path("domains", "d.jp", "accounts", "u", "account.yaml")
        with open(f, "a") as fh:
            fh.write("pasword: typo\n")
        lines = self.read(f).count("\n")
        r = self.user("show", "u@d.jp")
        self.assertError(r, 78, f"{f}:{lines}: key 'pasword': unknown key")

    def test_78_account_yaml_malformed(self):
        f = self.path("domains", "d.jp", "accounts", "u", "account.yaml")
        with open(f, "w") as fh:
            fh.write("state: active\nsending: [active\n")
        self.assertError(self.user("suspend", "u@d.jp"), 78, f"{f}:", "malformed YAML")
        with open(f, "w") as fh:
            fh.write("state: active\nstate: suspended\n")
        self.assertError(self.user("show", "u@d.jp"), 78, f"{f}:2: key 'state': duplicate key")

    def test_78_domain_yaml_bad_value_and_unknown_key(self):
        f = self.path("domains", "d.jp", "domain.yaml")
        with open(f, "w") as fh:
            fh.write("created: 2024-01-01T00:00:00Z\nstate: paused\n")
        self.assertError(self.user("domain", "show", "d.jp"), 78,
                         f"{f}:2: key 'state': expected 'active' or 'suspended', got 'paused'")
        with open(f, "w") as fh:
            fh.write("quotta: 5M\n")
        self.assertError(self.user("domain", "list"), 78, f"{f}:1: key 'quotta': unknown key")

    def test_1_delete_account_holding_mail_needs_force(self):
        self.put_mail("u")
        before = self.snapshot()
        self.assertError(self.user("del", "u@d.jp"), 1, "u@d.jp still holds mail", "--force")
        self.assertEqual(self.snapshot(), before)
        self.assertExit(self.user("del", "u@d.jp", "--force"), 0)
        self.assertFalse(os.path.lexists(self.path("domains", "d.jp", "accounts", "u")))
        self.assertError(self.user("show", "u@d.jp"), 67)

    def test_1_delete_domain_holding_mail_needs_force(self):
        self.put_mail("u")
        before = self.snapshot()
        self.assertError(self.user("domain", "del", "d.jp"), 1, "d.jp still holds mail", "u@d.jp", "--force")
        self.assertEqual(self.snapshot(), before)
        self.assertExit(self.user("domain", "del", "d.jp", "--force"), 0)
        self.assertEqual(os.listdir(self.path("domains")), [])
        self.assertError(self.user("domain", "show", "d.jp"), 68)

    def test_delete_without_mail_needs_no_force(self):
        self.add_account("empty@d.jp")
        self.assertExit(self.user("del", "empty@d.jp"), 0)
        self.assertExit(self.user("domain", "add", "e.jp"), 0)
        self.assertExit(self.user("domain", "del", "e.jp"), 0)

    def test_1_failed_auth_test(self):
        r = self.user("auth-test", "u@d.jp", stdin="wrong-pw\n")
        self.assertExit(r, 1)
        self.assertEqual(r.out, "failed: u@d.jp: password does not match\n")
        self.assertExit(self.user("suspend", "u@d.jp"), 0)
        r = self.user("auth-test", "u@d.jp", stdin="secret-pw\n")
        self.assertExit(r, 1)
        self.assertIn("account is suspended", r.out)

    def as_nobody(self, *args, stdin=None):
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               mhtest.tool_path("mh-user"), "--spool", self.spool, *args]
        return mhtest.Run(subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60))


class JsonOutput(UserTestCase):
    def test_every_command_prints_one_json_document(self):
        def j(*args, stdin="pw-1\n", code=0):
            r = self.user(*args, "--json", stdin=stdin)
            self.assertExit(r, code)
            return only_json_document(r)

        self.assertEqual(j("domain", "add", "e.jp"), {"domain": "e.jp", "unicode": "e.jp", "created": True})
        self.assertEqual([d["domain"] for d in j("domain", "list")["domains"]], ["d.jp", "e.jp"])
        self.assertEqual(j("domain", "list", "--names")["domains"], ["d.jp", "e.jp"])
        shown = j("domain", "show", "d.jp")
        self.assertEqual((shown["accounts"], shown["pop_server"], shown["smtp_server"]), (["u"], "pop.d.jp", "smtp.d.jp"))
        self.assertEqual(j("add", "v@e.jp", "--password-stdin"), {"address": "v@e.jp", "created": True})
        self.assertEqual(j("passwd", "v@e.jp", "--password-stdin"), {"address": "v@e.jp", "changed": True})
        self.assertEqual(sorted(a["address"] for a in j("list")["accounts"]), ["u@d.jp", "v@e.jp"])
        self.assertEqual(j("list", "e.jp", "--names")["accounts"], ["v@e.jp"])
        show = j("show", "v@e.jp")
        self.assertEqual((show["login"], show["pop_server"], show["state"]), ("v@e.jp", "pop.e.jp", "active"))
        self.assertEqual(j("suspend", "v@e.jp")["state"], "suspended")
        self.assertEqual(j("resume", "v@e.jp")["state"], "active")
        s = j("suspend", "v@e.jp", "--sending", "--reason", "rate")
        self.assertEqual((s["sending"], s["sending_reason"]), ("suspended", "rate"))
        self.assertEqual(j("resume", "v@e.jp", "--sending")["sending"], "active")
        self.assertEqual(j("auth-test", "v@e.jp"), {"address": "v@e.jp", "ok": True})
        self.assertEqual(j("auth-test", "v@e.jp", stdin="nope\n", code=1),
                         {"address": "v@e.jp", "ok": False, "reason": "password does not match"})
        self.assertEqual(j("del", "v@e.jp"), {"address": "v@e.jp", "deleted": True})
        self.assertEqual(j("domain", "del", "e.jp"), {"domain": "e.jp", "deleted": True})

    def test_errors_are_one_json_document_too(self):
        cases = [(["show", "x@d.jp"], 67), (["show", "x@e.jp"], 68), (["add", "-bad@d.jp"], 64),
                 (["--", "add", "-bad@d.jp"], 64), (["show", "--", "-bad@d.jp"], 65),
                 (["domain", "add", "d.jp"], 73), (["add", "a@d.jp", "secret"], 64), (["nonsense"], 64)]
        for args, code in cases:
            with self.subTest(args=args):
                r = self.user("--json", *args)  # in front: after "--" it would be an operand
                self.assertExit(r, code)
                doc = only_json_document(r)
                self.assertEqual(set(doc), {"error"})
                self.assertEqual(doc["error"]["code"], code)
                self.assertEqual(ERR + doc["error"]["message"] + "\n", r.err)

    def test_common_options_before_and_after_the_subcommand(self):
        elsewhere = os.path.join(self.tmp, "other")
        os.mkdir(elsewhere)
        env = {"MH_SPOOL": os.path.join(self.tmp, "not-this-one")}
        runs = [
            self.user("--spool", elsewhere, "domain", "add", "x.jp", "--json", env=env),
            self.user("--spool", elsewhere, "add", "a@x.jp", "--json", "--password-stdin", stdin="pw\n", env=env),
            self.user("add", "b@x.jp", "--spool", elsewhere, "--password-stdin", stdin="pw\n", env=env),
            self.user("--json", "add", "c@x.jp", "--password-stdin", "--spool", elsewhere, stdin="pw\n", env=env),
        ]
        for r in runs:
            self.assertExit(r, 0)
        self.assertEqual(only_json_document(runs[0])["domain"], "x.jp")
        self.assertEqual(only_json_document(runs[1])["address"], "a@x.jp")
        self.assertEqual(runs[2].out, "account b@x.jp added\n")
        self.assertEqual(only_json_document(runs[3])["address"], "c@x.jp")
        self.assertEqual(sorted(os.listdir(os.path.join(elsewhere, "domains", "x.jp", "accounts"))), ["a", "b", "c"])
        self.assertFalse(os.path.exists(env["MH_SPOOL"]))
        r = self.user("list", "--names", "--spool", elsewhere, "--json")
        self.assertEqual(only_json_document(r)["accounts"], ["a@x.jp", "b@x.jp", "c@x.jp"])

    def test_quiet_prints_nothing_but_errors(self):
        r = self.user("-q", "domain", "add", "q.jp")
        self.assertEqual((r.code, r.out, r.err), (0, "", ""))
        r = self.user("domain", "add", "q.jp", "--quiet")
        self.assertError(r, 73)
        self.assertEqual(r.out, "")


class Provisioning(UserTestCase):
    def test_exist_ok_is_idempotent(self):
        before = self.snapshot()
        r = self.user("domain", "add", "d.jp", "--exist-ok", "--json")
        self.assertExit(r, 0)
        self.assertEqual(only_json_document(r)["created"], False)
        r = self.user("add", "u@d.jp", "--exist-ok", "--password-stdin", "--json", stdin="other-pw\n")
        self.assertExit(r, 0)
        self.assertEqual(only_json_document(r), {"address": "u@d.jp", "created": False})
        self.assertEqual(self.snapshot(), before)  # password kept, nothing rewritten
        self.assertExit(self.user("auth-test", "u@d.jp", stdin="secret-pw\n"), 0)
        r = self.user("add", "new@d.jp", "--exist-ok", "--password-stdin", "--json", stdin="pw\n")
        self.assertEqual(only_json_document(r)["created"], True)

    def test_idn_domain_is_stored_as_punycode(self):
        r = self.user("domain", "add", "例え.jp", "--json")
        self.assertExit(r, 0)
        self.assertEqual(only_json_document(r), {"domain": "xn--r8jz45g.jp", "unicode": "例え.jp", "created": True})
        self.assertTrue(os.path.isfile(self.path("domains", "xn--r8jz45g.jp", "domain.yaml")))
        self.add_account("taro@例え.jp")
        self.assertTrue(os.path.isdir(self.path("domains", "xn--r8jz45g.jp", "accounts", "taro", "Maildir", "new")))
        r = self.user("show", "TARO@XN--R8JZ45G.JP", "--json")
        self.assertEqual(only_json_document(r)["address"], "taro@xn--r8jz45g.jp")
        self.assertError(self.user("domain", "add", "xn--r8jz45g.jp"), 73)

    def test_upper_case_is_folded(self):
        self.add_account("Taro.Yamada@D.JP")
        self.assertTrue(os.path.isdir(self.path("domains", "d.jp", "accounts", "taro.yamada")))
        self.assertError(self.user("add", "TARO.YAMADA@d.jp", "--password-stdin", stdin="pw\n"), 73)
        self.assertExit(self.user("domain", "add", "UPPER.Example.JP"), 0)
        self.assertTrue(os.path.isdir(self.path("domains", "upper.example.jp")))

    def test_new_files_are_complete(self):
        self.add_account("full@d.jp", "pw", "--name", "山田 太郎", "--quota", "100M")
        acc = mhtest.parse_flat_yaml(self.read("domains", "d.jp", "accounts", "full", "account.yaml"))
        self.assertEqual(set(acc), ACCOUNT_KEYS)
        self.assertTrue(acc["password"].startswith("$y$"), acc)
        self.assertEqual(acc["display_name"], "山田 太郎")
        show = only_json_document(self.user("show", "full@d.jp", "--json"))
        self.assertEqual((show["quota"], show["display_name"]), (100 * 1024 * 1024, "山田 太郎"))
        dom = mhtest.parse_flat_yaml(self.read("domains", "d.jp", "domain.yaml"))
        self.assertEqual(set(dom), {"created", "state", "quota"})


def read_pty(fd, deadline):
    """Whatever the child wrote next (b"" once it has exited)."""
    ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    if not ready:
        raise TimeoutError("no output from the child on its terminal")
    try:
        return os.read(fd, 4096)
    except OSError as e:  # Linux: EIO on the master once the slave side is closed
        if e.errno == errno.EIO:
            return b""
        raise


def run_in_pty(argv, env, answers, timeout=30):
    """Runs argv on a new pseudo-terminal; for each (prompt, text) waits for the prompt,
    checks echo is off, types text + Enter. Returns (exit code, all terminal output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        for prompt, text in answers:
            while prompt.encode() not in out[seen:]:
                chunk = read_pty(fd, deadline)
                if not chunk:
                    raise AssertionError(f"exited before prompting {prompt!r}: {out!r}")
                out += chunk
            seen = out.index(prompt.encode(), seen) + len(prompt)
            # Echo must be off before the prompt shows, or what is typed right away is
            # echoed (and flushed by the switch to no-echo).
            if termios.tcgetattr(fd)[3] & termios.ECHO:
                raise AssertionError(f"prompt {prompt!r} shown while echo is still on")
            os.write(fd, text.encode() + b"\n")
        while chunk := read_pty(fd, deadline):
            out += chunk
        _, status = os.waitpid(pid, 0)
        pid = 0
        return os.waitstatus_to_exitcode(status), out.decode()
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


class Passwords(UserTestCase):
    def assertNotStored(self, password):
        """The clear password appears in no file of the spool (hashes only)."""
        for rel, content in self.snapshot().items():
            if isinstance(content, bytes):
                self.assertNotIn(password.encode(), content, rel)

    def test_password_stdin_then_auth_test(self):
        self.add_account("s@d.jp", "Correct Horse 42")
        self.assertExit(self.user("auth-test", "s@d.jp", stdin="Correct Horse 42\n"), 0)
        self.assertExit(self.user("auth-test", "s@d.jp", stdin="correct horse 42\n"), 1)
        self.assertExit(self.user("passwd", "s@d.jp", "--password-stdin", stdin="Battery Staple 7\n"), 0)
        self.assertExit(self.user("auth-test", "s@d.jp", stdin="Correct Horse 42\n"), 1)
        self.assertExit(self.user("auth-test", "s@d.jp", stdin="Battery Staple 7\n"), 0)
        self.assertNotStored("Correct Horse 42")
        self.assertNotStored("Battery Staple 7")

    def test_empty_password_on_stdin_is_refused(self):
        self.assertError(self.user("add", "e@d.jp", "--password-stdin", stdin="\n"), 64, "empty password")
        self.assertFalse(os.path.exists(self.path("domains", "d.jp", "accounts", "e")))

    def test_random_password_is_printed_once_and_verifies(self):
        r = self.user("add", "r@d.jp", "--random-password")
        self.assertExit(r, 0)
        lines = [l for l in r.out.splitlines() if l.startswith("password: ")]
        self.assertEqual(len(lines), 1, r.out)
        pw = lines[0][len("password: "):]
        self.assertGreaterEqual(len(pw), 12)
        self.assertEqual(r.out.count(pw), 1)
        self.assertNotIn(pw, r.err)
        self.assertExit(self.user("auth-test", "r@d.jp", stdin=pw + "\n"), 0)
        self.assertNotStored(pw)
        r = self.user("passwd", "r@d.jp", "--random-password", "--json")
        pw2 = only_json_document(r)["password"]
        self.assertNotEqual(pw, pw2)
        self.assertExit(self.user("auth-test", "r@d.jp", stdin=pw2 + "\n"), 0)
        self.assertExit(self.user("auth-test", "r@d.jp", stdin=pw + "\n"), 1)
        self.assertError(self.user("add", "x@d.jp", "--random-password", "--password-stdin"), 64, "excludes")

    def pty_env(self):
        env = dict(os.environ, MH_SPOOL=self.spool)
        return env

    def test_password_typed_twice_on_a_terminal(self):
        pw = "Typed On A TTY 9"
        code, out = run_in_pty([mhtest.tool_path("mh-user"), "add", "t@d.jp"], self.pty_env(),
                               [("New password: ", pw), ("Retype new password: ", pw)])
        self.assertEqual(code, 0, out)
        self.assertIn("account t@d.jp added", out)
        self.assertNotIn(pw, out)  # echo was off
        self.assertExit(self.user("auth-test", "t@d.jp", stdin=pw + "\n"), 0)
        pw2 = "Changed On A TTY 8"
        code, out = run_in_pty([mhtest.tool_path("mh-user"), "passwd", "t@d.jp"], self.pty_env(),
                               [("New password: ", pw2), ("Retype new password: ", pw2)])
        self.assertEqual(code, 0, out)
        self.assertIn("password of t@d.jp changed", out)
        self.assertExit(self.user("auth-test", "t@d.jp", stdin=pw2 + "\n"), 0)
        self.assertExit(self.user("auth-test", "t@d.jp", stdin=pw + "\n"), 1)
        # auth-test asks on the terminal when stdin is one.
        code, out = run_in_pty([mhtest.tool_path("mh-user"), "auth-test", "t@d.jp"], self.pty_env(),
                               [("Password: ", pw2)])
        self.assertEqual(code, 0, out)
        self.assertNotStored(pw)
        self.assertNotStored(pw2)

    def test_terminal_mismatch_is_an_error(self):
        before = self.snapshot()
        code, out = run_in_pty([mhtest.tool_path("mh-user"), "add", "m@d.jp"], self.pty_env(),
                               [("New password: ", "one thing"), ("Retype new password: ", "another")])
        self.assertEqual(code, 64, out)
        self.assertIn(ERR + "passwords do not match", out)
        code, out = run_in_pty([mhtest.tool_path("mh-user"), "passwd", "u@d.jp"], self.pty_env(),
                               [("New password: ", "one thing"), ("Retype new password: ", "another")])
        self.assertEqual(code, 64, out)
        self.assertEqual(self.snapshot(), before)
        self.assertExit(self.user("auth-test", "u@d.jp", stdin="secret-pw\n"), 0)

    def test_no_terminal_and_no_option_names_password_stdin(self):
        # start_new_session: no controlling terminal, even when the test runs in one.
        before = self.snapshot()
        for args in (["add", "n@d.jp"], ["passwd", "u@d.jp"]):
            proc = subprocess.run([mhtest.tool_path("mh-user"), *args], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, env=self.pty_env(), start_new_session=True)
            r = mhtest.Run(proc)
            self.assertError(r, 64, "--password-stdin")
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    mhtest.main()
