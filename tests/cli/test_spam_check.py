"""Asking rspamd whether a message is spam (spool::check_spam, libspool/src/spam_check.cc)
through the test driver mh-spam-check: a real rspamd on loopback (rspamdfixture.py) says
reject for GTUBE and no action for a plain message, a 5 MB message is streamed from its
file (rspamd sees its last line, the driver's memory stays small, the file offset is not
moved); and against stub servers, every failure is an `unknown` verdict with a reason for
the log, in bounded time: nothing listening, a server that never answers, garbage, HTTP
500, a reply past the 1 MiB cap. A recording stub checks the request itself (rspamd's
protocol headers, the exact body, no `Expect: 100-continue`) and the action → verdict
table."""

import email.utils
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import mhtest
from rspamdfixture import GTUBE, Rspamd, free_port

TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests"))
DRIVER = os.path.join(TEST_BIN, "mh-spam-check")


def message(subject, body, sender="alice@example.org"):
    """A small RFC 5322 message with a current Date (rspamd scores old dates)."""
    return (f"From: Alice <{sender}>\r\nTo: Bob <bob@example.org>\r\nSubject: {subject}\r\n"
            f"Date: {email.utils.formatdate(localtime=False)}\r\n"
            f"Message-ID: <{time.monotonic_ns()}.{subject.replace(' ', '-')}@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode()


HAM = message("lunch tomorrow", "Hi Bob,\r\n\r\nshall we meet for lunch tomorrow at noon?\r\n\r\nAlice")
SPAM = message("test", GTUBE)


class DriverCase(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(DRIVER):
            raise AssertionError(f"{DRIVER} is not built (cmake --build … --target mh-spam-check)")
        self.tmp = tempfile.mkdtemp(prefix="mhspam-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def check(self, url, data, *args, timeout=60):
        """The driver's JSON line, plus wall_ms."""
        path = data if isinstance(data, str) else self.write("message.eml", data)
        start = time.monotonic()
        proc = subprocess.run([DRIVER, url, path, *args], capture_output=True, text=True, timeout=timeout)
        wall_ms = (time.monotonic() - start) * 1000
        self.assertEqual((proc.returncode, proc.stderr), (0, ""), proc.stdout)
        lines = proc.stdout.splitlines()
        self.assertEqual(len(lines), 1, proc.stdout)
        doc = json.loads(lines[0])
        self.assertEqual(doc["fd_offset"], 0, "check_spam must read with pread")
        doc["wall_ms"] = wall_ms
        return doc


class RealRspamd(DriverCase):
    """Verdicts of a real, offline rspamd (one for the class: it takes seconds to start)."""

    @classmethod
    def setUpClass(cls):
        cls.rspamd = Rspamd()
        cls.rspamd.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.rspamd.close()

    def verdict(self, data, *args):
        r = self.check(self.rspamd.url, data, "--sender", "alice@example.org", "--ip", "192.0.2.25",
                       "--helo", "mail.example.org", *args)
        if r["verdict"] == "unknown":
            r["log"] = self.rspamd.log()[-3000:]
        return r

    def test_gtube_is_spam_with_action_reject(self):
        r = self.verdict(SPAM)
        self.assertEqual((r["verdict"], r["action"]), ("spam", "reject"), r)
        self.assertGreaterEqual(r["score"], 15.0, r)
        self.assertRegex(r["detail"], r"^score 15\.00/15\.00 action reject$")

    def test_plain_message_is_ham_with_no_action(self):
        r = self.verdict(HAM)
        self.assertEqual((r["verdict"], r["action"]), ("ham", "no action"), r)
        self.assertLess(r["score"], 6.0, r)

    def test_null_sender_and_no_client_ip(self):
        # A bounce made here: From "<>" (not an empty header), no IP header at all.
        r = self.check(self.rspamd.url, HAM)
        self.assertEqual((r["verdict"], r["action"]), ("ham", "no action"), r)
        r = self.check(self.rspamd.url, SPAM)
        self.assertEqual((r["verdict"], r["action"]), ("spam", "reject"), r)

    def test_five_megabyte_message_is_streamed(self):
        # A 5 MB first part, then a small part with GTUBE (rspamd looks for GTUBE only in
        # small text parts): rspamd can only say reject if every byte reached it.
        line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
        big_part = line * (5 * 1000 * 1000 // len(line) + 1)
        data = (f"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: big\r\n"
                f"Date: {email.utils.formatdate(localtime=False)}\r\nMessage-ID: <big@example.org>\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
                f"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{big_part}"
                f"--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{GTUBE}\r\n--b1--\r\n").encode()
        self.assertGreater(len(data), 5 * 1000 * 1000)
        big = self.verdict(data)
        self.assertEqual((big["verdict"], big["action"]), ("spam", "reject"), big)
        self.assertIn(f"len: {len(data)},", self.rspamd.log())
        small = self.verdict(HAM)
        # The driver's peak memory grows by far less than the message (curl's upload
        # buffer, not the file): allow 2 MiB of noise.
        self.assertLess(big["peak_rss_kb"] - small["peak_rss_kb"], 2048, (big, small))


class StubServer:
    """A TCP server on 127.0.0.1 that treats each connection with `behaviour`:
      "silent"  accepts, reads, never answers (holds the connection until stop);
      "garbage" answers a line that is not HTTP;
      "reply"   reads the whole request (recorded in .requests) and sends `reply` bytes."""

    def __init__(self, behaviour, reply=b""):
        self.behaviour = behaviour
        self.reply = reply
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn):
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data, b""
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head, body

    def _handle(self, conn):
        try:
            if self.behaviour == "silent":
                while not self.stopping.is_set() and conn.recv(65536):
                    pass
                return
            head, body = self._read_request(conn)
            self.requests.append((head, body))
            conn.sendall(self.reply if self.behaviour == "reply" else b"hello, this is not HTTP\r\n")
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for c in self.conns:
            c.close()


def http_reply(status, body, content_type="application/json"):
    reason = {200: "OK", 500: "Internal Server Error"}.get(status, "Whatever")
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class Failures(DriverCase):
    """Anything but a clear answer is `unknown`, with the reason, in bounded time."""

    def stub(self, behaviour, reply=b""):
        s = StubServer(behaviour, reply)
        self.addCleanup(s.stop)
        return s

    def test_nothing_listening_is_unknown_connection_refused_at_once(self):
        url = "http://127.0.0.1:%d" % free_port()
        r = self.check(url, HAM)
        self.assertEqual(r["verdict"], "unknown", r)
        self.assertEqual(r["detail"], f"rspamd at {url}: connection refused")
        self.assertLess(r["wall_ms"], 2000, r)

    def test_server_that_never_answers_times_out(self):
        s = self.stub("silent")
        r = self.check(s.url, HAM, "--timeout-ms", "1000")
        self.assertEqual(r["verdict"], "unknown", r)
        self.assertEqual(r["detail"], f"rspamd at {s.url}: timeout after 1000 ms")
        self.assertGreaterEqual(r["elapsed_ms"], 950, r)
        self.assertLess(r["wall_ms"], 2000, r)

    def test_garbage_instead_of_http_is_unknown(self):
        s = self.stub("garbage")
        r = self.check(s.url, HAM, "--timeout-ms", "5000")
        self.assertEqual(r["verdict"], "unknown", r)
        self.assertEqual(r["detail"], f"rspamd at {s.url}: unreadable reply (not HTTP)")
        self.assertLess(r["wall_ms"], 4000, r)

    def test_reply_that_is_not_json_is_unreadable(self):
        s = self.stub("reply", http_reply(200, b"<html>hello</html>", "text/html"))
        r = self.check(s.url, HAM)
        self.assertEqual((r["verdict"], r["action"]), ("unknown", ""), r)
        self.assertEqual(r["detail"], f"rspamd at {s.url}: unreadable reply (not a JSON object)")

    def test_json_without_action_is_unreadable(self):
        s = self.stub("reply", http_reply(200, b'{"score": 3.5}'))
        r = self.check(s.url, HAM)
        self.assertEqual(r["verdict"], "unknown", r)
        self.assertEqual(r["detail"], f"rspamd at {s.url}: unreadable reply (no action or score)")

    def test_http_500_is_unknown_with_rspamds_error(self):
        s = self.stub("reply", http_reply(500, b'{"error": "task timeout\\r\\nX-Injected: 1"}'))
        r = self.check(s.url, HAM)
        self.assertEqual(r["verdict"], "unknown", r)
        # rspamd's error text is quoted, made fit for one log line.
        self.assertEqual(r["detail"], f"rspamd at {s.url}: HTTP 500: task timeout??X-Injected: 1")

    def test_reply_past_one_mebibyte_is_cut(self):
        huge = b'{"action": "no action", "score": 0, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        s = self.stub("reply", http_reply(200, huge))
        r = self.check(s.url, HAM)
        self.assertEqual(r["verdict"], "unknown", r)
        self.assertEqual(r["detail"], f"rspamd at {s.url}: reply larger than 1024 KiB")

    def test_missing_url_and_trailing_slash(self):
        r = self.check("", HAM)
        self.assertEqual((r["verdict"], r["detail"]), ("unknown", "rspamd at (no URL): no URL configured"), r)
        url = "http://127.0.0.1:%d" % free_port()
        r = self.check(url + "/", HAM)
        self.assertEqual(r["detail"], f"rspamd at {url}: connection refused")
        r = self.check("ftp://127.0.0.1:11333", HAM)
        self.assertEqual(r["detail"], "rspamd at ftp://127.0.0.1:11333: not an http:// or https:// URL")


class Request(DriverCase):
    """What is sent (rspamd's protocol) and how each action maps to a verdict."""

    def answer(self, action, score=1.0):
        body = json.dumps({"is_skipped": False, "score": score, "required_score": 15.0,
                           "action": action, "symbols": {}}).encode()
        s = StubServer("reply", http_reply(200, body))
        self.addCleanup(s.stop)
        return s

    def test_headers_and_exact_body(self):
        s = self.answer("no action", -0.5)
        data = HAM + b"x" * 300000  # large enough for curl to have sent Expect: 100-continue
        r = self.check(s.url, data, "--sender", "alice@example.org", "--recipient", "bob@example.org",
                       "--ip", "192.0.2.25", "--helo", "mail.example.net", "--hostname", "mx.example.org",
                       "--client-hostname", "mail.example.net")
        self.assertEqual((r["verdict"], r["action"], r["score"]), ("ham", "no action", -0.5), r)
        self.assertEqual(r["detail"], "score -0.50/15.00 action no action")
        [(head, body)] = s.requests
        lines = head.decode().split("\r\n")
        self.assertEqual(lines[0], "POST /checkv2 HTTP/1.1")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        for name, value in (("from", "alice@example.org"), ("rcpt", "bob@example.org"),
                            ("ip", "192.0.2.25"), ("helo", "mail.example.net"),
                            ("hostname", "mail.example.net"), ("mta-name", "mx.example.org"),
                            ("content-length", str(len(data)))):
            self.assertEqual(headers.get(name), value, (name, headers))
        self.assertNotIn("expect", headers)
        self.assertNotIn("transfer-encoding", headers)
        self.assertEqual(body, data)

    def test_null_sender_and_unknown_values_are_left_out(self):
        s = self.answer("no action")
        self.check(s.url, HAM, "--helo", "x" * 600)  # longer than any HELO name: left out
        [(head, _)] = s.requests
        text = head.decode()
        self.assertIn("\r\nFrom: <>\r\n", text)
        for absent in ("\r\nIP:", "\r\nHelo:", "\r\nHostname:"):
            self.assertNotIn(absent, text)

    def test_header_values_with_line_breaks_are_not_sent(self):
        s = self.answer("no action")
        self.check(s.url, HAM, "--helo", "mail.example.net\r\nX-Injected: yes")
        [(head, _)] = s.requests
        self.assertNotIn(b"X-Injected", head)
        self.assertNotIn(b"\r\nHelo:", head)

    def test_action_table(self):
        for action, verdict in (("reject", "spam"), ("add header", "spam"), ("rewrite subject", "spam"),
                                ("no action", "ham"), ("greylist", "ham"), ("soft reject", "ham")):
            with self.subTest(action=action):
                s = self.answer(action, 9.0)
                r = self.check(s.url, HAM)
                self.assertEqual((r["verdict"], r["action"], r["score"]), (verdict, action, 9.0), r)


if __name__ == "__main__":
    unittest.main()
