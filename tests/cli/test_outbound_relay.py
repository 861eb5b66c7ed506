"""End-to-end outbound delivery (SPEC §8 "Outbound") through mh-serve's queue runner
to REAL peers on loopback: Postfix's smtp-sink (dumps every transaction to a file, logs
the commands it got with -v) and aiosmtpd (python3-aiosmtpd: per-recipient replies,
STARTTLS with a self-signed certificate made here). Each test has its own spool, its own
mh-serve (smtp + submission on free ports, relay.host = the peer) and its own peers; all
are stopped when the test ends, also when it fails.

What is checked: authenticated mail is queued ("queued as ID" = the queue entry and the
ID in the log), relayed exactly once per recipient, retried on 4xx / connection failure
(outbound.retry), bounced at once on 5xx and after outbound.give_up with one RFC 3464
DSN to the sender (into the Maildir when the sender is local, through the relay with
the null sender otherwise), never a DSN for a null-sender message, relay.tls
required / opportunistic / none, local recipients never through the relay, and the
over-quota-after-DATA DSN (552 5.2.2)."""

import ctypes
import email
import email.policy
import os
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid

import mhtest
from mhtest_mail import PASSWORD, UNTRUSTED, MailTestCase, free_ports

try:
    import aiosmtpd.controller  # noqa: F401
except ImportError:  # pragma: no cover - depends on the interpreter ctest found
    # python3-aiosmtpd lives in Debian's dist-packages; a pyenv interpreter does not look
    # there. Appended, so nothing of the interpreter's own is shadowed.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import aiosmtpd.controller  # noqa: F401
    except ImportError:
        aiosmtpd = None
if aiosmtpd is not None:
    from aiosmtpd.controller import Controller
    import logging
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # refused commands are expected

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests"))
SERVICES = ("smtp", "submission")
SENDER = "alice@example.org"

# mh-serve's runner log lines (tools/mh-serve/outbound/runner.cc).
OUTCOME_RE = re.compile(r"^mh-serve: queue (?P<id>[0-9A-Za-z]+): to=<(?P<rcpt>[^>]*)> relay=(?P<relay>\S+) "
                        r"status=(?P<status>sent|deferred|bounced) \((?P<reply>.*)\)$", re.M)
DSN_RE = re.compile(r"^mh-serve: queue (?P<id>[0-9A-Za-z]+): DSN (?P<dsn>[0-9A-Za-z]+) queued to <(?P<to>[^>]*)> "
                    r"for (?P<n>\d+) recipient\(s\)$", re.M)
NO_DSN_RE = re.compile(r"^mh-serve: queue (?P<id>[0-9A-Za-z]+): no DSN for (?P<n>\d+) failed recipient\(s\): "
                       r"the message has the null sender", re.M)
QUEUED_AS_RE = re.compile(r"queued as ([0-9A-Za-z]+)\s*$")


