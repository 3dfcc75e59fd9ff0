/* Health checks: the check loop over its own options, judging a response, and
 * the healthy/unhealthy state. libcurl's multi interface runs inside the event loop: curl
 * tells us which sockets to watch and when to wake it, we tell curl what
 * happened. At most one check is in flight; nothing here ever blocks. */
#include "resil/health.h"
#include "resil/health_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "resil/config.h"
#include "resil/log.h"
#include "resil/util.h"

#ifndef RESIL_VERSION
#define RESIL_VERSION "dev"
#endif

struct health {
    struct loop *loop;
    health_change_cb cb;
    void (*checked)(void *ctx, const struct health_check_result *r);
    void *cb_ctx;

    char *url;
    char *shown_url; /* url without its password: what logs and status.json show */
    char *field;     /* NULL: "status", then "overall_status" */
    char *unix_socket;
    uint64_t interval_ms;
    uint64_t timeout_ms;
    uint64_t start_period_ms;
    unsigned retries;

    CURLM *multi;
    CURL *easy;
    char curl_err[CURL_ERROR_SIZE];

    struct loop_timer *next_check; /* the health interval */
    struct loop_timer *curl_wake;  /* curl's own timeout */

    /* The sockets curl asked us to watch, so health_free can unwatch them. */
    int *fds;
    size_t nfds, fds_cap;

    char *body; /* HEALTH_BODY_MAX bytes, allocated once */
    size_t body_len;
    bool body_truncated;

    bool running;   /* between health_app_started and health_app_stopped */
    bool in_flight; /* the easy handle is in the multi */
    bool in_start_period;
    uint64_t app_started_ms;   /* loop_now_ms() */
    uint64_t check_started_ms; /* loop_now_ms() */
    enum health_verdict last_pass_verdict;

    struct health_state state;
};

static bool curl_global_ready;

const char *health_status_name(enum health_status s)
{
    switch (s) {
    case HEALTH_STATUS_STARTING:
        return "starting";
    case HEALTH_STATUS_HEALTHY:
        return "healthy";
    case HEALTH_STATUS_UNHEALTHY:
        return "unhealthy";
    case HEALTH_STATUS_UNKNOWN:
        break;
    }
    return "unknown";
}

/* ---- judging a response ---- */

static const char *const failing_verdicts[] = {"critical", "unhealthy", "down",
                                               "fail",     "failed",    "error"};
/* "warn" is what application/health+json (the IETF draft) calls it. */
static const char *const warning_verdicts[] = {"warning", "degraded", "warn"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(s, list[i]) == 0)
            return true;
    return false;
}

/* The verdict string of a JSON object body, or NULL when it has none. */
static const char *verdict_string(const cJSON *obj, const char *field)
{
    const char *const defaults[] = {"status", "overall_status"};
    const char *const *names = field ? &field : defaults;
    size_t n = field ? 1 : sizeof defaults / sizeof defaults[0];
    for (size_t i = 0; i < n; i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, names[i]);
        if (cJSON_IsString(item) && item->valuestring)
            return item->valuestring;
    }
    return NULL;
}

/* What an endpoint says reaches status.json and the logs: as valid UTF-8,
 * cut at a character boundary. */
static void copy_text(char *out, size_t outlen, const char *s)
{
    if (out && outlen)
        util_utf8_copy(out, outlen, s, s ? strlen(s) : 0);
}

enum health_verdict health_judge(long http_status, const char *body, size_t len, bool truncated,
                                 const char *field, char *verdict_out, size_t outlen)
{
    copy_text(verdict_out, outlen, "");
    if (http_status < 200 || http_status > 399)
        return HEALTH_VERDICT_FAIL;
    /* Half a JSON document says nothing reliable: the status code decides. */
    if (truncated || !body || len == 0)
        return HEALTH_VERDICT_PASS;

    cJSON *json = cJSON_ParseWithLength(body, len);
    enum health_verdict v = HEALTH_VERDICT_PASS;
    const char *text = cJSON_IsObject(json) ? verdict_string(json, field) : NULL;
    if (text) {
        copy_text(verdict_out, outlen, text);
        if (in_list(text, failing_verdicts, sizeof failing_verdicts / sizeof failing_verdicts[0]))
            v = HEALTH_VERDICT_FAIL;
        else if (in_list(text, warning_verdicts,
                         sizeof warning_verdicts / sizeof warning_verdicts[0]))
            v = HEALTH_VERDICT_WARN;
    }
    cJSON_Delete(json);
    return v;
}

