"""Shared plumbing for the mailing-list end-to-end tests (tests/cli/test_lists_*.py,
SPEC §7): an mh-serve of the test's own (smtp + pop3 on free loopback ports) whose
queue runner relays through an aiosmtpd peer (test_outbound_relay.ScriptedHandler:
every transaction recorded; local part "bad" → 550), lists made with the real mh-list,
posts sent over real SMTP (smtplib), and readers for what came out: the runner's
per-recipient log lines, the peer's transactions, Maildirs, the archive, the queue.

The list processor's log detail (spool/list_mail.h, the runner's outcome line):
  mh-serve: queue ID: to=<ml@example.org> relay=none status=sent (DETAIL)
with DETAIL "distributed as ml@example.org #N: …", "refused (REASON): error mail to
<x> queued as ID", "held for moderation as TOKEN; …", "dropped: …", "confirmation
ignored: …", "bounce counted for …; disabled: …"."""

import email
import email.policy
import os
import re
import smtplib
import time
import uuid

import mhtest
import test_outbound_relay as relay
from mhtest_mail import PASSWORD, UNTRUSTED

SERVICES = ("smtp", "submission", "pop3")
LIST = "ml@example.org"
BOUNCES = "ml+bounces@example.org"
UNSUBSCRIBE = "ml+unsubscribe@example.org"
CONFIRM_RE = re.compile(r"^ml\+confirm-([0-9a-f]{20})@example\.org$")
TOKEN_RE = re.compile(r"^[0-9a-f]{20}$")
QUEUED_RE = re.compile(r"queued as ([0-9A-Za-z]+)\s*$")

# The reasons an error mail names (SPEC §7 and the issue).
ONE_LINE = "one line mail body"
MAIL_BOMB = "mail bomb"
TOO_LARGE = "Your mail exceeds the size this mailing list allows"
TOO_LARGE_JA = "あなたのメールはこのメーリングリストが許すメールのサイズを越えています。"
NOT_MEMBER = "you are not a member of this mailing list"
REJECTED = "rejected by the moderator"


def post_message(subject="hello list", sender="carol@remote.test", to=LIST, body=None, extra="", marker=None,
                 marker_line=True):
    """(bytes with CRLF, marker): a post whose Message-ID holds a unique marker and whose
    body (by default several lines: never fml's "one line mail body") ends with the line
    "marker MARKER" unless marker_line is False (the body is then exactly `body`)."""
    marker = marker or uuid.uuid4().hex
    if body is None:
        body = ("Hello everyone,\r\n\r\nthis is a post to the list with more than one line.\r\n"
                "Regards\r\n")
    tail = f"marker {marker}\r\n" if marker_line else ""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{marker}@remote.test>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0900\r\n"
            f"{extra}\r\n{body}{tail}").encode(), marker


def parse(data):
    """A message (bytes, CRLF or LF) as email.message.EmailMessage."""
    return email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)


def text_parts(msg):
    """The decoded text/plain parts of a message, in order (str)."""
    out = []
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            out.append(part.get_content())
    return out


def header(data, name):
    """The unfolded raw value of the first `name:` field of a message (None if absent)."""
    head = data.replace(b"\r\n", b"\n").partition(b"\n\n")[0].decode("utf-8", "replace")
    m = re.search(rf"(?im)^{re.escape(name)}:[ \t]*(.*(?:\n[ \t].*)*)", head)
    return re.sub(r"\n[ \t]+", " ", m.group(1)).strip() if m else None


