/* Health checks: the verdict rules, then the state machine end to end against a
 * small HTTP server thread on 127.0.0.1 (or a Unix socket), driven by the real
 * event loop. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "resil/health.h"
#include "resil/log.h"
#include "resil/loop.h"
#include "resil/health_internal.h"
#include "resil/util.h"

#ifndef RESIL_VERSION
#define RESIL_VERSION "dev"
#endif

/* ---- health_judge ---- */

static enum health_verdict judge(long status, const char *body)
{
    char v[64];
    return health_judge(status, body, body ? strlen(body) : 0, false, NULL, v, sizeof v);
}

static void test_judge_status_codes(void **state)
{
    (void)state;
    assert_int_equal(judge(200, ""), HEALTH_VERDICT_PASS);
    assert_int_equal(judge(204, ""), HEALTH_VERDICT_PASS);
    assert_int_equal(judge(301, ""), HEALTH_VERDICT_PASS);
    assert_int_equal(judge(399, ""), HEALTH_VERDICT_PASS);
    assert_int_equal(judge(400, ""), HEALTH_VERDICT_FAIL);
    assert_int_equal(judge(404, ""), HEALTH_VERDICT_FAIL);
    assert_int_equal(judge(500, ""), HEALTH_VERDICT_FAIL);
    assert_int_equal(judge(503, ""), HEALTH_VERDICT_FAIL);
    assert_int_equal(judge(199, ""), HEALTH_VERDICT_FAIL);
    assert_int_equal(judge(0, NULL), HEALTH_VERDICT_FAIL);
    /* A good body cannot rescue a bad status. */
    assert_int_equal(judge(503, "{\"status\":\"ok\"}"), HEALTH_VERDICT_FAIL);
}

static void expect_verdict(const char *body, enum health_verdict want, const char *want_text)
{
    char v[64] = "junk";
    enum health_verdict got = health_judge(200, body, strlen(body), false, NULL, v, sizeof v);
    assert_int_equal(got, want);
    assert_string_equal(v, want_text);
}

static void test_judge_json_verdicts(void **state)
{
    (void)state;
    expect_verdict("{\"status\":\"ok\"}", HEALTH_VERDICT_PASS, "ok");
    expect_verdict("{\"status\":\"critical\"}", HEALTH_VERDICT_FAIL, "critical");
    expect_verdict("{\"status\":\"CRITICAL\"}", HEALTH_VERDICT_FAIL, "CRITICAL");
    expect_verdict("{\"status\":\"unhealthy\"}", HEALTH_VERDICT_FAIL, "unhealthy");
    expect_verdict("{\"status\":\"down\"}", HEALTH_VERDICT_FAIL, "down");
    expect_verdict("{\"status\":\"Down\"}", HEALTH_VERDICT_FAIL, "Down");
    expect_verdict("{\"status\":\"fail\"}", HEALTH_VERDICT_FAIL, "fail");
    expect_verdict("{\"status\":\"failed\"}", HEALTH_VERDICT_FAIL, "failed");
    expect_verdict("{\"status\":\"error\"}", HEALTH_VERDICT_FAIL, "error");
    expect_verdict("{\"status\":\"warning\"}", HEALTH_VERDICT_WARN, "warning");
    expect_verdict("{\"status\":\"degraded\"}", HEALTH_VERDICT_WARN, "degraded");
    expect_verdict("{\"status\":\"Degraded\"}", HEALTH_VERDICT_WARN, "Degraded");
    expect_verdict("{\"status\":\"up\",\"db\":{\"status\":\"down\"}}", HEALTH_VERDICT_PASS, "up");
    expect_verdict("  {\"status\" : \"fail\"}\n", HEALTH_VERDICT_FAIL, "fail");
}

