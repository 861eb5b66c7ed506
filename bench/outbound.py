#!/usr/bin/env python3
"""The measuring side of bench/outbound.sh (python3 standard library only).

Subcommands (each measurement is one "RESULT name=... run=N key=value ..." line):
  freeports N              N free TCP ports on 127.0.0.1, one per line
  throughput               N messages through a server into Postfix's smtp-sink: the sink
                           runs with -M N and exits when it has received the Nth message;
                           the clock runs from the first submission until then
  mkqueue                  writes (or repairs) N queue entries in the format of libspool's
                           format_queue_envelope(): queue/ID.msg + queue/ID.env
  watch                    VmRSS/VmHWM of a running mh-serve while its runner works
                           through the queue (its log's "status=" lines, or CPU idle)
  first                    starts an smtp-sink -M 1 and then mh-serve; seconds from the
                           exec of mh-serve until the sink has the first message
  table                    the medians, ratios and targets of a results file
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import time

from benchlib import read_results, result  # the RESULT line format, one writer and reader


def log(msg):
    print(f"[outbound {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_port(port, secs, proc=None):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if port_open(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        kv = dict(line.split(":", 1) for line in f if ":" in line)
    return {k: int(kv[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon", "Threads")}


def proc_cpu(pid):
    """utime + stime of the process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_sched(pid):
    """{tid: (on-CPU ns, runqueue-wait ns)} of every thread (/proc/PID/task/*/schedstat)."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run, wait, _ = f.read().split()
                out[tid] = (int(run), int(wait))
            except (OSError, ValueError):
                pass
    except OSError:
        pass
    return out


def sched_delta(before, after):
    """Whole-process CPU and runqueue wait (s), and the same for its busiest thread (the
    queue runner, during a throughput run)."""
    d = {t: (after[t][0] - before.get(t, (0, 0))[0], after[t][1] - before.get(t, (0, 0))[1]) for t in after}
    if not d:
        return {}
    top = max(d.values(), key=lambda v: v[0] + v[1])
    return dict(server_cpu_s=sum(v[0] for v in d.values()) / 1e9, server_runq_s=sum(v[1] for v in d.values()) / 1e9,
                busiest_thread_cpu_s=top[0] / 1e9, busiest_thread_runq_s=top[1] / 1e9)


def start_sink(port, count, user, backlog=256):
    """Postfix's smtp-sink on 127.0.0.1:PORT; -M COUNT: it exits when it has received
    the COUNTth message ("." read; it does not answer that one). -a: no AUTH offered."""
    argv = ["smtp-sink", "-a", "-M", str(count), "-u", user, f"127.0.0.1:{port}", str(backlog)]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    if not wait_port(port, 10, p):
        p.kill()
        raise SystemExit(f"smtp-sink does not listen on 127.0.0.1:{port}")
    # The probe connection above is a session without mail: it does not count.
    return p


def stop_proc(p, sig=signal.SIGTERM, secs=15):
    if p is None or p.poll() is not None:
        return
    p.send_signal(sig)
    try:
        p.wait(secs)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# ------------------------------------------------------------------ freeports
def cmd_freeports(a):
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
        s.close()


# ------------------------------------------------------------------ throughput
def make_message(size, sender, rcpt, tag):
    """SIZE bytes on the wire (CRLF lines), ending in CRLF."""
    hdr = (f"From: Bench Sender <{sender}>\r\n"
           f"To: <{rcpt}>\r\n"
           f"Subject: outbound benchmark {tag}\r\n"
           f"Message-ID: <{tag}@outbound.bench.invalid>\r\n"
           f"Date: Sat, 05 Dec 2026 00:00:00 +0000\r\n"
           f"MIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    body_len = max(2, size - len(hdr))
    line = "x" * 76 + "\r\n"
    body = (line * (body_len // len(line) + 1))[:body_len - 2] + "\r\n"
    return (hdr + body).encode()


def client_worker(idx, a, barrier, out):
    """One SMTP session: connect, EHLO, AUTH (if asked) before the start line, then
    its share of the messages, one MAIL/RCPT/DATA after the other (smtplib)."""
    share = a.msgs // a.sessions + (1 if idx < a.msgs % a.sessions else 0)
    failures = 0
    errors = []

    def connect():
        s = smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.bench.invalid", timeout=a.timeout)
        s.ehlo()
        if a.user:
            s.login(a.user, a.password)
        return s

    try:
        s = connect()
    except Exception as e:  # noqa: BLE001 - reported, the run is then not ok
        barrier.abort()
        out.put((idx, share, share, 0.0, [f"session {idx}: {e!r}"]))
        return
    msgs = [make_message(a.size, a.sender, a.rcpt, f"{idx}.{i}.{os.getpid()}") for i in range(share)]
    try:
        barrier.wait()
    except Exception:  # noqa: BLE001
        out.put((idx, share, share, 0.0, ["barrier broken"]))
        return
    for m in msgs:
        try:
            refused = s.sendmail(a.sender, [a.rcpt], m)
            if refused:
                failures += 1
                errors.append(repr(refused)[:200])
        except smtplib.SMTPServerDisconnected as e:
            failures += 1
            errors.append(repr(e)[:200])
            try:
                s = connect()
            except Exception as e2:  # noqa: BLE001
                errors.append(repr(e2)[:200])
                break
        except Exception as e:  # noqa: BLE001
            failures += 1
            errors.append(repr(e)[:200])
    done = time.perf_counter()
    try:
        s.quit()
    except Exception:  # noqa: BLE001
        pass
    out.put((idx, share, failures, done, errors[:3]))


def cmd_throughput(a):
    ctx = mp.get_context("fork")
    sink = start_sink(a.sink_port, a.msgs, a.sink_user)
    barrier = ctx.Barrier(a.sessions + 1)
    out = ctx.Queue()
    workers = [ctx.Process(target=client_worker, args=(i, a, barrier, out)) for i in range(a.sessions)]
    for w in workers:
        w.start()
    ok = True
    try:
        barrier.wait(timeout=30)
    except Exception:  # noqa: BLE001
        ok = False
    sched0 = thread_sched(a.server_pid) if a.server_pid else {}
    t0 = time.perf_counter()
    cpu0 = os.times()
    reports = []
    for _ in workers:
        try:
            reports.append(out.get(timeout=a.timeout))
        except Exception:  # noqa: BLE001
            ok = False
            break
    for w in workers:
        w.join(5)
        if w.is_alive():
            w.kill()
    accept_t = max((r[3] for r in reports if r[3]), default=0.0)
    failures = sum(r[2] for r in reports)
    for r in reports:
        for e in r[4]:
            log(f"{a.name} session {r[0]}: {e}")
    delivered = False
    left = max(1.0, a.timeout - (time.perf_counter() - t0))
    try:
        sink.wait(left)
        delivered = sink.returncode == 0
    except subprocess.TimeoutExpired:
        log(f"{a.name}: the sink has not received {a.msgs} messages after {a.timeout} s")
    t1 = time.perf_counter()
    sched1 = thread_sched(a.server_pid) if a.server_pid else {}
    stop_proc(sink)
    cpu1 = os.times()
    secs = t1 - t0
    accept = accept_t - t0 if accept_t else 0.0
    ok = ok and delivered and failures == 0 and len(reports) == a.sessions
    kv = dict(name=a.name, run=a.run, msgs=a.msgs, size=a.size, sessions=a.sessions, secs=secs,
              msgs_per_s=a.msgs / secs if delivered else 0.0, accept_secs=accept,
              accept_msgs_per_s=a.msgs / accept if accept > 0 else 0.0, failures=failures,
              client_cpu_s=(cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system))
    if a.server_pid:
        try:
            s = proc_status(a.server_pid)
            kv.update(server_rss_kb=s["VmRSS"], server_hwm_kb=s["VmHWM"])
        except OSError:
            pass
        kv.update(sched_delta(sched0, sched1))
    kv["ok"] = int(ok)
    result(**kv)
    return 0 if ok else 1


# ------------------------------------------------------------------ mkqueue
def queue_message(size, sender, rcpt, i, now):
    """The .msg as mh-serve stores it: LF line ends, Return-Path and Received on top."""
    hdr = (f"Return-Path: <{sender}>\n"
           f"Received: from client.bench.invalid (localhost [127.0.0.1])\n"
           f"\tby mh-bench.localdomain (mailhost) with ESMTPA id Q{i}\n"
           f"\tfor <{rcpt}>; Sat, 05 Dec 2026 00:00:00 +0000\n"
           f"From: Bench Sender <{sender}>\n"
           f"To: <{rcpt}>\n"
           f"Subject: queued benchmark message {i}\n"
           f"Message-ID: <{i}.{now}@queue.bench.invalid>\n"
           f"Date: Sat, 05 Dec 2026 00:00:00 +0000\n\n")
    body_len = max(1, size - len(hdr))
    line = "y" * 77 + "\n"
    body = (line * (body_len // len(line) + 1))[:body_len - 1] + "\n"
    return (hdr + body).encode()


def envelope(qid, created, sender, rcpt, next_attempt):
    """format_queue_envelope() of libspool/src/queue.cc for a fresh entry."""
    return (f"format: 1\nid: {qid}\ncreated: {created}\nsender: {sender}\nauth: {sender}\n"
            f"attempts: 0\nnext_attempt: {next_attempt}\nrecipient: {rcpt}\n").encode()


def write_file(path, data, mode, replace=False):
    """Returns the file's inode. REPLACE: unlink first (ext4 flushes a file truncated or
    renamed over at once, auto_da_alloc; a new file's data waits for writeback)."""
    if replace:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def cmd_mkqueue(a):
    """Writes N entries into SPOOL/queue/ (the daemon must not run), as the spool owner,
    no fsync (the caller syncs). The ids follow new_queue_id(): secs, usecs, P pid,
    Q counter, R random, in hex. The state file keeps the ids and each .env's inode;
    --repair puts back every entry a run changed (replaced .env = new inode), removed
    (delivered) or moved to corrupt/, and removes entries that are not ours (DSNs)."""
    qdir = os.path.join(a.spool, "queue")
    st = os.stat(a.spool)
    old_state = None
    if a.repair:
        with open(a.state) as f:
            old_state = json.load(f)
    state_out = open(a.state, "w")   # before dropping privileges (old state read above)
    if os.geteuid() == 0 and st.st_uid != 0:       # write as the spool owner
        os.setgroups([])
        os.setgid(st.st_gid)
        os.setuid(st.st_uid)
    os.makedirs(os.path.join(qdir, "tmp"), mode=0o750, exist_ok=True)
    now = int(time.time())
    next_attempt = now + a.defer if a.defer > 0 else 0
    t0 = time.perf_counter()
    if not a.repair:
        rng = random.Random(a.seed)
        pid = 0x4242
        ids = [f"{now:X}{(i % 1000000):05X}P{pid:X}Q{i + 1:X}R{rng.getrandbits(32):08X}" for i in range(a.n)]
        msg_cache = {}
        inodes = {}
        for i, qid in enumerate(ids):
            data = msg_cache.get(i % 64)
            if data is None:  # 64 distinct bodies are enough; every entry is its own file
                data = msg_cache[i % 64] = queue_message(a.size, a.sender, a.rcpt, i % 64, now)
            write_file(os.path.join(qdir, qid + ".msg"), data, 0o600)
            inodes[qid] = write_file(os.path.join(qdir, qid + ".env"),
                                     envelope(qid, now, a.sender, a.rcpt, next_attempt), 0o640)
        state = dict(ids=ids, inodes=inodes, created=now, size=a.size, sender=a.sender, rcpt=a.rcpt)
        written = a.n
        extra = 0
    else:
        state = old_state
        ids, inodes = state["ids"], state["inodes"]
        present = {}
        for e in os.scandir(qdir):
            if e.name.endswith(".env") and not e.name.startswith("."):
                present[e.name[:-4]] = e.inode()
        msgs = {e.name[:-4] for e in os.scandir(qdir) if e.name.endswith(".msg")}
        written = extra = 0
        wanted = set(ids)
        for i, qid in enumerate(ids):
            if a.rewrite_all or present.get(qid) != inodes[qid] or qid not in msgs:
                if qid not in msgs:
                    write_file(os.path.join(qdir, qid + ".msg"),
                               queue_message(state["size"], state["sender"], state["rcpt"], i % 64, state["created"]),
                               0o600)
                inodes[qid] = write_file(os.path.join(qdir, qid + ".env"),
                                         envelope(qid, state["created"], state["sender"], state["rcpt"], next_attempt),
                                         0o640, replace=True)
                written += 1
        for name in os.listdir(qdir):   # DSNs and anything else the runs left
            if name.endswith((".env", ".msg")) and name[:-4] not in wanted:
                os.unlink(os.path.join(qdir, name))
                extra += 1
    with state_out:
        json.dump(state, state_out)
    secs = time.perf_counter() - t0
    log(f"queue: {len(ids)} entries, {written} written, {extra} removed, {secs:.1f} s"
        f" (next_attempt {'now' if not next_attempt else f'+{a.defer} s'})")
    print(f"entries={len(ids)} written={written} removed={extra} secs={secs:.2f}")


