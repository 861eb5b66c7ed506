/*
 * pop3drain - the POP3 and TLS-handshake client of bench/pop3.sh and bench/speed.sh, in C so
 * that the client is never what limits the measured server. Three modes:
 *   drain      N forked clients, each drains one mailbox: USER/PASS, LIST, then every RETR
 *              pipelined (one large write), every DELE pipelined, QUIT
 *   serve      a POP3 server answering the same commands from memory (one fork per
 *              connection): drained by `drain`, it shows what the client alone can do
 *   handshake  sequential connections: connect() to the first greeting line after a full
 *              TLS handshake (implicit TLS), median and p90
 * Output: one "RESULT name=... run=N key=value ... ok=0|1" line (bench/benchlib.py format).
 * Build: cc -O2 -Wall -o pop3drain pop3drain.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP (256 * 1024)

/* ------------------------------------------------------------ options */
static struct {
    const char *mode, *name, *run, *host, *users, *password, *left_dirs, *greeting;
    const char *cert, *key;
    int port, tls, quickack, window, n, msgs, size;
    long expect_per_user;
} opt = {.name = "pop3drain", .run = "1", .host = "127.0.0.1", .password = "",
         .left_dirs = "", .greeting = "", .window = 2048, .n = 500, .msgs = 1000,
         .size = 4096, .expect_per_user = -1};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pop3drain: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------ a buffered connection */
typedef struct {
    int fd;
    SSL *ssl;
    char *buf;
    size_t pos, len;    /* unparsed data is buf[pos, len) */
    char *out;          /* pending output (serve mode) */
    size_t out_len;
    char err[256];
} Conn;

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);     /* the benches' self-signed pairs */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* every connection a full handshake, as a new client's would be */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    return ctx;
}

