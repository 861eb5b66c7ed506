"""mh-list run as a real binary (SPEC §7, §9): every command in text and --json, with
the exit codes of the contract — create/--exist-ok, the shared name space with accounts
(both ways, exact stderr), invalid names (65), no such domain (68) / list (67), the
--max-size range, set round-tripping through show --json, members from arguments and
from stdin (10,000 in one run; invalid lines mixed in → the valid ones applied, exit 65),
moderators, delete without --force, the archive (a post placed by hand printed
byte-identically) and the moderation queue (pending items placed by hand; approve and
reject through libspool's list_mail)."""

import base64
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

ERR = "mh-list: error: "
D = "example.jp"
ML = "ml@example.jp"
SETTINGS = {"list", "name", "domain", "policy", "admin", "max_size", "subject_tag", "bomb_posts", "bomb_age",
            "bomb_block", "confirm_expiry", "moderators", "created"}
SHOW_KEYS = SETTINGS | {"post_address", "bounces_address", "unsubscribe_address", "members", "disabled_members",
                        "pending", "last_sequence", "archive_bytes", "archive_posts"}


class ListTestCase(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain(D)

    def ml(self, *args, stdin=None, **kw):
        return self.run_tool("mh-list", *args, stdin=stdin, **kw)

    def ok(self, *args, stdin=None):
        r = self.ml(*args, stdin=stdin)
        self.assertExit(r, 0)
        return r

    def js(self, *args, stdin=None, code=0):
        r = self.ml("--json", *args, stdin=stdin)
        self.assertExit(r, code)
        return r.json()

    def create(self, lst=ML, *extra):
        self.ok("create", lst, *extra)

    def list_dir(self, lst=ML, *parts):
        name, domain = lst.split("@")
        return self.path("domains", domain, "lists", name, *parts)

    def run_bytes(self, *args, stdin=None):
        """A run with stdin and stdout as bytes (run_tool works in text)."""
        env = dict(os.environ, MH_SPOOL=self.spool)
        return subprocess.run([mhtest.tool_path("mh-list"), *args], input=stdin, capture_output=True, env=env,
                              timeout=120)

    def assertError(self, run, code, message):
        """Exit `code` and exactly one error line `message` on stderr."""
        self.assertExit(run, code)
        self.assertEqual(run.err, ERR + message + "\n")


class CreateDeleteTest(ListTestCase):
    def test_create_defaults_in_show(self):
        r = self.ok("create", ML)
        self.assertEqual(r.out, "list ml@example.jp created\n")
        s = self.js("show", ML)
        self.assertEqual(set(s) - {"warnings"}, SHOW_KEYS)
        self.assertEqual(s["list"], ML)
        self.assertEqual((s["name"], s["domain"]), ("ml", D))
        self.assertEqual(s["policy"], "members")
        self.assertEqual(s["admin"], "")
        self.assertEqual(s["max_size"], 10000 * 1024)
        self.assertEqual(s["subject_tag"], "[{list}:{seq}]")
        self.assertEqual((s["bomb_posts"], s["bomb_age"], s["bomb_block"]), (3, 300, 3600))
        self.assertEqual(s["moderators"], [])
        self.assertEqual((s["members"], s["pending"], s["last_sequence"], s["archive_posts"]), (0, 0, 0, 0))
        self.assertEqual(s["bounces_address"], "ml+bounces@example.jp")
        self.assertEqual(s["unsubscribe_address"], "ml+unsubscribe@example.jp")
        self.assertRegex(s["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertTrue(os.path.isfile(self.list_dir(ML, "list.yaml")))
        text = self.ok("show", ML).out
        self.assertIn("policy:", text)
        self.assertIn("ml+unsubscribe@example.jp", text)

    def test_create_with_options(self):
        self.create(ML, "--policy", "anyone", "--admin", "Owner@Example.ORG", "--max-size", "500K")
        s = self.js("show", ML)
        self.assertEqual((s["policy"], s["admin"], s["max_size"]), ("anyone", "Owner@example.org", 500 * 1024))

    def test_create_twice_and_exist_ok(self):
        self.create()
        before = self.snapshot()
        self.assertError(self.ml("create", ML), 73, "list ml@example.jp already exists")
        r = self.ok("create", ML, "--exist-ok", "--policy", "anyone")
        self.assertEqual(r.out, "list ml@example.jp already exists (kept)\n")
        self.assertEqual(self.js("create", ML, "--exist-ok"), {"list": ML, "created": False})
        self.assertEqual(self.snapshot(), before, "--exist-ok changes nothing, not even the policy")
        self.assertEqual(self.js("create", "new@example.jp", "--exist-ok"), {"list": "new@example.jp", "created": True})

    def test_name_collision_with_account_both_ways(self):
        self.add_account("taro@example.jp")
        before = self.snapshot()
        for extra in [(), ("--exist-ok",)]:
            self.assertError(self.ml("create", "taro@example.jp", *extra), 73,
                             "the name taro is used by the account taro@example.jp")
        self.assertEqual(self.snapshot(), before)
        self.create()
        r = self.user("add", ML, "--password-stdin", stdin="pw-12345\n")
        self.assertExit(r, 73)
        self.assertEqual(r.err, "mh-user: error: the name ml is used by the mailing list ml@example.jp\n")
        self.assertFalse(os.path.exists(self.path("domains", D, "accounts", "ml")))
        # Case folds: Taro is taro.
        self.assertExit(self.ml("create", "Taro@Example.JP"), 73)

    def test_invalid_names(self):
        for bad in ["bad..name@example.jp", "a/b@example.jp", ".x@example.jp", "x" * 33 + "@example.jp", "noatsign",
                    "ml@", "ml+x@example.jp", "ml@bad_domain", "ml@example.jp/.."]:
            r = self.ml("create", "--", bad)
            self.assertExit(r, 65, bad)
            self.assertTrue(r.err.startswith(ERR), r.err)
        self.assertEqual(self.js("create", "--", "bad..name@example.jp", code=65)["error"]["code"], 65)
        self.assertFalse(os.path.exists(self.path("domains", D, "lists", "bad..name")))
        self.assertExit(self.ml("show", "--", "-ml@example.jp"), 65)

    def test_no_such_domain(self):
        self.assertError(self.ml("create", "ml@nope.jp"), 68, "no such domain: nope.jp")
        self.assertFalse(os.path.exists(self.path("domains", "nope.jp")))
        for args in [("show", "ml@nope.jp"), ("delete", "ml@nope.jp"), ("members", "list", "ml@nope.jp"),
                     ("list", "nope.jp"), ("set", "ml@nope.jp", "--policy", "anyone")]:
            self.assertError(self.ml(*args), 68, "no such domain: nope.jp")

    def test_no_such_list(self):
        missing = "nolist@example.jp"
        for args in [("show", missing), ("delete", missing), ("delete", missing, "--force"),
                     ("set", missing, "--policy", "anyone"), ("members", "add", missing, "a@b.jp"),
                     ("members", "del", missing, "a@b.jp"), ("members", "list", missing),
                     ("moderators", "add", missing, "a@b.jp"), ("moderators", "list", missing), ("pending", missing),
                     ("archive", missing), ("archive", missing, "1")]:
            self.assertError(self.ml(*args), 67, "no such list: nolist@example.jp")
        self.assertError(self.ml("approve", missing, "0" * 20), 67, "no such list: nolist@example.jp")
        self.add_account("taro@example.jp")
        self.assertError(self.ml("show", "taro@example.jp"), 67,
                         "no such list: taro@example.jp (taro@example.jp is an account; see mh-user)")

    def test_max_size_range(self):
        self.create("one@example.jp", "--max-size", "1K")
        self.assertEqual(self.js("show", "one@example.jp")["max_size"], 1024)
        self.create("top@example.jp", "--max-size", "10000K")
        self.assertEqual(self.js("show", "top@example.jp")["max_size"], 10240000)
        before = self.snapshot()
        self.assertError(self.ml("create", ML, "--max-size", "1023"), 65, "max size 1023 is outside 1K–10000K")
        self.assertError(self.ml("create", ML, "--max-size", "10001K"), 65, "max size 10001K is outside 1K–10000K")
        for bad in ["0", "20M", "abc", "-1K", ""]:
            self.assertExit(self.ml("create", ML, "--max-size", bad), 65, bad)
        self.assertEqual(self.snapshot(), before, "a refused create leaves nothing behind")
        self.assertExit(self.ml("set", "one@example.jp", "--max-size", "1023"), 65)
        self.assertExit(self.ml("set", "one@example.jp", "--max-size", "10001K"), 65)
        self.assertEqual(self.js("set", "one@example.jp", "--max-size", "2M")["max_size"], 2 * 1024 * 1024)

    def test_delete_refused_without_force_while_members(self):
        self.create()
        self.ok("members", "add", ML, "a@example.org")
        r = self.ml("delete", ML)
        self.assertExit(r, 1)
        self.assertTrue(r.err.startswith(ERR), r.err)
        self.assertIn("--force", r.err)
        self.assertTrue(os.path.isdir(self.list_dir()))
        self.assertEqual(self.js("delete", ML, "--force"), {"list": ML, "deleted": True})
        self.assertFalse(os.path.exists(self.list_dir()))
        self.assertExit(self.ml("show", ML), 67)

    def test_delete_refused_without_force_while_archive(self):
        self.create()
        with open(self.list_dir(ML, "archive", "new", "00000001"), "wb") as f:
            f.write(b"From: a@example.org\nSubject: x\n\nhello\n")
        r = self.ml("delete", ML)
        self.assertExit(r, 1)
        self.assertIn("--force", r.err)
        self.ok("delete", ML, "--force")

    def test_delete_empty_list(self):
        self.create()
        self.assertEqual(self.ok("delete", ML).out, "list ml@example.jp deleted\n")
        self.assertFalse(os.path.exists(self.list_dir()))
        # The name is free again, for an account too.
        self.add_account(ML)


class SetTest(ListTestCase):
    def setUp(self):
        super().setUp()
        self.create()

    def test_set_round_trips_through_show(self):
        j = self.js("set", ML, "--policy", "moderators", "--admin", "Boss@Example.ORG", "--max-size", "2000K",
                    "--subject-tag", "({list} #{seq})", "--bomb", "5/10m", "--bomb-block", "30m")
        self.assertEqual(sorted(j["changed"]), sorted(["policy", "admin", "max_size", "subject_tag", "bomb",
                                                       "bomb_block"]))
        self.assertTrue(j["warnings"], "moderators without a moderator is warned about")
        s = self.js("show", ML)
        self.assertEqual(s["policy"], "moderators")
        self.assertEqual(s["admin"], "Boss@example.org")
        self.assertEqual(s["max_size"], 2000 * 1024)
        self.assertEqual(s["subject_tag"], "({list} #{seq})")
        self.assertEqual((s["bomb_posts"], s["bomb_age"], s["bomb_block"]), (5, 600, 1800))
        for key in SETTINGS:
            self.assertEqual(j[key], s[key], key)

    def test_set_one_option_keeps_the_others(self):
        self.ok("set", ML, "--bomb", "4/2h", "--bomb-block", "3600s")
        self.ok("set", ML, "--policy", "anyone")
        s = self.js("show", ML)
        self.assertEqual((s["policy"], s["bomb_posts"], s["bomb_age"], s["bomb_block"]), ("anyone", 4, 7200, 3600))

    def test_empty_subject_tag_and_admin(self):
        self.ok("set", ML, "--admin", "x@example.org")
        self.assertEqual(self.js("set", ML, "--subject-tag", "")["subject_tag"], "")
        self.assertEqual(self.js("show", ML)["subject_tag"], "")
        self.ok("set", ML, "--subject-tag", "[{list}]")
        # "--opt=" is an empty value, not "take the next word".
        j = self.js("set", ML, "--subject-tag=", "--admin=")
        self.assertEqual((j["subject_tag"], j["admin"]), ("", ""))
        self.assertEqual(self.js("show", ML)["admin"], "")

    def test_set_without_options_is_usage(self):
        r = self.ml("set", ML)
        self.assertExit(r, 64)
        self.assertIn("at least one", r.err)

    def test_bad_values_change_nothing(self):
        before = self.snapshot()
        for args in [("--bomb", "3"), ("--bomb", "0/5m"), ("--bomb", "x/5m"), ("--bomb", "3/5x"), ("--bomb", "/5m"),
                     ("--bomb-block", "2h"), ("--bomb-block", "soon"), ("--subject-tag", "[{bad}]"),
                     ("--admin", "not an address"), ("--admin", "a@"), ("--max-size", "1G"),
                     ("--policy", "anyone", "--max-size", "0")]:
            r = self.ml("set", ML, *args)
            self.assertExit(r, 65, args)
            self.assertTrue(r.err.startswith(ERR), r.err)
        r = self.ml("set", ML, "--policy", "everyone")
        self.assertExit(r, 64)
        self.assertEqual(self.snapshot(), before)

    def test_common_options_after_the_command(self):
        other = os.path.join(self.tmp, "other")
        os.mkdir(other)
        r = self.run_tool("mh-list", "show", ML, "--json", "--spool", self.spool, env={"MH_SPOOL": other})
        self.assertExit(r, 0)
        self.assertEqual(r.json()["list"], ML)
        r = self.ml("--quiet", "set", ML, "--policy", "anyone")
        self.assertEqual((r.code, r.out), (0, ""))


class ListCommandTest(ListTestCase):
    def test_list_all_and_one_domain(self):
        self.add_domain("shop.jp")
        self.assertEqual(self.ok("list").out, "no lists\n")
        self.create("ml@example.jp")
        self.create("news@example.jp", "--policy", "anyone")
        self.create("info@shop.jp")
        self.ok("members", "add", "news@example.jp", "a@x.org", "b@x.org")
        self.assertEqual(self.ok("list", "--names").out.split(), ["ml@example.jp", "news@example.jp", "info@shop.jp"])
        self.assertEqual(self.ok("list", "shop.jp", "--names").out, "info@shop.jp\n")
        j = self.js("list", D)
        self.assertEqual([x["list"] for x in j["lists"]], ["ml@example.jp", "news@example.jp"])
        news = j["lists"][1]
        self.assertEqual((news["policy"], news["members"], news["last_sequence"]), ("anyone", 2, 0))
        self.assertEqual(self.js("list", "--names"), {"lists": ["ml@example.jp", "news@example.jp", "info@shop.jp"]})
        text = self.ok("list").out
        self.assertTrue(text.startswith("LIST"), text)
        self.assertIn("news@example.jp", text)
        self.assertError(self.ml("list", "nope.jp"), 68, "no such domain: nope.jp")
        self.assertExit(self.ml("list", "bad..domain"), 65)


class MembersTest(ListTestCase):
    def setUp(self):
        super().setUp()
        self.create()

    def members_file(self):
        with open(self.list_dir(ML, "members")) as f:
            return [line.strip() for line in f if line.strip() and not line.startswith("#")]

    def test_add_from_arguments_and_list(self):
        r = self.ok("members", "add", ML, "a@example.org", "B@Example.ORG")
        self.assertEqual(r.out, "members of ml@example.jp: added 2, already there 0, invalid 0\n")
        j = self.js("members", "add", ML, "b@example.org", "c@example.org")
        self.assertEqual((j["added"], j["already"], j["invalid"], j["invalid_inputs"]), (1, 1, 0, []))
        self.assertEqual(self.ok("members", "list", ML).out, "a@example.org\nB@example.org\nc@example.org\n")
        j = self.js("members", "list", ML)
        self.assertEqual(j["count"], 3)
        self.assertEqual(j["members"][0], {"address": "a@example.org", "disabled": False, "bounces": 0,
                                           "disabled_since": None})
        self.assertEqual(self.js("show", ML)["members"], 3)

    def test_add_10000_from_stdin_in_one_run(self):
        addresses = [f"user{i:05d}@example.org" for i in range(10000)]
        stdin = "# exported list\n\n" + "\n".join(addresses) + "\n"
        start = time.monotonic()
        j = self.js("members", "add", ML, stdin=stdin)
        self.assertLess(time.monotonic() - start, 60)
        self.assertEqual((j["added"], j["already"], j["invalid"]), (10000, 0, 0))
        self.assertEqual(self.members_file(), addresses)
        self.assertEqual(self.js("members", "list", ML)["count"], 10000)
        j = self.js("members", "add", ML, stdin=stdin)
        self.assertEqual((j["added"], j["already"], j["invalid"]), (0, 10000, 0))

    def test_add_from_stdin_with_invalid_lines(self):
        valid = [f"v{i}@example.org" for i in range(9998)]
        lines = valid[:5000] + ["taro at example.jp", "  # an indented comment", "", "\t"] + valid[5000:] + \
            ["<hanako@example.jp>", "  spaced@example.org  \r"]
        r = self.ml("--json", "members", "add", ML, stdin="\n".join(lines) + "\n")
        self.assertExit(r, 65)
        j = r.json()
        self.assertEqual((j["added"], j["already"], j["invalid"]), (9999, 0, 2))
        self.assertEqual(j["invalid_inputs"], ["taro at example.jp", "<hanako@example.jp>"])
        self.assertIn('not a mail address: "taro at example.jp"', r.err)
        self.assertIn('not a mail address: "<hanako@example.jp>"', r.err)
        self.assertIn("the valid ones were added", r.err)
        self.assertEqual(len(self.members_file()), 9999, "the valid addresses are applied anyway")
        self.assertIn("spaced@example.org", self.members_file())
        # Text mode: the same report on stdout.
        r = self.ml("members", "add", ML, stdin="x@example.org\nnope\n")
        self.assertExit(r, 65)
        self.assertEqual(r.out, "members of ml@example.jp: added 1, already there 0, invalid 1\n")

    def test_bytes_that_are_not_utf8_still_give_valid_json(self):
        r = self.run_bytes("--json", "members", "add", ML, stdin=b"\xff\xfe\x1b[2J@example.org\nok@example.org\n")
        self.assertEqual(r.returncode, 65, r)
        j = json.loads(r.stdout.decode("utf-8"))
        self.assertEqual((j["added"], j["invalid"]), (1, 1))
        self.assertEqual(j["invalid_inputs"], ["\ufffd\ufffd\x1b[2J@example.org"])
        # On the terminal the escape sequence is defused.
        self.assertNotIn(b"\x1b", r.stderr)
        self.assertIn("\ufffd\ufffd\ufffd[2J@example.org".encode(), r.stderr)

    def test_del_from_arguments_and_stdin(self):
        self.ok("members", "add", ML, "a@example.org", "b@example.org", "c@example.org", "d@example.org")
        r = self.ok("members", "del", ML, "A@EXAMPLE.ORG", "zz@example.org")
        self.assertEqual(r.out, "members of ml@example.jp: removed 1, not there 1, invalid 0\n")
        j = self.js("members", "del", ML, stdin="# gone\nb@example.org\nc@example.org\n")
        self.assertEqual((j["removed"], j["absent"], j["invalid"]), (2, 0, 0))
        self.assertEqual(self.members_file(), ["d@example.org"])
        r = self.ml("--json", "members", "del", ML, stdin="d@example.org\nbroken\n")
        self.assertExit(r, 65)
        self.assertEqual((r.json()["removed"], r.json()["invalid"]), (1, 1))
        self.assertEqual(self.ok("members", "list", ML).out, "")

    def test_disabled_member_shown_and_enabled_again(self):
        self.ok("members", "add", ML, "a@example.org", "gone@example.net")
        with open(self.list_dir(ML, "bounces"), "w") as f:
            f.write("gone@example.net disabled 1700000000\n")
        self.assertEqual(self.ok("members", "list", ML).out,
                         "a@example.org\ngone@example.net (disabled: bounced 3 times since 2023-11-14T22:13:20Z)\n")
        m = self.js("members", "list", ML)
        self.assertEqual(m["disabled"], 1)
        self.assertEqual(m["members"][1], {"address": "gone@example.net", "disabled": True, "bounces": 3,
                                           "disabled_since": "2023-11-14T22:13:20Z"})
        self.assertEqual(self.js("show", ML)["disabled_members"], 1)
        j = self.js("members", "add", ML, "gone@example.net")
        self.assertEqual((j["added"], j["enabled"]), (0, 1))
        self.assertEqual(self.ok("members", "list", ML).out, "a@example.org\ngone@example.net\n")


class ModeratorsTest(ListTestCase):
    def test_add_del_list(self):
        self.create(ML, "--policy", "moderators", "--admin", "boss@example.org")
        r = self.ml("--json", "moderators", "list", ML)
        self.assertExit(r, 0)
        self.assertEqual(r.json()["moderators"], [])
        self.assertIn("warning", r.err)
        r = self.ok("moderators", "add", ML, "m1@example.org", "M2@Example.org")
        self.assertEqual(r.out, "moderators of ml@example.jp: added 2, already there 0, invalid 0\n")
        self.assertEqual(self.ok("moderators", "list", ML).out, "m1@example.org\nM2@example.org\n")
        self.assertEqual(self.js("show", ML)["moderators"], ["m1@example.org", "M2@example.org"])
        j = self.js("moderators", "del", ML, "M1@EXAMPLE.ORG", "x@example.org")
        self.assertEqual((j["removed"], j["absent"]), (1, 1))
        r = self.ml("--json", "moderators", "add", ML, stdin="m3@example.org\nnot-an-address\n")
        self.assertExit(r, 65)
        self.assertEqual((r.json()["added"], r.json()["invalid"]), (1, 1))
        self.assertEqual(self.js("moderators", "list", ML)["moderators"], ["M2@example.org", "m3@example.org"])


class ArchiveTest(ListTestCase):
    POST = (b"Return-Path: <ml+bounces@example.jp>\r\nFrom: =?UTF-8?B?5aSq6YOO?= <taro@example.jp>\r\n"
            b"Subject: [ml:00001] =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\r\nX-Mail-Count: 1\r\n\r\n"
            b"body with 8-bit \xff\xfe bytes\r\nand no newline at the end")

    def setUp(self):
        super().setUp()
        self.create()
        self.post_path = self.list_dir(ML, "archive", "new", "00000001")
        with open(self.post_path, "wb") as f:
            f.write(self.POST)
        with open(self.list_dir(ML, "archive", "new", "00000002"), "wb") as f:
            f.write("From: hanako@example.jp\nSubject: second\n\nこんにちは\n".encode())

    def test_listing(self):
        j = self.js("archive", ML)
        self.assertEqual([p["seq"] for p in j["posts"]], [1, 2])
        first = j["posts"][0]
        self.assertEqual(first["from"], "太郎 <taro@example.jp>")
        self.assertEqual(first["subject"], "[ml:00001] こんにちは")
        self.assertEqual(first["size"], len(self.POST))
        self.assertRegex(first["date"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        text = self.ok("archive", ML).out
        self.assertTrue(text.startswith("SEQ"), text)
        self.assertIn("[ml:00001] こんにちは", text)
        self.assertIn("second", text)

    def test_post_printed_byte_identically(self):
        r = self.run_bytes("archive", ML, "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.POST)
        self.assertEqual(self.run_bytes("--quiet", "archive", ML, "1").stdout, b"")

    def test_post_in_json(self):
        j = self.js("archive", ML, "1")
        self.assertEqual((j["seq"], j["size"], j["encoding"]), (1, len(self.POST), "base64"))
        self.assertEqual(base64.b64decode(j["message"]), self.POST)
        j = self.js("archive", ML, "2")
        self.assertEqual(j["encoding"], "utf-8")
        self.assertEqual(j["message"], "From: hanako@example.jp\nSubject: second\n\nこんにちは\n")

    def test_missing_or_bad_number(self):
        self.assertError(self.ml("archive", ML, "3"), 67,
                         "no post 3 in the archive of ml@example.jp (see mh-list archive)")
        for bad in ["0", "x", "-1", "1.5"]:
            self.assertExit(self.ml("archive", ML, "--", bad), 65, bad)

    def test_empty_archive(self):
        self.create("empty@example.jp")
        self.assertEqual(self.js("archive", "empty@example.jp"), {"list": "empty@example.jp", "posts": []})


class PendingTest(ListTestCase):
    POST_ID = "0123456789abcdef0123"
    OTHER_ID = "aaaaaaaaaaaaaaaaaaaa"
    UNSUB_ID = "bbbbbbbbbbbbbbbbbbbb"
    OLD_ID = "cccccccccccccccccccc"

    def setUp(self):
        super().setUp()
        self.create(ML, "--policy", "moderators")
        self.ok("moderators", "add", ML, "chair@example.jp")
        self.ok("members", "add", ML, "leaver@example.org", "stay@example.org")
        now = int(time.time())
        self.now = now
        self.place(self.POST_ID, "post", "alice@example.org", "=?UTF-8?B?5pel5pys6Kqe?= hello", now, now + 3600)
        self.place(self.OTHER_ID, "post", "bob@example.org", "second post", now + 1, now + 3600)
        self.place(self.UNSUB_ID, "unsubscribe", "leaver@example.org", None, now + 2, now + 3600)
        self.place(self.OLD_ID, "post", "late@example.org", "too late", 1000, 2000)

    def place(self, pid, kind, poster, subject, created, expires):
        d = self.list_dir(ML, "pending")
        os.makedirs(d, exist_ok=True)
        msg = f"From: {poster}\nSubject: {subject or ''}\n\nThis is the post.\nIt has two lines.\n".encode()
        lines = [f"kind: {kind}", f"poster: {poster}"]
        if subject is not None:
            lines.append(f"subject: {json.dumps(subject)}")
        lines += [f"size: {len(msg)}", f"created: {created}", f"expires: {expires}"]
        with open(os.path.join(d, pid + ".yaml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        if kind == "post":
            with open(os.path.join(d, pid + ".msg"), "wb") as f:
                f.write(msg)

    def queued(self):
        """The text of every queue envelope."""
        q = self.path("queue")
        out = []
        for name in sorted(os.listdir(q)) if os.path.isdir(q) else []:
            if name.endswith(".env"):
                with open(os.path.join(q, name)) as f:
                    out.append(f.read())
        return out

    def test_pending_listing(self):
        j = self.js("pending", ML)
        items = {p["id"]: p for p in j["pending"]}
        self.assertEqual(set(items), {self.POST_ID, self.OTHER_ID, self.UNSUB_ID, self.OLD_ID})
        p = items[self.POST_ID]
        self.assertEqual((p["kind"], p["poster"], p["subject"], p["expired"]), ("post", "alice@example.org",
                                                                                "日本語 hello", False))
        self.assertEqual(set(p), {"id", "kind", "poster", "subject", "size", "created", "expires", "expired"})
        self.assertEqual(items[self.UNSUB_ID]["kind"], "unsubscribe")
        self.assertTrue(items[self.OLD_ID]["expired"])
        self.assertEqual(items[self.OLD_ID]["expires"], "1970-01-01T00:33:20Z")
        text = self.ok("pending", ML).out
        self.assertIn(self.POST_ID, text)
        self.assertIn("(expired)", text)
        self.assertEqual(self.js("show", ML)["pending"], 4)
        self.create("quiet@example.jp")
        self.assertEqual(self.js("pending", "quiet@example.jp")["pending"], [])

    def test_approve_queues_the_post(self):
        j = self.js("approve", ML, self.POST_ID)
        self.assertEqual((j["list"], j["id"], j["approved"]), (ML, self.POST_ID, True))
        self.assertFalse(os.path.exists(self.list_dir(ML, "pending", self.POST_ID + ".yaml")))
        self.assertTrue(any(f"ml+approved-{self.POST_ID}@example.jp" in env for env in self.queued()), self.queued())
        self.assertNotIn(self.POST_ID, [p["id"] for p in self.js("pending", ML)["pending"]])
        # Decided once: a second approve finds nothing.
        self.assertExit(self.ml("approve", ML, self.POST_ID), 67)

    def test_reject_tells_the_poster(self):
        r = self.ok("reject", ML, self.OTHER_ID)
        self.assertIn(self.OTHER_ID, r.out)
        self.assertFalse(os.path.exists(self.list_dir(ML, "pending", self.OTHER_ID + ".yaml")))
        self.assertFalse(os.path.exists(self.list_dir(ML, "pending", self.OTHER_ID + ".msg")))
        self.assertTrue(any("recipient: bob@example.org" in env for env in self.queued()), self.queued())
        self.assertExit(self.ml("reject", ML, self.OTHER_ID), 67)

    def test_approve_unsubscribe_removes_the_member(self):
        self.ok("approve", ML, self.UNSUB_ID)
        self.assertEqual(self.ok("members", "list", ML).out, "stay@example.org\n")

    def test_unknown_expired_and_malformed_ids(self):
        r = self.ml("approve", ML, "dddddddddddddddddddd")
        self.assertExit(r, 67)
        self.assertTrue(r.err.startswith(ERR + "no pending item dddddddddddddddddddd"), r.err)
        self.assertExit(self.ml("reject", ML, "dddddddddddddddddddd"), 67)
        self.assertEqual(self.js("approve", ML, "dddddddddddddddddddd", code=67)["error"]["code"], 67)
        r = self.ml("approve", ML, self.OLD_ID)
        self.assertExit(r, 67)
        self.assertIn("expired", r.err)
        for bad in ["xyz", "0123456789ABCDEF0123", "0123456789abcdef012", "../../../etc/passwd"]:
            self.assertExit(self.ml("approve", ML, "--", bad), 65, bad)
            self.assertExit(self.ml("reject", ML, "--", bad), 65, bad)
        self.assertTrue(os.path.exists(self.list_dir(ML, "pending", self.POST_ID + ".yaml")))


class OutputContractTest(ListTestCase):
    def test_one_json_document_on_every_outcome(self):
        self.create()
        for args in [("show", ML), ("show", "x@example.jp"), ("set", ML), ("members", "list", ML), ("list",),
                     ("create", ML), ("archive", ML), ("pending", ML), ("bogus",)]:
            r = self.ml("--json", *args)
            doc = json.loads(r.out)  # exactly one document: json.loads refuses trailing data
            self.assertIsInstance(doc, dict, args)
            if r.code != 0:
                self.assertEqual(doc["error"]["code"], r.code, args)

    def test_help_and_version(self):
        self.assertExit(self.ml("--help"), 0)
        self.assertExit(self.ml("members", "add", "--help"), 0)
        r = self.ml("--version")
        self.assertExit(r, 0)
        self.assertIn("mh-list", r.out)
        self.assertExit(self.ml(), 64)
        self.assertExit(self.ml("members"), 64)
        self.assertExit(self.ml("show"), 64)
        self.assertExit(self.ml("approve", ML), 64)


if __name__ == "__main__":
    mhtest.main()