def _die_with_parent():
    """preexec_fn: a peer gets SIGTERM if the test process dies without cleaning up."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def wait_port(port, timeout=10):
    """Until something accepts on 127.0.0.1:port (and greets, for an SMTP server)."""
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.recv(1)
                return
        except OSError:
            if time.time() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.05)


def message(subject, marker, sender=SENDER, to="someone@remote.test", extra_body=""):
    """A small message (bytes, CRLF) whose body carries a unique marker."""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{marker}@example.org>\r\n\r\n"
            f"body of {subject}\r\nmarker {marker}\r\n{extra_body}").encode()


# --- peers ----------------------------------------------------------------------------

class Sink:
    """Postfix's smtp-sink on 127.0.0.1:port: each transaction dumped to a file in
    `dir` (envelope as X-Mail-Args / X-Rcpt-Args, then the message), the commands it
    received logged (-v) to a file."""

    def __init__(self, tmp, port, name="sink", extra=()):
        self.port = port
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.logfile = os.path.join(tmp, name + ".log")
        user = pwd.getpwuid(os.getuid()).pw_name
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen([SMTP_SINK, "-v", "-u", user, "-h", "relay.test", *extra,
                                          "-d", os.path.join(self.dir, "%M."), f"127.0.0.1:{port}", "100"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=_die_with_parent)
        try:
            wait_port(port)
        except AssertionError:
            self.stop()
            raise AssertionError(f"smtp-sink did not start: {self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def commands(self):
        """The SMTP command lines received, in order (from the -v log)."""
        out = []
        for line in self.log().splitlines():
            text = line.partition("smtp-sink: ")[2]
            if re.match(r"^(HELO|EHLO|MAIL|RCPT|DATA|\.$|QUIT|RSET|STARTTLS|NOOP|AUTH|XCLIENT|XFORWARD)", text,
                        re.I):
                out.append(text)
        return out

    def messages(self):
        """[{"from": sender, "to": [recipients], "helo": ..., "data": bytes}] for every
        complete dump file."""
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), "rb") as f:
                raw = f.read()
            lines = raw.split(b"\n")
            rec = {"from": None, "to": [], "helo": None, "file": name}
            i = 0
            while i < len(lines) and not lines[i].startswith(b"Received: "):
                key, _, value = lines[i].decode("latin-1").partition(": ")
                if key == "X-Mail-Args":
                    rec["from"] = value.split(" ")[0]
                elif key == "X-Rcpt-Args":
                    rec["to"].append(value.split(" ")[0])
                elif key == "X-Helo-Args":
                    rec["helo"] = value
                i += 1
            i += 1  # the Received line smtp-sink adds, and its continuation lines
            while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                i += 1
            rec["data"] = b"\n".join(lines[i:])
            out.append(rec)
        return out


class ScriptedHandler:
    """aiosmtpd handler: RCPT answers by local part (bad → 550, later → 451 the first
    `later_refusals` times, anything else 250), every command and accepted transaction
    recorded (appends only, from the server's one thread)."""

    BAD_REPLY = "550 5.1.1 <{}>: Recipient address rejected: User unknown in relay recipient table"
    LATER_REPLY = "451 4.7.1 <{}>: Recipient address rejected: Greylisted, try again later"

    def __init__(self, later_refusals=1):
        self.later_left = later_refusals
        self.events = []        # ("EHLO", name) / ("MAIL", addr, tls) / ("RCPT", addr, reply) / ("STARTTLS",)
        self.transactions = []  # {"from", "to", "data", "tls", "tls_version"}
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.events.append(("EHLO", hostname, session.ssl is not None))
        return responses

    def handle_STARTTLS(self, server, session, envelope):  # aiosmtpd calls this one without await
        self.events.append(("STARTTLS",))
        return True

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.events.append(("MAIL", address, session.ssl is not None))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rpartition("@")[0].lower()
        if local == "bad":
            reply = self.BAD_REPLY.format(address)
        elif local == "later" and self.later_left > 0:
            self.later_left -= 1
            reply = self.LATER_REPLY.format(address)
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 2.1.5 Ok"
        self.events.append(("RCPT", address, reply))
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        ssl_object = session.ssl.get("ssl_object") if session.ssl else None
        sender = envelope.mail_from
        self.transactions.append({
            "from": "" if sender in ("<>", "") else sender,
            "to": list(envelope.rcpt_tos),
            "data": envelope.original_content if envelope.original_content is not None else envelope.content,
            "tls": session.ssl is not None,
            "tls_version": ssl_object.version() if ssl_object else None,
        })
        return f"250 2.0.0 Ok: queued as RELAY{self.count}"

    def received_by(self, address):
        return [t for t in self.transactions if address in t["to"]]


# --- the test case base ---------------------------------------------------------------

class OutboundCase(MailTestCase):
    """A MailTestCase whose mh-serve relays through a peer of the test's own. alice@ and
    bob@example.org exist (example.org is local); *@remote.test is not local."""

    def setUp(self):
        super().setUp()
        [self.relay_port] = free_ports(1)

    # peers

    def start_sink(self, port=None, name="sink", extra=()):
        if not os.path.exists(SMTP_SINK):
            self.fail("smtp-sink (postfix) is not installed: run scripts/install-deps.sh --with-tests")
        sink = Sink(self.tmp, port or self.relay_port, name, extra)
        self.addCleanup(sink.stop)
        return sink

    def start_aiosmtpd(self, handler, port=None, tls=False, require_starttls=False):
        if aiosmtpd is None:
            self.fail("python3-aiosmtpd is not installed: run scripts/install-deps.sh --with-tests")
        kw = {}
        if tls:
            kw["tls_context"] = self.relay_tls_context()
            kw["require_starttls"] = require_starttls
        controller = Controller(handler, hostname="127.0.0.1", port=port or self.relay_port,
                                server_hostname="relay.test", ready_timeout=10, **kw)
        controller.start()
        self.addCleanup(controller.stop)
        return controller

    def relay_tls_context(self):
        """A server context with a self-signed certificate made here with openssl."""
        cert, key = os.path.join(self.tmp, "relay-cert.pem"), os.path.join(self.tmp, "relay-key.pem")
        if not os.path.exists(cert):
            proc = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                                   "-days", "2", "-subj", "/CN=relay.test"], capture_output=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc.stderr)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    # the server

    def relay_config(self, tls=None, retry="[1s]", give_up="5d", extra=""):
        tls_part = f", tls: {tls}" if tls else ""
        return (f'relay: {{ host: "127.0.0.1:{self.relay_port}"{tls_part} }}\n'
                f"outbound: {{ retry: {retry}, give_up: {give_up}, timeout: 20s, connect_timeout: 5s }}\n"
                "limits: { sending_per_hour: 1000 }\n" + extra)

    def start(self, **kw):
        self.start_mail_server(self.relay_config(**kw), services=SERVICES)

    # clients

    def submit(self, rcpts, data, sender=SENDER, login=SENDER, expect=250):
        """One message over submission (STARTTLS + AUTH, from an address not allowed
        plain-text logins); every RCPT must get 250. Returns (code, reply text, queue
        id or None). No SIZE parameter, so a quota is only looked at after DATA."""
        s = self.smtplib_client("submission", source=UNTRUSTED)
        self.assertEqual(s.login(login, PASSWORD)[0], 235)
        self.assertEqual(s.mail(sender)[0], 250)
        for r in rcpts:
            self.assertEqual(s.rcpt(r), (250, b"2.1.5 Ok"), r)
        code, text = s.data(data)
        text = text.decode()
        s.quit()
        self.assertEqual(code, expect, text)
        m = QUEUED_AS_RE.search(text)
        return code, text, (m.group(1) if m else None)

    # observing

    def outcomes(self, qid=None):
        out = [m.groupdict() for m in OUTCOME_RE.finditer(self.log())]
        return [o for o in out if qid is None or o["id"] == qid]

    def dsn_lines(self, qid=None):
        out = [m.groupdict() for m in DSN_RE.finditer(self.log())]
        return [o for o in out if qid is None or o["id"] == qid]

    def wait_until(self, predicate, timeout, what):
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                self.fail(f"mh-serve exited with {self.proc.returncode} while waiting for {what}")
            if time.time() > deadline:
                self.fail(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def queue_ids(self):
        q = self.path("queue")
        if not os.path.isdir(q):
            return []
        return sorted(n[:-4] for n in os.listdir(q) if n.endswith(".env") and not n.startswith("."))

    def read_env(self, qid):
        """The entry's .env as {key: value, "recipient": [...]}, or None once it is gone."""
        env = {"recipient": [], "recipient_error": []}
        try:
            with open(self.path("queue", qid + ".env")) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key in ("recipient", "recipient_error"):
                env[key].append(value)
            else:
                env[key] = value
        return env

    def wait_queue_empty(self, timeout=20):
        """Until SPOOL/queue/ holds no entry; then nothing may be left there (no orphan
        .msg, nothing in tmp/, nothing quarantined)."""
        self.wait_until(lambda: not self.queue_ids(), timeout, "an empty queue")
        q = self.path("queue")
        # An entry is removed .env first, then .msg: give the second unlink a moment.
        left = lambda: [n for n in os.listdir(q) if n not in ("tmp", "corrupt")]  # noqa: E731
        deadline = time.time() + 2
        while left() and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(left(), [], "files left in queue/")
        for sub in ("tmp", "corrupt"):
            if os.path.isdir(os.path.join(q, sub)):
                self.assertEqual(os.listdir(os.path.join(q, sub)), [], f"files left in queue/{sub}/")

    def maildir_messages(self, address):
        return [data for _, (_, data) in sorted(self.maildir_files(address).items())]

    def write_queue_entry(self, sender, recipients, data, created=None):
        """Puts one entry into SPOOL/queue/ (only while no mh-serve runs): with libspool
        through tests/tools/mh-test-enqueue when it is built, else the way
        QueueMessage::commit() does it (format_queue_envelope() in
        libspool/src/queue.cc): .msg first, fsynced, then the .env written to a temp
        file and renamed (the commit point). Returns the id."""
        self.assertTrue(self.proc is None or self.proc.poll() is not None, "mh-serve is running")
        enqueue = os.path.join(TEST_BIN, "mh-test-enqueue")
        if os.path.exists(enqueue):
            args = [enqueue, "--spool", self.spool] + (["--sender", sender] if sender else [])  # default: <>
            if created is not None:
                args += ["--created", str(created)]
            proc = subprocess.run(args + ["--", *recipients], input=data.replace(b"\r\n", b"\n"),
                                  capture_output=True, timeout=60)
            self.assertEqual(proc.returncode, 0, proc)
            qid = proc.stdout.decode().strip()
            self.assertIn(qid, self.queue_ids())
            return qid
        now = int(time.time())
        created = now if created is None else created
        qid = (f"{now:X}{random.randrange(1 << 20):05X}P{os.getpid():X}Q{random.randrange(1, 1 << 16):X}"
               f"R{random.getrandbits(32):08X}")
        q = self.path("queue")
        os.makedirs(q, mode=0o750, exist_ok=True)
        with open(os.path.join(q, qid + ".msg"), "xb") as f:
            f.write(data.replace(b"\r\n", b"\n"))
            f.flush()
            os.fsync(f.fileno())
        env = (f"format: 1\nid: {qid}\ncreated: {created}\nsender: {sender}\nattempts: 0\n"
               f"next_attempt: {now}\n" + "".join(f"recipient: {r}\n" for r in recipients))
        tmp = os.path.join(q, f".{qid}.env.tmp.test")
        with open(tmp, "w") as f:
            f.write(env)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(q, qid + ".env"))
        fd = os.open(q, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return qid

    # checking

    def assertRelayedCopy(self, data, qid, marker):
        """A copy that left through the relay: the message, our Received naming the queue
        id, and neither the Return-Path nor the Delivered-To only a final delivery adds
        (RFC 5321 §4.4)."""
        head, _, body = data.partition(b"\n\n")
        self.assertIn(f"marker {marker}".encode(), body)
        self.assertRegex(head.decode("latin-1"), rf"with ESMTPSA id {qid}\b")
        self.assertNotRegex(head.decode("latin-1"), r"(?im)^return-path:")
        self.assertNotRegex(head.decode("latin-1"), r"(?im)^delivered-to:")

    def parse_dsn(self, raw):
        """An RFC 3464 DSN (bytes) → (message, human text, per-message fields,
        [per-recipient field blocks], returned headers text or None), checking its MIME
        structure (RFC 3462) on the way."""
        msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report", raw[:600])
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg.defects, [])
        parts = list(msg.iter_parts())
        self.assertIn(len(parts), (2, 3), [p.get_content_type() for p in parts])
        self.assertEqual(parts[0].get_content_type(), "text/plain")
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        blocks = parts[1].get_payload()
        self.assertGreaterEqual(len(blocks), 2, "no per-recipient fields")
        headers = None
        if len(parts) == 3:
            self.assertEqual(parts[2].get_content_type(), "text/rfc822-headers")
            headers = parts[2].get_content()
        self.assertIsNotNone(blocks[0]["Reporting-MTA"])
        return msg, parts[0].get_content(), blocks[0], blocks[1:], headers

    def assertDsnRecipient(self, block, recipient, status_class, diagnostic, remote_mta):
        """One per-recipient block: Final-Recipient, Action: failed, Status of the class,
        Diagnostic-Code containing `diagnostic`, Remote-MTA naming `remote_mta` (None:
        absent, no remote server answered)."""
        self.assertEqual(block["Final-Recipient"].lower(), f"rfc822; {recipient}".lower())
        self.assertEqual(block["Action"], "failed")
        self.assertRegex(block["Status"], rf"^{status_class}\.\d{{1,3}}\.\d{{1,3}}$")
        self.assertIsNotNone(block["Diagnostic-Code"], "no Diagnostic-Code")
        self.assertIn(diagnostic, block["Diagnostic-Code"])
        if remote_mta is None:
            self.assertIsNone(block["Remote-MTA"])
        else:
            self.assertIsNotNone(block["Remote-MTA"], "no Remote-MTA")
            self.assertIn(remote_mta, block["Remote-MTA"])

    def assertNullReturnPath(self, raw):
        """A DSN delivered into a Maildir: the final delivery's Return-Path is <>."""
        with self.subTest("local DSN copy has Return-Path: <>"):
            head = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0].decode("latin-1")
            self.assertRegex(head, r"(?im)^return-path:\s*<>\s*$", head)


