"""SMTP AUTH PLAIN and LOGIN (RFC 4954) with Python's smtplib and a raw client: offered
and accepted only under TLS or from auth.allow_plaintext networks; the login is the
full address; wrong passwords and unknown users get the same reply; suspended accounts
and suspended sending refused with their own replies. The submission listener requires
AUTH, delivers local recipients at once, queues the rest durably in SPOOL/queue/, holds
the sender to the account's domain, and keeps the 100-recipient limit."""

import os
import smtplib

import mhtest
from mhtest_mail import (AUTH_BAD, AUTH_OK, DATA_GO, HOST, PASSWORD, QUEUED, UNTRUSTED, MailTestCase, b64,
                         plain)

ENCRYPTION_REQUIRED = "538 5.7.11 Encryption required for requested authentication mechanism"
EHLO_NO_AUTH = f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-STARTTLS\n250 ENHANCEDSTATUSCODES"
EHLO_AUTH = (f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-STARTTLS\n"
             "250-AUTH PLAIN LOGIN\n250 ENHANCEDSTATUSCODES")
EHLO_TLS = f"250-{HOST}\n250-PIPELINING\n250-SIZE 31457280\n250-8BITMIME\n250-AUTH PLAIN LOGIN\n250 ENHANCEDSTATUSCODES"


def message(subject, body="hello\r\n"):
    return f"Subject: {subject}\r\n\r\n{body}".encode()


