#!/usr/bin/env python3
"""The measuring side of bench/lists.sh (python3; the sink is Debian's python3-aiosmtpd):
one post to a list of LOCAL local + REMOTE remote members, timed from the 250 to the
post's DATA until

  * local:  the runner's "distributed as LIST #N" log line, which mh-serve writes after
            every local copy is linked and its new/ fsynced (and the remote queue
            entries written) — cross-checked by the archive file's link count reaching
            1 + LOCAL (each local copy is a hard link of archive/new/<seq>), and by
            walking every member's Maildir afterwards (exactly one copy each);
  * remote: the aiosmtpd sink behind relay.host has accepted (250 to DATA) the post for
            every remote member (counted per recipient, each exactly once).

mh-serve's peak RSS: VmHWM from /proc/PID/status at the end (and VmRSS sampled while
waiting). One RESULT line per run (benchlib.py's format).

  lists.py freeports N
  lists.py members --local N --remote N --domains D --domain DOMAIN     # the member list
  lists.py run --name NAME --run N --serve BIN --spool DIR --port P --sink-port P ...
  lists.py table --results FILE
"""
import argparse
import os
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import read_results, result  # noqa: E402

try:
    import aiosmtpd  # noqa: F401
except ImportError:  # a pyenv python3 does not see Debian's dist-packages
    sys.path.append("/usr/lib/python3/dist-packages")
from aiosmtpd.controller import Controller  # noqa: E402
import logging  # noqa: E402

logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def log(msg):
    print(f"[lists {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cmd_freeports(a):
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
        s.close()


def local_member(i, domain):
    return f"u{i:04d}@{domain}"


def remote_member(i, domains):
    return f"r{i:04d}@d{i % domains:02d}.remote.test"


def cmd_members(a):
    for i in range(a.local):
        print(local_member(i, a.domain))
    for i in range(a.remote):
        print(remote_member(i, a.domains))


class Sink:
    """aiosmtpd on 127.0.0.1:port: accepts everything; per recipient of a message
    carrying a marker, the time of the 250 to its DATA and how often."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.got = {}          # marker -> {rcpt: count}
        self.last = {}         # marker -> monotonic time of the latest acceptance
        self.transactions = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                data = envelope.original_content or envelope.content
                m = re.search(rb"Message-ID: <([0-9a-f]{32})@bench\.client>", data)
                now = time.monotonic()
                with sink.lock:
                    sink.transactions += 1
                    if m:
                        key = m.group(1).decode()
                        per = sink.got.setdefault(key, {})
                        for r in envelope.rcpt_tos:
                            per[r] = per.get(r, 0) + 1
                        sink.last[key] = now
                return "250 2.0.0 Ok: accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=10)
        self.controller.start()

    def count(self, marker):
        with self.lock:
            return len(self.got.get(marker, {})), self.last.get(marker)

    def recipients(self, marker):
        with self.lock:
            return dict(self.got.get(marker, {}))

    def stop(self):
        self.controller.stop()


def status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def wait_port(port, secs, proc):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.recv(100)
                return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.02)
    return False


def message(marker, poster, list_address, size):
    head = (f"From: Bench Poster <{poster}>\r\nTo: <{list_address}>\r\nSubject: benchmark post {marker[:8]}\r\n"
            f"Message-ID: <{marker}@bench.client>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0900\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    body = ""
    i = 0
    while len(head) + len(body) < size:
        body += f"line {i:05d} of the benchmark post, padding padding padding padding padding.\r\n"
        i += 1
    return (head + body).encode()


def cmd_run(a):
    spool = a.spool
    name, domain = a.list.split("@")
    list_dir = os.path.join(spool, "domains", domain, "lists", name)
    accounts = os.path.join(spool, "domains", domain, "accounts")
    locals_ = [local_member(i, domain) for i in range(a.local)]
    remotes = [remote_member(i, a.domains) for i in range(a.remote)]
    sink = Sink(a.sink_port)
    logf = open(a.log, "ab")
    logf.write(f"=== {a.name} run {a.run} {time.strftime('%T')} ===\n".encode())
    logf.flush()
    log_start = os.path.getsize(a.log)
    proc = subprocess.Popen([a.serve, "--spool", spool], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=logf)
    ok = 1
    kv = dict(name=a.name, run=a.run)
    try:
        if not wait_port(a.port, 30, proc):
            raise SystemExit(f"mh-serve does not listen on {a.port} (see {a.log})")
        time.sleep(0.5)  # let the runner's first scan of the (empty) queue pass
        hwm_idle = status(proc.pid).get("VmHWM", 0)
        marker = uuid.uuid4().hex
        data = message(marker, a.poster, a.list, a.size)
        seq_before = read_seq(list_dir)
        s = smtplib.SMTP("127.0.0.1", a.port, local_hostname="bench.client", timeout=120)
        s.ehlo()
        s.mail(a.poster)
        code, text = s.rcpt(a.list)
        if code != 250:
            raise SystemExit(f"RCPT {a.list}: {code} {text!r}")
        code, text = s.data(data)
        t0 = time.monotonic()
        s.quit()
        if code != 250:
            raise SystemExit(f"DATA: {code} {text!r}")
        qid = re.search(r"queued as (\S+)", text.decode()).group(1)
        seq = seq_before + 1
        archived = os.path.join(list_dir, "archive", "new", f"{seq:08d}")
        line_re = re.compile(rf"queue {re.escape(qid)}: to=<{re.escape(a.list)}> relay=\S+ status=(\w+) \((.*)\)")
        t_links = t_line = t_remote = None
        detail = ""
        max_rss = 0
        deadline = t0 + a.timeout
        while t_line is None or t_remote is None:
            now = time.monotonic()
            if now > deadline:
                ok = 0
                log(f"timed out: line={t_line} remote={sink.count(marker)[0]}/{a.remote}")
                break
            if proc.poll() is not None:
                raise SystemExit(f"mh-serve exited with {proc.returncode} (see {a.log})")
            if t_links is None:
                try:
                    if os.stat(archived).st_nlink >= 1 + a.local:
                        t_links = now
                except FileNotFoundError:
                    pass
            if t_line is None:
                with open(a.log, "rb") as f:
                    f.seek(log_start)
                    m = line_re.search(f.read().decode("utf-8", "replace"))
                if m:
                    t_line = now
                    detail = m.group(2)
                    if m.group(1) != "sent":
                        log(f"the list post ended {m.group(1)}: {detail}")
                        ok = 0
            if t_remote is None:
                n, last = sink.count(marker)
                if a.remote == 0:
                    t_remote = t0
                elif n >= a.remote:
                    t_remote = last
            max_rss = max(max_rss, status(proc.pid).get("VmRSS", 0))
            time.sleep(0.005)
        st = status(proc.pid)
        # Verification (untimed): every local member once, every remote member once.
        want = f"<{marker}@bench.client>".encode()
        local_counts = {}
        for addr in locals_:
            n = 0
            md = os.path.join(accounts, addr.split("@")[0], "Maildir")
            for sub in ("new", "cur"):
                for fname in os.listdir(os.path.join(md, sub)):
                    with open(os.path.join(md, sub, fname), "rb") as f:
                        if want in f.read(4096):
                            n += 1
            local_counts[n] = local_counts.get(n, 0) + 1
        remote = sink.recipients(marker)
        remote_missing = sum(1 for r in remotes if r not in remote)
        remote_dups = sum(1 for v in remote.values() if v > 1)
        if local_counts != {1: a.local} or remote_missing or remote_dups:
            ok = 0
            log(f"verification failed: local copies per member {local_counts}, remote missing {remote_missing}, "
                f"remote twice {remote_dups}")
        if not detail.startswith(f"distributed as {a.list} #{seq}:"):
            ok = 0
            log(f"unexpected detail: {detail!r}")
        secs_local = (t_line - t0) if t_line else None
        kv.update(secs_local=secs_local if secs_local else "-",
                  secs_links=(t_links - t0) if t_links else "-",
                  secs_remote=(t_remote - t0) if t_remote else "-",
                  files_per_s=(a.local / secs_local) if secs_local else "-",
                  remote_per_s=(a.remote / (t_remote - t0)) if t_remote and a.remote else "-",
                  local=a.local, remote=a.remote, seq=seq, bytes=len(data),
                  hwm_kb=st.get("VmHWM", 0), hwm_idle_kb=hwm_idle, rss_max_sampled_kb=max_rss,
                  threads=st.get("Threads", 0), sink_transactions=sink.transactions, ok=ok)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sink.stop()
        logf.close()
    result(**kv)
    return 0 if ok else 1


def read_seq(list_dir):
    try:
        with open(os.path.join(list_dir, "seq")) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def cmd_table(a):
    runs = read_results(a.results)

    def med(name, field):
        vals = []
        for r in runs.get(name, []):
            try:
                vals.append(float(r[field]))
            except (KeyError, ValueError):
                pass
        return (statistics.median(vals), len(vals), min(vals), max(vals)) if vals else (None, 0, None, None)

    local, n_local, lo, hi = med(a.list_name, "files_per_s")
    rows = [["measure", "median (n)", "min–max", "target", ""]]
    for label, fs in (("fsbench fsync, 8 writers", "fsbench_fsync_c8"), ("fsbench fsync+dir, 8 writers",
                                                                          "fsbench_fsyncdir_c8")):
        v, n, vlo, vhi = med(fs, "files_per_s")
        if v is None:
            continue
        rows.append([f"{label} (files/s)", f"{v:,.0f} ({n})", f"{vlo:,.0f}–{vhi:,.0f}", "", ""])
        pairs = []
        by_run = {r.get("run"): r for r in runs.get(fs, [])}
        for r in runs.get(a.list_name, []):
            try:
                pairs.append(float(r["files_per_s"]) / float(by_run[r.get("run")]["files_per_s"]))
            except (KeyError, ValueError, ZeroDivisionError):
                pass
        if pairs:
            rows.append([f"  same round: list ÷ {label}", f"{statistics.median(pairs):.2f} ({len(pairs)})",
                         f"{min(pairs):.2f}–{max(pairs):.2f}", "", ""])
        if local is not None:
            ratio = local / v
            target = ">= 0.5" if fs == "fsbench_fsync_c8" else ""
            check = ("ok" if ratio >= 0.5 else "MISSED") if target else ""
            rows.append([f"list local copies/s ÷ {label}", f"{ratio:.2f}", "", target, check])
            result(name="ratio", a=a.list_name, b=fs, field="files_per_s", a_median=local, b_median=v, ratio=ratio,
                   target=target.replace(" ", "") or "-", check=check or "-")
    if local is not None:
        rows.insert(1, [f"list: local copies/s ({a.local} local)", f"{local:,.0f} ({n_local})", f"{lo:,.0f}–{hi:,.0f}",
                        "", ""])
    for field, label in (("secs_local", "250 → every local copy durable (log line)"),
                         ("secs_links", "250 → every local link exists (nlink)"),
                         ("secs_remote", f"250 → every remote copy accepted ({a.remote} remote)")):
        v, n, vlo, vhi = med(a.list_name, field)
        if v is not None:
            rows.append([label, f"{v:.3f} s ({n})", f"{vlo:.3f}–{vhi:.3f} s", "", ""])
    v, n, vlo, vhi = med(a.list_name, "hwm_kb")
    if v is not None:
        mx = vhi / 1024
        rows.append(["mh-serve peak RSS (VmHWM)", f"{v / 1024:.1f} MB ({n})", f"{vlo / 1024:.1f}–{mx:.1f} MB",
                     "< 64 MB", "ok" if mx < 64 else "MISSED"])
    bad = [r for r in runs.get(a.list_name, []) if r.get("ok") != "1"]
    if bad:
        rows.append([f"runs that failed verification: {len(bad)}", "", "", "", "MISSED"])
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if i == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("freeports")
    p.add_argument("n", type=int)
    p.set_defaults(f=cmd_freeports)
    p = sp.add_parser("members")
    p.add_argument("--local", type=int, required=True)
    p.add_argument("--remote", type=int, required=True)
    p.add_argument("--domains", type=int, default=50)
    p.add_argument("--domain", required=True)
    p.set_defaults(f=cmd_members)
    p = sp.add_parser("run")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--serve", required=True)
    p.add_argument("--spool", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sink-port", type=int, required=True)
    p.add_argument("--list", required=True)
    p.add_argument("--poster", required=True)
    p.add_argument("--local", type=int, required=True)
    p.add_argument("--remote", type=int, required=True)
    p.add_argument("--domains", type=int, default=50)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(f=cmd_run)
    p = sp.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--list-name", default="list_post_5000")
    p.add_argument("--local", type=int, default=2500)
    p.add_argument("--remote", type=int, default=2500)
    p.set_defaults(f=cmd_table)
    a = ap.parse_args()
    sys.exit(a.f(a) or 0)


if __name__ == "__main__":
    main()
