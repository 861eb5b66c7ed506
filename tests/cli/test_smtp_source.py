"""Postfix's smtp-source as load against mh-serve (issue 4): parallel sessions, one or
many messages per connection, 4 KiB and 100 KiB messages. Every
message must land once in every recipient's Maildir, maildirsize must agree with a
fresh recalc, and the log must have one line per transaction."""

import os
import shutil
import subprocess
import unittest

import mhtest
from mhtest_smtp import SmtpTestCase

SMTP_SOURCE = shutil.which("smtp-source") or ("/usr/sbin/smtp-source" if os.path.exists("/usr/sbin/smtp-source")
                                              else None)


@unittest.skipIf(SMTP_SOURCE is None, "smtp-source (package postfix) is not installed")
class SmtpSourceLoad(SmtpTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def load(self, sessions, messages, size, reuse=False):
        args = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size), "-f", "load@remote.test",
                "-t", "alice@example.org", "-M", "client.test"]
        if reuse:
            args.append("-d")  # many messages per connection
        proc = subprocess.run(args + [f"127.0.0.1:{self.port}"], capture_output=True, text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc)
        self.assertEqual(proc.stderr, "", proc)

    def usage(self, address):
        r = self.run_tool("mh-quota", "show", address, "--json")
        self.assertExit(r, 0)
        return r.json()

    def check_consistent(self, address, expected_messages):
        names = os.listdir(self.maildir(address))
        self.assertEqual(len(names), expected_messages)
        before = self.usage(address)
        r = self.run_tool("mh-quota", "recalc", "example.org")
        self.assertExit(r, 0)
        after = self.usage(address)
        self.assertEqual(before, after)
        return names

    def test_eight_sessions_4k(self):
        self.load(sessions=8, messages=200, size=4096)
        names = self.check_consistent("alice@example.org", 200)
        # Each stored message holds the 4 KiB body plus headers; none is truncated.
        sizes = [int(n.split(",S=")[1].split(",")[0]) for n in names]
        self.assertTrue(all(s > 4096 for s in sizes), sizes[:5])
        self.wait_for_log("stored=")
        logged = [l for l in self.log().splitlines() if 'result="250 2.0.0 Ok: queued as' in l]
        self.assertEqual(len(logged), 200)

    def test_connection_reuse_100k(self):
        self.load(sessions=4, messages=40, size=100 * 1024, reuse=True)
        self.check_consistent("alice@example.org", 40)


if __name__ == "__main__":
    mhtest.main()
