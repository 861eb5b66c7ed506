"""A crash in the middle of a list distribution (the lists issue): mh-serve is killed
with SIGKILL while it distributes a post to 2,000 members (1,000 local accounts, 1,000
remote ones behind relay.host, an aiosmtpd peer), then started again. Afterwards:

  * every local member holds the post exactly once (files in new/ + cur/ counted by
    the post's Message-ID), and it is the archive's inode (one stored copy);
  * every remote member got it at least once at the peer, also after a second SIGKILL
    while the remote queue entries are being sent;
  * the next post gets the next sequence number: X-Mail-Count and the seq file are the
    killed post's number + 1, no number is given out twice.

The kill is timed by the archive file's link count: archive/new/<seq> is hard-linked
into each local member's Maildir, so st_nlink - 1 is the number of local copies made so
far. The test kills when at least one but not all local copies exist; if a post's
distribution finishes before it can be caught, it tries the next post (up to
ATTEMPTS) and, if none could be caught, fails saying so — it never pretends. What it
observed (link count at the kill, the job record, copies before and after) is printed
on stderr.

The 1,000 accounts are copies of one made by `mh-user add` (account.yaml with its real
yescrypt hash, Maildir/{tmp,new,cur}, maildirsize): mh-user has no batch mode and
hashes a password per call (about 1 s each in a sanitizer build); the account
directory holds nothing that names the account, and `mh-user list` reads them back
(checked). One copied account logs in over POP3 and reads the post."""

import os
import re
import signal
import sys
import time

import mhtest_lists as ml
from mhtest_lists import LIST, ListCase, copy_account_template, header, post_message
from mhtest_mail import PASSWORD

LOCAL_N = int(os.environ.get("MH_LIST_CRASH_LOCAL", "1000"))
REMOTE_N = int(os.environ.get("MH_LIST_CRASH_REMOTE", "1000"))
ATTEMPTS = 3


def local_member(i):
    return f"m{i:04d}@example.org"


def remote_member(i):
    return f"r{i:04d}@d{i % 20:02d}.remote.test"


