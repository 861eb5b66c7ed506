#!/usr/bin/env python3
"""POP3 and TLS clients of bench/pop3.sh (python3 standard library only).

  mkmsg      write one test message of exactly SIZE bytes (LF line ends)
  probe      connect (plain or implicit TLS), print the greeting (and CAPA for POP3);
             exit 0 only if the greeting starts with --expect
  drain      one timed run: C client processes, each drains one mailbox with
             USER/PASS, LIST, RETR every message (read fully), DELE every message, QUIT
  handshake  timed TLS handshakes: connect, full TLS handshake, read the greeting, close
  latency    connect-to-greeting time of single TLS connections (no TCP_QUICKACK)
  stime      the same with `openssl s_time -new` (handshake only, no greeting)
  table      medians and ratios "A against one or more anchors" from a results file

Every measurement is one line "RESULT name=... run=N key=value ..." on stdout (the format
of benchlib.py and ../shared/bench/mhbench.py); diagnostics go to stderr.

Two POP3 clients do the same protocol work:
  poplib     Python's poplib: one command, then its whole reply, then the next command.
             Its RETR reads the reply line by line in Python, which costs client CPU in
             proportion to the number of lines (about 1,300 for a 100 KiB message).
  pipelined  a raw socket: after the login and LIST it sends the RETR commands WINDOW at a
             time without waiting (RFC 2449 PIPELINING, if the server's CAPA lists it;
             otherwise one at a time), then the DELE commands the same way, and finds the
             end of each multi-line reply with one bytes.find(b"\\r\\n.\\r\\n") in C.
"""
import argparse
import multiprocessing as mp
import os
import poplib
import re
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (result(), read_results(), median_of(), verdict())

result = benchlib.result


def log(msg):
    print(f"[pop3bench] {msg}", file=sys.stderr, flush=True)