/* ---- watching curl's sockets ---- */

static void socket_ready(struct loop *loop, int fd, uint32_t events, void *data);
static void process_finished(struct health *h);

static bool fd_watched(const struct health *h, int fd, size_t *index)
{
    for (size_t i = 0; i < h->nfds; i++) {
        if (h->fds[i] == fd) {
            if (index)
                *index = i;
            return true;
        }
    }
    return false;
}

static int remember_fd(struct health *h, int fd)
{
    int *fds = util_grow(h->fds, &h->fds_cap, h->nfds + 1, sizeof *fds);
    if (!fds)
        return -1;
    h->fds = fds;
    h->fds[h->nfds++] = fd;
    return 0;
}

static void unwatch_fd(struct health *h, int fd)
{
    size_t i;
    if (!fd_watched(h, fd, &i))
        return;
    loop_del_fd(h->loop, fd);
    h->fds[i] = h->fds[--h->nfds];
}

static uint32_t poll_events(int what)
{
    switch (what) {
    case CURL_POLL_IN:
        return EPOLLIN;
    case CURL_POLL_OUT:
        return EPOLLOUT;
    case CURL_POLL_INOUT:
        return EPOLLIN | EPOLLOUT;
    }
    return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct health *h = userp;
    if (what == CURL_POLL_REMOVE) {
        unwatch_fd(h, fd);
        return 0;
    }
    uint32_t events = poll_events(what);
    if (fd_watched(h, fd, NULL))
        return loop_mod_fd(h->loop, fd, events) < 0 ? -1 : 0;
    if (remember_fd(h, fd) < 0)
        return -1;
    if (loop_add_fd(h->loop, fd, events, socket_ready, h) < 0) {
        h->nfds--;
        return -1;
    }
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct health *h = userp;
    if (!h->curl_wake)
        return 0;
    /* curl must not be re-entered from here: even "now" goes through the loop. */
    if (timeout_ms < 0)
        loop_timer_disarm(h->curl_wake);
    else
        loop_timer_arm(h->curl_wake, (uint64_t)timeout_ms);
    return 0;
}

static void socket_ready(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)loop;
    struct health *h = data;
    int flags = 0;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    process_finished(h);
}

static void curl_wake_fired(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct health *h = data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process_finished(h);
}

/* The app must inherit none of our descriptors, even one opened between its
 * fork and its exec. */
static curl_socket_t open_cloexec_socket(void *clientp, curlsocktype purpose,
                                         struct curl_sockaddr *addr)
{
    (void)clientp;
    (void)purpose;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* A socket closed while still in epoll leaves a stale watch whose number the
 * next socket may reuse; unwatch first whatever curl told us before. */
static int close_socket(void *clientp, curl_socket_t fd)
{
    unwatch_fd(clientp, fd);
    return close(fd);
}

/* ---- one check ---- */

static size_t keep_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct health *h = userp;
    size_t n = size * nmemb;
    size_t room = HEALTH_BODY_MAX - h->body_len;
    size_t take = n < room ? n : room;
    memcpy(h->body + h->body_len, data, take);
    h->body_len += take;
    /* Returning short aborts the transfer: the rest of a huge body is never
     * read, and the status line already came. */
    if (take < n)
        h->body_truncated = true;
    return take;
}

static bool curl_has_https(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    for (const char *const *p = v->protocols; p && *p; p++)
        if (strcmp(*p, "https") == 0)
            return true;
    return false;
}

