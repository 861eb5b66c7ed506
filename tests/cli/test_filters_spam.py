"""The spam step of an account's filters (SPEC §6 step 1, §8 spam.rspamd), end to end:
mail arrives over real SMTP at mh-serve, which asks a REAL rspamd (rspamdfixture.py:
the Debian package, offline on loopback) over /checkv2. GTUBE must be tagged
(Subject prefix + X-Spam-Flag: YES) or discarded as the account chose; ham is stored
untouched; with rspamd down the message is stored untagged and the event logged (spam
is a preference, not a safety check). One rspamd serves the whole class (its start
takes 10–30 s)."""

import unittest

import test_filters_delivery as fd
from rspamdfixture import Rspamd

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


class SpamStep(fd.FilterCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rspamd = Rspamd()
        cls.rspamd.start()

    @classmethod
    def tearDownClass(cls):
        cls.rspamd.close()
        super().tearDownClass()

    def start_with_rspamd(self, url=None):
        self.start(f'spam: {{ rspamd: "{url or self.rspamd.url}", timeout: 20s }}\n')

    def test_gtube_is_tagged_and_ham_untouched(self):
        self.filters(fd.ALICE, "spam: {action: tag}\n")
        self.start_with_rspamd()
        spam, _ = fd.msg("cheap pills", body=GTUBE + "\r\n")
        ham, _ = fd.msg("lunch on friday?")
        self.deliver(spam)
        self.deliver(ham)
        stored = [m.replace(b"\r\n", b"\n") for m in self.stored(fd.ALICE)]
        self.assertEqual(len(stored), 2)
        tagged = [m for m in stored if b"GTUBE" in m]
        clean = [m for m in stored if b"GTUBE" not in m]
        head = tagged[0].partition(b"\n\n")[0].decode()
        self.assertRegex(head, r"(?m)^Subject: \[SPAM\] cheap pills$")
        self.assertRegex(head, r"(?m)^X-Spam-Flag: YES$")
        chead = clean[0].partition(b"\n\n")[0].decode()
        self.assertRegex(chead, r"(?m)^Subject: lunch on friday\?$")
        self.assertNotIn("X-Spam-Flag", chead)
        # The body of the tagged copy is byte for byte the message's.
        self.assertTrue(tagged[0].endswith(spam.replace(b"\r\n", b"\n").partition(b"\n\n")[2]))

    def test_custom_tag_and_spam_beats_forward(self):
        self.filters(fd.ALICE, 'spam: {action: tag, tag: "[迷惑]"}\n'
                               "forward:\n  - { if: all, to: [dest@remote.test], keep: false }\n")
        self.start_with_rspamd()
        self.deliver(fd.msg("offer", body=GTUBE + "\r\n")[0])
        [m] = self.stored(fd.ALICE)
        subject = self.parsed(m)["Subject"]
        self.assertEqual(str(subject), "[迷惑] offer")
        self.quiet()  # tagged spam is not forwarded: the spam step matched first

    def test_delete_discards_spam_only(self):
        self.filters(fd.ALICE, "spam: {action: delete}\n")
        self.start_with_rspamd()
        self.deliver(fd.msg("spam", body=GTUBE + "\r\n")[0])
        self.deliver(fd.msg("ham")[0])
        [m] = self.stored(fd.ALICE)
        self.assertIn(b"Subject: ham", m)
        self.assertIn("discarded", self.log())

    def test_accounts_without_spam_filter_are_not_scanned(self):
        self.filters(fd.ALICE, "spam: {action: delete}\n")
        self.start_with_rspamd()
        self.deliver(fd.msg("to both", to=f"{fd.ALICE}, {fd.BOB}", body=GTUBE + "\r\n")[0], to=(fd.ALICE, fd.BOB))
        self.assertEqual(self.stored(fd.ALICE), [])
        [m] = self.stored(fd.BOB)
        self.assertNotIn(b"X-Spam-Flag", m)

    def test_rspamd_down_delivers_untagged_and_logs(self):
        self.filters(fd.ALICE, "spam: {action: delete}\n")
        [port] = fd.relay.free_ports(1)
        self.start_with_rspamd(f"http://127.0.0.1:{port}")
        self.deliver(fd.msg("spam", body=GTUBE + "\r\n")[0])
        [m] = self.stored(fd.ALICE)
        self.assertNotIn(b"X-Spam-Flag", m)
        self.assertIn("spam check failed, delivered untagged", self.log())
        self.assertIn("connection refused", self.log())

    def test_no_rspamd_configured_means_inert_and_logged(self):
        self.filters(fd.ALICE, "spam: {action: delete}\n")
        self.start()
        self.deliver(fd.msg("spam", body=GTUBE + "\r\n")[0])
        self.assertEqual(len(self.stored(fd.ALICE)), 1)
        self.assertIn("spam filter inert: spam.rspamd is not set", self.log())


if __name__ == "__main__":
    unittest.main()