class ListCase(relay.OutboundCase):
    """mh-serve (smtp, submission, pop3) relaying through an aiosmtpd peer (self.peer);
    alice@ and bob@example.org exist (example.org is hosted); *@remote.test is remote."""

    def setUp(self):
        super().setUp()
        self.peer = relay.ScriptedHandler(later_refusals=0)
        self.start_aiosmtpd(self.peer)

    def start(self, extra=""):
        self.start_mail_server(self.relay_config(extra=extra), services=SERVICES)

    # --- mh-list --------------------------------------------------------------------

    def mhlist(self, *args, expect=0, stdin=None):
        r = self.run_tool("mh-list", *args, stdin=stdin)
        if expect is not None:
            self.assertExit(r, expect, f"mh-list {' '.join(args)}: {r!r}")
        return r

    def make_list(self, address=LIST, members=(), moderators=(), policy=None, admin=None, max_size=None,
                  subject_tag=None, bomb=None, bomb_block=None):
        """A list made with the real mh-list (create, set, members add, moderators add)."""
        args = ["create", address]
        if policy:
            args += ["--policy", policy]
        if admin is not None:
            args += ["--admin", admin]
        if max_size:
            args += ["--max-size", max_size]
        self.mhlist(*args)
        settings = []
        if subject_tag is not None:
            settings += ["--subject-tag", subject_tag]
        if bomb:
            settings += ["--bomb", bomb]
        if bomb_block:
            settings += ["--bomb-block", bomb_block]
        if settings:
            self.mhlist("set", address, *settings)
        if members:
            self.mhlist("members", "add", address, stdin="".join(m + "\n" for m in members))
        if moderators:
            self.mhlist("moderators", "add", address, *moderators)

    def members(self, address=LIST):
        """{address: member record} from `mh-list members list --json`."""
        r = self.mhlist("members", "list", address, "--json")
        return {m["address"]: m for m in r.json()["members"]}

    def pending(self, address=LIST):
        return self.mhlist("pending", address, "--json").json()["pending"]

    def list_dir(self, *parts, address=LIST):
        name, domain = address.split("@")
        return self.path("domains", domain, "lists", name, *parts)

    def archive_file(self, seq, address=LIST):
        return self.list_dir("archive", "new", f"{seq:08d}", address=address)

    def seq(self, address=LIST):
        """The list's `seq` file (the last number given out); 0 while it does not exist."""
        try:
            with open(self.list_dir("seq", address=address)) as f:
                return int(f.read().strip() or 0)
        except FileNotFoundError:
            return 0

    def archived(self, address=LIST):
        """Names in the archive's new/ and cur/ (sorted)."""
        out = []
        for sub in ("new", "cur"):
            d = self.list_dir("archive", sub, address=address)
            if os.path.isdir(d):
                out += os.listdir(d)
        return sorted(out)

    # --- sending ----------------------------------------------------------------------

    def post(self, data, sender="carol@remote.test", rcpts=(LIST,), expect=250, mail_options=()):
        """One message over plain SMTP from 127.0.0.1 (trusted, unauthenticated), as a
        remote MTA delivers to the list; every RCPT must get 250. Returns the queue id."""
        s = smtplib.SMTP("127.0.0.1", self.ports["smtp"], local_hostname="mx.remote.test", timeout=60)
        try:
            s.ehlo()
            code, text = s.mail(sender or "<>", list(mail_options))
            self.assertEqual(code, 250, text)
            for r in rcpts:
                code, text = s.rcpt(r)
                self.assertEqual(code, 250, f"RCPT {r}: {code} {text!r}")
            code, text = s.data(data)
            text = text.decode()
            self.assertEqual(code, expect, text)
            s.quit()
        finally:
            s.close()
        m = QUEUED_RE.search(text)
        self.assertIsNotNone(m, f"not a 'queued as' reply: {text}")
        return m.group(1)

    def submit_as(self, login, data, rcpts=(LIST,)):
        """A post by a local account over submission (STARTTLS + AUTH); the queue id."""
        s = self.smtplib_client("submission", source=UNTRUSTED)
        self.assertEqual(s.login(login, PASSWORD)[0], 235)
        self.assertEqual(s.mail(login)[0], 250)
        for r in rcpts:
            code, text = s.rcpt(r)
            self.assertEqual(code, 250, f"RCPT {r}: {code} {text!r}")
        code, text = s.data(data)
        text = text.decode()
        s.quit()
        self.assertEqual(code, 250, text)
        return QUEUED_RE.search(text).group(1)

    # --- observing --------------------------------------------------------------------

    def list_outcome(self, qid, rcpt=LIST, timeout=20):
        """The runner's final outcome line for `rcpt` of entry `qid` (waits for a sent or
        bounced one; a deferred one fails the test with the log)."""
        def find():
            for o in self.outcomes(qid):
                if o["rcpt"] == rcpt and o["status"] in ("sent", "bounced"):
                    return o
                if o["rcpt"] == rcpt and o["status"] == "deferred":
                    self.fail(f"list processing deferred: {o}\n{self.log()}")
            return None
        return self.wait_until(find, timeout, f"the outcome of {qid} to <{rcpt}>")

    def detail(self, qid, rcpt=LIST, timeout=20):
        o = self.list_outcome(qid, rcpt, timeout)
        self.assertEqual(o["status"], "sent", o)
        self.assertEqual(o["relay"], "none", o)
        return o["reply"]

    def at_peer(self, address):
        return [t for t in self.peer.transactions if address in t["to"]]

    def wait_peer(self, address, n=1, timeout=20):
        self.wait_until(lambda: len(self.at_peer(address)) >= n, timeout, f"{n} message(s) for {address} at the peer")
        return self.at_peer(address)

    def quiet(self, seconds=1.5):
        """Nothing more reaches the peer for a while (the runner acts within 1 s)."""
        before = len(self.peer.transactions)
        time.sleep(seconds)
        self.assertEqual(len(self.peer.transactions), before, self.peer.transactions[before:])

    def maildir_all(self, address):
        """[(sub, name, bytes)] of every file in new/ and cur/ of an account."""
        out = []
        for name, (sub, data) in sorted(self.maildir_files(address).items()):
            out.append((sub, name, data))
        return out

    def with_marker(self, address, marker):
        return [d for _, _, d in self.maildir_all(address) if f"marker {marker}".encode() in d]

    def settle(self, timeout=20):
        """Queue empty, then nothing more at the peer for a while."""
        self.wait_queue_empty(timeout)
        self.quiet()
        self.assertEqual(self.queue_ids(), [])

    # --- checks -----------------------------------------------------------------------

    def assertErrorMail(self, data, poster, reason, marker, extra_texts=()):
        """`data` (bytes) is the list's error mail to `poster` naming `reason` (in its
        Subject and its decoded text), with the post's header (its Message-ID) returned
        and never the post's body; returns the parsed message."""
        msg = parse(data)
        self.assertEqual(msg.defects, [], data[:500])
        self.assertIn(poster.lower(), str(msg["To"]).lower())
        self.assertIn(reason, str(msg["Subject"]), msg["Subject"])
        self.assertEqual(str(msg["Auto-Submitted"]).strip(), "auto-replied")
        texts = "\n".join(text_parts(msg))
        self.assertIn(reason, texts)
        for t in extra_texts:
            self.assertIn(t, texts)
        self.assertIn(f"<{marker}@remote.test>", data.decode("utf-8", "replace"), "the post's header is not returned")
        self.assertNotIn(f"marker {marker}", data.decode("utf-8", "replace"), "the error mail returns the post's body")
        return msg

    def assertDistributed(self, data, seq, subject, marker, name="ml", domain="example.org"):
        """A distributed copy: tagged Subject and the list's headers."""
        self.assertEqual(header(data, "Subject"), subject)
        self.assertEqual(header(data, "X-ML-Name"), name)
        self.assertEqual(header(data, "X-Mail-Count"), str(seq))
        self.assertEqual(header(data, "List-Id"), f"<{name}.{domain}>")
        self.assertEqual(header(data, "List-Post"), f"<mailto:{name}@{domain}>")
        self.assertEqual(header(data, "List-Unsubscribe"), f"<mailto:{name}+unsubscribe@{domain}>")
        self.assertEqual(header(data, "Precedence"), "list")
        self.assertIn(f"marker {marker}".encode(), data)
        head = data.replace(b"\r\n", b"\n").partition(b"\n\n")[0].decode("latin-1")
        for field in ("X-ML-Name", "X-Mail-Count", "List-Id", "List-Post", "List-Unsubscribe", "Precedence",
                      "Subject"):
            self.assertEqual(len(re.findall(rf"(?im)^{field}:", head)), 1, f"{field} not exactly once:\n{head}")


