"""Virus scanning never lets unscanned mail through (SPEC §8, issue 12): clamd missing,
closing at once, hung past clamd.timeout, answering ERROR, or cutting a stream longer
than its StreamMaxLength → `451 4.3.0 Error: virus scanner unavailable, try again
later` and nothing stored. And the same scan on the other ways mail comes in: an
authenticated submission to a remote recipient is queued cleaned, a post to a mailing
list is archived and distributed cleaned."""

import json
import os
import time

import mhtest
import mhtest_lists as ml
from clamdfixture import Clamd, FakeClamd
from mhtest_mail import PASSWORD
from test_content_scan import (ALICE, JAPANESE_TEXT, QUEUED_RE, UNAVAILABLE, ScanCase, binary_part, eicar_part,
                               has_virus, lf, multipart, notice_lines, split_parts, strip_trace, text_part)

BOB = "bob@example.org"
CAROL = "carol@remote.test"


def eicar_message(boundary="fault"):
    return multipart(boundary, [text_part(JAPANESE_TEXT), eicar_part()], subject="scan " + boundary)


class ScannerFailures(ScanCase):
    """No real clamd: each test points clamd.address at a broken one."""

    CLAMD_OPTIONS = None

    def assertUnavailable(self, message=None, bound=60):
        began = time.monotonic()
        self.assertEqual(self.send(message or eicar_message()), UNAVAILABLE)
        self.assertLess(time.monotonic() - began, bound)
        self.assertNothingStored()
        self.wait_for_log('result="' + UNAVAILABLE)
        [line] = [l for l in self.log().splitlines() if 'result="' + UNAVAILABLE in l]
        self.assertIn(' content="clamd ', line)

    def test_missing_socket(self):
        self.start(address="unix:" + os.path.join(self.tmp, "no-such-clamd.sock"))
        self.assertUnavailable()

    def test_clean_mail_is_not_passed_unscanned_either(self):
        self.start(address="unix:" + os.path.join(self.tmp, "no-such-clamd.sock"))
        self.assertUnavailable(multipart("clean", [text_part("nothing bad here\n")]))

    def test_connection_closed_at_once(self):
        with FakeClamd(FakeClamd.CLOSE, self.tmp) as fake:
            self.start(address=fake.address)
            self.assertUnavailable()
            self.assertGreaterEqual(fake.connections, 1)

    def test_hung_clamd_times_out(self):
        with FakeClamd(FakeClamd.HUNG, self.tmp) as fake:
            self.start(address=fake.address, timeout="2s")
            self.assertUnavailable(bound=20)
            self.assertGreaterEqual(fake.connections, 1)

    def test_error_answer(self):
        with FakeClamd(FakeClamd.ERROR, self.tmp) as fake:
            self.start(address=fake.address)
            self.assertUnavailable()
            self.assertGreaterEqual(fake.connections, 1)


class StreamLimit(ScanCase):
    """A real clamd whose StreamMaxLength (1M) is below a part's size: it answers
    "INSTREAM size limit exceeded. ERROR" (and may close while we still send)."""

    CLAMD_OPTIONS = {"stream_max": "1M"}

    def test_part_longer_than_stream_max_length(self):
        self.start()
        message = multipart("big", [text_part("three megabytes attached\n"), binary_part(3 * 1024 * 1024)])
        self.assertEqual(self.send(message), UNAVAILABLE)
        self.assertNothingStored()


def check_config(case, address):
    """mh-serve --check-config --json with only clamd configured; its exit code and JSON."""
    if case.ports is None:
        case.ports = {"smtp": mhtest.free_port()}
    case.write_mail_config(case.clamd_config(address))
    run = case.run_tool("mh-serve", "--check-config", "--json")
    return run.code, json.loads(run.out)


class CheckConfigStreamLimit(ScanCase):
    """--check-config streams limits.message_size bytes to clamd and warns when clamd cuts
    the stream: with Debian's StreamMaxLength every 30 MB message would get 451."""

    CLAMD_OPTIONS = {"stream_max": "1M"}

    def test_warns_about_a_short_stream_max_length(self):
        code, doc = check_config(self, self.clamd.address)
        self.assertEqual(code, 0)
        self.assertTrue(doc["clamd"]["version"].startswith("ClamAV "), doc)
        self.assertIn("clamd StreamMaxLength is below limits.message_size (31457280 bytes)", doc["clamd"]["warning"])
        self.assertIn("INSTREAM size limit exceeded", doc["clamd"]["warning"])
        text = self.run_tool("mh-serve", "--check-config")
        self.assertIn("clamd: warning: clamd StreamMaxLength is below limits.message_size", text.out)


