#!/usr/bin/python3
"""race.py — two mh-serve daemons and the tools racing on one spool (issue 13, "Also";
SPEC §8 "Several daemons on one spool"): 8 SMTP writers, 2 POP3 clients that fetch and
delete, and mh-purge started and killed with SIGKILL at random instants, for DURATION
seconds. Then every message accepted with 250 must be in a Maildir, or deleted by a POP3
DELE that got +OK, or be one mh-purge may remove (the big ones); no message is fetched
again after a QUIT confirmed its deletion; no file is left in any tmp/; `mh-quota recalc`
finds only over-counts (recorded >= actual). Exit 0 when all hold, 1 with the
violations listed. Driven by race.sh (README.md there); the two daemons share the spool
but listen on different ports: mailhost.yaml is read once at start, so each is started
with its own ports written there just before."""

import os
import poplib
import random
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
import json
from collections import Counter

BIN = os.environ.get("MH_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/tools"))
DURATION = float(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DURATION", "600"))
WRITERS, POP3_CLIENTS = 8, 2
DOMAIN = "example.org"
BOXES = [f"box{i}@{DOMAIN}" for i in range(4)]  # box0, box1: POP3-drained; all: mh-purge
POP3_BOXES = BOXES[:2]
PASSWORD = "stress-pw"
BIG = 24 * 1024            # "purgeable" messages are this size ...
PURGE_SELECTOR = "16K"     # ... and only they match mh-purge --larger-than
MSGID = re.compile(rb"^Message-ID: <([^>]+)>", re.M | re.I)


def tool(name):
    p = os.path.join(BIN, name, name)
    return p if os.path.exists(p) else os.path.join(BIN, name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Race:
    def __init__(self, work):
        self.work = work
        self.spool = os.path.join(work, "spool")
        os.mkdir(self.spool)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = {}          # Message-ID -> (mailbox, purgeable), from 250 after DATA
        self.dele_ok = set()        # DELE answered +OK
        self.committed = set()      # QUIT answered "+OK Logging out, messages deleted."
        self.violations = []
        self.stats = Counter()
        self.daemons = []           # (Popen, smtp port, pop3 port, log path)
        self.idlog = open(os.path.join(work, "message-ids.log"), "a", buffering=1)

    # --- setup -------------------------------------------------------------------------

    def run_tool(self, *args, stdin=None, check=True):
        p = subprocess.run([tool(args[0]), "--spool", self.spool, *args[1:]], input=stdin,
                           capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            raise RuntimeError(f"{args} exited {p.returncode}: {p.stderr}")
        return p

    def provision(self):
        self.run_tool("mh-user", "domain", "add", DOMAIN, "--quota", "2G")
        for box in BOXES:
            self.run_tool("mh-user", "add", box, "--password-stdin", stdin=PASSWORD + "\n")

    def start_daemon(self, n):
        smtp, pop3 = free_port(), free_port()
        # One shared mailhost.yaml; each daemon its own name and ports (SPEC §8 "Several
        # daemons on one spool": a second daemon with the same name is refused).
        with open(os.path.join(self.spool, "mailhost.yaml"), "w") as f:
            f.write('hostname: stress.test\ntrusted_networks: ["127.0.0.0/8"]\n')
        log = os.path.join(self.work, f"mh-serve.{n}.log")
        with open(log, "wb") as err:
            proc = subprocess.Popen([tool("mh-serve"), "--spool", self.spool, "--hostname", f"h{n}.stress.test",
                                     "--listen", f"smtp=127.0.0.1:{smtp}", "--listen", f"pop3=127.0.0.1:{pop3}"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        want = [f"listening for smtp on 127.0.0.1:{smtp}", f"listening for pop3 on 127.0.0.1:{pop3}"]
        deadline = time.time() + 60
        while not all(w in read(log) for w in want):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mh-serve {n} did not start ({proc.poll()}): {read(log)}")
            time.sleep(0.05)
        self.daemons.append((proc, smtp, pop3, log))

    # --- the racers --------------------------------------------------------------------

    def violation(self, text):
        with self.lock:
            self.violations.append(text)

    def writer(self, w):
        rng = random.Random(w)
        n = 0
        while not self.stop.is_set():
            _, port, _, _ = rng.choice(self.daemons)
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                    s.ehlo("writer.test")
                    for _ in range(rng.randint(1, 5)):
                        if self.stop.is_set():
                            break
                        n += 1
                        self.send_one(s, rng, f"w{w}.{n}.{rng.getrandbits(32):08x}@stress.test")
            except (smtplib.SMTPException, OSError) as e:
                self.count(f"smtp connection error {type(e).__name__}: {e}"[:80])

    def send_one(self, s, rng, msgid):
        box = rng.choice(BOXES)
        purgeable = rng.random() < 0.1
        size = BIG if purgeable else rng.randint(200, 4000)
        head = f"From: writer@remote.test\r\nTo: {box}\r\nSubject: race\r\nMessage-ID: <{msgid}>\r\n\r\n"
        body = ("x" * 70 + "\r\n") * (size // 72 + 1)
        try:
            s.sendmail("writer@remote.test", [box], head + body)
        except smtplib.SMTPResponseException as e:
            self.count(f"smtp {e.smtp_code}")
            s.rset()
            return
        except smtplib.SMTPRecipientsRefused as e:
            self.count("smtp rcpt " + str(list(e.recipients.values())[0][0]))
            s.rset()
            return
        with self.lock:
            self.accepted[msgid] = (box, purgeable)
            self.stats["accepted (purgeable)" if purgeable else "accepted"] += 1
        self.idlog.write(f"accepted {msgid} {box} {'purgeable' if purgeable else 'kept'}\n")

    def pop3_client(self, c):
        rng = random.Random(100 + c)
        while not self.stop.is_set():
            _, _, port, _ = rng.choice(self.daemons)
            box = rng.choice(POP3_BOXES)
            try:
                self.pop3_session(port, box, rng)
            except poplib.error_proto as e:
                self.count("pop3 " + e.args[0].decode(errors="replace")[:40])
                time.sleep(0.05)
            except OSError as e:
                self.count(f"pop3 connection error {type(e).__name__}: {e}"[:80])

    def pop3_session(self, port, box, rng):
        p = poplib.POP3("127.0.0.1", port, timeout=60)
        try:
            p.user(box)
            p.pass_(PASSWORD)
            _, listing, _ = p.list()
            marked = []
            for entry in listing[:rng.randint(1, 30)]:
                n = int(entry.split()[0])
                try:
                    _, lines, _ = p.retr(n)
                except poplib.error_proto:  # purged since the LIST: "no longer available"
                    self.count("pop3 retr gone")
                    continue
                m = MSGID.search(b"\r\n".join(lines))
                msgid = m.group(1).decode() if m else None
                with self.lock:
                    if msgid in self.committed:
                        self.violations.append(f"fetched again after its deletion was confirmed: {msgid}")
                    self.stats["pop3 retrieved"] += 1
                if msgid and rng.random() < 0.9:
                    p.dele(n)  # raises unless +OK
                    marked.append(msgid)
                    with self.lock:
                        self.dele_ok.add(msgid)
                    self.idlog.write(f"dele-ok {msgid} {box}\n")
            if rng.random() < 0.1:
                self.count("pop3 dropped without quit")
                return  # close() below, without QUIT: nothing may be deleted
            resp = p.quit()
            if marked and resp == b"+OK Logging out, messages deleted.":
                with self.lock:
                    self.committed.update(marked)
                    self.stats["pop3 deleted"] += len(marked)
        finally:
            p.close()

    def purger(self):
        rng = random.Random(7)
        while not self.stop.is_set():
            proc = subprocess.Popen([tool("mh-purge"), "--spool", self.spool, DOMAIN, "--larger-than", PURGE_SELECTOR],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if rng.random() < 0.25:  # some runs must finish, or only the kill is tested
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(rng.uniform(0, 1.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                self.count("mh-purge killed")
            err = proc.communicate()[1].decode(errors="replace")
            if proc.returncode == 0:
                self.count("mh-purge finished")
            elif proc.returncode == 75:
                self.count("mh-purge busy (75)")
            elif proc.returncode != -signal.SIGKILL:
                self.violation(f"mh-purge exited {proc.returncode}: {err.strip()}")
            time.sleep(rng.uniform(0, 0.3))

    def count(self, what):
        with self.lock:
            self.stats[what] += 1

    # --- the checks --------------------------------------------------------------------

    def check(self):
        present = Counter()
        for box in BOXES:
            local = box.split("@")[0]
            for sub in ("new", "cur"):
                d = os.path.join(self.spool, "domains", DOMAIN, "accounts", local, "Maildir", sub)
                for name in os.listdir(d):
                    with open(os.path.join(d, name), "rb") as f:
                        m = MSGID.search(f.read(64 * 1024))
                    if m:
                        present[m.group(1).decode()] += 1
        for msgid, n in present.items():
            if n > 1:
                self.violations.append(f"stored {n} times: {msgid}")
        lost = [i for i, (box, purgeable) in self.accepted.items()
                if not purgeable and i not in present and i not in self.dele_ok]
        for msgid in lost[:20]:
            self.violations.append(f"accepted with 250 but gone: {msgid} ({self.accepted[msgid][0]})")
        if len(lost) > 20:
            self.violations.append(f"... {len(lost)} lost in all")
        for root, _, files in os.walk(self.spool):
            if os.path.basename(root) == "tmp" and files:
                self.violations.append(f"left in {os.path.relpath(root, self.spool)}: {sorted(files)[:5]}")
        recalc = json.loads(self.run_tool("mh-quota", "recalc", "--json").stdout)
        for mb in recalc["mailboxes"]:
            if mb["previous_bytes"] < mb["usage_bytes"] or mb["previous_messages"] < mb["usage_messages"]:
                self.violations.append(f"quota under-counted: {mb}")
            elif (mb["previous_bytes"], mb["previous_messages"]) != (mb["usage_bytes"], mb["usage_messages"]):
                self.stats["quota over-counted mailboxes"] += 1
        for proc, _, _, log in self.daemons:
            text = read(log)
            if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
                self.violations.append(f"sanitizer report in {log}")
            if proc.returncode != 0:
                self.violations.append(f"mh-serve exited {proc.returncode} after SIGTERM ({log})")
        self.stats["stored at the end"] = sum(present.values())

    def run(self):
        self.provision()
        self.start_daemon(1)
        self.start_daemon(2)
        threads = [threading.Thread(target=self.writer, args=(w,)) for w in range(WRITERS)]
        threads += [threading.Thread(target=self.pop3_client, args=(c,)) for c in range(POP3_CLIENTS)]
        threads.append(threading.Thread(target=self.purger))
        for t in threads:
            t.start()
        time.sleep(DURATION)
        self.stop.set()
        for t in threads:
            t.join()
        for proc, _, _, _ in self.daemons:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _, _ in self.daemons:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.check()


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def main():
    work = tempfile.mkdtemp(prefix="mh-race-")
    race = Race(work)
    started = time.time()
    try:
        race.run()
    except Exception as e:  # setup failed: report it as the one violation
        race.violations.append(f"{type(e).__name__}: {e}")
    finally:
        # A daemon started before the failure must not outlive the test.
        for proc, _, _, _ in race.daemons:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(f"race: {DURATION:.0f}s run in {time.time() - started:.0f}s, work dir {work}")
    for what, n in sorted(race.stats.items()):
        print(f"  {what}: {n}")
    if race.violations:
        print(f"race: {len(race.violations)} VIOLATIONS (work dir kept):")
        for v in race.violations:
            print("  " + v)
        return 1
    print("race: ok")
    if not os.environ.get("MH_STRESS_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
