"""mh-serve inbound SMTP with real clients (Python smtplib, swaks, curl): messages land in
Maildir/new with Return-Path, Received and Delivered-To on top, byte-exact otherwise;
changes made by the tools (new accounts, suspension, quota) count at once."""

import os
import re
import shutil
import smtplib
import subprocess
import unittest

import mhtest
from mhtest_smtp import HOST, SmtpTestCase

RECEIVED = re.compile(
    r"Received: from (\S+) \(unknown \[127\.0\.0\.1\]\)\n"
    r"\tby mx\.test \(mailhost\) with (E?SMTP) id ([0-9A-F]+)\n"
    r"\tfor <([^>]+)>; (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000\n")


class SmtpDelivery(SmtpTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def test_smtplib_delivers_with_trace_headers(self):
        body = "Subject: hello\r\nFrom: sender@remote.test\r\n\r\nfirst line\r\n.starts with a dot\r\n"
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test") as s:
            code, text = s.ehlo()
            self.assertEqual(code, 250)
            self.assertEqual(text.decode().split("\n"),
                             [HOST, "PIPELINING", "SIZE 31457280", "8BITMIME", "STARTTLS", "AUTH PLAIN LOGIN",
                              "ENHANCEDSTATUSCODES"])
            s.sendmail("sender@remote.test", ["Alice@Example.org"], body)
        [msg] = self.messages("alice@example.org")
        text = msg.decode()
        self.assertTrue(text.startswith("Return-Path: <sender@remote.test>\n"), text)
        m = RECEIVED.search(text)
        self.assertIsNotNone(m, text)
        self.assertEqual(m.group(1), "client.test")
        self.assertEqual(m.group(2), "ESMTP")
        self.assertEqual(m.group(4), "alice@example.org")
        self.assertIn("\nDelivered-To: alice@example.org\n", text)
        # The client's message follows unchanged but for LF line endings and the
        # removed stuffing dot (smtplib doubles it, the server removes it again).
        self.assertTrue(text.endswith("Delivered-To: alice@example.org\nSubject: hello\nFrom: sender@remote.test\n\n"
                                      "first line\n.starts with a dot\n"), text)
        # The Maildir name carries the size (,S=), and the size with CRLF line ends (,W=,
        # what POP3 announces); maildirsize counts it.
        name = os.listdir(self.maildir("alice@example.org"))[0]
        self.assertTrue(name.endswith(",S=%d,W=%d" % (len(msg), len(msg) + msg.count(b"\n"))), name)
        # One log line for the transaction, with the queue id of the reply.
        qid = m.group(3)
        self.wait_for_log("id=" + qid)
        line = [l for l in self.log().splitlines() if "id=" + qid in l][0]
        self.assertIn("client=127.0.0.1 helo=\"client.test\" tls=no from=<sender@remote.test> to=<alice@example.org>", line)
        self.assertIn('result="250 2.0.0 Ok: queued as %s"' % qid, line)

    def test_several_recipients_one_copy_each_without_delivered_to(self):
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            refused = s.sendmail("<>", ["alice@example.org", "bob@example.org", "ALICE@example.org"],
                                 "Subject: both\r\n\r\nhi\r\n")
            self.assertEqual(refused, {})
        for who in ("alice@example.org", "bob@example.org"):
            [msg] = self.messages(who)
            self.assertTrue(msg.startswith(b"Return-Path: <>\n"))
            self.assertNotIn(b"Delivered-To:", msg)
            self.assertNotIn(b"\tfor <", msg)
        # Stored once, hard-linked into both Maildirs.
        a = os.stat(os.path.join(self.maildir("alice@example.org"), os.listdir(self.maildir("alice@example.org"))[0]))
        b = os.stat(os.path.join(self.maildir("bob@example.org"), os.listdir(self.maildir("bob@example.org"))[0]))
        self.assertEqual(a.st_ino, b.st_ino)

    def test_8bit_and_nul_bytes_are_kept(self):
        data = b"Subject: bytes\r\n\r\n\xe3\x81\x82\x00\xff\x01 end\r\n"
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.ehlo()
            s.mail("x@remote.test", ["BODY=8BITMIME"])
            s.rcpt("bob@example.org")
            code, _ = s.data(data)
            self.assertEqual(code, 250)
        [msg] = self.messages("bob@example.org")
        self.assertTrue(msg.endswith(b"Subject: bytes\n\n\xe3\x81\x82\x00\xff\x01 end\n"), msg)

    def test_helo_gives_smtp_in_received(self):
        c = self.connect()
        self.assertEqual(c.cmd("HELO old.client"), "250 " + HOST)
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        reply = c.cmd("x\r\n.")
        self.assertRegex(reply, r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        [msg] = self.messages("bob@example.org")
        self.assertIn(b"Received: from old.client (unknown [127.0.0.1])\n\tby mx.test (mailhost) with SMTP id ", msg)

    @unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
    def test_swaks(self):
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.port}", "--to", "alice@example.org",
                            "--from", "swaks@remote.test", "--helo", "swaks.test", "--header", "Subject: via swaks"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<-  250 2\.0\.0 Ok: queued as [0-9A-Za-z]+")
        [msg] = self.messages("alice@example.org")
        self.assertIn(b"Subject: via swaks\n", msg)
        self.assertIn(b"Received: from swaks.test (unknown [127.0.0.1])", msg)

    @unittest.skipUnless(shutil.which("curl"), "curl not installed")
    def test_curl(self):
        mail = os.path.join(self.tmp, "mail.txt")
        with open(mail, "wb") as f:
            f.write(b"Subject: via curl\r\n\r\nsent by curl\r\n")
        r = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{self.port}/curl.test", "--mail-from", "c@remote.test",
                            "--mail-rcpt", "bob@example.org", "--upload-file", mail],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        [msg] = self.messages("bob@example.org")
        self.assertTrue(msg.endswith(b"Subject: via curl\n\nsent by curl\n"), msg)

    def test_tool_changes_count_at_once(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<carol@example.org>"), "550 5.1.1 <carol@example.org>: User unknown")
        self.add_account("carol@example.org")
        self.assertEqual(c.cmd("RCPT TO:<carol@example.org>"), "250 2.1.5 Ok")
        self.assertExit(self.user("suspend", "bob@example.org"), 0)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "550 5.2.1 <bob@example.org>: Mailbox disabled")
        self.assertExit(self.user("resume", "bob@example.org"), 0)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "250 2.1.5 Ok")
        self.add_domain("new.example")
        self.add_account("dave@new.example")
        self.assertEqual(c.cmd("RCPT TO:<dave@new.example>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(c.cmd("Subject: x\r\n\r\nbody\r\n."), r"^250 2\.0\.0 Ok: queued as ")
        for who in ("carol@example.org", "bob@example.org", "dave@new.example"):
            self.assertEqual(len(self.messages(who)), 1, who)


@unittest.skipUnless(os.geteuid() == 0, "needs root to show the switch to the spool owner")
class SmtpStartedAsRoot(SmtpTestCase):
    """Started as root, mh-serve binds, then becomes the spool's owner for good."""

    def setUp(self):
        super().setUp()
        import pwd
        self.owner = pwd.getpwnam("nobody")
        os.chmod(self.tmp, 0o755)  # the owner must be able to reach the spool
        for root, dirs, files in os.walk(self.spool):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), self.owner.pw_uid, self.owner.pw_gid)
        os.chown(self.spool, self.owner.pw_uid, self.owner.pw_gid)
        self.start_server()

    def test_runs_as_spool_owner(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            status = dict(l.split(":", 1) for l in f if ":" in l)
        self.assertEqual(status["Uid"].split(), [str(self.owner.pw_uid)] * 4)
        self.assertEqual(status["Gid"].split(), [str(self.owner.pw_gid)] * 4)
        self.assertEqual(status["Groups"].split(), [])
        with smtplib.SMTP("127.0.0.1", self.port) as s:
            s.sendmail("a@remote.test", ["alice@example.org"], "Subject: owned\r\n\r\nx\r\n")
        d = self.maildir("alice@example.org")
        [name] = os.listdir(d)
        st = os.stat(os.path.join(d, name))
        self.assertEqual((st.st_uid, st.st_gid), (self.owner.pw_uid, self.owner.pw_gid))
        self.assertNotIn("running as root", self.log())


class SmtpQuota(SmtpTestCase):
    """Domain quota: 552 5.2.2 at RCPT when full, at end of DATA when the message does not fit."""

    def setUp(self):
        super().setUp()
        self.add_domain("small.example", "--quota", "2K")
        self.add_account("tiny@small.example")
        self.add_account("other@small.example")
        self.start_server()

    def send(self, c, rcpts, body):
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        for r in rcpts:
            self.assertEqual(c.cmd(f"RCPT TO:<{r}>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        return c.cmd(body + "\r\n.")

    def test_single_recipient_too_big_for_the_room_left(self):
        c = self.session()
        reply = self.send(c, ["tiny@small.example"], "Subject: big\r\n\r\n" + "x" * 3000)
        self.assertEqual(reply, "552 5.2.2 <tiny@small.example>: Disk quota exceeded")
        self.assertEqual(self.messages("tiny@small.example"), [])

    def test_some_recipients_over_quota(self):
        c = self.session()
        reply = self.send(c, ["tiny@small.example", "alice@example.org"], "Subject: big\r\n\r\n" + "x" * 3000)
        lines = reply.split("\n")
        self.assertEqual(lines[0], "250-2.0.0 <tiny@small.example>: Disk quota exceeded, not delivered")
        self.assertRegex(lines[1], r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$")
        self.assertEqual(len(self.messages("alice@example.org")), 1)
        self.assertEqual(self.messages("tiny@small.example"), [])

    @unittest.skipUnless(os.path.exists(mhtest.tool_path("mh-quota")), "mh-quota not built")
    def test_full_domain_refused_at_rcpt(self):
        c = self.session()
        self.assertRegex(self.send(c, ["tiny@small.example"], "Subject: fits\r\n\r\n" + "y" * 1500),
                         r"^250 2\.0\.0 Ok: queued as ")
        # The administrator lowers the quota below the usage: the domain is full now,
        # and the running server sees it at the next RCPT.
        self.assertExit(self.run_tool("mh-quota", "set", "small.example", "1K"), 0)
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<tiny@small.example>"), "552 5.2.2 <tiny@small.example>: Disk quota exceeded")
        self.assertEqual(c.cmd("RCPT TO:<other@small.example>"), "552 5.2.2 <other@small.example>: Disk quota exceeded")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")

    def test_size_parameter_checked_against_the_room_left(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> SIZE=5000"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<tiny@small.example>"), "552 5.2.2 <tiny@small.example>: Disk quota exceeded")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test> SIZE=500"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<tiny@small.example>"), "250 2.1.5 Ok")


if __name__ == "__main__":
    mhtest.main()
