"""The submission From: policy (SPEC §8 submission.from_header; issue 13 item 4): after
AUTH, the message's From: header must name the account's domain (own-domain, the
default), the account itself (own-address) or anything (any); a message that breaks it
gets "550 5.7.1 From: header does not match the authenticated sender" and nothing is
delivered or queued. The envelope sender must be the account. smtplib over the
submission port (STARTTLS, AUTH PLAIN)."""

import smtplib

import mhtest
from mhtest_mail import PASSWORD, MailTestCase

REFUSED = (550, b"5.7.1 From: header does not match the authenticated sender")

OWN = b"From: alice@example.org\r\nSubject: own\r\n\r\nhi\r\n"
COLLEAGUE = b"From: Bob <bob@example.org>\r\nSubject: colleague\r\n\r\nhi\r\n"
FOREIGN = b"From: ceo@other.test\r\nSubject: foreign\r\n\r\nhi\r\n"
MISSING = b"Subject: no from\r\n\r\nhi\r\n"
ENCODED = (b"From: =?UTF-8?B?Q0VPIDxjZW9Ab3RoZXIudGVzdD4=?= (the boss)\r\n <Alice@Example.ORG>\r\n"
           b"Subject: encoded\r\n\r\nhi\r\n")
DISPLAY_LIES = b'From: "ceo@other.test" <alice@example.org>\r\nSubject: display\r\n\r\nhi\r\n'
FOLDED_SECOND = b"From: alice@example.org,\r\n\tceo@other.test\r\nSubject: two\r\n\r\nhi\r\n"


class FromPolicy(MailTestCase):
    FROM_HEADER = None  # the policy under test comes from each test's own config
    POLICY = None       # None: mailhost.yaml without submission: (the default)

    def setUp(self):
        super().setUp()
        config = f"submission: {{ from_header: {self.POLICY} }}\n" if self.POLICY else ""
        self.start_mail_server(config)

    def submit(self, message, rcpts=("bob@example.org", "carol@remote.test")):
        """Sends `message` as alice@example.org; None when accepted, else (code, text)."""
        s = self.smtplib_client("submission")
        s.login("alice@example.org", PASSWORD)
        try:
            s.sendmail("alice@example.org", list(rcpts), message)
        except smtplib.SMTPDataError as e:
            return (e.smtp_code, e.smtp_error)
        finally:
            s.close()
        return None

    def assert_outcomes(self, accepted, refused):
        for m in accepted:
            self.assertIsNone(self.submit(m), m)
        for m in refused:
            self.assertEqual(self.submit(m), REFUSED, m)
        self.assertEqual(len(self.messages("bob@example.org")), len(accepted))
        self.assertEqual(len(self.queue_entries()), len(accepted))  # carol@remote.test's copies
        delivered = b"".join(self.messages("bob@example.org"))
        for m in refused:
            subject = next(line for line in m.split(b"\r\n") if line.startswith(b"Subject:"))
            self.assertNotIn(subject, delivered)


class DefaultIsOwnDomain(FromPolicy):
    def test_own_domain(self):
        self.assert_outcomes(accepted=[OWN, COLLEAGUE, ENCODED, DISPLAY_LIES],
                             refused=[FOREIGN, MISSING, FOLDED_SECOND])
        self.wait_for_log('result="550 5.7.1 From: header does not match the authenticated sender"')

    def test_envelope_sender_is_the_account(self):
        s = self.smtplib_client("submission")
        s.login("alice@example.org", PASSWORD)
        for sender in ("bob@example.org", "ceo@other.test"):
            with self.assertRaises(smtplib.SMTPSenderRefused) as e:
                s.sendmail(sender, ["bob@example.org"], OWN)
            self.assertEqual(e.exception.smtp_code, 553)
            self.assertEqual(e.exception.smtp_error,
                             f"5.7.1 <{sender}>: Sender address rejected: not owned by user alice@example.org".encode())
        s.close()
        self.assertEqual(self.messages("bob@example.org"), [])

    def test_unauthenticated_inbound_mail_is_not_checked(self):
        s = smtplib.SMTP("127.0.0.1", self.ports["smtp"], local_hostname="remote.test", timeout=30)
        self.on_teardown(s.close)
        self.assertEqual(s.sendmail("ceo@other.test", ["bob@example.org"], FOREIGN), {})
        s.quit()
        self.assertEqual(len(self.messages("bob@example.org")), 1)


class OwnAddress(FromPolicy):
    POLICY = "own-address"

    def test_own_address(self):
        self.assert_outcomes(accepted=[OWN, ENCODED, DISPLAY_LIES], refused=[COLLEAGUE, FOREIGN, MISSING])


class Any(FromPolicy):
    POLICY = "any"

    def test_any(self):
        self.assert_outcomes(accepted=[OWN, FOREIGN, MISSING], refused=[])


if __name__ == "__main__":
    mhtest.main()
