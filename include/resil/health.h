/* Health checks: libcurl's multi interface driven by the event loop's fds and
 * timers, one request at a time, judged by HTTP status and a JSON verdict. */
#ifndef RESIL_HEALTH_H
#define RESIL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resil/loop.h"

#define HEALTH_BODY_MAX (64 * 1024)

enum health_status {
    HEALTH_STATUS_UNKNOWN,
    HEALTH_STATUS_STARTING,
    HEALTH_STATUS_HEALTHY,
    HEALTH_STATUS_UNHEALTHY
};

enum health_verdict { HEALTH_VERDICT_PASS, HEALTH_VERDICT_WARN, HEALTH_VERDICT_FAIL };

struct health_check_result {
    bool passed;
    enum health_verdict verdict;
    long http_status;      /* 0 when no response */
    char verdict_text[64]; /* the body's verdict string, may be empty */
    char error[160];       /* why it failed, in words ("HTTP 503", "timeout after 5s", ...) */
    uint64_t duration_ms;  /* from the request's start to its verdict */
};

struct health_state {
    enum health_status status;
    unsigned consecutive_failures;
    long long last_check_at_ms; /* CLOCK_REALTIME ms, 0 = never */
    long last_http_status;
    char last_verdict[64];
    char last_error[160];
};

/* Called when the status changes (starting -> healthy, healthy -> unhealthy, ...).
 * It may call health_app_stopped or health_app_started on the checker (nothing
 * touches it after the call), but not health_free. */
typedef void (*health_change_cb)(void *ctx, enum health_status old_status,
                                 enum health_status new_status,
                                 const struct health_check_result *last);

struct health;

/* Whether url is one resil-init can check (http, or https where built with
 * TLS); 0, or -1 with one line in err naming it. */
int health_validate_url(const char *url, char *err, size_t errlen);

/* The health loop's options, filled by the supervisor from the configuration
 * (which enforces their limits: interval, timeout and retries are positive). */
struct health_options {
    const char *url;         /* --health-url, accepted by health_validate_url */
    const char *unix_socket; /* --health-unix-socket; NULL: connect by the URL */
    const char *json_field;  /* --health-json-field; NULL: "status", then "overall_status" */
    uint64_t interval_ms;
    uint64_t timeout_ms;
    uint64_t start_period_ms;
    unsigned retries;
};

/* The options are copied. The URL is not checked again here: that is done
 * once, before anything starts. NULL with err filled when libcurl cannot be
 * set up or memory runs out. */
struct health *health_new(struct loop *loop, const struct health_options *opts, health_change_cb cb,
                          void *ctx, char *err, size_t errlen);
/* The app has (re)started: status -> starting, first check one interval from now. */
void health_app_started(struct health *h);
/* The app is stopping or gone: cancel the timer and any check in flight. */
void health_app_stopped(struct health *h);
const struct health_state *health_get_state(const struct health *h);
/* The URL as logs and status.json show it: without the password. */
const char *health_shown_url(const struct health *h);
/* Optional: called after every finished check with its result (after the
 * change callback, if any), so status.json and the metrics show it. */
void health_set_check_cb(struct health *h,
                         void (*checked)(void *ctx, const struct health_check_result *r));
const char *health_status_name(enum health_status s);
void health_free(struct health *h);

#endif
