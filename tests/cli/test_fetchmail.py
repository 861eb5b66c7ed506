"""fetchmail (a POP3 client we did not write) over POP3S against mh-serve: keep mode with
UIDL tracking (a second run fetches nothing new, a later message alone), no-keep mode
(the messages leave the Maildir, the quota returns to zero), and the whole story of a
new domain: mh-user creates it, smtplib sends over submission with STARTTLS and AUTH,
fetchmail collects and deletes, mh-quota shows zero. Each message fetchmail hands to
its MDA is stored byte-exact (the whole Maildir file appears in what it delivers)."""

import os
import shutil
import subprocess
import unittest

import mhtest
from mhtest_mail import PASSWORD, UNTRUSTED, MailTestCase

FETCHMAIL = shutil.which("fetchmail")


def msg(subject, body="hello\r\n", sender="sender@remote.test"):
    return f"From: {sender}\r\nSubject: {subject}\r\n\r\n{body}".encode()


def without_fetchmail_trace(message):
    """The message without the one Received header fetchmail adds (it puts it after
    Return-Path), continuation lines included."""
    lines = message.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(b"Received: from 127.0.0.1 "):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b"\t", b" "):
                j += 1
            if b"(fetchmail-" in b"\n".join(lines[i:j]):
                return b"\n".join(lines[:i] + lines[j:])
    raise AssertionError(f"no fetchmail Received header in {message[:300]!r}")


@unittest.skipIf(FETCHMAIL is None, "fetchmail is not installed")
class Fetchmail(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server()
        self.home = os.path.join(self.tmp, "home")
        self.out = os.path.join(self.tmp, "fetched")
        os.mkdir(self.home)
        os.mkdir(self.out)
        self.mda = os.path.join(self.home, "mda.sh")
        with open(self.mda, "w") as f:
            # One file per message, in the order fetched.
            f.write(f'#!/bin/sh\nexec cat > "$(mktemp {self.out}/msg.$(date +%s%N).XXXXXX)"\n')
        os.chmod(self.mda, 0o755)
        self.idfile = os.path.join(self.home, "ids")

    def fetch(self, *args, user="alice@example.org", password=PASSWORD, expect=0):
        """Runs fetchmail once over POP3S; returns the new files' contents, oldest first."""
        rc = os.path.join(self.home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write("set no syslog\nset no bouncemail\n"
                    f"poll 127.0.0.1 service {self.ports['pop3s']} protocol pop3 timeout 30\n"
                    f'  user "{user}" password "{password}"\n'
                    "  ssl no sslcertck\n"
                    f'  no rewrite mda "{self.mda}"\n')
        os.chmod(rc, 0o600)
        before = set(os.listdir(self.out))
        env = dict(os.environ, HOME=self.home, FETCHMAILHOME=self.home)
        r = subprocess.run([FETCHMAIL, "-f", rc, "-v", "--nosyslog", "--idfile", self.idfile, *args],
                           capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, expect, (r.stdout + r.stderr).decode("latin-1"))
        new = sorted(set(os.listdir(self.out)) - before)
        out = []
        for name in new:
            with open(os.path.join(self.out, name), "rb") as f:
                out.append(f.read())
        return out

    def assertDelivered(self, fetched, stored):
        """Every stored message is, byte for byte, what fetchmail handed its MDA once its
        own trace header ("Received: ... with POP3 (fetchmail-...)") is taken out."""
        self.assertEqual(sorted(without_fetchmail_trace(f) for f in fetched), sorted(stored))

    def stored(self, address="alice@example.org"):
        files = self.maildir_files(address)
        return [files[n][1] for n in sorted(files)]

    def test_keep_with_uidl_tracking(self):
        self.send_mail("alice@example.org", msg("one", ".dotted\r\nline\r\n"))
        self.send_mail("alice@example.org", msg("two"))
        stored = self.stored()
        got = self.fetch("-k", "--uidl")
        self.assertDelivered(got, stored)
        self.assertEqual(self.stored(), stored)  # kept
        with open(self.idfile) as f:
            ids = f.read()
        for name in self.maildir_files("alice@example.org"):
            self.assertIn(name.split(",")[0], ids)
        # Nothing new: fetchmail's "no mail" (1), nothing delivered.
        self.assertEqual(self.fetch("-k", "--uidl", expect=1), [])
        # A new message is the only one fetched; the old ones still kept.
        [new_name] = self.send_mail("alice@example.org", msg("three"))
        got = self.fetch("-k", "--uidl")
        self.assertDelivered(got, [self.maildir_files("alice@example.org")[new_name][1]])
        self.assertEqual(len(self.maildir_files("alice@example.org")), 3)
        self.assertEqual(self.log().count("pop3: logout client=127.0.0.1 user=alice@example.org"), 3)
        self.assertNotIn("deleted=1", self.log())

    def test_no_keep_removes_the_messages(self):
        for i in range(3):
            self.send_mail("alice@example.org", msg(f"m{i}", f"body {i}\r\n.\r\n..\r\n"))
        stored = self.stored()
        got = self.fetch("--nokeep")
        self.assertDelivered(got, stored)
        self.assertEqual(self.maildir_files("alice@example.org"), {})
        q = self.quota("alice@example.org")
        self.assertEqual((q["usage_bytes"], q["usage_messages"]), (0, 0))
        self.assertEqual(self.fetch("--nokeep", expect=1), [])
        self.assertIn("deleted=3", self.log())

    def test_end_to_end(self):
        # A new domain and two accounts, made with mh-user.
        self.assertExit(self.user("domain", "add", "story.test"), 0)
        self.assertExit(self.user("add", "carol@story.test", "--password-stdin", stdin="carol-pw\n"), 0)
        self.assertExit(self.user("add", "dave@story.test", "--password-stdin", stdin="dave-pw\n"), 0)
        # dave sends from an untrusted address over submission: STARTTLS, then AUTH.
        s = self.smtplib_client("submission", source=UNTRUSTED)
        self.assertEqual(s.login("dave@story.test", "dave-pw")[0], 235)
        body = msg("hello carol", "Lunch at noon?\r\n.\r\n-- dave\r\n", sender="dave@story.test")
        self.assertEqual(s.sendmail("dave@story.test", ["carol@story.test"], body), {})
        s.quit()
        stored = self.stored("carol@story.test")
        self.assertEqual(len(stored), 1)
        self.assertTrue(stored[0].endswith(body.replace(b"\r\n", b"\n")))
        self.assertGreater(self.quota("story.test")["usage_bytes"], 0)
        # carol fetches over POP3S and deletes.
        got = self.fetch("--nokeep", user="carol@story.test", password="carol-pw")
        self.assertDelivered(got, stored)
        self.assertEqual(self.maildir_files("carol@story.test"), {})
        q = self.quota("story.test")
        self.assertEqual((q["usage_bytes"], q["usage_messages"]), (0, 0))
        r = self.recalc("story.test")
        self.assertEqual((r["usage_bytes"], r["usage_messages"]), (0, 0))


if __name__ == "__main__":
    mhtest.main()
