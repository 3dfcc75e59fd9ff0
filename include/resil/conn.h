/* One-request connections served inside the event loop (the control socket,
 * the metrics endpoint): non-blocking accept, a cap on open connections, one
 * deadline each, a bounded request buffer, one response written without
 * blocking, then close. A slow or hostile client costs a slot and a buffer
 * until its deadline, never a wait. */
#ifndef RESIL_CONN_H
#define RESIL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "resil/loop.h"

struct conn;
struct conn_server;

enum conn_action {
    CONN_READ_MORE, /* the request is not complete yet */
    CONN_DONE,      /* answered with conn_reply (or not: then closed), or held with conn_hold */
};

struct conn_handler {
    void *ctx;
    /* Optional: a new connection, before anything is read. Return CONN_DONE
     * (after conn_reply, e.g. a refusal) to end it there. */
    enum conn_action (*accepted)(void *ctx, struct conn *c);
    /* The bytes received so far, NUL-terminated at len; eof when the peer has
     * shut down its side. */
    enum conn_action (*request)(void *ctx, struct conn *c, const char *buf, size_t len, bool eof);
    /* Optional: the buffer filled up before the request was complete; reply or
     * not, the connection ends after. */
    void (*too_large)(void *ctx, struct conn *c, const char *buf, size_t len);
    /* Optional: the connection is about to be freed (answered, timed out, hung
     * up or the server freed); a held connection's pointer is dead after. */
    void (*closed)(void *ctx, struct conn *c);
};

struct conn_limits {
    size_t max_conns;     /* one more is closed at once */
    size_t request_max;   /* bytes of request kept */
    uint64_t deadline_ms; /* from accept to the last byte written */
};

/* listen_fd stays the caller's; it is made non-blocking. NULL with errno. */
struct conn_server *conn_server_new(struct loop *loop, int listen_fd,
                                    const struct conn_limits *limits,
                                    const struct conn_handler *handler);
/* Closes every open connection (calling closed; an answer not yet written gets
 * one non-blocking try) and stops watching the listener. */
void conn_server_free(struct conn_server *s);
size_t conn_server_open_count(const struct conn_server *s);

/* The response (copied); written as the socket takes it, then the connection
 * closes. Once per connection: -1 when already answered or out of memory
 * (the connection is then closed). */
int conn_reply(struct conn *c, const void *data, size_t len);
/* The answer comes later (conn_reply from outside a callback). Reading stops;
 * a hang-up still closes it. deadline_ms from now replaces the connection's
 * deadline, 0 for none. */
void conn_hold(struct conn *c, uint64_t deadline_ms);

/* The peer's uid (SO_PEERCRED, unix sockets). 0, or -1 with errno. */
int conn_peer_uid(const struct conn *c, uid_t *uid);

#endif
