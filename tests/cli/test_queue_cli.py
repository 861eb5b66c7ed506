"""mh-serve queue list|show|retry|delete run as real binaries over a private spool (SPEC §8
"Queue administration", mh-serve(8) QUEUE ADMINISTRATION). Entries are made by the
test-only mh-test-enqueue (spool::QueueMessage, with the envelope a test asks for), so
every state can be set up without a network: old, retried, failing, null sender. Also:
an entry held by a runner (the .msg flock taken here) gives 75 after the wait; an
unreadable .env does not break the listing; a --bounce DSN parses as RFC 3464; the
daemon's own modes are untouched by the new subcommand; and a running daemon acts on a
retry within a second."""

import email
import email.policy
import fcntl
import json
import os
import re
import socket
import subprocess
import threading
import time

import mhtest

ERR = "mh-serve: error: "
ENTRY_KEYS = {"id", "created", "age", "sender", "auth", "size", "recipients", "attempts", "next_attempt", "due",
              "last_error"}
MESSAGE = ("From: Alice <alice@example.org>\n"
           "To: bob@remote.example\n"
           "Subject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=\n"
           "Message-ID: <queue-cli-test@example.org>\n"
           "\n"
           "BODY-MARKER: the body is never shown\n")


def test_bin(name):
    return os.path.join(os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests")), name)


class QueueCase(mhtest.SpoolTestCase):
    def serve(self, *args, **kw):
        return self.run_tool("mh-serve", *args, **kw)

    def queue(self, *args, **kw):
        return self.serve("queue", *args, **kw)

    def enqueue(self, *recipients, sender="alice@example.org", message=MESSAGE, **envelope):
        """Queues `message` for `recipients`; envelope keys as mh-test-enqueue options
        (created=, attempts=, next_attempt=, last_error=, recipient_error=[…])."""
        args = ["--spool", self.spool, "--sender", sender]
        for key, value in envelope.items():
            for v in value if isinstance(value, list) else [value]:
                args += ["--" + key.replace("_", "-"), str(v)]
        proc = subprocess.run([test_bin("mh-test-enqueue"), *args, "--", *(recipients or ["bob@remote.example"])],
                              input=message.encode() if isinstance(message, str) else message,
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        return proc.stdout.decode().strip()

    def env_path(self, qid):
        return self.path("queue", qid + ".env")

    def msg_path(self, qid):
        return self.path("queue", qid + ".msg")

    def read_env(self, qid):
        pairs, recipients = {}, []
        with open(self.env_path(qid)) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition(": ")
                if key == "recipient":
                    recipients.append(value)
                else:
                    pairs[key] = value
        pairs["recipients"] = recipients
        return pairs

    def queue_ids(self):
        return sorted(n[:-4] for n in os.listdir(self.path("queue")) if n.endswith(".env"))

    def assertError(self, run, code, *fragments):
        """Exit `code`, stderr one `mh-serve: error: …` line holding each fragment."""
        self.assertExit(run, code)
        self.assertTrue(run.err.startswith(ERR), repr(run))
        self.assertEqual(run.err.count("\n"), 1, repr(run))
        for f in fragments:
            self.assertIn(f, run.err)

    def hold(self, qid):
        """Takes the entry's lock as a runner delivering it would; returns the open file."""
        f = open(self.msg_path(qid), "rb")
        fcntl.flock(f, fcntl.LOCK_EX)
        self.addCleanup(f.close)
        return f


class ListTest(QueueCase):
    def test_empty_queue(self):
        r = self.queue("list")
        self.assertExit(r, 0)
        self.assertEqual(r.out, "queue is empty\n")
        self.assertEqual(r.err, "")
        r = self.queue("list", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json(), {"entries": []})
        r = self.queue("list", "--ids")
        self.assertEqual((r.code, r.out), (0, ""))

    def test_several_entries_table(self):
        now = int(time.time())
        a = self.enqueue("x@remote.example", created=now - 200, next_attempt=now + 250, attempts=2,
                         last_error="451 4.4.1 connection refused by mx.remote.example")
        b = self.enqueue("y@remote.example", "z@remote.example", created=now - 2 * 3600 - 30)
        c = self.enqueue("w@remote.example", sender="", created=now - 5 * 86400 - 60, next_attempt=now - 10)
        r = self.queue("list")
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "AGE", "SENDER", "RCPTS", "TRIES", "NEXT", "LAST", "ERROR"])
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        self.assertEqual(set(rows), {a, b, c})
        self.assertEqual(rows[a][1:7], ["3m", "<alice@example.org>", "1", "2", "in", "4m"])
        self.assertTrue(next(line for line in lines if line.startswith(a)).endswith(
            "  451 4.4.1 connection refused by mx.remote.example"))
        self.assertEqual(rows[b][1:6], ["2h", "<alice@example.org>", "2", "0", "now"])
        self.assertEqual(rows[c][1:6], ["5d", "<>", "1", "0", "now"])
        # Sorted by id (ids grow with time of arrival).
        self.assertEqual([line.split()[0] for line in lines[1:]], sorted([a, b, c]))

    def test_json_fields(self):
        now = int(time.time())
        qid = self.enqueue("x@remote.example", "y@remote.example", created=now - 60, next_attempt=now + 600,
                           attempts=1, last_error="451 4.2.0 try later", recipient_error="2:451 4.2.0 mailbox busy")
        r = self.queue("list", "--json")
        self.assertExit(r, 0)
        doc = r.json()
        self.assertEqual(set(doc), {"entries"})
        (e,) = doc["entries"]
        self.assertEqual(set(e), ENTRY_KEYS)
        self.assertEqual(e["id"], qid)
        self.assertEqual(e["created"], now - 60)
        self.assertTrue(60 <= e["age"] < 120, e)
        self.assertEqual(e["sender"], "alice@example.org")
        self.assertEqual(e["auth"], "")
        self.assertEqual(e["size"], os.path.getsize(self.msg_path(qid)))
        self.assertEqual(e["recipients"], [
            {"address": "x@remote.example", "state": "pending", "last_error": ""},
            {"address": "y@remote.example", "state": "deferred", "last_error": "451 4.2.0 mailbox busy"}])
        self.assertEqual((e["attempts"], e["next_attempt"], e["due"]), (1, now + 600, False))
        self.assertEqual(e["last_error"], "451 4.2.0 try later")

    def test_common_options_before_and_after(self):
        qid = self.enqueue()
        elsewhere = {"MH_SPOOL": os.path.join(self.tmp, "nowhere")}
        for args in (["--spool", self.spool, "queue", "list", "--json"],
                     ["queue", "list", "--json", "--spool", self.spool],
                     ["queue", "--spool", self.spool, "list", "--json"]):
            r = self.serve(*args, env=elsewhere)
            self.assertExit(r, 0, args)
            self.assertEqual([e["id"] for e in r.json()["entries"]], [qid], args)

    def test_ids_only(self):
        ids = sorted(self.enqueue() for _ in range(3))
        r = self.queue("list", "--ids")
        self.assertExit(r, 0)
        self.assertEqual(r.out.split(), ids)
        self.assertEqual(self.queue("list", "--ids", "--json").json(), {"ids": ids})

    def test_quiet_prints_nothing(self):
        self.enqueue()
        r = self.queue("list", "--quiet")
        self.assertEqual((r.code, r.out, r.err), (0, "", ""))

    def test_unreadable_envelope_is_named_not_fatal(self):
        good = self.enqueue()
        bad = self.enqueue()
        with open(self.env_path(bad), "w") as f:
            f.write("format: 1\nthis is not an envelope\n")
        r = self.queue("list")
        self.assertExit(r, 0)
        self.assertIn(f"mh-serve: warning: queue entry {bad} is unreadable: ", r.err)
        self.assertIn("expected 'key: value'", r.err)
        rows = {line.split()[0]: line for line in r.out.splitlines()[1:]}
        self.assertEqual(set(rows), {good, bad})
        self.assertIn("(unreadable envelope)", rows[bad])
        r = self.queue("list", "--json")
        self.assertExit(r, 0)
        doc = r.json()
        self.assertEqual([e["id"] for e in doc["entries"]], [good])
        self.assertEqual([u["id"] for u in doc["unreadable"]], [bad])
        self.assertIn(self.env_path(bad) + ":2:", doc["unreadable"][0]["error"])
        # Names-only mode lists it (it can still be deleted).
        self.assertEqual(self.queue("list", "--ids").out.split(), sorted([good, bad]))

    def test_envelope_bytes_never_reach_terminal_or_json_raw(self):
        # The parser's error quotes the bad key: bytes that are neither UTF-8 nor printable.
        qid = self.enqueue()
        with open(self.env_path(qid), "wb") as f:
            f.write(b"format: 1\n\xff\x1b[2J: x\n")
        r = self.queue("list", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json()["unreadable"][0]["id"], qid)
        self.assertNotIn("\x1b", r.err)
        for cmd in (["show", qid], ["retry", qid], ["delete", "--bounce", qid]):
            r = self.queue(*cmd, "--json")
            self.assertExit(r, 78, cmd)
            self.assertEqual(r.json()["error"]["code"], 78)
            self.assertIn("\ufffd\ufffd[2J", r.json()["error"]["message"])
            self.assertNotIn("\x1b", r.err)

    def test_quarantined_entries_are_counted(self):
        self.enqueue()
        os.makedirs(self.path("queue", "corrupt"))
        for name in ("ABC1.msg", "ABC1.env", "ABC2.msg"):
            open(self.path("queue", "corrupt", name), "w").close()
        r = self.queue("list", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json()["corrupt"], 2)
        self.assertEqual(len(r.json()["entries"]), 1)
        r = self.queue("list")
        self.assertIn("2 quarantined entries in ", r.err)


