/* demo-app: a deliberately misbehaving backend for demos and tests of resil-init.
 *
 * It serves a tiny HTTP/1.0 API on 127.0.0.1:$PORT and can be told, over HTTP or
 * from its command line, to crash, hang, leak memory or report itself unhealthy,
 * so every supervision path of resil-init can be driven from the outside. It
 * needs nothing beyond libc and builds with glibc and musl alike.
 *
 *   GET /health           {"status":"ok"|"degraded"|"critical",...}, 503 once unhealthy
 *   GET /                 one line of text
 *   GET /crash            answers, then exits 3
 *   GET /exit?code=N      answers, then exits N
 *   GET /hang             answers, then never answers anything again
 *   GET /leak?mb=N        allocates, touches and keeps N MiB
 *   GET /unhealthy        /health answers 503 {"status":"critical"} from now on
 *   GET /recover          undoes /unhealthy
 *
 *   --crash-after SECONDS (or DEMO_CRASH_AFTER)  exit 3 that long after startup
 *   --ignore-term                                 log SIGTERM and carry on
 *
 * PORT=0 picks a free port; the startup line names it. SIGTERM and SIGINT end
 * the app with status 0; HUP, USR1 and USR2 are logged, so signal forwarding
 * can be seen. Exit statuses: 0 stop, 1 cannot listen, 2 bad usage, 3 crash.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    MAX_CONNS = 64,
    REQ_MAX = 4096, /* a request with longer headers gets 431 */
    RESP_MAX = 2048,
    READ_TIMEOUT_MS = 10000, /* a client that never finishes its request loses its slot */
    CLOSE_WAIT_MS = 2000,    /* how long a client gets to hang up after its response */
    ENV_SHOWN_MAX = 64,      /* environment values echoed in /health are cut to this */
    LEAK_MAX_MB = 1 << 20,
    EXIT_CRASH = 3,
    EXIT_USAGE = 2,
};

enum conn_state { CONN_FREE, CONN_READING, CONN_WRITING, CONN_DRAINING, CONN_HELD };

struct conn {
    int fd;
    enum conn_state state;
    size_t in_len;
    size_t out_len;
    size_t out_off;
    int64_t deadline_ms; /* -1: none */
    int exit_after;      /* -1, or the status to exit with once the response is out */
    char in[REQ_MAX];
    char out[RESP_MAX];
};

/* Kept in the first bytes of every leaked block so the blocks stay reachable. */
struct leak {
    struct leak *next;
};

struct app {
    int port;
    int listen_fd;
    bool emergency;
    bool unhealthy;
    bool hung;
    bool ignore_term;
    double crash_after_s; /* < 0: off */
    int64_t crash_at_ms;  /* -1: off */
    size_t leaked_mb;
    struct leak *leaks;
    struct conn conns[MAX_CONNS];
};

static struct app the_app;

static volatile sig_atomic_t got_term, got_int, got_hup, got_usr1, got_usr2;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line per event, flushed at once: stdout may be a pipe, and a test or a
 * resil-init log reader must see the line before the process dies. */
static void say(const char *fmt, ...)
{
    va_list ap;

    printf("demo-app[%ld]: ", (long)getpid());
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void die_exit(int status)
{
    fflush(stdout);
    exit(status);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);

    return v && *v ? v : fallback;
}

static bool is_truthy(const char *v)
{
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
                 !strcasecmp(v, "on"));
}

/* ---- command line and environment ---- */

static void usage(FILE *to)
{
    fprintf(to, "usage: demo-app [--crash-after SECONDS] [--ignore-term]\n"
                "environment: PORT (default 3000, 0 picks a free one), EMERGENCY_MODE,\n"
                "             DEMO_CRASH_AFTER, RESIL_* (as set by resil-init)\n");
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 86400.0 * 365)
        return -1;
    *out = v;
    return 0;
}

