/* Bounded one-request connections in the event loop. The slots are allocated
 * with the server; a connection's request buffer and response live from its
 * accept to its close. One timer serves every deadline: it is armed for the
 * earliest, so an idle server has no timer armed at all. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include "resil/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per wake-up, so a flood of connects cannot hold the loop. */
#define ACCEPT_BATCH 16
/* Out of descriptors: the listener stays readable, so it is set aside for a
 * while instead of waking the loop in a circle. */
#define ACCEPT_PAUSE_MS 100

struct conn {
    struct conn_server *server;
    int fd; /* -1: a free slot */
    char *buf;
    size_t len;
    char *out;
    size_t out_len, out_off;
    uint64_t deadline_ms; /* CLOCK_MONOTONIC ms, 0: none */
    bool held;
    bool in_callback; /* a reply is written when the callback returns */
    bool lingering;   /* answered over a request too large: waiting for the peer's end */
};

struct conn_server {
    struct loop *loop;
    int listen_fd;
    struct conn_limits limits;
    struct conn_handler handler;
    struct conn *slots;
    size_t open;
    struct loop_timer *timer;
    uint64_t resume_accept_ms; /* 0: accepting */
};

static void rearm_timer(struct conn_server *s)
{
    uint64_t next = s->resume_accept_ms;
    for (size_t i = 0; i < s->limits.max_conns; i++) {
        const struct conn *c = &s->slots[i];
        if (c->fd >= 0 && c->deadline_ms && (!next || c->deadline_ms < next))
            next = c->deadline_ms;
    }
    if (!next) {
        loop_timer_disarm(s->timer);
        return;
    }
    uint64_t now = loop_now_ms();
    loop_timer_arm(s->timer, next > now ? next - now : 0);
}

static void close_conn(struct conn *c)
{
    struct conn_server *s = c->server;
    if (s->handler.closed)
        s->handler.closed(s->handler.ctx, c);
    loop_del_fd(s->loop, c->fd);
    close(c->fd);
    free(c->buf);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    s->open--;
    rearm_timer(s);
}

/* Unread bytes at close make the kernel send a reset, which can destroy the
 * answer before the peer reads it: what has arrived is read away first. */
static void discard_input(struct conn *c)
{
    char scratch[4096];
    for (int i = 0; i < 16; i++)
        if (recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT) <= 0)
            return;
}

/* A peer still sending a request too large gets the answer, our end of the
 * stream, and until its deadline to stop: then the close resets nothing. */
static void linger(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    loop_mod_fd(c->server->loop, c->fd, EPOLLIN | EPOLLRDHUP);
}

static void on_lingering(struct conn *c)
{
    char scratch[4096];
    ssize_t n = recv(c->fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return;
    close_conn(c);
}

/* Writes what the socket takes; closes once all is out or the peer is gone. */
static void flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            loop_mod_fd(c->server->loop, c->fd, EPOLLOUT);
            return;
        }
        break;
    }
    if (c->out_off == c->out_len && c->len == c->server->limits.request_max) {
        linger(c);
        return;
    }
    discard_input(c);
    close_conn(c);
}

/* What follows a callback that said CONN_DONE. */
static void conclude(struct conn *c)
{
    if (c->out) {
        flush(c);
    } else if (c->held) {
        /* Only a hang-up wakes a held connection; EPOLLHUP/ERR come anyway. */
        loop_mod_fd(c->server->loop, c->fd, EPOLLRDHUP);
        rearm_timer(c->server);
    } else {
        close_conn(c);
    }
}

static void read_request(struct conn *c)
{
    struct conn_server *s = c->server;
    size_t room = s->limits.request_max - c->len;
    ssize_t n = recv(c->fd, c->buf + c->len, room, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        close_conn(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    c->in_callback = true;
    enum conn_action act = s->handler.request(s->handler.ctx, c, c->buf, c->len, n == 0);
    if (act == CONN_READ_MORE && (n == 0 || c->len == s->limits.request_max)) {
        if (n > 0 && s->handler.too_large)
            s->handler.too_large(s->handler.ctx, c, c->buf, c->len);
        act = CONN_DONE;
    }
    c->in_callback = false;
    if (act == CONN_DONE)
        conclude(c);
}

static void on_conn_event(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)loop;
    (void)fd;
    struct conn *c = data;
    if (c->lingering) {
        on_lingering(c);
    } else if (c->out) {
        flush(c);
    } else if (c->held) {
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            close_conn(c);
        }
    } else {
        read_request(c);
    }
}

static struct conn *free_slot(struct conn_server *s)
{
    for (size_t i = 0; i < s->limits.max_conns; i++)
        if (s->slots[i].fd < 0)
            return &s->slots[i];
    return NULL;
}