/* Proxy variables never apply to a health check. A libcurl with proxy support
 * (Debian's) would read http_proxy & co.: an empty CURLOPT_PROXY and a "*"
 * CURLOPT_NOPROXY stop it. A libcurl built without proxy support (the static
 * build's) never reads them, and refuses both options as unknown or not built
 * in: that refusal means no proxy can apply, not a failure. */
static CURLcode ignore_proxy_variables(CURL *e)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    if (rc == CURLE_UNKNOWN_OPTION || rc == CURLE_NOT_BUILT_IN)
        rc = CURLE_OK;
    return rc;
}

static int setup_easy(struct health *h, char *err, size_t errlen)
{
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, h->url);
    SET(CURLOPT_USERAGENT, "resil-init/" RESIL_VERSION);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* curl refuses a list naming a protocol it was built without. */
    const char *protocols = curl_has_https() ? "http,https" : "http";
    SET(CURLOPT_PROTOCOLS_STR, protocols);
    SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    if (rc == CURLE_OK)
        rc = ignore_proxy_variables(e);
    SET(CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms);
    /* A fresh connection per check, as Docker's probe makes: no idle socket
     * held between checks, none surviving into the app's next run. */
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_cloexec_socket);
    SET(CURLOPT_OPENSOCKETDATA, h);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    SET(CURLOPT_CLOSESOCKETDATA, h);
    SET(CURLOPT_WRITEFUNCTION, keep_body);
    SET(CURLOPT_WRITEDATA, h);
    SET(CURLOPT_ERRORBUFFER, h->curl_err);
    if (h->unix_socket)
        SET(CURLOPT_UNIX_SOCKET_PATH, h->unix_socket);
#undef SET
    if (rc != CURLE_OK)
        snprintf(err, errlen, "libcurl refused a health-check option: %s", curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

/* Timed by the loop's wait, not a timerfd: between checks the loop then
 * still waits in sigtimedwait, and a SIGTERM is forwarded as fast as with no
 * health check at all. (Millisecond precision is plenty for an interval.) */
static void arm_next_check(struct health *h, uint64_t delay_ms)
{
    loop_timer_arm_by_wait(h->next_check, delay_ms);
}

static void start_check(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct health *h = data;
    if (!h->running || h->in_flight)
        return;
    h->body_len = 0;
    h->body_truncated = false;
    h->curl_err[0] = '\0';
    h->check_started_ms = loop_now_ms();
    /* Adding the handle only asks for a timer: the transfer begins on the
     * next loop turn, never inside this call. */
    if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK) {
        log_error("health: cannot start a check of %s", h->shown_url);
        arm_next_check(h, h->interval_ms);
        return;
    }
    h->in_flight = true;
}

static void cancel_check(struct health *h)
{
    if (!h->in_flight)
        return;
    curl_multi_remove_handle(h->multi, h->easy);
    h->in_flight = false;
    loop_timer_disarm(h->curl_wake);
}

static void describe_curl_error(const struct health *h, CURLcode rc, struct health_check_result *r)
{
    long os_errno = 0;
    curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        char d[32];
        config_format_duration(d, sizeof d, h->timeout_ms);
        snprintf(r->error, sizeof r->error, "timeout after %s", d);
    } else if (rc == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED) {
        snprintf(r->error, sizeof r->error, "connection refused");
    } else if (rc == CURLE_COULDNT_CONNECT && os_errno && h->unix_socket) {
        /* curl would name port 80 of the URL's host, not the socket. */
        snprintf(r->error, sizeof r->error, "cannot connect to %.100s: %s", h->unix_socket,
                 strerror((int)os_errno));
    } else if (strstr(h->curl_err, "HTTP/0.9")) {
        snprintf(r->error, sizeof r->error, "not an HTTP response");
    } else if (!h->curl_err[0] && os_errno) {
        /* A curl built without verbose strings says only "Error": the OS says more. */
        snprintf(r->error, sizeof r->error, "%s", strerror((int)os_errno));
    } else {
        copy_text(r->error, sizeof r->error, h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc));
    }
}