static int tcp_connect(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
        die("--host %s: not an IPv4 address", opt.host);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        die("socket: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Linux TCP_QUICKACK: ACK at once rather than up to 40 ms later. Not sticky, hence set
 * after connect() and again after the handshake: a server that writes its TLS 1.3 tickets
 * and then its greeting in two small writes without TCP_NODELAY otherwise has the greeting
 * held by Nagle's algorithm until the client's delayed ACK (Postfix's smtpd does). */
static void quickack(int fd)
{
    int one = 1;
    if (opt.quickack)
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static int conn_open(Conn *c, SSL_CTX *ctx)
{
    memset(c, 0, sizeof *c);
    c->buf = malloc(BUF_CAP);
    if ((c->fd = tcp_connect()) < 0) {
        snprintf(c->err, sizeof c->err, "connect %s:%d: %s", opt.host, opt.port, strerror(errno));
        return -1;
    }
    quickack(c->fd);
    if (ctx) {
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_connect(c->ssl) != 1) {
            snprintf(c->err, sizeof c->err, "TLS handshake with port %d: %s", opt.port,
                     ERR_error_string(ERR_get_error(), NULL));
            return -1;
        }
        quickack(c->fd);
    }
    return 0;
}

static void conn_close(Conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    free(c->out);
    c->buf = c->out = NULL;
}

static int conn_write(Conn *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int) n) : write(c->fd, p, n);
        if (w <= 0) {
            if (!c->ssl && w < 0 && errno == EINTR)
                continue;
            snprintf(c->err, sizeof c->err, "write: %s", c->ssl ? "TLS error" : strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Reads more into buf; makes room first by moving the unparsed data to the front. */
static int conn_fill(Conn *c)
{
    if (c->len == BUF_CAP && c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == BUF_CAP) {
        snprintf(c->err, sizeof c->err, "a line longer than %d bytes", BUF_CAP);
        return -1;
    }
    ssize_t r;
    do
        r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int) (BUF_CAP - c->len))
                   : read(c->fd, c->buf + c->len, BUF_CAP - c->len);
    while (r < 0 && !c->ssl && errno == EINTR);
    if (r <= 0) {
        snprintf(c->err, sizeof c->err, "connection closed by the server (%s)",
                 r < 0 && !c->ssl ? strerror(errno) : "EOF");
        return -1;
    }
    c->len += (size_t) r;
    return 0;
}

/* The next line, without its CRLF, NUL-terminated in place; NULL on error. */
static char *conn_line(Conn *c)
{
    size_t scan = c->pos;
    for (;;) {
        char *p = memmem(c->buf + scan, c->len - scan, "\r\n", 2);
        if (p) {
            char *line = c->buf + c->pos;
            *p = '\0';
            c->pos = (size_t) (p - c->buf) + 2;
            return line;
        }
        size_t old_pos = c->pos;
        scan = c->len > c->pos ? c->len - 1 : c->pos;
        if (conn_fill(c) < 0)
            return NULL;
        scan -= old_pos - c->pos;          /* conn_fill may have moved the data */
    }
}

static char *conn_status(Conn *c)
{
    char *line = conn_line(c);
    if (line && strncmp(line, "+OK", 3) != 0) {
        snprintf(c->err, sizeof c->err, "server said: %.200s", line);
        return NULL;
    }
    return line;
}

/* Status line, then the data up to CRLF.CRLF; returns the data's length on the wire
 * (dot-stuffed, CRLF line ends, without the terminating "." line), -1 on error. Data
 * longer than the buffer is counted and dropped as it streams past. */
static long conn_multiline(Conn *c)
{
    if (!conn_status(c))
        return -1;
    c->buf[c->pos - 2] = '\r';            /* conn_line put its NUL there */
    long counted = 0;
    size_t start = c->pos, scan = c->pos - 2;     /* empty body: "+OK\r\n.\r\n" */
    for (;;) {
        char *p = memmem(c->buf + scan, c->len - scan, "\r\n.\r\n", 5);
        if (p) {
            size_t i = (size_t) (p - c->buf);
            c->pos = i + 5;
            return counted + (long) (i + 2) - (long) start;
        }
        if (c->len - scan > 4)
            scan = c->len - 4;               /* a terminator may straddle the next read */
        if (c->len == BUF_CAP) {             /* drop what is scanned, keep [scan, len) */
            if (scan > start) {
                counted += (long) (scan - start);
                start = scan;
            }
            memmove(c->buf, c->buf + scan, c->len - scan);
            c->len -= scan;
            start -= scan;
            c->pos = 0;
            scan = 0;
        }
        if (conn_fill(c) < 0)
            return -1;
    }
}

/* ------------------------------------------------------------ drain */
enum { PH_LOGIN, PH_LIST, PH_RETR, PH_DELE, PH_QUIT, PH_N };
static const char *const ph_names[PH_N] = {"login", "list", "retr", "dele", "quit"};

typedef struct {       /* one session's outcome, sent to the parent through a pipe */
    long msgs, list_bytes, wire, mismatch;
    int pipelining, ok;
    double t0, t1, phase[PH_N];
    char tls[64], err[600];
} Session;

/* Sends CMD for messages 1..total with at most `window` replies outstanding, topping up
 * when half of the window is answered; reads every reply. */
static int pipeline(Conn *c, const char *cmd, long total, int window, int multi, long *lengths)
{
    size_t cap = (size_t) window * 24 + 64;
    char *out = malloc(cap);
    long sent = 0, got = 0;
    int rc = 0;
    while (got < total) {
        long in_flight = sent - got;
        if (sent < total && (in_flight == 0 || in_flight <= window / 2)) {
            long upto = got + window < total ? got + window : total;
            size_t n = 0;
            for (long i = sent + 1; i <= upto; i++)
                n += (size_t) snprintf(out + n, cap - n, "%s %ld\r\n", cmd, i);
            if (conn_write(c, out, n) < 0) {
                rc = -1;
                break;
            }
            sent = upto;
        }
        long len = multi ? conn_multiline(c) : (conn_status(c) ? 0 : -1);
        if (len < 0) {
            rc = -1;
            break;
        }
        if (lengths)
            lengths[got] = len;
        got++;
    }
    free(out);
    return rc;
}

static int session_body(Conn *c, const char *user, Session *s, double *mark)
{
    char cmd[512];
    if (!conn_status(c))                                 /* greeting */
        return -1;
    if (conn_write(c, "CAPA\r\n", 6) < 0 || !conn_status(c))
        return -1;
    for (char *l; (l = conn_line(c)) && strcmp(l, ".") != 0;)
        if (strncasecmp(l, "PIPELINING", 10) == 0)
            s->pipelining = 1;
    if (c->ssl)
        snprintf(s->tls, sizeof s->tls, "%s/%s", SSL_get_version(c->ssl),
                 SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
    snprintf(cmd, sizeof cmd, "USER %s\r\n", user);
    if (conn_write(c, cmd, strlen(cmd)) < 0 || !conn_status(c))
        return -1;
    snprintf(cmd, sizeof cmd, "PASS %s\r\n", opt.password);
    if (conn_write(c, cmd, strlen(cmd)) < 0 || !conn_status(c))
        return -1;
    *mark++ = now();
    if (conn_write(c, "LIST\r\n", 6) < 0 || !conn_status(c))
        return -1;
    long n = 0, cap = 1024, *sizes = malloc(cap * sizeof *sizes);
    for (char *l; (l = conn_line(c)) && strcmp(l, ".") != 0; n++) {
        if (n == cap)
            sizes = realloc(sizes, (cap *= 2) * sizeof *sizes);
        long num, size;
        if (sscanf(l, "%ld %ld", &num, &size) != 2 || num != n + 1) {
            snprintf(c->err, sizeof c->err, "bad LIST line: %.100s", l);
            free(sizes);
            return -1;
        }
        sizes[n] = size;
        s->list_bytes += size;
    }
    *mark++ = now();
    int window = s->pipelining ? (opt.window > 0 ? opt.window : (int) (n > 0 ? n : 1)) : 1;
    long *got = malloc((n + 1) * sizeof *got);
    int rc = pipeline(c, "RETR", n, window, 1, got);
    *mark++ = now();
    for (long i = 0; rc == 0 && i < n; i++) {
        s->wire += got[i];
        s->mismatch += got[i] != sizes[i];
    }
    s->msgs = rc == 0 ? n : 0;
    free(got);
    free(sizes);
    if (rc < 0 || pipeline(c, "DELE", n, window, 0, NULL) < 0)
        return -1;
    *mark++ = now();
    if (conn_write(c, "QUIT\r\n", 6) < 0 || !conn_status(c))
        return -1;
    *mark = now();
    return 0;
}

static void drain_child(const char *user, int go_fd, int out_fd)
{
    Session s = {0};
    double marks[PH_N + 1];
    char b;
    if (read(go_fd, &b, 1) < 0)         /* EOF when the parent closes it: all start together */
        _exit(3);
    SSL_CTX *ctx = opt.tls ? client_ctx() : NULL;
    Conn c;
    s.t0 = marks[0] = now();
    if (conn_open(&c, ctx) == 0 && session_body(&c, user, &s, marks + 1) == 0) {
        s.ok = 1;
        for (int i = 0; i < PH_N; i++)
            s.phase[i] = marks[i + 1] - marks[i];
    } else {
        snprintf(s.err, sizeof s.err, "%s: %s", user, c.err);
    }
    s.t1 = now();
    conn_close(&c);
    if (write(out_fd, &s, sizeof s) != sizeof s)
        _exit(4);
    _exit(0);
}

static long count_left(void)
{
    long n = 0;
    char *dirs = strdup(opt.left_dirs), *save = NULL;
    for (char *d = strtok_r(dirs, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        for (int k = 0; k < 2; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", d, k ? "cur" : "new");
            DIR *dh = opendir(path);
            for (struct dirent *e; dh && (e = readdir(dh));)
                n += e->d_name[0] != '.';
            if (dh)
                closedir(dh);
        }
    }
    free(dirs);
    return n;
}

static int cmd_drain(void)
{
    if (!opt.users)
        die("drain needs --users");
    char *users = strdup(opt.users), *save = NULL, *list[1024];
    int n = 0, go[2], res[2];
    for (char *u = strtok_r(users, ",", &save); u && n < 1024; u = strtok_r(NULL, ",", &save))
        list[n++] = u;
    if (pipe(go) < 0 || pipe(res) < 0)
        die("pipe: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(go[1]);
            close(res[0]);
            drain_child(list[i], go[0], res[1]);
        }
    }
    close(go[0]);
    close(res[1]);
    usleep(100 * 1000);                  /* let every child reach its read() */
    close(go[1]);
    Session all = {0}, s;
    double t0 = 1e300, t1 = 0, phase[PH_N] = {0};
    int done = 0, failed = 0;
    while (read(res[0], &s, sizeof s) == sizeof s) {
        done++;
        t0 = s.t0 < t0 ? s.t0 : t0;
        t1 = s.t1 > t1 ? s.t1 : t1;
        all.msgs += s.msgs;
        all.list_bytes += s.list_bytes;
        all.wire += s.wire;
        all.mismatch += s.mismatch;
        all.pipelining = s.pipelining;
        if (s.tls[0])
            memcpy(all.tls, s.tls, sizeof all.tls);
        if (!s.ok) {
            failed++;
            fprintf(stderr, "pop3drain %s: %s\n", opt.name, s.err);
        }
        for (int i = 0; i < PH_N; i++)
            phase[i] += s.phase[i] / n;
    }
    while (wait(NULL) > 0)
        ;
    double secs = t1 - t0, cpu = cpu_children();
    long left = opt.left_dirs[0] ? count_left() : -1;
    long expect = opt.expect_per_user >= 0 ? opt.expect_per_user * n : -1;
    int ok = done == n && !failed && (expect < 0 || all.msgs == expect) && left <= 0 &&
             all.mismatch == 0;
    printf("RESULT name=%s run=%s client=c mode=%s clients=%d msgs=%ld bytes=%ld wire_bytes=%ld "
           "secs=%.4f msgs_per_s=%.1f MB_per_s=%.2f client_cpu_s=%.3f client_cpu_pct=%.1f "
           "size_mismatch=%ld pipelining=%d window=%d",
           opt.name, opt.run, opt.tls ? "tls" : "plain", n, all.msgs, all.list_bytes, all.wire,
           secs, secs > 0 ? all.msgs / secs : 0, secs > 0 ? all.list_bytes / secs / 1e6 : 0,
           cpu, secs > 0 ? 100 * cpu / secs : 0, all.mismatch, all.pipelining, opt.window);
    if (all.tls[0])
        printf(" tls=%s", all.tls);
    for (int i = 0; i < PH_N; i++)
        printf(" %s_s=%.4f", ph_names[i], phase[i]);
    if (phase[PH_RETR] > 0)
        printf(" retr_msgs_per_s=%.1f", all.msgs / phase[PH_RETR]);
    printf(" left=%ld ok=%d\n", left, ok);
    if (!ok)
        fprintf(stderr, "pop3drain %s: msgs=%ld expected=%ld failed=%d left=%ld mismatch=%ld\n",
                opt.name, all.msgs, expect, failed, left, all.mismatch);
    free(users);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------ handshake */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static const char *key_name(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    EVP_PKEY *pk = cert ? X509_get0_pubkey(cert) : NULL;
    static char name[32];
    snprintf(name, sizeof name, "%s-%d", !pk ? "none" : EVP_PKEY_id(pk) == EVP_PKEY_EC ? "EC"
                                         : EVP_PKEY_id(pk) == EVP_PKEY_RSA ? "RSA" : "other",
             pk ? EVP_PKEY_bits(pk) : 0);
    X509_free(cert);
    return name;
}

static int cmd_handshake(void)
{
    SSL_CTX *ctx = client_ctx();
    double *ms = malloc(opt.n * sizeof *ms);
    int got = 0, errors = 0;
    char tls[96] = "-", first_err[300] = "";
    for (int i = 0; i < opt.n; i++) {
        Conn c;
        double t0 = now();
        char *line = conn_open(&c, ctx) == 0 ? conn_line(&c) : NULL;
        if (line && strncmp(line, opt.greeting, strlen(opt.greeting)) == 0) {
            ms[got++] = (now() - t0) * 1000;
            if (i == 0)
                snprintf(tls, sizeof tls, "%s/%s/%s", SSL_get_version(c.ssl),
                         SSL_CIPHER_get_name(SSL_get_current_cipher(c.ssl)), key_name(c.ssl));
        } else {
            errors++;
            if (!first_err[0])
                snprintf(first_err, sizeof first_err, "%s", line ? line : c.err);
        }
        if (c.ssl)
            SSL_shutdown(c.ssl);       /* close_notify, as a polite client sends */
        conn_close(&c);
    }
    if (errors)
        fprintf(stderr, "pop3drain %s: %d errors, e.g. %s\n", opt.name, errors, first_err);
    qsort(ms, got, sizeof *ms, cmp_double);
    double med = got ? (got % 2 ? ms[got / 2] : (ms[got / 2 - 1] + ms[got / 2]) / 2) : 0;
    double p90 = got ? ms[(int) (0.9 * (got - 1) + 0.5)] : 0;
    int ok = got > 0 && errors == 0;
    printf("RESULT name=%s run=%s n=%d errors=%d ms_median=%.3f ms_p90=%.3f ms_min=%.3f "
           "ms_max=%.3f quickack=%d tls=%s ok=%d\n",
           opt.name, opt.run, got, errors, med, p90, got ? ms[0] : 0, got ? ms[got - 1] : 0,
           opt.quickack, tls, ok);
    free(ms);
    SSL_CTX_free(ctx);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------ serve */
static void out_add(Conn *c, const char *p, size_t n)
{
    if (c->out_len + n > BUF_CAP) {
        if (conn_write(c, c->out, c->out_len) < 0)
            _exit(0);
        c->out_len = 0;
    }
    if (n > BUF_CAP) {
        if (conn_write(c, p, n) < 0)
            _exit(0);
        return;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* One connection: answers from memory; output is flushed only before a read would
 * block, so a pipelined batch is answered in few large writes. */
static void serve_conn(Conn *c, const char *msg, const char *retr_head)
{
    char line[128];
    int deleted = 0;
    c->out = malloc(BUF_CAP);
    out_add(c, "+OK pop3drain ready\r\n", 21);
    for (;;) {
        int pending = (c->ssl ? SSL_pending(c->ssl) > 0 : 0) ||
                      memmem(c->buf + c->pos, c->len - c->pos, "\r\n", 2);
        if (!pending && c->out_len) {
            if (conn_write(c, c->out, c->out_len) < 0)
                return;
            c->out_len = 0;
        }
        char *cmd = conn_line(c);
        if (!cmd)
            return;
        if (strncasecmp(cmd, "CAPA", 4) == 0) {
            const char *r = "+OK\r\nUSER\r\nPIPELINING\r\nUIDL\r\n.\r\n";
            out_add(c, r, strlen(r));
        } else if (strncasecmp(cmd, "LIST", 4) == 0) {
            out_add(c, "+OK\r\n", 5);
            for (int i = 1; i <= opt.msgs; i++)
                out_add(c, line, (size_t) snprintf(line, sizeof line, "%d %d\r\n", i, opt.size));
            out_add(c, ".\r\n", 3);
        } else if (strncasecmp(cmd, "RETR", 4) == 0) {
            out_add(c, retr_head, strlen(retr_head));
            out_add(c, msg, (size_t) opt.size);
            out_add(c, ".\r\n", 3);
        } else if (strncasecmp(cmd, "DELE", 4) == 0) {
            deleted++;
            out_add(c, "+OK deleted\r\n", 13);
        } else if (strncasecmp(cmd, "QUIT", 4) == 0) {
            out_add(c, "+OK bye\r\n", 9);
            conn_write(c, c->out, c->out_len);
            return;
        } else {
            out_add(c, "+OK\r\n", 5);                  /* USER, PASS, NOOP ... */
        }
    }
}

/* A message of exactly SIZE bytes on the wire: 76-byte lines ending in CRLF, no dots. */
static char *make_message(void)
{
    char *m = malloc(opt.size);
    for (int i = 0; i < opt.size; i++)
        m[i] = 'a' + i % 26;
    for (int i = 76; i < opt.size; i += 78) {
        m[i] = '\r';
        m[i + 1 < opt.size ? i + 1 : i] = '\n';
    }
    m[opt.size - 2] = '\r';
    m[opt.size - 1] = '\n';
    return m;
}

static int cmd_serve(void)
{
    if (opt.size < 2)
        die("--size must be at least 2");
    SSL_CTX *ctx = NULL;
    if (opt.cert) {
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, opt.key ? opt.key : opt.cert, SSL_FILETYPE_PEM) != 1)
            die("cannot load %s / %s: %s", opt.cert, opt.key ? opt.key : "",
                ERR_error_string(ERR_get_error(), NULL));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opt.port)};
    inet_pton(AF_INET, opt.host, &sa.sin_addr);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(ls, 512) < 0)
        die("cannot listen on %s:%d: %s", opt.host, opt.port, strerror(errno));
    signal(SIGCHLD, SIG_IGN);
    char *msg = make_message(), head[64];
    snprintf(head, sizeof head, "+OK %d octets\r\n", opt.size);
    fprintf(stderr, "pop3drain: serving %d x %d bytes on %s:%d%s\n", opt.msgs, opt.size, opt.host,
            opt.port, ctx ? " (implicit TLS)" : "");
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            die("accept: %s", strerror(errno));
        }
        if (fork() == 0) {
            close(ls);
            Conn c = {.fd = fd, .buf = malloc(BUF_CAP)};
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (ctx) {
                c.ssl = SSL_new(ctx);
                SSL_set_fd(c.ssl, fd);
                if (SSL_accept(c.ssl) != 1)
                    _exit(0);
            }
            serve_conn(&c, msg, head);
            conn_close(&c);
            _exit(0);
        }
        close(fd);
    }
}

/* ------------------------------------------------------------ main */
static void usage(void)
{
    fprintf(stderr,
            "usage: pop3drain drain --port P [--tls] --users U1,U2,... --password PW\n"
            "                 [--expect-per-user N] [--left-dirs D1,D2,...] [--window W]\n"
            "       pop3drain handshake --port P [--n N] [--greeting PREFIX] [--quickack]\n"
            "       pop3drain serve --port P [--msgs N] [--size BYTES] [--cert PEM --key PEM]\n"
            "common: [--host IPV4] [--name NAME] [--run R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    opt.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tls") == 0) {
            opt.tls = 1;
            continue;
        }
        if (strcmp(a, "--quickack") == 0) {
            opt.quickack = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--host")) opt.host = v;
        else if (!strcmp(a, "--name")) opt.name = v;
        else if (!strcmp(a, "--run")) opt.run = v;
        else if (!strcmp(a, "--users")) opt.users = v;
        else if (!strcmp(a, "--password")) opt.password = v;
        else if (!strcmp(a, "--expect-per-user")) opt.expect_per_user = atol(v);
        else if (!strcmp(a, "--left-dirs")) opt.left_dirs = v;
        else if (!strcmp(a, "--window")) opt.window = atoi(v);
        else if (!strcmp(a, "--n")) opt.n = atoi(v);
        else if (!strcmp(a, "--greeting")) opt.greeting = v;
        else if (!strcmp(a, "--msgs")) opt.msgs = atoi(v);
        else if (!strcmp(a, "--size")) opt.size = atoi(v);
        else if (!strcmp(a, "--cert")) opt.cert = v;
        else if (!strcmp(a, "--key")) opt.key = v;
        else usage();
    }
    if (opt.port <= 0)
        die("--port is required");
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(opt.mode, "drain"))
        return cmd_drain();
    if (!strcmp(opt.mode, "handshake"))
        return cmd_handshake();
    if (!strcmp(opt.mode, "serve"))
        return cmd_serve();
    usage();
}
