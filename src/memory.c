/* Memory: the monitor over the cgroup backend (cgroup.c). It owns the tier a
 * reading makes, the watch that keeps readings fresh while the app runs (PSI
 * trigger, memory.events, sampling timers), --memory-restart's clock and the
 * "did this run end in an OOM kill?" bracket. What the app is told about
 * memory at a start is appenv.c's; what to do about it is the supervisor's.
 *
 * A reading that fails only makes the sample unavailable (tier unknown). */
#include "resil/memory.h"
#include "resil/memory_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "resil/cgroup.h"
#include "resil/log.h"

/* 150 ms of stall within 2 s; unprivileged triggers need a 2 s window multiple.
 * The kernel overwrites the last byte written with NUL, so the NUL is sent. */
static const char psi_trigger[] = "some 150000 2000000";

#define PSI_WARNING 10.0
#define PSI_CRITICAL 40.0
/* A floor on the monitor's own cost, whatever --memory-interval says. */
#define MIN_INTERVAL_MS 10
/* Enough for memory.events (six short lines); drain reads until the end anyway. */
#define DRAIN_BUF 512

/* ------------------------------------------------------------------------ */
/* Tiers                                                                     */
/* ------------------------------------------------------------------------ */

/* A percentage needs a limit to mean anything: without one it never triggers. */
static bool threshold(const struct config_size_spec *spec, const struct memory_sample *s,
                      uint64_t *out)
{
    if (!spec || !spec->set || (spec->is_percent && !s->limited))
        return false;
    *out = config_size_spec_bytes(spec, s->limited ? s->limit_bytes : 0);
    return true;
}

enum memory_tier memory_tier_for(const struct memory_sample *s, const struct memory_options *o)
{
    uint64_t at;
    if (!s || !s->available)
        return MEMORY_TIER_UNKNOWN;
    enum memory_tier t = MEMORY_TIER_NORMAL;
    if (o && threshold(&o->warn, s, &at) && s->working_set_bytes >= at)
        t = MEMORY_TIER_WARNING;
    if (o && threshold(&o->critical, s, &at) && s->working_set_bytes >= at)
        t = MEMORY_TIER_CRITICAL;
    if (s->psi_some_avg10 >= PSI_CRITICAL)
        t = MEMORY_TIER_CRITICAL;
    else if (s->psi_some_avg10 >= PSI_WARNING && t < MEMORY_TIER_WARNING)
        t = MEMORY_TIER_WARNING;
    return t;
}