# --- 1. the plain path: three messages through smtp-sink -----------------------------

class RelayThroughSmtpSink(OutboundCase):
    def test_three_messages_each_arrive_once(self):
        sink = self.start_sink()
        self.start()
        sent = []  # (qid, marker, recipients)
        for i, rcpts in enumerate((["one@remote.test"], ["two@remote.test", "three@other.test"],
                                   ["Four@Remote.TEST"])):
            marker = uuid.uuid4().hex
            code, text, qid = self.submit(rcpts, message(f"relay {i}", marker))
            self.assertRegex(text, r"^2\.0\.0 Ok: queued as [0-9A-Za-z]+$")
            sent.append((qid, marker, rcpts))
        self.assertEqual(len({q for q, _, _ in sent}), 3)
        self.wait_queue_empty()
        self.wait_until(lambda: len(sink.messages()) >= 3, 10, "three messages at the sink")
        time.sleep(0.5)  # nothing more may come
        got = sink.messages()
        self.assertEqual(len(got), 3, got)
        for qid, marker, rcpts in sent:
            with self.subTest(qid=qid):
                [copy] = [m for m in got if f"marker {marker}".encode() in m["data"]]
                self.assertEqual(copy["from"], f"<{SENDER}>")
                # The domain is lower-cased when queued; the local part is left alone.
                want = [r.split("@")[0] + "@" + r.split("@")[1].lower() for r in rcpts]
                self.assertEqual(copy["to"], [f"<{r}>" for r in want])
                self.assertEqual(copy["helo"], "mx.test")
                self.assertRelayedCopy(copy["data"], qid, marker)
                outcomes = self.outcomes(qid)
                self.assertEqual(sorted(o["rcpt"] for o in outcomes), sorted(want), self.log())
                for o in outcomes:
                    self.assertEqual(o["status"], "sent", o)
                    self.assertEqual(o["relay"], f"127.0.0.1:{self.relay_port}", o)
                    self.assertTrue(o["reply"].startswith("250"), o)
        self.assertEqual(self.dsn_lines(), [])
        self.assertEqual(self.maildir_messages(SENDER), [])
        self.assertEqual([c for c in sink.commands() if c.startswith("MAIL")], [f"MAIL FROM:<{SENDER}>"] * 3)