static void test_judge_field_selection(void **state)
{
    (void)state;
    char v[64];
    expect_verdict("{\"overall_status\":\"critical\"}", HEALTH_VERDICT_FAIL, "critical");
    expect_verdict("{\"overall_status\":\"warning\"}", HEALTH_VERDICT_WARN, "warning");
    /* "status" wins over "overall_status" when both are strings. */
    expect_verdict("{\"status\":\"ok\",\"overall_status\":\"down\"}", HEALTH_VERDICT_PASS, "ok");
    /* A non-string "status" gives way to "overall_status". */
    expect_verdict("{\"status\":500,\"overall_status\":\"down\"}", HEALTH_VERDICT_FAIL, "down");
    expect_verdict("{\"status\":false}", HEALTH_VERDICT_PASS, "");
    expect_verdict("{\"status\":null}", HEALTH_VERDICT_PASS, "");
    expect_verdict("{\"status\":{\"state\":\"down\"}}", HEALTH_VERDICT_PASS, "");
    expect_verdict("{\"Status\":\"down\"}", HEALTH_VERDICT_PASS, "");

    const char *custom = "{\"status\":\"down\",\"health\":\"green\"}";
    assert_int_equal(health_judge(200, custom, strlen(custom), false, "health", v, sizeof v),
                     HEALTH_VERDICT_PASS);
    assert_string_equal(v, "green");
    const char *custom_bad = "{\"status\":\"ok\",\"health\":\"fail\"}";
    assert_int_equal(
        health_judge(200, custom_bad, strlen(custom_bad), false, "health", v, sizeof v),
        HEALTH_VERDICT_FAIL);
    assert_string_equal(v, "fail");
    /* A custom field replaces the defaults: no fallback to "status". */
    const char *missing = "{\"status\":\"down\"}";
    assert_int_equal(health_judge(200, missing, strlen(missing), false, "health", v, sizeof v),
                     HEALTH_VERDICT_PASS);
    assert_string_equal(v, "");
    const char *number = "{\"health\":0}";
    assert_int_equal(health_judge(200, number, strlen(number), false, "health", v, sizeof v),
                     HEALTH_VERDICT_PASS);
}

static void test_judge_non_objects(void **state)
{
    (void)state;
    expect_verdict("[\"down\"]", HEALTH_VERDICT_PASS, "");
    expect_verdict("\"down\"", HEALTH_VERDICT_PASS, "");
    expect_verdict("42", HEALTH_VERDICT_PASS, "");
    expect_verdict("down", HEALTH_VERDICT_PASS, "");
    expect_verdict("<html>error</html>", HEALTH_VERDICT_PASS, "");
    expect_verdict("{\"status\":\"down\"", HEALTH_VERDICT_PASS, "");
    expect_verdict("", HEALTH_VERDICT_PASS, "");
    expect_verdict("\x01\xff\xfe garbage", HEALTH_VERDICT_PASS, "");
    assert_int_equal(judge(404, "not json"), HEALTH_VERDICT_FAIL);
    assert_int_equal(judge(500, ""), HEALTH_VERDICT_FAIL);
}

static void test_judge_truncated_and_lengths(void **state)
{
    (void)state;
    char v[64];
    const char *body = "{\"status\":\"critical\"}";
    assert_int_equal(health_judge(200, body, strlen(body), true, NULL, v, sizeof v),
                     HEALTH_VERDICT_PASS);
    assert_string_equal(v, "");
    assert_int_equal(health_judge(503, body, strlen(body), true, NULL, v, sizeof v),
                     HEALTH_VERDICT_FAIL);
    /* Only len bytes count: the body need not be NUL-terminated. */
    const char buf[] = {'{', '"', 's', 't', 'a', 't', 'u', 's', '"', ':',
                        '"', 'd', 'o', 'w', 'n', '"', '}', 'X', 'X'};
    assert_int_equal(health_judge(200, buf, 17, false, NULL, v, sizeof v), HEALTH_VERDICT_FAIL);
    assert_int_equal(health_judge(200, NULL, 0, false, NULL, v, sizeof v), HEALTH_VERDICT_PASS);
    /* A small output buffer gets a cut, terminated copy; NULL gets none. */
    char small[4];
    assert_int_equal(health_judge(200, body, strlen(body), false, NULL, small, sizeof small),
                     HEALTH_VERDICT_FAIL);
    assert_string_equal(small, "cri");
    assert_int_equal(health_judge(200, body, strlen(body), false, NULL, NULL, 0),
                     HEALTH_VERDICT_FAIL);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(health_status_name(HEALTH_STATUS_UNKNOWN), "unknown");
    assert_string_equal(health_status_name(HEALTH_STATUS_STARTING), "starting");
    assert_string_equal(health_status_name(HEALTH_STATUS_HEALTHY), "healthy");
    assert_string_equal(health_status_name(HEALTH_STATUS_UNHEALTHY), "unhealthy");
}

/* ---- a tiny HTTP server thread ---- */

enum srv_mode { SRV_RESPOND, SRV_CLOSE, SRV_GARBAGE };

#define SRV_MAX_HITS 256

struct srv {
    int listen_fd;
    int port;
    char unix_path[108];
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;
    /* behaviour, under mu */
    enum srv_mode mode;
    int status;
    char *body;
    size_t body_len;
    int delay_ms;
    /* what happened, under mu */
    int hits;
    uint64_t hit_ms[SRV_MAX_HITS];
    char user_agent[128];
    bool overlapped; /* a second connection waited while one was served */
};

