"""SPEC §8 "Disk full": ENOSPC while mh-serve writes a message (Maildir tmp/, queue
tmp/) → 452 4.3.1 Insufficient system storage, nothing half-written left behind,
earlier mail intact, and the same message accepted once space is freed. The spool sits
on a small tmpfs of its own, mounted in a private mount namespace (unshare -m) so
nothing outlives the test; this needs root, and the test says loudly why it skips."""

import os
import shutil
import subprocess
import sys
import unittest

import mhtest
import mhtest_smtp
from mhtest_mail import plain

FULL = "452 4.3.1 Insufficient system storage"


def can_mount_tmpfs():
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    if not shutil.which("unshare"):
        return "unshare(1) not found"
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        return "cannot mount a tmpfs in a private namespace: " + r.stderr.decode(errors="replace").strip()
    return None


REASON = can_mount_tmpfs()


@unittest.skipIf(REASON, f"SKIPPED LOUDLY: disk-full test not run: {REASON}")
class DiskFull(mhtest_smtp.SmtpTestCase):
    """mh-serve runs inside `unshare -m` with the spool bind-moved onto a 2 MiB tmpfs."""

    def setUp(self):
        super().setUp()
        # Build the spool, then start everything in one namespace: a shell copies it onto
        # the tmpfs mounted over the same path and execs mh-serve there.
        self.port = mhtest.free_port()
        self.write_config()
        self.errfile = os.path.join(self.tmp, "mh-serve.err")
        self.ns_root = os.path.join(self.tmp, "ns")
        os.mkdir(self.ns_root)

    def start_on_tmpfs(self):
        script = (f'set -e; cp -a "{self.spool}" "{self.ns_root}/seed"; '
                  f'mount -t tmpfs -o size=2m tmpfs "{self.spool}"; '
                  f'cp -a "{self.ns_root}/seed/." "{self.spool}/"; '
                  f'echo $$ > "{self.ns_root}/pid"; '
                  f'exec "{mhtest_smtp.server_binary()}" --spool "{self.spool}"')
        with open(self.errfile, "wb") as err:
            self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.wait_for_log("listening for smtp", timeout=30)

    def in_ns(self, command):
        """Runs a shell command in mh-serve's mount namespace (where the tmpfs is)."""
        with open(os.path.join(self.ns_root, "pid")) as f:
            pid = f.read().strip()
        r = subprocess.run(["nsenter", "-t", pid, "-m", "sh", "-c", command], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode()

    def send(self, c, sender, rcpt, body):
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd(f"RCPT TO:<{rcpt}>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        return c.cmd(body + "\r\n.")

    def leftovers(self):
        """Files in any tmp/ directory of the spool (Maildirs and the queue)."""
        return self.in_ns(f'cd "{self.spool}" && find . -path "*/tmp/*" -type f')

    def test_full_disk_gives_452_and_leaves_nothing(self):
        self.start_on_tmpfs()
        c = self.session()
        self.assertRegex(self.send(c, "a@remote.test", "alice@example.org", "Subject: early\r\n\r\nkept"),
                         r"^250 2\.0\.0 Ok: queued as ")
        # Fill the file system but for ~100 KB, then send 400 KB.
        self.in_ns(f'avail=$(df -k --output=avail "{self.spool}" | tail -1); '
                   f'dd if=/dev/zero of="{self.spool}/filler" bs=1k count=$((avail - 100)) 2>/dev/null')
        big = "Subject: big\r\n\r\n" + ("y" * 76 + "\r\n") * 5200
        self.assertEqual(self.send(c, "a@remote.test", "alice@example.org", big), FULL)
        self.assertEqual(self.leftovers(), "")
        # Through the queue too: an authenticated relay streams into queue/tmp/.
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret-pw")),
                         "235 2.7.0 Authentication successful")
        self.assertEqual(self.send(c, "alice@example.org", "x@remote.test", big), FULL)
        self.assertEqual(self.leftovers(), "")
        self.assertEqual(self.in_ns(f'ls "{self.spool}/queue" | grep -v "^tmp$" || true'), "")
        # The earlier message is intact; after freeing space the same message goes in.
        self.assertEqual(self.in_ns(f'cat "{self.maildir("alice@example.org")}"/*').count("kept"), 1)
        self.in_ns(f'rm -f "{self.spool}/filler"')
        self.assertRegex(self.send(c, "alice@example.org", "bob@example.org", big), r"^250 2\.0\.0 Ok: queued as ")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(self.in_ns(f'ls "{self.maildir("bob@example.org")}" | wc -l').strip(), "1")
        self.assertIn("452 4.3.1", self.log())


if __name__ == "__main__":
    if REASON:
        print(f"test_disk_full: SKIPPING LOUDLY: {REASON}", file=sys.stderr)
    mhtest.main()
