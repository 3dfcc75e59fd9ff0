/* control.sock: the server inside resil-init's loop and the client behind
 * `resil-init restart` / `resil-init metrics`. The server decides who is
 * served by SO_PEERCRED at accept; a restart request is held open until the
 * supervisor reports the new app started (or the restart failed). */
#include "resil/control.h"

#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "resil/config.h"
#include "resil/conn.h"
#include "resil/listen.h"
#include "resil/metrics.h"
#include "resil/status.h"

#define ANSWER_LINE_MAX 256

struct control {
    struct control_handler handler;
    struct listen_addr addr;
    int fd;
    struct conn_server *server;
    struct conn *waiting[CONTROL_MAX_CONNS]; /* restart requests held open */
    char answer[METRICS_TEXT_MAX + ANSWER_LINE_MAX];
};

/* --- the protocol --- */

int control_parse_request(const char *buf, size_t len, bool eof, enum control_command *cmd)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return eof ? -1 : 0;
    size_t n = (size_t)(nl - buf);
    if (n && buf[n - 1] == '\r')
        n--;
    if (n == 7 && memcmp(buf, "restart", 7) == 0)
        *cmd = CONTROL_RESTART;
    else if (n == 7 && memcmp(buf, "metrics", 7) == 0)
        *cmd = CONTROL_METRICS;
    else
        *cmd = CONTROL_UNKNOWN;
    return 1;
}

static void reply_line(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_line(struct conn *c, const char *fmt, ...)
{
    char line[ANSWER_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    conn_reply(c, line, len);
}

/* --- the server --- */

static enum conn_action on_accepted(void *ctx, struct conn *c)
{
    (void)ctx;
    uid_t uid;
    uid_t own = geteuid();
    if (conn_peer_uid(c, &uid) < 0) {
        reply_line(c, "error cannot tell who you are: %s", strerror(errno));
        return CONN_DONE;
    }
    if (uid != 0 && uid != own) {
        reply_line(c, "error permission denied: uid %u may not control resil-init (uid 0 or %u)",
                   (unsigned)uid, (unsigned)own);
        return CONN_DONE;
    }
    return CONN_READ_MORE;
}

static bool add_waiting(struct control *ctl, struct conn *c)
{
    for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
        if (!ctl->waiting[i]) {
            ctl->waiting[i] = c;
            return true;
        }
    }
    return false;
}

/* Whether c is still waiting, taking it off the list when remove is set. */
static bool is_waiting(struct control *ctl, const struct conn *c, bool remove)
{
    for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
        if (ctl->waiting[i] == c) {
            if (remove)
                ctl->waiting[i] = NULL;
            return true;
        }
    }
    return false;
}

static void serve_restart(struct control *ctl, struct conn *c)
{
    char why[ANSWER_LINE_MAX - 16] = "";
    /* On the list first: the supervisor may start the new app, and answer,
     * before its callback returns. */
    add_waiting(ctl, c);
    if (ctl->handler.restart(ctl->handler.ctx, why, sizeof why) < 0) {
        is_waiting(ctl, c, true);
        reply_line(c, "error %s", why[0] ? why : "restart refused");
        return;
    }
    if (is_waiting(ctl, c, false))
        conn_hold(c, 0);
}

static void serve_metrics(struct control *ctl, struct conn *c)
{
    static const char ok[] = "ok\n";
    size_t len = ctl->handler.render_metrics(ctl->handler.ctx, ctl->answer + sizeof ok - 1,
                                             sizeof ctl->answer - sizeof ok);
    if (len == 0) {
        reply_line(c, "error cannot render the metrics");
        return;
    }
    memcpy(ctl->answer, ok, sizeof ok - 1);
    conn_reply(c, ctl->answer, sizeof ok - 1 + len);
}

static enum conn_action on_request(void *ctx, struct conn *c, const char *buf, size_t len, bool eof)
{
    struct control *ctl = ctx;
    enum control_command cmd;
    int rc = control_parse_request(buf, len, eof, &cmd);
    if (rc == 0)
        return CONN_READ_MORE;
    if (rc < 0)
        return CONN_DONE;
    switch (cmd) {
    case CONTROL_RESTART:
        serve_restart(ctl, c);
        break;
    case CONTROL_METRICS:
        serve_metrics(ctl, c);
        break;
    case CONTROL_UNKNOWN:
        reply_line(c, "error unknown command (expected restart or metrics)");
        break;
    }
    return CONN_DONE;
}

static void on_too_large(void *ctx, struct conn *c, const char *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    reply_line(c, "error request line longer than %d bytes", CONTROL_REQUEST_MAX);
}

static void on_closed(void *ctx, struct conn *c)
{
    is_waiting(ctx, c, true);
}

static int open_socket(struct control *ctl, const char *state_dir, char *err, size_t errlen)
{
    ctl->addr.kind = LISTEN_UNIX;
    int n =
        snprintf(ctl->addr.path, sizeof ctl->addr.path, "%s/%s", state_dir, CONTROL_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof ctl->addr.path) {
        snprintf(err, errlen, "cannot create %s/%s: path longer than %zu bytes", state_dir,
                 CONTROL_SOCKET_NAME, LISTEN_PATH_MAX);
        return -1;
    }
    /* Created 0600 rather than chmod'ed after: no moment where others may connect. */
    mode_t old = umask(0177);
    ctl->fd = listen_open(&ctl->addr, CONTROL_MAX_CONNS, true, err, errlen);
    umask(old);
    return ctl->fd;
}