# ------------------------------------------------------------------ watch
def count_lines(path, pattern, pos, count):
    """Adds the lines matching PATTERN that were appended to PATH since POS."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except OSError:
        return pos, count
    end = data.rfind(b"\n") + 1
    count += len(re.findall(pattern, data[:end]))
    return pos + end, count


def cmd_watch(a):
    """Follows a running mh-serve until its runner has looked at EXPECT entries (lines of
    its log that match PATTERN; PATTERN "" = until its CPU time stops growing for IDLE
    seconds), or MAX_WAIT seconds. Then one RESULT line with its memory."""
    pid = a.pid
    t0 = time.monotonic() - (time.time() - a.start if a.start else 0.0)   # mh-serve's start
    pos, looked = 0, 0
    if a.log_offset:
        pos = a.log_offset
    pattern = re.compile(a.pattern.encode()) if a.pattern else None
    last_cpu, last_change = proc_cpu(pid), time.monotonic()
    peak = 0
    next_note = t0 + 5
    done = False
    while time.monotonic() - t0 < a.max_wait:
        time.sleep(0.25)
        if not os.path.exists(f"/proc/{pid}"):
            log("mh-serve has exited")
            break
        s = proc_status(pid)
        peak = max(peak, s["VmRSS"])
        cpu = proc_cpu(pid)
        if cpu != last_cpu:
            last_cpu, last_change = cpu, time.monotonic()
        if pattern is not None:
            pos, looked = count_lines(a.log, pattern, pos, looked)
            if looked >= a.expect:
                done = True
                break
        elif time.monotonic() - last_change >= a.idle and time.monotonic() - t0 > a.idle + 1:
            done = True
            break
        if time.monotonic() >= next_note:
            log(f"{a.state}: {time.monotonic() - t0:.0f} s, rss {s['VmRSS'] / 1024:.1f} MB, cpu {cpu:.1f} s"
                + (f", looked at {looked}" if pattern is not None else ""))
            next_note += 5
    secs = time.monotonic() - t0
    if pattern is None and done:
        secs = last_change - t0        # the runner's last work
    s = proc_status(pid)
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    kv = dict(name="mhserve_queue_rss", state=a.state, entries=a.expect, rss_kb=s["VmRSS"], hwm_kb=s["VmHWM"],
              anon_kb=s["RssAnon"], threads=s["Threads"], fds=fds, cpu_s=proc_cpu(pid), secs=secs,
              all_seen=int(done))
    if pattern is not None:
        kv.update(looked=looked, looked_per_s=looked / secs if secs > 0 else 0.0)
    kv["ok"] = int(s["VmHWM"] < a.limit_mb * 1024)
    result(**kv)


# ------------------------------------------------------------------ first
def cmd_first(a):
    """Starts the sink (smtp-sink -M 1) and then mh-serve; times from the exec of
    mh-serve until the sink has received its first message. mh-serve's pid goes to
    PIDFILE (for the caller's cleanup); it is stopped (SIGTERM) at once afterwards."""
    sink = start_sink(a.sink_port, 1, a.sink_user)
    serve = None
    try:
        logf = open(a.log, "ab")
        t0 = time.perf_counter()
        serve = subprocess.Popen(a.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        with open(a.pidfile, "w") as f:
            f.write(f"{serve.pid}\n")
        got = False
        try:
            sink.wait(a.timeout)
            got = sink.returncode == 0
        except subprocess.TimeoutExpired:
            log(f"{a.name}: no message at the sink after {a.timeout} s")
        t1 = time.perf_counter()
        kv = dict(name=a.name, run=a.run, entries=a.entries, secs=t1 - t0 if got else a.timeout)
        if serve.poll() is None:
            s = proc_status(serve.pid)
            kv.update(rss_kb=s["VmRSS"], hwm_kb=s["VmHWM"], cpu_s=proc_cpu(serve.pid))
        else:
            log(f"{a.name}: mh-serve exited with {serve.returncode}")
            got = False
        kv["ok"] = int(got and t1 - t0 < a.target)
        result(**kv)
    finally:
        stop_proc(serve)
        stop_proc(sink)
    return 0


# ------------------------------------------------------------------ table
def med(rows, field):
    vals = []
    for r in rows:
        try:
            vals.append(float(r[field]))
        except (KeyError, ValueError):
            pass
    return (statistics.median(vals), vals) if vals else (None, [])


def throughput_rows(lines, label, m_rate, p_rate, m_acc, p_acc, m_vals, p_vals, ratio, pairs, verdict, f):
    lines.append(f"| {label}, submit -> queue -> sink, msgs/s (median of {len(m_vals)}/{len(p_vals)}) "
                 f"| {f(m_rate)} | {f(p_rate)} | {f(ratio, '{:.2f}')} | >= 2 | {verdict} |")
    lines.append(f"| same, accept rate (client done), msgs/s | {f(m_acc)} | {f(p_acc)} | "
                 f"{f(m_acc / p_acc if m_acc and p_acc else None, '{:.2f}')} | | |")
    lines.append(f"| single runs msgs/s | {', '.join(f'{v:,.0f}' for v in m_vals) or '-'} "
                 f"| {', '.join(f'{v:,.0f}' for v in p_vals) or '-'} | pairs {', '.join(f'{x:.2f}' for x in pairs) or '-'} | | |")


def cmd_table(a):
    runs = read_results(a.results)
    lines = []
    mh, pf = runs.get(a.mh, []), runs.get(a.pf, [])
    m_rate, m_vals = med(mh, "msgs_per_s")
    p_rate, p_vals = med(pf, "msgs_per_s")
    m_acc, _ = med(mh, "accept_msgs_per_s")
    p_acc, _ = med(pf, "accept_msgs_per_s")
    ratio = m_rate / p_rate if m_rate and p_rate else None
    all_ok = all(r.get("ok") == "1" for r in mh + pf) and bool(mh) and bool(pf)
    pairs = []
    for r in mh:
        p = [x for x in pf if x.get("run") == r.get("run")]
        if p and float(p[0].get("msgs_per_s", 0)) > 0:
            pairs.append(float(r.get("msgs_per_s", 0)) / float(p[0]["msgs_per_s"]))
    pair_med = statistics.median(pairs) if pairs else None
    verdict = "ok" if ratio is not None and ratio >= 2 else "MISSED"
    if not all_ok:
        verdict += " (a run failed)"
    if mh or pf:
        result(name="ratio", label="outbound_4k_c8", a=a.mh, b=a.pf, field="msgs_per_s",
               a_median=m_rate if m_rate is not None else "-", b_median=p_rate if p_rate is not None else "-",
               ratio=ratio if ratio is not None else "-", pair_ratios=",".join(f"{x:.2f}" for x in pairs) or "-",
               pair_median=pair_med if pair_med is not None else "-", target=">=2",
               check=verdict.replace(" ", "_"))

    def f(v, fmt="{:,.0f}"):
        return "-" if v is None else fmt.format(v)

    lines.append("| measure | mh-serve | Postfix | ratio | target | |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    if mh or pf:
        any_row = (mh + pf)[0]
        label = f"{int(any_row.get('msgs', 0)):,} x {int(any_row.get('size', 0)):,} B, {any_row.get('sessions', '?')} sessions"
        throughput_rows(lines, label, m_rate, p_rate, m_acc, p_acc, m_vals, p_vals, ratio, pairs, verdict, f)
        cpu, _ = med(mh, "busiest_thread_cpu_s")
        runq, _ = med(mh, "busiest_thread_runq_s")
        if cpu is not None:
            lines.append(f"| mh-serve's busiest thread (the runner) per run: on CPU / waiting for a CPU, s "
                         f"| {cpu:.2f} / {runq:.2f} | | | | |")
    for r in runs.get("mhserve_queue_rss", []):
        good = int(r["hwm_kb"]) < 64 * 1024
        extra = (f", looked at {int(r['looked']):,} in {float(r['secs']):.1f} s" if "looked" in r
                 else f", queue read in {float(r['secs']):.1f} s")
        lines.append(f"| RSS, {int(r['entries']):,} queued, {r['state']}{extra} "
                     f"| {int(r['rss_kb']) / 1024:.1f} MB (peak {int(r['hwm_kb']) / 1024:.1f}) | | | < 64 MB "
                     f"| {'ok' if good else 'MISSED'} |")
    for name in sorted(n for n in runs if n.startswith("mhserve_first_delivery")):
        v, vals = med(runs[name], "secs")
        ok = v is not None and v < 2 and all(r.get("ok") == "1" for r in runs[name])
        lines.append(f"| start -> first delivery, {name.rsplit('_', 1)[-1]} cache, s (median of {len(vals)}: "
                     f"{', '.join(f'{x:.2f}' for x in vals)}) | {f(v, '{:.2f}')} | | | < 2 s | {'ok' if ok else 'MISSED'} |")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    p = sp.add_parser("freeports")
    p.add_argument("n", type=int)
    p.set_defaults(f=cmd_freeports)

    p = sp.add_parser("throughput")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    p.add_argument("--msgs", type=int, default=1000)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--sender", required=True)
    p.add_argument("--rcpt", required=True)
    p.add_argument("--sink-port", type=int, required=True)
    p.add_argument("--sink-user", default="nobody")
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(f=cmd_throughput)

    p = sp.add_parser("mkqueue")
    p.add_argument("--spool", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--n", type=int, default=100000)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--sender", default="sender@bench.test")
    p.add_argument("--rcpt", default="someone@remote.test")
    p.add_argument("--defer", type=int, default=0,
                   help="next_attempt = now + DEFER s (0: due now)")
    p.add_argument("--repair", action="store_true", help="put back what a run changed (see the state file)")
    p.add_argument("--rewrite-all", action="store_true", help="with --repair: rewrite every .env (a new DEFER)")
    p.add_argument("--seed", type=int, default=9)
    p.set_defaults(f=cmd_mkqueue)

    p = sp.add_parser("watch")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--log", default="")
    p.add_argument("--log-offset", type=int, default=0)
    p.add_argument("--pattern", default="")
    p.add_argument("--expect", type=int, default=100000)
    p.add_argument("--state", required=True)
    p.add_argument("--start", type=float, default=0, help="unix time mh-serve was started")
    p.add_argument("--max-wait", type=float, default=40)
    p.add_argument("--idle", type=float, default=2)
    p.add_argument("--limit-mb", type=float, default=64)
    p.set_defaults(f=cmd_watch)

    p = sp.add_parser("first")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--entries", type=int, default=100000)
    p.add_argument("--sink-port", type=int, required=True)
    p.add_argument("--sink-user", default="nobody")
    p.add_argument("--log", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--target", type=float, default=2)
    p.add_argument("argv", nargs="+")
    p.set_defaults(f=cmd_first)

    p = sp.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--mh", default="mhserve_outbound_4k_c8")
    p.add_argument("--pf", default="postfix_outbound_4k_c8")
    p.set_defaults(f=cmd_table)

    a = ap.parse_args()
    sys.exit(a.f(a) or 0)


if __name__ == "__main__":
    main()
