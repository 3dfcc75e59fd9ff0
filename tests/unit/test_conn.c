/* One-request connections on a real loop: requests in pieces, the size bound,
 * the deadline, the cap, held answers, large responses, peer credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "resil/conn.h"
#include "resil/listen.h"
#include "resil/loop.h"

struct fixture {
    struct loop *loop;
    int listen_fd;
    struct sockaddr_un addr;
    struct conn_server *server;
    struct loop_timer *stopper;
    int closed;
    int requests;
    bool hold;
    struct conn *held;
    size_t big_reply; /* bytes of the answer, when not 0 */
    uid_t peer_uid;
};

static void stop_loop(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    (void)data;
    loop_stop(loop);
}

/* A line ends the request; the answer echoes it. */
static enum conn_action on_request(void *ctx, struct conn *c, const char *buf, size_t len, bool eof)
{
    struct fixture *f = ctx;
    (void)eof;
    if (!memchr(buf, '\n', len))
        return CONN_READ_MORE;
    f->requests++;
    conn_peer_uid(c, &f->peer_uid);
    if (f->hold) {
        f->held = c;
        conn_hold(c, 0);
        return CONN_DONE;
    }
    if (f->big_reply) {
        char *big = malloc(f->big_reply);
        memset(big, 'x', f->big_reply);
        assert_int_equal(conn_reply(c, big, f->big_reply), 0);
        free(big);
        return CONN_DONE;
    }
    char out[128];
    int n = snprintf(out, sizeof out, "echo:%.*s", (int)len, buf);
    assert_int_equal(conn_reply(c, out, (size_t)n), 0);
    assert_int_equal(conn_reply(c, "again", 5), -1);
    return CONN_DONE;
}

static void on_too_large(void *ctx, struct conn *c, const char *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    conn_reply(c, "too large\n", 10);
}

static void on_closed(void *ctx, struct conn *c)
{
    struct fixture *f = ctx;
    if (f->held == c)
        f->held = NULL;
    f->closed++;
}

static void setup_server(struct fixture *f, size_t max_conns, size_t request_max,
                         uint64_t deadline_ms)
{
    memset(f, 0, sizeof *f);
    f->loop = loop_new();
    assert_non_null(f->loop);
    char text[128], err[256];
    snprintf(f->addr.sun_path, sizeof f->addr.sun_path, "/tmp/resil-conn-%d.sock", (int)getpid());
    f->addr.sun_family = AF_UNIX;
    snprintf(text, sizeof text, "unix:%s", f->addr.sun_path);
    unlink(f->addr.sun_path);
    struct listen_addr a;
    assert_int_equal(listen_parse(text, &a, err, sizeof err), 0);
    f->listen_fd = listen_open(&a, 16, true, err, sizeof err);
    assert_true(f->listen_fd >= 0);
    struct conn_limits lim = {
        .max_conns = max_conns, .request_max = request_max, .deadline_ms = deadline_ms};
    struct conn_handler h = {
        .ctx = f, .request = on_request, .too_large = on_too_large, .closed = on_closed};
    f->server = conn_server_new(f->loop, f->listen_fd, &lim, &h);
    assert_non_null(f->server);
    f->stopper = loop_timer_new(f->loop, stop_loop, NULL);
}

static void teardown_server(struct fixture *f)
{
    conn_server_free(f->server);
    loop_timer_free(f->stopper);
    close(f->listen_fd);
    unlink(f->addr.sun_path);
    loop_free(f->loop);
}

static void run_for(struct fixture *f, uint64_t ms)
{
    loop_timer_arm(f->stopper, ms);
    loop_run(f->loop);
}

static int client(struct fixture *f)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&f->addr, sizeof f->addr), 0);
    return fd;
}

/* Reads what is there now, without waiting; -1 when nothing (EAGAIN). */
static ssize_t read_now(int fd, char *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len - 1, MSG_DONTWAIT);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static void request_in_pieces_is_answered_then_closed(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 5000);
    int c = client(&f);
    assert_int_equal(write(c, "hel", 3), 3);
    run_for(&f, 20);
    assert_int_equal(f.requests, 0);
    assert_int_equal(conn_server_open_count(f.server), 1);
    assert_int_equal(write(c, "lo\n", 3), 3);
    run_for(&f, 20);
    char buf[128];
    assert_int_equal(read_now(c, buf, sizeof buf), 11);
    assert_string_equal(buf, "echo:hello\n");
    assert_int_equal(read_now(c, buf, sizeof buf), 0); /* closed after */
    assert_int_equal(f.closed, 1);
    assert_int_equal(conn_server_open_count(f.server), 0);
    close(c);
    teardown_server(&f);
}

static void oversized_request_gets_the_owners_answer(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 16, 5000);
    int c = client(&f);
    assert_int_equal(write(c, "0123456789abcdefghijkl", 22), 22);
    run_for(&f, 30);
    char buf[128];
    assert_true(read_now(c, buf, sizeof buf) > 0);
    assert_string_equal(buf, "too large\n");
    assert_int_equal(f.requests, 0);
    /* Answered, then held until the peer stops sending, so the close resets nothing. */
    assert_int_equal(read_now(c, buf, sizeof buf), 0);
    assert_int_equal(conn_server_open_count(f.server), 1);
    close(c);
    run_for(&f, 20);
    assert_int_equal(conn_server_open_count(f.server), 0);
    teardown_server(&f);
}

