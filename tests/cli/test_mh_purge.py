"""mh-purge (SPEC §5, issue 3) with the real binaries on a private spool: every selector
and their AND, targets (address, domain, --all-domains), --dry-run and --list (From and
Subject decoded from RFC 2047, ISO-2022-JP included), the summary line and exit codes,
and the safety cases: purging while four processes deliver and a POP3-like reader moves
messages new/ -> cur/, and kill -9 at random points. After each, no message that was not
selected is lost and usage equals a fresh recalc."""

import json
import os
import random
import signal
import subprocess
import threading
import time

import mhtest

TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests"))
DAY = 86400
KiB = 1024

JP_SUBJECT = "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="          # "テスト"
JP_FROM = "=?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>"  # "山田"


def message(size, subject="x", sender="a@example.org"):
    """A message of exactly `size` bytes (at least its header)."""
    head = f"From: {sender}\nSubject: {subject}\n\n".encode()
    return head + b"y" * max(0, size - len(head))


class PurgeTestCase(mhtest.SpoolTestCase):
    counter = 0

    def setUp(self):
        super().setUp()
        self.add_domain("d.jp")
        self.add_account("u@d.jp")
        self.add_account("v@d.jp")

    def purge(self, *args, **kw):
        return self.run_tool("mh-purge", *args, **kw)

    def quota(self, *args, **kw):
        return self.run_tool("mh-quota", *args, **kw)

    def maildir(self, address):
        local, domain = address.split("@")
        return self.path("domains", domain, "accounts", local, "Maildir")

    def deliver(self, data, *addresses):
        """Delivers through libspool (the real write path); returns the UIDLs."""
        proc = subprocess.run([os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool, *addresses],
                              input=data, capture_output=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc)
        return [o["uidl"] for o in json.loads(proc.stdout)["outcomes"]]

    def plant(self, address, data, age_days=0):
        """Writes a message straight into new/ with a qmail name `age_days` old (for
        large or old sets); the caller runs recalc so maildirsize matches."""
        PurgeTestCase.counter += 1
        secs = int(time.time()) - int(age_days * DAY)
        uidl = f"{secs}.M{PurgeTestCase.counter}P{os.getpid()}Q{PurgeTestCase.counter}R{random.getrandbits(32):08x}.test"
        path = os.path.join(self.maildir(address), "new", f"{uidl},S={len(data)}")
        with open(path, "wb") as fh:
            fh.write(data)
        return uidl

    def recalc(self, target="d.jp"):
        r = self.quota("recalc", target, "--json")
        self.assertExit(r, 0)
        return r.json()

    def uidls(self, address):
        out = set()
        for sub in ("new", "cur"):
            for name in os.listdir(os.path.join(self.maildir(address), sub)):
                if not name.startswith("."):
                    out.add(name.split(",")[0].split(":")[0])
        return out

    def usage(self, address):
        doc = self.quota("show", address, "--json").json()
        return doc["usage_bytes"], doc["usage_messages"]

    def assertUsageExact(self, address):
        """maildirsize (what show reads) equals a fresh count of the files."""
        shown = self.usage(address)
        fresh = self.quota("recalc", address, "--json").json()
        self.assertEqual(shown, (fresh["usage_bytes"], fresh["usage_messages"]))

    def assertError(self, run, code, message):
        self.assertExit(run, code)
        self.assertEqual(run.out, "")
        self.assertEqual(run.err, f"mh-purge: error: {message}\n")


