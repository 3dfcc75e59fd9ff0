/* The metrics registry and its Prometheus text rendering. Counters are kept as
 * integers and every family is written on every scrape, at 0 until something
 * happens, so that increase() sees the first restart. */
#include "resil/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

const double metrics_duration_bounds[METRICS_DURATION_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

const char *const metrics_restart_reasons[METRICS_RESTART_REASONS] = {
    "crash", "unhealthy", "memory", "oom", "exit", "manual",
};

void metrics_init(struct metrics *m, bool health_configured)
{
    memset(m, 0, sizeof *m);
    m->health_configured = health_configured;
    m->tier = MEMORY_TIER_UNKNOWN;
}

int metrics_count_restart(struct metrics *m, const char *reason)
{
    for (int i = 0; i < METRICS_RESTART_REASONS; i++) {
        if (reason && strcmp(reason, metrics_restart_reasons[i]) == 0) {
            m->restarts[i]++;
            return 0;
        }
    }
    return -1;
}

void metrics_app_started(struct metrics *m, long long realtime_ms, bool emergency)
{
    m->app_up = true;
    m->app_start_ms = realtime_ms;
    m->emergency = emergency;
    m->healthy = false;
}

void metrics_app_exited(struct metrics *m, int wait_status)
{
    m->app_up = false;
    m->healthy = false;
    if (WIFSIGNALED(wait_status)) {
        m->last_exit_signal = WTERMSIG(wait_status);
        m->last_exit_code = 128 + m->last_exit_signal;
    } else {
        m->last_exit_signal = 0;
        m->last_exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 0;
    }
}

void metrics_health_checked(struct metrics *m, bool passed, double seconds)
{
    if (passed)
        m->checks_passed++;
    else
        m->checks_failed++;
    if (seconds < 0)
        seconds = 0;
    size_t b = 0;
    while (b < METRICS_DURATION_BUCKETS && seconds > metrics_duration_bounds[b])
        b++;
    m->duration_counts[b]++;
    m->duration_sum += seconds;
}

void metrics_set_healthy(struct metrics *m, bool healthy)
{
    m->healthy = healthy;
}

void metrics_set_memory(struct metrics *m, const struct memory_sample *s)
{
    if (!s || !s->available)
        return;
    m->memory_known = true;
    m->memory_limit = s->limited ? s->limit_bytes : 0;
    m->working_set = s->working_set_bytes;
    m->tier = s->tier;
    if (!m->oom_baseline_set) {
        m->oom_baseline_set = true;
        m->oom_baseline = s->oom_kills;
    }
    /* A count below the baseline means a new cgroup: take it as the new zero. */
    if (s->oom_kills < m->oom_baseline)
        m->oom_baseline = s->oom_kills;
    uint64_t since = s->oom_kills - m->oom_baseline;
    if (since > m->oom_kills)
        m->oom_kills = since;
}

/* --- rendering --- */

struct out {
    char *buf;
    size_t len, used;
    bool overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->used) {
        o->overflow = true;
        return;
    }
    o->used += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct out *o, const char *name, const char *help, unsigned long long v)
{
    family(o, name, "gauge", help);
    put(o, "%s %llu\n", name, v);
}

static void render_app(struct out *o, const struct metrics *m)
{
    family(o, "resil_app_restarts_total", "counter",
           "Restarts of the app by resil-init, by the reason of the restart.");
    for (int i = 0; i < METRICS_RESTART_REASONS; i++)
        put(o, "resil_app_restarts_total{reason=\"%s\"} %llu\n", metrics_restart_reasons[i],
            (unsigned long long)m->restarts[i]);
    gauge(o, "resil_app_up", "1 while the app runs, 0 between runs.", m->app_up);
    family(o, "resil_app_start_time_seconds", "gauge",
           "Start time of the app's current or last run, in seconds since the epoch.");
    put(o, "resil_app_start_time_seconds %lld.%03lld\n", m->app_start_ms / 1000,
        m->app_start_ms % 1000);
    family(o, "resil_app_last_exit_code", "gauge",
           "Exit status of the app's last run, 128+S after death by signal S; 0 before any.");
    put(o, "resil_app_last_exit_code %d\n", m->last_exit_code);
    family(o, "resil_app_last_exit_signal", "gauge",
           "Signal that ended the app's last run, 0 when it exited by itself or before any.");
    put(o, "resil_app_last_exit_signal %d\n", m->last_exit_signal);
}

static void render_health(struct out *o, const struct metrics *m)
{
    family(o, "resil_health_checks_total", "counter", "Health checks of the app, by result.");
    put(o, "resil_health_checks_total{result=\"pass\"} %llu\n",
        (unsigned long long)m->checks_passed);
    put(o, "resil_health_checks_total{result=\"fail\"} %llu\n",
        (unsigned long long)m->checks_failed);
    const char *h = "resil_health_check_duration_seconds";
    family(o, h, "histogram", "Duration of the app's health checks, timeouts included.");
    unsigned long long cumulative = 0;
    for (size_t b = 0; b < METRICS_DURATION_BUCKETS; b++) {
        cumulative += m->duration_counts[b];
        put(o, "%s_bucket{le=\"%g\"} %llu\n", h, metrics_duration_bounds[b], cumulative);
    }
    cumulative += m->duration_counts[METRICS_DURATION_BUCKETS];
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n", h, cumulative);
    put(o, "%s_sum %.6f\n", h, m->duration_sum);
    put(o, "%s_count %llu\n", h, cumulative);
    bool healthy = m->health_configured ? m->healthy : m->app_up;
    gauge(o, "resil_health_healthy",
          "1 while the app's last health check passed (without health checks: while it runs).",
          healthy);
}

static void render_memory(struct out *o, const struct metrics *m)
{
    gauge(o, "resil_memory_limit_bytes", "Memory limit of the container's cgroup, 0 when none.",
          (unsigned long long)m->memory_limit);
    gauge(o, "resil_memory_working_set_bytes",
          "Working set of the container's cgroup: usage minus inactive file cache.",
          (unsigned long long)m->working_set);
    family(o, "resil_memory_tier", "gauge", "1 for the current memory tier, 0 for the others.");
    static const enum memory_tier tiers[] = {MEMORY_TIER_NORMAL, MEMORY_TIER_WARNING,
                                             MEMORY_TIER_CRITICAL};
    for (size_t i = 0; i < sizeof tiers / sizeof tiers[0]; i++)
        put(o, "resil_memory_tier{tier=\"%s\"} %d\n", memory_tier_name(tiers[i]),
            m->tier == tiers[i]);
    family(o, "resil_memory_oom_kills_total", "counter",
           "OOM kills in the container's cgroup since resil-init started.");
    put(o, "resil_memory_oom_kills_total %llu\n", (unsigned long long)m->oom_kills);
    gauge(o, "resil_emergency", "1 when the app's current or last run started in emergency mode.",
          m->emergency);
}

size_t metrics_render(const struct metrics *m, char *buf, size_t len)
{
    struct out o = {.buf = buf, .len = len};
    if (!buf || len == 0)
        return 0;
    buf[0] = '\0';
    render_app(&o, m);
    render_health(&o, m);
    render_memory(&o, m);
    if (o.overflow) {
        buf[0] = '\0';
        return 0;
    }
    return o.used;
}