static void srv_set(struct srv *s, enum srv_mode mode, int status, const char *body, int delay_ms)
{
    pthread_mutex_lock(&s->mu);
    s->mode = mode;
    s->status = status;
    free(s->body);
    s->body = strdup(body ? body : "");
    s->body_len = strlen(s->body);
    s->delay_ms = delay_ms;
    pthread_mutex_unlock(&s->mu);
}

static int srv_hits(struct srv *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static bool srv_stopping(struct srv *s)
{
    struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Reads the request head; false when the client or the test went away. */
static bool srv_read_request(struct srv *s, int c)
{
    char buf[4096];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        struct pollfd p[2] = {{.fd = c, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, 5000) <= 0 || p[1].revents)
            return false;
        ssize_t n = read(c, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    const char *ua = strcasestr(buf, "\r\nUser-Agent: ");
    pthread_mutex_lock(&s->mu);
    if (ua)
        sscanf(ua + 14, "%127[^\r]", s->user_agent);
    if (s->hits < SRV_MAX_HITS)
        s->hit_ms[s->hits] = loop_now_ms();
    s->hits++;
    pthread_mutex_unlock(&s->mu);
    return true;
}

/* Waits delay_ms, ending early when the client hangs up or the test stops us;
 * notes any second client queueing meanwhile. */
static bool srv_delay(struct srv *s, int c, int delay_ms)
{
    uint64_t end = loop_now_ms() + (uint64_t)delay_ms;
    for (uint64_t now = loop_now_ms(); now < end; now = loop_now_ms()) {
        struct pollfd p[3] = {{.fd = c, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN},
                              {.fd = s->listen_fd, .events = POLLIN}};
        int wait = (int)(end - now) < 10 ? (int)(end - now) : 10;
        if (poll(p, 3, wait) < 0)
            return false;
        if (p[0].revents || p[1].revents)
            return false;
        if (p[2].revents) {
            pthread_mutex_lock(&s->mu);
            s->overlapped = true;
            pthread_mutex_unlock(&s->mu);
        }
    }
    return true;
}

static void send_all(int c, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void srv_serve(struct srv *s, int c)
{
    if (!srv_read_request(s, c))
        return;
    pthread_mutex_lock(&s->mu);
    enum srv_mode mode = s->mode;
    int status = s->status;
    int delay_ms = s->delay_ms;
    size_t body_len = s->body_len;
    char *body = malloc(body_len + 1);
    memcpy(body, s->body, body_len + 1);
    pthread_mutex_unlock(&s->mu);

    if (srv_delay(s, c, delay_ms)) {
        if (mode == SRV_RESPOND) {
            char head[256];
            int n = snprintf(head, sizeof head,
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                             status, body_len);
            send_all(c, head, (size_t)n);
            send_all(c, body, body_len);
        } else if (mode == SRV_GARBAGE) {
            send_all(c, "\x01\x02 not http at all\r\n\r\n", 22);
        }
    }
    free(body);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!srv_stopping(s)) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 || p[1].revents)
            break;
        int c = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        srv_serve(s, c);
        close(c);
    }
    return NULL;
}

static void srv_start(struct srv *s, const char *unix_path)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    srv_set(s, SRV_RESPOND, 200, "{\"status\":\"ok\"}", 0);
    assert_int_equal(pipe2(s->stop_pipe, O_CLOEXEC), 0);
    if (unix_path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(s->unix_path, sizeof s->unix_path, "%s", unix_path);
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", unix_path);
        unlink(unix_path);
        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sa;
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sa, &len), 0);
        s->port = ntohs(sa.sin_port);
    }
    assert_int_equal(listen(s->listen_fd, 16), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    assert_int_equal(write(s->stop_pipe[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    if (s->unix_path[0])
        unlink(s->unix_path);
    free(s->body);
    pthread_mutex_destroy(&s->mu);
}

/* ---- driving the loop ---- */

struct fixture {
    struct loop *loop;
    struct srv srv;
    struct health_options cfg;
    char url[160];
    struct health *h;
    struct loop_timer *deadline;
    struct loop_timer *tick;
    bool (*until)(struct fixture *f);
    int want_changes;
    int want_hits;
    unsigned want_failures;
    int want_sockets;
    uint64_t started_ms;
    /* what the change callback saw */
    int changes;
    enum health_status from[16], to[16];
    struct health_check_result last;
    uint64_t changed_ms;
    /* what the callback does */
    bool stop_on_unhealthy;
    bool restart_on_unhealthy;
};

static void deadline_fired(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    (void)data;
    loop_stop(loop);
}

static void tick_fired(struct loop *loop, struct loop_timer *t, void *data)
{
    struct fixture *f = data;
    if (f->until && f->until(f))
        loop_stop(loop);
    else
        loop_timer_arm(t, 2);
}

/* Runs the loop until pred holds (checked every few ms) or max_ms pass. */
static void run_until(struct fixture *f, bool (*pred)(struct fixture *f), uint64_t max_ms)
{
    f->until = pred;
    loop_timer_arm(f->deadline, max_ms);
    if (pred)
        loop_timer_arm(f->tick, 0);
    assert_int_equal(loop_run(f->loop), 0);
    loop_timer_disarm(f->deadline);
    loop_timer_disarm(f->tick);
    f->until = NULL;
}

static void on_change(void *ctx, enum health_status from, enum health_status to,
                      const struct health_check_result *last)
{
    struct fixture *f = ctx;
    assert_int_not_equal(from, to);
    assert_true(f->changes < 16);
    f->from[f->changes] = from;
    f->to[f->changes] = to;
    f->changes++;
    f->last = *last;
    f->changed_ms = loop_now_ms();
    assert_int_equal(health_get_state(f->h)->status, to);
    if (to == HEALTH_STATUS_UNHEALTHY && f->stop_on_unhealthy)
        health_app_stopped(f->h);
    if (to == HEALTH_STATUS_UNHEALTHY && f->restart_on_unhealthy) {
        f->restart_on_unhealthy = false;
        health_app_started(f->h);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->loop = loop_new();
    f->deadline = loop_timer_new(f->loop, deadline_fired, f);
    f->tick = loop_timer_new(f->loop, tick_fired, f);
    srv_start(&f->srv, NULL);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/health", f->srv.port);
    f->cfg.url = f->url;
    f->cfg.interval_ms = 40;
    f->cfg.timeout_ms = 1000;
    f->cfg.start_period_ms = 0;
    f->cfg.retries = 2;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    health_free(f->h);
    srv_stop(&f->srv);
    loop_timer_free(f->deadline);
    loop_timer_free(f->tick);
    loop_free(f->loop);
    free(f);
    return 0;
}

static void start(struct fixture *f)
{
    char err[256] = "";
    f->h = health_new(f->loop, &f->cfg, on_change, f, err, sizeof err);
    if (!f->h)
        fail_msg("health_new: %s", err);
    assert_int_equal(health_get_state(f->h)->status, HEALTH_STATUS_UNKNOWN);
    f->started_ms = loop_now_ms();
    health_app_started(f->h);
    assert_int_equal(health_get_state(f->h)->status, HEALTH_STATUS_STARTING);
}

static enum health_status status_of(struct fixture *f)
{
    return health_get_state(f->h)->status;
}

static bool is_healthy(struct fixture *f)
{
    return status_of(f) == HEALTH_STATUS_HEALTHY;
}

static bool changes_reached(struct fixture *f)
{
    return f->changes >= f->want_changes;
}

static bool hits_reached(struct fixture *f)
{
    return srv_hits(&f->srv) >= f->want_hits;
}

/* Runs until the server has seen n requests in all. */
static void wait_hits(struct fixture *f, int n)
{
    f->want_hits = n;
    run_until(f, hits_reached, 5000);
    assert_true(srv_hits(&f->srv) >= n);
}

static bool failures_reached(struct fixture *f)
{
    return health_get_state(f->h)->consecutive_failures >= f->want_failures;
}

static bool is_unhealthy(struct fixture *f)
{
    return status_of(f) == HEALTH_STATUS_UNHEALTHY;
}

static void run_until_status(struct fixture *f, enum health_status want, uint64_t max_ms)
{
    run_until(f, want == HEALTH_STATUS_HEALTHY ? is_healthy : is_unhealthy, max_ms);
    assert_string_equal(health_status_name(status_of(f)), health_status_name(want));
}

/* ---- end to end ---- */

static void test_validate_rejects_bad_urls(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"ftp://127.0.0.1/health",
                         "file:///etc/passwd",
                         "not a url",
                         "",
                         "gopher://127.0.0.1/",
                         "http://"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        assert_int_equal(health_validate_url(bad[i], err, sizeof err), -1);
        assert_true(strlen(err) > 0);
    }
    char err[256] = "";
    f->cfg.url = "HTTP://localhost:8080/ready?x=1";
    assert_int_equal(health_validate_url(f->cfg.url, err, sizeof err), 0);
    struct health *h = health_new(f->loop, &f->cfg, on_change, f, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(health_get_state(h)->status, HEALTH_STATUS_UNKNOWN);
    health_free(h);
}

static void test_healthy_unhealthy_recovers(void **state)
{
    struct fixture *f = *state;
    start(f);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    assert_int_equal(f->changes, 1);
    assert_int_equal(f->from[0], HEALTH_STATUS_STARTING);
    assert_true(f->last.passed);
    assert_int_equal(f->last.http_status, 200);
    assert_string_equal(f->last.verdict_text, "ok");
    const struct health_state *st = health_get_state(f->h);
    assert_int_equal(st->last_http_status, 200);
    assert_string_equal(st->last_verdict, "ok");
    assert_true(st->last_check_at_ms > 0);

    srv_set(&f->srv, SRV_RESPOND, 503, "{\"status\":\"ok\"}", 0);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_int_equal(f->changes, 2);
    assert_int_equal(f->from[1], HEALTH_STATUS_HEALTHY);
    assert_int_equal(st->consecutive_failures, 2);
    assert_false(f->last.passed);
    assert_string_equal(f->last.error, "HTTP 503");
    assert_string_equal(st->last_error, "HTTP 503");

    /* Still checked while unhealthy, with no callback per failure. */
    f->want_failures = 4;
    run_until(f, failures_reached, 5000);
    assert_int_equal(st->consecutive_failures, 4);
    assert_int_equal(status_of(f), HEALTH_STATUS_UNHEALTHY);
    assert_int_equal(f->changes, 2);

    srv_set(&f->srv, SRV_RESPOND, 200, "{\"status\":\"warning\"}", 0);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    assert_int_equal(f->changes, 3);
    assert_int_equal(f->last.verdict, HEALTH_VERDICT_WARN);
    assert_true(f->last.passed);
    assert_int_equal(st->consecutive_failures, 0);
    assert_string_equal(st->last_verdict, "warning");
    assert_string_equal(f->srv.user_agent, "resil-init/" RESIL_VERSION);
}

static void test_failures_below_retries_stay_healthy(void **state)
{
    struct fixture *f = *state;
    f->cfg.retries = 3;
    start(f);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    srv_set(&f->srv, SRV_RESPOND, 500, "", 0);
    f->want_failures = 2;
    run_until(f, failures_reached, 5000);
    assert_int_equal(status_of(f), HEALTH_STATUS_HEALTHY);
    srv_set(&f->srv, SRV_RESPOND, 200, "", 0);
    wait_hits(f, srv_hits(&f->srv) + 2);
    run_until(f, NULL, 20);
    assert_int_equal(status_of(f), HEALTH_STATUS_HEALTHY);
    assert_int_equal(f->changes, 1);
    assert_int_equal(health_get_state(f->h)->consecutive_failures, 0);
}

static void test_verdict_failure(void **state)
{
    struct fixture *f = *state;
    srv_set(&f->srv, SRV_RESPOND, 200, "{\"status\":\"critical\"}", 0);
    f->cfg.retries = 1;
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_int_equal(f->changes, 1);
    assert_int_equal(f->from[0], HEALTH_STATUS_STARTING);
    assert_string_equal(f->last.error, "verdict \"critical\" (HTTP 200)");
    assert_string_equal(f->last.verdict_text, "critical");
    assert_int_equal(f->last.http_status, 200);
}

static void test_custom_json_field(void **state)
{
    struct fixture *f = *state;
    srv_set(&f->srv, SRV_RESPOND, 200, "{\"status\":\"ok\",\"app\":\"down\"}", 0);
    f->cfg.retries = 1;
    f->cfg.json_field = (char *)"app";
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_string_equal(f->last.verdict_text, "down");
}

static void hit_times(struct fixture *f, uint64_t *out, int max, int *hits)
{
    pthread_mutex_lock(&f->srv.mu);
    *hits = f->srv.hits;
    for (int i = 0; i < max && i < f->srv.hits; i++)
        out[i] = f->srv.hit_ms[i] - f->started_ms;
    pthread_mutex_unlock(&f->srv.mu);
}

/* The first check waits one interval; later ones start one interval after the
 * previous one started. A request reaches the server no earlier than its check
 * began, which makes the lower bounds exact whatever the machine's load. */
static void test_interval_start_to_start(void **state)
{
    struct fixture *f = *state;
    f->cfg.interval_ms = 120;
    start(f);
    wait_hits(f, 2);
    uint64_t at[2] = {0, 0};
    int hits;
    hit_times(f, at, 2, &hits);
    assert_true(at[0] + 1 >= 120);
    assert_true(at[1] + 1 >= 240);
    /* Upper bounds are loose: a loaded machine may run us late. */
    assert_true(at[1] <= 240 + 400);
}

/* A check that takes part of the interval does not push the next one back. */
static void test_interval_counts_from_check_start(void **state)
{
    struct fixture *f = *state;
    f->cfg.interval_ms = 300;
    srv_set(&f->srv, SRV_RESPOND, 200, "", 250);
    start(f);
    wait_hits(f, 2);
    uint64_t at[2] = {0, 0};
    int hits;
    hit_times(f, at, 2, &hits);
    /* Counted from the end of the first check it would be 850 at least. */
    assert_in_range(at[1], 599, 820);
}

/* A check slower than the interval: the next starts right after it ends and
 * never while it runs. */
static void test_slow_checks_never_overlap(void **state)
{
    struct fixture *f = *state;
    f->cfg.interval_ms = 20;
    srv_set(&f->srv, SRV_RESPOND, 200, "", 100);
    start(f);
    wait_hits(f, 4);
    pthread_mutex_lock(&f->srv.mu);
    int hits = f->srv.hits;
    bool overlapped = f->srv.overlapped;
    uint64_t gaps[SRV_MAX_HITS];
    for (int i = 1; i < hits; i++)
        gaps[i] = f->srv.hit_ms[i] - f->srv.hit_ms[i - 1];
    pthread_mutex_unlock(&f->srv.mu);
    assert_false(overlapped);
    /* Never sooner than the previous answer; soon after it, load permitting. */
    for (int i = 1; i < hits; i++)
        assert_in_range(gaps[i], 99, 100 + 300);
    assert_int_equal(status_of(f), HEALTH_STATUS_HEALTHY);
}

static void test_start_period_ignores_failures(void **state)
{
    struct fixture *f = *state;
    f->cfg.interval_ms = 20;
    f->cfg.start_period_ms = 60000;
    f->cfg.retries = 1;
    srv_set(&f->srv, SRV_RESPOND, 503, "", 0);
    start(f);
    wait_hits(f, 4);
    assert_int_equal(status_of(f), HEALTH_STATUS_STARTING);
    assert_int_equal(health_get_state(f->h)->consecutive_failures, 0);
    assert_int_equal(f->changes, 0);
    assert_string_equal(health_get_state(f->h)->last_error, "HTTP 503");

    /* The first success ends the start period: the next failure counts. */
    srv_set(&f->srv, SRV_RESPOND, 200, "", 0);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    srv_set(&f->srv, SRV_RESPOND, 503, "", 0);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_int_equal(f->changes, 2);

    /* A restart opens a new start period. */
    health_app_started(f->h);
    assert_int_equal(status_of(f), HEALTH_STATUS_STARTING);
    assert_int_equal(health_get_state(f->h)->consecutive_failures, 0);
    run_until(f, NULL, 100);
    assert_int_equal(status_of(f), HEALTH_STATUS_STARTING);
    assert_int_equal(f->changes, 2);
}

static void test_start_period_expires(void **state)
{
    struct fixture *f = *state;
    f->cfg.interval_ms = 30;
    f->cfg.start_period_ms = 150;
    f->cfg.retries = 2;
    srv_set(&f->srv, SRV_RESPOND, 500, "", 0);
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_int_equal(f->from[0], HEALTH_STATUS_STARTING);
    /* Two failures that began after the start period ended. */
    assert_true(f->changed_ms >= f->started_ms + 150 + 30);
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    f->cfg.timeout_ms = 150;
    f->cfg.retries = 1;
    srv_set(&f->srv, SRV_RESPOND, 200, "", 5000);
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_string_equal(f->last.error, "timeout after 150ms");
    assert_int_equal(f->last.http_status, 0);
    assert_in_range(f->changed_ms - f->started_ms, 40 + 150, 40 + 150 + 1500);
}

static void test_timeout_in_seconds(void **state)
{
    struct fixture *f = *state;
    f->cfg.timeout_ms = 1000;
    f->cfg.retries = 1;
    srv_set(&f->srv, SRV_RESPOND, 200, "", 5000);
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_string_equal(f->last.error, "timeout after 1s");
}

static void test_connection_refused(void **state)
{
    struct fixture *f = *state;
    /* A port that was just free on loopback, and still is. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/health", ntohs(sa.sin_port));
    close(fd);
    f->cfg.retries = 1;
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_string_equal(f->last.error, "connection refused");
    assert_int_equal(f->last.http_status, 0);
}

static void test_bad_responses(void **state)
{
    struct fixture *f = *state;
    f->cfg.retries = 1;
    srv_set(&f->srv, SRV_CLOSE, 200, "", 0);
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_true(strlen(f->last.error) > 0);
    assert_int_equal(f->last.http_status, 0);

    srv_set(&f->srv, SRV_RESPOND, 200, "", 0);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    srv_set(&f->srv, SRV_GARBAGE, 200, "", 0);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_string_equal(f->last.error, "not an HTTP response");
    assert_int_equal(f->changes, 3);
}

static char *huge_json(const char *verdict, size_t size)
{
    char *body = malloc(size + 1);
    int n = snprintf(body, size, "{\"status\":\"%s\",\"pad\":\"", verdict);
    memset(body + n, 'x', size - (size_t)n - 2);
    memcpy(body + size - 2, "\"}", 3);
    return body;
}

static void test_huge_body_judged_by_status(void **state)
{
    struct fixture *f = *state;
    f->cfg.retries = 1;
    char *body = huge_json("critical", 4 * 1024 * 1024);
    srv_set(&f->srv, SRV_RESPOND, 200, body, 0);
    start(f);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    assert_string_equal(f->last.verdict_text, "");
    assert_int_equal(f->last.http_status, 200);

    srv_set(&f->srv, SRV_RESPOND, 500, body, 0);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_string_equal(f->last.error, "HTTP 500");
    free(body);

    /* Exactly the limit is still read whole and judged by its verdict. */
    body = huge_json("critical", HEALTH_BODY_MAX);
    srv_set(&f->srv, SRV_RESPOND, 200, body, 0);
    free(body);
    f->want_failures = health_get_state(f->h)->consecutive_failures + 2;
    run_until(f, failures_reached, 5000);
    assert_int_equal(status_of(f), HEALTH_STATUS_UNHEALTHY);
    assert_string_equal(health_get_state(f->h)->last_verdict, "critical");
}

static void test_unix_socket(void **state)
{
    struct fixture *f = *state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/resil-health-test-%d.sock", (int)getpid());
    srv_stop(&f->srv);
    srv_start(&f->srv, path);
    snprintf(f->url, sizeof f->url, "http://localhost/health");
    f->cfg.unix_socket = path;
    start(f);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    assert_true(srv_hits(&f->srv) >= 1);

    /* Nobody listening on the path any more. */
    srv_stop(&f->srv);
    srv_start(&f->srv, NULL);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    char want[160];
    snprintf(want, sizeof want, "cannot connect to %s: No such file or directory", path);
    assert_string_equal(f->last.error, want);
}

/* The supervisor stops health checks from inside the callback. */
static void test_stop_from_callback(void **state)
{
    struct fixture *f = *state;
    f->cfg.retries = 1;
    f->stop_on_unhealthy = true;
    srv_set(&f->srv, SRV_RESPOND, 503, "", 0);
    start(f);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    int hits = srv_hits(&f->srv);
    run_until(f, NULL, 200);
    assert_int_equal(srv_hits(&f->srv), hits);
    /* The last status stays for status.json. */
    assert_int_equal(status_of(f), HEALTH_STATUS_UNHEALTHY);
    assert_int_equal(health_get_state(f->h)->consecutive_failures, 1);
    assert_int_equal(f->changes, 1);
}

/* The supervisor restarts the app from inside the callback. */
static void test_restart_from_callback(void **state)
{
    struct fixture *f = *state;
    f->cfg.retries = 1;
    f->restart_on_unhealthy = true;
    srv_set(&f->srv, SRV_RESPOND, 503, "", 0);
    start(f);
    f->want_changes = 1;
    run_until(f, changes_reached, 3000);
    assert_int_equal(f->to[0], HEALTH_STATUS_UNHEALTHY);
    /* The restart set it back to starting right inside the callback. */
    assert_int_equal(status_of(f), HEALTH_STATUS_STARTING);
    assert_int_equal(health_get_state(f->h)->consecutive_failures, 0);
    run_until_status(f, HEALTH_STATUS_UNHEALTHY, 3000);
    assert_int_equal(f->changes, 2);
    assert_int_equal(f->from[1], HEALTH_STATUS_STARTING);
}

static void stop_soon(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)loop;
    (void)t;
    health_app_stopped(data);
}

static int count_sockets(bool *all_cloexec)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        char target[64];
        ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, "socket:", 7) != 0)
            continue;
        n++;
        int flags = fcntl(atoi(e->d_name), F_GETFD);
        if (all_cloexec && !(flags & FD_CLOEXEC))
            *all_cloexec = false;
    }
    closedir(d);
    return n;
}

