/* The supervisor: the app's runs, stops, restarts and resil-init's exit code.
 * It fills each module's options from the configuration and is the only
 * module that acts on another's events. Every decision is taken in the event
 * loop, in answer to one of: a signal, a reaped child, a timer, a health
 * verdict, a memory event, a command on control.sock.
 *
 * Its state is one phase (phase.h: running, draining, stopping, backoff,
 * finishing, done) entered through enter(), which publishes status.json and
 * arms what the phase needs, and one plan: what follows the app run that is
 * ending (a restart for a reason, or the end with an exit code). Whatever
 * follows, the old process group is emptied first, and resil-init exits only
 * when it has no child left. A stop for good fits in one --grace budget: the
 * app's grace and the leftovers' are the same one. */
#include "resil/supervisor.h"
#include "resil/supervisor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "resil/appenv.h"
#include "resil/child.h"
#include "resil/config.h"
#include "resil/control.h"
#include "resil/health.h"
#include "resil/listen.h"
#include "resil/log.h"
#include "resil/loop.h"
#include "resil/memory.h"
#include "resil/metrics.h"
#include "resil/metrics_http.h"
#include "resil/phase.h"
#include "resil/signals.h"
#include "resil/status.h"
#include "resil/util.h"

#define REASON_MAX 4000 /* the termination log's line stays under Kubernetes' 4096 */
#define DESC_MAX 1024
/* From the first start to the state directory's making (see on_state_dir_due). */
#define STATE_DIR_DELAY_MS 10
/* At most this long after a forwarded SIGTERM/SIGINT, its log line, status.json
 * and grace timer (see take_stop_request). */
#define STOP_REQUEST_DELAY_MAX_MS 1
#define SIGNALS_PER_TURN 64
/* How often a restart looks again at an old group that SIGKILL has been sent
 * to: its last members may die as zombies of a parent outside the group,
 * which sends resil-init no SIGCHLD. */
#define GROUP_RECHECK_MS 50

/* RESIL_RESTART_REASON of a start; also the label of resil_app_restarts_total. */
enum restart_reason {
    REASON_START,
    REASON_CRASH,
    REASON_UNHEALTHY,
    REASON_MEMORY,
    REASON_OOM,
    REASON_EXIT,
    REASON_MANUAL,
};

static const char *const reason_names[] = {"start", "crash", "unhealthy", "memory",
                                           "oom",   "exit",  "manual"};

/* Why resil-init is stopping the app that runs. */
enum stop_cause {
    STOP_NONE,
    STOP_SIGNAL,    /* SIGTERM/SIGINT to resil-init: never restarted */
    STOP_UNHEALTHY, /* a restart or exit 69 follows, by the plan */
    STOP_MEMORY,    /* a restart or exit 137 follows, by the plan */
    STOP_MANUAL,    /* `resil-init restart`: a restart at once follows */
};

/* The health fields status.json was last written with. */
struct published_health {
    unsigned failures;
    long http_status;
    char verdict[64];
};

struct supervisor {
    const struct resil_config *cfg;
    char **envp;
    pid_t pid; /* resil-init's own */
    bool pid1;
    /* Flags kept beside pid1, where the struct has room for them: */
    bool group_recheck;         /* the old group got SIGKILL: the grace timer looks again */
    bool leftovers_unreachable; /* a subreaper without /proc cannot find its leftovers */
    struct loop *loop;
    struct signals *signals;
    struct health *health;
    struct memory_monitor *memory;
    struct memory_options memory_opts;
    struct appenv_options appenv;
    struct listen_set *listen;
    struct control *control;
    struct metrics_http *metrics_http;
    struct metrics metrics;
    char *state_dir;
    bool state_dir_tried;
    struct loop_timer *state_dir_timer;
    struct published_health published_health;

    enum sup_phase phase;

    /* the app run in progress, or the last one */
    pid_t app_pgid;           /* kept after the app is reaped, to empty its group */
    struct child_process app; /* app.pid 0 when none runs */
    long long started_at_ms;  /* CLOCK_REALTIME, for status.json */
    uint64_t started_mono_ms;
    unsigned restarts;
    bool emergency;
    struct status_exit last_exit;

    /* stopping the run */
    enum stop_cause stop_cause;
    int stop_signal; /* the signal that asked resil-init to stop, 0 before */
    int stop_target; /* what it is forwarded as (after -r) */
    bool app_killed_after_grace;
    /* Forwarded, the rest put off (stop_request_timer). A flag beside the
     * timer's own state: the forwarding path reads no heap for it. */
    bool stop_request_pending;
    char stop_desc[DESC_MAX];   /* why resil-init stopped the app, for the reason line */
    uint64_t grace_deadline_ms; /* 0: no stop under way; else when SIGKILL comes */
    struct loop_timer *delay_timer;
    struct loop_timer *grace_timer;
    struct loop_timer *stop_request_timer;

    /* the plan: what follows the run that is ending */
    bool restart_planned;
    enum restart_reason next_reason;
    bool next_at_once; /* a manual restart skips the backoff */
    struct supervisor_restart_budget budget;
    unsigned backoff_step;
    struct loop_timer *backoff_timer;

    /* the end */
    bool leftovers_pending; /* FINISHING entered, its first SIGTERM to what is left not sent */
    bool leftovers_killed;
    bool reaping;
    int exit_code;
    char reason[REASON_MAX];
    struct child_pid_list signalled;
};

static void reap_children(struct supervisor *sup);
static void setup_state_dir(struct supervisor *sup);
static void enter(struct supervisor *sup, enum sup_phase phase);

/* --- pure helpers, unit-tested --- */

/* Sized once for --max-restarts (bounded by the configuration), so recording a
 * restart never allocates; a budget that cannot be had is a setup failure,
 * never a silent "no restarts". */
int supervisor_restart_budget_init(struct supervisor_restart_budget *b, unsigned max,
                                   uint64_t window_ms)
{
    b->times_ms = max ? calloc(max, sizeof *b->times_ms) : NULL;
    b->count = 0;
    b->max = b->times_ms ? max : 0;
    b->window_ms = window_ms;
    return max && !b->times_ms ? -1 : 0;
}

static void supervisor_restart_budget_expire(struct supervisor_restart_budget *b, uint64_t now_ms)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < b->count; i++)
        if (now_ms - b->times_ms[i] < b->window_ms)
            b->times_ms[keep++] = b->times_ms[i];
    b->count = keep;
}

bool supervisor_restart_budget_allows(struct supervisor_restart_budget *b, uint64_t now_ms)
{
    supervisor_restart_budget_expire(b, now_ms);
    return b->count < b->max;
}