# --- 2. per-recipient replies (aiosmtpd) ---------------------------------------------

class PerRecipientReplies(OutboundCase):
    def test_550_451_250_each_handled_once(self):
        handler = ScriptedHandler(later_refusals=1)
        self.start_aiosmtpd(handler)
        self.start()
        marker = uuid.uuid4().hex
        rcpts = ["good@remote.test", "bad@remote.test", "later@remote.test"]
        _, _, qid = self.submit(rcpts, message("three fates", marker))
        self.assertTrue(qid)
        self.wait_queue_empty(timeout=20)
        # The DSN for bad@ goes into alice's own Maildir (example.org is hosted here).
        self.wait_until(lambda: self.maildir_messages(SENDER), 10, "the DSN in the sender's Maildir")
        time.sleep(2.5)  # two more retry steps: nothing else may arrive
        # good@ exactly once, later@ once (on the retry), bad@ never.
        good, later = handler.received_by("good@remote.test"), handler.received_by("later@remote.test")
        self.assertEqual(len(good), 1, handler.transactions)
        self.assertEqual(len(later), 1, handler.transactions)
        self.assertEqual(handler.received_by("bad@remote.test"), [])
        self.assertEqual(len(handler.transactions), 2, handler.transactions)
        self.assertEqual(good[0]["to"], ["good@remote.test"])   # first attempt: later@ got 451
        self.assertEqual(later[0]["to"], ["later@remote.test"])  # the retry: later@ alone
        for t in handler.transactions:
            self.assertEqual(t["from"], SENDER)
            self.assertRelayedCopy(t["data"].replace(b"\r\n", b"\n"), qid, marker)
        rcpt_events = [e for e in handler.events if e[0] == "RCPT"]
        self.assertEqual([e[1] for e in rcpt_events].count("bad@remote.test"), 1, "bad@ tried again")
        self.assertEqual([e[1] for e in rcpt_events].count("good@remote.test"), 1, "good@ tried again")
        self.assertEqual([e[1] for e in rcpt_events].count("later@remote.test"), 2)
        # The log: one line per recipient and attempt.
        by = {}
        for o in self.outcomes(qid):
            by.setdefault(o["rcpt"], []).append(o)
        relay = f"127.0.0.1:{self.relay_port}"
        self.assertEqual([o["status"] for o in by["good@remote.test"]], ["sent"])
        self.assertEqual([o["status"] for o in by["bad@remote.test"]], ["bounced"])
        self.assertIn("550 5.1.1", by["bad@remote.test"][0]["reply"])
        self.assertEqual([o["status"] for o in by["later@remote.test"]], ["deferred", "sent"])
        self.assertIn("451 4.7.1", by["later@remote.test"][0]["reply"])
        for os_ in by.values():
            for o in os_:
                self.assertEqual(o["relay"], relay, o)
        [dsn_line] = self.dsn_lines(qid)
        self.assertEqual((dsn_line["to"], dsn_line["n"]), (SENDER, "1"))
        # Exactly one DSN, delivered locally (the relay never saw it), about bad@ only.
        [raw] = self.maildir_messages(SENDER)
        self.assertTrue(all(t["from"] == SENDER for t in handler.transactions), "a DSN went through the relay")
        self.assertEqual([o["status"] for o in self.outcomes(dsn_line["dsn"])], ["sent"])
        self.assertEqual(self.outcomes(dsn_line["dsn"])[0]["relay"], "none")
        self.assertNullReturnPath(raw)
        msg, human, per_message, per_rcpt, headers = self.parse_dsn(raw)
        self.assertIn(SENDER, msg["To"])
        self.assertEqual(len(per_rcpt), 1, per_rcpt)
        self.assertDsnRecipient(per_rcpt[0], "bad@remote.test", 5, "550 5.1.1", relay)
        self.assertEqual(per_rcpt[0]["Status"], "5.1.1")
        self.assertIn("User unknown in relay recipient table", per_rcpt[0]["Diagnostic-Code"])
        self.assertIn("bad@remote.test", human)
        self.assertIn("550 5.1.1", human)
        self.assertNotIn("good@remote.test", str(per_rcpt))
        self.assertNotIn("later@remote.test", str(per_rcpt))
        self.assertIsNotNone(headers)
        self.assertIn("Subject: three fates", headers)
        self.assertNotIn(f"marker {marker}", raw.decode("latin-1"), "the DSN returned the body")

    def test_dsn_to_a_remote_sender_leaves_with_the_null_sender(self):
        """A queued message from a remote sender (as a forward would be) refused with 550:
        the DSN goes out through the relay with MAIL FROM:<>, multipart/report inside."""
        handler = ScriptedHandler()
        self.start_aiosmtpd(handler)
        marker = uuid.uuid4().hex
        qid = self.write_queue_entry("someone@remote.test", ["bad@remote.test", "good@remote.test"],
                                     message("forwarded", marker, sender="someone@remote.test"))
        self.start()
        self.wait_queue_empty()
        self.wait_until(lambda: len(handler.transactions) >= 2, 10, "the message and its DSN at the relay")
        time.sleep(1.5)
        self.assertEqual(len(handler.transactions), 2, handler.transactions)
        original, dsn = handler.transactions
        self.assertEqual((original["from"], original["to"]), ("someone@remote.test", ["good@remote.test"]))
        self.assertEqual((dsn["from"], dsn["to"]), ("", ["someone@remote.test"]))
        [line] = self.dsn_lines(qid)
        self.assertEqual(line["to"], "someone@remote.test")
        self.assertEqual([o["status"] for o in self.outcomes(line["dsn"])], ["sent"])
        msg, _, _, per_rcpt, headers = self.parse_dsn(dsn["data"])
        self.assertEqual(len(per_rcpt), 1)
        self.assertDsnRecipient(per_rcpt[0], "bad@remote.test", 5, "550 5.1.1", f"127.0.0.1:{self.relay_port}")
        self.assertIn("Subject: forwarded", headers or "")
        self.assertNotRegex(dsn["data"].decode("latin-1").partition("\r\n\r\n")[0], r"(?im)^return-path:")

    def test_null_sender_refused_for_good_gets_no_dsn(self):
        handler = ScriptedHandler()
        self.start_aiosmtpd(handler)
        marker = uuid.uuid4().hex
        qid = self.write_queue_entry("", ["bad@remote.test", "good@remote.test"],
                                     message("a bounce", marker, sender="MAILER-DAEMON@remote.test"))
        self.start()
        self.wait_queue_empty()
        self.wait_until(lambda: NO_DSN_RE.search(self.log()), 10, "the 'no DSN' log line")
        time.sleep(1.5)
        self.assertEqual(len(handler.transactions), 1, handler.transactions)
        self.assertEqual((handler.transactions[0]["from"], handler.transactions[0]["to"]), ("", ["good@remote.test"]))
        [m] = [m.groupdict() for m in NO_DSN_RE.finditer(self.log())]
        self.assertEqual((m["id"], m["n"]), (qid, "1"))
        self.assertEqual(self.dsn_lines(), [])
        self.assertEqual(self.count_all_messages(), 0)
        self.assertEqual(sorted((o["rcpt"], o["status"]) for o in self.outcomes()),
                         [("bad@remote.test", "bounced"), ("good@remote.test", "sent")])