static bool sockets_back(struct fixture *f)
{
    return count_sockets(NULL) == f->want_sockets;
}

static bool server_hit(struct fixture *f)
{
    return srv_hits(&f->srv) > 0;
}

/* Stopping cancels a check in flight; its sockets were close-on-exec and do
 * not outlive it. */
static void test_stop_cancels_in_flight(void **state)
{
    struct fixture *f = *state;
    srv_set(&f->srv, SRV_RESPOND, 200, "", 5000);
    start(f);
    int before = count_sockets(NULL);
    run_until(f, server_hit, 3000);
    bool all_cloexec = true;
    assert_true(count_sockets(&all_cloexec) > before);
    assert_true(all_cloexec);

    struct loop_timer *t = loop_timer_new(f->loop, stop_soon, f->h);
    loop_timer_arm(t, 20);
    run_until(f, NULL, 200);
    loop_timer_free(t);
    assert_int_equal(srv_hits(&f->srv), 1);
    assert_int_equal(status_of(f), HEALTH_STATUS_STARTING);
    assert_int_equal(f->changes, 0);
    /* The server thread may still hold its end until it notices. */
    f->want_sockets = before;
    run_until(f, sockets_back, 3000);
    assert_int_equal(count_sockets(NULL), before);

    /* And a new start checks again from scratch. */
    srv_set(&f->srv, SRV_RESPOND, 200, "", 0);
    health_app_started(f->h);
    run_until_status(f, HEALTH_STATUS_HEALTHY, 3000);
    run_until(f, sockets_back, 3000);
    assert_int_equal(count_sockets(NULL), before);
}

