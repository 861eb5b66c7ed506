"""mh-filter run as a real binary (SPEC §6, §9): every command in text and --json, the
limits and refusals with their exit codes (and the file untouched after a refusal), a
hand-broken filters.yaml, and `test` on real messages: plain, rule hits, ISO-2022-JP and
full-width subjects, list mail under auto-reply, loops, rspamd (a fake one on a local
port), and 3 MB / 30 MB messages read in linear time without holding them."""

import email.header
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

ERR = "mh-filter: error: "
WARN = "mh-filter: warning: "
FILTER_KEYS = {"address", "spam", "rules", "autoreply", "forward"}
TEST_KEYS = {"address", "sender", "size", "step", "number", "action", "keep", "destinations", "reply", "loop",
             "spam", "detail"}


def encoded(text, charset="utf-8"):
    """`text` as one RFC 2047 header value in `charset`."""
    return email.header.Header(text, charset).encode()


def message(subject="hello", sender="Alice <alice@example.org>", to="u@d.jp", extra=(), body="hi\n", crlf=False):
    """A small message as bytes; `extra` are more header lines."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", "Message-ID: <m1@example.org>", *extra]
    text = "\n".join(lines) + "\n\n" + body
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


def big_message(size):
    """A message of exactly `size` bytes: a short header, then 76-byte body lines."""
    head = message(subject="big one", body="")
    line = b"x" * 75 + b"\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"y" * (size - len(head) - len(body))


class FakeRspamd:
    """rspamd's /checkv2 on a local port: spam when the body holds `marker`. Records the
    size of each request body (the message) in `sizes`."""

    def __init__(self, marker=b"X-Spam-Flag: YES"):
        fake = self
        self.sizes = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                body, left = bytearray(), length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    body += chunk
                    left -= len(chunk)
                fake.sizes.append(len(body))
                spam = marker in body
                answer = {"action": "reject" if spam else "no action", "score": 20.0 if spam else 0.5,
                          "required_score": 15.0, "is_skipped": False}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FilterTestCase(mhtest.SpoolTestCase):
    """A spool with domain d.jp and the accounts u@d.jp and other@d.jp."""

    def setUp(self):
        super().setUp()
        self.add_domain("d.jp")
        self.add_account("u@d.jp")
        self.add_account("other@d.jp")
        self.filters_file = self.path("domains", "d.jp", "accounts", "u", "filters.yaml")

    def filt(self, *args, stdin=None, env=None, timeout=120):
        """Runs mh-filter; `stdin` may be bytes (a message) or str."""
        if isinstance(stdin, bytes):
            e = dict(os.environ, MH_SPOOL=self.spool, **(env or {}))
            proc = subprocess.run([mhtest.tool_path("mh-filter"), *args], input=stdin, capture_output=True,
                                  env=e, timeout=timeout)
            proc.stdout = proc.stdout.decode("utf-8")
            proc.stderr = proc.stderr.decode("utf-8")
            return mhtest.Run(proc)
        return self.run_tool("mh-filter", *args, stdin=stdin, env=env, timeout=timeout)

    def ok(self, *args, **kw):
        r = self.filt(*args, **kw)
        self.assertExit(r, 0)
        return r

    def show(self):
        return self.ok("show", "u@d.jp", "--json").json()

    def assertError(self, run, code, *fragments):
        """Exit `code`; stderr is exactly one `mh-filter: error: …` line holding each fragment."""
        self.assertExit(run, code)
        self.assertTrue(run.err.startswith(ERR), repr(run))
        self.assertEqual(run.err.count("\n"), 1, repr(run))
        for f in fragments:
            self.assertIn(f, run.err)

    def assertRefused(self, code, args, *fragments, stdin=None):
        """The command fails with `code` and changes nothing in the spool."""
        before = self.snapshot()
        self.assertError(self.filt(*args, stdin=stdin), code, *fragments)
        self.assertEqual(self.snapshot(), before, "a refused change must leave the spool as it was")

    def rspamd(self):
        fake = FakeRspamd()
        self.addCleanup(fake.close)
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f"spam:\n  rspamd: \"{fake.url}\"\n  timeout: 10s\n")
        return fake

    def decide(self, msg, *extra):
        r = self.ok("test", "u@d.jp", "--json", *extra, stdin=msg)
        j = r.json()
        self.assertEqual(set(j), TEST_KEYS, j)
        return j


class Show(FilterTestCase):
    def test_empty_text_and_json(self):
        r = self.ok("show", "u@d.jp")
        self.assertEqual(r.out, "filters of u@d.jp (evaluation order; the first step that matches ends it)\n"
                                "1. spam filter: off\n2. rules: none\n3. auto-reply: off\n4. forward profiles: none\n")
        self.assertEqual(r.err, "")
        self.assertEqual(self.show(), {
            "address": "u@d.jp",
            "spam": {"enabled": False, "action": "tag", "tag": "[SPAM]", "inert": False},
            "rules": [],
            "autoreply": {"enabled": False, "subject": "", "days": 7, "message": ""},
            "forward": []})
        self.assertFalse(os.path.exists(self.filters_file), "show must not create filters.yaml")

    def test_everything_in_evaluation_order(self):
        self.ok("spam", "set", "u@d.jp", "--action", "delete")
        self.ok("rule", "add", "u@d.jp", "--if", "subject contains 未承諾広告", "--action", "delete")
        self.ok("rule", "add", "u@d.jp", "--if", "size > 10M", "--action", "bounce")
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org", "--to", "b@y.org", "--if", "from contains boss")
        self.ok("forward", "add", "u@d.jp", "--to", "c@z.org", "--no-keep")
        r = self.ok("show", "u@d.jp")
        self.assertEqual(r.out, "filters of u@d.jp (evaluation order; the first step that matches ends it)\n"
                                "1. spam filter: on: delete spam (inert: spam.rspamd is not set in mailhost.yaml)\n"
                                "2. rules:\n"
                                "   1. if subject contains 未承諾広告: delete\n"
                                "   2. if size > 10M: bounce to the sender\n"
                                "3. auto-reply: off\n"
                                "4. forward profiles:\n"
                                "   1. if from contains boss: forward to a@x.org, b@y.org; keep a copy\n"
                                "   2. if all: forward to c@z.org; no copy kept\n")
        j = self.show()
        self.assertEqual(set(j), FILTER_KEYS)
        self.assertEqual(j["spam"], {"enabled": True, "action": "delete", "tag": "[SPAM]", "inert": True})
        self.assertEqual(j["rules"], [{"number": 1, "if": "subject contains 未承諾広告", "action": "delete"},
                                      {"number": 2, "if": "size > 10M", "action": "bounce"}])
        self.assertEqual(j["forward"], [
            {"number": 1, "if": "from contains boss", "to": ["a@x.org", "b@y.org"], "keep": True, "inert": False,
             "inert_reason": None},
            {"number": 2, "if": "all", "to": ["c@z.org"], "keep": False, "inert": False, "inert_reason": None}])

    def test_inert_profiles_are_marked(self):
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org")
        self.filt("forward", "add", "u@d.jp", "--to", "b@x.org", "--if", "subject is x")
        self.assertIn("   2. if subject is x: forward to b@x.org; keep a copy "
                      "(inert: after profile 1, which matches all mail)\n", self.ok("show", "u@d.jp").out)
        self.assertEqual([(p["inert"], p["inert_reason"]) for p in self.show()["forward"]],
                         [(False, None), (True, "after profile 1, which matches all mail")])
        self.ok("autoreply", "set", "u@d.jp", "--message-file", "-", stdin="away\n")
        out = self.ok("show", "u@d.jp").out
        self.assertIn("   1. if all: forward to a@x.org; keep a copy (inert: auto-reply is on)\n", out)
        self.assertEqual([p["inert_reason"] for p in self.show()["forward"]], ["auto-reply is on"] * 2)

    def test_common_options_on_either_side(self):
        r = self.run_tool("mh-filter", "--json", "--spool", self.spool, "show", "u@d.jp", env={"MH_SPOOL": "/nonexistent"})
        self.assertEqual(r.json()["address"], "u@d.jp")
        r = self.run_tool("mh-filter", "show", "u@d.jp", "--spool", self.spool, "--json",
                          env={"MH_SPOOL": "/nonexistent"})
        self.assertEqual(r.json()["address"], "u@d.jp")
        self.assertEqual(self.ok("--quiet", "rule", "add", "u@d.jp", "--if", "all", "--action", "delete").out, "")
        self.assertIn("mh-filter (mailhost)", self.ok("--version").out)
        self.assertIn("forward", self.ok("--help").out)

    def test_unicode_domain_and_upper_case_address(self):
        self.add_domain("例え.jp")
        self.add_account("taro@例え.jp")
        self.ok("rule", "add", "TARO@例え.jp", "--if", "from is spam@例え.jp", "--action", "delete")
        j = self.ok("show", "taro@xn--r8jz45g.jp", "--json").json()
        self.assertEqual(j["address"], "taro@xn--r8jz45g.jp")
        self.assertEqual(j["rules"][0]["if"], "from is spam@例え.jp")


class Forward(FilterTestCase):
    def test_add_prints_the_number(self):
        r = self.ok("forward", "add", "u@d.jp", "--to", "a@x.org", "--if", "from contains boss")
        self.assertEqual(r.out, "forward profile 1 added: if from contains boss: forward to a@x.org; keep a copy\n")
        self.assertEqual(r.err, "")
        j = self.ok("forward", "add", "u@d.jp", "--to", "b@x.org", "--to", "C@例え.JP", "--no-keep", "--json").json()
        self.assertEqual(j, {"address": "u@d.jp", "profile": 2, "number": 2, "if": "all",
                             "to": ["b@x.org", "C@xn--r8jz45g.jp"], "keep": False, "inert": False,
                             "inert_reason": None, "warnings": []})
        r = self.ok("forward", "add", "u@d.jp", "--to", "d@x.org", "--if", "size > 1M")
        self.assertTrue(r.out.startswith("forward profile 3 added"), r)
        with open(self.filters_file, encoding="utf-8") as f:
            text = f.read()
        self.assertIn('{if: "from contains boss", to: ["a@x.org"], keep: true}', text)

    def test_warns_after_an_all_profile(self):
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org", "--if", "subject contains a")
        self.ok("forward", "add", "u@d.jp", "--to", "b@x.org")  # all
        r = self.ok("forward", "add", "u@d.jp", "--to", "c@x.org", "--if", "from is x@y.org")
        self.assertEqual(r.err, WARN + "profile 3 comes after profile 2 (all) and will never be used\n")
        self.assertTrue(r.out.startswith("forward profile 3 added"))
        r = self.ok("forward", "add", "u@d.jp", "--to", "d@x.org", "--json")
        self.assertEqual(r.json()["warnings"], ["profile 4 comes after profile 2 (all) and will never be used"])
        self.assertEqual(r.json()["inert_reason"], "after profile 2, which matches all mail")
        self.assertEqual(len(self.show()["forward"]), 4, "the warning does not refuse the profile")

    def test_warns_while_autoreply_is_on(self):
        self.ok("autoreply", "set", "u@d.jp", "--message-file", "-", stdin="away\n")
        r = self.ok("forward", "add", "u@d.jp", "--to", "a@x.org")
        self.assertIn(WARN + "auto-reply is on: forward profiles do not run until 'mh-filter autoreply off u@d.jp'",
                      r.err)

    def test_ten_profiles_then_65(self):
        for i in range(10):
            self.ok("forward", "add", "u@d.jp", "--to", f"a{i}@x.org", "--if", f"subject contains {i}")
        self.assertRefused(65, ["forward", "add", "u@d.jp", "--to", "z@x.org"],
                           "u@d.jp already has 10 forward profiles, the most allowed")

    def test_five_destinations_then_65(self):
        five = [a for i in range(5) for a in ("--to", f"a{i}@x.org")]
        self.assertEqual(self.ok("forward", "add", "u@d.jp", *five, "--json").json()["to"],
                         [f"a{i}@x.org" for i in range(5)])
        self.assertRefused(65, ["forward", "add", "u@d.jp", *five, "--to", "f@x.org"],
                           "at most 5 destinations per forward profile (6 given)")

    def test_programs_files_and_self_are_refused(self):
        self.ok("forward", "add", "u@d.jp", "--to", "keep@x.org")
        cases = [("|/bin/sh", "a forward to a program is not possible"),
                 ("/etc/passwd", "a forward to a file is not possible"),
                 ("u@d.jp", "a forward to the account itself would loop"),
                 ("U@D.JP", "a forward to the account itself would loop"),
                 ("nodomain", "no '@'"),
                 ("a b@x.org", "contains a space or a control character")]
        for dest, why in cases:
            with self.subTest(dest=dest):
                self.assertRefused(65, ["forward", "add", "u@d.jp", "--to", dest], why)
        self.assertRefused(65, ["forward", "add", "u@d.jp", "--to", "a@x.org", "--to", "a@X.ORG"],
                           "destination a@x.org is given twice")

    def test_bad_condition_shows_where(self):
        self.assertRefused(65, ["forward", "add", "u@d.jp", "--to", "a@x.org", "--if", "subjet contains x"],
                           "in 'subjet contains x' at column 1: unknown field 'subjet'")
        self.assertRefused(65, ["forward", "add", "u@d.jp", "--to", "a@x.org", "--if", "subject has x"],
                           "at column 9: unknown operator 'has'")
        self.assertRefused(65, ["rule", "add", "u@d.jp", "--if", "size > lots", "--action", "delete"],
                           "in 'size > lots' at column 8")

    def test_unknown_account_and_domain(self):
        self.assertRefused(67, ["forward", "add", "nobody@d.jp", "--to", "a@x.org"], "no such account: nobody@d.jp")
        self.assertRefused(68, ["forward", "add", "u@e.jp", "--to", "a@x.org"], "no such domain: e.jp")
        for args in (["show", "nobody@d.jp"], ["test", "nobody@d.jp"], ["export", "nobody@d.jp", "--sieve"],
                     ["spam", "off", "nobody@d.jp"], ["autoreply", "off", "nobody@d.jp"],
                     ["rule", "del", "nobody@d.jp", "--all"]):
            with self.subTest(args=args):
                self.assertRefused(67, args, "no such account", stdin=b"")
        self.assertRefused(65, ["show", "bad..name@d.jp"], "invalid name")

    def test_missing_to_is_a_usage_error(self):
        self.assertRefused(64, ["forward", "add", "u@d.jp"], "--to is required")

    def test_del_n_and_all(self):
        for i in range(3):
            self.ok("forward", "add", "u@d.jp", "--to", f"a{i}@x.org", "--if", f"subject contains {i}")
        r = self.ok("forward", "del", "u@d.jp", "2")
        self.assertEqual(r.out, "forward profile 2 deleted; 2 left (later ones moved up by one)\n")
        self.assertEqual([p["to"] for p in self.show()["forward"]], [["a0@x.org"], ["a2@x.org"]])
        j = self.ok("forward", "del", "u@d.jp", "2", "--json").json()
        self.assertEqual(j["removed"], 1)
        self.assertEqual(j["remaining"], 1)
        self.assertEqual([p["number"] for p in j["forward"]], [1])
        self.assertRefused(65, ["forward", "del", "u@d.jp", "2"], "no forward profile 2; the account has 1 forward profile")
        self.assertRefused(65, ["forward", "del", "u@d.jp", "0"], "invalid forward profile number '0'")
        self.assertRefused(65, ["forward", "del", "u@d.jp", "x"], "invalid forward profile number 'x'")
        self.assertRefused(64, ["forward", "del", "u@d.jp"], "give either N or --all")
        self.assertRefused(64, ["forward", "del", "u@d.jp", "1", "--all"], "give either N or --all")
        j = self.ok("forward", "del", "u@d.jp", "--all", "--json").json()
        self.assertEqual(j, {"address": "u@d.jp", "removed": 1, "remaining": 0, "forward": []})
        self.assertEqual(self.ok("forward", "del", "u@d.jp", "--all").out, "0 forward profiles deleted\n")


class Rules(FilterTestCase):
    def test_add_and_del(self):
        r = self.ok("rule", "add", "u@d.jp", "--if", "subject contains 未承諾広告", "--action", "delete")
        self.assertEqual(r.out, "rule 1 added: if subject contains 未承諾広告: delete\n")
        j = self.ok("rule", "add", "u@d.jp", "--if", "Header X-Mailer  IS  Bulk  Mailer ", "--action", "bounce",
                    "--json").json()
        self.assertEqual(j, {"address": "u@d.jp", "rule": 2, "number": 2, "if": "header X-Mailer is Bulk  Mailer",
                             "action": "bounce"})
        self.assertRefused(64, ["rule", "add", "u@d.jp", "--if", "all", "--action", "discard"], "--action")
        self.assertRefused(64, ["rule", "add", "u@d.jp", "--action", "delete"], "--if is required")
        self.assertRefused(65, ["rule", "del", "u@d.jp", "3"], "no rule 3; the account has 2 rules")
        self.assertEqual(self.ok("rule", "del", "u@d.jp", "1").out, "rule 1 deleted; 1 left (later ones moved up by one)\n")
        self.assertEqual(self.show()["rules"], [{"number": 1, "if": "header X-Mailer is Bulk  Mailer",
                                                 "action": "bounce"}])
        self.assertEqual(self.ok("rule", "del", "u@d.jp", "--all").out, "1 rule deleted\n")
        self.assertEqual(self.show()["rules"], [])


class AutoReply(FilterTestCase):
    def test_set_from_stdin_and_file(self):
        r = self.ok("autoreply", "set", "u@d.jp", "--message-file", "-", "--subject", "不在のお知らせ", "--days", "3",
                    stdin="ただいま不在です。\r\n月曜日に戻ります。\r\n")
        self.assertEqual(r.out, "auto-reply of u@d.jp on: each sender is answered at most once per 3 days\n")
        self.assertEqual(self.show()["autoreply"], {"enabled": True, "subject": "不在のお知らせ", "days": 3,
                                                    "message": "ただいま不在です。\n月曜日に戻ります。\n"})
        f = os.path.join(self.tmp, "away.txt")
        with open(f, "w", encoding="utf-8") as fh:
            fh.write("Back on Monday")
        j = self.ok("autoreply", "set", "u@d.jp", "--message-file", f, "--json").json()
        self.assertEqual(j["autoreply"], {"enabled": True, "subject": "", "days": 7, "message": "Back on Monday\n"})
        self.assertEqual(j["warnings"], [])
        out = self.ok("show", "u@d.jp").out
        self.assertIn("3. auto-reply: on: deliver and answer each sender at most once per 7 days\n"
                      "   subject: Auto: <the original subject>\n"
                      "   message:\n"
                      "     | Back on Monday\n", out)

    def test_warns_that_forwards_pause(self):
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org")
        r = self.ok("autoreply", "set", "u@d.jp", "--message-file", "-", stdin="away\n")
        self.assertEqual(r.err, WARN + "1 forward profile does not run while auto-reply is on\n")
        r = self.ok("autoreply", "off", "u@d.jp")
        self.assertEqual(r.out, "auto-reply of u@d.jp off\n1 forward profile runs again\n")
        j = self.ok("autoreply", "off", "u@d.jp", "--json").json()
        self.assertEqual(j, {"address": "u@d.jp", "changed": False,
                             "autoreply": {"enabled": False, "subject": "", "days": 7, "message": ""}})

    def test_bad_input(self):
        set_ = ["autoreply", "set", "u@d.jp", "--message-file", "-"]
        self.ok(*set_, stdin="first\n")
        bad_utf8 = os.path.join(self.tmp, "sjis.txt")
        with open(bad_utf8, "wb") as fh:
            fh.write("不在です".encode("shift_jis"))
        self.assertRefused(65, ["autoreply", "set", "u@d.jp", "--message-file", bad_utf8], "is not valid UTF-8")
        big = os.path.join(self.tmp, "big.txt")
        with open(big, "w") as fh:
            fh.write("a" * (64 * 1024 + 1))
        self.assertRefused(65, ["autoreply", "set", "u@d.jp", "--message-file", big], "larger than 65536 bytes")
        with open(big, "w") as fh:
            fh.write("a" * (64 * 1024 - 1))
        self.ok("autoreply", "set", "u@d.jp", "--message-file", big)  # 64 KiB with the final LF is fine
        self.assertRefused(65, set_ + ["--days", "0"], "invalid --days '0'", stdin="x\n")
        self.assertRefused(65, set_ + ["--days", "366"], "1 to 365", stdin="x\n")
        self.assertRefused(65, set_ + ["--days", "week"], "invalid --days 'week'", stdin="x\n")
        self.assertRefused(65, set_, "is empty", stdin=" \n\n")
        self.assertRefused(65, set_, "control character", stdin="bell\x07\n")
        self.assertRefused(65, set_ + ["--subject", "a" * 257], "longer than 256 bytes", stdin="x\n")
        self.assertRefused(65, ["autoreply", "set", "u@d.jp", "--message-file", os.path.join(self.tmp, "none")],
                           "cannot open message file")
        self.assertRefused(64, ["autoreply", "set", "u@d.jp"], "--message-file is required")
        self.ok(*set_, "--days", "365", stdin="x\n")
        self.ok(*set_, "--days", "1", stdin="x\n")


class Spam(FilterTestCase):
    def test_set_without_rspamd_warns_but_saves(self):
        r = self.ok("spam", "set", "u@d.jp", "--action", "tag")
        self.assertEqual(r.out, 'spam filter of u@d.jp on: tag spam with "[SPAM]" and deliver it\n')
        self.assertEqual(r.err, WARN + "spam filters are inert until spam.rspamd is configured in " +
                         self.path("mailhost.yaml") + " (the setting is saved)\n")
        self.assertEqual(self.show()["spam"], {"enabled": True, "action": "tag", "tag": "[SPAM]", "inert": True})

    def test_set_with_rspamd_and_off(self):
        self.rspamd()
        r = self.ok("spam", "set", "u@d.jp", "--action", "tag", "--tag", "【迷惑】", "--json")
        self.assertEqual(r.err, "")
        self.assertEqual(r.json(), {"address": "u@d.jp", "warnings": [],
                                    "spam": {"enabled": True, "action": "tag", "tag": "【迷惑】", "inert": False}})
        self.ok("spam", "set", "u@d.jp", "--action", "delete")
        self.assertEqual(self.show()["spam"]["action"], "delete")
        self.assertEqual(self.ok("spam", "off", "u@d.jp").out, "spam filter of u@d.jp off\n")
        self.assertEqual(self.ok("spam", "off", "u@d.jp").out, "spam filter of u@d.jp was already off\n")
        self.assertFalse(self.show()["spam"]["enabled"])

    def test_bad_input(self):
        self.assertRefused(64, ["spam", "set", "u@d.jp", "--action", "drop"], "--action")
        self.assertRefused(64, ["spam", "set", "u@d.jp", "--action", "delete", "--tag", "x"],
                           "--tag applies only to --action tag")
        self.assertRefused(65, ["spam", "set", "u@d.jp", "--action", "tag", "--tag", "x" * 65], "longer than 64 bytes")
        self.assertRefused(65, ["spam", "set", "u@d.jp", "--action", "tag", "--tag", ""], "the tag is empty")

    def test_broken_mailhost_yaml_changes_nothing(self):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write("spam:\n  rspamd: ftp://x\n")
        self.assertRefused(78, ["spam", "set", "u@d.jp", "--action", "tag"], "mailhost.yaml:2", "spam.rspamd")


class BrokenFile(FilterTestCase):
    def test_78_names_file_and_line(self):
        self.ok("rule", "add", "u@d.jp", "--if", "all", "--action", "delete")
        with open(self.filters_file, "a") as f:
            f.write("forwrd:\n  - {if: all, to: [a@x.org]}\n")
        with open(self.filters_file) as f:
            lines = f.read().count("\n")
        for args in (["show", "u@d.jp"], ["forward", "add", "u@d.jp", "--to", "a@x.org"], ["test", "u@d.jp"],
                     ["export", "u@d.jp", "--sieve"], ["rule", "del", "u@d.jp", "--all"]):
            with self.subTest(args=args):
                self.assertRefused(78, args, f"{self.filters_file}:{lines - 1}: key 'forwrd'", stdin=message())

    def test_78_bad_condition_in_the_file(self):
        with open(self.filters_file, "w") as f:
            f.write('rules:\n  - {if: "subject contians x", action: delete}\n')
        self.assertRefused(78, ["show", "u@d.jp"], f"{self.filters_file}:2", "unknown operator 'contians'")

    def test_78_program_forward_in_the_file(self):
        with open(self.filters_file, "w") as f:
            f.write('forward:\n  - {if: all, to: ["|/usr/bin/evil"]}\n')
        self.assertRefused(78, ["test", "u@d.jp"], f"{self.filters_file}:2", "program", stdin=message())


class TestCommand(FilterTestCase):
    def test_plain_message_goes_nowhere_special(self):
        before = self.snapshot()
        r = self.ok("test", "u@d.jp", stdin=message())
        self.assertEqual(r.out, "step: none (no filter matched)\naction: deliver to the mailbox\n")
        j = self.decide(message())
        self.assertEqual(j, {"address": "u@d.jp", "sender": "alice@example.org", "size": len(message()),
                             "step": "none", "number": None, "action": "deliver", "keep": True, "destinations": [],
                             "reply": None, "loop": False, "spam": None, "detail": "no filter step: delivered"})
        self.assertEqual(self.snapshot(), before, "test stores and sends nothing")

    def test_matching_rule(self):
        self.ok("rule", "add", "u@d.jp", "--if", "subject contains lottery", "--action", "delete")
        self.ok("rule", "add", "u@d.jp", "--if", "from matches *@spam.example", "--action", "bounce")
        r = self.ok("test", "u@d.jp", stdin=message(subject="You won the LOTTERY"))
        self.assertEqual(r.out, "step: rule 1 (subject contains lottery)\n"
                                "action: discard (not stored, no notice to anyone)\n")
        j = self.decide(message(sender="Bulk <x@spam.example>"))
        self.assertEqual((j["step"], j["number"], j["action"], j["keep"]), ("rule", 2, "bounce", False))
        r = self.ok("test", "u@d.jp", stdin=message(sender="x@spam.example"))
        self.assertIn("action: bounce (not stored; an error mail to x@spam.example)\n", r.out)

    def test_iso_2022_jp_subject(self):
        self.ok("rule", "add", "u@d.jp", "--if", "subject contains 重要", "--action", "delete")
        subject = encoded("【重要】会議", "iso-2022-jp")
        self.assertTrue(subject.lower().startswith("=?iso-2022-jp?b?"), subject)
        j = self.decide(message(subject=subject))
        self.assertEqual((j["step"], j["number"], j["action"]), ("rule", 1, "discard"))
        self.assertEqual(self.decide(message(subject=encoded("【連絡】会議", "iso-2022-jp")))["step"], "none")

    def test_full_width_matches_ascii(self):
        self.ok("rule", "add", "u@d.jp", "--if", "subject contains abc", "--action", "delete")
        self.assertEqual(self.decide(message(subject=encoded("Re: ＡＢＣ社の件")))["step"], "rule")
        self.ok("rule", "del", "u@d.jp", "--all")
        self.ok("rule", "add", "u@d.jp", "--if", "subject is ＡＢＣ", "--action", "delete")
        self.assertEqual(self.decide(message(subject="abc"))["step"], "rule")
        self.assertEqual(self.decide(message(subject="abcd"))["step"], "none")

    def test_forward_profile(self):
        self.ok("forward", "add", "u@d.jp", "--to", "z@x.org", "--if", "subject is never")
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org", "--to", "b@y.org", "--if", "from contains boss")
        r = self.ok("test", "u@d.jp", stdin=message(sender="The Boss <boss@corp.example>"))
        self.assertEqual(r.out, "step: forward profile 2 (from contains boss)\n"
                                "action: forward to a@x.org, b@y.org; keep a copy\n")
        self.ok("forward", "add", "u@d.jp", "--to", "c@z.org", "--no-keep")
        j = self.decide(message())
        self.assertEqual((j["step"], j["number"], j["action"], j["keep"], j["destinations"]),
                         ("forward", 3, "forward", False, ["c@z.org"]))
        self.assertIn("action: forward to c@z.org; no copy kept\n", self.ok("test", "u@d.jp", stdin=message()).out)

    def test_loop_keeps_the_copy(self):
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org", "--no-keep")
        j = self.decide(message(extra=["Delivered-To: u@d.jp"]))
        self.assertEqual((j["step"], j["action"], j["loop"], j["keep"], j["destinations"]),
                         ("forward", "deliver", True, True, []))
        r = self.ok("test", "u@d.jp", stdin=message(extra=["Delivered-To: u@d.jp"]))
        self.assertIn("forward suppressed", r.out)

    def test_autoreply(self):
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org")
        self.ok("autoreply", "set", "u@d.jp", "--message-file", "-", stdin="away\n")
        r = self.ok("test", "u@d.jp", stdin=message())
        self.assertEqual(r.out, "step: auto-reply\naction: deliver to the mailbox and answer the sender\n"
                                "auto-reply: would be sent to alice@example.org\n")
        j = self.decide(message())
        self.assertEqual((j["step"], j["action"], j["keep"], j["reply"]),
                         ("autoreply", "autoreply", True, {"would_send": True, "reason": None}))
        self.assertFalse(os.path.exists(self.path("domains", "d.jp", "accounts", "u", "autoreply.seen")),
                         "test records no reply")

    def test_autoreply_not_sent_to_list_mail(self):
        self.ok("autoreply", "set", "u@d.jp", "--message-file", "-", stdin="away\n")
        list_mail = message(extra=["List-Id: <dev.lists.example.org>"])
        r = self.ok("test", "u@d.jp", stdin=list_mail)
        self.assertIn("auto-reply: not sent (list mail)\n", r.out)
        self.assertEqual(self.decide(list_mail)["reply"], {"would_send": False, "reason": "list_mail"})
        reasons = {
            "null_sender": (message(), ["--sender", ""]),
            "auto_submitted": (message(extra=["Auto-Submitted: auto-replied"]), []),
            "mailer_daemon": (message(sender="MAILER-DAEMON@mx.example.org"), []),
            "not_addressed": (message(to="someone@else.example"), []),
            "loop": (message(extra=["Delivered-To: u@d.jp"]), []),
        }
        for reason, (msg, extra) in reasons.items():
            with self.subTest(reason=reason):
                self.assertEqual(self.decide(msg, *extra)["reply"], {"would_send": False, "reason": reason})

    def test_sender(self):
        self.assertEqual(self.decide(message(extra=["Return-Path: <bounce@lists.example>"]))["sender"],
                         "bounce@lists.example")
        self.assertEqual(self.decide(message(extra=["Return-Path: <>"]))["sender"], "")
        self.assertEqual(self.decide(message(sender="plain@example.net (Plain)"))["sender"], "plain@example.net")
        self.assertEqual(self.decide(message(), "--sender", "env@example.com")["sender"], "env@example.com")
        self.assertEqual(self.decide(b"Subject: no from\n\nx\n")["sender"], "")

    def test_crlf_and_empty_header(self):
        self.ok("rule", "add", "u@d.jp", "--if", "subject is hello", "--action", "delete")
        self.assertEqual(self.decide(message(crlf=True))["step"], "rule")
        j = self.decide(b"\r\nSubject: hello\r\n")  # a body only: no header at all
        self.assertEqual((j["step"], j["size"]), ("none", 18))
        self.assertEqual(self.decide(b"")["size"], 0)

    def test_header_past_the_limit_is_not_seen(self):
        self.ok("rule", "add", "u@d.jp", "--if", "header X-Late is yes", "--action", "delete")
        filler = ["X-Filler: " + "f" * 990] * 1100  # about 1.1 MB of header, over the 1 MiB read
        self.assertEqual(self.decide(message(extra=["X-Late: yes"]))["step"], "rule")
        self.assertEqual(self.decide(message(extra=filler + ["X-Late: yes"]))["step"], "none")

    def test_spam_with_fake_rspamd(self):
        fake = self.rspamd()
        self.ok("spam", "set", "u@d.jp", "--action", "tag")
        self.ok("rule", "add", "u@d.jp", "--if", "all", "--action", "delete")
        tmpdir = os.path.join(self.tmp, "tmpdir")
        os.mkdir(tmpdir)
        env = {"TMPDIR": tmpdir}
        spam = message(extra=["X-Spam-Flag: YES"])
        j = self.ok("test", "u@d.jp", "--json", stdin=spam, env=env).json()
        self.assertEqual((j["step"], j["action"], j["keep"], j["spam"]["verdict"]), ("spam", "tag", True, "spam"))
        self.assertEqual(fake.sizes[-1], len(spam), "rspamd got the whole message")
        r = self.ok("test", "u@d.jp", stdin=spam, env=env)
        self.assertIn('step: spam filter (tag)\naction: deliver with the subject prefixed "[SPAM]" and X-Spam-Flag: YES\n',
                      r.out)
        j = self.ok("test", "u@d.jp", "--json", stdin=message(), env=env).json()
        self.assertEqual((j["step"], j["spam"]["verdict"]), ("rule", "ham"))
        self.ok("spam", "set", "u@d.jp", "--action", "delete")
        j = self.ok("test", "u@d.jp", "--json", stdin=spam, env=env).json()
        self.assertEqual((j["step"], j["action"], j["keep"]), ("spam", "discard", False))
        self.assertEqual(os.listdir(tmpdir), [], "the temp copy of the message is gone")
        # rspamd is asked only when the account has the spam filter on.
        asked = len(fake.sizes)
        self.ok("spam", "off", "u@d.jp")
        self.assertIsNone(self.decide(spam)["spam"])
        self.assertEqual(len(fake.sizes), asked)

    def test_spam_without_rspamd_is_unknown(self):
        self.ok("spam", "set", "u@d.jp", "--action", "delete")
        j = self.decide(message(extra=["X-Spam-Flag: YES"]))
        self.assertEqual(j["step"], "none")
        self.assertEqual(j["spam"]["verdict"], "unknown")
        self.assertIn("spam.rspamd", j["spam"]["detail"])

    def test_rspamd_down_is_unknown(self):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f"spam:\n  rspamd: \"http://127.0.0.1:{mhtest.free_port()}\"\n  timeout: 2s\n")
        self.ok("spam", "set", "u@d.jp", "--action", "delete")
        j = self.decide(message())
        self.assertEqual((j["step"], j["spam"]["verdict"]), ("none", "unknown"))


def timed_run(args, data, env):
    """(seconds, max RSS in KiB) of one mh-filter run fed `data`, measured in a
    wrapper process so the RSS is that of mh-filter alone."""
    wrapper = ("import resource, subprocess, sys, time\n"
               "t = time.monotonic()\n"
               "p = subprocess.run(sys.argv[1:], stdin=sys.stdin, stdout=subprocess.PIPE)\n"
               "t = time.monotonic() - t\n"
               "print(p.returncode, t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], input=data, capture_output=True, env=env,
                          timeout=300)
    code, seconds, rss = proc.stdout.split()
    if code != b"0":
        raise AssertionError(f"mh-filter failed: {proc.stderr!r}")
    return float(seconds), int(rss)


class BigMessages(FilterTestCase):
    def test_3mb_and_30mb_are_linear_and_not_held(self):
        self.ok("rule", "add", "u@d.jp", "--if", "size > 29M", "--action", "bounce")
        self.ok("forward", "add", "u@d.jp", "--to", "a@x.org", "--if", "subject contains big")
        env = dict(os.environ, MH_SPOOL=self.spool)
        args = [mhtest.tool_path("mh-filter"), "test", "u@d.jp", "--json"]
        small, large = big_message(3 * 1024 * 1024), big_message(30 * 1024 * 1024)
        t3, rss3 = min(timed_run(args, small, env) for _ in range(3))
        t30, rss30 = min(timed_run(args, large, env) for _ in range(2))
        print(f"\nmh-filter test: 3 MB in {t3 * 1000:.1f} ms, 30 MB in {t30 * 1000:.1f} ms "
              f"(ratio {t30 / t3:.1f}); max RSS {rss3 / 1024:.1f} MiB at 3 MB, {rss30 / 1024:.1f} MiB at 30 MB",
              file=sys.stderr)
        self.assertLess(t30, 15 * t3, "reading stdin must be linear")
        self.assertLess(t30, 20, "30 MB took too long")
        # Relative to the 3 MB run, so a sanitizer build's bigger baseline does not matter.
        self.assertLess(rss30, rss3 + 8 * 1024, "the message must not be held in memory")
        j = self.decide(large)
        self.assertEqual((j["size"], j["step"], j["number"], j["action"]), (30 * 1024 * 1024, "rule", 1, "bounce"))
        j = self.decide(small)
        self.assertEqual((j["size"], j["step"], j["number"]), (3 * 1024 * 1024, "forward", 1))

    def test_30mb_through_rspamd(self):
        fake = self.rspamd()
        self.ok("spam", "set", "u@d.jp", "--action", "delete")
        large = big_message(30 * 1024 * 1024)
        start = time.monotonic()
        j = self.decide(large)
        print(f"\nmh-filter test with rspamd: 30 MB in {(time.monotonic() - start) * 1000:.0f} ms", file=sys.stderr)
        self.assertEqual((j["step"], j["spam"]["verdict"]), ("none", "ham"))
        self.assertEqual(fake.sizes, [30 * 1024 * 1024])


class Export(FilterTestCase):
    def test_text_and_json(self):
        self.ok("rule", "add", "u@d.jp", "--if", 'subject contains say "hi" \\ bye', "--action", "bounce")
        script = self.ok("export", "u@d.jp", "--sieve").out
        self.assertIn('require ["reject"];\n', script)
        self.assertIn('if header :contains "Subject" "say \\"hi\\" \\\\ bye" {\n  reject ', script)
        j = self.ok("export", "u@d.jp", "--sieve", "--json").json()
        self.assertEqual(j, {"address": "u@d.jp", "format": "sieve", "script": script})
        self.assertError(self.filt("export", "u@d.jp"), 64, "--sieve")


if __name__ == "__main__":
    mhtest.main()
