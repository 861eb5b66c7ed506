"""Slow clients (SPEC §8 "Deadlines, not idle timers"; issue 13 item 2): a command line
must be complete within timeouts.command of the previous reply however its bytes
trickle in, DATA must keep limits.min_data_rate after its first timeouts.data, a TLS
handshake is bounded by timeouts.command — on SMTP, POP3 and their TLS ports. Tricklers
are cut with the exact timeout reply and lose nothing; fast clients are not affected.
Timing bounds are generous (a loaded 2-core machine under sanitizers)."""

import itertools
import os
import selectors
import socket
import time

import mhtest
from mhtest_mail import DATA_GO, HOST, POP_GREETING, QUEUED, SMTP_GREETING, MailTestCase

TIMEOUT = f"421 4.4.2 {HOST} Error: timeout exceeded"
POP_TIMEOUT = "-ERR Disconnected for inactivity."
CONFIG = ("timeouts: { command: 2s, data: 2s }\n"
          "limits: { min_data_rate: 1000, connections_per_ip: 400, connections: 1000 }\n")
SLACK = 6  # seconds past a deadline we still accept (scheduling on a loaded machine)


def trickle(sock, data, interval):
    """Sends `data` one byte every `interval` s until the peer answers or closes; returns
    (everything received, seconds from the start to the first answer)."""
    started = time.time()
    sock.setblocking(False)
    received = b""
    for byte in data:
        try:
            sock.send(bytes([byte]))
        except OSError:
            break
        deadline = time.time() + interval
        while time.time() < deadline:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            except OSError:
                chunk = b""
            received += chunk
            if not chunk or b"\r\n" in received:
                return received, time.time() - started
    sock.setblocking(True)
    sock.settimeout(30)
    received += sock.recv(65536)
    return received, time.time() - started


def send_until_answered(sock, pieces, within):
    """Sends `pieces` one every 0.1 s (or as fast as the server lets it read) until the
    server answers a line or `within` seconds pass; returns (answer, seconds taken)."""
    started = time.time()
    got = b""
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:
            break  # cut: the answer is already on its way
        sock.settimeout(0.1)
        try:
            got += sock.recv(65536)
        except socket.timeout:
            pass
        if b"\r\n" in got or time.time() - started > within:
            break
    sock.settimeout(30)
    if b"\r\n" not in got:
        got += sock.recv(65536)
    return got, time.time() - started


class SlowClients(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server(CONFIG)

    def assert_cut_in_time(self, elapsed, deadline):
        self.assertGreater(elapsed, deadline - 0.5)
        self.assertLess(elapsed, deadline + SLACK)

    def test_command_trickler_is_cut_at_the_deadline(self):
        c = self.raw("smtp")
        got, elapsed = trickle(c.sock, b"EHLO client.test.with.a.long.name\r\n", 0.5)
        self.assertEqual(got.decode(), TIMEOUT + "\r\n")
        self.assert_cut_in_time(elapsed, 2)
        self.assertTrue(c.at_eof())

    def test_a_line_that_never_ends_is_cut(self):
        c = self.raw("smtp")
        c.sock.setblocking(True)
        # 100 bytes every 0.1 s, no LF: past the line limit long before the deadline.
        got, elapsed = send_until_answered(c.sock, itertools.repeat(b"x" * 100), 2 + SLACK)
        self.assertEqual(got.decode(), TIMEOUT + "\r\n")
        self.assert_cut_in_time(elapsed, 2)

    def test_data_below_the_minimum_rate_is_cut_and_nothing_kept(self):
        c = self.raw("smtp")
        self.assertTrue(c.cmd("EHLO client.test").startswith("250-"))
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), DATA_GO)
        # 10 bytes every 0.1 s = 100 bytes/s, a tenth of the minimum: the deadline moves
        # 0.1 s per second, so the cut comes at about 2.2 s.
        line = b"Subject: s\r\n" + b"x" * 1000
        got, elapsed = send_until_answered(c.sock, (line[i:i + 10] for i in range(0, len(line), 10)), 2 + SLACK)
        self.assertEqual(got.decode(), TIMEOUT + "\r\n")
        self.assert_cut_in_time(elapsed, 2.2)
        self.assertEqual(self.count_all_messages(), 0)
        self.assertEqual(os.listdir(self.maildir("alice@example.org", "tmp")), [])
        self.wait_for_log('result="aborted: 421 4.4.2')

    def test_a_large_message_sent_quickly_still_goes_through(self):
        body = (b"y" * 998 + b"\r\n") * 4000  # 4 MB
        self.send_mail("alice@example.org", b"Subject: big\r\n\r\n" + body)
        self.assertEqual(len(self.messages("alice@example.org")), 1)

    def test_pop3_trickler_is_cut(self):
        c = self.raw("pop3")
        got, elapsed = trickle(c.sock, b"USER alice@example.org\r\n", 0.5)
        self.assertEqual(got.decode(), POP_TIMEOUT + "\r\n")
        self.assert_cut_in_time(elapsed, 2)

    def test_tls_handshake_is_bounded(self):
        for service in ("smtps", "pop3s"):
            with self.subTest(service=service, client="silent"):
                s = socket.create_connection(("127.0.0.1", self.ports[service]), timeout=30)
                self.on_teardown(s.close)
                started = time.time()
                self.assertEqual(s.recv(1), b"")  # closed, nothing said in the clear
                self.assert_cut_in_time(time.time() - started, 2)
            with self.subTest(service=service, client="trickling ClientHello"):
                s = socket.create_connection(("127.0.0.1", self.ports[service]), timeout=30)
                self.on_teardown(s.close)
                # The start of a TLS 1.2 ClientHello record, one byte at a time.
                got, elapsed = trickle(s, bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]) * 4, 0.5)
                self.assertEqual(got, b"")
                self.assert_cut_in_time(elapsed, 2)

    def test_many_concurrent_tricklers_are_all_cut(self):
        n = 200
        sel = selectors.DefaultSelector()
        state = {}
        started = time.time()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.ports["smtp"]), timeout=30)
            s.setblocking(False)
            self.on_teardown(s.close)
            state[s] = {"buf": b"", "greeted": False, "sent": 0, "eof": False}
            sel.register(s, selectors.EVENT_READ)
        message = b"EHLO trickling.client.test\r\n"
        next_byte = time.time()
        while time.time() - started < 30 and not all(v["eof"] for v in state.values()):
            for key, _ in sel.select(timeout=0.05):
                s, st = key.fileobj, state[key.fileobj]
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                st["buf"] += chunk
                st["greeted"] = st["greeted"] or b"\r\n" in st["buf"]
                if not chunk:
                    st["eof"] = True
                    sel.unregister(s)
            if time.time() >= next_byte:
                next_byte = time.time() + 0.5
                for s, st in state.items():
                    if st["greeted"] and not st["eof"] and st["sent"] < len(message):
                        try:
                            s.send(message[st["sent"]:st["sent"] + 1])
                            st["sent"] += 1
                        except OSError:
                            pass
        elapsed = time.time() - started
        expected = (SMTP_GREETING + "\r\n" + TIMEOUT + "\r\n").encode()
        wrong = [st["buf"] for st in state.values() if st["buf"] != expected]
        self.assertEqual(wrong, [], f"{len(wrong)} of {n} not cut as expected")
        self.assertLess(elapsed, 2 + 0.3 + 2 * SLACK)
        # Still serving afterwards.
        self.send_mail("alice@example.org", b"Subject: after\r\n\r\nfine\r\n")


if __name__ == "__main__":
    mhtest.main()
