"""Crash consistency of quota (SPEC §8, issue 13 item 8): deliveries and removals killed
with SIGKILL at random instants may leave maildirsize over-counting, never under-counting,
and `mh-quota recalc` then corrects downwards only; maildirsize is rewritten from the
files by whichever writer sees it past 5,120 bytes (Maildir++), so it stays bounded."""

import os
import random
import shutil
import signal
import subprocess
import time
import unittest

import mhtest

TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests"))
ALICE = "alice@d.test"
MAX_MAILDIRSIZE = 5120
ONE_LINE = 24  # "-31457280 -1\n" and the like, with room to spare
STRACE = shutil.which("strace")


def killed_at(syscall, nth, args, stdin=b""):
    """Runs `args` under strace, which SIGKILLs it as it enters its `nth` `syscall`: a
    crash at an exact step (the syscall itself never runs)."""
    cmd = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall,
           "-e", f"inject={syscall}:signal=KILL:when={nth}", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=300)


def message(size):
    head = b"From: s@remote.test\nSubject: crash test\n\n"
    return head + b"x" * (size - len(head) - 1) + b"\n"


class QuotaCrash(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("d.test")
        self.add_account(ALICE)
        self.maildir = self.path("domains", "d.test", "accounts", "alice", "Maildir")

    def deliverer(self, data, repeat):
        """mh-test-deliver started in the background (to be killed)."""
        args = [os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool, "--repeat", str(repeat), ALICE]
        p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        p.stdin.write(data)
        p.stdin.close()
        return p

    def deliver(self, data, repeat):
        """Delivers `data` `repeat` times to ALICE to the end (mh-test-deliver)."""
        args = [os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool, "--repeat", str(repeat), ALICE]
        r = subprocess.run(args, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)

    def recorded(self):
        """(bytes, messages) summed from maildirsize, as every quota check reads it."""
        with open(os.path.join(self.maildir, "maildirsize")) as f:
            lines = f.read().splitlines()[1:]
        pairs = [tuple(int(x) for x in l.split()) for l in lines]
        return sum(b for b, _ in pairs), sum(c for _, c in pairs)

    def actual(self):
        total, count = 0, 0
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            for name in os.listdir(d):
                total += os.path.getsize(os.path.join(d, name))
                count += 1
        return total, count

    def assert_never_under(self, context):
        rec, act = self.recorded(), self.actual()
        self.assertGreaterEqual(rec[0], act[0], f"{context}: bytes under-counted {rec} < {act}")
        self.assertGreaterEqual(rec[1], act[1], f"{context}: messages under-counted {rec} < {act}")

    def assert_recalc_corrects_downwards(self):
        before = self.recorded()
        r = self.run_tool("mh-quota", "recalc", ALICE, "--json")
        self.assertExit(r, 0)
        doc = r.json()
        self.assertEqual((doc["usage_bytes"], doc["usage_messages"]), self.actual())
        self.assertLessEqual(doc["usage_bytes"], before[0])
        self.assertLessEqual(doc["usage_messages"], before[1])

    def test_maildirsize_stays_bounded(self):
        self.deliver(message(300), 2000)
        size = os.path.getsize(os.path.join(self.maildir, "maildirsize"))
        self.assertLessEqual(size, MAX_MAILDIRSIZE + ONE_LINE)
        self.assertEqual(self.recorded(), self.actual())
        self.assertEqual(self.actual()[1], 2000)

    @unittest.skipIf(STRACE is None, "needs strace to kill at an exact step")
    def test_killed_between_count_and_link_over_counts_by_that_message(self):
        # The 3rd delivery dies as it would link its message into new/: its maildirsize
        # line is already written (counted first), the message is not there.
        args = [os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool, "--repeat", "5", ALICE]
        killed_at("linkat", 3, args, stdin=message(1000))
        self.assertEqual(self.actual(), (2000, 2))
        self.assertEqual(self.recorded(), (3000, 3))
        self.assert_recalc_corrects_downwards()

    @unittest.skipIf(STRACE is None, "needs strace to kill at an exact step")
    def test_pop3_update_killed_mid_way_only_over_counts(self):
        self.deliver(message(700), 5)
        script = "USER alice@d.test\r\nPASS secret-pw\r\n" + "".join(f"DELE {i}\r\n" for i in range(1, 6)) + "QUIT\r\n"
        killed_at("unlinkat", 3, [mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "pop3"],
                  stdin=script.encode())
        self.assertEqual(self.actual(), (2100, 3))  # two removed before the kill
        self.assert_never_under("pop3 update kill")
        self.assert_recalc_corrects_downwards()

    def test_kill_9_during_delivery_only_over_counts(self):
        data = message(256 * 1024)
        rng = random.Random(1313)
        for i in range(30):
            p = self.deliverer(data, 1000)
            time.sleep(rng.uniform(0.0, 0.3))  # covers the start-up and many deliveries
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            p.stderr.close()
            self.assert_never_under(f"delivery kill {i}")
        self.assertGreater(self.actual()[1], 0, "no delivery ever finished: the kills came too early")
        self.assert_recalc_corrects_downwards()

    def test_kill_9_during_removal_only_over_counts(self):
        self.deliver(message(500), 400)
        rng = random.Random(1314)
        for i in range(15):
            args = [mhtest.tool_path("mh-purge"), "--spool", self.spool, ALICE, "--everything"]
            purge = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, 0.15))
            purge.send_signal(signal.SIGKILL)
            purge.wait(timeout=60)
            self.assert_never_under(f"purge kill {i}")
            if self.actual()[1] == 0:
                break
        self.assert_recalc_corrects_downwards()


if __name__ == "__main__":
    mhtest.main()
