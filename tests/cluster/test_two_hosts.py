#!/usr/bin/python3
"""Two mh-serve "hosts" on one spool on GlusterFS (issue 14 part 1, SPEC §8 "Several
daemons on one spool"): the volume is mounted twice (glusterfixture.py) and each daemon
serves the spool through its own mount with its own --hostname and --listen. Checks that
global state stays exact across the two: domain quota, one POP3 session per mailbox,
one runner per queue entry, one self-signed TLS pair. SKIPPED (exit 77) without FUSE."""

import hashlib
import json
import os
import poplib
import random
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import glusterfixture  # noqa: E402
import mhtest  # noqa: E402
from mhtest_mail import free_ports  # noqa: E402
from mhtest_outbound import RecordingPeer, wait_for  # noqa: E402
from daemonproc import die_with_parent, stop_process_group  # noqa: E402

DOMAIN = "cluster.test"
PASSWORD = "cluster-pw"
BOXES = [f"box{i}@{DOMAIN}" for i in range(4)]
DRAINED = BOXES[:2]        # fetched and deleted over POP3; the others fill the quota
QUOTA = 160 * 1024         # about 60 of the 2-3 KiB messages below
MSGID = re.compile(rb"^Message-ID: <([^>]+)>", re.M | re.I)
SIZE_IN_NAME = re.compile(r",S=(\d+)")
IN_USE = b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
COMMITTED = b"+OK Logging out, messages deleted."
LOAD_DEADLINE = 240        # seconds for the SMTP/POP3 phase, whatever happens
ALARM = 780                # below ctest's TIMEOUT (900): our own cleanup still runs


def quota_reply(box):
    return f"5.2.2 <{box}>: Disk quota exceeded".encode()


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