static void silent_client_is_closed_at_its_deadline(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 60);
    int c = client(&f);
    uint64_t start = loop_now_ms();
    run_for(&f, 30);
    assert_int_equal(f.closed, 0);
    run_for(&f, 200);
    assert_int_equal(f.closed, 1);
    assert_true(loop_now_ms() - start >= 60);
    char buf[8];
    assert_int_equal(read_now(c, buf, sizeof buf), 0);
    close(c);
    teardown_server(&f);
}

static void half_request_then_eof_is_closed(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 5000);
    int c = client(&f);
    assert_int_equal(write(c, "no newline", 10), 10);
    shutdown(c, SHUT_WR);
    run_for(&f, 30);
    assert_int_equal(f.requests, 0);
    assert_int_equal(f.closed, 1);
    close(c);
    teardown_server(&f);
}

static void connections_over_the_cap_are_closed_at_once(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 2, 64, 5000);
    int a = client(&f), b = client(&f);
    run_for(&f, 20);
    int extra = client(&f);
    run_for(&f, 20);
    char buf[8];
    assert_int_equal(read_now(extra, buf, sizeof buf), 0); /* EOF: refused by resil */
    assert_int_equal(conn_server_open_count(f.server), 2);
    assert_int_equal(read_now(a, buf, sizeof buf), -1); /* still open, waiting */
    /* The held slots still serve their request. */
    assert_int_equal(write(b, "b\n", 2), 2);
    run_for(&f, 20);
    assert_true(read_now(b, buf, sizeof buf) > 0);
    assert_int_equal(conn_server_open_count(f.server), 1);
    close(a);
    close(b);
    close(extra);
    run_for(&f, 20);
    assert_int_equal(conn_server_open_count(f.server), 0);
    teardown_server(&f);
}

static void reply_later(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)loop;
    (void)t;
    struct fixture *f = data;
    assert_non_null(f->held);
    assert_int_equal(conn_reply(f->held, "later\n", 6), 0);
}

static void held_request_is_answered_from_outside(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 50); /* a held connection outlives the deadline */
    f.hold = true;
    struct loop_timer *later = loop_timer_new(f.loop, reply_later, &f);
    int c = client(&f);
    assert_int_equal(write(c, "restart\n", 8), 8);
    run_for(&f, 100);
    assert_non_null(f.held);
    assert_int_equal(f.closed, 0);
    loop_timer_arm(later, 0);
    run_for(&f, 30);
    char buf[32];
    assert_int_equal(read_now(c, buf, sizeof buf), 6);
    assert_string_equal(buf, "later\n");
    assert_null(f.held);
    assert_int_equal(f.closed, 1);
    close(c);
    loop_timer_free(later);
    teardown_server(&f);
}

static void held_request_ends_when_the_client_hangs_up(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 5000);
    f.hold = true;
    int c = client(&f);
    assert_int_equal(write(c, "restart\n", 8), 8);
    run_for(&f, 20);
    assert_non_null(f.held);
    close(c);
    run_for(&f, 20);
    assert_null(f.held);
    assert_int_equal(conn_server_open_count(f.server), 0);
    teardown_server(&f);
}

struct drain {
    size_t got;
    bool eof;
};

static void drain_client(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)events;
    struct drain *d = data;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        d->got += (size_t)n;
        return;
    }
    d->eof = true;
    loop_del_fd(loop, fd);
    loop_stop(loop);
}

/* More than a socket buffer: written as the client reads, EPOLLOUT between. */
static void large_response_is_written_whole(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 5000);
    f.big_reply = 4u << 20;
    int c = client(&f);
    int small = 4096;
    setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    fcntl(c, F_SETFL, O_NONBLOCK);
    assert_int_equal(write(c, "big\n", 4), 4);
    struct drain d = {0};
    assert_int_equal(loop_add_fd(f.loop, c, EPOLLIN, drain_client, &d), 0);
    loop_timer_arm(f.stopper, 5000);
    loop_run(f.loop);
    assert_true(d.eof);
    assert_int_equal(d.got, f.big_reply);
    close(c);
    teardown_server(&f);
}

static void peer_uid_is_the_clients(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 5000);
    f.peer_uid = (uid_t)-1;
    int c = client(&f);
    assert_int_equal(write(c, "who\n", 4), 4);
    run_for(&f, 20);
    assert_int_equal(f.peer_uid, getuid());
    close(c);
    teardown_server(&f);
}

static void freeing_the_server_closes_open_connections(void **state)
{
    (void)state;
    struct fixture f;
    setup_server(&f, 4, 64, 5000);
    int a = client(&f), b = client(&f);
    assert_int_equal(write(a, "part", 4), 4);
    run_for(&f, 20);
    assert_int_equal(conn_server_open_count(f.server), 2);
    conn_server_free(f.server);
    f.server = NULL;
    assert_int_equal(f.closed, 2);
    char buf[8];
    assert_int_equal(read_now(a, buf, sizeof buf), 0);
    assert_int_equal(read_now(b, buf, sizeof buf), 0);
    close(a);
    close(b);
    teardown_server(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_in_pieces_is_answered_then_closed),
        cmocka_unit_test(oversized_request_gets_the_owners_answer),
        cmocka_unit_test(silent_client_is_closed_at_its_deadline),
        cmocka_unit_test(half_request_then_eof_is_closed),
        cmocka_unit_test(connections_over_the_cap_are_closed_at_once),
        cmocka_unit_test(held_request_is_answered_from_outside),
        cmocka_unit_test(held_request_ends_when_the_client_hangs_up),
        cmocka_unit_test(large_response_is_written_whole),
        cmocka_unit_test(peer_uid_is_the_clients),
        cmocka_unit_test(freeing_the_server_closes_open_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