const char *memory_tier_name(enum memory_tier t)
{
    switch (t) {
    case MEMORY_TIER_NORMAL:
        return "normal";
    case MEMORY_TIER_WARNING:
        return "warning";
    case MEMORY_TIER_CRITICAL:
        return "critical";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------------------ */
/* The monitor                                                               */
/* ------------------------------------------------------------------------ */

struct memory_monitor {
    struct loop *loop;
    const struct memory_options *opts; /* the caller's, outliving the monitor */
    struct memory_callbacks cb;
    struct cgroup_reader *cg;
    struct memory_sample cur;
    bool warned;    /* the current breakage was logged */
    bool oom_known; /* cur.oom_kills is a real reading */
    bool watching;
    struct loop_timer *timer;
    int psi_fd;
    bool psi_tried;   /* the trigger is created at most once */
    bool psi_in_loop; /* registered with the loop (while watching) */
    int events_fd;
    bool start_known;
    uint64_t oom_at_start;
    bool above; /* working set at or above --memory-restart since above_since */
    bool restart_fired;
    uint64_t above_since_ms;
};

/* A failed reading keeps nothing but an unknown tier. */
static struct memory_sample sample_of(const struct cgroup_memory *raw, bool ok)
{
    struct memory_sample s = {.psi_some_avg10 = -1};
    if (!ok)
        return s;
    s.available = true;
    s.limited = raw->limited;
    s.limit_bytes = raw->limit_bytes;
    s.usage_bytes = raw->usage_bytes;
    s.working_set_bytes = raw->working_set_bytes;
    s.psi_some_avg10 = raw->psi_some_avg10;
    s.oom_kills = raw->oom_kills;
    return s;
}

/* One warning per breakage: a broken file must not flood the log every sample. */
static void note_health(struct memory_monitor *m, bool ok)
{
    if (ok) {
        if (m->warned)
            log_info("memory: cgroup memory files are readable again");
        m->warned = false;
    } else if (!m->warned) {
        log_warn("memory: %s; memory tier unknown", cgroup_reader_error(m->cg));
        m->warned = true;
    }
}

/* Samples measure how long the working set stays high; a gap resets it. */
static bool restart_due(struct memory_monitor *m, const struct memory_sample *s)
{
    uint64_t at;
    if (!s->available || !threshold(&m->opts->restart, s, &at) || s->working_set_bytes < at) {
        m->above = false;
        m->restart_fired = false;
        return false;
    }
    uint64_t now = loop_now_ms();
    if (!m->above) {
        m->above = true;
        m->above_since_ms = now;
    }
    if (m->restart_fired || now - m->above_since_ms < m->opts->restart_for_ms)
        return false;
    m->restart_fired = true;
    return true;
}

static uint64_t interval_ms(const struct memory_monitor *m)
{
    uint64_t ms = m->opts->interval_ms;
    return ms < MIN_INTERVAL_MS ? MIN_INTERVAL_MS : ms;
}

/* The next sample comes after --memory-interval, or sooner when that is when
 * --memory-restart-for runs out, so a restart is not late by up to an interval. */
static uint64_t next_delay_ms(const struct memory_monitor *m)
{
    uint64_t delay = interval_ms(m);
    if (m->above && !m->restart_fired) {
        uint64_t due = m->above_since_ms + m->opts->restart_for_ms;
        uint64_t now = loop_now_ms();
        uint64_t left = due > now ? due - now : 0;
        if (left < delay)
            delay = left;
    }
    return delay;
}

/* Nothing is sampled unless something acts on it (MEMORY_WATCH_ALL). Then
 * periodic samples are taken when an option needs the live working set
 * (--memory-restart: how long it stays high; --pressure-signal: when the tier
 * rises; --memory-interval: asked for), and otherwise only as the fallback the
 * README's Memory section promises: when no event source (memory.events, a PSI
 * trigger) could be armed and a tier threshold can be reached at all (a limit
 * exists, or a threshold is absolute). Events cost nothing while idle: an idle
 * resil-init with no health loop then makes no wake-ups at all. */
static bool thresholds_reachable(const struct memory_monitor *m)
{
    return m->cur.limited || (m->opts->warn.set && !m->opts->warn.is_percent) ||
           (m->opts->critical.set && !m->opts->critical.is_percent);
}

static bool options_need_sampling(const struct memory_monitor *m)
{
    return m->opts->restart.set || m->opts->sample_for_tier_changes || m->opts->sample_asked;
}

/* Asked-for sampling goes on through unreadable samples, so a file broken for a
 * moment does not silence --memory-restart for the rest of the run; the
 * fallback runs only while there is something readable to fall back on. */
static bool should_sample(const struct memory_monitor *m)
{
    bool fallback =
        m->cur.available && m->psi_fd < 0 && m->events_fd < 0 && thresholds_reachable(m);
    return m->watching && m->opts->watch == MEMORY_WATCH_ALL &&
           (options_need_sampling(m) || fallback);
}

static void update_timer(struct memory_monitor *m)
{
    if (!m->timer)
        return;
    if (should_sample(m))
        loop_timer_arm(m->timer, next_delay_ms(m));
    else if (loop_timer_armed(m->timer))
        loop_timer_disarm(m->timer);
}

static void notify(struct memory_monitor *m, const struct memory_sample *old, bool oom_was_known,
                   bool restart)
{
    const struct memory_sample *s = &m->cur;
    if (s->available && oom_was_known && s->oom_kills > old->oom_kills && m->cb.oom_kill)
        m->cb.oom_kill(m->cb.ctx, s->oom_kills);
    if (m->watching && s->tier != old->tier && m->cb.tier_changed)
        m->cb.tier_changed(m->cb.ctx, old->tier, s->tier);
    if (m->watching && restart && m->cb.restart_needed)
        m->cb.restart_needed(m->cb.ctx, s);
}

/* quiet: a baseline taken at the edges of a run, which is news to nobody. */
static void refresh(struct memory_monitor *m, bool quiet)
{
    struct cgroup_memory raw;
    bool ok = cgroup_read(m->cg, &raw) == 0;
    struct memory_sample s = sample_of(&raw, ok);
    note_health(m, ok);
    if (!ok) /* keep the count, or a recovery would look like a burst of OOM kills */
        s.oom_kills = m->cur.oom_kills;
    s.tier = memory_tier_for(&s, m->opts);
    struct memory_sample old = m->cur;
    bool oom_was_known = m->oom_known;
    m->cur = s;
    m->oom_known = m->oom_known || ok;
    if (m->watching && !quiet)
        notify(m, &old, oom_was_known, restart_due(m, &s));
    update_timer(m);
}

const struct memory_sample *memory_refresh(struct memory_monitor *m)
{
    if (!m)
        return NULL;
    refresh(m, false);
    return &m->cur;
}

const struct memory_sample *memory_current(const struct memory_monitor *m)
{
    return m ? &m->cur : NULL;
}

/* The supervisor has just refreshed the sample to decide on emergency mode, so
 * the start's baseline is that sample: no second read of the files. */
void memory_app_started(struct memory_monitor *m)
{
    if (!m)
        return;
    m->start_known = m->oom_known;
    m->oom_at_start = m->cur.oom_kills;
    m->above = false;
    m->restart_fired = false;
}

bool memory_oom_since_start(struct memory_monitor *m)
{
    if (!m)
        return false;
    memory_refresh(m);
    return m->start_known && m->cur.oom_kills > m->oom_at_start;
}

static void arm_psi_now(struct memory_monitor *m, const char *why);

/* With --pressure-signal, which acts on every rise of the tier, the first
 * sample makes the PSI trigger if no memory event has yet: a run shorter than
 * one --memory-interval never pays for it (its close is an RCU grace period). */
static void on_timer(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct memory_monitor *m = data;
    if (m->opts->sample_for_tier_changes)
        arm_psi_now(m, "the first sample for --pressure-signal");
    memory_refresh(m);
}

static void close_watch_fd(struct memory_monitor *m, int *fd)
{
    if (*fd < 0)
        return;
    if (m->loop)
        loop_del_fd(m->loop, *fd);
    close(*fd);
    *fd = -1;
}

static void close_psi_trigger(struct memory_monitor *m);

static void on_psi(struct loop *loop, int fd, uint32_t events, void *data)
{
    struct memory_monitor *m = data;
    (void)loop;
    (void)fd;
    if (events & (EPOLLERR | EPOLLHUP)) { /* the cgroup is gone: stop, or spin */
        log_debug("memory: PSI trigger closed by the kernel");
        close_psi_trigger(m);
    } else {
        log_debug("memory: PSI trigger fired");
    }
    memory_refresh(m);
}

/* kernfs keeps reporting a change until the file is read again through this fd. */
static int drain(int fd)
{
    char buf[DRAIN_BUF];
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
    }
    return r < 0 && errno != EINTR ? -1 : 0;
}

/* Any change is news: memory.high or memory.max was hit (reclaim, and with it
 * pressure, has begun) or the OOM killer struck. */
static void on_events(struct loop *loop, int fd, uint32_t events, void *data)
{
    struct memory_monitor *m = data;
    (void)loop;
    (void)events;
    if (drain(fd) < 0) {
        log_debug("memory: memory.events unreadable: %s", strerror(errno));
        close_watch_fd(m, &m->events_fd);
    }
    arm_psi_now(m, "memory.events changed");
    memory_refresh(m);
}

/* A trigger lives as long as resil-init: closing one waits for an RCU grace
 * period in the kernel (8-20 ms measured here), which must not stall the loop
 * at every exit of the app. Between runs it is only taken out of the loop. */
static void psi_in_loop(struct memory_monitor *m, bool on)
{
    if (m->psi_fd < 0 || m->psi_in_loop == on)
        return;
    if (on && loop_add_fd(m->loop, m->psi_fd, EPOLLPRI, on_psi, m) < 0)
        return;
    if (!on)
        loop_del_fd(m->loop, m->psi_fd);
    m->psi_in_loop = on;
}

static void close_psi_trigger(struct memory_monitor *m)
{
    psi_in_loop(m, false);
    if (m->psi_fd >= 0)
        close(m->psi_fd);
    m->psi_fd = -1;
}

/* Plain files in a fake tree would just be overwritten by the trigger text, so
 * only real cgroup2 files are written to; anything refused falls back to sampling. */
static void open_psi_trigger(struct memory_monitor *m, const char *why)
{
    char path[CGROUP_PATH_MAX];
    m->psi_tried = true;
    if (!cgroup_pressure_path(m->cg, path, sizeof path))
        return;
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        log_debug("memory: no PSI trigger on %s: %s", path, strerror(errno));
        return;
    }
    if (!cgroup_fd_is_v2(fd) || write(fd, psi_trigger, sizeof psi_trigger) < 0) {
        log_debug("memory: no PSI trigger on %s: %s", path,
                  cgroup_fd_is_v2(fd) ? strerror(errno) : "not cgroup2");
        close(fd);
        return;
    }
    log_debug("memory: PSI trigger armed on %s (%s)", path, why);
    m->psi_fd = fd;
    psi_in_loop(m, m->watching);
}