void supervisor_restart_budget_record(struct supervisor_restart_budget *b, uint64_t now_ms)
{
    supervisor_restart_budget_expire(b, now_ms);
    if (b->count < b->max)
        b->times_ms[b->count++] = now_ms;
}

void supervisor_restart_budget_free(struct supervisor_restart_budget *b)
{
    free(b->times_ms);
    b->times_ms = NULL;
    b->count = b->max = 0;
}

uint64_t supervisor_backoff_delay_ms(uint64_t min_ms, uint64_t max_ms, unsigned step)
{
    uint64_t delay = min_ms;
    for (unsigned i = 0; i < step && delay < max_ms; i++)
        delay = delay > UINT64_MAX / 2 ? UINT64_MAX : delay * 2;
    return delay < max_ms ? delay : max_ms;
}

/* --- words for the log and the reason line --- */

static const char *sig_name(int sig)
{
    const char *name = config_signal_name(sig);
    return name ? name : "?";
}

static void describe_status(char *out, size_t len, int status)
{
    if (WIFSIGNALED(status))
        snprintf(out, len, "app died of SIG%s", sig_name(WTERMSIG(status)));
    else
        snprintf(out, len, "app exited with status %d", WEXITSTATUS(status));
}

static void format_grace(const struct supervisor *sup, char *out, size_t len)
{
    config_format_duration(out, len, sup->cfg->grace_ms);
}

/* --- status.json --- */

/* status.json's app.state: the phase, with the health verdict while running. */
static enum status_app_state app_state(const struct supervisor *sup)
{
    switch (sup->phase) {
    case SUP_PHASE_RUNNING: {
        if (!sup->health)
            return STATUS_APP_RUNNING;
        enum health_status h = health_get_state(sup->health)->status;
        return h == HEALTH_STATUS_HEALTHY     ? STATUS_APP_RUNNING
               : h == HEALTH_STATUS_UNHEALTHY ? STATUS_APP_UNHEALTHY
                                              : STATUS_APP_STARTING;
    }
    case SUP_PHASE_DRAINING:
        return STATUS_APP_DRAINING;
    case SUP_PHASE_STOPPING:
        /* An app stopped for being unhealthy shows so until it is gone. */
        return sup->stop_cause == STOP_UNHEALTHY && sup->app.pid > 0 ? STATUS_APP_UNHEALTHY
                                                                     : STATUS_APP_STOPPING;
    case SUP_PHASE_BACKOFF:
        return STATUS_APP_BACKOFF;
    case SUP_PHASE_FINISHING:
    case SUP_PHASE_DONE:
        break;
    }
    return STATUS_APP_EXITED;
}

static void publish(struct supervisor *sup)
{
    if (sup->health) {
        const struct health_state *st = health_get_state(sup->health);
        sup->published_health.failures = st->consecutive_failures;
        sup->published_health.http_status = st->last_http_status;
        snprintf(sup->published_health.verdict, sizeof sup->published_health.verdict, "%s",
                 st->last_verdict);
    }
    if (!sup->state_dir)
        return;
    struct status_snapshot snap = {
        .resil_pid = (int)sup->pid,
        .app_pid = (int)sup->app.pid,
        .state = app_state(sup),
        .started_at_ms = sup->started_at_ms,
        .restarts = sup->restarts,
        .emergency = sup->emergency,
        .last_exit = sup->last_exit,
        .health_url = sup->health ? health_shown_url(sup->health) : NULL,
        .health = sup->health ? health_get_state(sup->health) : NULL,
        .memory = sup->memory ? memory_current(sup->memory) : NULL,
    };
    if (status_write(sup->state_dir, &snap) < 0)
        log_debug("cannot write %s/status.json: %s", sup->state_dir, strerror(errno));
}

/* --- the end --- */

static void write_termination_log(const struct resil_config *cfg, const char *line)
{
    const char *path = cfg->termination_log;
    int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    if (path && *path)
        flags |= O_CREAT;
    else
        path = "/dev/termination-log";
    int fd = open(path, flags, 0644);
    if (fd < 0) {
        if (cfg->termination_log)
            log_debug("cannot write termination log %s: %s", path, strerror(errno));
        return;
    }
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
        log_debug("short write to termination log %s", path);
    close(fd);
}

static int remap_exit_code(const struct resil_config *cfg, int code)
{
    return code >= 0 && code < 256 && cfg->remap_exit[code] ? 0 : code;
}

