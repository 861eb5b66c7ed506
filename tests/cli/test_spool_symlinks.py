"""Symlinks planted in the spool (SPEC §8 "The spool walk", issue 13 item 7): Maildir/new,
Maildir/cur or the account directory replaced by a symlink to an outside folder, and a
message file in cur/ that is a symlink to an outside file. The outside content is never
served, nothing is written outside, POP3 answers [SYS/PERM], SMTP delivery 451 4.3.0,
mh-purge and mh-quota refuse naming the path, and the log names it."""

import os
import shutil

import mhtest
from mhtest_mail import MailTestCase

UNAVAILABLE = "-ERR [SYS/PERM] Mailbox is unavailable. Refer to server log for more information."
DELIVERY_FAILED = "451 4.3.0 Error: local delivery failed, try again later"
SECRET = b"Subject: outside\r\n\r\nSECRET-OUTSIDE-CONTENT\r\n"
MESSAGE = b"From: s@remote.test\r\nSubject: real\r\n\r\nreal mail\r\n"
ALICE = "alice@example.org"


class PlantedSymlinks(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server(services=("smtp", "pop3"))
        self.send_mail(ALICE, MESSAGE)
        self.outside = os.path.join(self.tmp, "outside")
        os.mkdir(self.outside)
        # A "message" an attacker wants served: a valid Maildir name with S=.
        with open(os.path.join(self.outside, f"1700000000.M1P1Q1R1.evil,S={len(SECRET)}"), "wb") as f:
            f.write(SECRET)
        self.outside_before = self.tree(self.outside)

    def tree(self, top):
        out = {}
        for d, _, files in os.walk(top):
            for name in files:
                p = os.path.join(d, name)
                with open(p, "rb") as f:
                    out[os.path.relpath(p, top)] = f.read()
        return out

    def account_dir(self):
        return self.path("domains", "example.org", "accounts", "alice")

    def plant_folder(self, sub):
        """Maildir/<sub> → the outside folder (the real one moved aside, inside the spool)."""
        real = self.maildir(ALICE, sub)
        os.rename(real, real + ".moved")
        os.symlink(self.outside, real)
        return real

    def assert_pop_unavailable(self, planted):
        c = self.raw("pop3")
        self.assertEqual(c.pop("USER " + ALICE), "+OK")
        self.assertEqual(c.pop("PASS secret-pw"), UNAVAILABLE)
        self.wait_for_log("result=unavailable")
        self.assertIn(planted, self.log())

    def assert_smtp_refused(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<s@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        c.send(MESSAGE + b".\r\n")
        self.assertEqual(c.reply(), DELIVERY_FAILED)

    def assert_tools_refuse(self, planted):
        for args in (("mh-purge", ALICE, "--everything"), ("mh-quota", "recalc", ALICE)):
            r = self.run_tool(*args)
            self.assertExit(r, 1, args)
            self.assertIn("refusing to follow symlink planted in the spool", r.err)
            self.assertIn(planted, r.err)

    def assert_outside_untouched(self):
        self.assertEqual(self.tree(self.outside), self.outside_before)

    def test_new_folder_symlink(self):
        planted = self.plant_folder("new")
        self.assert_pop_unavailable(planted)
        self.assert_smtp_refused()
        self.assert_tools_refuse(planted)
        self.assert_outside_untouched()
        # The real mail is still there, untouched.
        self.assertEqual(len(os.listdir(planted + ".moved")), 1)

    def test_cur_folder_symlink(self):
        planted = self.plant_folder("cur")
        self.assert_pop_unavailable(planted)
        self.assert_smtp_refused()
        self.assert_tools_refuse(planted)
        self.assert_outside_untouched()
        self.assertEqual(len(os.listdir(self.maildir(ALICE, "new"))), 1)

    def test_account_directory_symlink(self):
        real = self.account_dir()
        shutil.copytree(real, os.path.join(self.outside, "alice"), symlinks=True)
        self.outside_before = self.tree(self.outside)
        shutil.rmtree(real)
        os.symlink(os.path.join(self.outside, "alice"), real)
        c = self.raw("pop3")
        self.assertEqual(c.pop("USER " + ALICE), "+OK")
        # Authentication reads account.yaml through the walk as well: refused either way,
        # and the outside copy's mail is never listed.
        self.assertTrue(c.pop("PASS secret-pw").startswith("-ERR "))
        self.assert_tools_refuse(real)
        self.assert_outside_untouched()

    def test_message_symlink_in_cur_is_never_served(self):
        cur = self.maildir(ALICE, "cur")
        os.symlink(os.path.join(self.outside, os.listdir(self.outside)[0]),
                   os.path.join(cur, "1700000001.M2P2Q2R2.evil,S=40:2,S"))
        real_size = os.path.getsize(os.path.join(self.maildir(ALICE, "new"), os.listdir(self.maildir(ALICE, "new"))[0]))
        c = self.pop_session()
        self.assertRegex(c.pop("STAT"), r"^\+OK 1 \d+$")
        first, lines = c.pop_multi("LIST")
        self.assertEqual((first, len(lines)), ("+OK 1 messages:", 1))
        first, lines = c.pop_multi("RETR 1")
        self.assertTrue(first.startswith("+OK"), first)
        self.assertIn("real mail", lines)
        self.assertNotIn("SECRET-OUTSIDE-CONTENT", lines)
        self.assertEqual(c.pop("RETR 2"), "-ERR There's no message 2.")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        # Recalc counts the real message only; the link is left for the admin, untouched.
        doc = self.recalc(ALICE)
        self.assertEqual((doc["usage_bytes"], doc["usage_messages"]), (real_size, 1))
        self.assertTrue(os.path.islink(os.path.join(cur, "1700000001.M2P2Q2R2.evil,S=40:2,S")))
        self.assert_outside_untouched()


if __name__ == "__main__":
    mhtest.main()
