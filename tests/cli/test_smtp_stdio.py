"""`mh-serve --stdio smtp`: whole dialogues on stdin/stdout (the inetd mode the fuzz
target and dialogue scripts use), and `mh-serve --check-config` on good and bad
mailhost.yaml files (exit 78 with file, line and key)."""

import os
import re
import subprocess

import mhtest

HOST = "mx.test"


class StdioSmtp(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("example.org")
        self.add_account("alice@example.org")
        # The client addresses used here are trusted: no reverse-DNS lookup (that is
        # test_smtp_fcrdns.py's subject), so nothing depends on the machine's resolver.
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'hostname: {HOST}\ntrusted_networks: ["127.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]\n')

    def dialogue(self, script, *args):
        """Sends the client lines of `script` ("c: ..."), compares the server's reply
        lines ("s: ...", regular expressions when they start with '~')."""
        lines = [l.strip() for l in script.strip().splitlines()]
        client = b"".join(l[3:].encode("latin-1") + b"\r\n" for l in lines if l.startswith("c:"))
        expected = [l[3:] for l in lines if l.startswith("s:")]
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "smtp", *args],
                              input=client, capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = proc.stdout.decode("latin-1").split("\r\n")
        self.assertEqual(got[-1], "")
        got = got[:-1]
        self.assertEqual(len(got), len(expected), "\n".join(got))
        for g, e in zip(got, expected):
            if e.startswith("~"):
                self.assertRegex(g, e[1:])
            else:
                self.assertEqual(g, e)
        return proc

    def test_delivery_dialogue(self):
        proc = self.dialogue("""
            s: 220 mx.test ESMTP mailhost
            c: EHLO stdio.test
            s: 250-mx.test
            s: 250-PIPELINING
            s: 250-SIZE 31457280
            s: 250-8BITMIME
            s: 250 ENHANCEDSTATUSCODES
            c: MAIL FROM:<sender@remote.test>
            s: 250 2.1.0 Ok
            c: RCPT TO:<alice@example.org>
            s: 250 2.1.5 Ok
            c: RCPT TO:<elsewhere@remote.test>
            s: 550 5.7.1 Relaying denied
            c: DATA
            s: 354 End data with <CR><LF>.<CR><LF>
            c: Subject: over stdio
            c:
            c: ..hello
            c: .
            s: ~^250 2\\.0\\.0 Ok: queued as [0-9A-Za-z]+$
            c: QUIT
            s: 221 2.0.0 Bye
        """, "--client-ip", "192.0.2.55")
        new = self.path("domains/example.org/accounts/alice/Maildir/new")
        [name] = os.listdir(new)
        with open(os.path.join(new, name), "rb") as f:
            msg = f.read()
        self.assertTrue(msg.startswith(b"Return-Path: <sender@remote.test>\n"
                                       b"Received: from stdio.test (unknown [192.0.2.55])\n"), msg)
        self.assertTrue(msg.endswith(b"Subject: over stdio\n\n.hello\n"), msg)
        self.assertIn(b"client=192.0.2.55 helo=\"stdio.test\"", proc.stderr)

    def test_ipv6_client_address_literal(self):
        self.dialogue("""
            s: 220 mx.test ESMTP mailhost
            c: HELO v6.test
            s: 250 mx.test
            c: MAIL FROM:<>
            s: 250 2.1.0 Ok
            c: RCPT TO:<alice@example.org>
            s: 250 2.1.5 Ok
            c: DATA
            s: 354 End data with <CR><LF>.<CR><LF>
            c: .
            s: ~^250 2\\.0\\.0 Ok: queued as
        """, "--client-ip", "2001:db8::5")
        new = self.path("domains/example.org/accounts/alice/Maildir/new")
        [name] = os.listdir(new)
        with open(os.path.join(new, name), "rb") as f:
            self.assertIn(b"Received: from v6.test (unknown [IPv6:2001:db8::5])\n\tby mx.test (mailhost) with SMTP",
                          f.read())

    def test_eof_in_data_delivers_nothing(self):
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "smtp"],
                              input=b"HELO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\npartial",
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(os.listdir(self.path("domains/example.org/accounts/alice/Maildir/new")), [])
        self.assertEqual(os.listdir(self.path("domains/example.org/accounts/alice/Maildir/tmp")), [])
        self.assertIn(b'result="aborted: lost connection in DATA"', proc.stderr)

    def test_garbage_input_is_answered_and_ends(self):
        junk = bytes(range(256)) * 40 + b"\r\n" + b"\x00\xff\r\n" * 20
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "smtp"],
                              input=junk, capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0)
        lines = proc.stdout.decode("latin-1").split("\r\n")
        self.assertEqual(lines[-2], "421 4.7.0 Too many errors")

    def test_client_ip_must_be_an_address(self):
        r = self.run_tool("mh-serve", "--stdio", "smtp", "--client-ip", "evil) by forged")
        self.assertExit(r, 64)
        self.assertEqual(r.err, "mh-serve: error: --client-ip evil) by forged: not an IPv4 or IPv6 address\n")

    def test_json_is_refused_with_stdio(self):
        # stdout is the session: a JSON document after QUIT would reach the client.
        r = self.run_tool("mh-serve", "--stdio", "smtp", "--json", stdin="QUIT\r\n")
        self.assertExit(r, 64)
        # Refused before any session starts: no greeting, only the JSON error document.
        self.assertEqual(r.json(), {"error": {"code": 64, "message": "--json cannot be used with --stdio"}})