class AuthCase(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server(self.CONFIG)

    CONFIG = ""

    def auth_session(self, service="smtp", source=None, tls=False):
        """A raw client after EHLO (and STARTTLS + EHLO when tls)."""
        c = self.raw(service, source=source)
        if tls and service != "smtps":
            self.smtp_starttls(c)
        else:
            c.cmd("EHLO client.test")
        return c

    def good_login(self, source=None):
        """A successful AUTH from `source`: also resets that client's failure count."""
        c = self.auth_session(source=source, tls=source not in (None, "127.0.0.1"))
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
        c.close()


class SmtpAuth(AuthCase):
    def test_smtplib_login_plain_and_login(self):
        s = self.smtplib_client("submission", source=UNTRUSTED)
        self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
        self.assertEqual(s.login("alice@example.org", PASSWORD), (235, b"2.7.0 Authentication successful"))
        self.assertEqual(s.docmd("AUTH PLAIN"), (503, b"5.5.1 Already authenticated"))
        self.assertEqual(s.sendmail("alice@example.org", ["bob@example.org"], message("via login()")), {})
        s.quit()
        # Each mechanism on its own, with and without an initial response.
        for mech, fn, initial in (("PLAIN", "auth_plain", True), ("PLAIN", "auth_plain", False),
                                  ("LOGIN", "auth_login", True), ("LOGIN", "auth_login", False)):
            with self.subTest(mechanism=mech, initial_response=initial):
                s = self.smtplib_client("submission", source=UNTRUSTED)
                s.user, s.password = "alice@example.org", PASSWORD
                self.assertEqual(s.auth(mech, getattr(s, fn), initial_response_ok=initial),
                                 (235, b"2.7.0 Authentication successful"))
                self.assertEqual(s.sendmail("alice@example.org", ["bob@example.org"], message(f"{mech} {initial}")), {})
                s.quit()
        msgs = self.messages("bob@example.org")
        self.assertEqual(len(msgs), 5)
        for m in msgs:
            self.assertIn(b"with ESMTPSA id", m)
        # SMTPS and the SMTP port take AUTH as well.
        for service in ("smtps", "smtp"):
            s = self.smtplib_client(service, source=UNTRUSTED)
            self.assertEqual(s.login("bob@example.org", PASSWORD), (235, b"2.7.0 Authentication successful"))
            s.quit()

    def test_raw_exchanges(self):
        c = self.auth_session("submission", source=UNTRUSTED, tls=True)
        self.assertEqual(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertEqual(c.cmd(b64("alice@example.org")), "334 UGFzc3dvcmQ6")
        self.assertEqual(c.cmd(b64(PASSWORD)), AUTH_OK)
        self.assertEqual(c.cmd("AUTH LOGIN"), "503 5.5.1 Already authenticated")
        c = self.auth_session("submission", source=UNTRUSTED, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN"), "334 ")
        self.assertEqual(c.cmd("*"), "501 5.0.0 Authentication cancelled")
        self.assertEqual(c.cmd("AUTH PLAIN"), "334 ")
        self.assertEqual(c.cmd("not base64!"), "501 5.5.2 Cannot decode response")
        self.assertEqual(c.cmd("AUTH CRAM-MD5"), "504 5.5.4 Unrecognized authentication type")
        self.assertEqual(c.cmd("AUTH"), "501 5.5.4 Syntax: AUTH mechanism [initial-response]")
        # Someone else's authorization identity is refused without a password check.
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD, authzid="bob@example.org")),
                         AUTH_BAD)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "530 5.7.0 Authentication required")
        self.assertEqual(c.cmd("AUTH PLAIN"), "334 ")
        self.assertEqual(c.cmd(plain("alice@example.org", PASSWORD)), AUTH_OK)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("AUTH PLAIN"), "503 5.5.1 Error: MAIL transaction in progress")

    def test_wrong_password_and_unknown_user_get_the_same_reply(self):
        logins = [("alice@example.org", "wrong-pw"), ("nobody@example.org", PASSWORD),
                  ("alice@nodomain.test", PASSWORD), ("alice", PASSWORD), ("ALICE@EXAMPLE.ORG", "Secret-pw")]
        for user, password in logins:
            with self.subTest(user=user, password=password):
                c = self.auth_session()
                self.assertEqual(c.cmd("AUTH PLAIN " + plain(user, password)), AUTH_BAD)
                self.assertEqual(c.cmd("NOOP"), "250 2.0.0 Ok")
                self.good_login()  # so no test waits for the throttle
        s = self.smtplib_client("submission")
        s.user, s.password = "nobody@example.org", PASSWORD
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            s.auth("PLAIN", s.auth_plain)
        self.assertEqual((e.exception.smtp_code, e.exception.smtp_error), (535, b"5.7.8 Authentication credentials invalid"))
        # The login is the full address, in any case; the domain may be written in capitals.
        c = self.auth_session()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("Alice@Example.ORG", PASSWORD)), AUTH_OK)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
        log = self.log()
        self.assertNotIn("wrong-pw", log)
        self.assertNotIn("Secret-pw", log)

    def test_offered_only_under_tls_or_from_allowed_networks(self):
        for service in ("smtp", "submission"):
            with self.subTest(service=service, client=UNTRUSTED, tls=False):
                c = self.raw(service, source=UNTRUSTED)
                self.assertEqual(c.cmd("EHLO client.test"), EHLO_NO_AUTH)
                self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), ENCRYPTION_REQUIRED)
                self.assertEqual(c.cmd("AUTH LOGIN"), ENCRYPTION_REQUIRED)
                s = self.smtplib_client(service, source=UNTRUSTED, starttls=False)
                with self.assertRaises(smtplib.SMTPNotSupportedError):
                    s.login("alice@example.org", PASSWORD)
            with self.subTest(service=service, client="127.0.0.1", tls=False):
                c = self.raw(service)
                self.assertEqual(c.cmd("EHLO client.test"), EHLO_AUTH)
                self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
            with self.subTest(service=service, client=UNTRUSTED, tls=True):
                c = self.raw(service, source=UNTRUSTED)
                self.assertEqual(self.smtp_starttls(c), EHLO_TLS)
                self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
        c = self.raw("smtps", source=UNTRUSTED)
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_TLS)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)

    def test_suspended_account_refused(self):
        self.assertExit(self.user("suspend", "alice@example.org"), 0)
        c = self.auth_session("submission", source=UNTRUSTED, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), "535 5.7.8 Account suspended")
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "530 5.7.0 Authentication required")
        s = self.smtplib_client("submission", source=UNTRUSTED)
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice@example.org", PASSWORD)
        self.assertEqual(e.exception.smtp_code, 535)
        # POP3 refuses the login as well.
        p = self.raw("pop3")
        self.assertEqual(p.pop("USER alice@example.org"), "+OK")
        self.assertEqual(p.pop("PASS " + PASSWORD), "-ERR [AUTH] Account is suspended.")
        self.assertExit(self.user("resume", "alice@example.org"), 0)
        c = self.auth_session("submission", source=UNTRUSTED, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)

    def test_sending_suspended_refused_at_mail(self):
        reason = "Sent 5000 messages in an hour"
        self.assertExit(self.user("suspend", "alice@example.org", "--sending", "--reason", reason), 0)
        refused = (f"550 5.7.1 Sending suspended for alice@example.org: {reason} "
                   "(ask your administrator: mh-user resume --sending)")
        c = self.auth_session("submission", source=UNTRUSTED, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), refused)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "503 5.5.1 Error: need MAIL command")
        s = self.smtplib_client("submission", source=UNTRUSTED)
        s.login("alice@example.org", PASSWORD)
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("alice@example.org", ["bob@example.org"], message("refused"))
        self.assertEqual((e.exception.smtp_code, e.exception.smtp_error), (550, refused[4:].encode()))
        # Receiving and POP3 go on.
        self.send_mail("alice@example.org", message("still delivered"))
        p = self.pop_session()
        self.assertRegex(p.pop("STAT"), r"^\+OK 1 \d+$")
        self.assertEqual(p.pop("QUIT"), "+OK Logging out.")
        # A session already logged in is held to it at its next MAIL; lifted, it sends.
        c = self.auth_session("submission", source=UNTRUSTED, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), refused)
        self.assertExit(self.user("resume", "alice@example.org", "--sending"), 0)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
        self.assertEqual(self.messages("bob@example.org"), [])


