/* The metrics of SPEC §10: a registry the supervisor updates as things happen,
 * and its rendering in the Prometheus text format 0.0.4 into a caller's buffer
 * (nothing allocated per scrape). Served by metrics_http and the control socket. */
#ifndef RESIL_METRICS_H
#define RESIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resil/memory.h"

/* Upper bounds (seconds) of the health-check duration histogram, +Inf aside:
 * from a fast local answer to the default 5 s timeout and a bit past it. */
#define METRICS_DURATION_BUCKETS 12
extern const double metrics_duration_bounds[METRICS_DURATION_BUCKETS];

/* The reasons of resil_app_restarts_total, in RESIL_RESTART_REASON's words. */
#define METRICS_RESTART_REASONS 6
extern const char *const metrics_restart_reasons[METRICS_RESTART_REASONS];

/* Big enough for every family with all its samples; metrics_render says 0 if not. */
#define METRICS_TEXT_MAX 8192

struct metrics {
    uint64_t restarts[METRICS_RESTART_REASONS];
    bool app_up;
    long long app_start_ms; /* CLOCK_REALTIME ms of the last start, 0 before */
    int last_exit_code;     /* exit status, or 128+S after death by signal S */
    int last_exit_signal;   /* 0 when it exited */
    bool health_configured;
    uint64_t checks_passed, checks_failed;
    uint64_t duration_counts[METRICS_DURATION_BUCKETS + 1]; /* per bucket, the last is +Inf */
    double duration_sum;
    bool healthy;
    bool memory_known;
    uint64_t memory_limit; /* 0: unlimited or unknown */
    uint64_t working_set;
    enum memory_tier tier;
    bool oom_baseline_set;
    uint64_t oom_baseline; /* the cgroup's count when resil-init started */
    uint64_t oom_kills;    /* since then */
    bool emergency;
};

void metrics_init(struct metrics *m, bool health_configured);
/* reason: one of metrics_restart_reasons; -1 for any other word. */
int metrics_count_restart(struct metrics *m, const char *reason);
void metrics_app_started(struct metrics *m, long long realtime_ms, bool emergency);
/* wait_status as waitpid gives it. */
void metrics_app_exited(struct metrics *m, int wait_status);
void metrics_health_checked(struct metrics *m, bool passed, double seconds);
void metrics_set_healthy(struct metrics *m, bool healthy);
void metrics_set_memory(struct metrics *m, const struct memory_sample *s);

/* The exposition text into buf (NUL-terminated); its length, or 0 when len is
 * too small. */
size_t metrics_render(const struct metrics *m, char *buf, size_t len);

#endif