/* A stopped checker can be freed with nothing left in the loop. */
static void test_free_while_in_flight(void **state)
{
    struct fixture *f = *state;
    srv_set(&f->srv, SRV_RESPOND, 200, "", 5000);
    start(f);
    run_until(f, server_hit, 3000);
    health_free(f->h);
    f->h = NULL;
    run_until(f, NULL, 60);
}

/* The password of --health-url is never shown: logs, status.json, the
 * termination log and --check-config all take the URL from here. */
static void test_redact_url(void **state)
{
    (void)state;
    char out[128];
    util_redact_url("http://alice:s3cr3t@127.0.0.1:3000/health", out, sizeof out);
    assert_string_equal(out, "http://alice:***@127.0.0.1:3000/health");
    util_redact_url("https://tok3n@example.com/h?x=a@b", out, sizeof out);
    assert_string_equal(out, "https://***@example.com/h?x=a@b");
    util_redact_url("http://u:p:q@[::1]:8080/", out, sizeof out);
    assert_string_equal(out, "http://u:***@[::1]:8080/");
    util_redact_url("http://127.0.0.1/a@b", out, sizeof out);
    assert_string_equal(out, "http://127.0.0.1/a@b");
    util_redact_url("not a url", out, sizeof out);
    assert_string_equal(out, "not a url");
    char err[256];
    assert_int_equal(health_validate_url("ftp://bob:pw9@host/", err, sizeof err), -1);
    assert_null(strstr(err, "pw9"));
}

