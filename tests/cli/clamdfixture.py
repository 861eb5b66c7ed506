"""A real clamd for the content-scanning tests, fully offline, and fake clamds for the
failure paths (a socket nobody answers on, one that closes at once, one that answers
ERROR). The real one knows one signature only: EICAR, from a one-line local .hdb file.

    with Clamd() as clamd:           # or Clamd(stream_max="1M")
        clamd.address                # "unix:/tmp/mhclamd-…/clamd.sock" (clamd.address in mailhost.yaml)
        clamd.scan(b"...")           # clamd's INSTREAM answer ("stream: OK"), a check of the fixture
        clamd.log()

    with FakeClamd(FakeClamd.HUNG, directory) as fake:
        fake.address, fake.connections

How the real one is kept offline and private: clamd -c TMP/clamd.conf with Foreground,
LocalSocket, DatabaseDirectory (only db/eicar.hdb), LogFile and PidFile all in TMP; no
TCP socket, no freshclam, nothing of the system's clamav-daemon is touched. As root it
is told `User root`, so it changes no credentials and PR_SET_PDEATHSIG stays armed: it
dies with the test process. close() stops it (SIGTERM, then SIGKILL to its process
group) and removes TMP; used as a context manager or from setUpClass/tearDownClass
that also happens when a test fails."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from daemonproc import OwnedDaemon, die_with_parent

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"

# The 68-byte EICAR test file and the .hdb line (MD5:size:name) that makes clamd name it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_HDB = "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n"
EICAR_NAME = "Eicar-Test-Signature.UNOFFICIAL"  # clamd's name for a signature from a local .hdb



def require_clamd():
    """unittest.SkipTest, saying why, when clamd is not installed (the only reason to skip)."""
    if not os.access(CLAMD, os.X_OK):
        raise unittest.SkipTest(f"clamd is not installed ({CLAMD} missing): the content-scanning tests "
                                "need the Debian package clamav-daemon (scripts/install-deps installs it)")


def clamd_command(path, command, payload=None, timeout=10.0):
    """One z-command to the clamd at unix socket `path`; with `payload` (bytes) it is
    INSTREAM and the payload goes in length-prefixed chunks. clamd's answer, NUL removed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"z" + command.encode() + b"\0")
        if payload is not None:
            for i in range(0, len(payload), 65536):
                chunk = payload[i:i + 65536]
                s.sendall(struct.pack(">I", len(chunk)) + chunk)
            s.sendall(struct.pack(">I", 0))
        answer = b""
        while not answer.endswith(b"\0"):
            data = s.recv(4096)
            if not data:
                break
            answer += data
    return answer.rstrip(b"\0").decode("latin-1")


