"""Shared plumbing for the mail-service interop tests (tests/cli/test_mail_*.py,
test_pop3_*.py, test_fetchmail.py): an mh-serve of our own with all five listeners
(smtp, submission, smtps, pop3, pop3s) on free loopback ports over a private spool,
raw SMTP/POP3 clients that can switch to TLS, and real clients (smtplib, poplib) bound
to a chosen source address. Clients from 127.0.0.1 may log in without TLS
(auth.allow_plaintext's default); 127.0.0.2 plays an untrusted client.
Every server is stopped (SIGTERM, then SIGKILL) when its test ends."""

import base64
import os
import poplib
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time

from mhtest_smtp import HOST, RawClient, SmtpTestCase, server_binary

SERVICES = ("smtp", "submission", "smtps", "pop3", "pop3s")
PASSWORD = "secret-pw"  # mhtest.SpoolTestCase.add_account's default
SMTP_GREETING = f"220 {HOST} ESMTP mailhost"
POP_GREETING = "+OK mailhost POP3 ready."
QUEUED = r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]+$"
DATA_GO = "354 End data with <CR><LF>.<CR><LF>"
UNTRUSTED = "127.0.0.2"  # not in auth.allow_plaintext (default 127.0.0.1/32, ::1/128)
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_BAD = "535 5.7.8 Authentication credentials invalid"
PLAINTEXT_REFUSED = "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
CAPA_BASE = ["CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def plain(user, password, authzid=""):
    """A SASL PLAIN response (RFC 4616), base64."""
    return b64(f"{authzid}\0{user}\0{password}")


def client_tls_context(minimum=None, maximum=None):
    """A client context that takes the server's self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def free_ports(n, host="127.0.0.1"):
    """n distinct TCP ports that were free a moment ago (all held open while picking)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class MailClient(RawClient):
    """RawClient that can start TLS (implicit with tls=True, or start_tls() after a
    STARTTLS/STLS reply) and read POP3 replies."""

    def __init__(self, port, source=None, timeout=30, tls=False):
        super().__init__(port, source=source, timeout=timeout)
        self.tls = False
        if tls:
            self.start_tls()

    def start_tls(self, ctx=None):
        # Nothing may be waiting in the clear: a reply read before the handshake would be
        # one the server sent to an injected command.
        if self.buf:
            raise AssertionError(f"plaintext received before the TLS handshake: {self.buf!r}")
        self.sock.setblocking(True)
        self.sock.settimeout(30)
        self.sock = (ctx or client_tls_context()).wrap_socket(self.sock, server_hostname=HOST)
        self.tls = True

    def pending_plaintext(self, wait=0.3):
        """Whatever the server sends within `wait` seconds (b'' if nothing): used before a
        handshake to prove the server answered nothing it should not have."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK)
        except (socket.timeout, BlockingIOError):
            data = b""
        finally:
            self.sock.settimeout(30)
        return self.buf + data

    def at_eof(self, wait=5):
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return data == b""

    def pop(self, text):
        """One POP3 command, its first reply line."""
        self.send(text + "\r\n")
        return self.line()

    def multi(self):
        """The lines of a POP3 multi-line body up to the terminating '.', as sent (still
        dot-stuffed), without CRLF."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise AssertionError(f"EOF inside a multi-line reply after {lines[-3:]!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode("latin-1")
            if line == ".":
                return lines
            lines.append(line)

    def pop_multi(self, text):
        """A POP3 command with a multi-line answer: (first line, body lines as sent)."""
        first = self.pop(text)
        return first, (self.multi() if first.startswith("+OK") else None)

    def raw_multi(self):
        """The bytes of a POP3 multi-line body up to and including CRLF.CRLF, as sent."""
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise AssertionError(f"EOF inside a multi-line reply: {self.buf[-200:]!r}")
            self.buf += chunk
        data = b"\r\n" + self.buf
        end = data.index(b"\r\n.\r\n") + 5
        body, self.buf = data[2:end], data[end:]
        return body


def unstuff(body):
    """A POP3 multi-line body (bytes up to and including CRLF.CRLF) back to the message."""
    assert body.endswith(b".\r\n"), body[-20:]
    lines = body[:-3].split(b"\r\n")
    assert lines[-1] == b"", lines[-1:]
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


class SourcePOP3(poplib.POP3):
    """poplib.POP3 with the client socket bound to a chosen source address."""

    def __init__(self, host, port, source=None, timeout=30):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0) if self._source else None)