/* A verdict is cut at a character boundary and keeps no invalid byte. */
static void test_judge_verdict_utf8(void **state)
{
    (void)state;
    char body[128] = "{\"status\":\"";
    for (int i = 0; i < 40; i++)
        strcat(body, "\xc3\xa9");
    strcat(body, "\"}");
    char verdict[64];
    health_judge(200, body, strlen(body), false, NULL, verdict, sizeof verdict);
    assert_int_equal(strlen(verdict), 62);
    const char bad[] = "{\"status\":\"ok\xff\"}";
    health_judge(200, bad, sizeof bad - 1, false, NULL, verdict, sizeof verdict);
    assert_string_equal(verdict, "ok\xef\xbf\xbd");
}

int main(void)
{
    log_setup(getenv("TEST_HEALTH_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_url),
        cmocka_unit_test(test_judge_verdict_utf8),
        cmocka_unit_test(test_judge_status_codes),
        cmocka_unit_test(test_judge_json_verdicts),
        cmocka_unit_test(test_judge_field_selection),
        cmocka_unit_test(test_judge_non_objects),
        cmocka_unit_test(test_judge_truncated_and_lengths),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test_setup_teardown(test_validate_rejects_bad_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthy_unhealthy_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_below_retries_stay_healthy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdict_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_json_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_start_to_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_counts_from_check_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_checks_never_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_period_ignores_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_period_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_in_seconds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_body_judged_by_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_cancels_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
