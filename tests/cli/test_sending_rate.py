"""limits.sending_per_hour end to end (SPEC §8) with smtplib over submission: with a
limit of 5, five recipients pass; the message that would be the sixth is refused after
DATA with 550 5.7.1 saying sending is suspended, stored nowhere (no Maildir, nothing in
SPOOL/queue/), and the account shows `sending: suspended` with reason `rate`, as
`mh-user suspend --sending --reason rate` records it. The window is in the spool: a
restarted daemon and a second mh-serve process (--stdio) count together with the first.
`mh-user resume --sending` lets mail through again and starts a new window. All
recipients are local accounts, so nothing needs an outbound relay."""

import os
import smtplib
import subprocess

import mhtest
from mhtest_mail import PASSWORD, MailTestCase, plain

LIMIT = "limits: { sending_per_hour: 5 }\n"
REFUSED = ("550 5.7.1 Sending suspended for alice@example.org: rate "
           "(ask your administrator: mh-user resume --sending)")
RECIPIENTS = ["bob@example.org", "carol@example.org", "dave@example.org", "erin@example.org"]


def message(subject):
    return f"From: alice@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n".encode()


class SendingRate(MailTestCase):
    def setUp(self):
        super().setUp()
        for address in RECIPIENTS[1:]:
            self.add_account(address)
        self.start_mail_server(LIMIT)

    def client(self):
        s = self.smtplib_client("submission")
        self.assertEqual(s.login("alice@example.org", PASSWORD)[0], 235)
        return s

    def submit(self, recipients, subject):
        s = self.client()
        self.assertEqual(s.sendmail("alice@example.org", recipients, message(subject)), {})
        s.quit()

    def assert_refused(self, s, recipients, subject):
        with self.assertRaises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@example.org", recipients, message(subject))
        self.assertEqual((e.exception.smtp_code, e.exception.smtp_error), (550, REFUSED[4:].encode()))
        self.assertIn(b"suspended", e.exception.smtp_error)

    def show(self):
        r = self.user("show", "alice@example.org", "--json")
        self.assertExit(r, 0)
        return r.json()

    def stored_anywhere(self, subject):
        """Every spool file (Maildirs' tmp/new/cur, the queue) holding `subject`."""
        found = []
        for root, _, files in os.walk(self.spool):
            for name in files:
                p = os.path.join(root, name)
                if "/run/" in p or os.path.islink(p):
                    continue
                with open(p, "rb") as f:
                    if f"Subject: {subject}".encode() in f.read():
                        found.append(os.path.relpath(p, self.spool))
        return found

    def stdio_submit(self, recipients, subject):
        """One authenticated message through a second mh-serve process (--stdio smtp)."""
        script = ["EHLO stdio.test", "AUTH PLAIN " + plain("alice@example.org", PASSWORD),
                  "MAIL FROM:<alice@example.org>"] + [f"RCPT TO:<{r}>" for r in recipients] + ["DATA"]
        data = message(subject).replace(b"\r\n", b"\n").decode().splitlines() + [".", "QUIT"]
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "smtp"],
                              input="".join(line + "\r\n" for line in script + data).encode(),
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout.decode().split("\r\n")

    def test_limit_suspends_refuses_and_resume_lifts(self):
        self.submit(RECIPIENTS[:2], "one")     # 2
        self.submit(RECIPIENTS[2:3], "two")    # 3
        self.submit(RECIPIENTS[:2], "three")   # 5: exactly the limit
        self.assertEqual(self.show()["sending"], "active")
        before = self.count_all_messages()
        s = self.client()
        self.assert_refused(s, RECIPIENTS[3:], "six")
        # Stored nowhere: no Maildir (new, cur or tmp), nothing queued.
        self.assertEqual(self.stored_anywhere("six"), [])
        self.assertEqual(self.count_all_messages(), before)
        self.assertEqual(self.queue_entries(), {})
        # Recorded as `mh-user suspend --sending --reason rate` would.
        j = self.show()
        self.assertEqual((j["sending"], j["sending_reason"]), ("suspended", "rate"))
        self.assertEqual(j["state"], "active")
        # The same session's next MAIL, and a new session, get the same refusal at MAIL.
        self.assertEqual(s.docmd("MAIL FROM:<alice@example.org>"), (550, REFUSED[4:].encode()))
        s.quit()
        s = self.client()
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("alice@example.org", ["bob@example.org"], message("seven"))
        self.assertEqual(e.exception.smtp_code, 550)
        s.quit()
        self.wait_for_log('rate="sending suspended: 5 + 1 recipients in the last hour exceed 5"')
        self.assertIn('result="' + REFUSED + '"', self.log())
        # The account still receives.
        self.send_mail("alice@example.org", message("inbound"))
        # Lifted by the administrator: a new window, so five more pass at once …
        self.assertExit(self.user("resume", "alice@example.org", "--sending"), 0)
        self.assertEqual(self.show()["sending"], "active")
        self.submit(RECIPIENTS, "after resume")
        self.submit(RECIPIENTS[:1], "fifth after resume")
        self.assertEqual(len(self.messages("erin@example.org")), 1)
        # … and the limit holds again after them.
        s = self.client()
        self.assert_refused(s, RECIPIENTS[:1], "sixth after resume")
        s.quit()
        self.assertEqual(self.stored_anywhere("sixth after resume"), [])
        self.assertEqual(self.show()["sending_reason"], "rate")

    def test_window_survives_a_restart_and_is_shared_by_processes(self):
        self.submit(RECIPIENTS[:3], "before restart")  # 3
        self.restart_server()
        replies = self.stdio_submit(RECIPIENTS[3:], "from a second process")  # 4
        self.assertRegex(replies[-3], r"^250 2\.0\.0 Ok: queued as ")
        self.submit(RECIPIENTS[:1], "after restart")  # 5
        # A message of two recipients would take the window to 6: refused as a whole.
        s = self.client()
        self.assert_refused(s, RECIPIENTS[:2], "one too many")
        s.quit()
        self.assertEqual(self.stored_anywhere("one too many"), [])
        self.assertEqual(self.show()["sending_reason"], "rate")
        # The other process sees the suspension as well.
        replies = self.stdio_submit(RECIPIENTS[:1], "refused at MAIL")
        self.assertIn(REFUSED, replies)
        self.assertEqual(self.stored_anywhere("refused at MAIL"), [])
        # The record lives beside account.yaml.
        with open(self.path("domains", "example.org", "accounts", "alice", "sending.rate")) as f:
            self.assertTrue(f.read().startswith("mailhost-sending-rate 1\nsuspended yes\n"))


if __name__ == "__main__":
    mhtest.main()