class ListCrash(ListCase):
    def setUp(self):
        super().setUp()
        t0 = time.monotonic()
        self.add_account(local_member(0))
        copy_account_template(self.spool, local_member(0), [local_member(i) for i in range(1, LOCAL_N)])
        r = self.user("list", "example.org", "--json")
        self.assertExit(r, 0)
        names = {a["address"] for a in r.json()["accounts"]}
        self.assertTrue({local_member(i) for i in range(LOCAL_N)} <= names, "copied accounts not seen by mh-user")
        self.locals = [local_member(i) for i in range(LOCAL_N)]
        self.remotes = [remote_member(i) for i in range(REMOTE_N)]
        self.mhlist("create", LIST)
        self.mhlist("members", "add", LIST, stdin="".join(a + "\n" for a in self.locals + self.remotes))
        self.assertEqual(self.mhlist("members", "list", LIST, "--json").json()["count"], LOCAL_N + REMOTE_N)
        print(f"\n[crash] {LOCAL_N} accounts + list of {LOCAL_N + REMOTE_N} made in {time.monotonic() - t0:.1f} s",
              file=sys.stderr)

    def note(self, text):
        print(f"[crash] {text}", file=sys.stderr)

    def copies(self, address, marker):
        """Files of `address` (new/ and cur/) holding the post with Message-ID <marker@…>."""
        want = f"<{marker}@remote.test>".encode()
        out = []
        local, domain = address.split("@")
        base = self.path("domains", domain, "accounts", local, "Maildir")
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            for name in os.listdir(d):
                p = os.path.join(d, name)
                with open(p, "rb") as f:
                    head = f.read(8192)
                if want in head.replace(b"\r\n", b"\n").partition(b"\n\n")[0]:
                    out.append(p)
        return out

    def remote_got(self, marker):
        """{recipient: times} of the post at the peer."""
        want = f"<{marker}@remote.test>".encode()
        got = {}
        for t in list(self.peer.transactions):
            if want in t["data"]:
                for r in t["to"]:
                    got[r] = got.get(r, 0) + 1
        return got

    def post_and_catch(self, attempt):
        """Posts one message and SIGKILLs mh-serve while its local copies are being made.
        Returns (marker, sequence number, caught, observations)."""
        poster = self.remotes[attempt]
        data, marker = post_message(f"crash post {attempt}", sender=poster)
        before = self.seq()
        qid = self.post(data, sender=poster)
        # The archive file appears once the sequence number is given out.
        deadline = time.monotonic() + 60
        path = None
        while path is None:
            seq = self.seq()
            if seq > before and os.path.exists(self.archive_file(seq)):
                path = self.archive_file(seq)
                break
            if time.monotonic() > deadline:
                self.fail(f"no archive file for {qid} after 60 s:\n{self.log()}")
            time.sleep(0.002)
        # Killed about half-way through the local copies: some exist, not all.
        lo, hi = 1 + max(1, LOCAL_N // 2), 1 + LOCAL_N - 1
        t_post = time.monotonic()
        first_seen = os.stat(path).st_nlink
        while True:
            n = os.stat(path).st_nlink
            if lo <= n <= hi:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
                n_after = os.stat(path).st_nlink
                job = self.list_dir("jobs", qid)
                record = "(none)"
                if os.path.exists(job):
                    with open(job) as f:
                        record = f.read().strip().replace("\n", "; ")
                obs = (f"attempt {attempt}: SIGKILL {time.monotonic() - t_post:.2f} s after the 250, "
                       f"at archive nlink {n} (local copies ≈ {n - 1} of {LOCAL_N}; "
                       f"{n_after - 1} after the kill); job record: {record}; seq file {self.seq()}")
                return marker, seq, True, obs
            if n > hi or re.search(rf"queue {qid}: to=<{re.escape(LIST)}> .*status=sent", self.log()):
                obs = (f"attempt {attempt}: too fast to catch (nlink first seen {first_seen}, then {n})")
                return marker, seq, False, obs
            if self.proc.poll() is not None:
                self.fail(f"mh-serve exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.001)

    def test_sigkill_during_distribution_to_2000_members(self):
        self.start()
        posts = []  # (marker, seq)
        caught = False
        for attempt in range(ATTEMPTS):
            marker, seq, caught, obs = self.post_and_catch(attempt)
            self.note(obs)
            posts.append((marker, seq))
            if caught:
                break
            self.wait_queue_empty(120)
        self.assertTrue(caught, f"the distribution finished before it could be killed in {ATTEMPTS} attempts")
        killed_marker, killed_seq = posts[-1]

        # Restart: the runner finishes the same distribution.
        t0 = time.monotonic()
        self.start_mail_server(self.extra_config, services=tuple(self.ports))
        self.wait_until(lambda: re.search(rf"status=sent \(distributed as {re.escape(LIST)} #{killed_seq}: ",
                                          self.log()), 120, "the resumed distribution")
        self.note(f"resumed distribution logged {time.monotonic() - t0:.1f} s after the restart: "
                  + re.search(r"distributed as .*", self.log()).group(0))
        # A second SIGKILL while the remote copies leave (queue entries of ≤ 100 members
        # each): an entry sent but not yet removed is sent again after the restart (at
        # least once), none is lost.
        def some_remote():
            n = len(self.remote_got(killed_marker))
            return n if n >= 1 else None
        n = self.wait_until(some_remote, 120, "the first remote copies")
        if n < REMOTE_N:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            left = [q for q in self.queue_ids()]
            self.note(f"second SIGKILL with {len(self.remote_got(killed_marker))} of {REMOTE_N} remote copies "
                      f"at the peer, {len(left)} queue entries left")
            self.start_mail_server(self.extra_config, services=tuple(self.ports))
        else:
            self.note("the remote copies all left before a second kill could be made (not retried)")
        self.wait_until(lambda: len(self.remote_got(killed_marker)) >= REMOTE_N, 120, "every remote copy")
        self.wait_queue_empty(120)
        self.note(f"resumed and finished {time.monotonic() - t0:.1f} s after the restart")

        archive_ino = os.stat(self.archive_file(killed_seq)).st_ino
        for marker, seq in posts:
            with self.subTest(post=seq):
                counts = {}
                for a in self.locals:
                    files = self.copies(a, marker)
                    counts[len(files)] = counts.get(len(files), 0) + 1
                    if len(files) == 1 and seq == killed_seq:
                        self.assertEqual(os.stat(files[0]).st_ino, archive_ino, a)
                self.note(f"post #{seq}: local members by number of copies: {counts}")
                self.assertEqual(counts, {1: LOCAL_N}, "local members without the post or with it twice")
                got = self.remote_got(marker)
                missing = [r for r in self.remotes if r not in got]
                self.assertEqual(missing, [], f"{len(missing)} remote members never got post #{seq}")
                dup = sum(1 for v in got.values() if v > 1)
                self.note(f"post #{seq}: remote members {len(got)}, of them {dup} twice or more (allowed)")

        # A copied account reads the post over POP3.
        p = self.poplib_client("pop3")
        p.user(self.locals[LOCAL_N // 2])
        p.pass_(PASSWORD)
        count, _ = p.stat()
        self.assertEqual(count, len(posts))
        texts = [b"\r\n".join(p.retr(i)[1]) for i in range(1, count + 1)]
        p.quit()
        self.assertTrue(any(f"<{killed_marker}@remote.test>".encode() in t for t in texts))

        # The next post gets the next number.
        data, marker = post_message("after the crash", sender=self.remotes[ATTEMPTS + 1])
        qid = self.post(data, sender=self.remotes[ATTEMPTS + 1])
        self.assertTrue(self.detail(qid, timeout=120).startswith(f"distributed as {LIST} #{killed_seq + 1}: "),
                        self.detail(qid))
        self.wait_until(lambda: len(self.remote_got(marker)) >= REMOTE_N, 120, "the next post at the peer")
        self.wait_queue_empty(120)
        self.assertEqual(self.seq(), killed_seq + 1)
        [copy] = self.copies(self.locals[0], marker)
        with open(copy, "rb") as f:
            self.assertEqual(header(f.read(), "X-Mail-Count"), str(killed_seq + 1))
        # Every number in the archive once: the ones handed out, none reused.
        names = self.archived()
        self.assertEqual(names, sorted(set(names)))
        self.assertEqual(names[-2:], [f"{killed_seq:08d}", f"{killed_seq + 1:08d}"])
        for a in self.locals[:50]:
            self.assertEqual(len(self.copies(a, marker)), 1, a)


if __name__ == "__main__":
    ml.main()
