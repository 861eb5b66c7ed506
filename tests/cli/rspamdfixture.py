"""A real rspamd on loopback for the spam-check tests, fully offline: the Debian package's
stock configuration (/etc/rspamd/rspamd.conf, included as is) with our overrides in a
temp dir, the normal worker on 127.0.0.1 and a free port, nothing else listening.

    with Rspamd() as rspamd:
        rspamd.url          # "http://127.0.0.1:PORT" (the normal worker: /checkv2, /ping)
        rspamd.scan(b"...") # rspamd's JSON reply as a dict (a check of the fixture itself)
        rspamd.startup_seconds, rspamd.log()

How it is kept offline and unprivileged (each point is one file under TMP/conf):
  * rspamd -f (foreground) -c TMP/rspamd.conf, which only includes the stock top-level
    file; --var LOCAL_CONFDIR=TMP/conf makes every `local.d/` and `override.d/` include of
    the stock files read ours (a local.d in /etc/rspamd is never read), and --var DBDIR,
    RUNDIR, LOGDIR put the databases, hyperscan cache, control socket, pid file and log
    in TMP.
  * override.d/worker-normal.inc binds 127.0.0.1:PORT; the controller and proxy workers
    are `enabled = false` (the fuzzy worker is off in the stock file).
  * local.d/options.inc: `filters = "chartable,regexp"` (no dkim, no fuzzy_check among
    the C modules) and a resolver pointed at 127.0.0.1:1, where nothing answers, with a
    0.2 s timeout: a lookup we failed to switch off fails fast and locally.
  * local.d/MODULE.conf `enabled = false;` for every Lua module that asks the network or
    needs redis: rbl (also surbl/emails, which rspamd converts to rbl rules), spf, dkim,
    dmarc, arc, asn, hfilter, phishing, multimap (its default maps are https URLs),
    whitelist, fuzzy_check, neural, ratelimit, greylist, reputation, replies, ...
    (DISABLED_MODULES below).
  * As root (the CI), rspamd refuses to run workers unless given --insecure (-i): we pass
    it, so no change of user happens and PR_SET_PDEATHSIG stays armed. As another user
    nothing is switched and -u/-g are not needed.
GTUBE gets action "reject" (rspamd's built-in pattern) and a plain short message with a
current Date gets "no action". Startup is dominated by compiling the TLD list with
hyperscan (10-20 s on a busy 2-core machine; about 1 s with a warm cache): set
MH_RSPAMD_CACHE=DIR to keep that cache between runs (it is keyed by content, safe to
share). Everything is stopped (SIGTERM, then SIGKILL to the whole process group) and
removed at close(); rspamd also dies with the test (PR_SET_PDEATHSIG: start the fixture
from the test's main thread, e.g. in setUpClass)."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from daemonproc import OwnedDaemon, die_with_parent

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
STOCK_CONFIG = "/etc/rspamd/rspamd.conf"

# Lua modules (local.d/NAME.conf `enabled = false;`) that query DNS, HTTP or redis, or
# report to somewhere. Several are off by default already: listed anyway, so a changed
# default in a later rspamd does not bring the network back.
DISABLED_MODULES = [
    "antivirus", "arc", "asn", "bimi", "clickhouse", "dcc", "dkim", "dkim_signing",
    "dmarc", "elastic", "emails", "external_relay", "external_services", "fuzzy_check",
    "greylist", "hfilter", "history_redis", "metadata_exporter", "metric_exporter",
    "multimap", "mx_check", "neural", "p0f", "phishing", "ratelimit", "rbl",
    "replies", "reputation", "rspamd_update", "spamtrap", "spf", "surbl",
    "url_redirector", "whitelist",
]

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"



def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    """(status, body bytes) of one request to 127.0.0.1:port (never through a proxy)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