class AuthPlaintextFalse(AuthCase):
    CONFIG = "auth: { allow_plaintext: false }\n"

    def test_refused_even_from_localhost(self):
        for service in ("smtp", "submission"):
            c = self.raw(service)
            self.assertEqual(c.cmd("EHLO client.test"), EHLO_NO_AUTH)
            self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), ENCRYPTION_REQUIRED)
            self.assertEqual(self.smtp_starttls(c), EHLO_TLS)
            self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
        p = self.raw("pop3")
        self.assertEqual(p.pop("USER alice@example.org"),
                         "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
        self.assertEqual(p.pop("AUTH PLAIN " + plain("alice@example.org", PASSWORD)),
                         "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
        self.pop_stls(p)
        self.pop_login(p)


class AuthPlaintextTrue(AuthCase):
    CONFIG = "auth: { allow_plaintext: true }\n"

    def test_allowed_from_any_network(self):
        c = self.raw("submission", source=UNTRUSTED)
        self.assertEqual(c.cmd("EHLO client.test"), EHLO_AUTH)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), AUTH_OK)
        s = self.smtplib_client("smtp", source=UNTRUSTED, starttls=False)
        self.assertEqual(s.login("bob@example.org", PASSWORD), (235, b"2.7.0 Authentication successful"))
        p = self.raw("pop3", source=UNTRUSTED)
        self.pop_login(p)


