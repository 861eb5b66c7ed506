"""SPEC §8 "Addresses": a sender or recipient whose local part or domain holds '/', '\\',
NUL, a control character, or an empty/"."/".." domain label is refused at MAIL/RCPT
(501 5.1.7 / 501 5.1.3) whether the client is authenticated or not and whether the
domain is ours or not; nothing reaches a Maildir or the queue. Good addresses still pass."""

import os

import mhtest
import mhtest_smtp
from mhtest_mail import plain

BAD_RCPT = "501 5.1.3 Bad recipient address syntax"
BAD_SENDER = "501 5.1.7 Bad sender address syntax"

BAD = [
    "x@example.org/../other",
    "x@../example.org",
    "x@example..org",
    "x@.example.org",
    "x@example.org.",
    "a/b@example.org",
    "a\\b@example.org",
    '"a/b"@example.org',
    '"a\\b"@example.org',
    "x@example.org\x01",
    "x\x7f@example.org",
    "x@exa\x00mple.org",
    "x@remote.test/../../etc",
    "../../x@remote.test",
]


def chunks(items, n=6):
    """Groups small enough that a session stays under max_errors (10) refusals."""
    return [items[i:i + n] for i in range(0, len(items), n)]


class AddressSyntax(mhtest_smtp.SmtpTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def queue_files(self):
        out = []
        for root, _dirs, files in os.walk(self.path("queue")):
            out += [os.path.join(root, f) for f in files]
        return out

    def assert_nothing_stored(self):
        self.assertEqual(self.count_all_messages(), 0)
        self.assertEqual(self.queue_files(), [])
        # No directory was made from an address either.
        self.assertEqual(sorted(os.listdir(self.path("domains"))), ["example.org"])

    def authenticated(self):
        c = self.session()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", "secret-pw")),
                         "235 2.7.0 Authentication successful")
        return c

    def test_bad_recipients_unauthenticated(self):
        for group in chunks(BAD):
            c = self.session()
            self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok")
            for bad in group:
                with self.subTest(rcpt=bad):
                    self.assertEqual(c.cmd(f"RCPT TO:<{bad}>"), BAD_RCPT)
            self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command")
            self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assert_nothing_stored()
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(c.cmd("Subject: good\r\n\r\nbody\r\n."), r"^250 2\.0\.0 Ok: queued as ")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(len(self.messages("alice@example.org")), 1)
        self.assertEqual(self.queue_files(), [])

    def test_bad_recipients_authenticated_relay(self):
        for group in chunks(BAD):
            c = self.authenticated()
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
            for bad in group:
                with self.subTest(rcpt=bad):
                    self.assertEqual(c.cmd(f"RCPT TO:<{bad}>"), BAD_RCPT)
            # Nothing accepted: DATA has no recipient, nothing can be queued.
            self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command")
            self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        c = self.authenticated()
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
        # A good remote address is still relayed for the authenticated user.
        self.assertEqual(c.cmd("RCPT TO:<someone@remote.test>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assert_nothing_stored()

    def test_bad_senders(self):
        for group in chunks(BAD):
            c = self.session()
            for bad in group:
                with self.subTest(sender=bad):
                    self.assertEqual(c.cmd(f"MAIL FROM:<{bad}>"), BAD_SENDER)
            self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        c = self.authenticated()
        for bad in ["alice/..@example.org", "alice@example.org/..", "alice@example..org"]:
            with self.subTest(sender=bad):
                self.assertEqual(c.cmd(f"MAIL FROM:<{bad}>"), BAD_SENDER)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assert_nothing_stored()


if __name__ == "__main__":
    mhtest.main()
