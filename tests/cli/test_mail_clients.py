"""Real clients we did not write against mh-serve: curl (POP3S list and retrieve, POP3
with STLS, SMTP with STARTTLS + AUTH, SMTPS), openssl s_client (-starttls smtp and
pop3, then a whole dialogue over TLS) and swaks (submission with STARTTLS and AUTH
PLAIN, SMTPS with AUTH LOGIN, and the refusals). A test whose client is missing is
skipped, never passed."""

import os
import shutil
import subprocess
import unittest

import mhtest
from mhtest_mail import HOST, PASSWORD, MailTestCase

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")
SWAKS = shutil.which("swaks")


def msg(subject, body="hello\r\n"):
    return f"From: sender@remote.test\r\nSubject: {subject}\r\n\r\n{body}".encode()


class ClientCase(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server()

    def run_client(self, *cmd, stdin=b"", timeout=60):
        r = subprocess.run(list(cmd), input=stdin, capture_output=True, timeout=timeout)
        return r.returncode, r.stdout.decode("latin-1"), r.stderr.decode("latin-1")

    def wire(self, address, name):
        _, data = self.maildir_files(address)[name]
        return data.replace(b"\n", b"\r\n")


@unittest.skipIf(CURL is None, "curl is not installed")
class Curl(ClientCase):
    def curl(self, *args):
        r = subprocess.run([CURL, "-sS", "--max-time", "30", *args], capture_output=True, timeout=60)
        return r.returncode, r.stdout, r.stderr.decode("latin-1")

    def test_pop3s_list_and_retrieve(self):
        [n1] = self.send_mail("alice@example.org", msg("first", ".dot line\r\nsecond\r\n"))
        [n2] = self.send_mail("alice@example.org", msg("second"))
        w1, w2 = self.wire("alice@example.org", n1), self.wire("alice@example.org", n2)
        base = f"pop3s://127.0.0.1:{self.ports['pop3s']}/"
        user = f"alice@example.org:{PASSWORD}"
        code, out, err = self.curl("-k", "--user", user, base)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, f"1 {len(w1)}\r\n2 {len(w2)}\r\n".encode())
        code, out, err = self.curl("-k", "--user", user, base + "1")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, w1)
        # POP3 with STLS (curl logs in with AUTH PLAIN once TLS is up).
        code, out, err = self.curl("-k", "--ssl-reqd", "--user", user, f"pop3://127.0.0.1:{self.ports['pop3']}/2")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, w2)
        # A wrong password: curl's "login denied", nothing shown.
        code, out, err = self.curl("-k", "--user", "alice@example.org:wrong", base)
        self.assertEqual(code, 67, err)
        self.assertEqual(out, b"")
        self.assertEqual(len(self.maildir_files("alice@example.org")), 2)
        self.assertIn("pop3: login client=127.0.0.1 user=alice@example.org method=PLAIN", self.log())

    def test_smtp_starttls_auth_and_smtps(self):
        path = os.path.join(self.tmp, "mail.eml")
        body = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: curl\r\n\r\n.starts with a dot\r\nbye\r\n"
        with open(path, "wb") as f:
            f.write(body)
        user = f"alice@example.org:{PASSWORD}"
        for url in (f"smtp://127.0.0.1:{self.ports['smtp']}", f"smtp://127.0.0.1:{self.ports['submission']}",
                    f"smtps://127.0.0.1:{self.ports['smtps']}"):
            with self.subTest(url=url):
                code, out, err = self.curl(url, "--ssl-reqd", "-k", "--mail-from", "alice@example.org", "--mail-rcpt",
                                           "bob@example.org", "--mail-rcpt", "someone@remote.test", "-T", path,
                                           "--user", user, "--interface", "127.0.0.2")
                self.assertEqual(code, 0, err)
        msgs = self.messages("bob@example.org")
        self.assertEqual(len(msgs), 3)
        for m in msgs:
            self.assertIn(b"with ESMTPSA id", m)
            self.assertTrue(m.endswith(body.replace(b"\r\n", b"\n")), m)
        queued = self.queue_entries()
        self.assertEqual(len(queued), 3)
        for e in queued.values():
            self.assertEqual((e["env"]["sender"], e["env"]["recipient"], e["env"]["auth"]),
                             ("alice@example.org", ["someone@remote.test"], "alice@example.org"))
        # Submission without AUTH: refused at MAIL with curl's "send failed".
        code, out, err = self.curl(f"smtp://127.0.0.1:{self.ports['submission']}", "--ssl-reqd", "-k", "--mail-from",
                                   "alice@example.org", "--mail-rcpt", "bob@example.org", "-T", path, "-v")
        self.assertNotEqual(code, 0)
        self.assertIn("< 530 5.7.0 Authentication required", err)
        self.assertEqual(len(self.messages("bob@example.org")), 3)


