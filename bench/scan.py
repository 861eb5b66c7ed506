#!/usr/bin/env python3
"""The measuring side of bench/scan.sh, issue 12 (python3 standard library only): what
virus scanning (clamd INSTREAM) costs mh-serve's SMTP ingest, against clamd's own time.

Subcommands (each measurement is one "RESULT name=... run=N key=value ..." line):
  mkmsg     a clean benchmark message (4k: one text part; 1m: a text part and a base64
            attachment of random bytes) and, next to it, the decoded parts mh-serve sends
            to clamd (one INSTREAM connection per leaf part)
  smoke     one clean and one EICAR message over SMTP: the replies, and whether the
            stored EICAR message carries the notice, i.e. whether mh-serve scans at all
  load      one timed SMTP run (filters.py's load: SESSIONS smtp-source processes) plus
            clamd's CPU time over the run
  instream  clamd alone: THREADS clients scanning the same decoded parts over the same
            socket, one connection per part, for SECS seconds
  table     the markdown table of a results file
"""
import argparse
import base64
import random
import smtplib
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import filters  # the load runner (smtp-source processes, mh-serve's CPU from /proc)
from benchlib import median_of, read_results, result
from outbound import sched_delta, thread_sched

CHUNK = 64 * 1024          # mh-serve's INSTREAM chunk (content/clamd.cc)
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
NOTICE = "[English] The virus "


