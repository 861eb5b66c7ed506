"""mh-quota (SPEC §4, issue 3) with the real binaries on a private spool: show for all
domains / one domain / one account in text and JSON, set and --add with binary sizes,
percent computed from exact byte counts, recalc repairing a wrong maildirsize, report's
exit codes for cron (1 when something is listed, 0 and silent otherwise), the percent bar
only on a terminal, and the usage fields mh-user show gained."""

import json
import os
import pty
import subprocess

import mhtest

TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests"))

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


def message(size, subject="x"):
    """A message of exactly `size` bytes."""
    head = f"From: a@example.org\nSubject: {subject}\n\n".encode()
    return head + b"y" * (size - len(head))


class QuotaTestCase(mhtest.SpoolTestCase):
    def quota(self, *args, **kw):
        return self.run_tool("mh-quota", *args, **kw)

    def deliver(self, data, *addresses, repeat=1):
        args = [os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool]
        if repeat > 1:
            args += ["--repeat", str(repeat)]
        proc = subprocess.run(args + list(addresses), input=data, capture_output=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc)
        return json.loads(proc.stdout)

    def assertError(self, run, code, message):
        self.assertExit(run, code)
        self.assertEqual(run.out, "")
        self.assertEqual(run.err, f"mh-quota: error: {message}\n")

    def setUp(self):
        super().setUp()
        self.add_domain("d.jp", "--quota", "1M")
        self.add_account("big@d.jp")
        self.add_account("small@d.jp")