/* The plan becomes the end: the exit code and the reason line. */
static void vplan_exit(struct supervisor *sup, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vplan_exit(struct supervisor *sup, int code, const char *fmt, va_list ap)
{
    /* The end is decided once: what comes after (a queued signal, a late
     * verdict) does not rewrite it. */
    if (sup->phase == SUP_PHASE_FINISHING || sup->phase == SUP_PHASE_DONE)
        return;
    char desc[REASON_MAX - 96];
    vsnprintf(desc, sizeof desc, fmt, ap);
    sup->restart_planned = false;
    int final = remap_exit_code(sup->cfg, code);
    sup->exit_code = final;
    if (final != code)
        snprintf(sup->reason, sizeof sup->reason, "exit %d: %s (status %d remapped by -e)", final,
                 desc, code);
    else
        snprintf(sup->reason, sizeof sup->reason, "exit %d: %s", final, desc);
}

static void plan_exit(struct supervisor *sup, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void plan_exit(struct supervisor *sup, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vplan_exit(sup, code, fmt, ap);
    va_end(ap);
}

/* A fork failure or an exec error: the end begins now, whatever the phase. */
static void finish(struct supervisor *sup, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(struct supervisor *sup, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vplan_exit(sup, code, fmt, ap);
    va_end(ap);
    enter(sup, SUP_PHASE_FINISHING);
}

/* Without /proc a subreaper cannot find its children to kill them, and waiting
 * for them would outlast every grace period: they are left to whoever reaps
 * after resil-init, and the end comes at the grace (on_grace_expired). */
static void kill_leftovers(struct supervisor *sup)
{
    sup->leftovers_killed = true;
    if (child_signal_leftovers(sup->pid1, sup->app_pgid, SIGKILL, NULL) ||
        sup->leftovers_unreachable)
        return;
    sup->leftovers_unreachable = true;
    log_warn("the processes left behind cannot be found without /proc: SIGKILL went to the "
             "app's process group only; exiting without waiting for the others");
}

/* --- the grace budget --- */

/* The stop's SIGKILL moment: set once per stop, so the leftovers share the
 * app's budget instead of getting a second one. */
static void start_grace(struct supervisor *sup)
{
    if (!sup->grace_deadline_ms)
        sup->grace_deadline_ms = loop_now_ms() + sup->cfg->grace_ms;
    uint64_t now = loop_now_ms();
    loop_timer_arm(sup->grace_timer,
                   sup->grace_deadline_ms > now ? sup->grace_deadline_ms - now : 0);
}

static void after_reap(struct supervisor *sup, bool no_children_left);

static void on_grace_expired(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct supervisor *sup = data;
    char grace[32];
    format_grace(sup, grace, sizeof grace);
    if (sup->phase == SUP_PHASE_FINISHING) {
        if (!sup->leftovers_unreachable) {
            log_warn("processes left %s after the stop began: sending SIGKILL", grace);
            kill_leftovers(sup);
        }
        if (sup->leftovers_unreachable)
            enter(sup, SUP_PHASE_DONE);
        return;
    }
    if (sup->group_recheck) {
        after_reap(sup, false);
        if (sup->phase == SUP_PHASE_STOPPING)
            loop_timer_arm(sup->grace_timer, GROUP_RECHECK_MS);
        return;
    }
    if (sup->app.pid > 0) {
        sup->app_killed_after_grace = true;
        log_warn("app (pid %d) still running %s after SIGTERM: sending SIGKILL to its group",
                 (int)sup->app.pid, grace);
        signals_send_to_app(sup->app.pid, true, SIGKILL);
    } else {
        log_warn("processes of the old app's group still running %s after SIGTERM: sending SIGKILL",
                 grace);
    }
    child_signal_group(sup->app_pgid, SIGKILL);
    /* A stop for good has one budget: nothing outlives it. */
    if (!sup->restart_planned && sup->stop_cause != STOP_NONE)
        kill_leftovers(sup);
    if (sup->restart_planned) {
        sup->group_recheck = true;
        loop_timer_arm(sup->grace_timer, GROUP_RECHECK_MS);
    }
}

/* --- starting the app --- */

/* The first start uses the sample memory_new took a moment before; every later
 * start reads the files again, since memory may have changed since. */
static const struct memory_sample *fresh_memory(struct supervisor *sup)
{
    if (!sup->memory)
        return NULL;
    if (!sup->app_pgid)
        return memory_current(sup->memory);
    return memory_refresh(sup->memory);
}

/* The environment: the user's, the RESIL_* set, and LISTEN_* for the sockets. */
static int spawn_app(struct supervisor *sup, const struct memory_sample *mem, const char *reason)
{
    struct appenv_start how = {.memory = mem,
                               .emergency = sup->emergency,
                               .restart_count = sup->restarts,
                               .restart_reason = reason};
    char **env = appenv_build(sup->envp, &sup->appenv, &how);
    char **with_listen = sup->listen ? listen_env_merge(env ? env : sup->envp, sup->listen) : NULL;
    struct child_spawn req = {
        .argv = sup->cfg->command,
        .envp = with_listen ? with_listen
                : env       ? env
                            : sup->envp,
        .signals = sup->signals,
        .loop = sup->loop,
        .listen = sup->listen,
    };
    int rc = sup->listen && !with_listen ? -1 : child_spawn(&req, &sup->app);
    int err = sup->listen && !with_listen ? ENOMEM : errno;
    free(with_listen);
    appenv_free(env);
    errno = err;
    return rc;
}

static void start_app(struct supervisor *sup)
{
    bool memory_failure = sup->next_reason == REASON_OOM || sup->next_reason == REASON_MEMORY;
    const char *reason = reason_names[sup->next_reason];
    const struct memory_sample *mem = fresh_memory(sup);
    sup->emergency = memory_failure || (mem && mem->tier == MEMORY_TIER_CRITICAL);
    int spawned = spawn_app(sup, mem, reason);
    int err = errno;
    if (spawned < 0) {
        sup->app.pid = 0;
        finish(sup, 70, "resil-init failed: cannot start %s: %s: %s", sup->cfg->command[0],
               sup->app.failed_call ? sup->app.failed_call : "fork", strerror(err));
        return;
    }
    sup->app_pgid = sup->app.pid;
    sup->started_at_ms = util_realtime_ms();
    sup->started_mono_ms = loop_now_ms();
    sup->stop_cause = STOP_NONE;
    sup->app_killed_after_grace = false;
    sup->grace_deadline_ms = 0;
    sup->restart_planned = false;
    sup->next_at_once = false;
    log_info("started %s (pid %d, restart %u, reason %s%s)", sup->cfg->command[0],
             (int)sup->app.pid, sup->restarts, reason, sup->emergency ? ", EMERGENCY MODE" : "");
    if (!sup->state_dir_tried && !loop_timer_armed(sup->state_dir_timer))
        loop_timer_arm_by_wait(sup->state_dir_timer, STATE_DIR_DELAY_MS);
    metrics_app_started(&sup->metrics, sup->started_at_ms, sup->emergency);
    if (sup->memory) {
        memory_app_started(sup->memory);
        memory_watch(sup->memory, true);
    }
    if (sup->health)
        health_app_started(sup->health);
    enter(sup, SUP_PHASE_RUNNING);
    char detail[64];
    snprintf(detail, sizeof detail, "app pid %d", (int)sup->app.pid);
    control_restart_done(sup->control, true, detail);
}

static void on_backoff_done(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    start_app(data);
}

/* --- entering a phase --- */

static void arm_backoff(struct supervisor *sup)
{
    uint64_t delay = 0;
    if (!sup->next_at_once) {
        delay = supervisor_backoff_delay_ms(sup->cfg->backoff_min_ms, sup->cfg->backoff_max_ms,
                                            sup->backoff_step);
        if (sup->backoff_step < 64)
            sup->backoff_step++;
        char when[32];
        config_format_duration(when, sizeof when, delay);
        log_info("next start in %s", when);
    }
    loop_timer_arm(sup->backoff_timer, delay);
}

/* Everything but the leftovers stops; they get SIGTERM now, SIGKILL when the
 * stop's grace budget (begun with the stop, or now) runs out. */
static void arm_finishing(struct supervisor *sup)
{
    loop_timer_disarm(sup->backoff_timer);
    loop_timer_disarm(sup->delay_timer);
    if (sup->health)
        health_app_stopped(sup->health);
    if (sup->memory)
        memory_watch(sup->memory, false);
    control_restart_done(sup->control, false, "resil-init is stopping");
    sup->leftovers_pending = true; /* dealt with once the reap is through: after_reap */
}

/* With no child left there is nothing to wait for and nothing to scan /proc
 * for: a grace timer and a scan only for processes that are still there. */
static void end_leftovers(struct supervisor *sup, bool no_children_left)
{
    sup->leftovers_pending = false;
    if (no_children_left) {
        child_signal_strays(sup->pid1, sup->app_pgid, SIGTERM);
        return;
    }
    uint64_t now = loop_now_ms();
    if (sup->grace_deadline_ms && sup->grace_deadline_ms <= now) {
        kill_leftovers(sup);
        if (sup->leftovers_unreachable)
            loop_timer_arm(sup->grace_timer, 0); /* the end, next turn */
    } else {
        if (!child_signal_leftovers(sup->pid1, sup->app_pgid, SIGTERM, &sup->signalled))
            log_warn("cannot list the processes left behind (/proc/self/task: %s): only the "
                     "app's process group gets SIGTERM",
                     strerror(errno));
        start_grace(sup);
    }
}

static void complete(struct supervisor *sup)
{
    struct log_field field = {.key = "exit_code", .num = sup->exit_code};
    log_emit(sup->exit_code == 0 ? LOG_LEVEL_INFO : LOG_LEVEL_ERROR, true, &field, 1, "%s",
             sup->reason);
    write_termination_log(sup->cfg, sup->reason);
    loop_stop(sup->loop);
}

/* The one way into a phase: what it needs is armed, status.json says it. */
static void enter(struct supervisor *sup, enum sup_phase phase)
{
    /* A SIGCHLD may still be queued after the last child was reaped. */
    if (sup->phase == SUP_PHASE_DONE ||
        (sup->phase == SUP_PHASE_FINISHING && phase != SUP_PHASE_DONE))
        return;
    if (phase != sup->phase)
        log_debug("phase %s -> %s", sup_phase_name(sup->phase), sup_phase_name(phase));
    sup->phase = phase;
    switch (phase) {
    case SUP_PHASE_RUNNING:
        loop_timer_disarm(sup->grace_timer);
        sup->group_recheck = false;
        break;
    case SUP_PHASE_DRAINING:
        loop_timer_arm(sup->delay_timer, sup->cfg->stop_delay_ms);
        break;
    case SUP_PHASE_STOPPING:
        loop_timer_disarm(sup->delay_timer);
        /* The app is gone but its group is not: the rest of it gets the stop too. */
        if (sup->app.pid == 0 && child_group_alive(sup->app_pgid))
            child_signal_group(sup->app_pgid, SIGTERM);
        start_grace(sup);
        break;
    case SUP_PHASE_BACKOFF:
        loop_timer_disarm(sup->grace_timer);
        sup->group_recheck = false;
        sup->grace_deadline_ms = 0;
        arm_backoff(sup);
        break;
    case SUP_PHASE_FINISHING:
        arm_finishing(sup);
        break;
    case SUP_PHASE_DONE:
        complete(sup);
        return;
    }
    publish(sup);
    if (phase == SUP_PHASE_FINISHING && !sup->reaping)
        reap_children(sup);
}

static struct sup_facts facts(const struct supervisor *sup)
{
    return (struct sup_facts){
        .restart_planned = sup->restart_planned,
        .app_alive = sup->app.pid > 0,
        /* The table looks at it only when a restart is planned; finding out
         * may scan /proc, which the path of a forwarded SIGTERM and that of
         * the last exit do without. */
        .group_alive = sup->restart_planned && child_group_alive(sup->app_pgid),
        .stop_delay = sup->cfg->stop_delay_ms > 0,
    };
}

/* An event moves the phase by the table of phase.c. */
static void on_event(struct supervisor *sup, enum sup_event event)
{
    struct sup_facts f = facts(sup);
    enter(sup, sup_phase_next(sup->phase, event, &f));
}

/* --- stopping the app --- */

/* The app's group (or the app alone, -c, for a forwarded stop) gets sig. */
UTIL_HOT static void signal_app(struct supervisor *sup, int sig, bool single)
{
    if (sup->app.pid > 0)
        signals_send_to_app(sup->app.pid, single, sig);
    if (sup->health)
        health_app_stopped(sup->health);
}

UTIL_HOT static void begin_stop(struct supervisor *sup, enum stop_cause cause, int sig, bool single)
{
    sup->stop_cause = cause;
    signal_app(sup, sig, single);
}

/* --- restarts --- */

static bool restart_allowed_by_policy(const struct resil_config *cfg, bool failure)
{
    return cfg->restart == CONFIG_RESTART_ALWAYS ||
           (cfg->restart == CONFIG_RESTART_ON_FAILURE && failure);
}

static bool budget_left(struct supervisor *sup)
{
    return supervisor_restart_budget_allows(&sup->budget, loop_now_ms());
}

/* The plan becomes a restart for reason, within --max-restarts; past it, the
 * end with give_up_code. */
static void plan_restart(struct supervisor *sup, enum restart_reason reason, int give_up_code,
                         const char *desc)
{
    uint64_t now = loop_now_ms();
    if (!supervisor_restart_budget_allows(&sup->budget, now)) {
        char window[32];
        config_format_duration(window, sizeof window, sup->cfg->restart_window_ms);
        plan_exit(sup, give_up_code,
                  "giving up after %u restarts in %s (--max-restarts %u); last: %s",
                  sup->budget.count, window, sup->cfg->max_restarts, desc);
        return;
    }
    supervisor_restart_budget_record(&sup->budget, now);
    if (now - sup->started_mono_ms >= sup->cfg->restart_window_ms)
        sup->backoff_step = 0;
    sup->restarts++;
    sup->next_reason = reason;
    sup->restart_planned = true;
    metrics_count_restart(&sup->metrics, reason_names[reason]);
    log_warn("%s: restarting (reason %s, restart %u of %u allowed in the window)", desc,
             reason_names[reason], sup->budget.count, sup->cfg->max_restarts);
}

/* `resil-init restart`: not counted against --max-restarts, no backoff. */
static void plan_manual_restart(struct supervisor *sup)
{
    sup->restarts++;
    sup->next_reason = REASON_MANUAL;
    sup->next_at_once = true;
    sup->restart_planned = true;
    metrics_count_restart(&sup->metrics, reason_names[REASON_MANUAL]);
}

/* --- the app's end --- */

/* tier_before_exit: the last sample taken while the app lived; once it is dead
 * its memory is freed and a fresh sample says nothing about its end. */
/* The cgroup is read again only where the answer changes something: a restart
 * may follow (reason oom, emergency mode), or the app died of SIGKILL (the
 * reason line says whether the OOM killer did it). */
/* Called for a failed run only, so a clean exit (`-- true`) reads nothing: a
 * failure's reason line and exit code depend on the OOM question. */
static bool died_of_oom(struct supervisor *sup, int status, enum memory_tier tier_before_exit)
{
    bool sigkill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    if (!sup->memory)
        return false;
    bool oom = memory_oom_since_start(sup->memory);
    metrics_set_memory(&sup->metrics, memory_current(sup->memory));
    return oom ||
           (sigkill && !sup->app_killed_after_grace && tier_before_exit == MEMORY_TIER_CRITICAL);
}

static void record_exit(struct supervisor *sup, int status, const char *reason)
{
    sup->last_exit.present = true;
    sup->last_exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    sup->last_exit.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    snprintf(sup->last_exit.reason, sizeof sup->last_exit.reason, "%s", reason);
    sup->last_exit.at_ms = util_realtime_ms();
    metrics_app_exited(&sup->metrics, status);
}

static void plan_after_stop_signal(struct supervisor *sup, int status, const char *what)
{
    char grace[32];
    format_grace(sup, grace, sizeof grace);
    if (sup->app_killed_after_grace)
        plan_exit(sup, 137,
                  "stopped by SIG%s: app did not exit within the %s grace period and was killed",
                  sig_name(sup->stop_signal), grace);
    else
        plan_exit(sup, child_status_code(status), "stopped by SIG%s: %s",
                  sig_name(sup->stop_signal), what);
}

static void plan_after_resil_stop(struct supervisor *sup, int code)
{
    char grace[32];
    format_grace(sup, grace, sizeof grace);
    if (sup->app_killed_after_grace)
        plan_exit(sup, code, "%s; the app then outlived the %s grace period and was killed",
                  sup->stop_desc, grace);
    else
        plan_exit(sup, code, "%s", sup->stop_desc);
}

static void plan_after_own_exit(struct supervisor *sup, int status, const char *what,
                                enum memory_tier tier_before_exit)
{
    bool failure = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    bool restart = sup->phase != SUP_PHASE_DRAINING &&
                   restart_allowed_by_policy(sup->cfg, failure) && sup->cfg->max_restarts > 0;
    bool oom = failure && died_of_oom(sup, status, tier_before_exit);
    /* An app that exited by itself after an OOM kill in its cgroup (one of its
     * workers went) reports its own status; only a death by SIGKILL is the
     * OOM killer's 137. */
    bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    enum restart_reason reason = oom ? REASON_OOM : failure ? REASON_CRASH : REASON_EXIT;
    int code = oom && killed ? 137 : child_status_code(status);
    char desc[DESC_MAX];
    if (oom && killed)
        snprintf(desc, sizeof desc, "OOM kill: %s after the kernel's OOM killer struck", what);
    else if (oom)
        snprintf(desc, sizeof desc, "%s after the kernel OOM-killed a process in its cgroup", what);
    else
        snprintf(desc, sizeof desc, "%s", what);
    record_exit(sup, status, reason_names[reason]);
    if (sup->phase == SUP_PHASE_DRAINING)
        plan_exit(sup, code, "%s during the --stop-delay after SIG%s; not restarting", desc,
                  sig_name(sup->stop_signal));
    else if (restart)
        plan_restart(sup, reason, code, desc);
    else if (restart_allowed_by_policy(sup->cfg, failure))
        plan_exit(sup, code, "%s; not restarting (--max-restarts 0)", desc);
    else
        plan_exit(sup, code, "%s", desc);
}

/* What follows this run, by why it ended. */
static void plan_after_exit(struct supervisor *sup, int status, const char *what,
                            enum memory_tier tier_before_exit)
{
    bool restart = sup->restart_planned;
    switch (sup->stop_cause) {
    case STOP_SIGNAL:
        record_exit(sup, status, "stop");
        plan_after_stop_signal(sup, status, what);
        break;
    case STOP_UNHEALTHY:
        record_exit(sup, status, "unhealthy");
        if (restart)
            plan_restart(sup, REASON_UNHEALTHY, 69, sup->stop_desc);
        else
            plan_after_resil_stop(sup, 69);
        break;
    case STOP_MEMORY:
        record_exit(sup, status, "memory");
        if (restart)
            plan_restart(sup, REASON_MEMORY, 137, sup->stop_desc);
        else
            plan_after_resil_stop(sup, 137);
        break;
    case STOP_MANUAL:
        record_exit(sup, status, "manual");
        break; /* the plan was made when the restart was asked */
    case STOP_NONE:
        plan_after_own_exit(sup, status, what, tier_before_exit);
        break;
    }
}

static void on_app_exit(struct supervisor *sup, int status)
{
    int exec_err = child_reaped(&sup->app);
    if (sup->health)
        health_app_stopped(sup->health);
    enum memory_tier tier_before_exit = MEMORY_TIER_UNKNOWN;
    if (sup->memory) {
        /* read again only if the end asks (died_of_oom) */
        tier_before_exit = memory_current(sup->memory)->tier;
        memory_watch(sup->memory, false);
    }
    char what[256];
    describe_status(what, sizeof what, status);
    if (exec_err) {
        record_exit(sup, status, "exec");
        if (exec_err == ENOENT)
            finish(sup, 127, "command not found: %s", sup->cfg->command[0]);
        else
            finish(sup, 126, "cannot execute %s: %s", sup->cfg->command[0], strerror(exec_err));
        return;
    }
    log_info("%s", what);
    plan_after_exit(sup, status, what, tier_before_exit);
    on_event(sup, SUP_EVENT_APP_EXITED);
}

static void on_child_exit(void *ctx, pid_t pid, int status)
{
    struct supervisor *sup = ctx;
    if (pid == sup->app.pid)
        on_app_exit(sup, status);
    else
        log_debug("reaped pid %d (%s %d)", (int)pid, WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void after_reap(struct supervisor *sup, bool no_children_left)
{
    if (sup->phase == SUP_PHASE_FINISHING) {
        bool first = sup->leftovers_pending;
        if (first)
            end_leftovers(sup, no_children_left);
        if (no_children_left) {
            on_event(sup, SUP_EVENT_NO_CHILDREN);
            return;
        }
        /* A subreaper learns of grandchildren only as their parents die. */
        if (!first && !sup->pid1)
            (void)child_signal_leftovers(false, sup->app_pgid,
                                         sup->leftovers_killed ? SIGKILL : SIGTERM,
                                         sup->leftovers_killed ? NULL : &sup->signalled);
        return;
    }
    if (sup->phase == SUP_PHASE_STOPPING && sup->app.pid == 0 && !child_group_alive(sup->app_pgid))
        on_event(sup, SUP_EVENT_GROUP_EMPTY);
}

static void reap_children(struct supervisor *sup)
{
    sup->reaping = true;
    bool none_left = child_reap_all(on_child_exit, sup);
    sup->reaping = false;
    after_reap(sup, none_left);
}

/* --- signals --- */

static void log_forwarding(struct supervisor *sup)
{
    char grace[32];
    format_grace(sup, grace, sizeof grace);
    log_info("received SIG%s: forwarding SIG%s to the app, %s grace before SIGKILL",
             sig_name(sup->stop_signal), sig_name(sup->stop_target), grace);
}

/* The kill() first; the log line, status.json and the grace timer after it. */
static void forward_stop(struct supervisor *sup)
{
    begin_stop(sup, STOP_SIGNAL, sup->stop_target, sup->cfg->single_child);
    log_forwarding(sup);
}

/* The phase (grace timer, status.json) a stop request moves to, and the
 * answer to a restart someone waits for, which will not come. */
static void accept_stop_request(struct supervisor *sup)
{
    control_restart_done(sup->control, false, "resil-init is stopping");
    on_event(sup, SUP_EVENT_STOP_REQUEST);
}

/* After a stop request's kill(): its log line, then the rest. */
static void take_stop_request(struct supervisor *sup)
{
    sup->stop_request_pending = false;
    loop_timer_disarm(sup->stop_request_timer);
    log_forwarding(sup);
    accept_stop_request(sup);
}

static void on_stop_request_due(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    take_stop_request(data);
}

/* The common stop: SIGTERM to a running app with no --stop-delay. The app,
 * runnable now, should have the CPU before resil-init writes a line or a
 * file (which on a busy or a shared core it would wait for): the rest waits
 * for the loop's next wait, and comes before anything else it brings. */
UTIL_HOT static void forward_running_stop(struct supervisor *sup)
{
    begin_stop(sup, STOP_SIGNAL, sup->stop_target, sup->cfg->single_child);
    sup->stop_request_pending = true;
    if (loop_timer_arm_after_wait(sup->stop_request_timer, STOP_REQUEST_DELAY_MAX_MS) < 0)
        take_stop_request(sup);
}

static void on_delay_over(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct supervisor *sup = data;
    forward_stop(sup);
    on_event(sup, SUP_EVENT_DELAY_OVER);
}

static void announce_stop_delay(struct supervisor *sup, int sig)
{
    char delay[32];
    config_format_duration(delay, sizeof delay, sup->cfg->stop_delay_ms);
    log_info("received SIG%s: draining for %s before forwarding it (a second one ends the delay)",
             sig_name(sig), delay);
}

UTIL_HOT static void handle_stop_signal(struct supervisor *sup, int sig, int target)
{
    bool first = !sup->stop_signal;
    if (first) {
        sup->stop_signal = sig;
        sup->stop_target = target;
    }
    switch (sup->phase) {
    case SUP_PHASE_RUNNING:
        if (!sup->cfg->stop_delay_ms) {
            forward_running_stop(sup);
            return;
        }
        announce_stop_delay(sup, sig);
        break;
    case SUP_PHASE_DRAINING:
        log_info("received SIG%s again: ending the stop delay", sig_name(sig));
        forward_stop(sup);
        break;
    case SUP_PHASE_STOPPING:
        if (!first && sup->stop_cause == STOP_SIGNAL) {
            if (sup->app.pid > 0)
                signals_send_to_app(sup->app.pid, sup->cfg->single_child, target);
            return; /* a repeated stop is forwarded like any signal */
        }
        sup->restart_planned = false;
        if (sup->app.pid > 0) {
            log_info("received SIG%s during a restart: stopping for good", sig_name(sig));
            forward_stop(sup);
        } else {
            plan_exit(sup, 128 + sig, "stopped by SIG%s while the app was being restarted",
                      sig_name(sig));
        }
        break;
    case SUP_PHASE_BACKOFF:
        plan_exit(sup, 128 + sig, "stopped by SIG%s while waiting to restart the app",
                  sig_name(sig));
        break;
    case SUP_PHASE_FINISHING:
    case SUP_PHASE_DONE:
        return;
    }
    accept_stop_request(sup);
}

UTIL_HOT static void handle_signal(struct supervisor *sup, int sig)
{
    /* A stop forwarded earlier in this batch is taken in full first: the
     * app's exit, say, must find the phase it set. */
    if (sup->stop_request_pending)
        take_stop_request(sup);
    if (sig == SIGCHLD) {
        reap_children(sup);
        return;
    }
    if (!signals_forwardable(sig))
        return;
    int target = signals_rewrite(sup->cfg->rewrite, sig);
    if (target == 0) {
        log_debug("dropped SIG%s (-r %d:0)", sig_name(sig), sig);
        return;
    }
    if (sup->phase == SUP_PHASE_FINISHING || sup->phase == SUP_PHASE_DONE)
        return;
    if (sig == SIGTERM || sig == SIGINT) {
        handle_stop_signal(sup, sig, target);
        return;
    }
    if (sup->app.pid > 0) {
        signals_send_to_app(sup->app.pid, sup->cfg->single_child, target);
        log_debug("forwarded SIG%s as SIG%s", sig_name(sig), sig_name(target));
    }
}

UTIL_HOT static void on_signal_fd(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct supervisor *sup = data;
    /* A bounded batch per turn: the signalfd stays readable (level-triggered)
     * and is served again next turn, after the timers and sockets that are
     * ready too. Draining it whole would let a flood of real-time signals
     * starve the grace timer and the health checks. */
    int sig;
    for (int n = 0; n < SIGNALS_PER_TURN && (sig = signals_next(sup->signals)) != 0; n++)
        handle_signal(sup, sig);
}

/* The same, for a signal the loop took in its own wait (sigtimedwait). */
UTIL_HOT static void on_signal_taken(struct loop *loop, int sig, void *data)
{
    (void)loop;
    handle_signal(data, sig);
}

/* --- health verdicts --- */

static void decide_unhealthy(struct supervisor *sup, const struct health_check_result *last)
{
    const struct health_state *st = health_get_state(sup->health);
    char desc[DESC_MAX - 64];
    snprintf(desc, sizeof desc, "unhealthy: %u consecutive failed checks of %s (last: %s)",
             st->consecutive_failures, health_shown_url(sup->health),
             last && last->error[0] ? last->error : "failed");
    bool may_restart = sup->cfg->on_unhealthy == CONFIG_ON_UNHEALTHY_RESTART &&
                       restart_allowed_by_policy(sup->cfg, true);
    sup->restart_planned = may_restart && budget_left(sup);
    if (sup->restart_planned) {
        snprintf(sup->stop_desc, sizeof sup->stop_desc, "%s", desc);
    } else {
        const char *why = !may_restart ? (sup->cfg->on_unhealthy == CONFIG_ON_UNHEALTHY_EXIT
                                              ? "--on-unhealthy exit"
                                              : "restart policy is no")
                                       : "restart budget spent";
        snprintf(sup->stop_desc, sizeof sup->stop_desc, "%s; not restarting (%s)", desc, why);
    }
    begin_stop(sup, STOP_UNHEALTHY, SIGTERM, false);
    on_event(sup, SUP_EVENT_UNHEALTHY);
}

static void on_health_change(void *ctx, enum health_status old_status,
                             enum health_status new_status, const struct health_check_result *last)
{
    (void)old_status;
    struct supervisor *sup = ctx;
    metrics_set_healthy(&sup->metrics, new_status == HEALTH_STATUS_HEALTHY);
    if (new_status == HEALTH_STATUS_UNHEALTHY && sup->phase == SUP_PHASE_RUNNING)
        decide_unhealthy(sup, last);
    else
        publish(sup);
}

/* A check that changed nothing but its time is not written: renaming over
 * status.json makes ext4 write it back to disk, which would be most of what a
 * check costs. */
static void on_health_checked(void *ctx, const struct health_check_result *r)
{
    struct supervisor *sup = ctx;
    metrics_health_checked(&sup->metrics, r->passed, (double)r->duration_ms / 1000.0);
    const struct health_state *st = health_get_state(sup->health);
    const struct published_health *was = &sup->published_health;
    if (was->failures == st->consecutive_failures && was->http_status == st->last_http_status &&
        strncmp(was->verdict, st->last_verdict, sizeof was->verdict) == 0)
        return;
    publish(sup);
}

/* --- memory events --- */

static void on_tier_change(void *ctx, enum memory_tier old_tier, enum memory_tier new_tier)
{
    struct supervisor *sup = ctx;
    log_info("memory tier %s -> %s", memory_tier_name(old_tier), memory_tier_name(new_tier));
    metrics_set_memory(&sup->metrics, memory_current(sup->memory));
    if (new_tier > old_tier && old_tier != MEMORY_TIER_UNKNOWN && sup->cfg->pressure_signal &&
        sup->phase == SUP_PHASE_RUNNING) {
        log_info("sending SIG%s to the app (memory tier rose)",
                 sig_name(sup->cfg->pressure_signal));
        signals_send_to_app(sup->app.pid, sup->cfg->single_child, sup->cfg->pressure_signal);
    }
    publish(sup);
}

static void on_memory_restart(void *ctx, const struct memory_sample *s)
{
    struct supervisor *sup = ctx;
    if (sup->phase != SUP_PHASE_RUNNING)
        return;
    char threshold[32];
    config_format_duration(threshold, sizeof threshold, sup->cfg->memory_restart_for_ms);
    snprintf(sup->stop_desc, sizeof sup->stop_desc,
             "memory: working set %llu MiB stayed at or above --memory-restart for %s",
             (unsigned long long)(s->working_set_bytes >> 20), threshold);
    sup->restart_planned = restart_allowed_by_policy(sup->cfg, true) && budget_left(sup);
    if (!sup->restart_planned) {
        size_t len = strlen(sup->stop_desc);
        snprintf(sup->stop_desc + len, sizeof sup->stop_desc - len, "; not restarting (%s)",
                 sup->cfg->restart == CONFIG_RESTART_NO ? "restart policy is no"
                                                        : "restart budget spent");
    }
    begin_stop(sup, STOP_MEMORY, SIGTERM, false);
    on_event(sup, SUP_EVENT_MEMORY_RESTART);
}

static void on_oom_kill(void *ctx, uint64_t total)
{
    struct supervisor *sup = ctx;
    log_warn("the kernel OOM-killed a process in this cgroup (%llu OOM kills so far)",
             (unsigned long long)total);
    metrics_set_memory(&sup->metrics, memory_current(sup->memory));
    publish(sup);
}

/* --- control.sock and the metrics endpoint --- */

static int on_restart_request(void *ctx, char *why, size_t whylen)
{
    struct supervisor *sup = ctx;
    if (!sup_phase_takes_manual_restart(sup->phase, sup->restart_planned)) {
        snprintf(why, whylen, "resil-init is %s",
                 sup->phase == SUP_PHASE_DRAINING ? "draining before a stop" : "stopping");
        return -1;
    }
    log_info("restart requested on %s", CONTROL_SOCKET_NAME);
    switch (sup->phase) {
    case SUP_PHASE_RUNNING:
        plan_manual_restart(sup);
        begin_stop(sup, STOP_MANUAL, SIGTERM, false);
        break;
    case SUP_PHASE_BACKOFF:
        /* The restart already counted starts now, told apart as manual. */
        sup->next_reason = REASON_MANUAL;
        sup->next_at_once = true;
        break;
    default: /* stopping for a restart: it follows at once, without backoff */
        sup->next_at_once = true;
        return 0;
    }
    on_event(sup, SUP_EVENT_MANUAL_RESTART);
    return 0;
}

static size_t render_metrics(void *ctx, char *buf, size_t len)
{
    struct supervisor *sup = ctx;
    /* The working set as of this scrape, not of the last pressure event. */
    if (sup->memory)
        metrics_set_memory(&sup->metrics, memory_refresh(sup->memory));
    return metrics_render(&sup->metrics, buf, len);
}

/* --- setup and teardown --- */

/* The sockets a user asked for come first: failing them is a usage error, and
 * nothing else has started yet. */
static int setup_sockets(struct supervisor *sup)
{
    const struct resil_config *cfg = sup->cfg;
    char err[512];
    if (cfg->listen_count) {
        sup->listen = listen_set_open(cfg->listen, cfg->listen_count, (int)cfg->listen_backlog, err,
                                      sizeof err);
        if (!sup->listen) {
            plan_exit(sup, 2, "--listen: %s", err);
            return -1;
        }
    }
    if (cfg->metrics) {
        sup->metrics_http =
            metrics_http_new(sup->loop, cfg->metrics, render_metrics, sup, err, sizeof err);
        if (!sup->metrics_http) {
            plan_exit(sup, 2, "--metrics: %s", err);
            return -1;
        }
    }
    return 0;
}

/* The state directory, control.sock and the first status.json come a moment
 * after the first start, not on the way from the fork to the app's exec (the
 * app's exec wakes resil-init, which would run first); an app that is over by
 * then leaves none, as nothing could have read them. */
static void on_state_dir_due(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct supervisor *sup = data;
    if (sup->phase == SUP_PHASE_FINISHING || sup->phase == SUP_PHASE_DONE)
        return;
    setup_state_dir(sup);
    publish(sup);
}

/* A failure is a warning, never a reason to stop supervising. Once per run. */
static void setup_state_dir(struct supervisor *sup)
{
    char err[512];
    if (sup->state_dir_tried)
        return;
    sup->state_dir_tried = true;
    sup->state_dir = status_dir_resolve(sup->cfg->state_dir, true);
    if (!sup->state_dir)
        return;
    struct control_handler ch = {
        .ctx = sup, .restart = on_restart_request, .render_metrics = render_metrics};
    sup->control = control_new(sup->loop, sup->state_dir, &ch, err, sizeof err);
    if (!sup->control)
        log_warn("no control socket (resil-init restart and metrics will not reach this "
                 "one): %s",
                 err);
}

static bool memory_interval_given(const struct resil_config *cfg)
{
    return config_source_of(cfg, "memory-interval") != CONFIG_SOURCE_DEFAULT;
}

/* Live readings for the memory options that act on them; for a restart
 * policy, only what tells an OOM kill at the app's end; otherwise none. */
static enum memory_watch_level memory_watch_level(const struct resil_config *cfg)
{
    if (cfg->memory_restart.set || cfg->pressure_signal || memory_interval_given(cfg))
        return MEMORY_WATCH_ALL;
    if (cfg->restart != CONFIG_RESTART_NO && cfg->max_restarts > 0)
        return MEMORY_WATCH_EVENTS;
    return MEMORY_WATCH_NONE;
}

static int setup_monitors(struct supervisor *sup)
{
    const struct resil_config *cfg = sup->cfg;
    struct memory_callbacks mcb = {.ctx = sup,
                                   .tier_changed = on_tier_change,
                                   .restart_needed = on_memory_restart,
                                   .oom_kill = on_oom_kill};
    sup->memory_opts = (struct memory_options){
        .cgroup_root = cfg->cgroup_root,
        .warn = cfg->memory_warn,
        .critical = cfg->memory_critical,
        .restart = cfg->memory_restart,
        .restart_for_ms = cfg->memory_restart_for_ms,
        .interval_ms = cfg->memory_interval_ms,
        .sample_for_tier_changes = cfg->pressure_signal != 0,
        .sample_asked = memory_interval_given(cfg),
        .watch = memory_watch_level(cfg),
    };
    sup->memory = memory_new(sup->loop, &sup->memory_opts, &mcb);
    if (sup->memory)
        metrics_set_memory(&sup->metrics, memory_current(sup->memory));
    sup->appenv = (struct appenv_options){
        .emergency_env = cfg->emergency_env,
        .emergency_env_count = cfg->emergency_env_count,
        .emergency_env_explicit = cfg->emergency_env_explicit,
        .runtime_hints = cfg->runtime_hints,
    };
    if (cfg->health_url) {
        struct health_options opts = {
            .url = cfg->health_url,
            .unix_socket = cfg->health_unix_socket,
            .json_field = cfg->health_json_field,
            .interval_ms = cfg->health_interval_ms,
            .timeout_ms = cfg->health_timeout_ms,
            .start_period_ms = cfg->health_start_period_ms,
            .retries = cfg->health_retries,
        };
        char err[256] = "";
        sup->health = health_new(sup->loop, &opts, on_health_change, sup, err, sizeof err);
        if (!sup->health) {
            log_error("resil-init failed: health check: %s", err);
            return -1;
        }
        health_set_check_cb(sup->health, on_health_checked);
    }
    return 0;
}

/* 0, or the exit code of a failed setup (its reason line in sup->reason). */
static int setup(struct supervisor *sup, const struct resil_config *cfg, char **envp)
{
    sup->cfg = cfg;
    sup->envp = envp;
    sup->pid = getpid();
    sup->pid1 = sup->pid == 1;
    metrics_init(&sup->metrics, cfg->health_url != NULL);
    if (supervisor_restart_budget_init(&sup->budget, cfg->max_restarts, cfg->restart_window_ms) <
        0) {
        plan_exit(sup, 70,
                  "resil-init failed: no memory for a restart budget of %u "
                  "(--max-restarts)",
                  cfg->max_restarts);
        return 70;
    }
    sup->loop = loop_new();
    sup->signals = signals_setup();
    if (!sup->loop || !sup->signals ||
        loop_add_fd(sup->loop, signals_fd(sup->signals), EPOLLIN, on_signal_fd, sup) < 0) {
        plan_exit(sup, 70, "resil-init failed: cannot set up the event loop: %s", strerror(errno));
        return 70;
    }
    loop_set_signal_wait(sup->loop, signals_fd(sup->signals), signals_blocked(sup->signals),
                         signals_io_signal(), on_signal_taken, sup);
    sup->grace_timer = loop_timer_new(sup->loop, on_grace_expired, sup);
    sup->backoff_timer = loop_timer_new(sup->loop, on_backoff_done, sup);
    sup->delay_timer = loop_timer_new(sup->loop, on_delay_over, sup);
    sup->state_dir_timer = loop_timer_new(sup->loop, on_state_dir_due, sup);
    sup->stop_request_timer = loop_timer_new(sup->loop, on_stop_request_due, sup);
    if (!sup->grace_timer || !sup->backoff_timer || !sup->delay_timer || !sup->state_dir_timer ||
        !sup->stop_request_timer) {
        plan_exit(sup, 70, "resil-init failed to set up: timers: %s", strerror(errno));
        return 70;
    }
    if (setup_sockets(sup) < 0)
        return 2;
    /* Orphans of the app must come to resil-init, not to the host's init. */
    if (!sup->pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("cannot become child subreaper: %s", strerror(errno));
    if (cfg->pdeath_signal && prctl(PR_SET_PDEATHSIG, cfg->pdeath_signal) < 0)
        log_warn("cannot set parent-death signal: %s", strerror(errno));
    if (setup_monitors(sup) < 0) {
        plan_exit(sup, 70, "resil-init failed to set up");
        return 70;
    }
    return 0;
}

static void teardown(struct supervisor *sup)
{
    control_free(sup->control);
    metrics_http_free(sup->metrics_http);
    listen_set_free(sup->listen);
    health_free(sup->health);
    memory_free(sup->memory);
    loop_timer_free(sup->grace_timer);
    loop_timer_free(sup->backoff_timer);
    loop_timer_free(sup->delay_timer);
    loop_timer_free(sup->state_dir_timer);
    loop_timer_free(sup->stop_request_timer);
    child_release(&sup->app);
    signals_free(sup->signals);
    loop_free(sup->loop);
    supervisor_restart_budget_free(&sup->budget);
    child_pid_list_free(&sup->signalled);
    free(sup->state_dir);
}

int supervisor_run(const struct resil_config *cfg, char **envp)
{
    struct supervisor sup;
    memset(&sup, 0, sizeof sup);
    sup.app = CHILD_PROCESS_NONE;
    sup.phase = SUP_PHASE_BACKOFF; /* the first start is "due" at once */
    int code = setup(&sup, cfg, envp);
    if (code) {
        log_emit(LOG_LEVEL_ERROR, true, NULL, 0, "%s", sup.reason);
        write_termination_log(cfg, sup.reason);
        code = sup.exit_code;
    } else {
        start_app(&sup);
        /* A first start that failed may have ended everything already. */
        if (sup.phase != SUP_PHASE_DONE && loop_run(sup.loop) < 0) {
            log_error("resil-init failed: epoll: %s", strerror(errno));
            sup.exit_code = 70;
        }
        code = sup.exit_code;
    }
    teardown(&sup);
    return code;
}