/* When the trigger is created. Creating one is cheap, but its teardown (at
 * close, or when resil-init exits) waits for an RCU grace period in the kernel
 * (8-20 ms measured here), which an app that lives a moment (`resil-init --
 * true`) must not pay. So it waits for a reason: the cgroup reported a memory
 * event (memory.high or memory.max hit, or an OOM kill: pressure begins right
 * there, however young the app), the start found the tier above normal, or
 * --pressure-signal's first sample came. Never a timer of its own: that would
 * be a wake-up nothing asked for. */
static void arm_psi_now(struct memory_monitor *m, const char *why)
{
    if (!m->watching || m->psi_tried)
        return;
    open_psi_trigger(m, why);
    /* A sample already scheduled keeps its time; the trigger may make the
     * fallback sampling unnecessary. */
    if (!should_sample(m) || !loop_timer_armed(m->timer))
        update_timer(m);
}

/* Where memory.events cannot be polled (v1), OOM kills show up in samples. */
static void open_events_watch(struct memory_monitor *m)
{
    char path[CGROUP_PATH_MAX];
    if (!cgroup_events_path(m->cg, path, sizeof path))
        return;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    if (!cgroup_fd_is_v2(fd) || drain(fd) < 0 ||
        loop_add_fd(m->loop, fd, EPOLLPRI, on_events, m) < 0) {
        close(fd);
        return;
    }
    m->events_fd = fd;
}