class MailTestCase(SmtpTestCase):
    """An SmtpTestCase whose server has all five listeners (start_mail_server()), with
    helpers for the real clients. Accounts alice@ and bob@example.org (password
    PASSWORD) exist from setUp on."""

    # Queued mail stays in SPOOL/queue/ (outbound.hold) unless the config names
    # outbound: itself: most tests look at what was queued, not at its delivery.
    HOLD_OUTBOUND = True

    def setUp(self):
        super().setUp()
        self.ports = None
        self.starts = 0
        self.extra_config = ""
        self.server_env = None

    def tearDown(self):
        problem = None
        try:
            # Clients first (a session left inside a transaction would hold the stop for
            # the shutdown grace), then the server, here, so that its exit is checked:
            # SIGTERM must end it cleanly (exit 0; a crash on the way out, or a sanitizer
            # report, fails the test).
            for c in getattr(self, "closers", []) + [c.close for c in self.clients]:
                try:
                    c()
                except Exception:
                    pass
            self.closers, self.clients = [], []
            if self.proc is not None and self.proc.poll() is None:
                self.stop_server()
                if self.proc.returncode != 0 and not self.failed_so_far():
                    problem = f"mh-serve exited with {self.proc.returncode} on SIGTERM:\n{self.log()}"
            if self.proc is not None and self.failed_so_far():
                # The server's side of a failure: its log, and how it ended if it did.
                print(f"\n--- mh-serve log ({self.id()}, exit status {self.proc.poll()}) ---\n{self.log()}---",
                      file=sys.stderr)
        finally:
            super().tearDown()
        if problem:
            raise AssertionError(problem)

    def failed_so_far(self):
        """True when this test (or one of its subtests) has failed or erred."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        for test, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])):
            if test is self or getattr(test, "test_case", None) is self:
                return True
        return False

    def on_teardown(self, close):
        if not hasattr(self, "closers"):
            self.closers = []
        self.closers.append(close)

    # --- the server ------------------------------------------------------------------

    def write_mail_config(self, extra=""):
        listen = ", ".join(f'{s}: "127.0.0.1:{p}"' for s, p in self.ports.items())
        trusted = ""
        if self.TRUSTED_NETWORKS is not None and "trusted_networks:" not in extra:
            trusted = f"trusted_networks: {self.TRUSTED_NETWORKS}\n"
        hold = ""
        if self.HOLD_OUTBOUND and "outbound:" not in extra:
            hold = "outbound: { hold: true }\n"
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f"hostname: {HOST}\nlisten: {{ {listen} }}\n{trusted}{hold}{self.from_header_config(extra)}{extra}")

    def start_mail_server(self, extra_config="", args=(), services=SERVICES, env=None):
        """Starts mh-serve with a listener for each of `services` on a free port of its
        own, and waits until the log says each is listening. Restarting (after
        stop_server) keeps the ports and the config unless new ones are given."""
        if self.ports is None or set(self.ports) != set(services):
            self.ports = dict(zip(services, free_ports(len(services))))
        self.port = self.ports.get("smtp")  # SmtpTestCase.connect() talks to this one
        self.extra_config = extra_config
        self.server_env = env
        self.write_mail_config(extra_config)
        self.starts += 1
        self.errfile = os.path.join(self.tmp, f"mh-serve.{self.starts}.err")
        with open(self.errfile, "wb") as err:
            self.proc = subprocess.Popen([server_binary(), "--spool", self.spool, *args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         env=dict(os.environ, **env) if env else None)
        deadline = time.time() + 30
        want = [f"listening for {s} on 127.0.0.1:{p}" for s, p in self.ports.items()]
        while not all(w in self.log() for w in want):
            if self.proc.poll() is not None:
                self.fail(f"mh-serve exited with {self.proc.returncode}: {self.log()}")
            if time.time() > deadline:
                self.fail("mh-serve did not start all listeners: " + self.log())
            time.sleep(0.02)

    def restart_server(self):
        self.stop_server()
        self.assertEqual(self.proc.returncode, 0, self.log())
        self.start_mail_server(self.extra_config, services=tuple(self.ports), env=self.server_env)

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    # --- raw clients -----------------------------------------------------------------

    def raw(self, service, source=None, tls=None, greet=True):
        """A MailClient on a service's port (implicit TLS for smtps/pop3s), greeting read."""
        if tls is None:
            tls = service in ("smtps", "pop3s")
        c = MailClient(self.ports[service], source=source, tls=tls)
        self.clients.append(c)
        if greet:
            if service.startswith("pop3"):
                self.assertEqual(c.line(), POP_GREETING)
            else:
                self.assertEqual(c.reply(), SMTP_GREETING)
        return c

    def smtp_starttls(self, c, helo="client.test"):
        """EHLO, STARTTLS, handshake, EHLO again on a raw SMTP client; the last EHLO reply."""
        self.assertIn("250-STARTTLS", c.cmd("EHLO " + helo).split("\n"))
        self.assertEqual(c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS")
        c.start_tls()
        return c.cmd("EHLO " + helo)

    def pop_stls(self, c):
        self.assertEqual(c.pop("STLS"), "+OK Begin TLS negotiation now.")
        c.start_tls()

    def pop_login(self, c, address="alice@example.org", password=PASSWORD):
        self.assertEqual(c.pop("USER " + address), "+OK")
        self.assertEqual(c.pop("PASS " + password), "+OK Logged in.")

    def pop_session(self, address="alice@example.org", password=PASSWORD, service="pop3", source=None):
        """A raw POP3 client logged in (plain from 127.0.0.1, or over pop3s)."""
        c = self.raw(service, source=source)
        self.pop_login(c, address, password)
        return c

    # --- real clients ----------------------------------------------------------------

    def smtplib_client(self, service="submission", source=None, starttls=True, ehlo="client.test"):
        """An smtplib client after EHLO (and STARTTLS + EHLO again when asked; smtps is
        TLS from the start). Closed at tearDown."""
        src = (source, 0) if source else None
        if service == "smtps":
            s = smtplib.SMTP_SSL("127.0.0.1", self.ports[service], local_hostname=ehlo,
                                 source_address=src, timeout=30, context=client_tls_context())
        else:
            s = smtplib.SMTP("127.0.0.1", self.ports[service], local_hostname=ehlo,
                             source_address=src, timeout=30)
        self.on_teardown(s.close)
        s.ehlo()
        if starttls and service != "smtps":
            s.starttls(context=client_tls_context())
            s.ehlo()
        return s

    def poplib_client(self, service="pop3", source=None):
        if service == "pop3s":
            p = poplib.POP3_SSL("127.0.0.1", self.ports[service], timeout=30, context=client_tls_context())
        else:
            p = SourcePOP3("127.0.0.1", self.ports[service], source=source)
        self.on_teardown(p.close)
        return p

    def send_mail(self, to, message, sender="sender@remote.test"):
        """Delivers `message` (bytes, CRLF line ends) over plain SMTP from 127.0.0.1
        (trusted, no AUTH) with smtplib; returns the new Maildir file names of `to`."""
        before = set(os.listdir(self.maildir(to)))
        s = smtplib.SMTP("127.0.0.1", self.ports["smtp"], local_hostname="sender.test", timeout=60)
        try:
            refused = s.sendmail(sender, [to], message)
            self.assertEqual(refused, {})
            s.quit()
        finally:
            s.close()
        return sorted(set(os.listdir(self.maildir(to))) - before)

    # --- the spool -------------------------------------------------------------------

    def maildir_files(self, address):
        """{name: (sub, bytes)} for every message file in new/ and cur/."""
        out = {}
        for sub in ("new", "cur"):
            d = self.maildir(address, sub)
            for name in os.listdir(d):
                with open(os.path.join(d, name), "rb") as f:
                    out[name] = (sub, f.read())
        return out

    def queue_entries(self):
        """{id: {"env": {key: value or [values]}, "msg": bytes}} of SPOOL/queue/."""
        q = self.path("queue")
        out = {}
        if not os.path.isdir(q):
            return out
        for name in sorted(os.listdir(q)):
            if not name.endswith(".env"):
                continue
            qid = name[:-4]
            env = {"recipient": []}
            with open(os.path.join(q, name)) as f:
                for line in f.read().splitlines():
                    key, _, value = line.partition(": ")
                    if key == "recipient":
                        env["recipient"].append(value)
                    else:
                        env[key] = value
            with open(os.path.join(q, qid + ".msg"), "rb") as f:
                out[qid] = {"env": env, "msg": f.read()}
        return out

    def quota(self, target):
        r = self.run_tool("mh-quota", "show", target, "--json")
        self.assertExit(r, 0)
        return r.json()

    def recalc(self, target):
        r = self.run_tool("mh-quota", "recalc", target, "--json")
        self.assertExit(r, 0)
        return r.json()


def uidl_of(name):
    """mailhost's UIDL of a Maildir file name: the part before the first ',' or ':'."""
    for i, ch in enumerate(name):
        if ch in ",:":
            return name[:i]
    return name


def timed(fn, *args):
    t0 = time.monotonic()
    result = fn(*args)
    return time.monotonic() - t0, result