class TestShow(QuotaTestCase):
    def test_all_domains_text_and_json(self):
        self.add_domain("e.jp")
        self.deliver(message(100 * KiB), "big@d.jp")
        r = self.quota("show")
        self.assertExit(r, 0)
        self.assertEqual(r.err, "")
        # Not a terminal: a plain table, no bar.
        self.assertEqual(r.out,
                         "DOMAIN  USED     MESSAGES  QUOTA     USE%\n"
                         "d.jp    100 KiB  1         1.00 MiB  9.8%\n"
                         "e.jp    0 B      0         none      -\n")
        doc = self.quota("show", "--json").json()
        d, e = doc["domains"]
        self.assertEqual((d["domain"], d["quota"], d["usage_bytes"], d["usage_messages"]),
                         ("d.jp", MiB, 100 * KiB, 1))
        self.assertEqual(d["percent"], 9.8)
        self.assertEqual(d["free_bytes"], MiB - 100 * KiB)
        self.assertEqual([a["address"] for a in d["accounts"]], ["big@d.jp", "small@d.jp"])
        self.assertEqual((e["quota"], e["percent"], e["free_bytes"]), (0, None, None))

    def test_empty_spool(self):
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        r = self.quota("--spool", empty, "show")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "no domains\n")
        self.assertEqual(self.quota("--spool", empty, "show", "--json").json(), {"domains": []})

    def test_domain_breakdown_and_exact_percent(self):
        self.deliver(message(300 * KiB), "big@d.jp")
        self.deliver(message(200 * KiB), "big@d.jp")
        self.deliver(message(1000), "small@d.jp", repeat=3)
        doc = self.quota("show", "d.jp", "--json").json()
        total = 500 * KiB + 3000
        self.assertEqual(doc["usage_bytes"], total)
        self.assertEqual(doc["usage_messages"], 5)
        self.assertEqual(doc["percent"], round(total * 100 / MiB, 1))  # 49.1
        self.assertEqual(doc["percent"], 49.1)
        big, small = doc["accounts"]
        self.assertEqual((big["address"], big["usage_bytes"], big["usage_messages"], big["percent_of_domain"]),
                         ("big@d.jp", 500 * KiB, 2, 48.8))
        self.assertEqual((small["usage_bytes"], small["usage_messages"], small["percent_of_domain"]),
                         (3000, 3, 0.3))
        self.assertEqual(doc["lists"], [])
        # The breakdown adds up to the total, and matches a fresh count of the files.
        self.assertEqual(sum(a["usage_bytes"] for a in doc["accounts"]), doc["usage_bytes"])
        recalc = self.quota("recalc", "d.jp", "--json").json()
        self.assertEqual((recalc["usage_bytes"], recalc["usage_messages"]), (total, 5))

        text = self.quota("show", "d.jp").out
        self.assertIn("domain: d.jp\n", text)
        self.assertIn(f"used:   503 KiB in 5 messages ({total} bytes)\n", text)
        self.assertIn("quota:  1.00 MiB\n", text)
        self.assertIn("use:    49.1%\n", text)
        self.assertIn("free:   521 KiB\n", text)
        self.assertIn("MAILBOX     KIND     USED      MESSAGES  OF DOMAIN  OWN QUOTA\n"
                      "big@d.jp    account  500 KiB   2         48.8%      none\n"
                      "small@d.jp  account  2.93 KiB  3         0.3%       none\n", text)

    def test_address_shows_account_and_domain(self):
        self.deliver(message(10 * KiB), "small@d.jp")
        doc = self.quota("show", "small@d.jp", "--json").json()
        self.assertEqual((doc["address"], doc["usage_bytes"], doc["usage_messages"]), ("small@d.jp", 10 * KiB, 1))
        self.assertEqual(doc["domain_quota"], MiB)
        self.assertEqual(doc["percent_of_domain"], 1.0)
        self.assertEqual((doc["quota"], doc["percent"]), (0, None))
        self.assertEqual(doc["domain"]["domain"], "d.jp")
        self.assertEqual(doc["domain"]["usage_bytes"], 10 * KiB)
        self.assertNotIn("accounts", doc["domain"])
        text = self.quota("show", "small@d.jp").out
        self.assertIn("address:         small@d.jp\n", text)
        self.assertIn("of domain quota: 1.0%\n", text)
        self.assertIn("domain: d.jp\n", text)

    def test_errors(self):
        self.assertError(self.quota("show", "nope.jp"), 68, "no such domain: nope.jp")
        self.assertError(self.quota("show", "x@d.jp"), 67, "no such account: x@d.jp")
        self.assertError(self.quota("show", "x@nope.jp"), 68, "no such domain: nope.jp")
        self.assertExit(self.quota("show", "bad..name@d.jp"), 65)
        r = self.quota("show", "nope.jp", "--json")
        self.assertExit(r, 68)
        self.assertEqual(r.json(), {"error": {"code": 68, "message": "no such domain: nope.jp"}})
        r = self.quota("frobnicate")
        self.assertExit(r, 64)
        r = self.quota()
        self.assertExit(r, 64)

    def test_bar_only_on_a_terminal(self):
        self.deliver(message(512 * KiB), "big@d.jp")
        piped = self.quota("show")
        self.assertNotIn("[", piped.out)
        master, slave = pty.openpty()
        try:
            env = dict(os.environ, MH_SPOOL=self.spool)
            proc = subprocess.run([mhtest.tool_path("mh-quota"), "show"], stdout=slave, stderr=subprocess.PIPE,
                                  env=env, timeout=60)
            os.close(slave)
            slave = None
            out = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual(proc.returncode, 0)
        self.assertIn(b"50.0%  [##########..........]", out)


