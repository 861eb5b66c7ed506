"""SPEC §8 "Spool files are bounded and strict", from the outside: malformed spool YAML
(an unclosed quote at the end, invalid UTF-8, a 100 MB file) makes the tools exit 78
naming file and line, fast and without aborting; command-line text that is not UTF-8 or
is over-long exits 65; an mh-purge --uid that is not UIDL syntax exits 65. In every case
the spool is left exactly as it was."""

import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

SURROGATE = b"\xed\xa0\x80"  # U+D800 as CESU-8: what os.fsencode makes of a lone surrogate


class StrictInput(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("d.jp")
        self.add_account("u@d.jp")
        self.cfg = self.path("domains", "d.jp", "accounts", "u", "account.yaml")

    def run_raw(self, tool, *args):
        """Runs a tool with str or bytes arguments; the output must be UTF-8 whatever we passed."""
        env = dict(os.environ, MH_SPOOL=self.spool)
        proc = subprocess.run([mhtest.tool_path(tool), *args], capture_output=True, env=env, timeout=120)
        self.assertGreaterEqual(proc.returncode, 0, f"{tool} died of signal {-proc.returncode}: {proc!r}")
        return mhtest.Run(subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                                      proc.stderr.decode()))

    def write_cfg(self, data):
        with open(self.cfg, "wb") as fh:
            fh.write(data)

    def assertRefused(self, run, code, *fragments):
        self.assertExit(run, code)
        for f in fragments:
            self.assertIn(f, run.err)

    # --- spool files ---

    def test_unclosed_quote_at_end_of_account_yaml_is_malformed(self):
        with open(self.cfg, "rb") as fh:
            good = fh.read()
        for quote in (b'"', b"'"):
            with self.subTest(quote=quote):
                lines = good.count(b"\n")
                # With the line break: yaml-cpp refuses a quote open at the last byte itself.
                self.write_cfg(good + b"sending_reason: " + quote + b"Alice\n")
                before = self.snapshot()
                self.assertRefused(self.user("show", "u@d.jp"), 78, f"mh-user: error: {self.cfg}:{lines + 1}: "
                                   f"malformed YAML: quoted string not closed (no {quote.decode()} before the end")
                # A rewrite would have made yaml-cpp's repair permanent: refused, nothing touched.
                self.assertRefused(self.user("suspend", "u@d.jp"), 78, f"{self.cfg}:{lines + 1}:")
                self.assertEqual(self.snapshot(), before)
        # The same file with the quote closed is fine.
        self.write_cfg(good + b"sending_reason: 'Alice'\n")
        self.assertEqual(self.user("show", "u@d.jp", "--json").json()["sending_reason"], "Alice")

    def test_invalid_utf8_in_a_key_exits_78_and_never_aborts(self):
        with open(self.cfg, "rb") as fh:
            good = fh.read()
        self.write_cfg(good.replace(b"created:", b"cre\x81ated:", 1))
        line = good[:good.index(b"created:")].count(b"\n") + 1
        before = self.snapshot()
        for args in (("show", "u@d.jp"), ("--json", "show", "u@d.jp"), ("list", "d.jp", "--json")):
            with self.subTest(args=args):
                r = self.run_raw("mh-user", *args)
                self.assertRefused(r, 78, f"{self.cfg}:{line}: invalid UTF-8 (byte 0x81 in column 4)")
                if "--json" in args:
                    self.assertEqual(json.loads(r.out)["error"]["code"], 78)
        self.assertEqual(self.snapshot(), before)

    def test_a_100_mb_account_yaml_fails_fast_and_small(self):
        with open(self.cfg, "r+b") as fh:
            fh.truncate(100 * 1024 * 1024)  # sparse: cheap to make, costly to read
        st = os.stat(self.cfg)  # 100 MB: compared by identity, not content
        start = time.monotonic()
        r = self.user("show", "u@d.jp")
        elapsed = time.monotonic() - start
        self.assertRefused(r, 78, f"mh-user: error: {self.cfg}: too large (104857600 bytes, limit 1 MiB)")
        # It used to take 12-15 s and 733 MB; now one fstat. Generous bounds for a loaded,
        # sanitized build.
        self.assertLess(elapsed, 5.0)
        self.assertLess(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 300 * 1024)  # KiB
        st2 = os.stat(self.cfg)
        self.assertEqual((st.st_size, st.st_mtime_ns, st.st_ino), (st2.st_size, st2.st_mtime_ns, st2.st_ino))

    def test_a_file_just_over_1_mib_is_refused_and_domain_yaml_too(self):
        dom = self.path("domains", "d.jp", "domain.yaml")
        with open(dom, "ab") as fh:
            fh.write(b"#" + b"x" * (1024 * 1024) + b"\n")
        size = os.path.getsize(dom)
        self.assertRefused(self.user("domain", "show", "d.jp"), 78, f"{dom}: too large ({size} bytes, limit 1 MiB)")

    # --- command-line text ---

    def test_name_that_is_not_utf8_is_65_and_nothing_is_created(self):
        before = self.snapshot()
        for name in (SURROGATE, b"caf\xe9", b"\xc0\xaf", b"\xf4\x90\x80\x80"):
            with self.subTest(name=name):
                r = self.run_raw("mh-user", "add", "x@d.jp", "--random-password", "--name", name)
                self.assertRefused(r, 65, "mh-user: error: argument 5 (after --name) is not valid UTF-8")
                r = self.run_raw("mh-user", "add", "x@d.jp", "--random-password", b"--name=" + name, "--json")
                self.assertRefused(r, 65, "(the value of --name) is not valid UTF-8")
                self.assertEqual(json.loads(r.out)["error"]["code"], 65)
        self.assertEqual(self.snapshot(), before)

    def test_every_tool_refuses_non_utf8_arguments(self):
        before = self.snapshot()
        for tool, args in (("mh-quota", ["show", b"d\xff.jp"]), ("mh-list", ["create", b"l\xff@d.jp"]),
                           ("mh-filter", ["show", b"u\xff@d.jp"]), ("mh-purge", [b"u\xff@d.jp", "--everything"]),
                           ("mh-user", ["suspend", "u@d.jp", "--sending", "--reason", SURROGATE])):
            with self.subTest(tool=tool):
                self.assertRefused(self.run_raw(tool, *args), 65, f"{tool}: error: argument ", "is not valid UTF-8")
        self.assertEqual(self.snapshot(), before)

    def test_free_text_over_256_characters_is_65(self):
        before = self.snapshot()
        r = self.user("add", "x@d.jp", "--random-password", "--name", "A" * 120000)
        self.assertRefused(r, 65, "mh-user: error: --name is longer than 256 characters (120000)")
        r = self.user("add", "x@d.jp", "--random-password", "--name", "山" * 257)
        self.assertRefused(r, 65, "--name is longer than 256 characters (257)")
        r = self.user("add", "x@d.jp", "--random-password", "--name", "line\nbreak")
        self.assertRefused(r, 65, "--name contains a control character")
        r = self.user("suspend", "u@d.jp", "--sending", "--reason", "r" * 257)
        self.assertRefused(r, 65, "--reason is longer than 256 characters (257)")
        r = self.user("suspend", "u@d.jp", "--sending", "--reason", "spam\r\n250 ok")
        self.assertRefused(r, 65, "--reason contains a control character")
        self.assertEqual(self.snapshot(), before)
        # 256 characters (768 bytes) is the most, and is stored as given.
        self.assertExit(self.user("add", "x@d.jp", "--random-password", "--name", "山" * 256), 0)
        self.assertEqual(self.user("show", "x@d.jp", "--json").json()["display_name"], "山" * 256)

    # --- mh-purge --uid ---

    def test_purge_uid_that_is_not_uidl_syntax_is_65_and_nothing_is_removed(self):
        maildir = self.path("domains", "d.jp", "accounts", "u", "Maildir")
        with open(os.path.join(maildir, "new", "1700000000.M1P1Q1.test,S=5"), "wb") as fh:
            fh.write(b"x: y\n")
        # What "../../x" would reach from Maildir/new, were it ever joined to a path.
        with open(self.path("domains", "d.jp", "accounts", "u", "x"), "wb") as fh:
            fh.write(b"bait\n")
        before = self.snapshot()
        for uid in ("../../x", "a/b", "x..y", "..", "/etc/passwd", "a" * 71, "a b", "1:2", "\x1b[2J"):
            with self.subTest(uid=uid):
                r = self.run_tool("mh-purge", "u@d.jp", "--uid", uid)
                self.assertExit(r, 65)
                self.assertIn("mh-purge: error: invalid UIDL", r.err)
                self.assertIn("a UIDL is 1-70 characters 0x21-0x7E without ',', ':', '/' or '..'", r.err)
                self.assertNotIn("\x1b", r.err)
        self.assertIn("invalid UIDL '../../x':", self.run_tool("mh-purge", "u@d.jp", "--uid", "../../x").err)
        self.assertEqual(self.snapshot(), before)
        # A real UIDL (dots, but never two in a row) still works.
        r = self.run_tool("mh-purge", "u@d.jp", "--uid", "1700000000.M1P1Q1.test")
        self.assertExit(r, 0)
        self.assertEqual(os.listdir(os.path.join(maildir, "new")), [])


if __name__ == "__main__":
    mhtest.main()
