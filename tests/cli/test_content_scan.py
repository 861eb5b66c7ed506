"""Virus scanning with a real clamd (SPEC §8, issue 12): EICAR attachments are removed and
the bilingual notice is put at the top of the first text part, in that part's own
charset and transfer encoding; RFC 2231/2047 file names shown decoded; a virus inside an
attached message/rfc822, in the only part, or next to no text part; clean mail (also a
30 MB one) stored byte-identical; --stdio mode scans too. Each test checks the exact
reply and the stored file: every part other than the text part and the removed one is
compared byte for byte (split at the boundary lines, hashed).

The shared base (ScanCase, the message builders and checks) is imported by
test_content_limits.py and test_content_faults.py."""

import base64
import email
import email.policy
import hashlib
import os
import quopri
import random
import re
import shutil
import smtplib
import subprocess
import sys
import time
import unittest
import urllib.parse

import mhtest
from clamdfixture import EICAR, EICAR_NAME, Clamd
from mhtest_mail import MailTestCase

QUEUED_RE = r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$"
REJECTED = "550 5.7.1 Error: message content rejected"
UNAVAILABLE = "451 4.3.0 Error: virus scanner unavailable, try again later"
SENDER = "sender@remote.test"
ALICE = "alice@example.org"

JAPANESE_TEXT = ("こんにちは、山田です。\n資料を添付しますので、ご確認ください。\n"
                 "Plain ASCII line too.\nよろしくお願いいたします。\n")


# --- building messages (bytes with CRLF line ends, as a client sends them) ------------

def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def b64_lines(data):
    """base64 in 76-column CRLF lines, as mailers write it."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def header_block(fields):
    return "".join(f"{k}: {v}\r\n" for k, v in fields).encode()


def top_fields(subject, content_type, extra=()):
    return [("From", f"<{SENDER}>"), ("To", f"<{ALICE}>"), ("Subject", subject),
            ("Date", "Sun, 06 Dec 2026 10:00:00 +0900"),
            ("Message-ID", f"<{hashlib.md5(subject.encode()).hexdigest()}@remote.test>"),
            ("MIME-Version", "1.0"), ("Content-Type", content_type), *extra]


def mime_part(fields, body):
    """One body part: its header fields, the blank line, the body (bytes ending in CRLF)."""
    return header_block(fields) + b"\r\n" + body


def multipart(boundary, parts, fields=None, subtype="mixed", subject="with parts"):
    """A whole multipart message (or, with fields=[], the body of an inner one after its
    own header fields). Each part's final CRLF is the CRLF of the next delimiter line."""
    head = header_block(fields if fields is not None else
                        top_fields(subject, f'multipart/{subtype}; boundary="{boundary}"'))
    body = b"This is a multi-part message in MIME format.\r\n"
    for p in parts:
        body += b"--" + boundary.encode() + b"\r\n" + p
    return head + b"\r\n" + body + b"--" + boundary.encode() + b"--\r\n"


def text_part(text, charset="UTF-8", codec="utf-8", cte="base64"):
    raw = crlf(text).encode(codec)
    if cte == "base64":
        body = b64_lines(raw)
    elif cte == "quoted-printable":
        body = quopri.encodestring(text.encode(codec)).replace(b"\n", b"\r\n")
    else:
        body = raw
    return mime_part([("Content-Type", f"text/plain; charset={charset}"), ("Content-Transfer-Encoding", cte)], body)


def eicar_part(disposition='attachment; filename="eicar.com"', content_type="application/octet-stream"):
    fields = [("Content-Type", content_type), ("Content-Transfer-Encoding", "base64")]
    if disposition:
        fields.append(("Content-Disposition", disposition))
    return mime_part(fields, b64_lines(EICAR))


def binary_part(size, content_type="application/pdf", name="report.pdf", seed=1):
    """A clean attachment of pseudo-random bytes (deterministic per seed)."""
    data = random.Random(seed).randbytes(size)
    return mime_part([("Content-Type", f'{content_type}; name="{name}"'), ("Content-Transfer-Encoding", "base64"),
                      ("Content-Disposition", f'attachment; filename="{name}"')], b64_lines(data))


# --- reading what was stored --------------------------------------------------------

TRACE_FIELD = re.compile(rb"^(Return-Path|Received|Delivered-To):")


