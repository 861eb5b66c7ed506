"""Shared plumbing for the mh-serve SMTP tests (tests/cli/test_smtp_*.py): a server of
our own on a free loopback port over a private spool, a raw SMTP client that reads
replies exactly as sent, and helpers to look at what landed in the Maildirs.
Every server is stopped (SIGTERM, then SIGKILL) when its test ends."""

import os
import signal
import socket
import subprocess
import time

import mhtest

HOST = "mx.test"


def server_binary():
    return mhtest.tool_path("mh-serve")


class RawClient:
    """A plain TCP SMTP client: send bytes, read replies line by line (CRLF kept out)."""

    def __init__(self, port, source=None, timeout=30):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """One reply line without CRLF; '' at EOF."""
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest.decode("latin-1")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def reply(self):
        """A whole (possibly multi-line) reply as one string joined with newlines."""
        lines = [self.line()]
        while len(lines[-1]) >= 4 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def at_eof(self, wait=5):
        """True when the server closed the connection (within `wait` seconds)."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except (ConnectionResetError, socket.timeout):
            return False
        return data == b""

    def close(self):
        self.sock.close()


class SmtpTestCase(mhtest.SpoolTestCase):
    """A SpoolTestCase with an mh-serve of its own (start_server).

    Loopback is in trusted_networks unless the test's extra config names its own (or the
    class sets TRUSTED_NETWORKS = None): tests must not depend on the machine's resolver,
    and only the reverse-DNS tests (test_smtp_fcrdns.py) want the check made."""

    TRUSTED_NETWORKS = '["127.0.0.0/8"]'
    # Most tests send header-less scripts as authenticated users: they predate SPEC §8's
    # submission.from_header (default own-domain) and run with `any` unless the extra
    # config names submission: itself or the class sets FROM_HEADER = None.
    FROM_HEADER = "any"

    def from_header_config(self, extra):
        if self.FROM_HEADER is None or "submission:" in extra:
            return ""
        return f"submission: {{ from_header: {self.FROM_HEADER} }}\n"

    def setUp(self):
        super().setUp()
        self.proc = None
        self.clients = []
        self.add_domain("example.org")
        self.add_account("alice@example.org")
        self.add_account("bob@example.org")

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.stop_server()
        super().tearDown()

    def write_config(self, extra=""):
        trusted = ""
        if self.TRUSTED_NETWORKS is not None and "trusted_networks:" not in extra:
            trusted = f"trusted_networks: {self.TRUSTED_NETWORKS}\n"
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'hostname: {HOST}\nlisten: {{ smtp: "127.0.0.1:{self.port}" }}\n{trusted}'
                    f'{self.from_header_config(extra)}{extra}')

    def start_server(self, extra_config="", args=()):
        self.port = mhtest.free_port()
        self.write_config(extra_config)
        self.errfile = os.path.join(self.tmp, "mh-serve.err")
        with open(self.errfile, "wb") as err:
            self.proc = subprocess.Popen([server_binary(), "--spool", self.spool, *args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 20
        while "listening for smtp" not in self.log():
            if self.proc.poll() is not None:
                self.fail(f"mh-serve exited with {self.proc.returncode}: {self.log()}")
            if time.time() > deadline:
                self.fail("mh-serve did not start: " + self.log())
            time.sleep(0.02)

    def stop_server(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.errfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connect(self, source=None, greet=True):
        c = RawClient(self.port, source=source)
        self.clients.append(c)
        if greet:
            self.assertEqual(c.reply(), f"220 {HOST} ESMTP mailhost")
        return c

    def session(self, helo="client.test"):
        """A connected client after EHLO."""
        c = self.connect()
        self.assertTrue(c.cmd("EHLO " + helo).startswith("250-" + HOST))
        return c

    def maildir(self, address, sub="new"):
        local, domain = address.split("@")
        return self.path("domains", domain, "accounts", local, "Maildir", sub)

    def messages(self, address):
        """Contents of the files in the account's Maildir/new, oldest name first."""
        d = self.maildir(address)
        out = []
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out.append(f.read())
        return out

    def count_all_messages(self):
        n = 0
        for root, dirs, files in os.walk(self.path("domains")):
            if os.path.basename(root) in ("new", "cur"):
                n += len(files)
        return n

    def wait_for_log(self, text, timeout=10):
        deadline = time.time() + timeout
        while text not in self.log():
            if time.time() > deadline:
                self.fail(f"{text!r} not in log: {self.log()}")
            time.sleep(0.02)