class Daemon:
    """One mh-serve on `spool` as host `name`, listening on the given services (free
    loopback ports of its own). Its own process group, dies with the test."""

    def __init__(self, spool, name, services, logdir):
        self.spool, self.name = spool, name
        self.ports = dict(zip(services, free_ports(len(services))))
        self.log_path = os.path.join(logdir, f"mh-serve.{name}.log")
        self.proc = None

    def launch(self):
        argv = [mhtest.tool_path("mh-serve"), "--spool", self.spool, "--hostname", self.name]
        for service, port in self.ports.items():
            argv += ["--listen", f"{service}=127.0.0.1:{port}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log, start_new_session=True, preexec_fn=die_with_parent)

    def wait_listening(self, timeout=90):
        """None once every listener is up; else how it failed (exit code and log)."""
        want = [f"listening for {s} on 127.0.0.1:{p}" for s, p in self.ports.items()]
        deadline = time.monotonic() + timeout
        while not all(w in self.log() for w in want):
            if self.proc.poll() is not None:
                return f"mh-serve {self.name} exited {self.proc.returncode}: {self.log()[-1500:]}"
            if time.monotonic() > deadline:
                return f"mh-serve {self.name} not listening after {timeout}s: {self.log()[-1500:]}"
            time.sleep(0.05)
        return None

    def stop(self):
        """SIGTERM; the problems of its end (exit code, sanitizer report), [] if none."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            stop_process_group(self.proc, 30)
        problems = []
        if self.proc.returncode != 0:
            problems.append(f"mh-serve {self.name} exited {self.proc.returncode} on SIGTERM")
        text = self.log()
        if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
            problems.append(f"sanitizer report in mh-serve {self.name}'s log: {text[-3000:]}")
        self.proc = None
        return problems

    def log(self):
        return read(self.log_path) if os.path.exists(self.log_path) else ""


class ClusterCase(unittest.TestCase):
    """Spools on the shared volume (one per test), made through mount 1."""

    def setUp(self):
        self.daemons = []
        self.sub = f"{self._testMethodName}"
        self.spool1 = os.path.join(VOLUME.mnt1, self.sub, "spool")
        self.spool2 = os.path.join(VOLUME.mnt2, self.sub, "spool")
        self.logdir = os.path.join(VOLUME.tmp, "logs-" + self.sub)
        os.makedirs(self.spool1)
        os.makedirs(self.logdir)

    def tearDown(self):
        problems = []
        for d in self.daemons:
            problems += d.stop()
        result = getattr(self._outcome, "result", None)
        failed = result is not None and any(t is self for t, _ in result.failures + result.errors)
        if problems or failed:
            for d in self.daemons:
                print(f"\n--- mh-serve {d.name} log ---\n{d.log()[-6000:]}---", file=sys.stderr)
        self.assertEqual(problems, [])

    def tool(self, name, *args, stdin=None, check=True):
        p = subprocess.run([mhtest.tool_path(name), "--spool", self.spool1, *args], input=stdin,
                           capture_output=True, text=True, timeout=300)
        if check:
            self.assertEqual(p.returncode, 0, f"{name} {args}: {p.stderr}")
        return p

    def provision(self, quota=None, config=""):
        extra = ["--quota", str(quota)] if quota else []
        self.tool("mh-user", "domain", "add", DOMAIN, *extra)
        for box in BOXES:
            self.tool("mh-user", "add", box, "--password-stdin", stdin=PASSWORD + "\n")
        with open(os.path.join(self.spool1, "mailhost.yaml"), "w") as f:
            f.write('hostname: cluster.test\ntrusted_networks: ["127.0.0.0/8"]\n' + config)

    def two_daemons(self, services):
        """h1 on mount 1, h2 on mount 2, launched back to back (the same moment, as far
        as two exec()s go); returns them after both listen."""
        a = Daemon(self.spool1, "h1", services, self.logdir)
        b = Daemon(self.spool2, "h2", services, self.logdir)
        self.daemons += [a, b]
        a.launch()
        b.launch()
        failures = [f for f in (a.wait_listening(), b.wait_listening()) if f]
        self.assertEqual(failures, [])
        return a, b


class LoadTest(ClusterCase):
    """SMTP into both daemons, POP3 fetch-and-delete from both, until the domain quota
    fills; nothing lost or fetched twice, quota passed by at most one message."""

    def setUp(self):
        super().setUp()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.accepted = {}           # Message-ID -> (box, daemon) for every 250 after DATA
        self.fetched = Counter()     # Message-ID -> sessions that RETR'd and DELE'd it, QUIT +OK
        self.deleted = set()         # in a session whose QUIT confirmed the deletion
        self.violations = []
        self.stats = Counter()
        self.max_size = 0
        self.max_usage = (0, "")     # highest domain usage seen, and when

    def note(self, what):
        with self.lock:
            self.stats[what] += 1

    def violation(self, text):
        with self.lock:
            self.violations.append(text)

    # --- SMTP ------------------------------------------------------------------------

    def writer(self, w, daemon):
        rng = random.Random(w)
        n = 0
        while not self.stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", daemon.ports["smtp"], timeout=120) as s:
                    s.ehlo("writer.test")
                    for _ in range(rng.randint(1, 5)):
                        if self.stop.is_set():
                            break
                        n += 1
                        self.send_one(s, rng, daemon, f"w{w}.{n}.{rng.getrandbits(32):08x}@writer.test")
            except (smtplib.SMTPException, OSError) as e:
                self.violation(f"writer {w} on {daemon.name}: {type(e).__name__}: {e}")
                time.sleep(0.5)

    def send_one(self, s, rng, daemon, msgid):
        box = rng.choice(BOXES)
        head = (f"From: writer@remote.test\r\nTo: {box}\r\nSubject: {msgid}\r\n"
                f"Message-ID: <{msgid}>\r\n\r\n")
        body = ("y" * 70 + "\r\n") * rng.randint(25, 40)
        try:
            s.sendmail("writer@remote.test", [box], head + body)
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients[box]
            self.quota_refusal(daemon, box, code, text, "RCPT")
            s.rset()
            return
        except smtplib.SMTPDataError as e:
            self.quota_refusal(daemon, box, e.smtp_code, e.smtp_error, "DATA")
            s.rset()
            return
        with self.lock:
            self.accepted[msgid] = (box, daemon.name)
            self.stats[f"accepted by {daemon.name}"] += 1

    def quota_refusal(self, daemon, box, code, text, phase):
        if (code, text) != (552, quota_reply(box)):
            self.violation(f"{daemon.name} {phase} for {box}: {code} {text!r}, not the quota reply")
            return
        self.note(f"quota refusals at {phase} by {daemon.name}")

    # --- POP3 ------------------------------------------------------------------------

    def fetcher(self, c, daemon):
        rng = random.Random(100 + c)
        while not self.stop.is_set():
            box = rng.choice(DRAINED)
            try:
                self.pop3_session(daemon, box, rng)
            except poplib.error_proto as e:
                if e.args[0] != IN_USE:
                    self.violation(f"POP3 {daemon.name} {box}: {e.args[0]!r}")
                else:
                    self.note(f"POP3 [IN-USE] on {daemon.name}")
                time.sleep(rng.uniform(0.1, 0.5))  # the other host's session: later
            except OSError as e:
                self.violation(f"POP3 {daemon.name} {box}: {type(e).__name__}: {e}")
                time.sleep(0.5)
            time.sleep(rng.uniform(0, 0.3))

    def pop3_session(self, daemon, box, rng):
        p = poplib.POP3("127.0.0.1", daemon.ports["pop3"], timeout=120)
        try:
            p.user(box)
            p.pass_(PASSWORD)
            _, listing, _ = p.list()
            taken = []
            for entry in listing[:rng.randint(1, 15)]:
                n = int(entry.split()[0])
                _, lines, _ = p.retr(n)
                m = MSGID.search(b"\r\n".join(lines))
                if not m:
                    self.violation(f"POP3 {daemon.name} {box} #{n} has no Message-ID")
                    continue
                msgid = m.group(1).decode()
                with self.lock:
                    if msgid in self.deleted:
                        self.violations.append(f"fetched again after its deletion was confirmed: {msgid}")
                p.dele(n)
                taken.append(msgid)
            reply = p.quit()
            if taken and reply != COMMITTED:
                self.violation(f"POP3 {daemon.name} {box} QUIT: {reply!r}")
            elif taken:
                with self.lock:
                    self.deleted.update(taken)
                    self.fetched.update(taken)
                    self.stats[f"fetched via {daemon.name}"] += len(taken)
        finally:
            p.close()

    # --- the spool, sampled and at the end -------------------------------------------

    def maildirs(self):
        for box in BOXES:
            local = box.split("@")[0]
            yield os.path.join(self.spool1, "domains", DOMAIN, "accounts", local, "Maildir")

    def domain_usage(self):
        """Bytes of the domain's messages as the quota counts them (S= of the Maildir++
        names), each message once even when it moved from new/ to cur/ during the walk."""
        sizes = {}
        for md in self.maildirs():
            for sub in ("new", "cur"):
                try:
                    names = os.listdir(os.path.join(md, sub))
                except FileNotFoundError:
                    continue
                for name in names:
                    m = SIZE_IN_NAME.search(name)
                    if m:
                        sizes[name.split(":")[0]] = int(m.group(1))
        return sum(sizes.values()), max(sizes.values(), default=0)

    def torn_lines(self, final):
        """maildirsize lines that are not `<int> <int>` (the first is the quota, `<n>S`).
        While sampling, a last line without its newline may be a write in progress."""
        bad = []
        for md in self.maildirs():
            path = os.path.join(md, "maildirsize")
            try:
                text = read(path)
            except FileNotFoundError:
                continue
            lines = text.split("\n")
            last = lines.pop()
            if last and final:
                bad.append(f"{path}: last line without newline {last!r}")
            for i, line in enumerate(lines):
                if i == 0 and re.fullmatch(r"(\d+S(,\d+C)?)?", line):
                    continue
                if not re.fullmatch(r"-?\d+ -?\d+", line):
                    bad.append(f"{path} line {i + 1}: {line!r}")
        return bad

    def sampler(self):
        seen_torn = set()
        while not self.stop.is_set():
            usage, biggest = self.domain_usage()
            with self.lock:
                self.max_size = max(self.max_size, biggest)
                if usage > self.max_usage[0]:
                    self.max_usage = (usage, f"{time.strftime('%H:%M:%S')}")
                self.stats["usage samples"] += 1
            for t in self.torn_lines(final=False):
                if t not in seen_torn:
                    seen_torn.add(t)
                    self.violation(f"torn maildirsize line (seen while running): {t}")
            time.sleep(0.2)

    def quota_filled(self):
        """True once each daemon has refused for quota a few times."""
        with self.lock:
            return all(sum(n for k, n in self.stats.items()
                           if k.startswith("quota refusals") and k.endswith(d.name)) >= 3
                       for d in self.daemons)

    def test_smtp_and_pop3_on_both_hosts_until_the_quota_fills(self):
        self.provision(quota=QUOTA)
        a, b = self.two_daemons(("smtp", "pop3"))
        for d in (a, b):
            with socket.create_connection(("127.0.0.1", d.ports["smtp"]), timeout=60) as s:
                self.assertEqual(s.makefile("rb").readline(), f"220 {d.name} ESMTP mailhost\r\n".encode())
        threads = [threading.Thread(target=self.writer, args=(w, d)) for w, d in enumerate((a, b, a, b))]
        threads += [threading.Thread(target=self.fetcher, args=(c, d)) for c, d in enumerate((a, b))]
        threads.append(threading.Thread(target=self.sampler))
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            deadline = started + LOAD_DEADLINE
            while not self.quota_filled() and time.monotonic() < deadline:
                time.sleep(0.5)
            filled = self.quota_filled()
            time.sleep(3)  # some more sending and fetching with the quota full
        finally:
            self.stop.set()
            for t in threads:
                t.join(180)
        elapsed = time.monotonic() - started
        problems = sum((d.stop() for d in (a, b)), [])
        self.check_end(problems)
        print(f"\nload phase {elapsed:.0f}s; highest domain usage {self.max_usage[0]} of quota {QUOTA} "
              f"(largest message {self.max_size}) at {self.max_usage[1]}", file=sys.stderr)
        for what, n in sorted(self.stats.items()):
            print(f"  {what}: {n}", file=sys.stderr)
        self.assertTrue(filled, f"the quota did not fill on both hosts in {LOAD_DEADLINE}s: {dict(self.stats)}")
        self.assertEqual(problems + self.violations, [])

    def check_end(self, problems):
        present = Counter()
        for md in self.maildirs():
            for sub in ("new", "cur"):
                for name in os.listdir(os.path.join(md, sub)):
                    with open(os.path.join(md, sub, name), "rb") as f:
                        m = MSGID.search(f.read(64 * 1024))
                    present[m.group(1).decode() if m else f"(no Message-ID) {name}"] += 1
        for msgid, (box, host) in self.accepted.items():
            n = present[msgid] + self.fetched[msgid]
            if n != 1:
                problems.append(f"accepted by {host} for {box}, then stored {present[msgid]} times and "
                                f"fetched {self.fetched[msgid]} times: {msgid}")
        for msgid in set(present) | set(self.fetched):
            if msgid not in self.accepted:
                problems.append(f"in the spool or fetched but never accepted with 250: {msgid}")
        usage, biggest = self.domain_usage()
        self.max_size = max(self.max_size, biggest)
        self.max_usage = max(self.max_usage, (usage, "at the end"))
        if self.max_usage[0] > QUOTA + self.max_size:
            problems.append(f"domain usage {self.max_usage[0]} ({self.max_usage[1]}) passed the quota {QUOTA} "
                            f"by more than one message ({self.max_size})")
        problems += [f"torn maildirsize line at the end: {t}" for t in self.torn_lines(final=True)]
        recalc = self.tool("mh-quota", "recalc", "--json", check=False)
        if recalc.returncode != 0:
            problems.append(f"mh-quota recalc exited {recalc.returncode}: {recalc.stderr}")
        else:
            problems += under_counts(json.loads(recalc.stdout))
        self.stats["stored at the end"] = sum(present.values())


def under_counts(doc):
    """Every record in mh-quota recalc --json that recalc raised (recorded < counted)."""
    found = []
    if isinstance(doc, dict):
        if "previous_bytes" in doc and "usage_bytes" in doc:
            if doc["previous_bytes"] < doc["usage_bytes"] or \
                    doc.get("previous_messages", 0) < doc.get("usage_messages", 0):
                found.append(f"mh-quota recalc raised a recorded usage (an under-count): {doc}")
        for v in doc.values():
            found += under_counts(v)
    elif isinstance(doc, list):
        for v in doc:
            found += under_counts(v)
    return found


class TlsPairTest(ClusterCase):
    """Both daemons started at once on a fresh spool make (or read) one self-signed pair:
    issue 14 saw one exit 78 "key values mismatch" one run in four on GlusterFS."""

    ROUNDS = 4

    def test_both_hosts_serve_one_self_signed_certificate(self):
        problems = []
        for r in range(self.ROUNDS):
            spool1 = os.path.join(self.spool1, f"round{r}")
            os.makedirs(spool1)
            subprocess.run([mhtest.tool_path("mh-user"), "--spool", spool1, "domain", "add", DOMAIN],
                           check=True, capture_output=True, timeout=120)
            with open(os.path.join(spool1, "mailhost.yaml"), "w") as f:
                f.write("hostname: cluster.test\n")
            a = Daemon(spool1, "h1", ("pop3s",), self.logdir)
            b = Daemon(os.path.join(self.spool2, f"round{r}"), "h2", ("pop3s",), self.logdir)
            self.daemons += [a, b]
            a.launch()
            b.launch()
            failures = [f for f in (a.wait_listening(), b.wait_listening()) if f]
            if failures:
                problems += [f"round {r}: {f}" for f in failures]
            else:
                prints = {d.name: cert_fingerprint(d.ports["pop3s"]) for d in (a, b)}
                if len(set(prints.values())) != 1:
                    problems.append(f"round {r}: the hosts serve different certificates: {prints}")
            for d in (a, b):
                problems += [f"round {r}: {p}" for p in d.stop()]
            self.daemons = []
        self.assertEqual(problems, [])


def cert_fingerprint(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        with ctx.wrap_socket(raw, server_hostname="cluster.test") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


class QueueTest(ClusterCase):
    """Mail for a remote address submitted through both daemons goes out by relay.host
    exactly once: the two queue runners share one queue."""

    N = 20

    def test_each_queue_entry_sent_once(self):
        [relay_port] = free_ports(1)
        peer = RecordingPeer("127.0.0.1", relay_port)
        self.addCleanup(peer.stop)
        self.provision(config=f'relay: {{ host: "127.0.0.1:{relay_port}" }}\n'
                              "outbound: { retry: [1s], give_up: 5d, timeout: 20s, connect_timeout: 5s }\n"
                              "limits: { sending_per_hour: 1000 }\n")
        a, b = self.two_daemons(("smtp",))
        sent = []
        for i in range(self.N):
            d = (a, b)[i % 2]
            msgid = f"q{i}.{os.getpid()}@{DOMAIN}"
            with smtplib.SMTP("127.0.0.1", d.ports["smtp"], timeout=120) as s:
                s.login(BOXES[0], PASSWORD)
                s.sendmail(BOXES[0], [f"far{i}@remote.test"],
                           f"From: {BOXES[0]}\r\nTo: far{i}@remote.test\r\nSubject: queue {i}\r\n"
                           f"Message-ID: <{msgid}>\r\n\r\nqueued through {d.name}\r\n")
            sent.append(f"<{msgid}>")
        wait_for(lambda: len(peer.messages()) >= self.N, 180, step=0.2, what=f"{self.N} messages at the relay")
        wait_for(lambda: not queue_entries(self.spool1), 60, step=0.2, what="an empty queue")
        time.sleep(3)  # a second runner's late duplicate would arrive now
        got = Counter(m.message_id for m in peer.messages())
        self.assertEqual({i: n for i, n in got.items() if n != 1 or i not in sent}, {})
        self.assertEqual(sorted(got), sorted(sent))


def queue_entries(spool):
    q = os.path.join(spool, "queue")
    return [n for n in os.listdir(q) if n.endswith(".env")] if os.path.isdir(q) else []


VOLUME = None


def setUpModule():
    global VOLUME
    VOLUME = glusterfixture.open_volume()
    print(f"\nvolume {VOLUME.volume} up in {VOLUME.setup_secs:.1f}s", file=sys.stderr)


def tearDownModule():
    global VOLUME
    if VOLUME is not None:
        vol, VOLUME = VOLUME, None
        vol.close()
        print(f"\nvolume torn down in {vol.teardown_secs:.1f}s", file=sys.stderr)


def on_alarm(_signum, _frame):
    raise TimeoutError(f"the cluster test ran longer than {ALARM}s")


if __name__ == "__main__":
    try:
        glusterfixture.check_prerequisites()
    except glusterfixture.Skip as e:
        glusterfixture.skip(str(e))
    glusterfixture.exit_on_signals()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(ALARM)
    try:
        unittest.main(verbosity=2)
    finally:
        tearDownModule()
