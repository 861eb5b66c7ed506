"""mh-serve's TLS (SPEC §8): SMTPS and POP3S from the first byte, STARTTLS on SMTP and
submission, STLS on POP3; TLS 1.2 and 1.3 only (a TLS 1.1 client is refused by the
server, checked with openssl s_client); the self-signed pair made in SPOOL/tls/ on first
start; SIGHUP reloading the certificate without dropping sessions; and plaintext
pipelined behind STARTTLS/STLS discarded (CVE-2011-0411)."""

import base64
import os
import shutil
import ssl
import stat
import subprocess
import time
import unittest
import warnings

import mhtest
from mhtest_mail import (CAPA_BASE, HOST, PASSWORD, PLAINTEXT_REFUSED, QUEUED, UNTRUSTED, MailClient, MailTestCase,
                         client_tls_context)

OPENSSL = shutil.which("openssl")

EHLO_PLAIN_UNTRUSTED = f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-STARTTLS\n250 ENHANCEDSTATUSCODES"
EHLO_PLAIN_LOCAL = (f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-STARTTLS\n"
                    "250-AUTH PLAIN LOGIN\n250 ENHANCEDSTATUSCODES")
EHLO_TLS = f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-AUTH PLAIN LOGIN\n250 ENHANCEDSTATUSCODES"


def pem_subject(pem_or_der):
    """`openssl x509 -noout -subject -ext subjectAltName` of a certificate (PEM or DER)."""
    if isinstance(pem_or_der, bytes) and not pem_or_der.startswith(b"-----"):
        pem_or_der = ssl.DER_cert_to_PEM_cert(pem_or_der).encode()
    if isinstance(pem_or_der, str):
        pem_or_der = pem_or_der.encode()
    r = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"], input=pem_or_der,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r
    return r.stdout.decode()