static int parse_port(const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static void bad_usage(const char *what, const char *value)
{
    fprintf(stderr, "demo-app: %s: %s\n", what, value);
    usage(stderr);
    exit(EXIT_USAGE);
}

static void parse_args(struct app *a, int argc, char **argv)
{
    const char *crash = getenv("DEMO_CRASH_AFTER");

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (!strcmp(arg, "--ignore-term")) {
            a->ignore_term = true;
        } else if (!strcmp(arg, "--crash-after")) {
            if (++i >= argc)
                bad_usage("missing value for", arg);
            crash = argv[i];
        } else if (!strncmp(arg, "--crash-after=", 14)) {
            crash = arg + 14;
        } else if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            exit(0);
        } else {
            bad_usage("unknown argument", arg);
        }
    }
    a->crash_after_s = -1;
    if (crash && *crash && parse_seconds(crash, &a->crash_after_s))
        bad_usage("bad --crash-after / DEMO_CRASH_AFTER value", crash);
    if (parse_port(env_or("PORT", "3000"), &a->port))
        bad_usage("bad PORT", env_or("PORT", ""));
    a->emergency = is_truthy(getenv("EMERGENCY_MODE"));
}

/* ---- signals ---- */

static void on_signal(int sig)
{
    switch (sig) {
    case SIGTERM:
        got_term = 1;
        break;
    case SIGINT:
        got_int = 1;
        break;
    case SIGHUP:
        got_hup = 1;
        break;
    case SIGUSR1:
        got_usr1 = 1;
        break;
    case SIGUSR2:
        got_usr2 = 1;
        break;
    }
}

/* The handled signals stay blocked except inside ppoll(), so a signal can never
 * slip in between checking the flags and going to sleep. Returns the mask to
 * sleep with. */
static sigset_t setup_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    sigset_t block, sleep_mask;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaction(sigs[i], &sa, NULL);
        sigaddset(&block, sigs[i]);
    }
    /* A client that hangs up mid-response must not kill the app. */
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_BLOCK, &block, &sleep_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigdelset(&sleep_mask, sigs[i]);
    return sleep_mask;
}

static void shut_down(struct app *a, const char *signame)
{
    say("%s received, shutting down gracefully", signame);
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    a->listen_fd = -1;
    die_exit(0);
}

static void handle_signals(struct app *a)
{
    if (got_hup || got_usr1 || got_usr2) {
        say("%s%s%sreceived, ignored", got_hup ? "SIGHUP " : "", got_usr1 ? "SIGUSR1 " : "",
            got_usr2 ? "SIGUSR2 " : "");
        got_hup = got_usr1 = got_usr2 = 0;
    }
    if (got_int)
        shut_down(a, "SIGINT");
    if (got_term) {
        got_term = 0;
        if (!a->ignore_term)
            shut_down(a, "SIGTERM");
        say("SIGTERM received, ignored (--ignore-term)");
    }
}

/* ---- listener ---- */

/* Under `resil-init --listen`, the socket is fd 3 (sd_listen_fds(3)): it was
 * bound once, before this start, and connections that came while no app ran
 * wait in its backlog. */
static int inherited_listener(void)
{
    const char *fds = getenv("LISTEN_FDS");
    const char *pid = getenv("LISTEN_PID");
    int flags;

    if (!fds || atoi(fds) < 1 || !pid || atol(pid) != (long)getpid())
        return -1;
    flags = fcntl(3, F_GETFL);
    if (flags < 0 || fcntl(3, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 3;
}

/* No SO_REUSEADDR on purpose: a restarted demo-app that finds its port taken
 * fails loudly, which is how the tests prove resil-init freed it. */
static int open_listener(struct app *a)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = inherited_listener();

    if (fd >= 0) {
        if (getsockname(fd, (struct sockaddr *)&addr, &len))
            return -1;
        a->port = ntohs(addr.sin_port);
        a->listen_fd = fd;
        return 0;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)a->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) || listen(fd, MAX_CONNS) ||
        getsockname(fd, (struct sockaddr *)&addr, &len)) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    a->port = ntohs(addr.sin_port);
    a->listen_fd = fd;
    return 0;
}

/* ---- connections ---- */

/* Without SO_REUSEADDR a port stays unbindable while any connection on it sits
 * in TIME_WAIT, and TIME_WAIT lands on whichever side closes first. So the app
 * lets the client close first, and otherwise resets: every connection has a
 * zero linger from accept on (a reset, even when the process is killed), and
 * only a connection whose client has hung up is closed the polite way. */
