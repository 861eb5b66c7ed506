#!/usr/bin/env python3
"""The measuring side of bench/filters.sh, issue 10 (python3 standard library only).

Subcommands (each measurement is one "RESULT name=... run=N key=value ..." line):
  yaml                     the filters.yaml every account gets in variant A: 5 rules and
                           10 forward profiles, none of whose conditions match the
                           benchmark message
  mkmsg                    the benchmark message (LF line ends, as smtp-source -F reads
                           it), SIZE bytes; also the 3 MB / 30 MB messages of mh-filter test
  load                     one timed SMTP run: SESSIONS smtp-source processes (-s 1), each
                           to its own account, started together; mh-serve's CPU time over
                           the run from /proc
  table                    the pair ratios and the CPU split of a results file
"""
import argparse
import base64
import os
import statistics
import subprocess
import sys
import time

from benchlib import read_results, result  # the RESULT line format, one writer and reader
from outbound import sched_delta, thread_sched  # mh-serve's CPU and run-queue wait, per thread


def log(msg):
    print(f"[filters {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ yaml
# Variant A's filters. Each condition is checked against the message of mkmsg and must
# not match it, so every message runs through all 5 rules and all 10 profiles (SPEC §6:
# rules first, then the profiles; the first match would end the walk) and is then
# stored as without filters. The mix covers every field, every operator, the size test
# and one Japanese text (folded with ICU, like the message's encoded Subject).
RULES = [
    ("subject contains 未承諾広告", "delete"),
    ("from is spammer@bad.example", "bounce"),
    ("header X-Spam-Level contains *****", "delete"),
    ("to contains postmaster@", "bounce"),
    ("size > 20M", "delete"),
]
FORWARDS = [
    ("subject contains invoice", ["accounting@example.net"]),
    ("from is boss@example.net", ["boss-copy@example.net", "assistant@example.net"]),
    ("header X-Foo matches *bar*", ["foo@example.net"]),
    ("to contains sales@", ["sales-team@example.net"]),
    ("size > 20M", ["big@example.net"]),
    ("subject contains 重要", ["mobile@example.jp"]),
    ("cc contains team@example.net", ["team-copy@example.net"]),
    ("from contains @partner.example", ["partner-desk@example.net"]),
    ("subject matches *urgent*report*", ["urgent@example.net"]),
    ("header List-Id contains announce.example.org", ["lists@example.net"]),
]


def cmd_yaml(a):
    out = ["# bench/filters.py: 5 rules and 10 forward profiles; no condition matches the",
           "# benchmark message, so each one is evaluated for every message.", "rules:"]
    for cond, action in RULES:
        out.append(f'  - {{if: "{cond}", action: {action}}}')
    out.append("forward:")
    for cond, dests in FORWARDS:
        to = ", ".join(f'"{d}"' for d in dests)
        out.append(f'  - {{if: "{cond}", to: [{to}], keep: true}}')
    sys.stdout.write("\n".join(out) + "\n")


# ------------------------------------------------------------------ mkmsg
def make_message(size, rcpt, sender):
    """SIZE bytes (LF line ends; smtp-source sends each line with CRLF). A header a
    Japanese mail client writes: the Subject as an RFC 2047 UTF-8 word (週次報告 …, no 重要),
    From with a display name, To, Cc, an X-Foo without "bar", MIME fields."""
    def word(text):  # one RFC 2047 encoded-word
        return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="

    hdr = (f"From: {word('山田太郎')} <{sender}>\n"
           f"To: {rcpt}\n"
           "Cc: Hanako <hanako@remote.test>, ops@remote.test\n"
           f"Subject: {word('週次報告 (第 49 週)')} weekly report\n"
           "Date: Sun, 06 Dec 2026 00:00:00 +0900\n"
           "Message-ID: <filters-bench@remote.test>\n"
           "X-Foo: baz qux\n"
           "X-Mailer: bench/filters.py\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=UTF-8\n"
           "Content-Transfer-Encoding: 8bit\n\n")
    head = hdr.encode()
    body_len = max(1, size - len(head))
    line = ("x" * 75 + "\n").encode()
    body = (line * (body_len // len(line) + 1))[:body_len - 1] + b"\n"
    return head + body


def cmd_mkmsg(a):
    data = make_message(a.size, a.rcpt, a.sender)
    with open(a.out, "wb") as f:
        f.write(data)
    print(f"bytes={len(data)}")


# ------------------------------------------------------------------ load
def proc_times(pid):
    """utime, stime of the process (all threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def host_cpu():
    """(busy, idle) jiffies of all CPUs together (/proc/stat; idle includes iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, idle


def compiles():
    """Running compilers (cc1plus/cc1) on the machine: other engineers' builds."""
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    n += f.read().strip() in ("cc1plus", "cc1")
            except OSError:
                pass
    return n


def maildir_count(maildirs):
    return sum(sum(1 for e in os.scandir(os.path.join(d, "new")) if not e.name.startswith("."))
               for d in maildirs)


def cmd_load(a):
    """SESSIONS smtp-source processes, one per account, each "-s 1 -m SHARE -F MSG":
    one connection per message, as the shared harness's smtp-source runs (-d: keep it).
    mh-serve answers the final dot only once the message is fsynced in new/, so the
    clock stops when the last process exits; the new/ count is then checked."""
    accounts = a.accounts.split(",")
    maildirs = [os.path.join(a.accounts_dir, acct.split("@")[0], "Maildir") for acct in accounts]
    before = maildir_count(maildirs)
    argvs = []
    for i, acct in enumerate(accounts):
        share = a.msgs // len(accounts) + (1 if i < a.msgs % len(accounts) else 0)
        argv = ["smtp-source", "-s", "1", "-m", str(share), "-F", a.msg_file, "-f", a.sender,
                "-t", acct, "-M", "mhbench.client"]
        if a.reuse:
            argv.append("-d")
        argvs.append(argv + [f"127.0.0.1:{a.port}"])
    sched0 = thread_sched(a.server_pid)
    ut0, st0 = proc_times(a.server_pid)
    h0 = host_cpu()
    k0 = compiles()
    c0 = os.times()
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for argv in argvs]
    failed = 0
    for p in procs:
        try:
            _, err = p.communicate(timeout=a.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        if p.returncode != 0:
            failed += 1
            log(f"{a.name} run {a.run}: smtp-source exit {p.returncode}: {err.decode(errors='replace')[-300:]}")
    t1 = time.perf_counter()
    ut1, st1 = proc_times(a.server_pid)
    h1 = host_cpu()
    sched1 = thread_sched(a.server_pid)
    c1 = os.times()
    secs = t1 - t0
    delivered = maildir_count(maildirs) - before
    ok = failed == 0 and delivered == a.msgs
    if delivered != a.msgs:
        log(f"{a.name} run {a.run}: {delivered} of {a.msgs} messages in new/")
    sd = sched_delta(sched0, sched1)
    cpu = sd.get("server_cpu_s", (ut1 - ut0) + (st1 - st0))
    n = max(1, delivered)
    result(name=a.name, run=a.run, position=a.position, msgs=a.msgs, size=a.size, sessions=len(accounts), reuse=int(a.reuse),
           secs=secs, msgs_per_s=delivered / secs if secs > 0 else 0.0, delivered=delivered,
           server_cpu_s=cpu, server_runq_s=sd.get("server_runq_s", 0.0),
           cpu_us_per_msg=cpu / n * 1e6, user_us_per_msg=(ut1 - ut0) / n * 1e6,
           sys_us_per_msg=(st1 - st0) / n * 1e6,
           client_cpu_s=(c1.children_user + c1.children_system) - (c0.children_user + c0.children_system),
           host_idle_pct=100.0 * (h1[1] - h0[1]) / max(1, (h1[0] - h0[0]) + (h1[1] - h0[1])),
           load1=os.getloadavg()[0], compiles=max(k0, compiles()), ok=int(ok))
    return 0 if ok else 1


# ------------------------------------------------------------------ table
def values(rows, field):
    out = []
    for r in rows:
        try:
            out.append(float(r[field]))
        except (KeyError, ValueError):
            pass
    return out


def med(rows, field):
    v = values(rows, field)
    return statistics.median(v) if v else None


def cmd_table(a):
    """The pair ratios (A/B of each round), the CPU per message split into user and
    system time, and the mh-filter test timings, as markdown rows."""
    runs = read_results(a.results)
    fa, fb = runs.get(a.a, []), runs.get(a.b, [])
    pair_of = {}   # round -> A/B
    pairs, a_first, b_first = [], [], []
    for r in fa:
        other = [x for x in fb if x.get("run") == r.get("run")]
        if other and float(other[0].get("msgs_per_s", 0)) > 0:
            pairs.append(float(r.get("msgs_per_s", 0)) / float(other[0]["msgs_per_s"]))
            pair_of[r.get("run")] = pairs[-1]
            # By order: a slower first (or second) run of a round shows as two clusters.
            (a_first if r.get("position") == "1" else b_first).append(pairs[-1])
    pm = statistics.median(pairs) if pairs else None
    if pairs:
        result(name="pair_ratio", a=a.a, b=a.b, pairs=len(pairs), ratios=",".join(f"{x:.3f}" for x in pairs),
               median=pm)

    def f(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)

    lines = []
    if fa or fb:
        lines += ["| measure | A: 10 profiles + 5 rules | B: no filters | A/B or A-B | |",
                  "| --- | --- | --- | --- | --- |"]
        ra, rb = med(fa, "msgs_per_s"), med(fb, "msgs_per_s")
        ratio = ra / rb if ra and rb else None
        all_ok = bool(fa) and bool(fb) and all(r.get("ok") == "1" for r in fa + fb)
        verdict = ("ok" if ratio is not None and ratio >= a.target else "MISSED") + ("" if all_ok else " (a run failed)")
        lines.append(f"| msgs/s, median of {len(fa)}/{len(fb)} | {f(ra)} | {f(rb)} | **{f(ratio, '{:.3f}')}** "
                     f"(target >= {a.target}) | {verdict} |")
        lines.append(f"| single runs, msgs/s | {', '.join(f'{v:,.0f}' for v in values(fa, 'msgs_per_s')) or '-'} "
                     f"| {', '.join(f'{v:,.0f}' for v in values(fb, 'msgs_per_s')) or '-'} "
                     f"| pairs {', '.join(f'{x:.2f}' for x in pairs) or '-'} (median {f(pm, '{:.3f}')}) | |")
        if a_first and b_first:
            lines.append(f"| pair ratio by order, median | A first: {statistics.median(a_first):.3f} (n={len(a_first)}) "
                         f"| B first: {statistics.median(b_first):.3f} (n={len(b_first)}) | | |")
        for field, label in (("cpu_us_per_msg", "mh-serve CPU per message, µs (schedstat)"),
                             ("user_us_per_msg", "of it user, µs (/proc stat, 10 ms ticks)"),
                             ("sys_us_per_msg", "of it system, µs")):
            va, vb = med(fa, field), med(fb, field)
            diff = va - vb if va is not None and vb is not None else None
            lines.append(f"| {label} | {f(va)} | {f(vb)} | {f(diff, '{:+,.0f}')} | |")
        va, vb = med(fa, "server_runq_s"), med(fb, "server_runq_s")
        lines.append(f"| mh-serve waiting for a CPU per run, s | {f(va, '{:.2f}')} | {f(vb, '{:.2f}')} | | |")
        va, vb = med(fa, "client_cpu_s"), med(fb, "client_cpu_s")
        lines.append(f"| smtp-source CPU per run, s | {f(va, '{:.2f}')} | {f(vb, '{:.2f}')} | | |")
        va, vb = med(fa, "host_idle_pct"), med(fb, "host_idle_pct")
        lines.append(f"| CPUs idle during a run, % | {f(va, '{:.1f}')} | {f(vb, '{:.1f}')} | | |")
        va, vb = med(fa, "load1"), med(fb, "load1")
        lines.append(f"| load average (1 min) at the end of a run | {f(va, '{:.2f}')} | {f(vb, '{:.2f}')} | | |")
        busy = {r.get("run") for r in fa + fb if r.get("compiles", "0") != "0"}
        if busy:
            # The same medians over the rounds in which no compiler was seen, since other
            # engineers' builds share the two CPUs.
            qa = [r for r in fa if r.get("run") not in busy]
            qb = [r for r in fb if r.get("run") not in busy]
            qra, qrb = med(qa, "msgs_per_s"), med(qb, "msgs_per_s")
            qpairs = [x for run, x in pair_of.items() if run not in busy]
            lines.append(f"| rounds with a compiler running at a run's start or end | "
                         f"{', '.join(sorted(busy, key=int))} | | | |")
            lines.append(f"| msgs/s over the other {len(qa)} rounds | {f(qra)} | {f(qrb)} | "
                         f"{f(qra / qrb if qra and qrb else None, '{:.3f}')} (pairs: median "
                         f"{f(statistics.median(qpairs) if qpairs else None, '{:.3f}')}) | |")
    tests = sorted((n for n in runs if n.startswith("mhfilter_test_")), key=lambda n: int(runs[n][0].get("bytes", "0")))
    if tests:
        floor = med(runs.get("mhfilter_test_version", []), "secs")
        lines.append("")
        lines.append("| mh-filter test ADDRESS < message | median | over the start-up floor | runs, ms | |")
        lines.append("| --- | --- | --- | --- | --- |")
        for n in tests:
            v = values(runs[n], "secs")
            m = statistics.median(v)
            ok = all(r.get("ok") == "1" for r in runs[n])
            label = "--version (start-up floor)" if n == "mhfilter_test_version" else n[len("mhfilter_test_"):]
            over = "" if n == "mhfilter_test_version" else "-" if floor is None else f"{(m - floor) * 1000:+,.1f} ms"
            lines.append(f"| {label} | {m * 1000:,.1f} ms | {over} | "
                         f"{', '.join(f'{x * 1000:.1f}' for x in v)} | {'ok' if ok else 'a run failed'} |")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    p = sp.add_parser("yaml")
    p.set_defaults(f=cmd_yaml)

    p = sp.add_parser("mkmsg")
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--out", required=True)
    p.add_argument("--rcpt", default="Bench Account <account@bench.test>")
    p.add_argument("--sender", default="taro.yamada@remote.test")
    p.set_defaults(f=cmd_mkmsg)

    p = sp.add_parser("load")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--msgs", type=int, default=2000)
    p.add_argument("--size", type=int, default=4096, help="the message file's size (recorded)")
    p.add_argument("--msg-file", required=True)
    p.add_argument("--sender", default="taro.yamada@remote.test")
    p.add_argument("--accounts", required=True, help="comma-separated recipients, one session each")
    p.add_argument("--accounts-dir", required=True, help="SPOOL/domains/DOMAIN/accounts (to count new/)")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--reuse", action="store_true", help="smtp-source -d: all messages over one connection")
    p.add_argument("--position", default="1", help="1: the first run of its round, 2: the second (recorded)")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(f=cmd_load)

    p = sp.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--a", default="mhserve_filters_4k_c8")
    p.add_argument("--b", default="mhserve_nofilters_4k_c8")
    p.add_argument("--target", type=float, default=0.9)
    p.set_defaults(f=cmd_table)

    a = ap.parse_args()
    sys.exit(a.f(a) or 0)


if __name__ == "__main__":
    main()