def make_dsn(member, reporting="mx.remote.test", bounces=BOUNCES, marker=None):
    """A hand-made RFC 3464 report of a permanent failure for `member` (bytes, CRLF)."""
    marker = marker or uuid.uuid4().hex
    boundary = "dsn-" + marker
    return (f"From: Mail Delivery System <MAILER-DAEMON@{reporting}>\r\n"
            f"To: <{bounces}>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: <{marker}@{reporting}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
            f"Your message could not be delivered to <{member}>.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; {reporting}\r\nArrival-Date: Sun, 06 Dec 2026 10:00:00 +0900\r\n\r\n"
            f"Final-Recipient: rfc822; {member}\r\nOriginal-Recipient: rfc822; {member}\r\nAction: failed\r\n"
            f"Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <{member}>: Recipient address rejected\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"From: <carol@remote.test>\r\nTo: <{LIST}>\r\nSubject: [ml:00001] hello\r\n\r\n"
            f"--{boundary}--\r\n").encode()


def copy_account_template(spool, template_address, addresses):
    """Makes accounts `addresses` (same domain as the template) as copies of the account
    directory `mh-user add` wrote for `template_address`: account.yaml (with its yescrypt
    hash), Maildir/{tmp,new,cur} and maildirsize, modes kept. mh-user writes nothing
    per-account anywhere else (checked by the callers with `mh-user list DOMAIN`); the
    name lives only in the directory's name."""
    import shutil
    local, domain = template_address.split("@")
    accounts = os.path.join(spool, "domains", domain, "accounts")
    src = os.path.join(accounts, local)
    for a in addresses:
        l, d = a.split("@")
        assert d == domain, a
        shutil.copytree(src, os.path.join(accounts, l), symlinks=True)


def main():
    mhtest.main()