static bool has_pressure_file(const struct memory_monitor *m)
{
    char path[CGROUP_PATH_MAX];
    return cgroup_pressure_path(m->cg, path, sizeof path);
}

void memory_watch(struct memory_monitor *m, bool on)
{
    if (!m || m->watching == on)
        return;
    if (!on) {
        m->watching = false;
        psi_in_loop(m, false);
        close_watch_fd(m, &m->events_fd);
        update_timer(m);
        return;
    }
    m->watching = true;
    if (m->loop && m->opts->watch != MEMORY_WATCH_NONE) {
        psi_in_loop(m, true);
        open_events_watch(m);
        if (m->cur.tier > MEMORY_TIER_NORMAL && has_pressure_file(m))
            arm_psi_now(m, "the tier was above normal at the start");
    }
    update_timer(m);
}

/* Takes cg (its own, or NULL: out of memory). */
static struct memory_monitor *memory_new_with(struct loop *loop, const struct memory_options *opts,
                                              const struct memory_callbacks *cb,
                                              struct cgroup_reader *cg)
{
    struct memory_monitor *m = cg ? calloc(1, sizeof *m) : NULL;
    if (!m) {
        cgroup_reader_free(cg);
        return NULL;
    }
    m->cg = cg;
    m->loop = loop;
    static const struct memory_options none;
    m->opts = opts ? opts : &none;
    if (cb)
        m->cb = *cb;
    m->psi_fd = -1;
    m->events_fd = -1;
    m->cur.psi_some_avg10 = -1;
    if (loop) {
        m->timer = loop_timer_new(loop, on_timer, m);
    }
    refresh(m, true);
    return m;
}

struct memory_monitor *memory_new_at(struct loop *loop, const struct memory_options *opts,
                                     const struct memory_callbacks *cb,
                                     const struct cgroup_location *loc)
{
    return memory_new_with(loop, opts, cb, cgroup_reader_new(loc));
}

struct memory_monitor *memory_new(struct loop *loop, const struct memory_options *opts,
                                  const struct memory_callbacks *cb)
{
    return memory_new_with(loop, opts, cb, cgroup_reader_new_self(opts ? opts->cgroup_root : NULL));
}

void memory_free(struct memory_monitor *m)
{
    if (!m)
        return;
    memory_watch(m, false);
    close_psi_trigger(m);
    loop_timer_free(m->timer);
    cgroup_reader_free(m->cg);
    free(m);
}
