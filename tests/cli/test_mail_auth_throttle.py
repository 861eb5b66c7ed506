"""Failed logins are slowed and throttled per client address (SPEC §8; the schedule is
auth/throttle.h's, not configurable: the n-th failure within 15 minutes is answered
after 0, 1, 2, 4, 8 s, then 15 s; from the 10th failure on the client is refused
unchecked). Unknown users and wrong passwords take the same time. SMTP AUTH and POP3
share the count. Only the first steps and the lock-out are timed, so the file stays
short; every client address here is this test's own (127.0.0.3 and up)."""

import threading
import time

import mhtest
from mhtest_mail import AUTH_BAD, AUTH_OK, PASSWORD, MailTestCase, plain, timed

TOLERANCE = 0.45  # seconds between two replies that should take the same time
NO_DELAY = 0.9    # a reply without a throttle delay comes well before 1 s


class ThrottleCase(MailTestCase):
    def setUp(self):
        super().setUp()
        # Plaintext from anywhere, so the clients here need no TLS (timing stays simple).
        self.start_mail_server("auth: { allow_plaintext: true }\n")

    def smtp_auth(self, source, user, password, expected):
        """One AUTH PLAIN on a fresh connection; the seconds its reply took."""
        c = self.raw("smtp", source=source)
        self.assertEqual(c.cmd("EHLO client.test")[:4], "250-")
        t, reply = timed(c.cmd, "AUTH PLAIN " + plain(user, password))
        self.assertEqual(reply, expected)
        c.close()
        return t

    def pop_pass(self, source, user, password, expected):
        c = self.raw("pop3", source=source)
        self.assertEqual(c.pop("USER " + user), "+OK")
        t, reply = timed(c.pop, "PASS " + password)
        self.assertEqual(reply, expected)
        return t, c


class AuthDelay(ThrottleCase):
    def test_delay_grows_and_is_the_same_for_unknown_users_and_wrong_passwords(self):
        ip = "127.0.0.3"
        unknown1 = self.smtp_auth(ip, "nobody@example.org", PASSWORD, AUTH_BAD)
        self.smtp_auth(ip, "alice@example.org", PASSWORD, AUTH_OK)  # a success forgets the client
        wrong1 = self.smtp_auth(ip, "alice@example.org", "wrong", AUTH_BAD)
        self.assertLess(unknown1, NO_DELAY)
        self.assertLess(wrong1, NO_DELAY)
        self.assertLess(abs(unknown1 - wrong1), TOLERANCE, (unknown1, wrong1))
        wrong2 = self.smtp_auth(ip, "alice@example.org", "wrong", AUTH_BAD)
        self.assertGreaterEqual(wrong2, 0.95)
        self.assertLess(wrong2, 1.9)

        self.smtp_auth(ip, "alice@example.org", PASSWORD, AUTH_OK)
        self.assertLess(self.smtp_auth(ip, "nobody@example.org", PASSWORD, AUTH_BAD), NO_DELAY)
        unknown2 = self.smtp_auth(ip, "nobody@example.org", PASSWORD, AUTH_BAD)
        self.assertLess(abs(unknown2 - wrong2), TOLERANCE, (unknown2, wrong2))

        # The third failure waits about 2 s; meanwhile other clients are served at once,
        # and the slow-down is this client's only (127.0.0.4's first failure: no wait).
        result = {}
        t = threading.Thread(target=lambda: result.update(
            third=self.smtp_auth(ip, "alice@example.org", "wrong", AUTH_BAD)))
        t.start()
        time.sleep(0.3)
        other = self.raw("smtp", source="127.0.0.4")
        quick, reply = timed(other.cmd, "EHLO other.test")
        self.assertTrue(reply.startswith("250-"))
        self.assertLess(quick, 0.5)
        self.assertLess(self.smtp_auth("127.0.0.4", "alice@example.org", "wrong", AUTH_BAD), NO_DELAY)
        t.join(30)
        self.assertGreaterEqual(result["third"], 1.9)
        self.assertLess(result["third"], 3.5)
        # A right password is answered at once, and starts the client afresh.
        self.assertLess(self.smtp_auth(ip, "alice@example.org", PASSWORD, AUTH_OK), NO_DELAY)

    def test_pop3_and_smtp_share_the_count(self):
        ip = "127.0.0.5"
        first, _ = self.pop_pass(ip, "alice@example.org", "wrong", "-ERR [AUTH] Authentication failed.")
        self.assertLess(first, NO_DELAY)
        second = self.smtp_auth(ip, "nobody@example.org", PASSWORD, AUTH_BAD)
        self.assertGreaterEqual(second, 0.95)
        self.assertLess(second, 1.9)
        # The session that failed may try again; the unknown user costs the same.
        third, c = self.pop_pass(ip, "nobody@example.org", PASSWORD, "-ERR [AUTH] Authentication failed.")
        self.assertGreaterEqual(third, 1.9)
        self.assertLess(third, 3.5)
        self.assertEqual(c.pop("USER alice@example.org"), "+OK")
        self.assertEqual(c.pop("PASS " + PASSWORD), "+OK Logged in.")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")


class AuthLockout(ThrottleCase):
    def test_tenth_failure_locks_the_client_out(self):
        ip = "127.0.0.6"
        # Ten failures at once (POP3 logs a failure before its delay, so the count is
        # visible at once); their replies come within the 15 s cap, in parallel.
        clients = []
        for i in range(10):
            c = self.raw("pop3", source=ip)
            self.assertEqual(c.pop("USER " + ("alice@example.org" if i % 2 else f"nobody{i}@example.org")), "+OK")
            c.send("PASS wrong\r\n")
            clients.append(c)
        deadline = time.time() + 20
        while self.log().count(f"login failed client={ip} ") < 10:
            self.assertLess(time.time(), deadline, self.log())
            time.sleep(0.02)

        # Now even the right password is refused unchecked, over either protocol, after
        # the longest delay; the connection is closed.
        replies = {}

        def smtp():
            c = self.raw("smtp", source=ip)
            c.cmd("EHLO client.test")
            replies["smtp"] = timed(c.cmd, "AUTH PLAIN " + plain("alice@example.org", PASSWORD))
            replies["smtp_eof"] = c.at_eof()

        def pop():
            c = self.raw("pop3", source=ip)
            self.assertEqual(c.pop("USER alice@example.org"), "+OK")
            replies["pop3"] = timed(c.pop, "PASS " + PASSWORD)
            replies["pop3_eof"] = c.at_eof()

        threads = [threading.Thread(target=smtp), threading.Thread(target=pop)]
        for t in threads:
            t.start()
        # Another client is not affected.
        self.assertLess(self.smtp_auth("127.0.0.7", "alice@example.org", PASSWORD, AUTH_OK), NO_DELAY)
        for c in clients:
            self.assertEqual(c.line(), "-ERR [AUTH] Authentication failed.")
        for t in threads:
            t.join(40)
        t_smtp, r_smtp = replies["smtp"]
        t_pop, r_pop = replies["pop3"]
        self.assertEqual(r_smtp, "421 4.7.0 Too many failed authentications, closing connection")
        self.assertEqual(r_pop, "-ERR [SYS/TEMP] Too many failed logins, try again later.")
        self.assertTrue(replies["smtp_eof"])
        self.assertTrue(replies["pop3_eof"])
        for t in (t_smtp, t_pop):
            self.assertGreaterEqual(t, 14.5)
            self.assertLess(t, 20)
        self.assertIn(f"login failed client={ip} method=USER result=throttled", self.log())


if __name__ == "__main__":
    mhtest.main()