def strip_trace(stored):
    """The stored message without the trace fields mh-serve prepends (Return-Path,
    Received with its continuation lines, Delivered-To)."""
    lines = stored.split(b"\n")
    i = 0
    while i < len(lines) and (TRACE_FIELD.match(lines[i]) or (i > 0 and lines[i][:1] in (b"\t", b" "))):
        i += 1
    return b"\n".join(lines[i:])


def lf(data):
    return data.replace(b"\r\n", b"\n")


def split_parts(data, boundary):
    """[head (fields + preamble), part 1, part 2, …, epilogue]: `data` cut at the
    delimiter lines of `boundary` (the lines themselves left out)."""
    return re.split(rb"(?m)^--" + re.escape(boundary.encode()) + rb"(?:--)?[ \t]*\r?\n", data)


def digest(chunks):
    return [hashlib.sha256(c).hexdigest()[:16] + f" ({len(c)} bytes: {c[:40]!r})" for c in chunks]


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def notice_lines(file_name, virus=EICAR_NAME):
    return [f"[English] The virus {virus} had been detected from {file_name}. Executed processing : remove",
            f"[Japanese] ウイルス {virus} が {file_name} から検出されました。 実行された処理:remove"]


def has_virus(data):
    """True when EICAR is in `data` raw or as the base64 eicar_part() sends."""
    return EICAR in data or b64_lines(EICAR).split(b"\r\n")[0] in data


def decoded_text(part_bytes, codec):
    """The text of one stored text part, decoded by Python alone, line ends as LF."""
    msg = parse(part_bytes)
    return msg.get_payload(decode=True).decode(codec).replace("\r\n", "\n")


