"""SMTP protocol synchronization (SPEC §8, RFC 2920 §3.1; issue 13 item 1): bytes sent
after DATA before its reply, or before the greeting, end the session with
"554 5.5.0 Error: SMTP protocol synchronization"; nothing pipelined behind DATA is run
as a command or delivered, on plain SMTP, SMTPS and submission (STARTTLS). Well-behaved
pipelining clients (smtplib, swaks --pipeline) are not affected."""

import os
import shutil
import smtplib
import subprocess
import unittest

import mhtest
from mhtest_mail import DATA_GO, HOST, PASSWORD, QUEUED, MailTestCase, plain

SYNC = "554 5.5.0 Error: SMTP protocol synchronization"
EHLO_FIRST = f"250-{HOST}"

# The attack of issue 13: a refused recipient, DATA, and behind it a second transaction
# for the victim — all in one write.
FORGERY = ("MAIL FROM:<a@x.test>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n"
           "MAIL FROM:<b@x.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
           "Subject: forged\r\n\r\nx\r\n.\r\n")
# An acceptable recipient and the message without waiting for the 354.
EAGER = "MAIL FROM:<a@x.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: eager\r\n\r\nx\r\n.\r\n"


class SyncCase(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server()

    def assert_nothing_stored(self):
        for who in ("alice@example.org", "bob@example.org"):
            for sub in ("new", "cur", "tmp"):
                self.assertEqual(os.listdir(self.maildir(who, sub)), [], f"{who} {sub}/")
        self.assertEqual(self.queue_entries(), {})

    def replies_until_eof(self, c):
        """Every reply line until the server closes."""
        lines = []
        while True:
            line = c.line()
            if line == "":
                return lines
            lines.append(line)

    def assert_cut(self, c, expected_before):
        lines = self.replies_until_eof(c)
        self.assertEqual(lines, expected_before + [SYNC])
        self.assertTrue(c.at_eof())


class PlainSmtp(SyncCase):
    def test_forgery_behind_a_refused_data_is_never_run(self):
        c = self.raw("smtp")
        self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))
        c.send(FORGERY)
        self.assert_cut(c, ["250 2.1.0 Ok", "550 5.1.1 <nobody@example.org>: User unknown"])
        self.assert_nothing_stored()
        self.wait_for_log("protocol synchronization error: bytes after DATA before its reply")

    def test_forgery_in_the_same_write_as_ehlo(self):
        c = self.raw("smtp")
        c.send("EHLO client.test\r\n" + FORGERY)
        lines = self.replies_until_eof(c)
        self.assertEqual(lines[-3:], ["250 2.1.0 Ok", "550 5.1.1 <nobody@example.org>: User unknown", SYNC])
        self.assert_nothing_stored()

    def test_message_sent_before_the_354_is_not_delivered(self):
        c = self.raw("smtp")
        self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))
        c.send(EAGER)
        self.assert_cut(c, ["250 2.1.0 Ok", "250 2.1.5 Ok"])
        self.assert_nothing_stored()
        self.wait_for_log('result="aborted: 554 5.5.0')

    def test_data_without_transaction_then_bytes(self):
        # DATA refused with 503 still ends a pipelined group.
        c = self.raw("smtp")
        self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))
        c.send("DATA\r\nRCPT TO:<bob@example.org>\r\n")
        self.assert_cut(c, [])
        self.assert_nothing_stored()

    def test_bytes_before_the_greeting(self):
        c = self.raw("smtp", greet=False)
        c.send("EHLO early.test\r\n")
        self.assertEqual(self.replies_until_eof(c), [SYNC])  # no 220, no 250
        self.wait_for_log("protocol synchronization error: bytes before the greeting")

    def test_pipelining_after_the_354_is_fine(self):
        c = self.raw("smtp")
        self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))
        c.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        self.assertEqual([c.reply() for _ in range(3)], ["250 2.1.0 Ok", "250 2.1.5 Ok", DATA_GO])
        c.send("Subject: ok\r\n\r\nfine\r\n.\r\nQUIT\r\n")
        self.assertRegex(c.reply(), QUEUED)
        self.assertEqual(c.reply(), "221 2.0.0 Bye")
        self.assertEqual(len(self.messages("alice@example.org")), 1)

    def test_smtplib(self):
        s = smtplib.SMTP("127.0.0.1", self.ports["smtp"], local_hostname="client.test", timeout=30)
        self.on_teardown(s.close)
        self.assertEqual(s.sendmail("a@x.test", ["alice@example.org", "bob@example.org"],
                                    b"Subject: smtplib\r\n\r\nhello\r\n"), {})
        s.quit()
        self.assertEqual(len(self.messages("alice@example.org")), 1)
        self.assertEqual(len(self.messages("bob@example.org")), 1)

    @unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
    def test_swaks_pipelining(self):
        r = subprocess.run(["swaks", "--pipeline", "--server", "127.0.0.1", "--port", str(self.ports["smtp"]),
                            "--helo", "client.test", "--from", "a@x.test", "--to", "alice@example.org,bob@example.org",
                            "--header", "Subject: swaks"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("5.5.0", r.stdout)
        self.assertEqual(len(self.messages("alice@example.org")), 1)
        self.assertEqual(len(self.messages("bob@example.org")), 1)


class OverTls(SyncCase):
    def logged_in(self, service):
        if service == "smtps":
            c = self.raw("smtps")
            self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))
        else:
            c = self.raw(service)
            self.smtp_starttls(c)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)),
                         "235 2.7.0 Authentication successful")
        return c

    def test_eager_message_over_tls(self):
        for service in ("smtps", "submission"):
            with self.subTest(service=service):
                c = self.logged_in(service)
                c.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                       "RCPT TO:<someone@remote.test>\r\nDATA\r\nFrom: alice@example.org\r\n\r\nx\r\n.\r\n")
                self.assert_cut(c, ["250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"])
                self.assert_nothing_stored()

    def test_starttls_still_drops_pipelined_plaintext(self):
        c = self.raw("submission")
        self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))
        c.send("STARTTLS\r\nRSET\r\n")
        self.assertEqual(c.reply(), "220 2.0.0 Ready to start TLS")
        self.assertEqual(c.pending_plaintext(), b"")
        c.start_tls()
        self.assertTrue(c.cmd("EHLO client.test").startswith(EHLO_FIRST))

    def test_smtplib_submission(self):
        s = self.smtplib_client("submission")
        s.login("alice@example.org", PASSWORD)
        self.assertEqual(s.sendmail("alice@example.org", ["bob@example.org"],
                                    b"From: alice@example.org\r\nSubject: tls\r\n\r\nhello\r\n"), {})
        s.quit()
        self.assertEqual(len(self.messages("bob@example.org")), 1)


if __name__ == "__main__":
    mhtest.main()
