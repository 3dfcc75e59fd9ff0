/* Memory: the container's cgroup limit, working set, pressure and OOM kills,
 * the tier they make, and the emergency-mode decision. */
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

/* --- parsers of cgroup file text (pure, unit-tested) --- */
/* "max" or a number; *unlimited set for "max" and the v1 near-2^63 value. */
int memory_parse_limit(const char *text, uint64_t *bytes, bool *unlimited);
int memory_parse_u64(const char *text, uint64_t *out);
/* a "key value" line file (memory.stat, memory.events, memory.oom_control) */
int memory_parse_keyed(const char *text, const char *key, uint64_t *out);
/* memory.pressure: the "some avg10=" value */
int memory_parse_psi_some_avg10(const char *text, double *out);
/* /proc/self/cgroup: the v2 path ("0::/x") and the v1 memory path ("N:memory:/y"); each
 * out may be NULL; a missing one is set to "" */
int memory_parse_proc_cgroup(const char *text, char *v2_path, size_t v2len, char *v1_path,
                             size_t v1len);

/* Where the memory files of our cgroup are, found from /proc/self/cgroup and
 * /proc/self/mountinfo text (memory_new does this when --cgroup-root is not given). */
#define MEMORY_PATH_MAX 4096
struct memory_location {
    int version;                   /* 1 or 2; 0: decide by the files present in dir */
    char dir[MEMORY_PATH_MAX];     /* our cgroup's memory files; "" when none found */
    char top[MEMORY_PATH_MAX];     /* mount point the limit walk stops at; "": no walk */
    char psi_dir[MEMORY_PATH_MAX]; /* where memory.pressure is looked for; "": nowhere */
};
/* Returns 0, or -1 when no memory controller is found (loc->dir is then ""). */
int memory_locate(const char *proc_cgroup, const char *mountinfo, struct memory_location *loc);

enum memory_tier memory_tier_for(const struct memory_sample *s, const struct resil_config *cfg);
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

/* Never fails: odd or missing files make the sample unavailable, with one warning. */
struct memory_monitor *memory_new(struct loop *loop, const struct resil_config *cfg,
                                  const struct memory_callbacks *cb);
/* memory_new with the location already known (tests: fake trees with a parent walk). */
struct memory_monitor *memory_new_at(struct loop *loop, const struct resil_config *cfg,
                                     const struct memory_callbacks *cb,
                                     const struct memory_location *loc);
/* Reads the files now and returns the fresh sample. */
const struct memory_sample *memory_refresh(struct memory_monitor *m);
const struct memory_sample *memory_current(const struct memory_monitor *m);
/* Brackets one run of the app, for "did this run end in an OOM kill?": the
 * baseline is the current sample, so call memory_refresh just before a start. */
void memory_app_started(struct memory_monitor *m);
bool memory_oom_since_start(struct memory_monitor *m);
/* on: POLLPRI on memory.events where it is a real cgroup2 file, a PSI trigger on
 * memory.pressure (created once, one PSI window into the first run, and kept),
 * and a sample every --memory-interval where needed (see update_timer in
 * memory.c). off: out of the loop, timers disarmed. Neither reads the files. */
void memory_watch(struct memory_monitor *m, bool on);
void memory_free(struct memory_monitor *m);

/* Environment for a start of the app: base env (envp) + RESIL_* variables + the emergency
 * set (when emergency) + runtime hints. Returns a NULL-terminated malloc'd vector of
 * malloc'd strings (free with memory_env_free); NULL only when out of memory. */
char **memory_build_env(char **envp, const struct resil_config *cfg, const struct memory_sample *s,
                        bool emergency, unsigned restart_count, const char *restart_reason);
void memory_env_free(char **env);

#endif