class ShowTest(QueueCase):
    def test_fields_and_header(self):
        now = int(time.time())
        qid = self.enqueue("x@remote.example", "y@remote.example", created=now - 400, next_attempt=now + 3 * 3600 + 120,
                           attempts=3, last_error="451 4.4.1 no answer", recipient_error="1:451 4.4.1 no answer",
                           auth="alice@example.org")
        r = self.queue("show", qid)
        self.assertExit(r, 0)
        self.assertEqual(r.err, "")
        fields = dict(re.findall(r"^(\w[\w ]*): +(.*)$", r.out.split("\n\n")[0], re.M))
        self.assertEqual(fields["id"], qid)
        self.assertTrue(fields["created"].endswith(" (6m ago)"), fields)
        self.assertEqual(fields["sender"], "<alice@example.org>")
        self.assertEqual(fields["auth"], "alice@example.org")
        self.assertEqual(fields["attempts"], "3")
        self.assertTrue(fields["next try"].startswith("in 3h ("), fields)
        self.assertEqual(fields["last error"], "451 4.4.1 no answer")
        self.assertEqual(fields["subject"], "日本語の件名")
        self.assertEqual(fields["from"], "Alice <alice@example.org>")
        self.assertEqual(fields["recipients"], "2 left")
        out = r.out
        self.assertRegex(out, r"\n  x@remote\.example +deferred: 451 4\.4\.1 no answer\n")
        self.assertRegex(out, r"\n  y@remote\.example +pending\n")
        self.assertIn("\nheader:\nFrom: Alice <alice@example.org>\n", out)
        self.assertIn("Message-ID: <queue-cli-test@example.org>\n", out)
        self.assertNotIn("BODY-MARKER", out)

    def test_json(self):
        qid = self.enqueue(sender="")
        r = self.queue("show", qid, "--json")
        self.assertExit(r, 0)
        doc = r.json()
        self.assertEqual(set(doc), ENTRY_KEYS | {"from", "subject", "headers", "headers_cut"})
        self.assertEqual(doc["id"], qid)
        self.assertEqual(doc["sender"], "")
        self.assertEqual(doc["subject"], "日本語の件名")
        self.assertTrue(doc["headers"].startswith("From: Alice <alice@example.org>\n"), doc)
        self.assertTrue(doc["headers"].endswith("Message-ID: <queue-cli-test@example.org>\n"), doc)
        self.assertFalse(doc["headers_cut"])
        self.assertTrue(doc["due"])
        self.assertNotIn("BODY-MARKER", r.out)

    def test_reads_at_most_64k_of_header(self):
        filler = "".join(f"X-Filler-{i}: {'f' * 70}\n" for i in range(2000))  # ~170 KB of header
        qid = self.enqueue(message="Subject: big\n" + filler + "\nBODY-MARKER\n")
        doc = self.queue("show", qid, "--json").json()
        self.assertTrue(doc["headers_cut"])
        self.assertLessEqual(len(doc["headers"].encode()), 64 * 1024)
        self.assertTrue(doc["headers"].endswith("\n"))
        self.assertEqual(doc["size"], os.path.getsize(self.msg_path(qid)))
        self.assertIn("header (cut at 64.0 KiB):\n", self.queue("show", qid).out)

    def test_terminal_controls_and_bad_utf8_are_neutralised(self):
        qid = self.enqueue(message=b"Subject: \x1b[2Jcleared\nX-Bad: \xff\xfe ok\r\n\nbody\n")
        r = self.queue("show", qid)
        self.assertExit(r, 0)
        self.assertNotIn("\x1b", r.out)
        self.assertNotIn("\r", r.out)
        self.assertIn("X-Bad: \ufffd\ufffd ok\n", r.out)
        doc = self.queue("show", qid, "--json").json()
        self.assertIn("\ufffd[2Jcleared", doc["headers"])

    def test_unknown_id_is_67(self):
        self.assertError(self.queue("show", "ABCDEF0123"), 67, "no such queue entry: ABCDEF0123")
        r = self.queue("show", "ABCDEF0123", "--json")
        self.assertExit(r, 67)
        self.assertEqual(r.json(), {"error": {"code": 67, "message": "no such queue entry: ABCDEF0123"}})

    def test_bad_id_is_65(self):
        for bad in ("../etc", "abc.env", "x" * 65, "a b"):
            self.assertError(self.queue("show", bad), 65, "not a queue id")
        self.assertError(self.queue("show", "--", "-x"), 65, "not a queue id: -x")

    def test_unreadable_envelope_is_78(self):
        qid = self.enqueue()
        with open(self.env_path(qid), "a") as f:
            f.write("colour: blue\n")
        self.assertError(self.queue("show", qid), 78, "unknown key 'colour'")