class TestSelectors(PurgeTestCase):
    def test_older_than(self):
        old = {self.plant("u@d.jp", message(1000), age_days=40) for _ in range(3)}
        young = {self.plant("u@d.jp", message(1000), age_days=20) for _ in range(2)}
        self.recalc()
        r = self.purge("u@d.jp", "--older-than", "30d")
        self.assertExit(r, 0)
        self.assertEqual(r.err, "")
        self.assertEqual(r.out, "removed 3 messages (2.93 KiB) from 1 mailbox\n")
        self.assertEqual(self.uidls("u@d.jp"), young)
        self.assertTrue(old.isdisjoint(self.uidls("u@d.jp")))
        self.assertEqual(self.usage("u@d.jp"), (2000, 2))
        self.assertUsageExact("u@d.jp")
        # Hours and weeks work too: nothing is older than 3 weeks any more.
        self.assertEqual(self.purge("u@d.jp", "--older-than", "3w").out,
                         "removed 0 messages (0 B) from 0 mailboxes\n")
        self.assertEqual(self.purge("u@d.jp", "--older-than", "12h").out,
                         "removed 2 messages (1.95 KiB) from 1 mailbox\n")

    def test_larger_than_is_strict(self):
        small = self.deliver(message(1 * KiB), "u@d.jp")[0]
        exact = self.deliver(message(10 * KiB), "u@d.jp")[0]
        big = self.deliver(message(100 * KiB), "u@d.jp")[0]
        r = self.purge("u@d.jp", "--larger-than", "10K")
        self.assertEqual(r.out, "removed 1 message (100 KiB) from 1 mailbox\n")
        self.assertEqual(self.uidls("u@d.jp"), {small, exact})
        self.assertNotIn(big, self.uidls("u@d.jp"))
        self.assertEqual(self.usage("u@d.jp"), (11 * KiB, 2))
        self.assertUsageExact("u@d.jp")

    def test_uid_forms(self):
        ids = [self.deliver(message(500 + i), "u@d.jp")[0] for i in range(5)]
        self.assertEqual(self.purge("u@d.jp", "--uid", ids[0]).out, "removed 1 message (500 B) from 1 mailbox\n")
        self.assertEqual(self.purge("u@d.jp", "--uid", f"{ids[1]},{ids[2]}").out,
                         "removed 2 messages (1003 B) from 1 mailbox\n")
        self.assertEqual(self.purge("--uid", ids[3], "u@d.jp", "--uid", "no-such-uidl").code, 0)
        self.assertEqual(self.uidls("u@d.jp"), {ids[4]})
        r = self.purge("u@d.jp", "--uid", "no-such-uidl")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "removed 0 messages (0 B) from 0 mailboxes\n")
        self.assertEqual(r.err, "mh-purge: warning: no message with UIDL no-such-uidl in the targets\n")
        self.assertUsageExact("u@d.jp")

    def test_uid_of_a_message_a_reader_moved_to_cur(self):
        uidl = self.deliver(message(700), "u@d.jp")[0]
        new = os.path.join(self.maildir("u@d.jp"), "new")
        (name,) = os.listdir(new)
        os.rename(os.path.join(new, name), os.path.join(self.maildir("u@d.jp"), "cur", name + ":2,S"))
        r = self.purge("u@d.jp", "--uid", uidl)
        self.assertEqual(r.out, "removed 1 message (700 B) from 1 mailbox\n")
        self.assertEqual(self.uidls("u@d.jp"), set())
        self.assertUsageExact("u@d.jp")

    def test_selectors_combine_with_and(self):
        old_big = self.plant("u@d.jp", message(20 * KiB), age_days=60)
        old_small = self.plant("u@d.jp", message(1 * KiB), age_days=60)
        young_big = self.plant("u@d.jp", message(20 * KiB), age_days=1)
        self.recalc()
        r = self.purge("u@d.jp", "--older-than", "30d", "--larger-than", "10K")
        self.assertEqual(r.out, "removed 1 message (20.0 KiB) from 1 mailbox\n")
        self.assertEqual(self.uidls("u@d.jp"), {old_small, young_big})
        r = self.purge("u@d.jp", "--older-than", "30d", "--uid", young_big)
        self.assertEqual(r.out, "removed 0 messages (0 B) from 0 mailboxes\n")
        # --everything with another selector narrows to that selector.
        r = self.purge("u@d.jp", "--everything", "--uid", young_big)
        self.assertEqual(r.out, "removed 1 message (20.0 KiB) from 1 mailbox\n")
        self.assertEqual(self.uidls("u@d.jp"), {old_small})
        self.assertNotIn(old_big, self.uidls("u@d.jp"))
        self.assertUsageExact("u@d.jp")

    def test_everything_on_a_domain_and_all_domains(self):
        self.add_domain("e.jp")
        self.add_account("w@e.jp")
        self.deliver(message(1000), "u@d.jp", "v@d.jp")
        self.deliver(message(1000), "w@e.jp")
        r = self.purge("d.jp", "--everything")
        self.assertEqual(r.out, "removed 2 messages (1.95 KiB) from 2 mailboxes\n")
        self.assertEqual(self.uidls("w@e.jp").__len__(), 1)
        self.deliver(message(1000), "u@d.jp")
        r = self.purge("--all-domains", "--everything", "--json")
        self.assertExit(r, 0)
        doc = r.json()
        self.assertEqual((doc["mode"], doc["messages"], doc["bytes"], doc["mailboxes"], doc["mailboxes_scanned"]),
                         ("purge", 2, 2000, 2, 3))
        self.assertEqual([m["address"] for m in doc["per_mailbox"]], ["u@d.jp", "v@d.jp", "w@e.jp"])
        self.assertNotIn("listed", doc)
        for a in ("u@d.jp", "v@d.jp", "w@e.jp"):
            self.assertEqual(self.uidls(a), set())
            self.assertEqual(self.usage(a), (0, 0))

    def test_same_mailbox_named_twice_is_purged_once(self):
        self.deliver(message(1000), "u@d.jp")
        r = self.purge("u@d.jp", "d.jp", "U@D.JP", "--everything", "--json")
        self.assertEqual((r.json()["messages"], r.json()["mailboxes_scanned"]), (1, 2))


