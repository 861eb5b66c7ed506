"""Archive and MIME limits of the content check (SPEC §8 and §10, issue 12), with a real
clamd configured: archives expanding past limits.expanded_content (100 MiB: a zip and a
gzip of 101 MiB of zeros, a 42.zip-style bomb), nested deeper than limits.archive_depth,
more leaf parts than limits.mime_parts, multiparts nested deeper than limits.mime_depth
→ `550 5.7.1 Error: message content rejected` and nothing stored; archives within the
limits are delivered byte-identical. The archives are built here, in memory, at test
time."""

import gzip
import io
import time
import zipfile

import mhtest
from test_content_scan import (ALICE, QUEUED_RE, REJECTED, ScanCase, b64_lines, lf, mime_part, multipart,
                               text_part)

MIB = 1024 * 1024
ZEROS = bytes(MIB)


def zeros_zip(total, name="zeros.bin"):
    """A zip with one deflated entry of `total` zero bytes (written in 1 MiB pieces)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(name, "w", force_zip64=total > 0xFFFFFFFF) as entry:
            for _ in range(total // MIB):
                entry.write(ZEROS)
            entry.write(bytes(total % MIB))
    return buf.getvalue()


def zeros_gzip(total):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        for _ in range(total // MIB):
            g.write(ZEROS)
    return buf.getvalue()


def zip_of(entries):
    """A deflated zip of {name: bytes}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def nested_zip(depth):
    """`depth` zips inside each other (depth 1 = one zip holding a text file)."""
    data = zip_of({"innermost.txt": b"the bottom of the nest\r\n"})
    for level in range(2, depth + 1):
        data = zip_of({f"level{level - 1}.zip": data})
    return data


def bomb_zip(copies=16, levels=4, innermost=20 * MIB):
    """A 42.zip-style bomb: `levels` of zips each holding `copies` copies of the level
    below, the bottom one `copies` files of `innermost` zeros: copies**levels ×
    innermost bytes (16**4 × 20 MiB ≈ 1.3 TiB) in a few hundred KB. The innermost file
    stays under deflate's 32 KiB window once compressed, so each level's copies compress
    to almost nothing at the level above."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(copies):
            with z.open(f"{i:x}.bin", "w") as entry:
                for _ in range(innermost // MIB):
                    entry.write(ZEROS)
    data = buf.getvalue()
    for level in range(2, levels + 1):
        data = zip_of({f"lib{level}-{i:x}.zip": data for i in range(copies)})
    return data


def archive_message(data, name, content_type="application/zip"):
    part = mime_part([("Content-Type", f'{content_type}; name="{name}"'), ("Content-Transfer-Encoding", "base64"),
                      ("Content-Disposition", f'attachment; filename="{name}"')], b64_lines(data))
    return multipart("arch", [text_part("An archive is attached.\n"), part], subject="archive " + name)


class Archives(ScanCase):
    def assertRejected(self, message, extra="", bound=120):
        self.start(extra)
        began = time.monotonic()
        self.assertEqual(self.send(message, timeout=bound + 60), REJECTED)
        elapsed = time.monotonic() - began
        self.assertLess(elapsed, bound, "the verdict took too long")
        self.assertNothingStored()
        self.wait_for_log('result="' + REJECTED)
        [line] = [l for l in self.log().splitlines() if 'result="' + REJECTED in l]
        self.assertIn('content="', line)

    def assertDelivered(self, message, extra=""):
        self.start(extra)
        self.assertRegex(self.send(message), QUEUED_RE)
        self.assertEqual(self.stored(), lf(message))

    def test_zip_of_101_mib_zeros_rejected(self):
        self.assertRejected(archive_message(zeros_zip(101 * MIB), "zeros.zip"))

    def test_gzip_of_101_mib_zeros_rejected(self):
        self.assertRejected(archive_message(zeros_gzip(101 * MIB), "zeros.bin.gz", "application/gzip"))

    def test_42_zip_style_bomb_rejected_quickly(self):
        bomb = bomb_zip()
        self.assertLess(len(bomb), 2 * MIB, "the bomb is not small on the wire")
        self.assertRejected(archive_message(bomb, "42.zip"), bound=60)

    def test_zips_nested_deeper_than_archive_depth_rejected(self):
        self.assertRejected(archive_message(nested_zip(10), "deep.zip"), "limits: { archive_depth: 8 }\n")

    def test_zips_nested_within_archive_depth_delivered(self):
        self.assertDelivered(archive_message(nested_zip(6), "nested.zip"), "limits: { archive_depth: 8 }\n")

    def test_zip_expanding_to_10_mib_delivered(self):
        self.assertDelivered(archive_message(zeros_zip(10 * MIB), "ten.zip"))

    def test_expanded_content_limit_is_configurable(self):
        # 10 MiB expanded is fine by default (above) and too much with a 5 MiB limit.
        self.assertRejected(archive_message(zeros_zip(10 * MIB), "ten.zip"), "limits: { expanded_content: 5242880 }\n")


class MimeLimits(ScanCase):
    def parts(self, n):
        return multipart("many", [text_part(f"part {i}\n") for i in range(n)])

    def nested(self, depth):
        """`depth` multiparts inside each other, a text part at the bottom."""
        body = text_part("the bottom\n")
        for level in range(depth - 1, 0, -1):
            body = multipart(f"n{level}", [body], fields=[("Content-Type", f'multipart/mixed; boundary="n{level}"')])
        return multipart("n0", [body])

    def test_more_leaf_parts_than_mime_parts_rejected(self):
        self.start("limits: { mime_parts: 5 }\n")
        self.assertEqual(self.send(self.parts(8)), REJECTED)
        self.assertNothingStored()

    def test_mime_parts_within_the_limit_delivered(self):
        self.start("limits: { mime_parts: 5 }\n")
        message = self.parts(3)
        self.assertRegex(self.send(message), QUEUED_RE)
        self.assertEqual(self.stored(), lf(message))

    def test_default_mime_parts_limit(self):
        self.start()
        self.assertEqual(self.send(self.parts(1001)), REJECTED)
        self.assertNothingStored()

    def test_nesting_deeper_than_mime_depth_rejected(self):
        self.start("limits: { mime_depth: 5 }\n")
        self.assertEqual(self.send(self.nested(9)), REJECTED)
        self.assertNothingStored()

    def test_nesting_within_mime_depth_delivered(self):
        self.start("limits: { mime_depth: 5 }\n")
        message = self.nested(3)
        self.assertRegex(self.send(message), QUEUED_RE)
        self.assertEqual(self.stored(ALICE), lf(message))


if __name__ == "__main__":
    mhtest.main()
