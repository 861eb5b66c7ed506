"""mh-user run as root on a spool owned by an unprivileged user acts as that user (SPEC §2):
every file and directory it creates, lock files included, belongs to the spool owner and
nothing in the spool is open to other users. Needs root; skipped otherwise."""

import os
import pwd
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

OWNER = "mhtestowner"


def ensure_system_user(name):
    """The unprivileged test user, created once (useradd exit 9 = someone else just did)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
        if r.returncode not in (0, 9):
            raise RuntimeError(f"useradd {name} failed: {r.stderr}")
        return pwd.getpwnam(name)


@unittest.skipUnless(os.geteuid() == 0, "needs root: checks that mh-user run as root acts as the spool owner")
class SpoolOwnership(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.owner = ensure_system_user(OWNER)
        os.chmod(self.tmp, 0o755)  # the owner must reach the spool through the temp dir
        os.chown(self.spool, self.owner.pw_uid, self.owner.pw_gid)
        os.chmod(self.spool, 0o750)

    def assertAllOwnedBySpoolOwner(self):
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.spool):
            for name in [""] + dirnames + filenames:
                p = os.path.join(dirpath, name) if name else dirpath
                st = os.lstat(p)
                rel = os.path.relpath(p, self.spool)
                self.assertEqual((st.st_uid, st.st_gid), (self.owner.pw_uid, self.owner.pw_gid),
                                 f"{rel} is owned by {st.st_uid}:{st.st_gid}")
                self.assertEqual(stat.S_IMODE(st.st_mode) & 0o007, 0, f"{rel} is open to others: {oct(st.st_mode)}")
                seen += 1
        return seen

    def test_files_created_as_root_belong_to_the_spool_owner(self):
        self.add_domain("own.jp")
        self.add_domain("例え.jp")
        self.add_account("a@own.jp")
        self.add_account("b@own.jp", "pw", "--quota", "10M")
        self.add_account("c@例え.jp")
        for args in (["passwd", "a@own.jp", "--password-stdin"], ["suspend", "a@own.jp"],
                     ["suspend", "--sending", "b@own.jp"], ["resume", "a@own.jp"], ["del", "b@own.jp"],
                     ["add", "r@own.jp", "--random-password"]):
            self.assertExit(self.user(*args, stdin="new-pw\n"), 0)
        self.assertExit(self.user("auth-test", "a@own.jp", stdin="new-pw\n"), 0)

        self.assertGreater(self.assertAllOwnedBySpoolOwner(), 20)
        locks = os.listdir(self.path("run", "locks"))
        self.assertIn("own.jp.lock", locks)
        self.assertIn("spool.lock", locks)
        for d in ("Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
            self.assertTrue(os.path.isdir(self.path("domains", "own.jp", "accounts", "a", d)), d)

    def test_root_really_drops_to_the_owner(self):
        # A directory only root could write: a tool still running as root would succeed.
        self.add_domain("own.jp")
        self.add_account("a@own.jp")
        account = self.path("domains", "own.jp", "accounts", "a")
        os.chown(account, 0, 0)
        os.chmod(account, 0o700)
        before = self.snapshot()
        r = self.user("passwd", "a@own.jp", "--password-stdin", stdin="new-pw\n")
        self.assertExit(r, 77)
        self.assertTrue(r.err.startswith("mh-user: error: "), r.err)
        self.assertIn("Permission denied", r.err)
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    mhtest.main()