class Rspamd(OwnedDaemon):
    # rspamd compiles its TLD list at start: 12 s on an idle 2-core machine, 33 s at load 4.
    START_TIMEOUT = 90.0
    STOP_TIMEOUT = 10.0

    def __init__(self, start_timeout=None, cache_dir=None):
        self.start_timeout = start_timeout or self.START_TIMEOUT
        self.cache_dir = cache_dir or os.environ.get("MH_RSPAMD_CACHE") or None
        self.tmp = None
        self.proc = None
        self.port = None
        self.url = None
        self.log_path = None
        self.startup_seconds = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    # -- configuration -------------------------------------------------------------

    def _write(self, relative, text):
        path = os.path.join(self.tmp, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def _configure(self, port):
        self._write("rspamd.conf",
                    "# mailhost test fixture: the stock configuration, our overrides in conf/\n"
                    f'.include "{STOCK_CONFIG}"\n')
        self._write("conf/override.d/worker-normal.inc",
                    f'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n')
        for worker in ("controller", "proxy"):
            self._write(f"conf/override.d/worker-{worker}.inc", "enabled = false;\n")
        self._write("conf/override.d/logging.inc",
                    'type = "file";\nfilename = "$LOGDIR/rspamd.log";\nlevel = "info";\n')
        options = [
            '# C modules: no dkim, no fuzzy_check.',
            'filters = "chartable,regexp";',
            '# Any lookup left over fails at once, here: nothing answers on port 1.',
            'dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 1; }',
            f'tempdir = "{os.path.join(self.tmp, "run")}";',
        ]
        if self.cache_dir:
            os.makedirs(self.cache_dir, exist_ok=True)
            options.append(f'hs_cache_dir = "{self.cache_dir}";')
        self._write("conf/local.d/options.inc", "\n".join(options) + "\n")
        for module in DISABLED_MODULES:
            self._write(f"conf/local.d/{module}.conf", "enabled = false;\n")
        for d in ("db", "run", "log"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)

    def _command(self):
        cmd = [RSPAMD, "-f", "-c", os.path.join(self.tmp, "rspamd.conf"),
               "--var", "LOCAL_CONFDIR=" + os.path.join(self.tmp, "conf"),
               "--var", "DBDIR=" + os.path.join(self.tmp, "db"),
               "--var", "RUNDIR=" + os.path.join(self.tmp, "run"),
               "--var", "LOGDIR=" + os.path.join(self.tmp, "log")]
        if os.geteuid() == 0:
            # rspamd will not run workers as root without it; with it nothing changes
            # credentials, so the PDEATHSIG set before exec stays armed.
            cmd.append("-i")
        return cmd

    # -- life cycle ----------------------------------------------------------------

    def start(self):
        if not os.access(RSPAMD, os.X_OK):
            raise RuntimeError(f"rspamd is not installed ({RSPAMD} missing): "
                               "the spam-check tests need the Debian package rspamd")
        if not os.path.exists(STOCK_CONFIG):
            raise RuntimeError(f"{STOCK_CONFIG} missing: the rspamd package is incomplete")
        self.tmp = tempfile.mkdtemp(prefix="mhrspamd-")
        self.log_path = os.path.join(self.tmp, "log", "rspamd.log")
        problems = []
        for _ in range(3):  # the port can be taken between our probe and rspamd's bind
            port = free_port()
            self._configure(port)
            why = self._start_on(port)
            if why is None:
                return
            problems.append(why)
            if "bind" not in why.lower() and "address already in use" not in why.lower():
                break
        raise RuntimeError("rspamd did not start: " + " / ".join(problems))

    def _start_on(self, port):
        """None once /ping answers "pong"; otherwise why not (the process is stopped)."""
        stdout_path = os.path.join(self.tmp, "log", "stdout.log")
        began = time.monotonic()
        with open(stdout_path, "ab") as out:
            self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=die_with_parent)
        deadline = began + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                return f"rspamd exited with status {code}:\n{self._tail(stdout_path)}\n{self._tail(self.log_path)}"
            try:
                status, body = http_request(port, "GET", "/ping", timeout=1.0)
                if status == 200 and body.strip() == b"pong":
                    self.port = port
                    self.url = f"http://127.0.0.1:{port}"
                    self.startup_seconds = time.monotonic() - began
                    return None
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        self._stop()
        return (f"no pong from 127.0.0.1:{port}/ping within {self.start_timeout:.0f} s:\n"
                f"{self._tail(stdout_path)}\n{self._tail(self.log_path)}")

    @staticmethod
    def _tail(path, lines=30):
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def log(self):
        """rspamd's log so far (for failure messages)."""
        return self._tail(self.log_path, lines=200) if self.log_path else ""

    # -- a direct check, for the fixture's own sanity -------------------------------

    def scan(self, message, headers=None, timeout=30.0):
        """rspamd's reply to POST /checkv2 with `message` (bytes), as a dict."""
        status, body = http_request(self.port, "POST", "/checkv2", body=message,
                                    headers=headers or {}, timeout=timeout)
        if status != 200:
            raise AssertionError(f"rspamd answered HTTP {status}: {body[:200]!r}")
        return json.loads(body)


if __name__ == "__main__":
    # python3 rspamdfixture.py: start, show the verdicts for GTUBE and a ham, stop.
    import email.utils
    date = email.utils.formatdate(localtime=False)
    with Rspamd() as r:
        print(f"rspamd at {r.url}, ready after {r.startup_seconds:.1f} s")
        for name, body in (("gtube", GTUBE), ("ham", "Lunch tomorrow at noon?")):
            msg = (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {name}\r\n"
                   f"Date: {date}\r\nMessage-ID: <{name}@example.org>\r\n\r\n{body}\r\n").encode()
            reply = r.scan(msg, {"From": "a@example.org", "Rcpt": "b@example.org"})
            print(name, reply["action"], reply["score"])
