"""Shared plumbing for the outbound end-to-end tests (tests/cli/test_outbound_*.py):
mh-serve delivering its queue by MX to real peers on loopback.

  * DNS: dnsmasq (dnsfixture.DnsFixture) with the test's own zone lines (MX, A, null MX).
  * MX hosts: Postfix's smtp-sink (SmtpSink, every transaction dumped to a file),
    aiosmtpd (RecordingPeer: in-process, can hold or slow down DATA and counts its
    concurrent sessions), and raw sockets that misbehave (HostilePeer: a 10 MB reply
    line, silence, a reply trickled byte by byte).
  * OutboundCase: a MailTestCase whose mh-serve (SMTP listener only) delivers by MX to
    `outbound.port` on 127.0.0.2, .3 …; mail is queued by alice@example.org over
    AUTH PLAIN from 127.0.0.1 (allowed without TLS by auth.allow_plaintext's default).

Every peer is stopped when its test ends (also on failure); the external ones
(smtp-sink, dnsmasq) also die with the test process (PR_SET_PDEATHSIG)."""

import asyncio
import ctypes
import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

from mhtest_mail import PASSWORD, MailTestCase
from dnsfixture import DnsFixture

try:
    import aiosmtpd  # noqa: F401
except ImportError:
    # Debian's python3-aiosmtpd, when the python3 running the tests is another build
    # of the same version (pyenv): the package is pure Python.
    sys.path.append("/usr/lib/python3/dist-packages")
try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP as AioSMTP
except ImportError:  # reported by the tests that need it (RecordingPeer)
    Controller = AioSMTP = None

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SENDER = "alice@example.org"          # a local account: its DSNs land in its Maildir
QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-Za-z]+)$")


