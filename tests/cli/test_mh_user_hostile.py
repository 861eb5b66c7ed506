"""Hostile input to mh-user: names built to escape the spool or to impersonate, symlinks
planted inside the spool, malformed YAML. Each is refused with a clear error and the exit
code of SPEC §9, and nothing inside or outside the spool changes."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

ERR = "mh-user: error: "

BAD_NAMES = {
    "../evil": "may contain only",
    "../../../../tmp/evil": "may contain only",
    "a/b": "may contain only",
    "/etc": "may contain only",
    "..": "must not start with a symbol",
    ".": "must not start with a symbol",
    "ctl\x01char": "may contain only",
    "tab\tname": "may contain only",
    "new\nline": "may contain only",
    "a" * 33: "longer than 32 characters",
    "t\u0430naka": "may contain only",  # Cyrillic а in place of Latin a
    "\uff54\uff41\uff52\uff4f": "may contain only",  # full-width ｔａｒｏ
    "taro\u200b": "may contain only",  # zero-width space
    "": "name is empty",
    "test..123": "in a row",
    "-test": "must not start with a symbol",
}

BAD_DOMAINS = {
    "../../etc": "invalid domain",
    "..": "invalid domain",
    "d.jp/../../etc": "invalid domain",
    "d.jp/x": "invalid domain",
    "etc": "at least two labels",
    "d.jp\x01": "control character",
    "127.0.0.1": "numeric",
    "a" * 64 + ".jp": "longer than 63",
}


class Hostile(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("d.jp")
        self.add_account("u@d.jp")
        self.outside = os.path.join(self.tmp, "outside")
        os.mkdir(self.outside)
        with open(os.path.join(self.outside, "precious"), "w") as f:
            f.write("must survive\n")

    def outside_state(self):
        """Names, contents and mtimes of everything outside the spool we planted."""
        state = {}
        for dirpath, dirnames, filenames in os.walk(self.outside):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                content = None if os.path.isdir(p) else self.read_bytes(p)
                state[os.path.relpath(p, self.outside)] = (st.st_mode, st.st_mtime_ns, content)
        return state

    @staticmethod
    def read_bytes(path):
        with open(path, "rb") as f:
            return f.read()

    def assertRefused(self, run, code, *fragments):
        self.assertEqual(run.code, code, repr(run))
        self.assertTrue(run.err.startswith(ERR), repr(run))
        self.assertEqual(run.err.count("\n"), 1, repr(run))
        for f in fragments:
            self.assertIn(f, run.err)

    # Each account command with its options; the address goes last, after "--", so
    # names starting with "-" are operands (SPEC §9).
    ACCOUNT_COMMANDS = [["add", "--password-stdin"], ["add", "--password-stdin", "--exist-ok"],
                        ["passwd", "--password-stdin"], ["del", "--force"], ["show"], ["suspend"],
                        ["resume", "--sending"], ["auth-test"]]

    def test_bad_account_names_are_refused_and_nothing_changes(self):
        before = self.snapshot()
        for name, why in BAD_NAMES.items():
            for command in self.ACCOUNT_COMMANDS:
                with self.subTest(name=name, command=command):
                    r = self.user(*command, "--", name + "@d.jp", stdin="pw\n")
                    self.assertRefused(r, 65, "invalid name", why)
        self.assertEqual(self.snapshot(), before)

    def test_control_characters_are_shown_escaped(self):
        r = self.user("show", "ctl\x01char@d.jp")
        self.assertRefused(r, 65, "invalid name 'ctl\\x01char'")
        r = self.user("show", "new\nline@d.jp")
        self.assertRefused(r, 65, "invalid name 'new\\x0aline'")

    def test_nul_cannot_reach_the_tool_through_argv(self):
        # execve takes C strings: an argument cannot hold NUL, so a name with NUL never
        # reaches mh-user from the command line (LocalPart/Domain parsing of NUL is
        # covered by the unit tests). Python refuses before exec.
        with self.assertRaises(ValueError):
            self.user("show", "a\x00b@d.jp")

    def test_bad_domains_are_refused_and_nothing_changes(self):
        before = self.snapshot()
        for domain, why in BAD_DOMAINS.items():
            for args in (["domain", "add", domain], ["domain", "add", domain, "--exist-ok"],
                         ["domain", "del", domain, "--force"], ["domain", "show", domain], ["list", domain],
                         ["add", "x@" + domain, "--password-stdin"], ["show", "x@" + domain]):
                with self.subTest(domain=domain, args=args):
                    r = self.user(*args, stdin="pw\n")
                    self.assertRefused(r, 65, why)
        self.assertEqual(self.snapshot(), before)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "etc")))

    def test_look_alike_domain_becomes_its_own_punycode_domain(self):
        # Cyrillic е and х: a different domain, stored under its A-label, never d.jp's twin.
        r = self.user("domain", "add", "\u0435\u0445ample.jp", "--json")
        self.assertEqual(r.code, 0, repr(r))
        stored = r.json()["domain"]
        self.assertTrue(stored.startswith("xn--") and stored.endswith(".jp"), stored)
        self.assertEqual(sorted(os.listdir(self.path("domains"))), sorted(["d.jp", stored]))

    def test_32_characters_is_the_limit(self):
        self.add_account("a" * 32 + "@d.jp")
        self.assertRefused(self.user("add", "a" * 33 + "@d.jp", "--password-stdin", stdin="pw\n"), 65)

    def test_symlinked_account_directory_is_refused(self):
        # A copy of a real account lives outside; the spool's entry for it is a symlink.
        real = self.path("domains", "d.jp", "accounts", "u")
        os.rename(real, os.path.join(self.outside, "u"))
        os.symlink(os.path.join(self.outside, "u"), real)
        self.add_mail_outside()
        before, outside_before = self.snapshot(), self.outside_state()
        for args in (["passwd", "u@d.jp", "--password-stdin"], ["passwd", "u@d.jp", "--random-password"],
                     ["del", "u@d.jp"], ["del", "u@d.jp", "--force"], ["show", "u@d.jp"], ["suspend", "u@d.jp"],
                     ["resume", "u@d.jp"], ["auth-test", "u@d.jp"],
                     ["add", "u@d.jp", "--password-stdin"], ["add", "u@d.jp", "--password-stdin", "--exist-ok"]):
            with self.subTest(args=args):
                r = self.user(*args, stdin="secret-pw\n")
                self.assertRefused(r, 1, "refusing to follow symlink planted in the spool", real)
                self.assertNotIn("password", r.out)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.outside_state(), outside_before)

    def add_mail_outside(self):
        with open(os.path.join(self.outside, "u", "Maildir", "new", "1.M1P1.h,S=3"), "w") as f:
            f.write("x\r\n")

    def test_symlinked_account_yaml_is_refused(self):
        cfg = self.path("domains", "d.jp", "accounts", "u", "account.yaml")
        os.unlink(cfg)
        os.symlink(os.path.join(self.outside, "precious"), cfg)
        before, outside_before = self.snapshot(), self.outside_state()
        for args in (["passwd", "u@d.jp", "--password-stdin"], ["suspend", "u@d.jp"], ["show", "u@d.jp"]):
            with self.subTest(args=args):
                self.assertRefused(self.user(*args, stdin="pw\n"), 1, "symlink", cfg)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.outside_state(), outside_before)

    def test_symlinked_accounts_dir_and_domain_dir_are_refused(self):
        accounts = self.path("domains", "d.jp", "accounts")
        os.rename(accounts, os.path.join(self.outside, "accounts"))
        os.symlink(os.path.join(self.outside, "accounts"), accounts)
        os.symlink(self.outside, self.path("domains", "e.jp"))
        before, outside_before = self.snapshot(), self.outside_state()
        for args in (["add", "new@d.jp", "--password-stdin"], ["list", "d.jp"], ["show", "u@d.jp"],
                     ["add", "new@e.jp", "--password-stdin"], ["domain", "del", "e.jp", "--force"],
                     ["domain", "add", "e.jp"]):
            with self.subTest(args=args):
                self.assertRefused(self.user(*args, stdin="pw\n"), 1, "symlink")
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.outside_state(), outside_before)

    def test_symlinked_lock_file_and_lock_dir_are_refused(self):
        lock = self.path("run", "locks", "d.jp.lock")
        if os.path.exists(lock):
            os.unlink(lock)
        os.symlink(os.path.join(self.outside, "precious"), lock)
        outside_before = self.outside_state()
        self.assertRefused(self.user("suspend", "u@d.jp"), 1, lock)
        locks = self.path("run", "locks")
        os.unlink(lock)
        os.rename(locks, os.path.join(self.outside, "locks"))
        os.symlink(os.path.join(self.outside, "locks"), locks)
        outside_before = self.outside_state()
        self.assertRefused(self.user("suspend", "u@d.jp"), 1, "symlink planted in the spool", locks)
        self.assertRefused(self.user("domain", "add", "f.jp"), 1, "symlink planted in the spool", locks)
        self.assertEqual(self.outside_state(), outside_before)
        self.assertFalse(os.path.exists(self.path("domains", "f.jp")))

    def test_malformed_yaml_is_refused_and_left_as_it_is(self):
        cfg = self.path("domains", "d.jp", "accounts", "u", "account.yaml")
        dom = self.path("domains", "d.jp", "domain.yaml")
        cases = [
            (cfg, "password: [unclosed\n", ":2: malformed YAML"),
            (cfg, "state: active\n  sending: active\n", ":2: malformed YAML: illegal map value"),
            (cfg, "state: active\nstat: suspended\n", ":2: key 'stat': unknown key"),
            (cfg, "state: active\nstate: suspended\n", ":2: key 'state': duplicate key"),
            (cfg, "- password\n- state\n", ":1: expected a mapping of keys"),
            (cfg, "sending: maybe\n", ":1: key 'sending': expected 'active' or 'suspended'"),
            (cfg, "quota: lots\n", ":1: key 'quota'"),
            (dom, "quota: {a: 1\n", ":2: malformed YAML"),
            (dom, "quota: 5M\nowner: me\n", ":2: key 'owner': unknown key"),
        ]
        for path, text, message in cases:
            with self.subTest(file=os.path.basename(path), text=text):
                with open(path, "w") as f:
                    f.write(text)
                before = self.snapshot()
                commands = (["show", "u@d.jp"], ["passwd", "u@d.jp", "--password-stdin"], ["suspend", "u@d.jp"],
                            ["resume", "--sending", "u@d.jp"], ["auth-test", "u@d.jp"]) if path == cfg else \
                    (["domain", "show", "d.jp"], ["domain", "list"])
                for args in commands:
                    r = self.user(*args, stdin="pw\n")
                    self.assertRefused(r, 78, path + message)
                self.assertEqual(self.snapshot(), before)
        # The broken domain.yaml does not leak into other domains' commands.
        self.add_domain("ok.jp")
        self.assertEqual(self.user("domain", "show", "ok.jp").code, 0)


if __name__ == "__main__":
    mhtest.main()
