"""A real DNS server on loopback for the reverse-DNS tests: dnsmasq on 127.0.0.1 and a
free port, reading only our own records (no /etc/resolv.conf, no /etc/hosts), plus small
stub servers that answer every query with SERVFAIL or REFUSED, or never answer at all.

    with DnsFixture() as dns:
        dns.server      # "127.0.0.1:PORT"  dnsmasq with the records listed below
        dns.servfail    # "127.0.0.1:PORT"  answers SERVFAIL to everything
        dns.refused     # "127.0.0.1:PORT"  answers REFUSED to everything
        dns.blackhole   # "127.0.0.1:PORT"  reads queries, never answers (timeouts)

What the records (tests/dns/records.conf) give a forward-confirmed reverse-DNS check:
  127.0.0.2  PTR good.example.test, whose A is 127.0.0.2          → confirmed
  127.0.0.3  no PTR (NXDOMAIN)                                    → no PTR
  127.0.0.4  PTR forged.example.test, whose A is 127.0.0.99       → forged
  127.0.0.5  PTR nowhere.example.test, which does not exist       → forged
  127.0.0.6  PTR v6only.example.test, which has only an AAAA      → forged
  127.0.0.7  PTR other.example.test (A 127.0.0.98) and multi.example.test (A 127.0.0.7)
  127.0.0.8  PTR broken.servfail.test, whose lookup gets SERVFAIL → temporary failure
  127.0.0.9  its PTR lookup gets SERVFAIL                         → temporary failure
  127.0.0.10 PTR broken.servfail.test and other.example.test      → temporary failure
  2001:db8::25 PTR v6good.example.test, whose AAAA is 2001:db8::25 → confirmed
  2001:db8::26 PTR forged.example.test (A only)                    → forged
  ::1 and every other address in 127/8 or ip6.arpa: no PTR (NXDOMAIN).
Everything is stopped and removed when the `with` block ends (or at close()); dnsmasq
also dies if the test is killed (PR_SET_PDEATHSIG: it follows the thread that started the
fixture, so start it from the test's main thread, e.g. in setUp or setUpClass)."""

import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

RCODE_SERVFAIL = 2
RCODE_REFUSED = 5

# The zone data: host-record/ptr-record/address lines, commented there.
RECORDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dns", "records.conf")


def _die_with_parent():
    """preexec_fn: SIGTERM the child when the test process goes away."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def dns_query(name, qtype, qid=0x4d48):
    """A minimal DNS query packet (RD set) for `name` and numeric `qtype`."""
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def ask(server, name, qtype=1, timeout=1.0):
    """(rcode, answer count) of one UDP query to "ip:port", or None on timeout."""
    host, port = server.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(dns_query(name, qtype), (host, int(port)))
        try:
            reply = s.recv(4096)
        except socket.timeout:
            return None
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", reply[:12])
    return flags & 0xF, ancount


class StubServer:
    """A UDP DNS server on 127.0.0.1 that answers every query with `rcode` (echoing the
    question), or never answers when rcode is None."""

    def __init__(self, rcode):
        self.rcode = rcode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.queries = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                query, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            if self.rcode is None or len(query) < 12:
                continue
            qid, flags = struct.unpack(">HH", query[:4])
            # QR=1, opcode and RD copied, RA=1, the rcode; question echoed, no records.
            flags = 0x8000 | (flags & 0x7900) | 0x0080 | self.rcode
            self.sock.sendto(struct.pack(">HH", qid, flags) + query[4:6] + b"\0" * 6 + query[12:], peer)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


class DnsFixture:
    """dnsmasq with tests/dns/records.conf (plus `extra_config` lines) and the three stub
    servers."""

    START_TIMEOUT = 10.0

    def __init__(self, extra_config=""):
        self.extra_config = extra_config
        self.tmp = None
        self.proc = None
        self.stubs = []
        self.server = None

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        self.tmp = tempfile.mkdtemp(prefix="mhdns-")
        self._servfail = StubServer(RCODE_SERVFAIL)
        self._refused = StubServer(RCODE_REFUSED)
        self._blackhole = StubServer(None)
        self.stubs = [self._servfail, self._refused, self._blackhole]
        self.servfail = self._servfail.address
        self.refused = self._refused.address
        self.blackhole = self._blackhole.address
        last_error = ""
        for _ in range(5):  # a free port can be taken between our probe and dnsmasq's bind
            port = self._free_udp_tcp_port()
            if self._start_dnsmasq(port):
                self.server = "127.0.0.1:%d" % port
                return
            last_error = self._log()
        raise RuntimeError("dnsmasq did not start: " + last_error)

    @staticmethod
    def _free_udp_tcp_port():
        """A port free for both UDP and TCP a moment ago (dnsmasq binds both)."""
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", 0))
                port = u.getsockname()[1]
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                    try:
                        t.bind(("127.0.0.1", port))
                    except OSError:
                        continue
                    return port

    def _config(self, port):
        servfail_port = self.servfail.rsplit(":", 1)[1]
        lines = [
            "port=%d" % port,
            "listen-address=127.0.0.1",
            "bind-interfaces",
            "no-resolv", "no-hosts", "no-poll", "no-negcache",
            "pid-file=",
            "log-queries",
            # Answer from our records only: anything else in these zones is NXDOMAIN.
            "local=/example.test/",
            "local=/127.in-addr.arpa/",
            "local=/ip6.arpa/",
            # Names whose lookups fail on the server side (SERVFAIL from upstream).
            "server=/servfail.test/127.0.0.1#%s" % servfail_port,
            "server=/9.0.0.127.in-addr.arpa/127.0.0.1#%s" % servfail_port,
        ]
        if os.geteuid() == 0:
            # No change of user or group (dnsmasq would switch to nobody:dip), so the
            # PDEATHSIG set before exec stays armed: a change of credentials clears it.
            lines += ["user=root", "group=root"]
        with open(RECORDS_FILE) as f:
            records = f.read()
        return "\n".join(lines) + "\n" + records + self.extra_config

    def _start_dnsmasq(self, port):
        conf = os.path.join(self.tmp, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(self._config(port))
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        self.log_path = os.path.join(self.tmp, "dnsmasq.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [binary, "--keep-in-foreground", "--log-facility=-", "--conf-file=" + conf],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            if ask("127.0.0.1:%d" % port, "good.example.test", timeout=0.2) == (0, 1):
                return True
        self._stop_dnsmasq()
        return False

    def _log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def _stop_dnsmasq(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self):
        self._stop_dnsmasq()
        for stub in self.stubs:
            stub.stop()
        self.stubs = []
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