class Submission(AuthCase):
    def authed(self, address="alice@example.org", source=UNTRUSTED):
        c = self.auth_session("submission", source=source, tls=True)
        self.assertEqual(c.cmd("AUTH PLAIN " + plain(address, PASSWORD)), AUTH_OK)
        return c

    def test_mail_before_auth(self):
        for source, tls in (("127.0.0.1", False), (UNTRUSTED, True)):
            with self.subTest(source=source, tls=tls):
                c = self.auth_session("submission", source=source, tls=tls)
                self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>"), "530 5.7.0 Authentication required")
                self.assertEqual(c.cmd("RCPT TO:<bob@example.org>"), "503 5.5.1 Error: need MAIL command")
                self.assertEqual(c.cmd("DATA"), "503 5.5.1 Error: need MAIL command")
        s = self.smtplib_client("submission", source=UNTRUSTED)
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("alice@example.org", ["bob@example.org"], message("no auth"))
        self.assertEqual((e.exception.smtp_code, e.exception.smtp_error), (530, b"5.7.0 Authentication required"))
        self.assertEqual(self.count_all_messages(), 0)
        self.assertEqual(self.queue_entries(), {})

    def test_local_delivered_at_once_remote_queued(self):
        s = self.smtplib_client("submission", source=UNTRUSTED)
        s.login("alice@example.org", PASSWORD)
        body = b"Subject: mixed\r\nTo: many\r\n\r\nline one\r\n.dot line\r\nlast\r\n"
        refused = s.sendmail("alice@example.org", ["bob@example.org", "Carol@Remote.TEST", "dave@elsewhere.test",
                                                   "carol@remote.test"], body)
        self.assertEqual(refused, {})
        s.quit()
        [local] = self.messages("bob@example.org")
        self.assertTrue(local.endswith(b"Subject: mixed\nTo: many\n\nline one\n.dot line\nlast\n"), local)
        self.assertIn(b"with ESMTPSA id", local)
        entries = self.queue_entries()
        self.assertEqual(len(entries), 1, entries)
        [(qid, entry)] = entries.items()
        env = entry["env"]
        self.assertEqual(env["format"], "1")
        self.assertEqual(env["id"], qid)
        self.assertEqual(env["sender"], "alice@example.org")
        self.assertEqual(env["auth"], "alice@example.org")
        self.assertEqual(env["attempts"], "0")
        # The domain is case-insensitive, the local part is the remote server's business.
        self.assertEqual(env["recipient"], ["Carol@remote.test", "dave@elsewhere.test", "carol@remote.test"])
        self.assertTrue(entry["msg"].endswith(b"Subject: mixed\nTo: many\n\nline one\n.dot line\nlast\n"))
        self.assertIn(b"with ESMTPSA id", entry["msg"])
        self.assertEqual(self.count_all_messages(), 1)
        tmp = self.path("queue", "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])

    def test_sender_must_be_the_account(self):
        c = self.authed()
        # SPEC §8: the envelope sender is the authenticated account, not just its domain.
        for sender in ("bob@remote.test", "alice@example.org.evil.test", "", "bob@example.org"):
            self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>"),
                             f"553 5.7.1 <{sender}>: Sender address rejected: not owned by user alice@example.org")
        self.assertEqual(c.cmd("MAIL FROM:<Alice@EXAMPLE.org>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA"), DATA_GO)
        self.assertRegex(c.cmd("Subject: own domain\r\n\r\nok\r\n."), QUEUED)
        s = self.smtplib_client("submission", source=UNTRUSTED)
        s.login("alice@example.org", PASSWORD)
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("alice@remote.test", ["bob@example.org"], message("forged"))
        self.assertEqual(e.exception.smtp_code, 553)
        self.assertEqual(len(self.messages("alice@example.org")), 1)
        self.assertEqual(self.messages("bob@example.org"), [])
        self.assertEqual(self.queue_entries(), {})

    def test_101st_recipient_refused_for_authenticated_mail(self):
        c = self.authed()
        rcpts = ["alice@example.org", "bob@example.org"] + [f"r{i}@remote.test" for i in range(98)]
        c.send("MAIL FROM:<alice@example.org>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
        self.assertEqual(c.reply(), "250 2.1.0 Ok")
        for r in rcpts:
            self.assertEqual(c.reply(), "250 2.1.5 Ok", r)
        self.assertEqual(c.cmd("RCPT TO:<r100@remote.test>"), "452 4.5.3 Too many recipients")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "452 4.5.3 Too many recipients")
        self.assertEqual(c.cmd("DATA"), DATA_GO)
        self.assertRegex(c.cmd("Subject: hundred\r\n\r\nhi\r\n."), QUEUED)
        self.assertEqual(len(self.messages("alice@example.org")), 1)
        self.assertEqual(len(self.messages("bob@example.org")), 1)
        [entry] = self.queue_entries().values()
        self.assertEqual(entry["env"]["recipient"], rcpts[2:])


if __name__ == "__main__":
    mhtest.main()