def client_context():
    """TLS client context that accepts the self-signed certificates (no verification);
    TLS 1.2 and 1.3, OpenSSL's default groups and ciphers."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def cpu_self():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------------ mkmsg
def cmd_mkmsg(a):
    """A message of exactly SIZE bytes, LF line ends (as a Maildir stores it): ordinary
    headers, then 76-byte body lines. No line starts with '.'."""
    hdr = ("Return-Path: <sender@example.invalid>\n"
           "Received: from client.example.invalid ([192.0.2.1])\n"
           "\tby mhbench.localdomain with ESMTP; Mon, 01 Jan 2024 00:00:00 +0000\n"
           "From: Bench Sender <sender@example.invalid>\n"
           "To: <u@bench.test>\n"
           f"Subject: pop3 benchmark message of {a.size} bytes\n"
           "Message-ID: <pop3bench@mhbench.invalid>\n"
           "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=us-ascii\n\n")
    body_len = a.size - len(hdr)
    if body_len < 2:
        log(f"--size {a.size} is smaller than the headers ({len(hdr)} bytes)")
        return 64
    line = "x" * 75 + "\n"
    body = (line * (body_len // len(line) + 1))[:body_len - 1] + "\n"
    data = (hdr + body).encode()
    assert len(data) == a.size
    with open(a.out, "wb") as f:
        f.write(data)
    return 0


# ------------------------------------------------------------------ probe
def read_line(sock, limit=8192):
    buf = b""
    while not buf.endswith(b"\r\n") and len(buf) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def cmd_probe(a):
    """Exit 0 if PORT answers with a greeting starting with EXPECT (after a TLS handshake
    with --tls). For a POP3 greeting it also prints the CAPA reply (one line)."""
    try:
        s = socket.create_connection((a.host, a.port), timeout=a.timeout)
        tls = ""
        if a.tls:
            s = client_context().wrap_socket(s)
            tls = f" ({s.version()} {s.cipher()[0]})"
        greeting = read_line(s)
        info = greeting.decode(errors="replace").strip()
        if greeting.startswith(b"+OK"):
            s.sendall(b"CAPA\r\n")
            capa = []
            line = read_line(s)
            if line.startswith(b"+OK"):
                while True:
                    line = read_line(s)
                    if not line or line == b".\r\n":
                        break
                    capa.append(line.decode(errors="replace").strip())
            info += " | CAPA: " + " ".join(capa)
            s.sendall(b"QUIT\r\n")
        elif greeting.startswith(b"220"):
            s.sendall(b"QUIT\r\n")
        try:
            read_line(s)
        except OSError:
            pass
        s.close()
    except (OSError, ssl.SSLError) as e:
        print(f"{a.host}:{a.port}: {e!r}")
        return 1
    print(f"{a.host}:{a.port}{tls}: {info}")
    return 0 if greeting.startswith(a.expect.encode()) else 1


# ------------------------------------------------------------------ drain
class PopError(Exception):
    pass


class Conn:
    """A buffered POP3 connection for the pipelined client."""

    def __init__(self, sock):
        self.s = sock
        self.buf = bytearray()
        self.pos = 0          # start of the unparsed data in buf
        self.wire = 0         # bytes received

    def fill(self):
        data = self.s.recv(262144)
        if not data:
            raise PopError("connection closed by the server")
        self.wire += len(data)
        self.buf += data

    def compact(self):
        """Drops the parsed data now and then (not per reply); only between replies,
        so that no offset into buf is held across it."""
        if self.pos > 1 << 20:
            del self.buf[:self.pos]
            self.pos = 0

    def line(self):
        self.compact()
        scan = self.pos
        while True:
            i = self.buf.find(b"\r\n", scan)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            scan = max(self.pos, len(self.buf) - 1)
            self.fill()

    def status(self):
        line = self.line()
        if not line.startswith(b"+OK"):
            raise PopError(line.decode(errors="replace"))
        return line

    def multiline(self):
        """Status line, then the data up to CRLF.CRLF; returns the data's length on the
        wire (dot-stuffed, CRLF line ends, without the terminating '.' line)."""
        self.status()                # compacts first: start >= 5 below
        start = self.pos
        scan = start - 2             # an empty body: "+OK\r\n.\r\n"
        while True:
            i = self.buf.find(b"\r\n.\r\n", scan)
            if i >= 0:
                self.pos = i + 5
                return i + 2 - start
            scan = max(start - 2, len(self.buf) - 4)
            self.fill()

    def send(self, data):
        self.s.sendall(data)


def session_pipelined(host, port, mode, user, password, window, timeout):
    marks = [time.perf_counter()]
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "tls":
        s = client_context().wrap_socket(s)
    c = Conn(s)
    c.status()                                  # greeting
    c.send(b"CAPA\r\n")
    c.status()
    capa = set()
    while True:
        line = c.line()
        if line == b".":
            break
        capa.add(line.split(b" ")[0].upper())
    if mode == "stls":
        if b"STLS" not in capa:
            raise PopError("no STLS in CAPA")
        c.send(b"STLS\r\n")
        c.status()
        if c.pos != len(c.buf):
            raise PopError("data after the STLS reply")
        s = client_context().wrap_socket(s)
        c = Conn(s)
    tls = (s.version(), s.cipher()[0]) if isinstance(s, ssl.SSLSocket) else ("", "")
    pipelining = b"PIPELINING" in capa
    if not pipelining:
        window = 1
    c.send(f"USER {user}\r\n".encode())
    c.status()
    c.send(f"PASS {password}\r\n".encode())
    c.status()
    marks.append(time.perf_counter())
    c.send(b"LIST\r\n")
    c.status()
    sizes = []
    while True:
        line = c.line()
        if line == b".":
            break
        num, size = line.split()[:2]
        sizes.append((int(num), int(size)))
    nums = [n for n, _ in sizes]
    marks.append(time.perf_counter())

    def pipeline(cmd, multi):
        """Sends CMD for every message, at most `window` in flight (0: all at once),
        topping the window up once half of it is answered; reads every reply."""
        lengths = []
        sent, total = 0, len(nums)
        win = window if window > 0 else max(1, total)
        while len(lengths) < total:
            in_flight = sent - len(lengths)
            if sent < total and (in_flight == 0 or in_flight <= win // 2):
                upto = min(total, len(lengths) + win)
                c.send(b"".join(f"{cmd} {n}\r\n".encode() for n in nums[sent:upto]))
                sent = upto
            lengths.append(c.multiline() if multi else len(c.status()))
        return lengths

    got = pipeline("RETR", True)
    marks.append(time.perf_counter())
    pipeline("DELE", False)
    marks.append(time.perf_counter())
    c.send(b"QUIT\r\n")
    c.status()
    marks.append(time.perf_counter())
    s.close()
    list_bytes = sum(sz for _, sz in sizes)
    mismatch = sum(1 for (_, sz), g in zip(sizes, got) if sz != g)
    return dict(msgs=len(got), list_bytes=list_bytes, wire=sum(got), mismatch=mismatch,
                tls=tls, pipelining=int(pipelining), phases=phases(marks))


def session_poplib(host, port, mode, user, password, window, timeout):
    marks = [time.perf_counter()]
    if mode == "tls":
        p = poplib.POP3_SSL(host, port, timeout=timeout, context=client_context())
    else:
        p = poplib.POP3(host, port, timeout=timeout)
        if mode == "stls":
            p.stls(context=client_context())
    tls = (p.sock.version(), p.sock.cipher()[0]) if isinstance(p.sock, ssl.SSLSocket) else ("", "")
    p.user(user)
    p.pass_(password)
    marks.append(time.perf_counter())
    _, listing, _ = p.list()
    sizes = [tuple(int(x) for x in line.split()[:2]) for line in listing]
    marks.append(time.perf_counter())
    msgs = wire = mismatch = 0
    for n, size in sizes:
        _, lines, octets = p.retr(n)          # the whole message, as a list of lines
        msgs += 1
        wire += octets
        # poplib's octets count every line + CRLF, dot-stuffing removed (none here)
        if octets != size:
            mismatch += 1
    marks.append(time.perf_counter())
    for n, _ in sizes:
        p.dele(n)
    marks.append(time.perf_counter())
    p.quit()
    marks.append(time.perf_counter())
    return dict(msgs=msgs, list_bytes=sum(s for _, s in sizes), wire=wire, mismatch=mismatch,
                tls=tls, pipelining=0, phases=phases(marks))


PHASES = ("login", "list", "retr", "dele", "quit")


def phases(marks):
    """Seconds of each phase: connect (and TLS) to the PASS reply, LIST, all RETRs, all
    DELEs, QUIT (the server's expunge) — from the client's clock marks."""
    return [b - a for a, b in zip(marks, marks[1:])]


SESSIONS = {"pipelined": session_pipelined, "poplib": session_poplib}


def drain_worker(a, user, barrier, queue):
    out = dict(user=user, msgs=0, list_bytes=0, wire=0, mismatch=0, tls=("", ""),
               pipelining=0, error="", phases=[])
    try:
        barrier.wait(timeout=60)
    except Exception as e:  # noqa: BLE001
        out.update(error=f"barrier: {e!r}", t0=0.0, t1=0.0, cpu=0.0)
        queue.put(out)
        return
    cpu0 = cpu_self()
    t0 = time.perf_counter()
    try:
        out.update(SESSIONS[a.client](a.host, a.port, a.mode, user, a.password, a.window,
                                      a.timeout))
    except Exception as e:  # noqa: BLE001  (reported, run marked ok=0)
        out["error"] = repr(e)[:300]
    out.update(t0=t0, t1=time.perf_counter(), cpu=cpu_self() - cpu0)
    queue.put(out)


def count_left(dirs):
    n = 0
    for d in dirs:
        for sub in ("new", "cur"):
            try:
                n += sum(1 for e in os.scandir(os.path.join(d, sub)) if not e.name.startswith("."))
            except FileNotFoundError:
                pass
    return n


def cmd_drain(a):
    """One run: len(USERS) client processes start together (after fork, at a barrier);
    each drains its mailbox in one session. secs = first start to last QUIT reply.
    bytes = the sizes LIST reported (RFC 1939: octets as sent, CRLF line ends)."""
    users = a.users.split(",")
    left_dirs = [d for d in a.left_dirs.split(",") if d]
    if a.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        r = SESSIONS[a.client](a.host, a.port, a.mode, users[0], a.password, a.window, a.timeout)
        prof.disable()
        dt = time.perf_counter() - t0
        log(f"profile {a.client} {a.mode}: {r['msgs']} msgs in {dt:.2f} s (profiled)")
        st = pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime")
        st.print_stats(12)
        return 0
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(users) + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=drain_worker, args=(a, u, barrier, queue)) for u in users]
    for p in procs:
        p.start()
    barrier.wait(timeout=60)
    outs = [queue.get(timeout=a.timeout * 10) for _ in procs]
    for p in procs:
        p.join()
    secs = max(o["t1"] for o in outs) - min(o["t0"] for o in outs)
    msgs = sum(o["msgs"] for o in outs)
    list_bytes = sum(o["list_bytes"] for o in outs)
    wire = sum(o["wire"] for o in outs)
    mismatch = sum(o["mismatch"] for o in outs)
    cpu = sum(o["cpu"] for o in outs)
    errors = [o for o in outs if o["error"]]
    for o in errors[:3]:
        log(f"{a.name}: {o['user']}: {o['error']}")
    left = count_left(left_dirs) if left_dirs else -1
    left_final = left
    deadline = time.perf_counter() + 2
    while left_final > 0 and time.perf_counter() < deadline:   # a lazy expunge?
        time.sleep(0.1)
        left_final = count_left(left_dirs)
    expect = a.expect_per_user * len(users) if a.expect_per_user >= 0 else -1
    ok = not errors and (expect < 0 or msgs == expect) and left <= 0
    if not ok:
        log(f"{a.name}: msgs={msgs} expected={expect} errors={len(errors)} left={left}"
            f" left_after_2s={left_final}")
    tls = outs[0]["tls"]
    kv = dict(name=a.name, run=a.run, client=a.client, mode=a.mode, clients=len(users),
              msgs=msgs, bytes=list_bytes, wire_bytes=wire, secs=secs,
              msgs_per_s=msgs / secs if secs > 0 else 0.0,
              MB_per_s=list_bytes / secs / 1e6 if secs > 0 else 0.0,
              client_cpu_s=cpu, client_cpu_pct=100 * cpu / secs if secs > 0 else 0.0,
              size_mismatch=mismatch, pipelining=outs[0]["pipelining"])
    if tls[0]:
        kv.update(tls=tls[0], cipher=tls[1])
    done = [o["phases"] for o in outs if len(o["phases"]) == len(PHASES)]
    for i, ph in enumerate(PHASES):    # mean over the sessions
        if done:
            kv[f"{ph}_s"] = sum(d[i] for d in done) / len(done)
    if done and kv["retr_s"] > 0:      # the RETR phase alone (C sessions side by side)
        kv["retr_msgs_per_s"] = msgs / kv["retr_s"]
    kv.update(left=left, ok=int(ok))
    if left_final != left:
        kv["left_after_2s"] = left_final
    result(**kv)
    return 0 if ok else 1


# -------------------------------------------------------------- handshake
def quickack(sock):
    """Linux TCP_QUICKACK: ACK at once instead of delaying the ACK up to 40 ms (not
    sticky, so set again before each read). See cmd_handshake."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def one_handshake(a, ctx, expect, qa):
    """connect, full TLS handshake, read the greeting line; returns the TLS socket."""
    s = socket.create_connection((a.host, a.port), timeout=10)
    try:
        if qa:
            quickack(s)
        s = ctx.wrap_socket(s)                 # the full handshake happens here
        if expect:
            if qa:
                quickack(s)
            line = read_line(s)                # the server is past its side of it
            if not line.startswith(expect):
                raise PopError(f"greeting {line[:60]!r}")
        return s
    except BaseException:
        s.close()
        raise


def hs_worker(a, barrier, queue):
    ctx = client_context()
    n = errors = 0
    first_err = ""
    tls = ("", "")
    expect = a.greeting.encode()
    barrier.wait(timeout=60)
    cpu0 = cpu_self()
    t0 = time.perf_counter()
    deadline = t0 + a.secs
    while time.perf_counter() < deadline:
        try:
            s = one_handshake(a, ctx, expect, a.quickack)
            if not tls[0]:
                tls = (s.version(), s.cipher()[0])
            s.close()
            n += 1
        except (OSError, ssl.SSLError, PopError) as e:
            errors += 1
            first_err = first_err or repr(e)[:200]
    queue.put(dict(n=n, errors=errors, first_err=first_err, tls=tls, t0=t0,
                   t1=time.perf_counter(), cpu=cpu_self() - cpu0))


def cmd_latency(a):
    """N sequential connections, each timed from connect to the greeting, with the
    client's ordinary delayed ACKs (no TCP_QUICKACK): shows a server whose greeting waits
    in Nagle's algorithm for the ACK of its previous small write (+40 ms)."""
    ctx = client_context()
    expect = a.greeting.encode()
    times = []
    errors = 0
    for _ in range(a.n):
        t0 = time.perf_counter()
        try:
            one_handshake(a, ctx, expect, False).close()
            times.append(time.perf_counter() - t0)
        except (OSError, ssl.SSLError, PopError) as e:
            errors += 1
            log(f"{a.name}: {e!r}")
        time.sleep(0.01)
    ok = bool(times) and errors == 0
    med = statistics.median(times) * 1000 if times else 0.0
    result(name=a.name, run=a.run, n=len(times), errors=errors, ms_median=med,
           ms_max=max(times) * 1000 if times else 0.0,
           over_40ms=sum(1 for t in times if t > 0.04), ok=int(ok))
    return 0 if ok else 1


def cmd_handshake(a):
    """CONC client processes, each in a loop for SECS seconds: TCP connect, full TLS
    handshake (no session resumption), read the greeting line, close.

    With --quickack 1 (the default) the client ACKs at once (TCP_QUICKACK). Otherwise a
    server that writes its TLS 1.3 session tickets and then its greeting in two small
    writes without TCP_NODELAY has the greeting held back by Nagle's algorithm until the
    client's delayed ACK, 40 ms later (Postfix's smtpd does: 45 ms per connection), and
    one client then measures that timer instead of the server. `latency` shows it."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(a.conc + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=hs_worker, args=(a, barrier, queue)) for _ in range(a.conc)]
    for p in procs:
        p.start()
    barrier.wait(timeout=60)
    outs = [queue.get(timeout=a.secs + 60) for _ in procs]
    for p in procs:
        p.join()
    secs = max(o["t1"] for o in outs) - min(o["t0"] for o in outs)
    n = sum(o["n"] for o in outs)
    errors = sum(o["errors"] for o in outs)
    errs = [o["first_err"] for o in outs if o["first_err"]]
    if errs:
        log(f"{a.name}: {errors} errors, e.g. {errs[0]}")
    cpu = sum(o["cpu"] for o in outs)
    tls = next((o["tls"] for o in outs if o["tls"][0]), ("-", "-"))
    ok = n > 0 and errors <= n // 100
    result(name=a.name, run=a.run, conc=a.conc, quickack=a.quickack, handshakes=n,
           errors=errors, secs=secs,
           hs_per_s=n / secs if secs > 0 else 0.0, client_cpu_s=cpu,
           client_cpu_pct=100 * cpu / secs if secs > 0 else 0.0,
           tls=tls[0], cipher=tls[1], ok=int(ok))
    return 0 if ok else 1


def cmd_stime(a):
    """openssl s_time -new: one process, full handshakes, no application data (so it
    does not wait for a greeting). Its own "real seconds" are whole seconds, so the rate
    is taken over the wall time of the command (which adds its start, ~10 ms)."""
    t0 = time.perf_counter()
    p = subprocess.run(["openssl", "s_time", "-connect", f"{a.host}:{a.port}", "-new",
                        "-time", str(a.secs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=a.secs + 60)
    secs = time.perf_counter() - t0
    out = p.stdout.decode(errors="replace")
    m = re.search(r"(\d+) connections in [\d.]+ real seconds", out)
    ok = p.returncode == 0 and m is not None
    n = int(m.group(1)) if m else 0
    if not ok:
        log(f"{a.name}: openssl s_time rc={p.returncode}: {out.strip()[-300:]}")
    result(name=a.name, run=a.run, conc=1, handshakes=n, secs=secs,
           hs_per_s=n / secs if secs > 0 else 0.0, ok=int(ok))
    return 0 if ok else 1


# ------------------------------------------------------------------ table
def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def cmd_table(a):
    """One row per --row "LABEL;NAME_A;NAME_B1[;NAME_B2...]": median of FIELD for A and for
    each anchor B, and the ratio A/B (checked against TARGET). A row whose A has no
    results shows "-": the anchors' medians are still printed."""
    runs = benchlib.read_results(a.results)
    anchors = a.anchors.split(",")
    head = ["measure", a.header_a]
    for b in anchors:
        head += [b, f"{a.header_a_short}/{b}"]
    head += ["target", ""]
    rows = []
    for spec in a.row:
        parts = spec.split(";")
        label, na, nbs = parts[0], parts[1], parts[2:]
        va, ka, oka = benchlib.median_of(runs, na, a.field)
        row = [label, f"{fmt(va)} (n={ka})" if ka else "-"]
        checks = []
        all_ok = oka
        for i, b in enumerate(anchors):
            nb = nbs[i] if i < len(nbs) else ""
            if not nb:
                row += ["", ""]
                continue
            vb, kb, okb = benchlib.median_of(runs, nb, a.field)
            all_ok = all_ok and okb
            ratio = va / vb if va is not None and vb else None
            row += [f"{fmt(vb)} (n={kb})" if kb else "-", f"{ratio:.2f}" if ratio else "-"]
            if ratio is not None:
                checks.append(benchlib.verdict(ratio, a.target))
            result(name="ratio", label=label.replace(" ", "_"), field=a.field, a=na, b=nb,
                   a_median=va if va is not None else "-", b_median=vb if vb is not None else "-",
                   ratio=ratio if ratio is not None else "-", target=a.target or "-")
        check = ("MISSED" if "MISSED" in checks else "ok") if checks and a.target else ""
        if ka == 0:
            check = "no mh-serve result"
        if not all_ok:
            check = (check + " (a run failed)").strip()
        row += [a.target, check]
        rows.append(row)
    print(f"\n{a.title}")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths]] + rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    if a.pairs:
        pair_lines(a, runs, anchors)
    return 0