class Clamd(OwnedDaemon):
    START_TIMEOUT = 60.0   # about 1 s idle; generous for a loaded 2-core machine
    STOP_TIMEOUT = 10.0

    def __init__(self, stream_max="40M", tcp=False):
        self.stream_max = stream_max
        self.tcp = tcp              # also listen on 127.0.0.1:tcp_port (clamd's TCPSocket)
        self.tcp_port = None
        self.tcp_address = None
        self.tmp = None
        self.proc = None
        self.socket_path = None
        self.address = None
        self.startup_seconds = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _configure(self):
        os.makedirs(os.path.join(self.tmp, "db"))
        with open(os.path.join(self.tmp, "db", "eicar.hdb"), "w") as f:
            f.write(EICAR_HDB)
        lines = [f"LocalSocket {self.socket_path}",
                 f"DatabaseDirectory {os.path.join(self.tmp, 'db')}",
                 "Foreground yes",
                 f"LogFile {os.path.join(self.tmp, 'clamd.log')}",
                 f"PidFile {os.path.join(self.tmp, 'clamd.pid')}",
                 f"StreamMaxLength {self.stream_max}",
                 "MaxThreads 4"]
        if self.tcp:
            with socket.socket() as probe:  # a free port; clamd binds it right after
                probe.bind(("127.0.0.1", 0))
                self.tcp_port = probe.getsockname()[1]
            lines += [f"TCPSocket {self.tcp_port}", "TCPAddr 127.0.0.1"]
        if os.geteuid() == 0:
            # Otherwise clamd switches to the clamav user: a credential change that
            # disarms PDEATHSIG, and a user that cannot reach our temp dir.
            lines.append("User root")
        with open(os.path.join(self.tmp, "clamd.conf"), "w") as f:
            f.write("# mailhost test fixture: offline, EICAR only\n" + "\n".join(lines) + "\n")

    def start(self):
        require_clamd()
        try:
            self.tmp = tempfile.mkdtemp(prefix="mhclamd-")
            self.socket_path = os.path.join(self.tmp, "clamd.sock")
            self._configure()
            began = time.monotonic()
            with open(os.path.join(self.tmp, "stdout.log"), "ab") as out:
                self.proc = subprocess.Popen([CLAMD, "-c", os.path.join(self.tmp, "clamd.conf")],
                                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                             cwd=self.tmp, start_new_session=True, preexec_fn=die_with_parent)
            self._wait_for_pong(began)
            self.address = "unix:" + self.socket_path
            if self.tcp:
                self.tcp_address = f"tcp:127.0.0.1:{self.tcp_port}"
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.close()
            raise

    def _wait_for_pong(self, began):
        deadline = began + self.START_TIMEOUT
        why = "no socket yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"clamd exited with status {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.socket_path):
                try:
                    answer = clamd_command(self.socket_path, "PING", timeout=2.0)
                    if answer == "PONG":
                        return
                    why = f"PING answered {answer!r}"
                except OSError as e:
                    why = f"PING failed: {e}"
            time.sleep(0.1)
        raise RuntimeError(f"clamd not ready within {self.START_TIMEOUT:.0f} s ({why}):\n{self.log()}")

    def scan(self, payload):
        return clamd_command(self.socket_path, "INSTREAM", payload, timeout=60.0)

    def log(self):
        """clamd's log file and its stdout so far (for failure messages)."""
        out = []
        for name in ("clamd.log", "stdout.log"):
            try:
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    out.append(f.read()[-8000:])
            except (OSError, TypeError):
                pass
        return "\n".join(out)


class FakeClamd:
    """A unix-socket server in a thread that misbehaves the way a broken clamd does:
      HUNG   accepts, reads everything, never answers (until closed)
      CLOSE  accepts and closes at once, before reading the command
      ERROR  reads the INSTREAM command and its chunks, answers the size-limit ERROR
    `connections` counts the clients accepted (a test can show mh-serve did ask)."""

    HUNG, CLOSE, ERROR = "hung", "close", "error"
    ERROR_ANSWER = b"stream: INSTREAM size limit exceeded. ERROR\0"

    def __init__(self, mode, directory):
        self.mode = mode
        self.socket_path = os.path.join(directory, f"fake-clamd-{mode}.sock")
        self.address = "unix:" + self.socket_path
        self.connections = 0
        self.server = None
        self.thread = None
        self.stopping = threading.Event()
        self.held = []  # the HUNG server's open connections, closed at close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.socket_path)
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            if self.mode == self.CLOSE:
                conn.close()
            else:
                threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        try:
            conn.settimeout(0.2)
            if self.mode == self.ERROR:
                self._read_instream(conn)
                conn.sendall(self.ERROR_ANSWER)
                conn.close()
                return
            self.held.append(conn)
            while not self.stopping.is_set():  # HUNG: swallow whatever comes, say nothing
                try:
                    if not conn.recv(65536):
                        return
                except socket.timeout:
                    continue
        except OSError:
            pass

    def _recv_exactly(self, conn, n):
        data = b""
        while len(data) < n and not self.stopping.is_set():
            try:
                chunk = conn.recv(n - len(data))
            except socket.timeout:
                continue
            if not chunk:
                raise OSError("client closed")
            data += chunk
        return data

    def _read_instream(self, conn):
        """The command up to its NUL, then chunks until the zero-length one."""
        command = b""
        while not command.endswith(b"\0"):
            command += self._recv_exactly(conn, 1)
        while True:
            (size,) = struct.unpack(">I", self._recv_exactly(conn, 4))
            if size == 0:
                return
            self._recv_exactly(conn, size)

    def close(self):
        self.stopping.set()
        if self.server is not None:
            self.server.close()
        if self.thread is not None:
            self.thread.join(timeout=5)
        for conn in self.held:
            try:
                conn.close()
            except OSError:
                pass
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass


if __name__ == "__main__":
    # python3 clamdfixture.py: start, scan EICAR and a clean text, stop.
    with Clamd() as c:
        print(f"clamd at {c.address}, ready after {c.startup_seconds:.1f} s")
        print("eicar:", c.scan(EICAR))
        print("clean:", c.scan(b"hello world\n"))