def die_with_parent():
    """preexec_fn: SIGTERM the child when the test process goes away. Runs after
    Popen's user=/group= switch, so it stays armed in an unprivileged child."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def port_free_on(ips, tries=200):
    """A TCP port that was free on every address in `ips` a moment ago."""
    for _ in range(tries):
        with socket.socket() as s:
            s.bind((ips[0], 0))
            port = s.getsockname()[1]
        ok = True
        for ip in ips:
            with socket.socket() as s:
                try:
                    s.bind((ip, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError(f"no port free on all of {ips}")


def wait_for(predicate, timeout, step=0.05, what="condition"):
    """Polls `predicate` until it returns something true (returned) or `timeout` passes
    (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def greeting_ok(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout) as s:
            data = s.recv(512)
            s.sendall(b"QUIT\r\n")
            return data.startswith(b"220")
    except OSError:
        return False


class SinkMessage:
    """One transaction a peer accepted: envelope and the message as parsed."""

    def __init__(self, mail_from, rcpts, content):
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.content = content
        self.message = email.message_from_bytes(content, policy=email.policy.compat32)

    @property
    def message_id(self):
        return (self.message.get("Message-ID") or "").strip()

    @property
    def subject(self):
        return (self.message.get("Subject") or "").strip()

    def __repr__(self):
        return f"SinkMessage(from={self.mail_from!r}, rcpts={self.rcpts!r}, id={self.message_id!r})"


class SmtpSink:
    """Postfix's smtp-sink on ip:port, every mail transaction dumped to a file of its
    own (-d). Unprivileged (nobody), so no -u is needed and PDEATHSIG stays armed."""

    def __init__(self, ip, port, args=()):
        self.ip, self.port = ip, port
        # Its own directory outside the test's (mode 0700) temp dir: smtp-sink runs as
        # nobody and must reach it. Removed at stop().
        self.dir = tempfile.mkdtemp(prefix=f"mhsink-{ip}-")
        self.dump = os.path.join(self.dir, "dump")
        os.mkdir(self.dump)
        os.chmod(self.dir, 0o777)
        os.chmod(self.dump, 0o777)
        self.log_path = os.path.join(self.dir, "sink.log")
        kw = {}
        if os.geteuid() == 0:
            kw = {"user": "nobody", "group": "nogroup"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [SMTP_SINK, "-h", f"sink-{ip}", "-d", self.dump + "/%Y%m%d%H%M%S.", *args, f"{ip}:{port}", "256"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent, **kw)
        try:
            wait_for(lambda: self.proc.poll() is not None or greeting_ok(ip, port), 10, what=f"smtp-sink on {ip}:{port}")
            if self.proc.poll() is not None:
                raise RuntimeError(f"smtp-sink on {ip}:{port} exited {self.proc.returncode}: {self.log()}")
        except BaseException:
            self.stop()
            raise

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def messages(self):
        """Every dumped transaction, oldest first (the dump's own headers parsed)."""
        out = []
        for name in sorted(os.listdir(self.dump)):
            with open(os.path.join(self.dump, name), "rb") as f:
                data = f.read()
            mail_from, rcpts = None, []
            lines = data.split(b"\n")
            i = 0
            while i < len(lines) and lines[i].startswith(b"X-"):
                key, _, value = lines[i].decode("latin-1").partition(": ")
                if key == "X-Mail-Args":
                    mail_from = value.split()[0].strip("<>") if value.split() else ""
                elif key == "X-Rcpt-Args":
                    rcpts.append(value.split()[0].strip("<>"))
                i += 1
            # smtp-sink's own Received: (three lines), then the message, then an empty line.
            if i < len(lines) and lines[i].startswith(b"Received: ") and "smtp-sink" in "".join(
                    l.decode("latin-1") for l in lines[i:i + 3]):
                i += 1
                while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                    i += 1
            out.append(SinkMessage(mail_from, rcpts, b"\n".join(lines[i:])))
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RecordingPeer:
    """An aiosmtpd server on ip:port (its own event loop thread) that records every
    message it accepts, counts its concurrent sessions (max_sessions; libcurl keeps idle
    connections open, so these are not all transfers) and transfers in DATA
    (max_in_data), and can hold
    each DATA until `gate` is set and/or sleep `data_delay` seconds before its 250."""

    def __init__(self, ip, port, data_delay=0.0, gate=None, hold_limit=60.0, answer_quit=True):
        if Controller is None:
            raise AssertionError("python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd; "
                                 "scripts/install-deps.sh --with-tests should list it)")
        self.ip, self.port = ip, port
        self.data_delay = data_delay
        self.gate = gate
        self.hold_limit = hold_limit
        self.answer_quit = answer_quit  # False: QUIT is never answered (for hold_limit seconds)
        self.lock = threading.Lock()
        self.received = []          # SinkMessage, in order of acceptance
        self.sessions = 0
        self.max_sessions = 0
        self.in_data = 0            # transfers inside DATA now (message in, our 250 not yet sent)
        self.max_in_data = 0
        self.connections = 0
        self.quits_ignored = 0
        peer = self

        class CountingSMTP(AioSMTP):
            def connection_made(self, transport):
                with peer.lock:
                    peer.sessions += 1
                    peer.connections += 1
                    peer.max_sessions = max(peer.max_sessions, peer.sessions)
                super().connection_made(transport)

            def connection_lost(self, exc):
                with peer.lock:
                    peer.sessions -= 1
                super().connection_lost(exc)

            async def smtp_QUIT(self, arg):
                if not peer.answer_quit:
                    with peer.lock:
                        peer.quits_ignored += 1
                    await asyncio.sleep(peer.hold_limit)
                return await super().smtp_QUIT(arg)

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with peer.lock:
                    peer.in_data += 1
                    peer.max_in_data = max(peer.max_in_data, peer.in_data)
                try:
                    if peer.gate is not None:
                        deadline = time.monotonic() + peer.hold_limit
                        while not peer.gate.is_set() and time.monotonic() < deadline:
                            await asyncio.sleep(0.02)
                    if peer.data_delay:
                        await asyncio.sleep(peer.data_delay)
                finally:
                    with peer.lock:
                        peer.in_data -= 1
                msg = SinkMessage(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or
                                  envelope.content)
                with peer.lock:
                    peer.received.append(msg)
                return "250 2.0.0 Ok: recorded"

        class PeerController(Controller):
            def factory(self):
                return CountingSMTP(self.handler, hostname=f"peer-{ip}", timeout=60)

        self.controller = PeerController(Handler(), hostname=ip, port=port, ready_timeout=10)
        self.controller.start()

    def messages(self):
        with self.lock:
            return list(self.received)

    def stop(self):
        if self.gate is not None:
            self.gate.set()
        try:
            self.controller.stop()
        except Exception:
            pass


class HostilePeer:
    """A TCP server on ip:port that misbehaves in one of these ways, on every connection:
      huge_greeting  sends "220 " and 10 MB without a line end, then nothing
      huge_final     a normal dialogue up to the end of the data, then "250 " and 10 MB
                     without a line end, then nothing
      silent         accepts and never says a word
      trickle        sends "220 " then one byte every 0.3 s, forever
    It reads (and discards) whatever the client sends. Connections end when the client
    closes them or the peer is stopped."""

    HUGE = 10 * 1024 * 1024

    def __init__(self, ip, port, mode):
        self.ip, self.port, self.mode = ip, port, mode
        self.connections = 0
        self.bytes_sent = 0
        self.stopping = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.threads = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _send(self, conn, data):
        view = memoryview(data)
        while view and not self.stopping.is_set():
            try:
                n = conn.send(view[:65536])
            except socket.timeout:
                continue
            self.bytes_sent += n
            view = view[n:]

    def _line(self, conn, buf):
        while b"\n" not in buf[0]:
            if self.stopping.is_set():
                raise OSError("stopping")
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise OSError("closed")
            buf[0] += chunk
        line, buf[0] = buf[0].split(b"\n", 1)
        return line.rstrip(b"\r")

    def _drain(self, conn):
        while not self.stopping.is_set():
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue

    def _serve(self, conn):
        conn.settimeout(0.2)
        try:
            if self.mode == "silent":
                self._drain(conn)
            elif self.mode == "huge_greeting":
                self._send(conn, b"220 " + b"x" * self.HUGE)
                self._drain(conn)
            elif self.mode == "trickle":
                self._send(conn, b"220 ")
                while not self.stopping.is_set():
                    try:
                        conn.send(b"x")
                        self.bytes_sent += 1
                        if conn.recv(65536, socket.MSG_DONTWAIT) == b"":
                            return
                    except (BlockingIOError, socket.timeout):
                        pass
                    time.sleep(0.3)
            elif self.mode == "huge_final":
                buf = [b""]
                self._send(conn, b"220 hostile ESMTP\r\n")
                while True:
                    cmd = self._line(conn, buf).upper()
                    if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                        self._send(conn, b"250 hostile\r\n")
                    elif cmd.startswith(b"DATA"):
                        self._send(conn, b"354 go ahead\r\n")
                        while self._line(conn, buf) != b".":
                            pass
                        self._send(conn, b"250 " + b"x" * self.HUGE)
                        self._drain(conn)
                        return
                    elif cmd.startswith(b"QUIT"):
                        self._send(conn, b"221 bye\r\n")
                        return
                    else:
                        self._send(conn, b"250 ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.sock.close()
        self.accepter.join(5)
        for t in self.threads:
            t.join(5)


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def outbound_config(dns_server, port, **outbound):
    """mailhost.yaml lines for delivery by MX (no relay) with the brief's settings;
    keyword arguments override outbound keys (timeout="2s", per_destination=2 …)."""
    settings = {"port": port, "concurrency": 20, "per_destination": 10, "retry": "[1s, 2s]", "give_up": "5d",
                "timeout": "5m", "connect_timeout": "2s"}
    settings.update(outbound)
    body = ", ".join(f"{k}: {v}" for k, v in settings.items())
    return (f'dns: {{ servers: ["{dns_server}"], timeout: 1s }}\n'
            f"outbound: {{ {body} }}\n"
            "limits: { sending_per_hour: 100000 }\n")


def make_message(subject, message_id, to="someone", body="hello from the outbound tests\r\n"):
    return (f"From: Alice <{SENDER}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
            f"\r\n{body}").encode()


class OutboundCase(MailTestCase):
    """A MailTestCase whose mh-serve delivers by MX. Peers made with sink()/peer()/
    hostile() are stopped after the test (after mh-serve)."""

    def setUp(self):
        super().setUp()
        self.peers = []
        self.addCleanup(self._stop_peers)
        if self.IPS:
            self.mx_port = port_free_on(self.IPS)

    def _stop_peers(self):
        for p in reversed(self.peers):
            try:
                p.stop()
            except Exception:
                pass
        self.peers = []

    def sink(self, ip, port, *args):
        s = SmtpSink(ip, port, args)
        self.peers.append(s)
        return s

    def peer(self, ip, port, **kw):
        p = RecordingPeer(ip, port, **kw)
        self.peers.append(p)
        return p

    def hostile(self, ip, port, mode):
        p = HostilePeer(ip, port, mode)
        self.peers.append(p)
        return p

    def start_outbound(self, dns_server, port, extra="", **outbound):
        self.start_mail_server(outbound_config(dns_server, port, **outbound) + extra, services=("smtp",))

    # --- a DNS zone of the test class's own -------------------------------------------
    # A subclass that sets ZONE (dnsmasq lines) and IPS (the loopback addresses its MX
    # hosts listen on) gets one dnsmasq for the class, a port free on every one of IPS
    # (self.mx_port), and start() for mh-serve delivering by MX through that DNS.
    ZONE = None
    IPS = ()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.ZONE is not None:
            cls.dns = DnsFixture(cls.ZONE)
            cls.dns.__enter__()

    @classmethod
    def tearDownClass(cls):
        if cls.ZONE is not None:
            cls.dns.close()
        super().tearDownClass()

    def start(self, **outbound):
        self.start_outbound(self.dns.server, self.mx_port, **outbound)

    # --- queueing mail -------------------------------------------------------------

    def submitter(self):
        """An smtplib client logged in as alice@example.org on the SMTP port."""
        s = self.smtplib_client("smtp", starttls=False)
        s.login(SENDER, PASSWORD)
        return s

    def submit_on(self, s, rcpts, message, sender=SENDER):
        """One transaction on an open client; returns the queue id of the 250 reply."""
        code, text = s.mail(sender)
        self.assertEqual(code, 250, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            self.assertEqual(code, 250, f"RCPT {r}: {text}")
        code, text = s.data(message)
        text = text.decode()
        self.assertEqual(code, 250, text)
        m = QUEUED_RE.match(text)
        self.assertIsNotNone(m, f"not a 'queued as' reply: {code} {text}")
        return m.group(1)

    def submit(self, rcpts, message, sender=SENDER):
        s = self.submitter()
        try:
            qid = self.submit_on(s, rcpts, message, sender)
            s.quit()
        finally:
            s.close()
        return qid

    # --- the queue and the log -----------------------------------------------------

    def queue_files(self):
        """Names of the entry files in SPOOL/queue/ (.msg, .env; not tmp/ or corrupt/)."""
        q = self.path("queue")
        if not os.path.isdir(q):
            return []
        return sorted(n for n in os.listdir(q) if n.endswith((".msg", ".env")))

    def queue_ids(self):
        return sorted({n[:-4] for n in self.queue_files()})

    def read_env(self, qid):
        env = {"recipient": []}
        with open(self.path("queue", qid + ".env")) as f:
            for line in f.read().splitlines():
                key, _, value = line.partition(": ")
                if key == "recipient":
                    env["recipient"].append(value)
                else:
                    env[key] = value
        return env

    def log_lines(self, qid=None):
        """mh-serve's log lines, only those of queue entry `qid` when given."""
        lines = self.log().splitlines()
        if qid is not None:
            lines = [l for l in lines if l.startswith(f"mh-serve: queue {qid}: ")]
        return lines

    def wait_log_re(self, pattern, timeout=15):
        """The first match of `pattern` (regex, searched line by line) in the log."""
        rx = re.compile(pattern)

        def find():
            for line in self.log().splitlines():
                m = rx.search(line)
                if m:
                    return m
            return None
        try:
            return wait_for(find, timeout, what=f"log line /{pattern}/")
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log ---\n{self.log()}") from None

    def status_lines(self, qid, status=None):
        """(recipient, relay, status, reply) of each delivery log line of `qid`."""
        rx = re.compile(rf"^mh-serve: queue {qid}: to=<([^>]*)> relay=(\S+) status=(sent|deferred|bounced) \((.*)\)$")
        out = []
        for line in self.log_lines(qid):
            m = rx.match(line)
            if m and (status is None or m.group(3) == status):
                out.append(m.groups())
        return out

    def wait_queue_empty(self, timeout=15):
        try:
            wait_for(lambda: not self.queue_files(), timeout, what="an empty queue")
        except AssertionError as e:
            raise AssertionError(f"{e}: {self.queue_files()[:10]}\n--- log ---\n{self.log()}") from None

    def maildir_new(self, address):
        d = self.maildir(address)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def dsn_messages(self, address=SENDER):
        """The parsed messages in `address`'s Maildir/new."""
        out = []
        for name in self.maildir_new(address):
            with open(os.path.join(self.maildir(address), name), "rb") as f:
                out.append(email.message_from_bytes(f.read(), policy=email.policy.compat32))
        return out

    def assertDsn(self, dsn, recipients, status_prefix="5."):
        """`dsn` is an RFC 3464 report of permanent failure for exactly `recipients`;
        returns {recipient: per-recipient fields}."""
        self.assertEqual(dsn.get_content_type(), "multipart/report", dsn.as_string()[:2000])
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        parts = dsn.get_payload()
        types = [p.get_content_type() for p in parts]
        self.assertIn("message/delivery-status", types, types)
        status_part = parts[types.index("message/delivery-status")]
        blocks = status_part.get_payload()  # [per-message fields, per-recipient fields …]
        self.assertGreaterEqual(len(blocks), 2, status_part.as_string())
        self.assertIn("Reporting-MTA", blocks[0])
        found = {}
        for b in blocks[1:]:
            kind, _, addr = (b.get("Final-Recipient") or "").partition(";")
            self.assertEqual(kind.strip().lower(), "rfc822", b.as_string())
            found[addr.strip()] = b
            self.assertEqual(b.get("Action", "").strip().lower(), "failed", b.as_string())
            status = b.get("Status", "").strip()
            self.assertRegex(status, r"^5\.\d{1,3}\.\d{1,3}$")
            self.assertTrue(status.startswith(status_prefix), f"Status {status}, wanted {status_prefix}…")
        self.assertEqual(sorted(found), sorted(recipients))
        return found