static void set_linger(int fd, bool on)
{
    struct linger lg = {.l_onoff = on, .l_linger = 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void conn_close(struct conn *c, bool client_gone)
{
    int exit_after = c->exit_after;

    if (client_gone)
        set_linger(c->fd, false);
    close(c->fd);
    c->fd = -1;
    c->state = CONN_FREE;
    if (exit_after >= 0) {
        say("exiting with status %d as requested", exit_after);
        die_exit(exit_after);
    }
}

static struct conn *conn_slot(struct app *a)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (a->conns[i].state == CONN_FREE)
            return &a->conns[i];
    return NULL;
}

static void accept_clients(struct app *a)
{
    struct conn *c;

    while ((c = conn_slot(a))) {
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                say("accept: %s", strerror(errno));
            return;
        }
        set_linger(fd, true);
        c->fd = fd;
        c->state = CONN_READING;
        c->in_len = c->out_len = c->out_off = 0;
        c->deadline_ms = now_ms() + READ_TIMEOUT_MS;
        c->exit_after = -1;
    }
}

static void conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            conn_close(c, false);
            return;
        }
        c->out_off += (size_t)n;
    }
    /* Responses carry Content-Length, so the client knows when to hang up. */
    c->state = CONN_DRAINING;
    c->deadline_ms = now_ms() + CLOSE_WAIT_MS;
}

static void respond(struct conn *c, int code, const char *type, const char *body)
{
    const char *reason = code == 200   ? "OK"
                         : code == 400 ? "Bad Request"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 431 ? "Request Header Fields Too Large"
                         : code == 503 ? "Service Unavailable"
                                       : "Internal Server Error";
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\nCache-Control: no-store\r\n\r\n%s",
                     code, reason, type, strlen(body), body);

    c->out_len = n < 0 ? 0 : (size_t)n < sizeof c->out ? (size_t)n : sizeof c->out - 1;
    c->out_off = 0;
    c->state = CONN_WRITING;
    conn_flush(c);
}

static void respond_json(struct conn *c, int code, const char *body)
{
    respond(c, code, "application/json", body);
}

static void respond_text(struct conn *c, int code, const char *body)
{
    respond(c, code, "text/plain; charset=utf-8", body);
}

/* ---- JSON ---- */

/* Writes v as a JSON string (or null when unset), escaped and cut to
 * ENV_SHOWN_MAX bytes so the response always fits its buffer. */
static void json_str(const char *v, char *out, size_t outlen)
{
    size_t o = 0;

    if (!v) {
        snprintf(out, outlen, "null");
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < ENV_SHOWN_MAX && v[i] && o + 8 < outlen; i++) {
        unsigned char ch = (unsigned char)v[i];

        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

static void health_body(const struct app *a, char *buf, size_t len)
{
    char count[ENV_SHOWN_MAX * 6 + 8], tier[ENV_SHOWN_MAX * 6 + 8];
    const char *status = a->unhealthy ? "critical" : a->emergency ? "degraded" : "ok";

    json_str(getenv("RESIL_RESTART_COUNT"), count, sizeof count);
    json_str(getenv("RESIL_MEMORY_TIER"), tier, sizeof tier);
    snprintf(buf, len,
             "{\"status\":\"%s\",\"emergency\":%s,\"pid\":%ld,\"restart_count\":%s,"
             "\"tier\":%s,\"leaked_mb\":%zu}\n",
             status, a->emergency ? "true" : "false", (long)getpid(), count, tier, a->leaked_mb);
}

/* ---- requests ---- */

/* Finds the value of KEY in a query string ("a=1&mb=5") as an unsigned number. */
static int query_uint(const char *query, const char *key, unsigned long max, unsigned long *out)
{
    size_t klen = strlen(key);

    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            char *end;
            const char *v = p + klen + 1;

            if (*v < '0' || *v > '9')
                return -1;
            errno = 0;
            *out = strtoul(v, &end, 10);
            if (errno || (*end && *end != '&') || *out > max)
                return -1;
            return 0;
        }
    }
    return -1;
}