class RetryTest(QueueCase):
    def test_retry_makes_the_entry_due_now(self):
        now = int(time.time())
        qid = self.enqueue(attempts=4, next_attempt=now + 3600, last_error="451 4.4.1 later")
        other = self.enqueue(next_attempt=now + 3600)
        inode = os.stat(self.env_path(qid)).st_ino
        before = int(time.time())
        r = self.queue("retry", qid)
        self.assertExit(r, 0)
        self.assertEqual(r.out, f"{qid}: due now\n")
        env = self.read_env(qid)
        self.assertTrue(before <= int(env["next_attempt"]) <= int(time.time()), env)
        self.assertEqual((env["attempts"], env["last_error"]), ("4", "451 4.4.1 later"))
        # Replaced, not rewritten: a runner notices the new inode.
        self.assertNotEqual(os.stat(self.env_path(qid)).st_ino, inode)
        self.assertEqual(self.read_env(other)["next_attempt"], str(now + 3600))
        self.assertTrue(self.queue("show", qid, "--json").json()["due"])

    def test_retry_all(self):
        now = int(time.time())
        ids = sorted(self.enqueue(next_attempt=now + 3600) for _ in range(3))
        r = self.queue("retry", "--all", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json(), {"retried": ids})
        for qid in ids:
            self.assertLessEqual(int(self.read_env(qid)["next_attempt"]), int(time.time()))
        r = self.queue("retry", "--all", "--quiet")
        self.assertEqual((r.code, r.out, r.err), (0, "", ""))

    def test_retry_all_on_empty_queue(self):
        r = self.queue("retry", "--all")
        self.assertEqual((r.code, r.out), (0, "queue is empty: nothing to retry\n"))

    def test_unknown_id_changes_nothing(self):
        qid = self.enqueue(next_attempt=int(time.time()) + 3600)
        before = self.snapshot()
        self.assertError(self.queue("retry", qid, "ABC123"), 67, "no such queue entry: ABC123")
        self.assertEqual(self.snapshot(), before)
        self.assertError(self.queue("retry", qid, "../x"), 65, "not a queue id: ../x")
        self.assertEqual(self.snapshot(), before)

    def test_usage(self):
        self.assertExit(self.queue("retry"), 64)
        self.assertExit(self.queue("retry", "--all", "ABC"), 64)
        self.assertExit(self.queue("frobnicate"), 64)
        self.assertExit(self.queue(), 64)
        self.assertError(self.queue("retry", "--all", "--wait", "soon"), 65, "soon")

    def test_unreadable_envelope_is_78(self):
        qid = self.enqueue()
        with open(self.env_path(qid), "w") as f:
            f.write("garbage\n")
        self.assertError(self.queue("retry", qid), 78, self.env_path(qid))