class ScanCase(MailTestCase):
    """A MailTestCase with one real clamd per class (CLAMD_OPTIONS for Clamd(); None: no
    real clamd) and helpers to send a message and read back what was stored."""

    CLAMD_OPTIONS = {}
    SERVICES = ("smtp",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.clamd = None
        if cls.CLAMD_OPTIONS is not None:
            cls.clamd = Clamd(**cls.CLAMD_OPTIONS)
            cls.clamd.start()

    @classmethod
    def tearDownClass(cls):
        if cls.clamd is not None:
            cls.clamd.close()
        super().tearDownClass()

    def tearDown(self):
        if self.clamd is not None and self.failed_so_far():
            print(f"\n--- clamd log ({self.id()}) ---\n{self.clamd.log()[-3000:]}---", file=sys.stderr)
        super().tearDown()

    def clamd_config(self, address=None, timeout=None):
        address = address or self.clamd.address
        extra = f", timeout: {timeout}" if timeout else ""
        return f'clamd: {{ address: "{address}"{extra} }}\n'

    def start(self, extra="", address=None, timeout=None, services=None):
        self.start_mail_server(self.clamd_config(address, timeout) + extra, services=services or self.SERVICES)

    def send(self, message, to=(ALICE,), eight_bit=False, timeout=120):
        """One transaction over plain SMTP from 127.0.0.1 (trusted); the reply to DATA as
        "CODE TEXT" (smtplib dot-stuffs and sends CRLF)."""
        s = smtplib.SMTP("127.0.0.1", self.ports["smtp"], local_hostname="sender.test", timeout=timeout)
        try:
            s.ehlo()
            code, text = s.mail(SENDER, ["BODY=8BITMIME"] if eight_bit else [])
            self.assertEqual(code, 250, text)
            for r in to:
                code, text = s.rcpt(r)
                self.assertEqual(code, 250, text)
            code, text = s.data(message)
            try:
                s.quit()
            except smtplib.SMTPException:
                pass
        finally:
            s.close()
        return f"{code} {text.decode('utf-8', 'replace')}"

    def stored(self, address=ALICE):
        """The one message in the account's Maildir/new without the trace fields;
        nothing may be left in tmp/."""
        self.assertEqual(os.listdir(self.maildir(address, "tmp")), [])
        [msg] = self.messages(address)
        return strip_trace(msg)

    def assertNothingStored(self):
        self.assertEqual(self.count_all_messages(), 0)
        self.assertEqual(self.queue_entries(), {})
        for root, dirs, files in os.walk(self.path("domains")):
            if os.path.basename(root) == "tmp":
                self.assertEqual(files, [], root)

    def assertNoVirus(self, data):
        self.assertFalse(has_virus(data), f"the virus is still there: {data[:400]!r}…")

    def assertCleanedParts(self, original, stored, boundary, text_index, virus_index):
        """`stored` is `original` (both LF) with part `virus_index` removed and part
        `text_index` changed; every other chunk (head, parts, epilogue) byte-identical.
        Returns (original text part, stored text part)."""
        before = split_parts(original, boundary)
        after = split_parts(stored, boundary)
        expected = [c for i, c in enumerate(before) if i != virus_index]
        self.assertEqual(len(after), len(expected), digest(after))
        new_text_index = text_index - (1 if virus_index < text_index else 0)
        self.assertEqual(digest(c for i, c in enumerate(after) if i != new_text_index),
                         digest(c for i, c in enumerate(expected) if i != new_text_index))
        return expected[new_text_index], after[new_text_index]

    def assertNoticeText(self, orig_part, new_part, codec, file_names, original_text):
        """The stored text part keeps its Content-Type and Content-Transfer-Encoding values
        and decodes (in its own charset) to the notice lines, an empty line, the text."""
        o, n = parse(orig_part), parse(new_part)
        for field in ("Content-Type", "Content-Transfer-Encoding"):
            self.assertEqual(n[field], o[field], field)
        lines = [line for name in file_names for line in notice_lines(name)]
        self.assertEqual(decoded_text(new_part, codec), "\n".join(lines) + "\n\n" + original_text)


class Charsets(ScanCase):
    """The notice in the text part's own charset and transfer encoding."""

    def check_charset(self, charset, codec, cte):
        message = multipart("b-" + codec, [text_part(JAPANESE_TEXT, charset, codec, cte), eicar_part(),
                                           binary_part(5000)], subject=f"{charset} {cte}")
        self.start()
        reply = self.send(message, eight_bit=(cte == "8bit"))
        self.assertRegex(reply, QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        orig_text, new_text = self.assertCleanedParts(lf(message), stored, "b-" + codec, text_index=1, virus_index=2)
        self.assertNoticeText(orig_text, new_text, codec, ["eicar.com"], JAPANESE_TEXT)
        qid = reply.rsplit(" ", 1)[1]
        self.wait_for_log("id=" + qid)
        [line] = [l for l in self.log().splitlines() if "id=" + qid in l and "result=" in l]
        self.assertIn(f'virus="{EICAR_NAME}:eicar.com"', line)
        return new_text

    def test_utf8_base64(self):
        self.check_charset("UTF-8", "utf-8", "base64")

    def test_iso2022jp_7bit_stays_7bit(self):
        part = self.check_charset("ISO-2022-JP", "iso2022_jp", "7bit")
        self.assertTrue(all(b < 0x80 for b in part), "8-bit bytes in a 7bit ISO-2022-JP part")

    def test_shift_jis_base64(self):
        self.check_charset("Shift_JIS", "shift_jis", "base64")

    def test_shift_jis_8bit(self):
        part = self.check_charset("Shift_JIS", "shift_jis", "8bit")
        # Raw Shift_JIS in the stored part, not re-encoded: the notice's Japanese line is there.
        self.assertIn(notice_lines("eicar.com")[1].encode("shift_jis"), part)

    def test_euc_jp_quoted_printable(self):
        part = self.check_charset("EUC-JP", "euc_jp", "quoted-printable")
        body = part.partition(b"\n\n")[2]
        self.assertTrue(all(b < 0x80 for b in body), "8-bit bytes in a quoted-printable part")
        self.assertTrue(all(len(l) <= 76 for l in body.split(b"\n")), "a quoted-printable line over 76 columns")


class FileNames(ScanCase):
    """FILE in the notice is the attachment's name decoded from RFC 2231 / RFC 2047."""

    NAME = "2026年12月の請求書（確定版）.com"

    def check_name(self, disposition, content_type="application/octet-stream", expected=NAME):
        message = multipart("names", [text_part("See the attachment.\n"), eicar_part(disposition, content_type)])
        self.start()
        self.assertRegex(self.send(message), QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        orig_text, new_text = self.assertCleanedParts(lf(message), stored, "names", text_index=1, virus_index=2)
        self.assertNoticeText(orig_text, new_text, "utf-8", [expected], "See the attachment.\n")

    def test_rfc2231_utf8(self):
        self.check_name("attachment; filename*=UTF-8''" + urllib.parse.quote(self.NAME, safe=""))

    def test_rfc2231_continuations(self):
        pieces = [self.NAME[:5], self.NAME[5:12], self.NAME[12:]]
        sections = [f"filename*0*=UTF-8''{urllib.parse.quote(pieces[0], safe='')}"]
        sections += [f"filename*{i}*={urllib.parse.quote(p, safe='')}" for i, p in enumerate(pieces[1:], 1)]
        self.check_name("attachment;\r\n\t" + ";\r\n\t".join(sections))

    def test_rfc2047_iso2022jp(self):
        word = "=?ISO-2022-JP?B?" + base64.b64encode(self.NAME.encode("iso2022_jp")).decode() + "?="
        self.check_name(f'attachment; filename="{word}"', f'application/octet-stream; name="{word}"')

    def test_rfc2047_utf8_in_content_type_name(self):
        word = "=?UTF-8?B?" + base64.b64encode(self.NAME.encode()).decode() + "?="
        self.check_name("", f'application/octet-stream; name="{word}"')

    def test_no_name(self):
        self.check_name("attachment", "application/x-msdownload",
                        expected="(unnamed application/x-msdownload part)")


class Structure(ScanCase):
    def test_virus_inside_attached_message(self):
        inner = multipart("inner", [text_part("Inner text, untouched.\n", "ISO-2022-JP", "iso2022_jp", "7bit"),
                                    eicar_part('attachment; filename="inner.com"')],
                          fields=top_fields("forwarded", 'multipart/mixed; boundary="inner"'))
        attached = mime_part([("Content-Type", "message/rfc822"), ("Content-Disposition", "attachment")], inner)
        message = multipart("outer", [text_part("Outer text.\n", cte="quoted-printable"), attached,
                                      binary_part(3000)])
        self.start()
        self.assertRegex(self.send(message), QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        before, after = split_parts(lf(message), "outer"), split_parts(stored, "outer")
        self.assertEqual(len(after), len(before), digest(after))
        # Head, the clean attachment and the epilogue unchanged; the notice in the outer text.
        self.assertEqual(digest([after[0], after[3], after[4]]), digest([before[0], before[3], before[4]]))
        self.assertNoticeText(before[1], after[1], "utf-8", ["inner.com"], "Outer text.\n")
        # Inside the attached message only the infected part is gone (not the inner text).
        inner_before, inner_after = split_parts(before[2], "inner"), split_parts(after[2], "inner")
        self.assertEqual(digest(inner_after), digest(inner_before[:2] + inner_before[3:]))

    def check_single_part(self, send, disposition, expected_name):
        fields = [("Content-Transfer-Encoding", "base64")]
        if disposition:
            fields.append(("Content-Disposition", disposition))
        message = header_block(top_fields("only a virus", "application/octet-stream", fields)) + b"\r\n" + \
            b64_lines(EICAR)
        self.start()
        reply = send(message)
        self.assertRegex(reply, QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        msg = parse(stored)
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_content_charset(), "utf-8")
        for field in ("From", "To", "Subject", "Message-ID", "Date"):
            self.assertEqual(msg[field], parse(message)[field], field)
        text = msg.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")
        self.assertEqual(text.rstrip("\n"), "\n".join(notice_lines(expected_name)))

    def test_virus_is_the_only_part(self):
        self.check_single_part(self.send, None, "(unnamed application/octet-stream part)")

    @unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
    def test_virus_is_the_only_part_named_via_swaks(self):
        def swaks(message):
            path = os.path.join(self.tmp, "message.eml")
            with open(path, "wb") as f:
                f.write(message)
            r = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.ports['smtp']}", "--to", ALICE,
                                "--from", SENDER, "--helo", "swaks.test", "--data", "@" + path],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            [reply] = re.findall(r"<-  (250 2\.0\.0 Ok: queued as .*)", r.stdout)
            return reply
        self.check_single_part(swaks, 'attachment; filename="invoice.exe"', "invoice.exe")

    def test_no_text_part_gets_a_new_first_part(self):
        message = multipart("notext", [binary_part(4000, "image/png", "photo.png"),
                                       eicar_part('attachment; filename="virus.exe"')])
        self.start()
        self.assertRegex(self.send(message), QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        before, after = split_parts(lf(message), "notext"), split_parts(stored, "notext")
        # head, NEW, photo, epilogue
        self.assertEqual(len(after), 4, digest(after))
        self.assertEqual(digest([after[0], after[2], after[3]]), digest([before[0], before[1], before[3]]))
        new = parse(after[1])
        self.assertEqual(new.get_content_type(), "text/plain")
        self.assertEqual(new.get_content_charset(), "utf-8")
        self.assertEqual(new["Content-Transfer-Encoding"].strip().lower(), "base64")
        text = new.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")
        self.assertEqual(text.rstrip("\n"), "\n".join(notice_lines("virus.exe")))

    def test_two_viruses_two_notices(self):
        message = multipart("two", [text_part("Two attachments.\n"), eicar_part('attachment; filename="a.com"'),
                                    binary_part(1000), eicar_part('attachment; filename="b.com"')])
        self.start()
        self.assertRegex(self.send(message), QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        before, after = split_parts(lf(message), "two"), split_parts(stored, "two")
        self.assertEqual(digest([after[0], after[2], after[3]]), digest([before[0], before[3], before[5]]))
        self.assertNoticeText(before[1], after[1], "utf-8", ["a.com", "b.com"], "Two attachments.\n")

    def test_small_clean_message_stored_byte_identical(self):
        message = multipart("clean", [text_part(JAPANESE_TEXT, "ISO-2022-JP", "iso2022_jp", "7bit"),
                                      binary_part(20000)])
        self.start()
        self.assertRegex(self.send(message), QUEUED_RE)
        self.assertEqual(self.stored(), lf(message))
        self.assertNotIn("virus=", self.log())

    def test_clean_30_mb_message_stored_byte_identical(self):
        # limits.message_size is 31457280 (30 MiB): 22,000,000 random bytes in base64
        # lines make a message of about 30.1 MB with CRLF line ends.
        message = multipart("big", [text_part("A big clean file.\n"),
                                    mime_part([("Content-Type", "application/octet-stream; name=\"big.bin\""),
                                               ("Content-Transfer-Encoding", "base64")],
                                              b64_lines(os.urandom(22_000_000)))])
        self.assertLess(len(message), 31457280)
        self.assertGreater(len(message), 30_000_000)
        self.start()
        began = time.monotonic()
        self.assertRegex(self.send(message, timeout=300), QUEUED_RE)
        elapsed = time.monotonic() - began
        self.assertEqual(self.stored(), lf(message))
        print(f"\n30 MB clean message scanned and stored in {elapsed:.1f} s", file=sys.stderr)


class Stdio(ScanCase):
    """`mh-serve --stdio smtp` (the inetd mode) scans the same way."""

    def test_eicar_over_stdio_is_cleaned(self):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'hostname: mx.test\ntrusted_networks: ["127.0.0.0/8"]\n{self.clamd_config()}')
        message = multipart("stdio", [text_part(JAPANESE_TEXT, "Shift_JIS", "shift_jis", "base64"), eicar_part()])
        stuffed = re.sub(rb"(?m)^\.", b"..", message)
        script = (b"EHLO stdio.test\r\nMAIL FROM:<" + SENDER.encode() + b">\r\nRCPT TO:<" + ALICE.encode() + b">\r\n"
                  b"DATA\r\n" + stuffed + b".\r\nQUIT\r\n")
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "smtp",
                               "--client-ip", "127.0.0.1"], input=script, capture_output=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        replies = proc.stdout.decode("latin-1").split("\r\n")
        self.assertEqual(replies[-2:], ["221 2.0.0 Bye", ""], replies)
        self.assertRegex(replies[-3], QUEUED_RE)
        stored = self.stored()
        self.assertNoVirus(stored)
        orig_text, new_text = self.assertCleanedParts(lf(message), stored, "stdio", text_index=1, virus_index=2)
        self.assertNoticeText(orig_text, new_text, "shift_jis", ["eicar.com"], JAPANESE_TEXT)
        self.assertIn(f'virus="{EICAR_NAME}:eicar.com"'.encode(), proc.stderr)


if __name__ == "__main__":
    mhtest.main()