def log(msg):
    print(f"[scan {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ mkmsg
def multipart_message(size, sender, attachment=None, filename="data.bin", seed=12):
    """About SIZE bytes (LF line ends): a short UTF-8 text part and an attachment in
    base64 (76-column lines), as a mail client writes it; the attachment is ATTACHMENT,
    or random bytes that fill the message up to SIZE. Returns the message and its
    decoded leaf parts."""
    text = ("お疲れさまです。山田です。\n添付のデータをご確認ください。\n\n"
            "Please find the data attached.\n-- \nTaro Yamada\n").encode()
    head = (f"From: Taro Yamada <{sender}>\n"
            "To: Bench Account <account@bench.test>\n"
            "Subject: =?UTF-8?B?" + base64.b64encode("データ送付".encode()).decode() + "?= data\n"
            "Date: Sun, 06 Dec 2026 00:00:00 +0900\n"
            "Message-ID: <scan-bench@remote.test>\n"
            "MIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="=_bench_boundary_12"\n\n'
            "This is a multi-part message in MIME format.\n\n"
            "--=_bench_boundary_12\n"
            "Content-Type: text/plain; charset=UTF-8\n"
            "Content-Transfer-Encoding: 8bit\n\n").encode() + text + (
            "\n--=_bench_boundary_12\n"
            f'Content-Type: application/octet-stream; name="{filename}"\n'
            "Content-Transfer-Encoding: base64\n"
            f'Content-Disposition: attachment; filename="{filename}"\n\n').encode()
    tail = b"\n--=_bench_boundary_12--\n"
    if attachment is None:
        room = max(0, size - len(head) - len(tail))
        attachment = random.Random(seed).randbytes(room * 57 // 77)  # 57 bytes: one 76-column line + LF
    b64 = base64.encodebytes(attachment)
    return head + b64.rstrip(b"\n") + tail, [text, attachment]


def cmd_mkmsg(a):
    if a.kind == "4k":
        msg = filters.make_message(4096, "Bench Account <account@bench.test>", a.sender)
        parts = [msg.split(b"\n\n", 1)[1]]
    else:
        msg, parts = multipart_message(a.size, a.sender)
    Path(a.out).write_bytes(msg)
    for i, p in enumerate(parts, 1):
        Path(f"{a.out}.part{i}").write_bytes(p)
    print(f"bytes={len(msg)} parts={len(parts)} part_bytes={','.join(str(len(p)) for p in parts)}")


# ------------------------------------------------------------------ smoke
def stored(maildir):
    return sorted((Path(maildir) / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns)


def cmd_smoke(a):
    """A clean message must be stored unchanged below the header mh-serve adds; with
    --expect-scan an EICAR attachment must come back as a notice (the scanner is really
    asked), without it the EICAR message is stored as sent."""
    clean = Path(a.msg_file).read_bytes()
    eicar, _ = multipart_message(0, a.sender, attachment=EICAR, filename="eicar.com")
    replies = []
    with smtplib.SMTP("127.0.0.1", a.port, timeout=120) as s:
        s.ehlo("mhbench.client")
        for body in (clean, eicar):
            s.mail(a.sender)
            s.rcpt(a.rcpt)
            replies.append(s.data(body.replace(b"\n", b"\r\n")))
    files = stored(a.maildir)[-2:]
    texts = [f.read_bytes().replace(b"\r\n", b"\n") for f in files]
    clean_ok = len(texts) == 2 and texts[0].endswith(clean.split(b"\n\n", 1)[1])
    notice = len(texts) == 2 and NOTICE.encode() in texts[1] and base64.b64encode(EICAR)[:40] not in texts[1]
    codes = ",".join(str(code) for code, _ in replies)
    print(f"INFO smoke scanning={a.expect_scan} replies={codes} clean_stored_unchanged={int(clean_ok)} "
          f"eicar_notice={int(notice)}")
    ok = clean_ok and all(code == 250 for code, _ in replies) and notice == bool(a.expect_scan)
    if not ok:
        log(f"smoke test failed: replies {replies}, files {[str(f) for f in files]}")
    return 0 if ok else 1


# ------------------------------------------------------------------ load
def log_size(path):
    return Path(path).stat().st_size if path and Path(path).exists() else 0


def scans_since(path, offset):
    """Clean verdicts clamd logged (LogClean yes) after OFFSET: how many INSTREAM
    scans a run really made."""
    if not path:
        return 0
    with open(path, "rb") as f:
        f.seek(offset)
        return sum(1 for line in f if line.rstrip().endswith(b": OK"))


def cmd_load(a):
    """filters.py's load (its own RESULT line, with mh-serve's CPU), then a second line
    with clamd's CPU over the same run."""
    before, offset = thread_sched(a.clamd_pid), log_size(a.clamd_log)
    rc = filters.cmd_load(a)
    d = sched_delta(before, thread_sched(a.clamd_pid))
    cpu = d.get("server_cpu_s", 0.0)
    result(name=f"{a.name}_clamd", run=a.run, clamd_cpu_s=cpu, clamd_cpu_us_per_msg=cpu / a.msgs * 1e6,
           clamd_scans_per_msg=scans_since(a.clamd_log, offset) / a.msgs, ok=1)
    return rc


# ------------------------------------------------------------------ instream
def framed(data):
    """One whole INSTREAM request (clamd(8)): the command, 4-byte big-endian length +
    chunk, ..., a zero length."""
    out = [b"zINSTREAM\0"]
    for off in range(0, len(data), CHUNK):
        chunk = data[off:off + CHUNK]
        out.append(struct.pack(">I", len(chunk)) + chunk)
    out.append(b"\0\0\0\0")
    return b"".join(out)


def scan(sock_path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(120)
        s.connect(sock_path)
        s.sendall(request)
        reply = b""
        while not reply.endswith(b"\0"):
            got = s.recv(4096)
            if not got:
                break
            reply += got
    return reply.rstrip(b"\0").decode(errors="replace")


def cmd_instream(a):
    """THREADS clients, each scanning the message's parts (one connection per part, as
    mh-serve does) until SECS have passed. per_msg_ms = THREADS / rate: a message's
    clamd time as one of THREADS concurrent sessions sees it, the same measure as
    mh-serve's extra time per message with SESSIONS sessions."""
    # clamd keeps the hashes of clean files and skips a file it has seen: every scan here
    # gets its own id in place of UNIQUE (the trace header's), as every message mh-serve
    # receives has its own Received line. Repeated bytes would measure the cache.
    templates = [Path(p).read_bytes() for p in a.parts]
    placeholder = a.unique.encode() if a.unique else b""
    counts = [0] * a.threads
    bad = []
    start = threading.Barrier(a.threads + 1)

    def client(i):
        start.wait()
        serial = 0
        while time.perf_counter() < deadline:
            for data in templates:
                serial += 1
                if placeholder:
                    data = data.replace(placeholder, f"{i:02d}{serial:0{len(placeholder) - 2}d}".encode(), 1)
                reply = scan(a.socket, framed(data))
                if reply != "stream: OK":
                    bad.append(reply)
                    return
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.threads)]
    for t in threads:
        t.start()
    sched0 = thread_sched(a.clamd_pid) if a.clamd_pid else {}
    offset = log_size(a.clamd_log)
    deadline = time.perf_counter() + a.secs
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    n = sum(counts)
    d = sched_delta(sched0, thread_sched(a.clamd_pid)) if a.clamd_pid else {}
    rate = n / secs if secs > 0 else 0.0
    if bad:
        log(f"{a.name}: clamd answered {bad[0]!r}")
    result(name=a.name, run=a.run, threads=a.threads, parts=len(templates), msgs=n, secs=secs,
           msgs_per_s=rate, per_msg_ms=a.threads / rate * 1e3 if rate else 0.0,
           clamd_cpu_us_per_msg=d.get("server_cpu_s", 0.0) / max(1, n) * 1e6,
           clamd_scans_per_msg=scans_since(a.clamd_log, offset) / max(1, n), ok=int(not bad and n > 0))
    return 1 if bad else 0


# ------------------------------------------------------------------ table
def med(runs, name, field):
    return median_of(runs, name, field)[0]


def info_values(path, key):
    """The value of KEY=... on INFO lines, in file order."""
    out = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("INFO "):
            for word in line.split()[1:]:
                if word.startswith(key + "="):
                    out.append(word.split("=", 1)[1])
    return out


def fmt(v, spec="{:,.2f}"):
    return "-" if v is None else spec.format(v)


def column(runs, tag, sessions, target):
    """The cells of one size's column, top to bottom."""
    off, on = f"scan_off_{tag}", f"scan_on_{tag}"
    r_off, r_on = med(runs, off, "msgs_per_s"), med(runs, on, "msgs_per_s")
    extra = sessions * (1 / r_on - 1 / r_off) * 1e3 if r_off and r_on else None
    clamd8 = med(runs, f"clamd_instream_{tag}_t{sessions}", "per_msg_ms")
    clamd1 = med(runs, f"clamd_instream_{tag}_t1", "per_msg_ms")
    clamdscan = med(runs, f"clamdscan_{tag}", "secs")
    ours = extra - clamd8 if extra is not None and clamd8 else None
    share = ours / clamd8 * 100 if ours is not None else None
    verdict = "-" if share is None else ("ok" if share < target else "MISSED")
    all_ok = all(r.get("ok") == "1" for n in (off, on) for r in runs.get(n, []))
    c_off, c_on = med(runs, off, "cpu_us_per_msg"), med(runs, on, "cpu_us_per_msg")
    c_clamd = med(runs, on + "_clamd", "clamd_cpu_us_per_msg")
    cpu_share = (c_on - c_off) / c_clamd * 100 if c_on and c_off and c_clamd else None
    msgs = runs.get(off, [{}])[0].get("msgs", "-")
    n_off, n_on = len(runs.get(off, [])), len(runs.get(on, []))
    return [
        f"{msgs} ({n_off}+{n_on} runs)",
        fmt(r_off, "{:,.1f}"), fmt(r_on, "{:,.1f}"),
        f"**{fmt(r_on / r_off if r_off and r_on else None, '{:.3f}')}**",
        fmt(extra, "{:,.3f} ms"),
        fmt(clamd8, "{:,.3f} ms"),
        f"**{fmt(ours, '{:+,.3f} ms')} ({fmt(share, '{:+.1f}')} %)** {verdict}",
        fmt(clamd1, "{:,.3f} ms"),
        fmt(clamdscan * 1e3 if clamdscan is not None else None, "{:,.1f} ms"),
        f"{fmt(c_off, '{:,.0f}')} / {fmt(c_on, '{:,.0f}')} ({fmt(c_on - c_off if c_on and c_off else None, '{:+,.0f}')})",
        f"**{fmt(cpu_share, '{:+.0f}')} %**",
        f"{fmt(c_clamd, '{:,.0f}')} / "
        f"{fmt(med(runs, f'clamd_instream_{tag}_t{sessions}', 'clamd_cpu_us_per_msg'), '{:,.0f}')}",
        f"{fmt(med(runs, on + '_clamd', 'clamd_scans_per_msg'), '{:.2f}')} / "
        f"{fmt(med(runs, f'clamd_instream_{tag}_t{sessions}', 'clamd_scans_per_msg'), '{:.2f}')}",
        f"{fmt(med(runs, off, 'host_idle_pct'), '{:.0f}')} / {fmt(med(runs, on, 'host_idle_pct'), '{:.0f}')}",
        "yes" if all_ok else "NO (a run failed)",
    ]


def cmd_table(a):
    runs = read_results(a.results)
    labels = [
        "messages per run (8 sessions together)",
        "msgs/s, scanning off",
        "msgs/s, scanning on",
        "on / off",
        f"extra per message with scanning, (1/on − 1/off) × {a.sessions}",
        f"clamd per message, {a.sessions} INSTREAM clients in parallel (python)",
        f"**ours on top of clamd** (extra − clamd; target < {a.target:g} %)",
        "clamd per message, 1 INSTREAM client",
        "`clamdscan --stream` per message (incl. process start)",
        "mh-serve CPU µs/msg off / on (Δ)",
        "CPU: mh-serve's Δ / clamd's CPU in the same run",
        "clamd CPU µs/msg: during mh-serve run / python clients",
        "clamd scans per message (its log): mh-serve run / python clients",
        "CPUs idle during the run, % off / on",
        "every message stored (new/ count)",
    ]
    cols = [column(runs, tag, a.sessions, a.target) for tag in a.tags]
    lines = ["| measure | " + " | ".join(a.tags) + " |", "| --- |" + " --- |" * len(a.tags)]
    lines += [f"| {label} | " + " | ".join(c[i] for c in cols) + " |" for i, label in enumerate(labels)]
    smoke = info_values(a.results, "eicar_notice")
    lines.append("| scanning really on (EICAR cleaned, scan off / on) | "
                 + " | ".join([" / ".join(smoke) or "-"] * len(a.tags)) + " |")
    for key, label in (("load_at_start", "load at start (uptime)"), ("load_at_end", "load at end (uptime)")):
        v = info_values(a.results, key)
        lines.append(f"| {label} | " + " | ".join([(v[-1] if v else "-").replace("_", " ")] * len(a.tags)) + " |")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    p = sp.add_parser("mkmsg")
    p.add_argument("--kind", choices=("4k", "1m"), required=True)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--out", required=True)
    p.add_argument("--sender", default="taro.yamada@remote.test")
    p.set_defaults(f=cmd_mkmsg)

    p = sp.add_parser("smoke")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--msg-file", required=True)
    p.add_argument("--sender", default="taro.yamada@remote.test")
    p.add_argument("--rcpt", required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--expect-scan", type=int, default=1)
    p.set_defaults(f=cmd_smoke)

    p = sp.add_parser("load")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--msgs", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--msg-file", required=True)
    p.add_argument("--sender", default="taro.yamada@remote.test")
    p.add_argument("--accounts", required=True)
    p.add_argument("--accounts-dir", required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--clamd-pid", type=int, required=True)
    p.add_argument("--clamd-log", default="", help="clamd's LogFile (LogClean yes): scans counted")
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--position", default="1")
    p.add_argument("--timeout", type=float, default=1800)
    p.set_defaults(f=cmd_load)

    p = sp.add_parser("instream")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--socket", required=True)
    p.add_argument("--parts", nargs="+", required=True)
    p.add_argument("--unique", default="", help="bytes replaced by a per-scan id (defeats clamd's cache)")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--secs", type=float, default=10)
    p.add_argument("--clamd-pid", type=int, default=0)
    p.add_argument("--clamd-log", default="")
    p.set_defaults(f=cmd_instream)

    p = sp.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--tags", nargs="+", default=["4k", "1m"])
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--target", type=float, default=10.0, help="ours on top of clamd, % (issue 12)")
    p.set_defaults(f=cmd_table)

    a = ap.parse_args()
    sys.exit(a.f(a) or 0)


if __name__ == "__main__":
    main()
