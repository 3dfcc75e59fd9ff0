/* The --metrics HTTP endpoint. Only what a Prometheus scrape needs: one request
 * per connection, GET or HEAD of /metrics, an answer with Content-Length, then
 * close. The request is judged as its bytes arrive, so garbage is answered 400
 * at once instead of at the deadline. */
#include "resil/metrics_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resil/conn.h"
#include "resil/listen.h"
#include "resil/metrics.h"

#define METHOD_MAX 16
#define HEADER_ROOM 512 /* the status line and headers of an answer */

struct metrics_http {
    int fd;
    struct conn_server *server;
    metrics_render_fn render;
    void *ctx;
    char body[METRICS_TEXT_MAX];
    char answer[METRICS_TEXT_MAX + HEADER_ROOM];
};

/* --- the request --- */

static bool is_method_char(char c)
{
    return c >= 'A' && c <= 'Z';
}

/* The method, while it is still arriving: garbage is seen at its first byte. */
static bool method_prefix_ok(const char *buf, size_t len)
{
    for (size_t i = 0; i < len && i <= METHOD_MAX; i++) {
        if (buf[i] == ' ')
            return i > 0;
        if (!is_method_char(buf[i]))
            return false;
    }
    return len <= METHOD_MAX;
}

static bool target_is_metrics(const char *target, size_t len)
{
    /* The absolute form a proxy may send: http://host:port/metrics */
    if (len > 7 && strncmp(target, "http://", 7) == 0) {
        const char *slash = memchr(target + 7, '/', len - 7);
        if (!slash)
            return false;
        len -= (size_t)(slash - target);
        target = slash;
    }
    const char *query = memchr(target, '?', len);
    size_t path_len = query ? (size_t)(query - target) : len;
    return path_len == 8 && memcmp(target, "/metrics", 8) == 0;
}

static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/* "METHOD SP TARGET SP HTTP/1.x" (the CR already cut). 0 when it is fine and
 * for /metrics, else the status to answer. */
static int judge_request_line(const char *line, size_t len, bool *head)
{
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1 || sp1 == line)
        return 400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', len - (size_t)(target - line));
    if (!sp2 || sp2 == target)
        return 400;
    const char *version = sp2 + 1;
    size_t vlen = len - (size_t)(version - line);
    size_t tlen = (size_t)(sp2 - target);
    if (vlen != 8 || strncmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9' ||
        !printable(target, tlen))
        return 400;
    size_t mlen = (size_t)(sp1 - line);
    for (size_t i = 0; i < mlen; i++)
        if (!is_method_char(line[i]))
            return 400;
    if (!target_is_metrics(target, tlen))
        return 404;
    bool get = mlen == 3 && memcmp(line, "GET", 3) == 0;
    *head = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
    return get || *head ? 0 : 405;
}

/* Every header line has a name and a colon; the block ends with an empty line. */
static int judge_headers(const char *p, const char *end, bool full, bool eof)
{
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t len = (size_t)(nl - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len == 0)
            return 200;
        const char *colon = memchr(p, ':', len);
        if (!colon || colon == p || p[0] == ' ' || p[0] == '\t')
            return 400;
        p = nl + 1;
    }
    return full ? 431 : eof ? 400 : 0;
}

int metrics_http_classify(const char *buf, size_t len, bool full, bool eof, bool *head)
{
    *head = false;
    if (len == 0)
        return eof ? -1 : 0;
    if (!method_prefix_ok(buf, len))
        return 400;
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return full ? 414 : eof ? 400 : 0;
    size_t line_len = (size_t)(nl - buf);
    if (line_len && buf[line_len - 1] == '\r')
        line_len--;
    int verdict = judge_request_line(buf, line_len, head);
    int headers = judge_headers(nl + 1, buf + len, full, eof);
    if (headers == 0)
        return verdict == 0 || verdict == 404 || verdict == 405 ? 0 : verdict;
    if (headers != 200)
        return headers;
    return verdict ? verdict : 200;
}

/* --- the answer --- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

static void answer(struct metrics_http *h, struct conn *c, int status, bool head)
{
    const char *type = "text/plain; charset=utf-8";
    size_t body_len;
    if (status == 200) {
        body_len = h->render(h->ctx, h->body, sizeof h->body);
        if (body_len == 0)
            status = 500;
        type = "text/plain; version=0.0.4; charset=utf-8";
    }
    if (status != 200)
        body_len = (size_t)snprintf(h->body, sizeof h->body, "%s\n", reason_phrase(status));
    int n = snprintf(h->answer, HEADER_ROOM,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, reason_phrase(status), type, body_len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t total = (size_t)n;
    if (!head) {
        memcpy(h->answer + total, h->body, body_len);
        total += body_len;
    }
    conn_reply(c, h->answer, total);
}

static enum conn_action on_request(void *ctx, struct conn *c, const char *buf, size_t len, bool eof)
{
    bool head;
    int status = metrics_http_classify(buf, len, false, eof, &head);
    if (status == 0)
        return CONN_READ_MORE;
    if (status > 0)
        answer(ctx, c, status, head);
    return CONN_DONE;
}

static void on_too_large(void *ctx, struct conn *c, const char *buf, size_t len)
{
    bool head;
    int status = metrics_http_classify(buf, len, true, false, &head);
    if (status > 0)
        answer(ctx, c, status, head);
}

/* --- the endpoint --- */

static int parse_addr(const char *addr, struct listen_addr *a, char *err, size_t errlen)
{
    if (listen_parse(addr, a, err, errlen) < 0)
        return -1;
    if (a->kind == LISTEN_UNIX || strchr(addr, '=')) {
        snprintf(err, errlen, "address '%s': expected HOST:PORT, [IPV6]:PORT or PORT", addr);
        return -1;
    }
    return 0;
}

int metrics_http_validate(const char *addr, char *err, size_t errlen)
{
    struct listen_addr a;
    return parse_addr(addr, &a, err, errlen);
}

struct metrics_http *metrics_http_new(struct loop *loop, const char *addr, metrics_render_fn render,
                                      void *ctx, char *err, size_t errlen)
{
    struct listen_addr a;
    if (parse_addr(addr, &a, err, errlen) < 0)
        return NULL;
    struct metrics_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "cannot allocate the metrics endpoint");
        return NULL;
    }
    h->render = render;
    h->ctx = ctx;
    h->fd = listen_open(&a, METRICS_HTTP_MAX_CONNS, true, err, errlen);
    if (h->fd < 0) {
        free(h);
        return NULL;
    }
    struct conn_limits limits = {.max_conns = METRICS_HTTP_MAX_CONNS,
                                 .request_max = METRICS_HTTP_REQUEST_MAX,
                                 .deadline_ms = METRICS_HTTP_DEADLINE_MS};
    struct conn_handler handler = {.ctx = h, .request = on_request, .too_large = on_too_large};
    h->server = conn_server_new(loop, h->fd, &limits, &handler);
    if (!h->server) {
        snprintf(err, errlen, "cannot serve metrics on %s: event loop", addr);
        close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

void metrics_http_free(struct metrics_http *h)
{
    if (!h)
        return;
    conn_server_free(h->server);
    close(h->fd);
    free(h);
}
