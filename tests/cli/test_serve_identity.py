#!/usr/bin/python3
"""mh-serve's own identity on a spool several daemons share (SPEC §8 "Several daemons on
one spool"): --hostname and --listen override mailhost.yaml for one process, run/HOSTNAME/
holds its locked pid file (a second daemon with the same name exits 75), daemons starting
together make one self-signed pair, and a TLS key only root may read is read before the
privilege drop."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import mhtest
from mhtest_mail import free_ports
from test_mh_user_owner import OWNER, ensure_system_user


def greeting(port, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        return s.makefile("rb").readline().decode().rstrip("\r\n")


def served_certificate(port, timeout=10):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


class Daemon:
    """One mh-serve with the given arguments; stderr to a file of its own."""

    def __init__(self, case, *args):
        self.case = case
        self.err = os.path.join(case.tmp, f"mh-serve.{len(case.daemons)}.err")
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen([mhtest.tool_path("mh-serve"), "--spool", case.spool, *args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        case.daemons.append(self)

    def log(self):
        with open(self.err, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_listening(self, *lines, timeout=60):
        deadline = time.time() + timeout
        while not all(f"listening for {line}" in self.log() for line in lines):
            if self.proc.poll() is not None:
                self.case.fail(f"mh-serve exited {self.proc.returncode}: {self.log()}")
            if time.time() > deadline:
                self.case.fail(f"not listening for {lines}: {self.log()}")
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class IdentityTest(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.daemons = []
        self.add_domain("example.org")

    def tearDown(self):
        codes = [(d.stop(), d.log()) for d in self.daemons]
        super().tearDown()
        for code, log in codes:
            self.assertIn(code, (0, 75, 64), log)
            self.assertNotIn("AddressSanitizer", log)
            self.assertNotIn("runtime error:", log)

    def write_config(self, text):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(text)

    def test_hostname_and_listen_replace_the_config_for_one_process(self):
        configured, own = free_ports(2)
        self.write_config(f'hostname: shared.example\nlisten: {{ smtp: "127.0.0.1:{configured}" }}\n')
        d = Daemon(self, "--hostname", "h1.example", "--listen", f"smtp=127.0.0.1:{own}")
        d.wait_listening(f"smtp on 127.0.0.1:{own}")
        self.assertEqual(greeting(own), "220 h1.example ESMTP mailhost")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", configured), timeout=2).close()
        with open(self.path("run", "h1.example", "mh-serve.pid")) as f:
            self.assertEqual(f.read().strip(), str(d.proc.pid))
        # Without the options the same file serves as written.
        shared = Daemon(self)
        shared.wait_listening(f"smtp on 127.0.0.1:{configured}")
        self.assertEqual(greeting(configured), "220 shared.example ESMTP mailhost")
        self.assertTrue(os.path.exists(self.path("run", "shared.example", "mh-serve.pid")))

    def test_a_second_daemon_with_the_same_name_exits_75(self):
        a, b, c = free_ports(3)
        self.write_config("hostname: shared.example\n")
        first = Daemon(self, "--listen", f"pop3=127.0.0.1:{a}")
        first.wait_listening(f"pop3 on 127.0.0.1:{a}")
        second = Daemon(self, "--listen", f"pop3=127.0.0.1:{b}")
        self.assertEqual(second.proc.wait(60), 75, second.log())
        self.assertIn(f"mh-serve: error: another mh-serve with host name shared.example serves this spool "
                      f"(pid {first.proc.pid}): {self.spool}/run/shared.example/mh-serve.pid is locked; "
                      f"give each daemon its own --hostname", second.log())
        # Another name on the same spool is another daemon: it runs beside the first.
        third = Daemon(self, "--hostname", "other.example", "--listen", f"pop3=127.0.0.1:{c}")
        third.wait_listening(f"pop3 on 127.0.0.1:{c}")
        self.assertTrue(greeting(c).startswith("+OK"))
        self.assertTrue(greeting(a).startswith("+OK"))
        # The first one's claim ends with it (kill -9 included): its name is free again.
        first.proc.kill()
        first.proc.wait()
        self.daemons.remove(first)
        again = Daemon(self, "--listen", f"pop3=127.0.0.1:{b}")
        again.wait_listening(f"pop3 on 127.0.0.1:{b}")

    def test_malformed_identity_options_exit_64(self):
        port = free_ports(1)[0]
        cases = {
            ("--listen", "bogus"): "--listen bogus: expected SERVICE=ADDRESS:PORT, SERVICE one of smtp, submission, "
                                   "smtps, pop3, pop3s",
            ("--listen", "imap=127.0.0.1:143"): "--listen imap=127.0.0.1:143: expected SERVICE=ADDRESS:PORT",
            ("--listen", "smtp=localhost:25"): "--listen smtp=localhost:25: not an address:port",
            ("--listen", f"smtp=127.0.0.1:{port}", "--hostname", "bad/name"):
                "--hostname: host name 'bad/name' may hold only letters, digits, '.' and '-'",
            ("--listen", f"smtp=127.0.0.1:{port}", "--hostname", "locks"):
                "--hostname: host name 'locks' is taken: run/locks/ holds the spool's locks",
            ("--listen", f"smtp=127.0.0.1:{port}", "--hostname", ".."):
                "--hostname: host name '..' must start with a letter or digit",
        }
        for args, text in cases.items():
            with self.subTest(args=args):
                r = self.run_tool("mh-serve", "--spool", self.spool, *args)
                self.assertExit(r, 64)
                self.assertIn(text, r.err)
        self.assertFalse(os.path.exists(self.path("run", "..", "mh-serve.pid")))

    def test_daemons_starting_together_make_one_self_signed_pair(self):
        for round_ in range(6):
            with self.subTest(round=round_):
                self.tearDown_daemons()
                for f in ("cert.pem", "key.pem"):
                    if os.path.exists(self.path("tls", f)):
                        os.unlink(self.path("tls", f))
                ports = free_ports(2)
                self.write_config("")
                ds = [Daemon(self, "--hostname", f"h{i}.example", "--listen", f"pop3s=127.0.0.1:{p}")
                      for i, p in enumerate(ports)]
                for d, p in zip(ds, ports):
                    d.wait_listening(f"pop3s on 127.0.0.1:{p}")
                certs = [served_certificate(p) for p in ports]
                self.assertEqual(certs[0], certs[1])
                made = sum(d.log().count("tls: made a self-signed certificate") for d in ds)
                self.assertEqual(made, 1, [d.log() for d in ds])
                self.assertEqual(sorted(f for f in os.listdir(self.path("tls")) if f.endswith(".pem")),
                                 ["cert.pem", "key.pem"])

    def tearDown_daemons(self):
        for d in self.daemons:
            self.assertEqual(d.stop(), 0, d.log())
        self.daemons = []


@unittest.skipUnless(os.geteuid() == 0, "needs root: the key is readable by root only")
class RootOnlyKeyTest(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.owner = ensure_system_user(OWNER)
        os.chmod(self.tmp, 0o755)
        os.chown(self.spool, self.owner.pw_uid, self.owner.pw_gid)
        self.add_domain("example.org")
        self.proc = None
        self.private = tempfile.mkdtemp(prefix="mh-private-")
        os.chmod(self.private, 0o700)
        self.key = os.path.join(self.private, "key.pem")
        self.cert = os.path.join(self.private, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=rootkey.test"],
                       check=True, capture_output=True)
        os.chmod(self.key, 0o600)

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        shutil.rmtree(self.private, ignore_errors=True)
        super().tearDown()

    def test_a_key_only_root_may_read_is_loaded_before_the_drop(self):
        port = free_ports(1)[0]
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'listen: {{ pop3s: "127.0.0.1:{port}" }}\ntls: {{ cert: {self.cert}, key: {self.key} }}\n')
        err = os.path.join(self.tmp, "err")

        def log():
            with open(err, encoding="utf-8", errors="replace") as f:
                return f.read()

        with open(err, "wb") as e:
            self.proc = subprocess.Popen([mhtest.tool_path("mh-serve"), "--spool", self.spool],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e)
        deadline = time.time() + 60
        while f"listening for pop3s on 127.0.0.1:{port}" not in log():
            self.assertIsNone(self.proc.poll(), log())
            self.assertLess(time.time(), deadline, log())
            time.sleep(0.05)
        with open(self.cert) as f:
            want = ssl.PEM_cert_to_DER_cert(f.read())
        self.assertEqual(served_certificate(port), want)
        # It runs as the spool's owner, who cannot read the key...
        with open(f"/proc/{self.proc.pid}/status") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
        self.assertEqual(uid_line.split()[1:], [str(self.owner.pw_uid)] * 4)
        # ...so a reload cannot read it either: the loaded certificate stays.
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while "SIGHUP: TLS certificate NOT reloaded, keeping the old one" not in log():
            self.assertLess(time.time(), deadline, log())
            time.sleep(0.05)
        self.assertEqual(served_certificate(port), want)


if __name__ == "__main__":
    mhtest.main()
