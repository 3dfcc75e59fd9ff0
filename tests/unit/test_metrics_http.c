/* The --metrics endpoint: what each request gets, and scrapes served over a
 * real loopback socket by a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "resil/listen.h"
#include "resil/loop.h"
#include "resil/metrics.h"
#include "resil/metrics_http.h"

static int classify(const char *req, bool full, bool eof, bool *head)
{
    return metrics_http_classify(req, strlen(req), full, eof, head);
}

static void requests_get_the_right_status(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        bool full, eof;
        int want;
        bool head;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", false, false, 200, false},
        {"GET /metrics HTTP/1.0\r\n\r\n", false, false, 200, false},
        {"GET /metrics HTTP/1.0\n\n", false, false, 200, false},
        {"HEAD /metrics HTTP/1.1\r\n\r\n", false, false, 200, true},
        {"GET /metrics?x=1 HTTP/1.1\r\n\r\n", false, false, 200, false},
        {"GET http://10.0.0.1:9464/metrics HTTP/1.1\r\n\r\n", false, false, 200, false},
        {"GET / HTTP/1.1\r\n\r\n", false, false, 404, false},
        {"GET /metricsx HTTP/1.1\r\n\r\n", false, false, 404, false},
        {"GET /favicon.ico HTTP/1.1\r\nUser-Agent: a\r\n\r\n", false, false, 404, false},
        {"POST /metrics HTTP/1.1\r\n\r\n", false, false, 405, false},
        {"DELETE /metrics HTTP/1.1\r\n\r\n", false, false, 405, false},
        /* incomplete: wait */
        {"GE", false, false, 0, false},
        {"GET /metrics HTTP/1.1\r\n", false, false, 0, false},
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n", false, false, 0, false},
        {"GET / HTTP/1.1\r\nHost", false, false, 0, false},
        {"", false, false, 0, false},
        /* garbage: at once */
        {"\x16\x03\x01\x02", false, false, 400, false}, /* a TLS hello */
        {"get /metrics HTTP/1.1\r\n\r\n", false, false, 400, false},
        {"GET /metrics\r\n\r\n", false, false, 400, false}, /* HTTP/0.9 */
        {"GET /metrics HTTP/2.0\r\n\r\n", false, false, 400, false},
        {"GET  /metrics HTTP/1.1\r\n\r\n", false, false, 400, false},
        {"GET /met rics HTTP/1.1\r\n\r\n", false, false, 400, false},
        {"GET /metrics HTTP/1.1 \r\n\r\n", false, false, 400, false},
        {"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", false, false, 400, false},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, false, 400, false},
        {"AVERYLONGMETHODNAMEX /metrics HTTP/1.1\r\n\r\n", false, false, 400, false},
        {"\r\n\r\n", false, false, 400, false},
        /* the end came early */
        {"GET /metrics HTTP/1.1\r\nHost: x\r\n", false, true, 400, false},
        {"GET /metr", false, true, 400, false},
        {"", false, true, -1, false},
        /* over the buffer */
        {"GET /metricsmetricsmetrics", true, false, 414, false},
        {"GET /metrics HTTP/1.1\r\nCookie: aaaaaaaaaaaaa", true, false, 431, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool head = false;
        int got = classify(cases[i].req, cases[i].full, cases[i].eof, &head);
        if (got != cases[i].want || head != cases[i].head)
            fail_msg("case %zu %s: got %d (head %d), want %d", i, cases[i].req, got, head,
                     cases[i].want);
    }
}

static void addresses_for_metrics(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(metrics_http_validate("9464", err, sizeof err), 0);
    assert_int_equal(metrics_http_validate("127.0.0.1:9464", err, sizeof err), 0);
    assert_int_equal(metrics_http_validate("[::1]:9464", err, sizeof err), 0);
    assert_int_equal(metrics_http_validate("unix:/tmp/m.sock", err, sizeof err), -1);
    assert_non_null(strstr(err, "unix:/tmp/m.sock"));
    assert_int_equal(metrics_http_validate("m=9464", err, sizeof err), -1);
    assert_int_equal(metrics_http_validate("99999", err, sizeof err), -1);
    assert_non_null(strstr(err, "99999"));
    assert_int_equal(metrics_http_validate("localhost", err, sizeof err), -1);
}

/* --- served over loopback --- */

struct scrape_fixture {
    struct loop *loop;
    struct metrics metrics;
    struct metrics_http *http;
    struct loop_timer *stopper;
    unsigned port;
    int renders;
};