struct control *control_new(struct loop *loop, const char *state_dir,
                            const struct control_handler *handler, char *err, size_t errlen)
{
    /* Not calloc: answer is most of it, written before it is read, and pages
     * calloc would touch are page faults on every start. */
    struct control *ctl = malloc(sizeof *ctl);
    if (!ctl) {
        snprintf(err, errlen, "cannot allocate the control socket");
        return NULL;
    }
    memset(ctl, 0, offsetof(struct control, answer));
    ctl->answer[0] = '\0';
    ctl->handler = *handler;
    if (open_socket(ctl, state_dir, err, errlen) < 0) {
        free(ctl);
        return NULL;
    }
    struct conn_limits limits = {.max_conns = CONTROL_MAX_CONNS,
                                 .request_max = CONTROL_REQUEST_MAX,
                                 .deadline_ms = CONTROL_DEADLINE_MS};
    struct conn_handler ch = {.ctx = ctl,
                              .accepted = on_accepted,
                              .request = on_request,
                              .too_large = on_too_large,
                              .closed = on_closed};
    ctl->server = conn_server_new(loop, ctl->fd, &limits, &ch);
    if (!ctl->server) {
        snprintf(err, errlen, "cannot serve %s: %s", ctl->addr.path, strerror(errno));
        close(ctl->fd);
        listen_unlink(&ctl->addr);
        free(ctl);
        return NULL;
    }
    return ctl;
}

void control_restart_done(struct control *ctl, bool ok, const char *detail)
{
    if (!ctl)
        return;
    for (size_t i = 0; i < CONTROL_MAX_CONNS; i++) {
        struct conn *c = ctl->waiting[i];
        if (!c)
            continue;
        ctl->waiting[i] = NULL;
        if (ok)
            reply_line(c, "ok%s%s", detail && *detail ? " " : "", detail ? detail : "");
        else
            reply_line(c, "error %s", detail && *detail ? detail : "restart failed");
    }
}

void control_free(struct control *ctl)
{
    if (!ctl)
        return;
    /* Waiting clients would only see the connection close: say why (written
     * by conn_server_free, as far as the socket takes it). */
    control_restart_done(ctl, false, "resil-init is exiting");
    conn_server_free(ctl->server);
    close(ctl->fd);
    listen_unlink(&ctl->addr);
    free(ctl);
}

/* --- the client --- */

static int wait_for(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = loop_now_ms();
        if (now >= deadline_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)(deadline_ms - now));
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static int client_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "cannot reach resil-init at %s: path too long", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        snprintf(err, errlen, "cannot reach resil-init at %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int control_request(const char *path, const char *line, uint64_t timeout_ms, char *out,
                    size_t outlen, char *err, size_t errlen)
{
    int fd = client_connect(path, err, errlen);
    if (fd < 0)
        return -1;
    uint64_t deadline = loop_now_ms() + timeout_ms;
    char req[CONTROL_REQUEST_MAX];
    int n = snprintf(req, sizeof req, "%s\n", line);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(err, errlen, "request too long");
        close(fd);
        return -1;
    }
    /* A refusal may come, and the server close, before the request is sent:
     * the answer is still there to read. */
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n && errno != EPIPE && errno != ECONNRESET) {
        snprintf(err, errlen, "cannot send to resil-init at %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    size_t got = 0;
    for (;;) {
        if (wait_for(fd, POLLIN, deadline) < 0) {
            snprintf(err, errlen, "no answer from resil-init at %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        ssize_t r = recv(fd, out + got, outlen - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || got + (size_t)r >= outlen - 1) {
            if (r > 0)
                got += (size_t)r;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    out[got] = '\0';
    if (got == 0) {
        snprintf(err, errlen, "resil-init at %s closed the connection without an answer", path);
        return -1;
    }
    return 0;
}

/* Splits "ok DETAIL\n..." / "error REASON\n": the body after the first line. */
static const char *first_line(char *answer, bool *ok)
{
    char *nl = strchr(answer, '\n');
    if (nl)
        *nl = '\0';
    *ok = strncmp(answer, "ok", 2) == 0 && (answer[2] == '\0' || answer[2] == ' ');
    return nl ? nl + 1 : answer + strlen(answer);
}

int control_command(int argc, char **argv)
{
    const char *cmd = argv[0];
    struct resil_config cfg;
    if (status_parse_dir_args(argc, argv, &cfg) < 0)
        return 2;
    char *dir = status_dir_resolve(cfg.state_dir, false);
    config_free(&cfg);
    if (!dir) {
        fprintf(stderr, "resil-init %s: no state directory\n", cmd);
        return 1;
    }
    char path[LISTEN_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, CONTROL_SOCKET_NAME);
    free(dir);
    bool restart = strcmp(cmd, "restart") == 0;
    static char answer[METRICS_TEXT_MAX + ANSWER_LINE_MAX];
    char err[LISTEN_PATH_MAX + 256];
    if (control_request(path, cmd,
                        restart ? CONTROL_RESTART_TIMEOUT_MS : CONTROL_METRICS_TIMEOUT_MS, answer,
                        sizeof answer, err, sizeof err) < 0) {
        fprintf(stderr, "resil-init %s: %s\n", cmd, err);
        return 1;
    }
    bool ok;
    const char *body = first_line(answer, &ok);
    if (!ok) {
        const char *reason = strncmp(answer, "error ", 6) == 0 ? answer + 6 : answer;
        fprintf(stderr, "resil-init %s: %s\n", cmd, reason);
        return 1;
    }
    if (restart)
        printf("restarted%s%s\n", answer[2] ? ": " : "", answer[2] ? answer + 3 : "");
    else
        fputs(body, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}