class CheckConfig(mhtest.SpoolTestCase):
    def write(self, text):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(text)

    def check(self):
        return self.run_tool("mh-serve", "--check-config")

    def test_missing_file_means_defaults(self):
        r = self.check()
        self.assertExit(r, 0)
        # With no domain yet, only the bare postmaster's destination follows (SPEC §8).
        self.assertEqual(r.out, self.path("mailhost.yaml") + ": ok\n"
                         "postmaster: server mailbox SPOOL/postmaster/Maildir (default)\n")

    def test_good_file(self):
        self.write('hostname: mail.example.jp\nlisten:\n  smtp: ["127.0.0.1:2525", "[::1]:2525"]\n'
                   'limits: { message_size: 10M, recipients: 50 }\ntimeouts: { command: 30s, data: 2m }\n')
        r = self.run_tool("mh-serve", "--check-config", "--json")
        self.assertExit(r, 0)
        self.assertEqual(r.json()["smtp"], ["127.0.0.1:2525", "[::1]:2525"])
        self.assertEqual(r.json()["hostname"], "mail.example.jp")

    def test_unknown_key_names_file_line_and_key(self):
        self.write("hostname: mx.test\nlimits:\n  message_size: 10M\n  recipient: 5\n")
        r = self.check()
        self.assertExit(r, 78)
        self.assertEqual(r.err, f"mh-serve: error: {self.path('mailhost.yaml')}:4: key 'limits.recipient': unknown key\n")

    def test_malformed_yaml(self):
        self.write("listen: { smtp: [\n")
        r = self.check()
        self.assertExit(r, 78)
        self.assertRegex(r.err, r"^mh-serve: error: .*mailhost\.yaml:\d+: malformed YAML")

    def test_bad_listen_address(self):
        for bad in ("localhost:25", "127.0.0.1", "127.0.0.1:99999", "::1:25"):
            with self.subTest(bad=bad):
                self.write(f'hostname: mx.test\nlisten:\n  smtp: "{bad}"\n')
                r = self.check()
                self.assertExit(r, 78)
                self.assertEqual(r.err, f"mh-serve: error: {self.path('mailhost.yaml')}:3: key 'listen.smtp': "
                                        f"'{bad}' is not an address:port (e.g. 127.0.0.1:2525, [::1]:2525, *:25)\n")

    def test_listen_naming_no_service(self):
        self.write("hostname: mx.test\nlisten: {}\n")
        r = self.check()
        self.assertExit(r, 78)
        self.assertEqual(r.err, f"mh-serve: error: {self.path('mailhost.yaml')}:2: key 'listen': no service to serve "
                                "(name at least one of smtp, submission, smtps, pop3, pop3s)\n")

    def test_unusable_certificate_is_found_before_the_start(self):
        os.makedirs(self.path("tls"), exist_ok=True)
        with open(self.path("tls", "cert.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        with open(self.path("tls", "key.pem"), "w") as f:
            f.write("garbage\n")
        self.write('hostname: mx.test\nlisten: { pop3s: "127.0.0.1:2995" }\n')
        r = self.check()
        self.assertExit(r, 78)
        self.assertRegex(r.err, r"^mh-serve: error: .*/tls/cert\.pem: cannot use certificate \(tls\.cert\)")
        # A configured file that does not exist is an error too (no certificate is made).
        self.write('hostname: mx.test\nlisten: { pop3s: "127.0.0.1:2995" }\ntls: { cert: tls/mine.pem, key: tls/mine.key }\n')
        r = self.check()
        self.assertExit(r, 78)
        self.assertIn("mine.pem: cannot use certificate (tls.cert)", r.err)
        self.assertFalse(os.path.exists(self.path("tls", "mine.pem")))

    def test_bad_limits(self):
        self.write("hostname: mx.test\nlimits: { message_size: 0 }\n")
        r = self.check()
        self.assertExit(r, 78)
        self.assertEqual(r.err, f"mh-serve: error: {self.path('mailhost.yaml')}:2: key 'limits.message_size': "
                                "must be more than 0\n")


if __name__ == "__main__":
    mhtest.main()