class CheckConfig(ScanCase):
    def test_version_and_no_warning_with_a_long_enough_stream(self):
        code, doc = check_config(self, self.clamd.address)
        self.assertEqual(code, 0)
        self.assertEqual(doc["clamd"]["address"], self.clamd.address)
        self.assertTrue(doc["clamd"]["version"].startswith("ClamAV "), doc)
        self.assertNotIn("warning", doc["clamd"])

    def test_clamd_not_answering_is_a_warning(self):
        code, doc = check_config(self, "unix:" + os.path.join(self.tmp, "absent.sock"))
        self.assertEqual(code, 0)
        self.assertIsNone(doc["clamd"]["version"])
        self.assertIn("does not answer", doc["clamd"]["warning"])

    def test_a_bad_address_is_a_config_error(self):
        self.ports = {"smtp": mhtest.free_port()}
        self.write_mail_config('clamd: { address: "clamd.example" }\n')
        run = self.run_tool("mh-serve", "--check-config")
        self.assertEqual(run.code, 78, run)
        self.assertIn("key 'clamd.address'", run.err)


class OverTcp(ScanCase):
    """clamd.address as tcp:HOST:PORT (clamd's TCPSocket) works like the unix socket."""

    CLAMD_OPTIONS = {"tcp": True}

    def test_infected_mail_cleaned_over_tcp(self):
        self.start(address=self.clamd.tcp_address)
        self.assertRegex(self.send(eicar_message("tcp")), QUEUED_RE)
        self.assertNoVirus(self.stored(ALICE))
        self.wait_for_log('virus="Eicar-Test-Signature.UNOFFICIAL:eicar.com"')


class Submission(ScanCase):
    """An infected mail from an authenticated account is cleaned before it is queued."""

    SERVICES = ("smtp", "submission")

    def test_outgoing_mail_queued_cleaned(self):
        self.start()
        message = multipart("out", [text_part(JAPANESE_TEXT, "ISO-2022-JP", "iso2022_jp", "7bit"), eicar_part(),
                                    binary_part(2000)])
        s = self.smtplib_client("submission")
        self.assertEqual(s.login(ALICE, PASSWORD)[0], 235)
        self.assertEqual(s.mail(ALICE)[0], 250)
        for r in (CAROL, BOB):
            self.assertEqual(s.rcpt(r)[0], 250)
        code, text = s.data(message)
        self.assertRegex(f"{code} {text.decode()}", QUEUED_RE)
        s.quit()
        [entry] = self.queue_entries().values()
        self.assertEqual(entry["env"]["recipient"], [CAROL])
        for stored in (entry["msg"], self.stored(BOB)):
            self.assertNoVirus(stored)
            body = strip_trace(stored)
            orig_text, new_text = self.assertCleanedParts(lf(message), body, "out", text_index=1, virus_index=2)
            self.assertNoticeText(orig_text, new_text, "iso2022_jp", ["eicar.com"], JAPANESE_TEXT)
        tmp = self.path("queue", "tmp")
        self.assertEqual(os.listdir(tmp) if os.path.isdir(tmp) else [], [])


class ListPost(ml.ListCase):
    """A post to a list arrives by SMTP, so it is scanned there: the archive, the local
    member's copy and the remote member's copy are all the cleaned post."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.clamd = Clamd()
        cls.clamd.start()

    @classmethod
    def tearDownClass(cls):
        cls.clamd.close()
        super().tearDownClass()

    def test_infected_post_distributed_cleaned(self):
        self.make_list(members=[ALICE, CAROL])
        self.start(f'clamd: {{ address: "{self.clamd.address}" }}\n')
        data, marker = ml.post_message("infected post", sender=CAROL, marker_line=False,
                                       extra='MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="lp"\r\n')
        body = (b"--lp\r\n" + text_part(f"Hello list\nmarker {marker}\n") + b"--lp\r\n" + eicar_part()
                + b"--lp--\r\n")
        data = data[:data.index(b"\r\n\r\n") + 4] + body
        qid = self.post(data, sender=CAROL)
        self.assertTrue(self.detail(qid).startswith("distributed as ml@example.org #1: "))
        [remote] = self.wait_peer(CAROL)
        self.settle()
        with open(self.archive_file(1), "rb") as f:
            archived = f.read()
        [(_, _, local)] = self.maildir_all(ALICE)
        self.assertEqual(local, archived)
        for copy in (archived, remote["data"]):
            with self.subTest(copy=copy[:60]):
                self.assertFalse(has_virus(copy), copy[:400])
                parts = split_parts(lf(copy), "lp")
                self.assertEqual(len(parts), 3, parts)  # head, the text, epilogue: the virus is gone
                texts = ml.text_parts(ml.parse(copy))
                self.assertEqual(texts[0].replace("\r\n", "\n"),
                                 "\n".join(notice_lines("eicar.com")) + f"\n\nHello list\nmarker {marker}\n")


if __name__ == "__main__":
    mhtest.main()