class TestSet(QuotaTestCase):
    def test_set_and_add_binary_sizes(self):
        r = self.quota("set", "d.jp", "2G")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "quota of d.jp set to 2.00 GiB (was 1.00 MiB); used 0 B (0.0%)\n")
        self.assertEqual(self.quota("show", "d.jp", "--json").json()["quota"], 2 * GiB)
        r = self.quota("set", "d.jp", "--add", "512M", "--json")
        self.assertExit(r, 0)
        doc = r.json()
        self.assertEqual((doc["quota"], doc["previous_quota"]), (2 * GiB + 512 * MiB, 2 * GiB))
        self.assertEqual(self.quota("set", "d.jp", "1K", "--json").json()["quota"], 1024)
        self.assertEqual(self.quota("set", "d.jp", "1500", "--json").json()["quota"], 1500)
        with open(self.path("domains", "d.jp", "domain.yaml")) as fh:
            self.assertEqual(mhtest.parse_flat_yaml(fh.read())["quota"], "1500")

    def test_set_none_means_unlimited_and_add_to_unlimited_is_refused(self):
        self.assertEqual(self.quota("set", "d.jp", "none", "--json").json()["quota"], 0)
        self.assertEqual(self.quota("show", "d.jp", "--json").json()["percent"], None)
        self.assertError(self.quota("set", "d.jp", "--add", "1G"), 1,
                         "domain d.jp has no quota (unlimited); use 'mh-quota set d.jp SIZE' to set one")
        self.assertEqual(self.quota("show", "d.jp", "--json").json()["quota"], 0)

    def test_lowering_below_usage_warns(self):
        self.deliver(message(4 * KiB), "big@d.jp")
        r = self.quota("set", "d.jp", "2K")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "quota of d.jp set to 2.00 KiB (was 1.00 MiB); used 4.00 KiB (200.0%)\n"
                                "warning: d.jp is full: mail to all of its addresses is refused until usage drops\n")

    def test_concurrent_adds_are_not_lost(self):
        self.assertExit(self.quota("set", "d.jp", "1M"), 0)
        env = dict(os.environ, MH_SPOOL=self.spool)
        procs = [subprocess.Popen([mhtest.tool_path("mh-quota"), "set", "d.jp", "--add", "1M"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(8)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.quota("show", "d.jp", "--json").json()["quota"], 9 * MiB)

    def test_errors(self):
        self.assertError(self.quota("set", "d.jp", "10X"), 65, "invalid size '10X': unit must be K, M, G or T")
        self.assertError(self.quota("set", "d.jp", "--add", "lots"), 65, "invalid size 'lots': expected a number")
        self.assertError(self.quota("set", "nope.jp", "1G"), 68, "no such domain: nope.jp")
        self.assertError(self.quota("set", "d.jp"), 64, "give either SIZE or --add SIZE (see mh-quota set --help)")
        self.assertError(self.quota("set", "d.jp", "1G", "--add", "1G"), 64,
                         "give either SIZE or --add SIZE (see mh-quota set --help)")
        self.assertExit(self.quota("set", "big@d.jp", "1G"), 65)
        self.assertEqual(self.quota("show", "d.jp", "--json").json()["quota"], MiB)


class TestRecalc(QuotaTestCase):
    def test_recalc_repairs_a_wrong_maildirsize(self):
        self.deliver(message(2000), "big@d.jp", repeat=2)
        f = self.path("domains", "d.jp", "accounts", "big", "Maildir", "maildirsize")
        with open(f, "a") as fh:
            fh.write("999999 7\n")
        self.assertEqual(self.quota("show", "big@d.jp", "--json").json()["usage_bytes"], 4000 + 999999)
        r = self.quota("recalc", "d.jp")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "big@d.jp: 3.91 KiB in 2 messages (was 980 KiB in 9 messages, -7 messages)\n"
                                "recalculated 2 mailboxes: 3.91 KiB in 2 messages; 1 corrected\n")
        doc = self.quota("show", "big@d.jp", "--json").json()
        self.assertEqual((doc["usage_bytes"], doc["usage_messages"]), (4000, 2))

    def test_recalc_json_and_targets(self):
        self.add_domain("e.jp")
        self.add_account("u@e.jp")
        self.deliver(message(1000), "u@e.jp")
        doc = self.quota("recalc", "--json").json()
        self.assertEqual([m["address"] for m in doc["mailboxes"]], ["big@d.jp", "small@d.jp", "u@e.jp"])
        self.assertEqual((doc["usage_bytes"], doc["usage_messages"]), (1000, 1))
        u = doc["mailboxes"][2]
        self.assertEqual(u, {"address": "u@e.jp", "kind": "account", "usage_bytes": 1000, "usage_messages": 1,
                             "previous_bytes": 1000, "previous_messages": 1})
        one = self.quota("recalc", "u@e.jp", "--json").json()
        self.assertEqual(len(one["mailboxes"]), 1)
        r = self.quota("recalc", "u@e.jp")
        self.assertEqual(r.out, "recalculated 1 mailbox: 1000 B in 1 message; 0 corrected\n")
        self.assertError(self.quota("recalc", "x@e.jp"), 67, "no such account: x@e.jp")
        self.assertError(self.quota("recalc", "nope.jp"), 68, "no such domain: nope.jp")


class TestReport(QuotaTestCase):
    def setUp(self):
        super().setUp()
        self.assertExit(self.quota("set", "d.jp", "100K"), 0)
        self.deliver(message(60 * KiB), "big@d.jp")
        self.deliver(message(1 * KiB), "small@d.jp", repeat=5)

    def test_percent_threshold(self):
        r = self.quota("report", "--warn-percent", "50")
        self.assertExit(r, 1)
        self.assertEqual(r.err, "")
        self.assertEqual(r.out,
                         "MAILBOX   USED      MESSAGES  DOMAIN QUOTA  OF DOMAIN  OVER\n"
                         "big@d.jp  60.0 KiB  1         100 KiB       60.0%      50% of domain\n")
        # "More than N percent": exactly 60% is not more than 60%.
        r = self.quota("report", "--warn-percent", "60")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "")
        r = self.quota("report", "--warn-percent", "59.9")
        self.assertExit(r, 1)

    def test_message_threshold_and_json(self):
        r = self.quota("report", "--warn-messages", "4", "--json")
        self.assertExit(r, 1)
        doc = r.json()
        self.assertEqual((doc["warn_percent"], doc["warn_messages"]), (None, 4))
        self.assertEqual([(m["address"], m["reasons"]) for m in doc["mailboxes"]], [("small@d.jp", ["messages"])])
        r = self.quota("report", "--warn-messages", "5", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json()["mailboxes"], [])
        r = self.quota("report", "--warn-messages", "0", "--warn-percent", "10", "--json")
        self.assertExit(r, 1)
        self.assertEqual([(m["address"], m["reasons"]) for m in r.json()["mailboxes"]],
                         [("big@d.jp", ["percent", "messages"]), ("small@d.jp", ["messages"])])

    def test_default_threshold_is_90_percent(self):
        r = self.quota("report", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json()["warn_percent"], 90)
        self.deliver(message(35 * KiB), "big@d.jp")
        r = self.quota("report")
        self.assertExit(r, 1)
        self.assertIn("big@d.jp", r.out)

    def test_quiet_keeps_the_exit_code(self):
        r = self.quota("report", "--warn-percent", "50", "--quiet")
        self.assertExit(r, 1)
        self.assertEqual(r.out, "")

    def test_no_quota_means_no_percent_warning(self):
        self.assertExit(self.quota("set", "d.jp", "none"), 0)
        self.assertExit(self.quota("report", "--warn-percent", "0"), 0)

    def test_bad_threshold_is_a_usage_error(self):
        self.assertExit(self.quota("report", "--warn-percent", "-5"), 64)
        self.assertExit(self.quota("report", "--warn-messages", "many"), 64)


class TestUserShowUsage(QuotaTestCase):
    def test_mh_user_show_has_usage(self):
        self.deliver(message(3 * KiB), "big@d.jp", repeat=2)
        self.deliver(message(1 * KiB), "small@d.jp")
        doc = self.user("show", "big@d.jp", "--json").json()
        self.assertEqual((doc["usage_bytes"], doc["usage_messages"]), (6 * KiB, 2))
        self.assertEqual((doc["domain_quota"], doc["domain_usage_bytes"]), (MiB, 7 * KiB))
        text = self.user("show", "big@d.jp").out
        self.assertIn("usage:         6.00 KiB in 2 messages\n", text)
        self.assertIn("domain quota:  7.00 KiB of 1.00 MiB used (0.7%)\n", text)


if __name__ == "__main__":
    mhtest.main()