@unittest.skipIf(OPENSSL is None, "openssl is not installed")
class OpensslStarttls(ClientCase):
    def s_client(self, port, proto, script):
        return self.run_client(OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", proto, "-crlf",
                               "-quiet", "-ign_eof", stdin=script.encode())

    def test_starttls_smtp_then_a_transaction(self):
        # DATA ends a pipelined group (RFC 2920): the text goes once 354 is read.
        code, out, err = mhtest.converse(
            [OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.ports['smtp']}", "-starttls", "smtp", "-crlf",
             "-quiet", "-ign_eof"],
            [(None, b"EHLO client.test\nMAIL FROM:<s@remote.test>\nRCPT TO:<alice@example.org>\nDATA\n"),
             (b"354 ", b"Subject: s_client\n\nover TLS\n.\nQUIT\n")])
        self.assertEqual(code, 0, err)
        lines = out.replace("\r\n", "\n").splitlines()
        self.assertEqual(lines[:6], [f"250-{HOST}", "250-PIPELINING", "250-SIZE 31457280", "250-8BITMIME",
                                     "250-AUTH PLAIN LOGIN", "250 ENHANCEDSTATUSCODES"])
        self.assertEqual(lines[6:9], ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"])
        self.assertRegex(lines[9], r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$")
        self.assertEqual(lines[10:], ["221 2.0.0 Bye"])
        [m] = self.messages("alice@example.org")
        self.assertIn(b"with ESMTPS id", m)
        self.assertTrue(m.endswith(b"Subject: s_client\n\nover TLS\n"))

    def test_starttls_pop3_then_a_session(self):
        [name] = self.send_mail("alice@example.org", msg("for s_client"))
        wire = self.wire("alice@example.org", name)
        code, out, err = self.s_client(self.ports["pop3"], "pop3",
                                       f"USER alice@example.org\nPASS {PASSWORD}\nSTAT\nRETR 1\nQUIT\n")
        self.assertEqual(code, 0, err)
        self.assertEqual(out.encode("latin-1"), b"+OK\r\n+OK Logged in.\r\n" + f"+OK 1 {len(wire)}\r\n".encode() +
                         f"+OK {len(wire)} octets\r\n".encode() + wire + b".\r\n+OK Logging out.\r\n")


@unittest.skipIf(SWAKS is None, "swaks is not installed")
class Swaks(ClientCase):
    def swaks(self, *args):
        return self.run_client(SWAKS, "--helo", "client.test", "--timeout", "30", *args)

    def test_submission_starttls_auth_plain_and_smtps_auth_login(self):
        code, out, err = self.swaks("--server", f"127.0.0.1:{self.ports['submission']}", "--tls", "--auth", "PLAIN",
                                    "--auth-user", "alice@example.org", "--auth-password", PASSWORD,
                                    "--to", "bob@example.org", "--from", "alice@example.org",
                                    "--header", "Subject: swaks plain", "--local-interface", "127.0.0.2")
        self.assertEqual(code, 0, out + err)
        self.assertIn("<-  220 2.0.0 Ready to start TLS", out)
        self.assertIn("<~  235 2.7.0 Authentication successful", out)
        self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued as [0-9A-Za-z]+")
        code, out, err = self.swaks("--server", f"127.0.0.1:{self.ports['smtps']}", "--tls-on-connect", "--auth",
                                    "LOGIN", "--auth-user", "alice@example.org", "--auth-password", PASSWORD,
                                    "--to", "bob@example.org", "--from", "Alice@Example.org",
                                    "--header", "Subject: swaks login", "--local-interface", "127.0.0.2")
        self.assertEqual(code, 0, out + err)
        self.assertIn("<~  334 VXNlcm5hbWU6", out)
        self.assertIn("<~  334 UGFzc3dvcmQ6", out)
        self.assertIn("<~  235 2.7.0 Authentication successful", out)
        msgs = self.messages("bob@example.org")
        self.assertEqual(sorted(m.split(b"Subject: ")[1].split(b"\n")[0] for m in msgs),
                         [b"swaks login", b"swaks plain"])
        for m in msgs:
            self.assertIn(b"with ESMTPSA id", m)

    def test_refusals(self):
        # Another domain's sender.
        code, out, err = self.swaks("--server", f"127.0.0.1:{self.ports['submission']}", "--tls", "--auth", "PLAIN",
                                    "--auth-user", "alice@example.org", "--auth-password", PASSWORD,
                                    "--to", "bob@example.org", "--from", "mallory@remote.test")
        self.assertNotEqual(code, 0)
        self.assertIn("<~* 553 5.7.1 <mallory@remote.test>: Sender address rejected: not owned by user "
                      "alice@example.org", out)
        # No AUTH on submission.
        code, out, err = self.swaks("--server", f"127.0.0.1:{self.ports['submission']}", "--tls",
                                    "--to", "bob@example.org", "--from", "alice@example.org")
        self.assertNotEqual(code, 0)
        self.assertIn("<~* 530 5.7.0 Authentication required", out)
        # From an untrusted address without TLS, AUTH is not even offered.
        code, out, err = self.swaks("--server", f"127.0.0.1:{self.ports['submission']}", "--auth", "PLAIN",
                                    "--auth-user", "alice@example.org", "--auth-password", PASSWORD,
                                    "--to", "bob@example.org", "--from", "alice@example.org",
                                    "--local-interface", "127.0.0.2")
        self.assertNotEqual(code, 0)
        self.assertIn("Host did not advertise authentication", out + err)
        self.assertEqual(self.messages("bob@example.org"), [])
        self.assertEqual(self.queue_entries(), {})


if __name__ == "__main__":
    mhtest.main()