@unittest.skipIf(OPENSSL is None, "openssl is not installed")
class TlsService(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server()

    def peer_subject(self, c):
        return pem_subject(c.sock.getpeercert(binary_form=True))

    def test_self_signed_pair_made_on_first_start(self):
        cert, key = self.path("tls", "cert.pem"), self.path("tls", "key.pem")
        self.assertTrue(os.path.isfile(cert) and os.path.isfile(key), os.listdir(self.spool))
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(os.stat(key).st_uid, os.stat(self.spool).st_uid)
        with open(cert, "rb") as f:
            cert_pem = f.read()
        info = pem_subject(cert_pem)
        self.assertRegex(info, r"(?m)^subject=CN ?= ?mx\.test$")
        self.assertRegex(info, r"(?m)^\s+DNS:mx\.test$")
        self.assertIn(f"tls: made a self-signed certificate for {HOST} in {cert}", self.log())
        # The certificate served is the one in the file, on every TLS service.
        der = ssl.PEM_cert_to_DER_cert(cert_pem.decode())
        for service in ("smtps", "pop3s"):
            c = self.raw(service)
            self.assertEqual(c.sock.getpeercert(binary_form=True), der, service)
        # Made on first start only: a restart uses the pair it finds.
        with open(key, "rb") as f:
            key_pem = f.read()
        self.restart_server()
        with open(cert, "rb") as f, open(key, "rb") as g:
            self.assertEqual((f.read(), g.read()), (cert_pem, key_pem))
        self.assertNotIn("made a self-signed certificate", self.log())

    def test_smtps_implicit_tls(self):
        # SMTPS is submission over implicit TLS (RFC 8314): AUTH first, then mail.
        c = self.raw("smtps", source=UNTRUSTED)
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_TLS)
        self.assertEqual(c.cmd("MAIL FROM:<someone@remote.test>"), "530 5.7.0 Authentication required")
        self.assertEqual(c.cmd("AUTH PLAIN " + base64.b64encode(b"\0bob@example.org\0" + PASSWORD.encode()).decode()),
                         "235 2.7.0 Authentication successful")
        self.assertEqual(c.cmd("MAIL FROM:<bob@example.org>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(c.cmd("Subject: over smtps\r\n\r\nhello\r\n."), QUEUED)
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        [msg] = self.messages("alice@example.org")
        self.assertIn(b"with ESMTPSA id", msg)
        self.assertTrue(msg.endswith(b"Subject: over smtps\n\nhello\n"), msg)

    def test_starttls_on_smtps_says_tls_is_already_active(self):
        # As after STARTTLS on port 25/587, and as POP3S answers STLS ("-ERR TLS is
        # already active."): the command exists, TLS is simply on already.
        c = self.raw("smtps")
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_TLS)
        self.assertEqual(c.cmd("STARTTLS"), "503 5.5.1 Error: TLS already active")
        self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")

    def test_pop3s_implicit_tls(self):
        c = self.raw("pop3s", source=UNTRUSTED)
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(c.pop_multi("CAPA"), ("+OK", CAPA_BASE + ["USER", "SASL PLAIN"]))
        self.assertEqual(c.pop("STLS"), "-ERR TLS is already active.")
        self.pop_login(c)
        self.assertEqual(c.pop_multi("CAPA"), ("+OK", CAPA_BASE))
        self.assertEqual(c.pop("STAT"), "+OK 0 0")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        self.assertTrue(c.at_eof())

    def test_starttls_on_smtp_and_submission(self):
        for service in ("smtp", "submission"):
            with self.subTest(service=service):
                c = self.raw(service, source=UNTRUSTED)
                self.assertEqual(c.cmd("STARTTLS"), "503 5.5.1 Error: send HELO/EHLO first")
                self.assertEqual(c.cmd("EHLO client.test"), EHLO_PLAIN_UNTRUSTED)
                self.assertEqual(c.cmd("STARTTLS now"), "501 5.5.4 Syntax: STARTTLS")
                self.assertEqual(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS")
                c.start_tls()
                self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
                # RFC 3207 §4.2: the session starts over; EHLO is needed again.
                self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "503 5.5.1 Error: send HELO/EHLO first")
                self.assertEqual(c.cmd("EHLO client.test"), EHLO_TLS)
                self.assertEqual(c.cmd("STARTTLS"), "503 5.5.1 Error: TLS already active")
                self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        # From 127.0.0.1 (auth.allow_plaintext) AUTH is offered before TLS as well.
        c = self.raw("smtp")
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_PLAIN_LOCAL)
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("STARTTLS"), "503 5.5.1 Error: MAIL transaction in progress")
        self.assertEqual(c.cmd("RSET"), "250 2.0.0 Ok")
        self.assertEqual(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS")
        c.start_tls()
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_TLS)
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(c.cmd("Subject: after starttls\r\n\r\nhi\r\n."), QUEUED)
        [msg] = self.messages("bob@example.org")
        self.assertIn(b"with ESMTPS id", msg)

    def test_stls_on_pop3(self):
        c = self.raw("pop3", source=UNTRUSTED)
        self.assertEqual(c.pop_multi("CAPA"), ("+OK", CAPA_BASE + ["STLS"]))
        self.assertEqual(c.pop("USER alice@example.org"), PLAINTEXT_REFUSED)
        self.assertEqual(c.pop("STLS extra"), "-ERR Syntax: STLS")
        self.pop_stls(c)
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(c.pop_multi("CAPA"), ("+OK", CAPA_BASE + ["USER", "SASL PLAIN"]))
        self.assertEqual(c.pop("STLS"), "-ERR TLS is already active.")
        self.pop_login(c)
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        # From 127.0.0.1 plaintext logins are allowed and STLS is still offered.
        c = self.raw("pop3")
        self.assertEqual(c.pop_multi("CAPA"), ("+OK", CAPA_BASE + ["STLS", "USER", "SASL PLAIN"]))

    # --- versions, checked with a client that is not ours ----------------------------

    def s_client(self, port, *args, stdin=b"", wait_for=None):
        """With `wait_for`, the script goes only once that reply was read (an SMTPS client
        talking before the greeting is a synchronization error, SPEC §8)."""
        argv = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOST, *args]
        code, out, err = mhtest.converse(argv, [(wait_for, stdin)], timeout=30)
        return code, out + err

    def test_tls_1_0_and_1_1_refused_by_the_server_1_2_and_1_3_accepted(self):
        cases = [("smtps", []), ("pop3s", []), ("submission", ["-starttls", "smtp"]), ("smtp", ["-starttls", "smtp"]),
                 ("pop3", ["-starttls", "pop3"])]
        for service, extra in cases:
            with self.subTest(service=service, version="1.1"):
                failures_before = self.log().count("TLS handshake failed")
                code, out = self.s_client(self.ports[service], *extra, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
                self.assertNotEqual(code, 0, out)
                # The refusal is the server's: it answered the ClientHello with a
                # protocol_version alert (70); a client-side refusal would send nothing.
                self.assertIn("alert protocol version", out)
                self.assertIn("SSL alert number 70", out)
                deadline = time.time() + 5
                while self.log().count("TLS handshake failed") == failures_before and time.time() < deadline:
                    time.sleep(0.02)
                self.assertEqual(self.log().count("TLS handshake failed"), failures_before + 1, self.log())
            for version in ("1_2", "1_3"):
                with self.subTest(service=service, version=version):
                    smtp = not service.startswith("pop3")
                    script = b"EHLO client.test\nQUIT\n" if smtp else b"CAPA\nQUIT\n"
                    greeting = b"220 " if service == "smtps" else None
                    code, out = self.s_client(self.ports[service], *extra, "-tls" + version, "-brief", "-crlf",
                                              "-ign_eof", stdin=script, wait_for=greeting)
                    self.assertEqual(code, 0, out)
                    self.assertIn("Protocol version: TLSv" + version.replace("_", "."), out)
                    text = out.replace("\r\n", "\n")
                    if smtp:
                        self.assertIn(EHLO_TLS + "\n221 2.0.0 Bye\n", text)
                    else:
                        self.assertIn("+OK\nCAPA\nTOP\nUIDL\n", text)
                        self.assertIn("+OK Logging out.\n", text)
        # TLS 1.0 as well, on the implicit-TLS ports.
        for service in ("smtps", "pop3s"):
            with self.subTest(service=service, version="1.0"):
                code, out = self.s_client(self.ports[service], "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
                self.assertNotEqual(code, 0, out)
                self.assertIn("SSL alert number 70", out)
        # Python's client agrees: capped at TLS 1.1 it cannot connect.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = client_tls_context(maximum=ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        c = MailClient(self.ports["pop3s"])
        self.clients.append(c)
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            c.start_tls(ctx)

    # --- SIGHUP ----------------------------------------------------------------------

    def new_pair(self, cn):
        d = os.path.join(self.tmp, "newcert-" + cn)
        os.mkdir(d)
        r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-subj", "/CN=" + cn, "-days", "1", "-keyout", os.path.join(d, "key.pem"), "-out",
                            os.path.join(d, "cert.pem")], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r)
        return os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")

    def install_pair(self, cert, key):
        os.chmod(key, 0o600)
        os.replace(key, self.path("tls", "key.pem"))
        os.replace(cert, self.path("tls", "cert.pem"))

    def test_sighup_reloads_certificate_without_dropping_sessions(self):
        self.send_mail("alice@example.org", b"Subject: one\r\n\r\nbody\r\n")
        old = self.raw("pop3s")
        self.assertRegex(self.peer_subject(old), r"(?m)^subject=CN ?= ?mx\.test$")
        self.pop_login(old)
        smtps_old = self.raw("smtps")
        self.assertEqual(smtps_old.cmd("EHLO client.test"), EHLO_TLS)

        self.install_pair(*self.new_pair("new.test"))
        self.hup()
        self.wait_for_log("SIGHUP: TLS certificate reloaded from " + self.path("tls", "cert.pem"))
        # The open sessions go on with the context they have.
        self.assertEqual(old.pop("NOOP"), "+OK")
        self.assertRegex(old.pop("STAT"), r"^\+OK 1 \d+$")
        self.assertEqual(smtps_old.cmd("NOOP"), "250 2.0.0 Ok")
        # New connections see the new certificate, implicit TLS and STARTTLS/STLS alike.
        for service in ("pop3s", "smtps"):
            self.assertRegex(self.peer_subject(self.raw(service)), r"(?m)^subject=CN ?= ?new\.test$", service)
        c = self.raw("submission")
        self.smtp_starttls(c)
        self.assertRegex(self.peer_subject(c), r"(?m)^subject=CN ?= ?new\.test$")
        c = self.raw("pop3")
        self.pop_stls(c)
        self.assertRegex(self.peer_subject(c), r"(?m)^subject=CN ?= ?new\.test$")
        self.assertEqual(old.pop("QUIT"), "+OK Logging out.")

        # A broken pair is not loaded: the server says so and keeps serving the last good one.
        with open(self.path("tls", "cert.pem"), "w") as f:
            f.write("not a certificate\n")
        self.hup()
        self.wait_for_log("SIGHUP: TLS certificate NOT reloaded, keeping the old one")
        self.assertRegex(self.peer_subject(self.raw("pop3s")), r"(?m)^subject=CN ?= ?new\.test$")
        self.assertIsNone(self.proc.poll())

    # --- CVE-2011-0411: nothing sent in the clear before the handshake counts ------

    def test_smtp_plaintext_pipelined_after_starttls_is_discarded(self):
        for service in ("smtp", "submission"):
            with self.subTest(service=service):
                c = self.raw(service, source=UNTRUSTED)
                self.assertEqual(c.cmd("EHLO client.test"), EHLO_PLAIN_UNTRUSTED)
                c.send("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@remote.test>\r\n")
                self.assertEqual(c.reply(), "220 2.0.0 Ready to start TLS")
                self.assertEqual(c.pending_plaintext(), b"")
                c.start_tls()
                # The first reply over TLS answers the first command sent over TLS.
                self.assertEqual(c.cmd("EHLO client.test"), EHLO_TLS)
                self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
                # No MAIL was injected: a RCPT now has no transaction to join.
                self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "503 5.5.1 Error: need MAIL command")
                self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")

    def test_pop3_plaintext_pipelined_after_stls_is_discarded(self):
        c = self.raw("pop3", source=UNTRUSTED)
        c.send("STLS\r\nCAPA\r\n")
        self.assertEqual(c.line(), "+OK Begin TLS negotiation now.")
        self.assertEqual(c.pending_plaintext(), b"")
        c.start_tls()
        self.assertEqual(c.pop("STAT"), "-ERR Not logged in.")
        self.assertEqual(c.pop("NOOP"), "+OK")
        # A USER sent in the clear behind STLS is forgotten too: PASS has no user name.
        c = self.raw("pop3", source=UNTRUSTED)
        c.send("STLS\r\nUSER alice@example.org\r\n")
        self.assertEqual(c.line(), "+OK Begin TLS negotiation now.")
        c.start_tls()
        self.assertEqual(c.pop("PASS " + PASSWORD), "-ERR No username given.")
        self.pop_login(c)
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")


if __name__ == "__main__":
    mhtest.main()