static void judge_transfer(struct health *h, CURLcode rc, struct health_check_result *r)
{
    memset(r, 0, sizeof *r);
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
    /* The write error we caused ourselves on a huge body is no failure. */
    if (rc == CURLE_WRITE_ERROR && h->body_truncated)
        rc = CURLE_OK;
    if (rc != CURLE_OK) {
        r->verdict = HEALTH_VERDICT_FAIL;
        describe_curl_error(h, rc, r);
        return;
    }
    r->verdict = health_judge(r->http_status, h->body, h->body_len, h->body_truncated, h->field,
                              r->verdict_text, sizeof r->verdict_text);
    r->passed = r->verdict != HEALTH_VERDICT_FAIL;
    if (r->passed)
        return;
    if (r->verdict_text[0] && r->http_status >= 200 && r->http_status <= 399)
        snprintf(r->error, sizeof r->error, "verdict \"%s\" (HTTP %ld)", r->verdict_text,
                 r->http_status);
    else
        snprintf(r->error, sizeof r->error, "HTTP %ld", r->http_status);
}

/* ---- the state machine ---- */

static void record_result(struct health *h, const struct health_check_result *r)
{
    struct health_state *s = &h->state;
    s->last_check_at_ms = util_realtime_ms();
    s->last_http_status = r->http_status;
    copy_text(s->last_verdict, sizeof s->last_verdict, r->verdict_text);
    copy_text(s->last_error, sizeof s->last_error, r->error);
}

/* Docker's rule: a failure counts unless the check began inside the start
 * period while the app had not yet passed once. */
static bool failure_counts(const struct health *h)
{
    return !(h->in_start_period && h->check_started_ms - h->app_started_ms < h->start_period_ms);
}

static enum health_status next_status(struct health *h, const struct health_check_result *r)
{
    struct health_state *s = &h->state;
    if (r->passed) {
        h->in_start_period = false;
        s->consecutive_failures = 0;
        return HEALTH_STATUS_HEALTHY;
    }
    if (!failure_counts(h))
        return s->status;
    s->consecutive_failures++;
    unsigned retries = h->retries;
    return s->consecutive_failures >= retries ? HEALTH_STATUS_UNHEALTHY : s->status;
}

static void log_check(const struct health *h, const struct health_check_result *r, bool counted)
{
    if (!log_enabled(LOG_LEVEL_DEBUG))
        return;
    unsigned long long took = loop_now_ms() - h->check_started_ms;
    if (r->passed)
        log_debug("health: check of %s passed in %llums: HTTP %ld%s%s", h->shown_url, took,
                  r->http_status, r->verdict_text[0] ? ", verdict " : "", r->verdict_text);
    else
        log_debug("health: check of %s failed in %llums: %s%s", h->shown_url, took, r->error,
                  counted ? "" : " (start period, not counted)");
}

static void log_transition(const struct health *h, enum health_status from, enum health_status to,
                           const struct health_check_result *r)
{
    const struct log_field fields[] = {
        {.key = "url", .str = h->shown_url},
        {.key = "from", .str = health_status_name(from)},
        {.key = "to", .str = health_status_name(to)},
        {.key = "http_status", .num = r->http_status},
        {.key = "verdict", .str = r->verdict_text},
        {.key = "consecutive_failures", .num = h->state.consecutive_failures},
    };
    enum log_level level = to == HEALTH_STATUS_UNHEALTHY ? LOG_LEVEL_WARN : LOG_LEVEL_INFO;
    if (to == HEALTH_STATUS_UNHEALTHY)
        log_emit(level, false, fields, sizeof fields / sizeof fields[0],
                 "health: %s is unhealthy after %u consecutive failed check%s (last: %s)",
                 h->shown_url, h->state.consecutive_failures,
                 h->state.consecutive_failures == 1 ? "" : "s", r->error);
    else
        log_emit(level, false, fields, sizeof fields / sizeof fields[0],
                 "health: %s is %s (HTTP %ld%s%s)", h->shown_url, health_status_name(to),
                 r->http_status, r->verdict_text[0] ? ", verdict " : "", r->verdict_text);
}

