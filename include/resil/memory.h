/* Memory: the monitor of the container's memory — a sample of the cgroup's
 * limit, working set, pressure and OOM kills, the tier it makes, and the watch
 * that keeps it fresh while the app runs. */
#ifndef RESIL_MEMORY_H
#define RESIL_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resil/config.h"
#include "resil/loop.h"

enum memory_tier {
    MEMORY_TIER_UNKNOWN,
    MEMORY_TIER_NORMAL,
    MEMORY_TIER_WARNING,
    MEMORY_TIER_CRITICAL
};

struct memory_sample {
    bool available;       /* false: no usable cgroup files */
    bool limited;         /* a limit exists */
    uint64_t limit_bytes; /* when limited */
    uint64_t usage_bytes;
    uint64_t working_set_bytes; /* usage - inactive file cache */
    double psi_some_avg10;      /* < 0 when the cgroup has no memory.pressure */
    uint64_t oom_kills;         /* cumulative oom_kill count of the cgroup */
    enum memory_tier tier;
};

/* The monitor's options, filled by the supervisor from the configuration. */
struct memory_options {
    const char *cgroup_root;          /* --cgroup-root; NULL: find our cgroup */
    struct config_size_spec warn;     /* --memory-warn */
    struct config_size_spec critical; /* --memory-critical */
    struct config_size_spec restart;  /* --memory-restart; !set: off */
    uint64_t restart_for_ms;          /* --memory-restart-for */
    uint64_t interval_ms;             /* --memory-interval */
    /* Someone acts on every tier change (--pressure-signal): sample the
     * working set live rather than only on pressure events. */
    bool sample_for_tier_changes;
};

const char *memory_tier_name(enum memory_tier t);

/* --- the monitor --- */
struct memory_monitor;

/* Callbacks fire only while watching (memory_watch(m, true) .. (m, false)), from
 * loop events or from memory_refresh / memory_oom_since_start called then; the
 * read inside memory_new is a silent baseline. Any may be NULL. A callback may call memory_watch(m,
 * false) but must not call memory_free. */
struct memory_callbacks {
    void *ctx;
    void (*tier_changed)(void *ctx, enum memory_tier old_tier, enum memory_tier new_tier);
    /* the working set stayed at or above --memory-restart for --memory-restart-for */
    void (*restart_needed)(void *ctx, const struct memory_sample *s);
    /* the cgroup's oom_kill count rose */
    void (*oom_kill)(void *ctx, uint64_t total);
};

/* Never fails: odd or missing files make the sample unavailable, with one warning.
 * opts is read, not copied: it must outlive the monitor. */
struct memory_monitor *memory_new(struct loop *loop, const struct memory_options *opts,
                                  const struct memory_callbacks *cb);
/* Reads the files now and returns the fresh sample. */
const struct memory_sample *memory_refresh(struct memory_monitor *m);
const struct memory_sample *memory_current(const struct memory_monitor *m);
/* Brackets one run of the app, for "did this run end in an OOM kill?": the
 * baseline is the current sample, so call memory_refresh just before a start. */
void memory_app_started(struct memory_monitor *m);
bool memory_oom_since_start(struct memory_monitor *m);
/* on: POLLPRI on memory.events where it is a real cgroup2 file, a PSI trigger on
 * memory.pressure (created once: at a run's first memory event or a start above
 * tier normal, else one PSI window into the run; then kept), and a sample every
 * --memory-interval where needed (see update_timer in memory.c). off: out of
 * the loop, timers disarmed. Neither reads the files. */
void memory_watch(struct memory_monitor *m, bool on);
void memory_free(struct memory_monitor *m);

#endif