static size_t render(void *ctx, char *buf, size_t len)
{
    struct scrape_fixture *f = ctx;
    f->renders++;
    return metrics_render(&f->metrics, buf, len);
}

static void stop_loop(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    (void)data;
    loop_stop(loop);
}

/* Port 0, then the one the kernel picked, read back from a probe socket. */
static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    bind(fd, (struct sockaddr *)&sin, sizeof sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}

static void fixture_up(struct scrape_fixture *f)
{
    memset(f, 0, sizeof *f);
    f->loop = loop_new();
    metrics_init(&f->metrics, true);
    metrics_count_restart(&f->metrics, "crash");
    f->port = free_port();
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f->port);
    f->http = metrics_http_new(f->loop, addr, render, f, err, sizeof err);
    if (!f->http)
        fail_msg("%s", err);
    f->stopper = loop_timer_new(f->loop, stop_loop, NULL);
}

static void fixture_down(struct scrape_fixture *f)
{
    metrics_http_free(f->http);
    loop_timer_free(f->stopper);
    loop_free(f->loop);
}

static int connect_to(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* Sends req, runs the loop a while, returns what came back (the server closed). */
static void exchange(struct scrape_fixture *f, const char *req, size_t reqlen, char *out,
                     size_t outlen)
{
    int fd = connect_to(f->port);
    assert_int_equal(send(fd, req, reqlen, 0), (ssize_t)reqlen);
    loop_timer_arm(f->stopper, 50);
    loop_run(f->loop);
    size_t got = 0;
    ssize_t n;
    while (got < outlen - 1 && (n = recv(fd, out + got, outlen - 1 - got, MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
}

static void get_metrics_answers_the_exposition_text(void **state)
{
    (void)state;
    struct scrape_fixture f;
    fixture_up(&f);
    static char out[METRICS_TEXT_MAX + 1024];
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    exchange(&f, req, strlen(req), out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(out, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    static char want[METRICS_TEXT_MAX];
    size_t want_len = metrics_render(&f.metrics, want, sizeof want);
    assert_string_equal(body, want);
    unsigned long length = 0;
    const char *cl = strstr(out, "Content-Length: ");
    assert_non_null(cl);
    length = strtoul(cl + 16, NULL, 10);
    assert_int_equal(length, want_len);
    assert_non_null(strstr(body, "resil_app_restarts_total{reason=\"crash\"} 1\n"));

    /* HEAD: the same headers, no body. */
    req = "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
    exchange(&f, req, strlen(req), out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    body = strstr(out, "\r\n\r\n");
    assert_string_equal(body, "\r\n\r\n");
    assert_int_equal(f.renders, 2);
    fixture_down(&f);
}

static void other_paths_garbage_and_oversized(void **state)
{
    (void)state;
    struct scrape_fixture f;
    fixture_up(&f);
    char out[2048];
    const char *req = "GET /other HTTP/1.1\r\n\r\n";
    exchange(&f, req, strlen(req), out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 404 ", 13) == 0);
    req = "\x01\x02garbage\r\n\r\n";
    exchange(&f, req, strlen(req), out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    req = "PUT /metrics HTTP/1.1\r\n\r\n";
    exchange(&f, req, strlen(req), out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 405 ", 13) == 0);
    assert_non_null(strstr(out, "\r\nAllow: GET, HEAD\r\n"));

    static char big[METRICS_HTTP_REQUEST_MAX + 100];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    exchange(&f, big, sizeof big, out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 414 ", 13) == 0);
    int n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'b', sizeof big - (size_t)n);
    exchange(&f, big, sizeof big, out, sizeof out);
    assert_true(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
    assert_int_equal(f.renders, 0);
    fixture_down(&f);
}

static void port_in_use_is_an_error_naming_it(void **state)
{
    (void)state;
    struct scrape_fixture f;
    fixture_up(&f);
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", f.port);
    assert_null(metrics_http_new(f.loop, addr, render, &f, err, sizeof err));
    assert_non_null(strstr(err, addr));
    fixture_down(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_get_the_right_status),
        cmocka_unit_test(addresses_for_metrics),
        cmocka_unit_test(get_metrics_answers_the_exposition_text),
        cmocka_unit_test(other_paths_garbage_and_oversized),
        cmocka_unit_test(port_in_use_is_an_error_naming_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