static void route_leak(struct app *a, struct conn *c, const char *query)
{
    unsigned long mb;
    char body[128];
    struct leak *block;

    if (query_uint(query, "mb", LEAK_MAX_MB, &mb) || mb == 0) {
        respond_json(c, 400, "{\"error\":\"want /leak?mb=N with 1 <= N <= 1048576\"}\n");
        return;
    }
    block = malloc(mb << 20);
    if (!block) {
        say("leak of %lu MiB failed: out of memory", mb);
        respond_json(c, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    /* Non-zero bytes, so the pages are really touched and count as the cgroup's
     * working set (a zero fill may be turned into a lazy calloc). */
    memset(block, 0x5a, mb << 20);
    block->next = a->leaks;
    a->leaks = block;
    a->leaked_mb += mb;
    say("leaked %lu MiB, %zu MiB held in total", mb, a->leaked_mb);
    snprintf(body, sizeof body, "{\"leaked_mb\":%lu,\"total_mb\":%zu}\n", mb, a->leaked_mb);
    respond_json(c, 200, body);
}

static void route_exit(struct conn *c, const char *query)
{
    unsigned long code;

    if (query_uint(query, "code", 255, &code)) {
        respond_json(c, 400, "{\"error\":\"want /exit?code=N with 0 <= N <= 255\"}\n");
        return;
    }
    say("exit requested with status %lu", code);
    c->exit_after = (int)code;
    respond_json(c, 200, "{\"exiting\":true}\n");
}

static void route(struct app *a, struct conn *c, const char *path, const char *query)
{
    char body[RESP_MAX / 2];

    if (!strcmp(path, "/health")) {
        health_body(a, body, sizeof body);
        respond_json(c, a->unhealthy ? 503 : 200, body);
    } else if (!strcmp(path, "/")) {
        snprintf(body, sizeof body, "demo-app %ld on port %d: hello%s\n", (long)getpid(), a->port,
                 a->emergency ? " (emergency mode)" : "");
        respond_text(c, 200, body);
    } else if (!strcmp(path, "/crash")) {
        say("crash requested: exiting with status %d", EXIT_CRASH);
        c->exit_after = EXIT_CRASH;
        respond_json(c, 200, "{\"crashing\":true}\n");
    } else if (!strcmp(path, "/exit")) {
        route_exit(c, query);
    } else if (!strcmp(path, "/hang")) {
        say("hang requested: no request will be answered from now on");
        respond_json(c, 200, "{\"hanging\":true}\n");
        a->hung = true;
    } else if (!strcmp(path, "/leak")) {
        route_leak(a, c, query);
    } else if (!strcmp(path, "/unhealthy")) {
        say("unhealthy requested: /health answers 503 from now on");
        a->unhealthy = true;
        respond_json(c, 200, "{\"unhealthy\":true}\n");
    } else if (!strcmp(path, "/recover")) {
        say("recover requested: /health answers normally again");
        a->unhealthy = false;
        respond_json(c, 200, "{\"unhealthy\":false}\n");
    } else {
        respond_json(c, 404, "{\"error\":\"not found\"}\n");
    }
}

/* Splits "GET /path?query HTTP/1.x" out of the first line of the request. */
static void handle_request(struct app *a, struct conn *c)
{
    char line[REQ_MAX + 1], *method, *target, *query, *save = NULL;
    size_t n = 0;

    if (a->hung) {
        c->state = CONN_HELD;
        c->deadline_ms = -1;
        return;
    }
    while (n < c->in_len && c->in[n] != '\r' && c->in[n] != '\n')
        n++;
    memcpy(line, c->in, n);
    line[n] = '\0';
    method = strtok_r(line, " ", &save);
    target = method ? strtok_r(NULL, " ", &save) : NULL;
    if (!target || target[0] != '/') {
        respond_json(c, 400, "{\"error\":\"bad request\"}\n");
        return;
    }
    if (strcmp(method, "GET")) {
        respond_json(c, 405, "{\"error\":\"only GET\"}\n");
        return;
    }
    query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    route(a, c, target, query);
}

static bool request_complete(const struct conn *c)
{
    return memmem(c->in, c->in_len, "\r\n\r\n", 4) || memmem(c->in, c->in_len, "\n\n", 2);
}

static void conn_read(struct app *a, struct conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        /* A client that half-closed after its request line still gets an answer. */
        if (n == 0 && memchr(c->in, '\n', c->in_len))
            handle_request(a, c);
        else
            conn_close(c, n == 0);
        return;
    }
    c->in_len += (size_t)n;
    if (request_complete(c))
        handle_request(a, c);
    else if (c->in_len == sizeof c->in)
        respond_json(c, 431, "{\"error\":\"request too large\"}\n");
}

/* Input after the response, or to a held connection, is read only to notice
 * when the client hangs up. */
static void conn_discard(struct conn *c)
{
    char sink[1024];
    ssize_t n = recv(c->fd, sink, sizeof sink, 0);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_close(c, n == 0);
}

static void conn_service(struct app *a, struct conn *c, short revents)
{
    if (c->state == CONN_READING && (revents & (POLLIN | POLLHUP | POLLERR)))
        conn_read(a, c);
    else if (c->state == CONN_WRITING && (revents & (POLLOUT | POLLHUP | POLLERR)))
        conn_flush(c);
    else if ((c->state == CONN_DRAINING || c->state == CONN_HELD) &&
             (revents & (POLLIN | POLLHUP | POLLERR)))
        conn_discard(c);
}

static void expire_conns(struct app *a, int64_t now)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &a->conns[i];

        if (c->state != CONN_FREE && c->deadline_ms >= 0 && now >= c->deadline_ms)
            conn_close(c, false);
    }
}