/* A passing "warning"/"degraded" is worth one line when it appears or clears,
 * not one per check. */
static void log_warn_verdict_change(struct health *h, const struct health_check_result *r)
{
    if (!r->passed || r->verdict == h->last_pass_verdict)
        return;
    if (r->verdict == HEALTH_VERDICT_WARN)
        log_warn("health: %s reports verdict \"%s\" (HTTP %ld)", h->shown_url, r->verdict_text,
                 r->http_status);
    else
        log_info("health: %s no longer reports a warning (HTTP %ld)", h->shown_url, r->http_status);
    h->last_pass_verdict = r->verdict;
}

static void schedule_next(struct health *h)
{
    uint64_t due = h->check_started_ms + h->interval_ms;
    uint64_t now = loop_now_ms();
    arm_next_check(h, due > now ? due - now : 0);
}

/* Runs after curl has returned: the supervisor's callback comes last, so it
 * may stop, restart or re-check without us touching any state afterwards. */
static void process_finished(struct health *h)
{
    CURLMsg *msg;
    int left;
    bool done = false;
    CURLcode rc = CURLE_OK;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h->easy) {
            rc = msg->data.result;
            done = true;
        }
    }
    if (!done || !h->in_flight)
        return;

    struct health_check_result r;
    judge_transfer(h, rc, &r);
    r.duration_ms = loop_now_ms() - h->check_started_ms;
    cancel_check(h);
    record_result(h, &r);

    enum health_status from = h->state.status;
    bool counted = r.passed || failure_counts(h);
    enum health_status to = next_status(h, &r);
    log_check(h, &r, counted);
    h->state.status = to;
    log_warn_verdict_change(h, &r);
    schedule_next(h);
    if (to != from) {
        log_transition(h, from, to, &r);
        /* The change callback may stop the checks (see health.h): nothing of
         * the checker is touched after it but the observer's pointer. */
        if (h->cb)
            h->cb(h->cb_ctx, from, to, &r);
    }
    if (h->checked)
        h->checked(h->cb_ctx, &r);
}

void health_set_check_cb(struct health *h,
                         void (*checked)(void *ctx, const struct health_check_result *r))
{
    h->checked = checked;
}

/* ---- lifetime ---- */

/* Our own words: a static curl built without verbose strings has none. */
static const char *url_problem(CURLUcode uc)
{
    switch (uc) {
    case CURLUE_BAD_PORT_NUMBER:
        return "bad port number";
    case CURLUE_BAD_IPV6:
        return "bad IPv6 address";
    case CURLUE_BAD_HOSTNAME:
    case CURLUE_NO_HOST:
        return "bad or missing host name";
    case CURLUE_MALFORMED_INPUT:
        return "malformed URL";
    case CURLUE_OUT_OF_MEMORY:
        return "out of memory";
    default:
        return "not a valid URL";
    }
}

int health_validate_url(const char *url, char *err, size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "--health-url is empty");
        return -1;
    }
    CURLU *u = curl_url();
    char *scheme = NULL;
    int ret = -1;
    char shown[1024];
    util_redact_url(url, shown, sizeof shown);
    /* Any scheme parses, so a bad one gets our words, not "Unsupported URL scheme". */
    CURLUcode uc =
        u ? curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    if (uc != CURLUE_OK) {
        snprintf(err, errlen, "--health-url %s: %s", shown, url_problem(uc));
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(err, errlen, "--health-url %s: only http:// and https:// are allowed", shown);
    } else if (strcasecmp(scheme, "https") == 0 && !curl_has_https()) {
        snprintf(err, errlen, "--health-url %s: this build has no TLS, use http://", shown);
    } else {
        ret = 0;
    }
    curl_free(scheme);
    curl_url_cleanup(u);
    return ret;
}

/* libcurl opens descriptors of its own without O_CLOEXEC (the multi handle's
 * wake-up socket pair). They are the lowest free numbers at that moment, so
 * note those before and mark whichever got opened. */