static void start_conn(struct conn_server *s, int fd)
{
    struct conn *c = free_slot(s);
    char *buf = c ? malloc(s->limits.request_max + 1) : NULL;
    if (!buf) {
        close(fd); /* over the cap: closed at once */
        return;
    }
    memset(c, 0, sizeof *c);
    c->server = s;
    c->fd = fd;
    c->buf = buf;
    c->buf[0] = '\0';
    c->deadline_ms = loop_now_ms() + s->limits.deadline_ms;
    if (loop_add_fd(s->loop, fd, EPOLLIN | EPOLLRDHUP, on_conn_event, c) < 0) {
        free(buf);
        close(fd);
        c->fd = -1;
        return;
    }
    s->open++;
    if (s->handler.accepted) {
        c->in_callback = true;
        enum conn_action act = s->handler.accepted(s->handler.ctx, c);
        c->in_callback = false;
        if (act == CONN_DONE) {
            conclude(c);
            return;
        }
    }
    rearm_timer(s);
}

static void pause_accepting(struct conn_server *s)
{
    loop_mod_fd(s->loop, s->listen_fd, 0);
    s->resume_accept_ms = loop_now_ms() + ACCEPT_PAUSE_MS;
    rearm_timer(s);
}

static void on_listener(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)loop;
    (void)events;
    struct conn_server *s = data;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            start_conn(s, cfd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            pause_accepting(s);
        return;
    }
}

static void on_timer(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct conn_server *s = data;
    uint64_t now = loop_now_ms();
    for (size_t i = 0; i < s->limits.max_conns; i++) {
        struct conn *c = &s->slots[i];
        if (c->fd >= 0 && c->deadline_ms && c->deadline_ms <= now)
            close_conn(c);
    }
    if (s->resume_accept_ms && s->resume_accept_ms <= now) {
        s->resume_accept_ms = 0;
        loop_mod_fd(s->loop, s->listen_fd, EPOLLIN);
    }
    rearm_timer(s);
}

struct conn_server *conn_server_new(struct loop *loop, int listen_fd,
                                    const struct conn_limits *limits,
                                    const struct conn_handler *handler)
{
    if (!limits->max_conns || !limits->request_max || !handler->request) {
        errno = EINVAL;
        return NULL;
    }
    struct conn_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->listen_fd = listen_fd;
    s->limits = *limits;
    s->handler = *handler;
    s->slots = calloc(limits->max_conns, sizeof *s->slots);
    s->timer = s->slots ? loop_timer_new(loop, on_timer, s) : NULL;
    int flags = fcntl(listen_fd, F_GETFL);
    if (!s->timer || flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
        loop_add_listener(loop, listen_fd, on_listener, s) < 0) {
        int saved = errno;
        loop_timer_free(s->timer);
        free(s->slots);
        free(s);
        errno = saved;
        return NULL;
    }
    for (size_t i = 0; i < limits->max_conns; i++)
        s->slots[i].fd = -1;
    return s;
}

void conn_server_free(struct conn_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->limits.max_conns; i++) {
        struct conn *c = &s->slots[i];
        if (c->fd < 0)
            continue;
        /* An answer given but not yet written gets one try: the loop is ending. */
        if (c->out && c->out_off < c->out_len) {
            ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)n;
        }
        close_conn(c);
    }
    loop_del_fd(s->loop, s->listen_fd);
    loop_timer_free(s->timer);
    free(s->slots);
    free(s);
}

size_t conn_server_open_count(const struct conn_server *s)
{
    return s->open;
}

int conn_reply(struct conn *c, const void *data, size_t len)
{
    if (c->out)
        return -1;
    c->out = malloc(len ? len : 1);
    if (!c->out) {
        if (!c->in_callback) {
            close_conn(c);
        }
        return -1;
    }
    memcpy(c->out, data, len);
    c->out_len = len;
    c->out_off = 0;
    c->held = false;
    /* From outside a callback the write waits for the next turn: closing here
     * would pull the connection from under a caller walking its own list. */
    if (!c->in_callback)
        loop_mod_fd(c->server->loop, c->fd, EPOLLOUT);
    return 0;
}

void conn_hold(struct conn *c, uint64_t deadline_ms)
{
    c->held = true;
    c->deadline_ms = deadline_ms ? loop_now_ms() + deadline_ms : 0;
    if (!c->in_callback) {
        loop_mod_fd(c->server->loop, c->fd, EPOLLRDHUP);
        rearm_timer(c->server);
    }
}

int conn_peer_uid(const struct conn *c, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -1;
    *uid = cred.uid;
    return 0;
}