class TestListing(PurgeTestCase):
    def test_list_decodes_japanese_subject_and_from(self):
        data = (f"From: {JP_FROM}\r\nSubject: {JP_SUBJECT}\r\n\r\nbody\r\n").encode()
        uidl = self.deliver(data, "u@d.jp")[0]
        r = self.purge("u@d.jp", "--list")
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["UIDL", "SIZE", "DELIVERED", "FROM", "SUBJECT"])
        self.assertTrue(lines[1].startswith(uidl + "  "), lines[1])
        self.assertTrue(lines[1].endswith("山田 <yamada@example.jp>  テスト"), lines[1])
        self.assertEqual(lines[2], f"1 message ({len(data)} B) in 1 mailbox")
        doc = self.purge("u@d.jp", "--list", "--json").json()
        (m,) = doc["listed"]
        self.assertEqual((m["uidl"], m["size"], m["from"], m["subject"], m["mailbox"], m["folder"]),
                         (uidl, len(data), "山田 <yamada@example.jp>", "テスト", "u@d.jp", "new"))
        self.assertRegex(m["delivered"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(doc["mode"], "list")
        self.assertEqual(self.uidls("u@d.jp"), {uidl})

    def test_list_other_encodings_and_the_body_is_not_the_header(self):
        self.deliver(b"Subject: =?UTF-8?Q?Caf=C3=A9?= =?ISO-8859-1?Q?_cr=E8me?=\n\nbody\n", "u@d.jp")
        self.deliver(b"From: x@y\n\nSubject: not a header\n", "u@d.jp")
        subjects = sorted(m["subject"] for m in self.purge("u@d.jp", "--list", "--json").json()["listed"])
        self.assertEqual(subjects, ["", "Café crème"])

    def test_selectors_narrow_the_list_and_list_needs_none(self):
        self.deliver(message(100), "u@d.jp")
        big = self.deliver(message(50 * KiB, subject="big one"), "u@d.jp")[0]
        self.assertEqual(len(self.purge("u@d.jp", "--list", "--json").json()["listed"]), 2)
        doc = self.purge("u@d.jp", "--list", "--larger-than", "1K", "--json").json()
        self.assertEqual([(m["uidl"], m["subject"]) for m in doc["listed"]], [(big, "big one")])
        self.assertEqual(len(self.uidls("u@d.jp")), 2)

    def test_list_of_a_domain_shows_the_mailbox(self):
        self.deliver(message(100, subject="hello"), "u@d.jp", "v@d.jp")
        r = self.purge("d.jp", "--list")
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split()[0], "MAILBOX")
        self.assertTrue(lines[1].startswith("u@d.jp  "))
        self.assertTrue(lines[2].startswith("v@d.jp  "))
        self.assertEqual(lines[3], "2 messages (200 B) in 2 mailboxes")

    def test_dry_run_deletes_nothing(self):
        for i in range(3):
            self.plant("u@d.jp", message(2000, subject=f"old {i}"), age_days=100)
        keep = self.plant("u@d.jp", message(2000, subject="new"), age_days=1)
        self.recalc()
        before = self.snapshot()
        r = self.purge("u@d.jp", "--older-than", "90d", "--dry-run")
        self.assertExit(r, 0)
        self.assertEqual(r.out.splitlines()[-1], "would remove 3 messages (5.86 KiB) from 1 mailbox")
        self.assertEqual(sorted(line.split("  ")[-1] for line in r.out.splitlines()[1:-1]),
                         ["old 0", "old 1", "old 2"])
        self.assertNotIn(keep, r.out)
        doc = self.purge("u@d.jp", "--older-than", "90d", "-n", "--json").json()
        self.assertEqual((doc["mode"], doc["messages"], doc["bytes"], len(doc["listed"])), ("dry-run", 3, 6000, 3))
        self.assertEqual(self.snapshot(), before)


class TestOutputAndErrors(PurgeTestCase):
    def test_quiet_and_not_on_a_tty(self):
        self.deliver(message(1000), "u@d.jp")
        r = self.purge("u@d.jp", "--everything", "--quiet")
        self.assertExit(r, 0)
        self.assertEqual((r.out, r.err), ("", ""))
        self.assertEqual(self.uidls("u@d.jp"), set())
        # Not on a terminal: exactly the summary line, no progress bar on stderr.
        self.deliver(message(1000), "u@d.jp")
        r = self.purge("u@d.jp", "--everything")
        self.assertEqual((r.out, r.err), ("removed 1 message (1000 B) from 1 mailbox\n", ""))

    def test_missing_selector_is_a_usage_error(self):
        self.deliver(message(1000), "u@d.jp")
        self.assertError(self.purge("u@d.jp"), 64,
                         "no selector given: use --older-than, --larger-than, --uid or --everything "
                         "(see mh-purge --help)")
        self.assertEqual(len(self.uidls("u@d.jp")), 1)

    def test_target_errors(self):
        self.assertError(self.purge("--everything"), 64,
                         "no target given: name an ADDRESS or a DOMAIN, or use --all-domains")
        self.assertError(self.purge("d.jp", "--all-domains", "--everything"), 64,
                         "--all-domains takes no ADDRESS or DOMAIN operands")
        self.assertError(self.purge("nope.jp", "--everything"), 68, "no such domain: nope.jp")
        self.assertError(self.purge("x@d.jp", "--everything"), 67, "no such account: x@d.jp")
        self.assertError(self.purge("x@nope.jp", "--everything"), 68, "no such domain: nope.jp")
        self.assertExit(self.purge("bad..name@d.jp", "--everything"), 65)
        self.assertExit(self.purge("--bogus", "d.jp"), 64)

    def test_value_errors(self):
        self.assertError(self.purge("d.jp", "--older-than", "3x"), 65, "invalid age '3x': unit must be s, m, h, d or w")
        self.assertError(self.purge("d.jp", "--older-than", "soon"), 65, "invalid age 'soon': expected a number")
        self.assertError(self.purge("d.jp", "--larger-than", "5Q"), 65,
                         "invalid size '5Q': unit must be K, M, G or T")
        self.assertError(self.purge("d.jp", "--uid", "a:b"), 65,
                         "invalid UIDL 'a:b': a UIDL is 1-70 characters 0x21-0x7E without ',', ':', '/' or '..' "
                         "(as 'mh-purge --list' shows them)")
        r = self.purge("d.jp", "--older-than", "3x", "--json")
        self.assertEqual(r.json(), {"error": {"code": 65, "message": "invalid age '3x': unit must be s, m, h, d or w"}})

    def test_a_bad_operand_stops_before_anything_is_removed(self):
        self.deliver(message(1000), "u@d.jp")
        self.assertError(self.purge("u@d.jp", "nope.jp", "--everything"), 68, "no such domain: nope.jp")
        self.assertError(self.purge("u@d.jp", "x@d.jp", "--everything"), 67, "no such account: x@d.jp")
        self.assertEqual(len(self.uidls("u@d.jp")), 1)


class TestSafety(PurgeTestCase):
    def test_purge_while_four_processes_deliver_and_a_reader_moves_mail(self):
        """Deliverers alternate small (kept) and large (selected) messages; purges of
        --larger-than run in a loop meanwhile; a POP3-like reader renames messages
        new/ -> cur/ with flags. Every small message survives, no large one remains,
        and maildirsize equals a recalc."""
        small_uidls, large_uidls = set(), set()
        lock = threading.Lock()
        stop = threading.Event()
        errors = []
        deliver_cmd = [os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool, "u@d.jp"]

        def deliverer(n):
            i = 0
            while not stop.is_set():
                large = i % 2 == 1
                data = message(8 * KiB if large else 600, subject=f"w{n}-{i}")
                proc = subprocess.run(deliver_cmd, input=data, capture_output=True, timeout=120)
                if proc.returncode != 0:
                    errors.append(proc)
                    return
                uidl = json.loads(proc.stdout)["outcomes"][0]["uidl"]
                with lock:
                    (large_uidls if large else small_uidls).add(uidl)
                i += 1

        def reader():
            new = os.path.join(self.maildir("u@d.jp"), "new")
            cur = os.path.join(self.maildir("u@d.jp"), "cur")
            while not stop.is_set():
                for name in os.listdir(new):
                    if random.random() < 0.5 and not name.startswith("."):
                        try:
                            os.rename(os.path.join(new, name), os.path.join(cur, name + ":2,S"))
                        except FileNotFoundError:
                            pass  # purged meanwhile
                time.sleep(0.01)

        threads = [threading.Thread(target=deliverer, args=(n,)) for n in range(4)]
        threads.append(threading.Thread(target=reader))
        for t in threads:
            t.start()
        purges = 0
        try:
            # At least 6 s and at least 4 purges: on a loaded machine one purge among four
            # deliverers can take seconds, and the point is purging while they deliver.
            start = time.time()
            while (time.time() < start + 6 or purges < 4) and time.time() < start + 120:
                r = self.purge("u@d.jp", "--larger-than", "4K")
                self.assertExit(r, 0)
                self.assertRegex(r.out, r"^removed \d+ messages? \([^)]*\) from [01] mailbox(es)?(; .*)?\n$")
                purges += 1
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        self.assertEqual(errors, [])
        self.assertGreater(purges, 3)
        self.assertGreater(len(small_uidls), 10)
        self.assertGreater(len(large_uidls), 10)
        self.assertExit(self.purge("u@d.jp", "--larger-than", "4K"), 0)
        present = self.uidls("u@d.jp")
        self.assertEqual(present, small_uidls)  # every kept message survived, every large one went
        self.assertUsageExact("u@d.jp")
        self.assertEqual(self.usage("u@d.jp"), (600 * len(small_uidls), len(small_uidls)))

    def test_two_purges_racing_count_each_message_once(self):
        for _ in range(400):
            self.plant("u@d.jp", message(1000), age_days=50)
        self.recalc()
        env = dict(os.environ, MH_SPOOL=self.spool)
        procs = [subprocess.Popen([mhtest.tool_path("mh-purge"), "u@d.jp", "--older-than", "30d", "--json"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        docs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            docs.append(json.loads(out))
        self.assertEqual(sum(d["messages"] for d in docs), 400)
        self.assertEqual(sum(d["messages"] + d["vanished"] for d in docs) >= 400, True)
        self.assertEqual(self.uidls("u@d.jp"), set())
        self.assertEqual(self.usage("u@d.jp"), (0, 0))

    def test_kill_9_at_random_points(self):
        keep = {self.plant("u@d.jp", message(900), age_days=1) for _ in range(150)}
        self.recalc()
        env = dict(os.environ, MH_SPOOL=self.spool)
        rng = random.Random(os.getpid())
        new = os.path.join(self.maildir("u@d.jp"), "new")
        for _ in range(30):
            for _ in range(200):
                self.plant("u@d.jp", message(1100), age_days=60)
            self.recalc("u@d.jp")
            before = os.stat(new).st_mtime_ns
            p = subprocess.Popen([mhtest.tool_path("mh-purge"), "u@d.jp", "--older-than", "30d"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Wait for the first unlink (new/ changes), then kill somewhere in the run.
            deadline = time.time() + 30
            while os.stat(new).st_mtime_ns == before and p.poll() is None and time.time() < deadline:
                pass
            time.sleep(rng.uniform(0, 0.003))
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            self.assertTrue(keep.issubset(self.uidls("u@d.jp")), "an unselected message was lost")
        # The next operation repairs whatever a kill left between an unlink and its
        # maildirsize line; afterwards usage equals a fresh count of the files.
        r = self.purge("u@d.jp", "--older-than", "30d")
        self.assertExit(r, 0)
        self.assertEqual(self.usage("u@d.jp"), (900 * len(keep), len(keep)))
        self.assertEqual(self.uidls("u@d.jp"), keep)
        self.assertUsageExact("u@d.jp")


if __name__ == "__main__":
    mhtest.main()