def pair_lines(a, runs, anchors):
    """Per-pair ratios: A and each anchor B of the same run number (the same rep, run
    seconds apart), and their median. A burst of load from elsewhere that lasts a few
    seconds tends to hit both sides of a pair; the ratio of medians does not see that."""
    def by_run(name):
        out = {}
        for r in runs.get(name, []):
            try:
                out[r["run"]] = float(r[a.field])
            except (KeyError, ValueError):
                pass
        return out
    for spec in a.row:
        parts = spec.split(";")
        label, na, nbs = parts[0], parts[1], parts[2:]
        ra = by_run(na)
        if not ra:
            continue
        for i, nb in enumerate(nbs):
            if not nb:
                continue
            rb = by_run(nb)
            pairs = [ra[k] / rb[k] for k in sorted(ra, key=int) if k in rb and rb[k] > 0]
            if pairs:
                result(name="pair_ratio", label=label.replace(" ", "_"), field=a.field,
                       anchor=anchors[i].replace(" ", "_"), pairs=len(pairs),
                       ratios=",".join(f"{x:.2f}" for x in pairs),
                       median=statistics.median(pairs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)

    p = sp.add_parser("mkmsg")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(f=cmd_mkmsg)

    p = sp.add_parser("probe")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--expect", default="+OK")
    p.add_argument("--timeout", type=float, default=5)
    p.set_defaults(f=cmd_probe)

    p = sp.add_parser("drain")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("plain", "tls", "stls"), default="plain")
    p.add_argument("--client", choices=tuple(SESSIONS), default="pipelined")
    p.add_argument("--users", required=True, help="comma-separated logins, one process each")
    p.add_argument("--password", required=True)
    p.add_argument("--expect-per-user", type=int, default=-1)
    p.add_argument("--left-dirs", default="", help="comma-separated Maildirs, must be empty after")
    p.add_argument("--window", type=int, default=0, help="pipelined: commands in flight (0 = all)")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--profile", action="store_true", help="one session under cProfile, no RESULT")
    p.set_defaults(f=cmd_drain)

    p = sp.add_parser("handshake")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secs", type=float, default=5)
    p.add_argument("--conc", type=int, default=1)
    p.add_argument("--greeting", default="", help="read the first line, must start with this")
    p.add_argument("--quickack", type=int, default=1, help="1: TCP_QUICKACK (see above)")
    p.set_defaults(f=cmd_handshake)

    p = sp.add_parser("latency")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--greeting", default="")
    p.set_defaults(f=cmd_latency)

    p = sp.add_parser("stime")
    p.add_argument("--name", required=True)
    p.add_argument("--run", default="1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secs", type=int, default=5)
    p.set_defaults(f=cmd_stime)

    p = sp.add_parser("table")
    p.add_argument("--results", required=True)
    p.add_argument("--title", default="")
    p.add_argument("--field", required=True)
    p.add_argument("--header-a", default="mh-serve")
    p.add_argument("--header-a-short", default="mh")
    p.add_argument("--anchors", required=True, help="comma-separated column names of the anchors")
    p.add_argument("--target", default="")
    p.add_argument("--row", action="append", required=True)
    p.add_argument("--pairs", action="store_true", help="also the per-pair ratios (pair_ratio lines)")
    p.set_defaults(f=cmd_table)

    a = ap.parse_args()
    sys.exit(a.f(a) or 0)


if __name__ == "__main__":
    main()