# --- 3. the relay is down for a while -------------------------------------------------

class RelayComesBack(OutboundCase):
    def test_retried_until_the_relay_returns(self):
        self.start(retry="[1s]")
        marker = uuid.uuid4().hex
        _, _, qid = self.submit(["far@remote.test"], message("waiting", marker))
        # Queued durably: both files exist while it waits.
        self.assertTrue(os.path.isfile(self.path("queue", qid + ".msg")))
        self.assertTrue(os.path.isfile(self.path("queue", qid + ".env")))
        env = self.wait_until(lambda: (lambda e: e if e and int(e["attempts"]) >= 3 else None)(self.read_env(qid)),
                              15, "three failed attempts recorded in the .env")
        self.assertEqual(env["recipient"], ["far@remote.test"])
        self.assertEqual(env["sender"], SENDER)
        self.assertIn("last_error", env)
        self.assertRegex(env["last_error"], r"(?i)connect|refused", env)
        self.assertGreater(int(env["next_attempt"]), int(env["created"]))
        deferred = self.outcomes(qid)
        self.assertGreaterEqual(len(deferred), 3)
        self.assertTrue(all(o["status"] == "deferred" for o in deferred), deferred)
        self.assertEqual(self.dsn_lines(), [])
        # The relay comes back: delivered within a retry step or two, once.
        sink = self.start_sink()
        self.wait_queue_empty(timeout=15)
        self.wait_until(lambda: sink.messages(), 5, "the message at the sink")
        time.sleep(1.5)
        [copy] = sink.messages()
        self.assertEqual(copy["to"], ["<far@remote.test>"])
        self.assertRelayedCopy(copy["data"], qid, marker)
        self.assertEqual(self.outcomes(qid)[-1]["status"], "sent")
        self.assertEqual([o["status"] for o in self.outcomes(qid)].count("sent"), 1)
        self.assertEqual(self.dsn_lines(), [])
        self.assertEqual(self.maildir_messages(SENDER), [])


