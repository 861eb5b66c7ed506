#!/usr/bin/env python3
"""Shared helper of the bench/*.sh scripts (python3 standard library only):
timing loops, test-data generation and the ratio tables.

Every measurement is one line "RESULT name=... run=N key=value ..." on stdout (the same
format as ../shared/bench/mhbench.py), so one results file can hold a whole run and
`table` can take medians and ratios from it afterwards.
"""
import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import time


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def result(**kv):
    parts = []
    for k, v in kv.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        parts.append(f"{k}={v}")
    print("RESULT " + " ".join(parts), flush=True)


def drop_caches():
    """Write back dirty pages, then drop page cache, dentries and inodes (root only)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ------------------------------------------------------------------ time
def cmd_time(a):
    """Runs ARGV (no shell, so no shell start-up is timed) RUNS times after WARMUP
    untimed runs. PREPARE (a shell command) runs untimed before every run, then the
    caches are dropped if asked. One RESULT line per timed run."""
    stdin_path = a.stdin or os.devnull
    failed = 0

    def run_once():
        if a.prepare:
            subprocess.run(["bash", "-c", a.prepare], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if a.drop_caches:
            drop_caches()
        with open(stdin_path, "rb") as stdin:
            t0 = time.perf_counter()
            p = subprocess.run(a.argv, stdin=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            t1 = time.perf_counter()
        synced = None
        if a.sync:
            os.sync()
            synced = time.perf_counter() - t0
        return p, t1 - t0, synced

    for _ in range(a.warmup):
        run_once()
    for r in range(1, a.runs + 1):
        p, secs, synced = run_once()
        ok = p.returncode == a.expect_rc
        if not ok:
            failed += 1
            log(f"{a.name}: exit {p.returncode} (expected {a.expect_rc}): "
                f"{p.stderr.decode(errors='replace').strip()[-300:]}")
        kv = dict(name=a.name, run=a.run_offset + r, secs=secs)
        if synced is not None:
            kv["secs_incl_sync"] = synced
        out = p.stdout.decode(errors="replace").split()
        if a.capture_first and out:
            kv[a.capture_first] = out[0]
        kv["ok"] = int(ok)
        result(**kv)
    return 1 if failed else 0


# ---------------------------------------------------------------- record
def cmd_record(a):
    """Runs ARGV once and turns the key=value words of its last stdout line (the
    format of fsbench and deliver_bench) into a RESULT line named NAME."""
    p = subprocess.run(a.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = p.stdout.decode(errors="replace").strip().splitlines()
    kv = dict(name=a.name, run=a.run)
    if lines:
        kv.update(w.split("=", 1) for w in lines[-1].split() if "=" in w)
    if p.returncode != 0:
        log(f"{a.name}: exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[-300:]}")
        kv["ok"] = 0
    kv.setdefault("ok", 1)
    result(**kv)
    return p.returncode


# ------------------------------------------------------------- mkmaildir
def make_message(size, i):
    hdr = (f"Return-Path: <sender@example.invalid>\n"
           f"From: Bench Sender <sender@example.invalid>\n"
           f"To: purge@bench.test\n"
           f"Subject: benchmark message {i}\n"
           f"Message-ID: <{i}.purge@mhbench.invalid>\n"
           f"Date: Mon, 01 Jan 2024 00:00:00 +0000\n\n")
    body_len = max(0, size - len(hdr))
    line = "x" * 75 + "\n"
    body = (line * (body_len // len(line) + 1))[:body_len]
    if body_len:
        body = body[:-1] + "\n"
    return (hdr + body).encode()


def cmd_mkmaildir(a):
    """A Maildir of N messages of SIZE bytes with qmail names
    "<secs>.M<usecs>P<pid>Q<n>R<rand>.<host>,S=<size>" and an exact maildirsize.
    Every other message is old: both its mtime and the <secs> of its name lie
    OLD_DAYS in the past; the others are one day old. Every NEW_EVERY-th message is
    in new/ (unread), the rest in cur/ with ":2,S" (seen). No fsync: the caller syncs."""
    rng = random.Random(a.seed)
    now = int(time.time())
    pid = 4242
    for sub in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(a.dir, sub), mode=0o700, exist_ok=True)
    total = old = 0
    for i in range(a.n):
        data = make_message(a.size, i)
        is_old = i % 2 == 0
        secs = now - (a.old_days * 86400 if is_old else 86400) - i
        base = f"{secs}.M{rng.randrange(1000000)}P{pid}Q{i}R{rng.getrandbits(64):016x}.benchhost,S={len(data)}"
        path = (os.path.join(a.dir, "new", base) if i % a.new_every == 0
                else os.path.join(a.dir, "cur", base + ":2,S"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)
        os.utime(path, (secs, secs))
        total += len(data)
        old += is_old
    with open(os.path.join(a.dir, "maildirsize"), "w") as f:
        f.write(f"0S\n{total} {a.n}\n")
    os.chmod(os.path.join(a.dir, "maildirsize"), 0o600)
    log(f"{a.dir}: {a.n} messages ({old} old), {total} bytes")
    print(f"messages={a.n} old={old} bytes={total}")


def cmd_count(a):
    """Message files in DIR/new + DIR/cur (dot files are not messages)."""
    n = 0
    for sub in ("new", "cur"):
        n += sum(1 for e in os.scandir(os.path.join(a.dir, sub)) if not e.name.startswith("."))
    print(n)


def cmd_usage(a):
    """Reads mh-quota show ADDRESS --json on stdin, prints "BYTES MESSAGES"."""
    import json
    doc = json.load(sys.stdin)
    try:
        print(doc["usage_bytes"], doc["usage_messages"])
    except (KeyError, TypeError):
        log("no usage_bytes/usage_messages in the JSON document")
        return 1
    return 0


# ----------------------------------------------------------------- table
def read_results(path):
    runs = {}
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
                runs.setdefault(kv.get("name"), []).append(kv)
    return runs


def median_of(runs, name, field):
    vals = []
    for r in runs.get(name, []):
        try:
            vals.append(float(r[field]))
        except (KeyError, ValueError):
            pass
    if not vals:
        return None, 0, True
    ok = all(r.get("ok", "1") == "1" for r in runs[name])
    return statistics.median(vals), len(vals), ok


def verdict(ratio, target):
    m = re.fullmatch(r"\s*(<=|>=)\s*([0-9.]+)\s*", target or "")
    if ratio is None or not m:
        return ""
    limit = float(m.group(2))
    good = ratio <= limit if m.group(1) == "<=" else ratio >= limit
    return "ok" if good else "MISSED"


def fmt_value(v, field):
    if v is None:
        return "-"
    if field.startswith("secs"):
        return f"{v * 1000:.2f} ms" if v < 10 else f"{v:.2f} s"
    return f"{v:.2f}" if abs(v) < 100 else f"{v:,.0f}"     # latencies in ms, ratios


def cmd_table(a):
    """One row per --row "LABEL;NAME_A;NAME_B;FIELD;TARGET": the medians of FIELD for
    both names and the ratio A/B, checked against TARGET ("<=1.2", ">=100", or text)."""
    runs = read_results(a.results)
    rows = []
    for spec in a.row:
        label, na, nb, field, target = (spec.split(";") + [""] * 5)[:5]
        va, ka, oka = median_of(runs, na, field)
        vb, kb, okb = median_of(runs, nb, field)
        ratio = va / vb if va is not None and vb else None
        check = verdict(ratio, target)
        if not (oka and okb):
            check = (check + " (a run failed)").strip()
        rows.append([label, f"{fmt_value(va, field)} (n={ka})", f"{fmt_value(vb, field)} (n={kb})",
                     f"{ratio:.3g}" if ratio is not None else "-", target, check])
        result(name="ratio", label=label.replace(" ", "_"), a=na, b=nb, field=field,
               a_median=va if va is not None else "-", b_median=vb if vb is not None else "-",
               ratio=ratio if ratio is not None else "-", target=target.replace(" ", ""),
               check=check.replace(" ", "_") or "-")
    head = ["measure", a.header_a, a.header_b, "ratio A/B", "target", ""]
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths]] + rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sp = ap.add_subparsers(dest="cmd", required=True)

    p = sp.add_parser("time", help="time a command N times")
    p.add_argument("--name", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--run-offset", type=int, default=0, help="number of the first run - 1")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--prepare", default="", help="shell command run untimed before each run")
    p.add_argument("--drop-caches", action="store_true")
    p.add_argument("--sync", action="store_true", help="also time a following sync")
    p.add_argument("--stdin", default="")
    p.add_argument("--expect-rc", type=int, default=0)
    p.add_argument("--capture-first", default="", help="record stdout's first word as this key")
    p.add_argument("argv", nargs="+")
    p.set_defaults(f=cmd_time)

    p = sp.add_parser("record", help="run a benchmark program, relabel its key=value line")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("argv", nargs="+")
    p.set_defaults(f=cmd_record)

    p = sp.add_parser("mkmaildir", help="build a test Maildir with old and new messages")
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--old-days", type=int, default=40)
    p.add_argument("--new-every", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(f=cmd_mkmaildir)

    p = sp.add_parser("count", help="count message files in a Maildir")
    p.add_argument("--dir", required=True)
    p.set_defaults(f=cmd_count)

    p = sp.add_parser("usage", help="bytes and messages from mh-quota --json on stdin")
    p.set_defaults(f=cmd_usage)

    p = sp.add_parser("table", help="medians and ratios from a results file")
    p.add_argument("--results", required=True)
    p.add_argument("--row", action="append", required=True)
    p.add_argument("--header-a", default="A (median)")
    p.add_argument("--header-b", default="B (median)")
    p.set_defaults(f=cmd_table)

    a = ap.parse_args()
    sys.exit(a.f(a) or 0)


if __name__ == "__main__":
    main()