class DeleteTest(QueueCase):
    def test_delete_removes_both_files(self):
        a, b = self.enqueue(), self.enqueue()
        r = self.queue("delete", a)
        self.assertExit(r, 0)
        self.assertEqual(r.out, f"{a}: deleted\n")
        self.assertFalse(os.path.exists(self.env_path(a)))
        self.assertFalse(os.path.exists(self.msg_path(a)))
        self.assertEqual(self.queue_ids(), [b])
        self.assertError(self.queue("delete", a), 67, f"no such queue entry: {a}")

    def test_delete_all(self):
        ids = sorted(self.enqueue() for _ in range(3))
        r = self.queue("delete", "--all", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json(), {"deleted": [{"id": i, "dsn": None} for i in ids]})
        self.assertEqual(os.listdir(self.path("queue")), ["tmp"])

    def test_unknown_id_is_67_and_deletes_nothing(self):
        qid = self.enqueue()
        r = self.queue("delete", qid, "FEDCBA987", "--json")
        self.assertExit(r, 67)
        self.assertEqual(r.json()["error"]["code"], 67)
        self.assertEqual(self.queue_ids(), [qid])

    def test_bounce_queues_a_dsn_to_the_sender(self):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write("hostname: mail.example.jp\n")
        qid = self.enqueue("x@remote.example", "y@remote.example", recipient_error="2:452 4.2.2 mailbox full")
        r = self.queue("delete", "--bounce", qid, "--json")
        self.assertExit(r, 0)
        (deleted,) = r.json()["deleted"]
        self.assertEqual(deleted["id"], qid)
        dsn = deleted["dsn"]
        self.assertEqual(self.queue_ids(), [dsn])
        env = self.read_env(dsn)
        self.assertEqual((env["sender"], env["recipients"]), ("", ["alice@example.org"]))
        with open(self.msg_path(dsn), "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["To"].addresses[0].addr_spec, "alice@example.org")
        status = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
        text = status.as_string()
        self.assertIn("Reporting-MTA: dns; mail.example.jp", text)
        self.assertIn("Final-Recipient: rfc822; x@remote.example", text)
        self.assertIn("Final-Recipient: rfc822; y@remote.example", text)
        self.assertIn("deleted by the administrator", text)
        self.assertIn("452 4.2.2 mailbox full", text)
        self.assertIn("Action: failed", text)
        self.assertIn("Message-ID: <queue-cli-test@example.org>", msg.as_string())
        r = self.queue("delete", "--bounce", dsn)  # the DSN itself: null sender, no DSN
        self.assertExit(r, 0)
        self.assertEqual(r.out, f"{dsn}: deleted; no DSN (null sender)\n")
        self.assertEqual(self.queue_ids(), [])

    def test_bounce_of_null_sender_entry_queues_nothing(self):
        qid = self.enqueue(sender="")
        r = self.queue("delete", "--bounce", qid, "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json(), {"deleted": [{"id": qid, "dsn": None}]})
        self.assertEqual(self.queue_ids(), [])

    def test_unreadable_envelope_is_deleted_but_not_bounced(self):
        qid = self.enqueue()
        with open(self.env_path(qid), "w") as f:
            f.write("format: 1\nid: nonsense\n")
        self.assertError(self.queue("delete", "--bounce", qid), 78, "without --bounce")
        self.assertEqual(self.queue_ids(), [qid])
        r = self.queue("delete", qid)
        self.assertExit(r, 0)
        self.assertFalse(os.path.exists(self.msg_path(qid)))
        self.assertEqual(self.queue_ids(), [])


class BusyTest(QueueCase):
    """An entry a runner is delivering: its .msg flock is held (here by the test)."""

    def test_retry_and_delete_wait_then_75(self):
        qid = self.enqueue(next_attempt=int(time.time()) + 3600)
        self.hold(qid)
        before = self.snapshot()
        for cmd in ("retry", "delete"):
            start = time.monotonic()
            r = self.queue(cmd, qid, "--wait", "1s")
            took = time.monotonic() - start
            self.assertError(r, 75, f"queue entry {qid} is being delivered; try again")
            self.assertGreaterEqual(took, 1.0)
            self.assertLess(took, 10)
        self.assertEqual(self.snapshot(), before)

    def test_default_wait_is_five_seconds(self):
        qid = self.enqueue()
        self.hold(qid)
        start = time.monotonic()
        self.assertError(self.queue("retry", qid), 75, "being delivered")
        self.assertTrue(5.0 <= time.monotonic() - start < 15)

    def test_released_during_the_wait(self):
        qid = self.enqueue(next_attempt=int(time.time()) + 3600)
        held = self.hold(qid)
        env = dict(os.environ, MH_SPOOL=self.spool)
        proc = subprocess.Popen([mhtest.tool_path("mh-serve"), "queue", "retry", qid, "--wait", "10s"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        held.close()  # the delivery attempt ends, the entry is still queued
        out, err = proc.communicate(timeout=30)
        self.assertEqual((proc.returncode, out, err), (0, f"{qid}: due now\n", ""))

    def test_delivered_during_the_wait_is_67(self):
        qid = self.enqueue()
        held = self.hold(qid)
        env = dict(os.environ, MH_SPOOL=self.spool)
        proc = subprocess.Popen([mhtest.tool_path("mh-serve"), "queue", "delete", qid, "--wait", "10s"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        os.unlink(self.env_path(qid))  # what a runner does after delivering it
        os.unlink(self.msg_path(qid))
        held.close()
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 67, (out, err))
        self.assertEqual(err, f"{ERR}no such queue entry: {qid}\n")

    def test_all_goes_on_past_a_busy_entry(self):
        now = int(time.time())
        busy, free = self.enqueue(next_attempt=now + 3600), self.enqueue(next_attempt=now + 3600)
        self.hold(busy)
        r = self.queue("retry", "--all", "--wait", "0s", "--json")
        self.assertExit(r, 75)
        doc = r.json()
        self.assertEqual(doc["retried"], [free])
        self.assertEqual([f["id"] for f in doc["failed"]], [busy])
        self.assertEqual(doc["error"]["code"], 75)
        self.assertEqual(r.err, f"{ERR}queue entry {busy} is being delivered; try again\n")
        self.assertLessEqual(int(self.read_env(free)["next_attempt"]), int(time.time()))


class DaemonModesTest(QueueCase):
    """The queue subcommand leaves mh-serve's own modes as they were."""

    def test_check_config_and_stdio_still_work(self):
        port = mhtest.free_port()
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'hostname: mx.test\nlisten: {{ smtp: "127.0.0.1:{port}" }}\n')
        r = self.serve("--check-config")
        self.assertExit(r, 0)
        self.assertIn("mailhost.yaml: ok", r.out)
        r = self.serve("--stdio", "smtp", stdin="QUIT\r\n")
        self.assertExit(r, 0)
        self.assertTrue(r.out.startswith("220 mx.test"), r)
        self.assertIn("221 ", r.out)

    def test_daemon_options_are_refused_with_queue(self):
        self.assertExit(self.serve("--check-config", "queue", "list"), 64)
        self.assertExit(self.serve("queue", "list", "--threads", "2"), 64)
        self.assertExit(self.serve("--stdio", "smtp", "queue", "list"), 64)

    def test_help_names_the_queue_commands(self):
        r = self.serve("queue", "--help")
        self.assertExit(r, 0)
        for word in ("list", "show", "retry", "delete"):
            self.assertIn(word, r.out)
        self.assertIn("--bounce", self.serve("queue", "delete", "--help").out)


class Sink:
    """A minimal SMTP server on loopback that records the envelope of each message."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        f = conn.makefile("rwb")
        try:
            f.write(b"220 sink.test ESMTP\r\n")
            f.flush()
            rcpts, in_data = [], False
            for line in f:
                if in_data:
                    if line in (b".\r\n", b".\n"):
                        in_data = False
                        self.received.append(rcpts)
                        rcpts = []
                        f.write(b"250 2.0.0 ok\r\n")
                    f.flush()
                    continue
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    f.write(b"250 sink.test\r\n")
                elif verb == b"RCPT":
                    rcpts.append(line.decode().split(":", 1)[1].strip())
                    f.write(b"250 2.1.5 ok\r\n")
                elif verb == b"DATA":
                    in_data = True
                    f.write(b"354 go\r\n")
                elif verb == b"QUIT":
                    f.write(b"221 2.0.0 bye\r\n")
                    f.flush()
                    return
                else:
                    f.write(b"250 2.0.0 ok\r\n")
                f.flush()
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class RunningDaemonTest(QueueCase):
    """With mh-serve running (relaying to a sink), a retry is acted on within a second
    of its rescan, and a deleted entry is never sent."""

    def setUp(self):
        super().setUp()
        self.sink = Sink()
        self.addCleanup(self.sink.stop)
        self.port = mhtest.free_port()
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'hostname: mx.test\nlisten: {{ smtp: "127.0.0.1:{self.port}" }}\n'
                    f'relay: {{ host: "127.0.0.1:{self.sink.port}", tls: none }}\n')
        self.errfile = os.path.join(self.tmp, "mh-serve.err")
        self.proc = None

    def start(self):
        with open(self.errfile, "wb") as err:
            self.proc = subprocess.Popen([mhtest.tool_path("mh-serve"), "--spool", self.spool],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(self.stop)
        deadline = time.time() + 20
        while "listening for smtp" not in self.log():
            self.assertIsNone(self.proc.poll(), self.log())
            self.assertLess(time.time(), deadline, self.log())
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.errfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_retry_is_picked_up_and_delete_is_never_sent(self):
        later = int(time.time()) + 3600
        keep = self.enqueue("kept@remote.example", next_attempt=later)
        drop = self.enqueue("dropped@remote.example", next_attempt=later)
        self.start()
        time.sleep(1.5)  # a rescan or two: nothing is due
        self.assertEqual(self.sink.received, [])
        self.assertExit(self.queue("delete", drop), 0)
        self.assertExit(self.queue("retry", keep), 0)
        start = time.monotonic()
        while not self.sink.received and time.monotonic() - start < 10:
            time.sleep(0.05)
        self.assertEqual(self.sink.received, [["<kept@remote.example>"]], self.log())
        # Within the rescan interval (1 s), plus the time one SMTP transaction takes.
        self.assertLess(time.monotonic() - start, 3.0, self.log())
        deadline = time.monotonic() + 10
        while self.queue_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.queue_ids(), [])
        time.sleep(1.5)
        self.assertEqual(self.sink.received, [["<kept@remote.example>"]])


if __name__ == "__main__":
    mhtest.main()