# --- 4. giving up ---------------------------------------------------------------------

class GiveUp(OutboundCase):
    def test_one_dsn_after_give_up(self):
        self.start(retry="[1s]", give_up="3s")
        marker = uuid.uuid4().hex
        _, _, qid = self.submit(["far@remote.test", "near@remote.test"], message("never arrives", marker))
        self.wait_until(lambda: self.dsn_lines(qid), 15, "the DSN after give_up")
        self.wait_queue_empty()
        self.wait_until(lambda: self.maildir_messages(SENDER), 10, "the DSN in the sender's Maildir")
        time.sleep(3)  # no second DSN may follow
        [line] = self.dsn_lines(qid)
        self.assertEqual((line["to"], line["n"]), (SENDER, "2"))
        self.assertEqual(len(self.dsn_lines()), 1, self.log())
        [raw] = self.maildir_messages(SENDER)
        self.assertNullReturnPath(raw)
        statuses = [(o["rcpt"], o["status"]) for o in self.outcomes(qid)]
        self.assertGreaterEqual(statuses.count(("far@remote.test", "deferred")), 2, statuses)
        self.assertEqual(statuses.count(("far@remote.test", "sent")), 0, statuses)
        with self.subTest("the log records each given-up recipient as bounced"):
            self.assertEqual(statuses.count(("far@remote.test", "bounced")), 1, statuses)
            self.assertEqual(statuses.count(("near@remote.test", "bounced")), 1, statuses)
            self.assertEqual(sorted(statuses[-2:]), [("far@remote.test", "bounced"), ("near@remote.test", "bounced")],
                             statuses)
        msg, human, _, per_rcpt, headers = self.parse_dsn(raw)
        self.assertEqual(sorted(b["Final-Recipient"] for b in per_rcpt),
                         ["rfc822; far@remote.test", "rfc822; near@remote.test"])
        for b in per_rcpt:
            # Nobody answered: no Remote-MTA; the reason is the connection failure.
            self.assertDsnRecipient(b, b["Final-Recipient"].split("; ")[1], "[45]", "", None)
            self.assertRegex(b["Diagnostic-Code"], r"(?i)connect|refused")
            self.assertIn("gave up", b["Diagnostic-Code"])
        self.assertIn("Subject: never arrives", headers or "")
        self.assertNotIn(f"marker {marker}", raw.decode("latin-1"), "the DSN returned the body")

    def test_null_sender_given_up_gets_no_dsn(self):
        qid = self.write_queue_entry("", ["far@remote.test"],
                                     message("a bounce", uuid.uuid4().hex, sender="MAILER-DAEMON@remote.test"))
        self.start(retry="[1s]", give_up="3s")
        self.wait_until(lambda: NO_DSN_RE.search(self.log()), 15, "the 'no DSN' log line")
        self.wait_queue_empty()
        time.sleep(2)
        [m] = [m.groupdict() for m in NO_DSN_RE.finditer(self.log())]
        self.assertEqual((m["id"], m["n"]), (qid, "1"))
        self.assertEqual(self.dsn_lines(), [])
        self.assertEqual(self.count_all_messages(), 0)
        self.assertEqual(self.queue_ids(), [])
        self.assertTrue(self.outcomes(qid), self.log())
        with self.subTest("the log records the given-up recipient as bounced"):
            self.assertEqual([o["status"] for o in self.outcomes(qid)][-1], "bounced", self.outcomes(qid))