#define FD_PROBE 8

static void note_free_fds(int *fds)
{
    size_t n = 0;
    for (int fd = 0; n < FD_PROBE && fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            fds[n++] = fd;
    while (n < FD_PROBE)
        fds[n++] = -1;
}

static void cloexec_opened(const int *fds)
{
    for (size_t i = 0; i < FD_PROBE; i++) {
        int flags = fds[i] >= 0 ? fcntl(fds[i], F_GETFD) : -1;
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fcntl(fds[i], F_SETFD, flags | FD_CLOEXEC);
    }
}

static int init_curl_handles(struct health *h, char *err, size_t errlen)
{
    if (!curl_global_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "cannot initialise libcurl");
            return -1;
        }
        curl_global_ready = true;
    }
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (!h->multi || !h->easy) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return 0;
}

static int init_curl(struct health *h, char *err, size_t errlen)
{
    int fresh[FD_PROBE];
    note_free_fds(fresh);
    int rc = init_curl_handles(h, err, errlen);
    cloexec_opened(fresh);
    return rc;
}

static int copy_options(struct health *h, const struct health_options *o)
{
    h->url = strdup(o->url ? o->url : "");
    size_t shown_len = h->url ? strlen(h->url) + 4 : 0;
    h->shown_url = h->url ? malloc(shown_len) : NULL;
    if (h->shown_url)
        util_redact_url(h->url, h->shown_url, shown_len);
    h->field = o->json_field ? strdup(o->json_field) : NULL;
    h->unix_socket = o->unix_socket ? strdup(o->unix_socket) : NULL;
    h->interval_ms = o->interval_ms;
    h->timeout_ms = o->timeout_ms;
    h->start_period_ms = o->start_period_ms;
    h->retries = o->retries;
    h->body = malloc(HEALTH_BODY_MAX);
    if (!h->url || !h->shown_url || (o->json_field && !h->field) ||
        (o->unix_socket && !h->unix_socket) || !h->body)
        return -1;
    return 0;
}

struct health *health_new(struct loop *loop, const struct health_options *opts, health_change_cb cb,
                          void *ctx, char *err, size_t errlen)
{
    struct health *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->cb = cb;
    h->cb_ctx = ctx;
    h->state.status = HEALTH_STATUS_UNKNOWN;
    if (copy_options(h, opts) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (init_curl(h, err, errlen) < 0)
        goto fail;
    if (setup_easy(h, err, errlen) < 0)
        goto fail;
    h->next_check = loop_timer_new(loop, start_check, h);
    h->curl_wake = loop_timer_new(loop, curl_wake_fired, h);
    if (!h->next_check || !h->curl_wake) {
        snprintf(err, errlen, "cannot create health-check timers: %s", strerror(errno));
        goto fail;
    }
    return h;
fail:
    health_free(h);
    return NULL;
}

void health_app_started(struct health *h)
{
    if (!h)
        return;
    cancel_check(h);
    h->running = true;
    h->app_started_ms = loop_now_ms();
    h->in_start_period = true;
    h->last_pass_verdict = HEALTH_VERDICT_PASS;
    h->state.status = HEALTH_STATUS_STARTING;
    h->state.consecutive_failures = 0;
    arm_next_check(h, h->interval_ms);
}

void health_app_stopped(struct health *h)
{
    if (!h)
        return;
    h->running = false;
    cancel_check(h);
    loop_timer_disarm(h->next_check);
}

const char *health_shown_url(const struct health *h)
{
    return h->shown_url;
}

const struct health_state *health_get_state(const struct health *h)
{
    return &h->state;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    cancel_check(h);
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    while (h->nfds)
        unwatch_fd(h, h->fds[h->nfds - 1]);
    loop_timer_free(h->next_check);
    loop_timer_free(h->curl_wake);
    free(h->fds);
    free(h->body);
    free(h->url);
    free(h->shown_url);
    free(h->field);
    free(h->unix_socket);
    free(h);
}
