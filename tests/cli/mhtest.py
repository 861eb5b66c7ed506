"""Shared plumbing for the CLI and interop tests: a private temp spool per test, the
real binaries from the build tree (MH_BIN), and helpers to run them and read the spool.
Tests never share a spool or a port, so `ctest -j` can run them side by side."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("MH_BIN", os.path.join(os.path.dirname(__file__), "../../build/tools"))
SOURCE = os.environ.get("MH_SOURCE", os.path.join(os.path.dirname(__file__), "../.."))


def tool_path(name):
    """Path of a tool binary in the build tree (tools/<name>/<name>)."""
    p = os.path.join(BIN, name, name)
    return p if os.path.exists(p) else os.path.join(BIN, name)


class Run:
    """Outcome of one tool run."""

    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"Run(code={self.code}, out={self.out!r}, err={self.err!r})"


class SpoolTestCase(unittest.TestCase):
    """Each test gets a fresh spool in its own temp dir (self.spool)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mhtest-")
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_tool(self, tool, *args, stdin=None, env=None, timeout=120):
        e = dict(os.environ)
        e.pop("MH_SPOOL", None)
        e["MH_SPOOL"] = self.spool
        if env:
            e.update(env)
        proc = subprocess.run([tool_path(tool), *args], input=stdin, capture_output=True,
                              text=True, env=e, timeout=timeout)
        return Run(proc)

    def user(self, *args, **kw):
        return self.run_tool("mh-user", *args, **kw)

    def assertExit(self, run, code, msg=None):
        self.assertEqual(run.code, code, msg or repr(run))

    def add_domain(self, domain, *extra):
        r = self.user("domain", "add", domain, *extra)
        self.assertExit(r, 0)

    def add_account(self, address, password="secret-pw", *extra):
        r = self.user("add", address, "--password-stdin", *extra, stdin=password + "\n")
        self.assertExit(r, 0)

    def path(self, *parts):
        return os.path.join(self.spool, *parts)

    def snapshot(self):
        """Every file under the spool with its content (for 'nothing changed' checks),
        ignoring run/: lock files exist to be touched, and run/HOSTNAME/ is a running
        daemon's own state."""
        snap = {}
        run_dir = os.path.join(self.spool, "run") + os.sep
        for root, dirs, files in os.walk(self.spool):
            for f in files:
                p = os.path.join(root, f)
                if p.startswith(run_dir):
                    continue
                rel = os.path.relpath(p, self.spool)
                if os.path.islink(p):
                    snap[rel] = "->" + os.readlink(p)
                else:
                    with open(p, "rb") as fh:
                        snap[rel] = fh.read()
            for d in dirs:
                snap[os.path.relpath(os.path.join(root, d), self.spool) + "/"] = None
        return snap


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to 0, read it back)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def converse(argv, steps, timeout=60):
    """Runs a line-based client (openssl s_client …) as a well-behaved SMTP client would
    talk: each step is (wait_for, data): `data` goes to its stdin once `wait_for` (bytes,
    or None for at once) has appeared on its stdout since the previous step. A client
    that wrote its whole script at once would be a synchronization error to mh-serve
    before the greeting and after DATA (SPEC §8). Returns (exit code, stdout, stderr)
    decoded as latin-1; a wait that times out just sends, and the test's checks fail."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = bytearray(), bytearray()

    def pump(stream, into):
        for chunk in iter(lambda: stream.read1(65536), b""):
            into.extend(chunk)

    readers = [threading.Thread(target=pump, args=(p.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(p.stderr, err), daemon=True)]
    for r in readers:
        r.start()
    seen = 0
    deadline = time.time() + timeout
    try:
        for wait_for, data in steps:
            if wait_for is not None:
                while out.find(wait_for, seen) < 0 and p.poll() is None and time.time() < deadline:
                    time.sleep(0.01)
                found = out.find(wait_for, seen)
                seen = found + len(wait_for) if found >= 0 else len(out)
            p.stdin.write(data)
            p.stdin.flush()
        p.stdin.close()
    except BrokenPipeError:
        pass
    code = p.wait(timeout=max(1, deadline - time.time()))
    for r in readers:
        r.join(timeout=5)
    return code, bytes(out).decode("latin-1"), bytes(err).decode("latin-1")


def main():
    unittest.main(verbosity=2)


def parse_flat_yaml(text):
    """The `key: value` pairs of a flat YAML file as the tools write it (account.yaml,
    domain.yaml); raises ValueError on any other line, so a truncated or mangled file
    fails loudly. Double-quoted values are unquoted (JSON escapes are a subset)."""
    pairs = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(": ")
        if not sep or not key or key != key.strip() or key in pairs:
            raise ValueError(f"not a flat YAML line: {line!r}")
        value = value.strip()
        if value.startswith('"'):
            value = json.loads(value)
        pairs[key] = value
    return pairs