# --- 5. relay.tls ---------------------------------------------------------------------

class RelayTls(OutboundCase):
    def test_required_without_starttls_sends_nothing_in_clear(self):
        sink = self.start_sink()  # smtp-sink offers no STARTTLS
        self.start(tls="required")
        marker = uuid.uuid4().hex
        _, _, qid = self.submit(["far@remote.test"], message("secret", marker))
        env = self.wait_until(lambda: (lambda e: e if e and int(e["attempts"]) >= 2 else None)(self.read_env(qid)),
                              15, "two refused attempts")
        self.assertEqual(env["recipient"], ["far@remote.test"])
        self.assertRegex(env.get("last_error", ""), r"(?i)tls|ssl", env)
        outcomes = self.outcomes(qid)
        self.assertTrue(outcomes and all(o["status"] == "deferred" for o in outcomes), outcomes)
        for o in outcomes:
            self.assertRegex(o["reply"], r"(?i)tls|ssl", o)
        commands = sink.commands()
        self.assertTrue(any(c.startswith("EHLO") for c in commands), sink.log())
        self.assertEqual([c for c in commands if re.match(r"(?i)^(MAIL|RCPT|DATA)", c)], [], commands)
        self.assertEqual(sink.messages(), [])
        self.assertIn(qid, self.queue_ids())
        self.assertEqual(self.dsn_lines(), [])

    def test_required_with_starttls_delivers(self):
        handler = ScriptedHandler()
        self.start_aiosmtpd(handler, tls=True, require_starttls=True)
        self.start(tls="required")
        marker = uuid.uuid4().hex
        _, _, qid = self.submit(["far@remote.test"], message("over tls", marker))
        self.wait_queue_empty()
        self.wait_until(lambda: handler.transactions, 5, "the message at the relay")
        [t] = handler.transactions
        self.assertTrue(t["tls"])
        self.assertIn(t["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(t["to"], ["far@remote.test"])
        self.assertRelayedCopy(t["data"].replace(b"\r\n", b"\n"), qid, marker)
        self.assertIn(("STARTTLS",), handler.events)
        self.assertFalse([e for e in handler.events if e[0] == "MAIL" and not e[2]], "MAIL sent in clear")
        self.assertEqual([o["status"] for o in self.outcomes(qid)], ["sent"])

    def test_opportunistic_uses_starttls_when_offered(self):
        handler = ScriptedHandler()
        self.start_aiosmtpd(handler, tls=True)
        self.start()  # relay.tls defaults to opportunistic
        _, _, qid = self.submit(["far@remote.test"], message("maybe tls", uuid.uuid4().hex))
        self.wait_queue_empty()
        self.wait_until(lambda: handler.transactions, 5, "the message at the relay")
        [t] = handler.transactions
        self.assertTrue(t["tls"], "STARTTLS was offered but not used")
        self.assertEqual([o["status"] for o in self.outcomes(qid)], ["sent"])

    def test_none_never_starts_tls(self):
        handler = ScriptedHandler()
        self.start_aiosmtpd(handler, tls=True)  # offers STARTTLS, does not insist
        self.start(tls="none")
        marker = uuid.uuid4().hex
        _, _, qid = self.submit(["far@remote.test"], message("in clear", marker))
        self.wait_queue_empty()
        self.wait_until(lambda: handler.transactions, 5, "the message at the relay")
        [t] = handler.transactions
        self.assertFalse(t["tls"])
        self.assertNotIn(("STARTTLS",), handler.events)
        self.assertRelayedCopy(t["data"].replace(b"\r\n", b"\n"), qid, marker)
        self.assertEqual([o["status"] for o in self.outcomes(qid)], ["sent"])


# --- 6. local recipients never go through the relay -----------------------------------

class LocalNeverRelayed(OutboundCase):
    def test_authenticated_mail_to_local_addresses(self):
        sink = self.start_sink()
        self.start()
        marker = uuid.uuid4().hex
        _, _, _ = self.submit(["bob@example.org"], message("local only", marker, to="bob@example.org"))
        [got] = self.maildir_messages("bob@example.org")
        self.assertIn(f"marker {marker}".encode(), got)
        # Mixed: bob@ locally, carol@ through the relay, each once.
        marker2 = uuid.uuid4().hex
        _, _, qid = self.submit(["bob@example.org", "carol@remote.test"], message("mixed", marker2))
        self.assertTrue(qid)
        self.wait_queue_empty()
        self.wait_until(lambda: sink.messages(), 10, "carol's copy at the sink")
        time.sleep(1.5)
        bobs = self.maildir_messages("bob@example.org")
        self.assertEqual(len(bobs), 2)
        self.assertEqual(sum(f"marker {marker2}".encode() in m for m in bobs), 1)
        [copy] = sink.messages()
        self.assertEqual(copy["to"], ["<carol@remote.test>"])
        self.assertRelayedCopy(copy["data"], qid, marker2)
        self.assertNotIn(marker.encode(), copy["data"])
        self.assertEqual(len([c for c in sink.commands() if c.startswith("MAIL")]), 1, sink.commands())
        self.assertEqual([o["rcpt"] for o in self.outcomes()], ["carol@remote.test"])
        self.assertEqual(self.dsn_lines(), [])


# --- 7. a local recipient over quota after DATA ---------------------------------------

class OverQuotaAfterData(OutboundCase):
    def setUp(self):
        super().setUp()
        self.add_domain("small.example", "--quota", "2K")
        self.add_account("tiny@small.example")

    def check_quota_dsn(self, reply, qid, marker, sink, subject):
        lines = reply.split("\n")
        self.assertEqual(lines[0], "2.0.0 <tiny@small.example>: Disk quota exceeded, not delivered")
        self.assertEqual(lines[-1], f"2.0.0 Ok: queued as {qid}")
        self.wait_queue_empty()
        self.wait_until(lambda: self.maildir_messages(SENDER), 10, "the DSN in the sender's Maildir")
        self.wait_until(lambda: sink.messages(), 10, "the remote copy at the sink")
        time.sleep(1.5)
        self.assertFalse([m for m in self.maildir_messages("tiny@small.example") if marker.encode() in m])
        [copy] = sink.messages()
        self.assertEqual(copy["to"], ["<far@remote.test>"])
        self.assertRelayedCopy(copy["data"], qid, marker)
        [raw] = self.maildir_messages(SENDER)
        self.assertNullReturnPath(raw)
        _, human, _, per_rcpt, headers = self.parse_dsn(raw)
        self.assertEqual(len(per_rcpt), 1, per_rcpt)
        self.assertDsnRecipient(per_rcpt[0], "tiny@small.example", 5, "552 5.2.2", None)
        self.assertEqual(per_rcpt[0]["Status"], "5.2.2")
        self.assertIn("Disk quota exceeded", per_rcpt[0]["Diagnostic-Code"])
        self.assertIn("Disk quota exceeded", human)
        self.assertIn(f"Subject: {subject}", headers or "")
        self.assertEqual([(o["rcpt"], o["status"]) for o in self.outcomes(qid)], [("far@remote.test", "sent")])

    def test_message_too_big_for_the_room_left(self):
        sink = self.start_sink()
        self.start()
        marker = uuid.uuid4().hex
        _, reply, qid = self.submit(["tiny@small.example", "far@remote.test"],
                                    message("too big", marker, extra_body="x" * 3000 + "\r\n"))
        self.check_quota_dsn(reply, qid, marker, sink, "too big")

    def test_domain_filled_between_rcpt_and_end_of_data(self):
        deliver = os.path.join(TEST_BIN, "mh-test-deliver")
        if not os.path.exists(deliver):
            self.fail(f"{deliver} is missing: build the mh-test-deliver target")
        sink = self.start_sink()
        self.start()
        s = self.smtplib_client("submission", source=UNTRUSTED)
        s.login(SENDER, PASSWORD)
        self.assertEqual(s.mail(SENDER)[0], 250)
        self.assertEqual(s.rcpt("tiny@small.example"), (250, b"2.1.5 Ok"))
        self.assertEqual(s.rcpt("far@remote.test"), (250, b"2.1.5 Ok"))
        # Someone else's mail fills the domain while this transaction is open.
        fill = b"Subject: filler\n\n" + b"f" * 1800 + b"\n"
        proc = subprocess.run([deliver, "--spool", self.spool, "tiny@small.example"], input=fill,
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        marker = uuid.uuid4().hex
        code, reply = s.data(message("after the fill", marker, extra_body="y" * 300 + "\r\n"))
        reply = reply.decode()
        s.quit()
        self.assertEqual(code, 250, reply)
        qid = QUEUED_AS_RE.search(reply).group(1)
        self.check_quota_dsn(reply, qid, marker, sink, "after the fill")
        self.assertEqual(len(self.maildir_messages("tiny@small.example")), 1)  # the filler only


if __name__ == "__main__":
    mhtest.main()