/* ---- main loop ---- */

static int64_t next_deadline(const struct app *a)
{
    int64_t next = a->crash_at_ms;

    for (int i = 0; i < MAX_CONNS; i++) {
        const struct conn *c = &a->conns[i];

        if (c->state != CONN_FREE && c->deadline_ms >= 0 && (next < 0 || c->deadline_ms < next))
            next = c->deadline_ms;
    }
    return next;
}

static void check_crash_timer(const struct app *a, int64_t now)
{
    if (a->crash_at_ms >= 0 && now >= a->crash_at_ms) {
        say("--crash-after %gs elapsed: exiting with status %d", a->crash_after_s, EXIT_CRASH);
        die_exit(EXIT_CRASH);
    }
}

static void wait_for_events(struct app *a, const sigset_t *sleep_mask)
{
    struct pollfd fds[MAX_CONNS + 1];
    struct conn *owner[MAX_CONNS + 1];
    nfds_t nfds = 0;
    int64_t deadline = next_deadline(a);
    struct timespec ts, *tsp = NULL;

    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &a->conns[i];

        if (c->state == CONN_FREE)
            continue;
        fds[nfds] =
            (struct pollfd){.fd = c->fd, .events = c->state == CONN_WRITING ? POLLOUT : POLLIN};
        owner[nfds++] = c;
    }
    /* With every slot taken the listener is left alone, and new clients wait
     * in the kernel's backlog. */
    if (conn_slot(a)) {
        fds[nfds] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
        owner[nfds++] = NULL;
    }
    if (deadline >= 0) {
        int64_t wait = deadline - now_ms();

        wait = wait < 0 ? 0 : wait;
        ts = (struct timespec){.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
        tsp = &ts;
    }
    if (ppoll(fds, nfds, tsp, sleep_mask) < 0) {
        if (errno == EINTR)
            return;
        say("poll: %s", strerror(errno));
        die_exit(1);
    }
    for (nfds_t i = 0; i < nfds; i++) {
        if (!fds[i].revents)
            continue;
        if (owner[i])
            conn_service(a, owner[i], fds[i].revents);
        else
            accept_clients(a);
    }
}

static void log_startup(const struct app *a)
{
    say("listening on 127.0.0.1:%d (EMERGENCY_MODE=%s, RESIL_RESTART_COUNT=%s, "
        "RESIL_RESTART_REASON=%s, RESIL_MEMORY_LIMIT_MB=%s, RESIL_MEMORY_TIER=%s)",
        a->port, a->emergency ? "on" : "off", env_or("RESIL_RESTART_COUNT", "unset"),
        env_or("RESIL_RESTART_REASON", "unset"), env_or("RESIL_MEMORY_LIMIT_MB", "unset"),
        env_or("RESIL_MEMORY_TIER", "unset"));
    if (a->emergency)
        say("emergency mode: websockets disabled, cache off");
    if (a->ignore_term)
        say("--ignore-term: SIGTERM will be ignored");
    if (a->crash_after_s >= 0)
        say("--crash-after: exiting with status %d in %gs", EXIT_CRASH, a->crash_after_s);
}

int main(int argc, char **argv)
{
    struct app *a = &the_app;
    sigset_t sleep_mask;

    a->listen_fd = -1;
    for (int i = 0; i < MAX_CONNS; i++)
        a->conns[i].fd = -1;
    parse_args(a, argc, argv);
    sleep_mask = setup_signals();
    if (open_listener(a)) {
        say("cannot listen on 127.0.0.1:%d: %s", a->port, strerror(errno));
        die_exit(1);
    }
    /* Rounded by hand: llround() would need libm, which the Makefile does not link. */
    a->crash_at_ms =
        a->crash_after_s < 0 ? -1 : now_ms() + (int64_t)(a->crash_after_s * 1000 + 0.5);
    log_startup(a);
    for (;;) {
        handle_signals(a);
        check_crash_timer(a, now_ms());
        expire_conns(a, now_ms());
        wait_for_events(a, &sleep_mask);
    }
}
