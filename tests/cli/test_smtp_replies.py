"""mh-serve's SMTP replies, each reached on purpose over a raw socket and compared
exactly; pipelined groups answered in order; the published SMTP smuggling variants
rejected without a second message being injected."""

import mhtest
from mhtest_smtp import HOST, SmtpTestCase

DATA_GO = "354 End data with <CR><LF>.<CR><LF>"
QUEUED = r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$"


class SmtpReplies(SmtpTestCase):
    def setUp(self):
        super().setUp()
        self.start_server("limits: { recipients: 100 }\n")

    def test_greeting_ehlo_helo_noop_rset_vrfy_help_quit(self):
        c = self.connect()
        self.assertEqual(c.cmd("EHLO client.test"),
                         f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-STARTTLS\n"
                         "250-AUTH PLAIN LOGIN\n250 ENHANCEDSTATUSCODES")
        self.assertEqual(c.cmd("HELO client.test"), f"250 {HOST}")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("VRFY alice"), "252 2.5.2 Cannot VRFY user")
        self.assertEqual(c.cmd("VRFY nobody@example.org"), "252 2.5.2 Cannot VRFY user")
        self.assertEqual(c.cmd("HELP"), "214 2.0.0 Commands: HELO EHLO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertTrue(c.at_eof())

    def test_sequence_and_syntax_errors(self):
        c = self.connect()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "503 5.5.1 Error: send HELO/EHLO first")
        self.assertEqual(c.cmd("EHLO"), "501 5.5.4 Syntax: EHLO hostname")
        self.assertEqual(c.cmd("HELO c"), f"250 {HOST}")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("MAIL FROM:a@remote.test"), "501 5.5.4 Syntax: MAIL FROM:<address>")
        self.assertEqual(c.cmd("MAIL FROM:<a b@remote.test>"), "501 5.1.7 Bad sender address syntax")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> FOO=1"), "555 5.5.4 Unsupported option: FOO")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "503 5.5.1 Error: nested MAIL command")
        self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command")
        self.assertEqual(c.cmd("RCPT TO:<nobody@example.org>"), "550 5.1.1 <nobody@example.org>: User unknown")
        # One more and it would be the tenth error; start a fresh session for the rest.
        c2 = self.connect()
        self.assertEqual(c2.cmd("HELO c"), f"250 {HOST}")
        self.assertEqual(c2.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c2.cmd("RCPT TO:<nobody@example.org>"), "550 5.1.1 <nobody@example.org>: User unknown")
        self.assertEqual(c2.cmd("DATA"), "554 5.5.1 Error: no valid recipients")
        self.assertEqual(c2.cmd("RCPT TO:alice@example.org"), "501 5.5.4 Syntax: RCPT TO:<address>")
        self.assertEqual(c2.cmd("RCPT TO:<alice>"), "501 5.1.3 Bad recipient address syntax")
        self.assertEqual(c2.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c2.cmd("DATA extra"), "501 5.5.4 Syntax: DATA")
        self.assertEqual(c2.cmd("FROB"), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c2.cmd("EXPN staff"), "502 5.5.1 Command not implemented")

    def test_rcpt_refusals(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<someone@elsewhere.test>"), "550 5.7.1 Relaying denied")
        self.assertEqual(c.cmd("RCPT TO:<root@[127.0.0.1]>"), "550 5.7.1 Relaying denied")
        self.assertEqual(c.cmd("RCPT TO:<nobody@example.org>"), "550 5.1.1 <nobody@example.org>: User unknown")
        self.assertEqual(c.cmd("RCPT TO:<not+valid@example.org>"), "550 5.1.1 <not+valid@example.org>: User unknown")
        self.assertExit(self.user("suspend", "bob@example.org"), 0)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "550 5.2.1 <bob@example.org>: Mailbox disabled")
        self.assertEqual(c.cmd("RCPT TO:<alice@EXAMPLE.ORG>"), "250 2.1.5 Ok")

    def test_size_at_mail(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> SIZE=31457281"), "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> SIZE=31457280"), "250 2.1.0 Ok")

    def test_101st_recipient(self):
        # 100 distinct accepted recipients need 100 accounts: 98 more, sent as one group.
        for i in range(98):
            self.add_account(f"u{i}@example.org")
        c = self.session()
        rcpts = ["alice@example.org", "bob@example.org"] + [f"u{i}@example.org" for i in range(98)]
        c.send("MAIL FROM:<a@remote.test>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
        self.assertEqual(c.reply(), "250 2.1.0 Ok")
        for _ in rcpts:
            self.assertEqual(c.reply(), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<u1@example.org>"), "452 4.5.3 Too many recipients")
        self.assertEqual(c.cmd("RCPT TO:<u2@example.org>"), "452 4.5.3 Too many recipients")
        self.assertEqual(c.cmd("DATA"), DATA_GO)
        self.assertRegex(c.cmd("Subject: many\r\n\r\nhi\r\n."), QUEUED)
        self.assertEqual(self.count_all_messages(), 100)

    def test_line_too_long_and_bare_line_endings_in_commands(self):
        c = self.session()
        self.assertEqual(c.cmd("NOOP " + "x" * 505), "250 2.0.0 Ok")  # 512 octets with CRLF
        self.assertEqual(c.cmd("NOOP " + "x" * 506), "500 5.5.2 Line too long")
        c.send("NOOP " + "y" * 100000 + "\r\n")
        self.assertEqual(c.reply(), "500 5.5.2 Line too long")
        c.send("NOOP\n")
        self.assertEqual(c.reply(), "500 5.5.2 Bare LF or CR in command line")
        c.send("NO\rOP\r\n")
        self.assertEqual(c.reply(), "500 5.5.2 Bare LF or CR in command line")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")

    def test_ten_errors_disconnect(self):
        c = self.session()
        c.send("".join(f"BAD{i}\r\n" for i in range(12)))
        for _ in range(10):
            self.assertEqual(c.reply(), "502 5.5.2 Error: command not recognized")
        self.assertEqual(c.reply(), "421 4.7.0 Too many errors")
        self.assertTrue(c.at_eof())

    def test_pipelined_group_answered_in_order(self):
        c = self.connect()
        c.send("EHLO pipe.test\r\nMAIL FROM:<p@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
               "RCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
        self.assertTrue(c.reply().startswith(f"250-{HOST}\n250-PIPELINING"))
        self.assertEqual(c.reply(), "250 2.1.0 Ok")
        self.assertEqual(c.reply(), "250 2.1.5 Ok")
        self.assertEqual(c.reply(), "550 5.1.1 <nobody@example.org>: User unknown")
        self.assertEqual(c.reply(), "250 2.1.5 Ok")
        self.assertEqual(c.reply(), DATA_GO)
        # The message, the dot and the next transaction in one write, too.
        c.send("Subject: one\r\n\r\n..first\r\n.\r\nMAIL FROM:<q@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
        self.assertRegex(c.reply(), QUEUED)
        self.assertEqual(c.reply(), "250 2.1.0 Ok")
        self.assertEqual(c.reply(), "250 2.1.5 Ok")
        self.assertEqual(c.reply(), DATA_GO)
        c.send("Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        self.assertRegex(c.reply(), QUEUED)
        self.assertEqual(c.reply(), "221 2.0.0 Bye")
        self.assertEqual([m.endswith(b"Subject: one\n\n.first\n") for m in self.messages("alice@example.org")], [True])
        bob = self.messages("bob@example.org")
        self.assertEqual(len(bob), 2)
        self.assertEqual(sorted(m.split(b"\n")[-4] for m in bob), [b"Subject: one", b"Subject: two"])


class SmtpSmuggling(SmtpTestCase):
    """Each published smuggling variant: the data is read to the real <CRLF>.<CRLF>,
    rejected with 554 5.6.0, and nothing is delivered — no second message either."""

    VARIANTS = ["\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r\n.\n"]

    def setUp(self):
        super().setUp()
        self.start_server()

    def test_variants(self):
        for v in self.VARIANTS:
            with self.subTest(variant=repr(v)):
                c = self.session()
                c.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
                self.assertEqual(c.reply(), "250 2.1.0 Ok")
                self.assertEqual(c.reply(), "250 2.1.5 Ok")
                self.assertEqual(c.reply(), DATA_GO)
                c.send("Subject: outer\r\n\r\nhello" + v +
                       "MAIL FROM:<admin@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                       "Subject: smuggled\r\n\r\ninjected\r\n.\r\nQUIT\r\n")
                self.assertEqual(c.reply(), "554 5.6.0 Bare LF or CR in message; see RFC 5321 section 2.3.8")
                self.assertEqual(c.reply(), "221 2.0.0 Bye")
                self.assertTrue(c.at_eof())
                self.assertEqual(self.count_all_messages(), 0)

    def test_bare_lf_in_body_only(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), DATA_GO)
        self.assertEqual(c.cmd("line one\nline two\r\n."),
                         "554 5.6.0 Bare LF or CR in message; see RFC 5321 section 2.3.8")
        # The session goes on normally after the rejected message.
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), DATA_GO)
        self.assertRegex(c.cmd("clean\r\n."), QUEUED)
        self.assertEqual(self.count_all_messages(), 1)
        self.wait_for_log("result=\"554 5.6.0 Bare LF or CR in message")


if __name__ == "__main__":
    mhtest.main()
