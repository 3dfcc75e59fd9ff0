/* --metrics: GET /metrics over HTTP/1.0 and 1.1, served inside the event loop
 * through the conn module (bounded request, deadline, cap on connections). */
#ifndef RESIL_METRICS_HTTP_H
#define RESIL_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "resil/loop.h"

/* Open connections at once, the request bound and the per-connection deadline. */
#define METRICS_HTTP_MAX_CONNS 64
#define METRICS_HTTP_REQUEST_MAX 4096
#define METRICS_HTTP_DEADLINE_MS 5000

/* What a request gets, from the bytes received so far: 0 when more are needed,
 * -1 to close without an answer (nothing was sent), else the HTTP status:
 * 200 (GET or HEAD /metrics; *head set for HEAD), 400, 404, 405, 414 (request
 * line over the buffer), 431 (headers over it). full: the buffer is full;
 * eof: the client sends no more. */
int metrics_http_classify(const char *buf, size_t len, bool full, bool eof, bool *head);

/* The validator of the --metrics row: HOST:PORT, [IPV6]:PORT or PORT. */
int metrics_http_validate(const char *addr, char *err, size_t errlen);

/* Writes the exposition text into buf; its length, 0 when it failed. */
typedef size_t (*metrics_render_fn)(void *ctx, char *buf, size_t len);

struct metrics_http;
/* Binds addr (a port in use is an error naming it). NULL with err filled. */
struct metrics_http *metrics_http_new(struct loop *loop, const char *addr, metrics_render_fn render,
                                      void *ctx, char *err, size_t errlen);
void metrics_http_free(struct metrics_http *h);

#endif
