/* The supervisor: the app's runs, stops, restarts and resil-init's exit code.
 * It fills each module's options from the configuration and is the only
 * module that acts on another's events. Every decision is taken in the event
 * loop, in answer to one of: a signal, a reaped child, a timer, a health
 * verdict, a memory event.
 *
 * An app run ends in one of three ways: it exits by itself, resil-init stops it
 * for a restart (unhealthy, memory), or resil-init stops it for good (a stop
 * signal, unhealthy with no restart left). Whatever follows, the old process
 * group is emptied first, and resil-init exits only when it has no child left. */
#define _GNU_SOURCE /* asprintf */
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
#include "resil/config.h"
#include "resil/child.h"
#include "resil/health.h"
#include "resil/log.h"
#include "resil/loop.h"
#include "resil/memory.h"
#include "resil/signals.h"
#include "resil/status.h"
#include "resil/util.h"

#define REASON_MAX 4000 /* the termination log's line stays under Kubernetes' 4096 */
#define DESC_MAX 1024
#define SIGNALS_PER_TURN 64
/* How often a restart looks again at an old group that SIGKILL has been sent
 * to: its last members may die as zombies of a parent outside the group,
 * which sends resil-init no SIGCHLD. */
#define GROUP_RECHECK_MS 50

/* Why resil-init is stopping the app that runs. */
enum stop_cause {
    STOP_NONE,
    STOP_SIGNAL,            /* SIGTERM/SIGINT to resil-init: never restarted */
    STOP_RESTART_UNHEALTHY, /* restart follows */
    STOP_RESTART_MEMORY,    /* restart follows */
    STOP_EXIT_UNHEALTHY,    /* exit 69 follows */
    STOP_EXIT_MEMORY,       /* exit 137 follows: --memory-restart with --restart no */
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
    bool pid1;
    struct loop *loop;
    struct signals *signals;
    struct health *health;
    struct memory_monitor *memory;
    struct memory_options memory_opts;
    struct appenv_options appenv;
    char *state_dir;
    struct published_health published_health;

    /* the app run in progress, or the last one */
    struct child_process app; /* app.pid 0 when none runs */
    pid_t app_pgid;           /* kept after the app is reaped, to empty its group */
    enum status_app_state state;
    long long started_at_ms; /* CLOCK_REALTIME, for status.json */
    uint64_t started_mono_ms;
    unsigned restarts;
    bool emergency;
    struct status_exit last_exit;

    /* stopping */
    enum stop_cause stop_cause;
    int stop_signal; /* the signal that asked resil-init to stop */
    bool app_killed_after_grace;
    char stop_desc[DESC_MAX]; /* why the stop began, for the reason line */
    struct loop_timer *grace_timer;

    /* between runs */
    bool restart_pending;    /* waiting for the old group to empty */
    bool old_group_killed;   /* it got SIGKILL: the grace timer re-checks it */
    const char *next_reason; /* RESIL_RESTART_REASON of the next start */
    struct supervisor_restart_budget budget;
    unsigned backoff_step;
    struct loop_timer *backoff_timer;

    /* the end */
    bool finishing;
    bool completed;
    bool leftovers_killed;
    bool reaping;
    int exit_code;
    char reason[REASON_MAX];
    struct child_pid_list signalled;
    struct loop_timer *final_timer;
};

static void reap_children(struct supervisor *sup);

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

/* --- status.json --- */

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
        .resil_pid = (int)getpid(),
        .app_pid = (int)sup->app.pid,
        .state = sup->state,
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

static void set_state(struct supervisor *sup, enum status_app_state state)
{
    sup->state = state;
    publish(sup);
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

static void complete(struct supervisor *sup)
{
    /* A SIGCHLD may still be queued after the last child was reaped. */
    if (sup->completed)
        return;
    sup->completed = true;
    struct log_field field = {.key = "exit_code", .num = sup->exit_code};
    log_emit(sup->exit_code == 0 ? LOG_LEVEL_INFO : LOG_LEVEL_ERROR, true, &field, 1, "%s",
             sup->reason);
    write_termination_log(sup->cfg, sup->reason);
    loop_stop(sup->loop);
}

static int remap_exit_code(const struct resil_config *cfg, int code)
{
    return code >= 0 && code < 256 && cfg->remap_exit[code] ? 0 : code;
}

/* Ends everything: leftovers get SIGTERM, then SIGKILL after --grace, and the
 * loop stops once no child is left. */
static void finish(struct supervisor *sup, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(struct supervisor *sup, int code, const char *fmt, ...)
{
    if (sup->finishing)
        return;
    sup->finishing = true;
    char desc[REASON_MAX - 96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    int final = remap_exit_code(sup->cfg, code);
    sup->exit_code = final;
    if (final != code)
        snprintf(sup->reason, sizeof sup->reason, "exit %d: %s (status %d remapped by -e)", final,
                 desc, code);
    else
        snprintf(sup->reason, sizeof sup->reason, "exit %d: %s", final, desc);

    loop_timer_disarm(sup->grace_timer);
    loop_timer_disarm(sup->backoff_timer);
    if (sup->health)
        health_app_stopped(sup->health);
    if (sup->memory)
        memory_watch(sup->memory, false);
    set_state(sup, STATUS_APP_EXITED);

    if (!child_signal_leftovers(sup->pid1, sup->app_pgid, SIGTERM, &sup->signalled))
        log_warn("cannot list the processes left behind (/proc/self/task: %s): only the app's "
                 "process group gets SIGTERM",
                 strerror(errno));
    loop_timer_arm(sup->final_timer, sup->cfg->grace_ms);
    if (!sup->reaping)
        reap_children(sup);
}

static void on_final_grace(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct supervisor *sup = data;
    sup->leftovers_killed = true;
    if (child_signal_leftovers(sup->pid1, sup->app_pgid, SIGKILL, NULL)) {
        log_warn("processes left after the app outlived the grace period: sent SIGKILL");
        return;
    }
    /* Without /proc a subreaper cannot find its children to kill them, and
     * waiting for them would outlast every grace period: they are left to
     * whoever reaps after resil-init. */
    log_warn("processes left after the grace period cannot be found without /proc: SIGKILL "
             "went to the app's process group only; exiting without waiting for the others");
    complete(sup);
}

/* --- starting the app --- */

static bool last_run_was_memory_failure(const struct supervisor *sup)
{
    return sup->next_reason &&
           (strcmp(sup->next_reason, "oom") == 0 || strcmp(sup->next_reason, "memory") == 0);
}

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

static void start_app(struct supervisor *sup)
{
    const char *reason = sup->next_reason ? sup->next_reason : "start";
    const struct memory_sample *mem = fresh_memory(sup);
    sup->emergency = last_run_was_memory_failure(sup) || (mem && mem->tier == MEMORY_TIER_CRITICAL);
    struct appenv_start how = {.memory = mem,
                               .emergency = sup->emergency,
                               .restart_count = sup->restarts,
                               .restart_reason = reason};
    char **env = appenv_build(sup->envp, &sup->appenv, &how);
    struct child_spawn req = {
        .argv = sup->cfg->command,
        .envp = env ? env : sup->envp,
        .signals = sup->signals,
        .loop = sup->loop,
    };
    int rc = child_spawn(&req, &sup->app);
    int err = errno;
    appenv_free(env);
    if (rc < 0) {
        finish(sup, 70, "resil-init failed: cannot start %s: %s: %s", sup->cfg->command[0],
               sup->app.failed_call ? sup->app.failed_call : "fork", strerror(err));
        return;
    }
    sup->app_pgid = sup->app.pid;
    sup->started_at_ms = util_realtime_ms();
    sup->started_mono_ms = loop_now_ms();
    sup->stop_cause = STOP_NONE;
    sup->app_killed_after_grace = false;
    log_info("started %s (pid %d, restart %u, reason %s%s)", sup->cfg->command[0],
             (int)sup->app.pid, sup->restarts, reason, sup->emergency ? ", EMERGENCY MODE" : "");
    if (sup->memory) {
        memory_app_started(sup->memory);
        memory_watch(sup->memory, true);
    }
    if (sup->health)
        health_app_started(sup->health);
    set_state(sup, sup->health ? STATUS_APP_STARTING : STATUS_APP_RUNNING);
}

static void on_backoff_done(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    start_app(data);
}

/* --- stopping the app --- */

static void begin_stop(struct supervisor *sup, enum stop_cause cause, int sig, bool single)
{
    sup->stop_cause = cause;
    if (sup->health)
        health_app_stopped(sup->health);
    signals_send_to_app(sup->app.pid, single, sig);
    if (!loop_timer_armed(sup->grace_timer))
        loop_timer_arm(sup->grace_timer, sup->cfg->grace_ms);
    /* An app stopped for being unhealthy shows so until it is gone. */
    bool unhealthy = cause == STOP_RESTART_UNHEALTHY || cause == STOP_EXIT_UNHEALTHY;
    set_state(sup, unhealthy ? STATUS_APP_UNHEALTHY : STATUS_APP_STOPPING);
}

static void after_reap(struct supervisor *sup, bool no_children_left);

static void on_grace_expired(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct supervisor *sup = data;
    if (sup->old_group_killed) {
        after_reap(sup, false);
        if (sup->restart_pending)
            loop_timer_arm(sup->grace_timer, GROUP_RECHECK_MS);
        return;
    }
    char grace[32];
    config_format_duration(grace, sizeof grace, sup->cfg->grace_ms);
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
    if (sup->restart_pending && sup->app.pid <= 0) {
        sup->old_group_killed = true;
        loop_timer_arm(sup->grace_timer, GROUP_RECHECK_MS);
    }
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

static void give_up(struct supervisor *sup, int code, const char *last)
{
    char window[32];
    config_format_duration(window, sizeof window, sup->cfg->restart_window_ms);
    finish(sup, code, "giving up after %u restarts in %s (--max-restarts %u); last: %s",
           sup->budget.count, window, sup->cfg->max_restarts, last);
}

/* The restart begins once the old group is empty (see after_reap). */
static void schedule_restart(struct supervisor *sup, const char *reason, int give_up_code,
                             const char *desc)
{
    uint64_t now = loop_now_ms();
    if (!supervisor_restart_budget_allows(&sup->budget, now)) {
        give_up(sup, give_up_code, desc);
        return;
    }
    supervisor_restart_budget_record(&sup->budget, now);
    if (now - sup->started_mono_ms >= sup->cfg->restart_window_ms)
        sup->backoff_step = 0;
    sup->restarts++;
    sup->next_reason = reason;
    sup->restart_pending = true;
    log_warn("%s: restarting (reason %s, restart %u of %u allowed in the window)", desc, reason,
             sup->budget.count, sup->cfg->max_restarts);
    if (child_group_alive(sup->app_pgid)) {
        child_signal_group(sup->app_pgid, SIGTERM);
        if (!loop_timer_armed(sup->grace_timer))
            loop_timer_arm(sup->grace_timer, sup->cfg->grace_ms);
        set_state(sup, STATUS_APP_STOPPING);
    }
}

static void enter_backoff(struct supervisor *sup)
{
    sup->restart_pending = false;
    sup->old_group_killed = false;
    loop_timer_disarm(sup->grace_timer);
    uint64_t delay = supervisor_backoff_delay_ms(sup->cfg->backoff_min_ms, sup->cfg->backoff_max_ms,
                                                 sup->backoff_step);
    if (sup->backoff_step < 64)
        sup->backoff_step++;
    char when[32];
    config_format_duration(when, sizeof when, delay);
    log_info("next start in %s", when);
    loop_timer_arm(sup->backoff_timer, delay);
    set_state(sup, STATUS_APP_BACKOFF);
}

/* --- the app's end --- */

/* tier_before_exit: the last sample taken while the app lived; once it is dead
 * its memory is freed and a fresh sample says nothing about its end. */
static bool died_of_oom(struct supervisor *sup, int status, enum memory_tier tier_before_exit)
{
    if (!sup->memory)
        return false;
    if (memory_oom_since_start(sup->memory))
        return true;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !sup->app_killed_after_grace &&
           tier_before_exit == MEMORY_TIER_CRITICAL;
}

static void record_exit(struct supervisor *sup, int status, const char *reason)
{
    sup->last_exit.present = true;
    sup->last_exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    sup->last_exit.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    snprintf(sup->last_exit.reason, sizeof sup->last_exit.reason, "%s", reason);
    sup->last_exit.at_ms = util_realtime_ms();
}

static void end_after_stop_signal(struct supervisor *sup, int status, const char *what)
{
    char grace[32];
    config_format_duration(grace, sizeof grace, sup->cfg->grace_ms);
    if (sup->app_killed_after_grace)
        finish(sup, 137,
               "stopped by SIG%s: app did not exit within the %s grace period and was killed",
               sig_name(sup->stop_signal), grace);
    else
        finish(sup, child_status_code(status), "stopped by SIG%s: %s", sig_name(sup->stop_signal),
               what);
}

static void end_after_resil_stop(struct supervisor *sup, int code)
{
    char grace[32];
    config_format_duration(grace, sizeof grace, sup->cfg->grace_ms);
    if (sup->app_killed_after_grace)
        finish(sup, code, "%s; the app then outlived the %s grace period and was killed",
               sup->stop_desc, grace);
    else
        finish(sup, code, "%s", sup->stop_desc);
}

static void end_by_itself(struct supervisor *sup, int status, const char *what,
                          enum memory_tier tier_before_exit)
{
    bool failure = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    bool oom = failure && died_of_oom(sup, status, tier_before_exit);
    /* An app that exited by itself after an OOM kill in its cgroup (one of its
     * workers went) reports its own status; only a death by SIGKILL is the
     * OOM killer's 137. */
    bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    const char *reason = oom ? "oom" : failure ? "crash" : "exit";
    int code = oom && killed ? 137 : child_status_code(status);
    char desc[DESC_MAX];
    if (oom && killed)
        snprintf(desc, sizeof desc, "OOM kill: %s after the kernel's OOM killer struck", what);
    else if (oom)
        snprintf(desc, sizeof desc, "%s after the kernel OOM-killed a process in its cgroup", what);
    else
        snprintf(desc, sizeof desc, "%s", what);
    record_exit(sup, status, reason);
    if (restart_allowed_by_policy(sup->cfg, failure) && sup->cfg->max_restarts > 0)
        schedule_restart(sup, reason, code, desc);
    else if (restart_allowed_by_policy(sup->cfg, failure))
        finish(sup, code, "%s; not restarting (--max-restarts 0)", desc);
    else
        finish(sup, code, "%s", desc);
}

static void on_app_exit(struct supervisor *sup, int status)
{
    int exec_err = child_reaped(&sup->app);
    loop_timer_disarm(sup->grace_timer);
    if (sup->health)
        health_app_stopped(sup->health);
    enum memory_tier tier_before_exit = MEMORY_TIER_UNKNOWN;
    if (sup->memory) {
        tier_before_exit = memory_current(sup->memory)->tier;
        memory_refresh(sup->memory);
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
    switch (sup->stop_cause) {
    case STOP_SIGNAL:
        record_exit(sup, status, "stop");
        end_after_stop_signal(sup, status, what);
        break;
    case STOP_EXIT_UNHEALTHY:
        record_exit(sup, status, "unhealthy");
        end_after_resil_stop(sup, 69);
        break;
    case STOP_EXIT_MEMORY:
        record_exit(sup, status, "memory");
        end_after_resil_stop(sup, 137);
        break;
    case STOP_RESTART_UNHEALTHY:
        record_exit(sup, status, "unhealthy");
        schedule_restart(sup, "unhealthy", 69, sup->stop_desc);
        break;
    case STOP_RESTART_MEMORY:
        record_exit(sup, status, "memory");
        schedule_restart(sup, "memory", 137, sup->stop_desc);
        break;
    case STOP_NONE:
        end_by_itself(sup, status, what, tier_before_exit);
        break;
    }
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
    if (sup->finishing) {
        if (no_children_left) {
            complete(sup);
            return;
        }
        /* A subreaper learns of grandchildren only as their parents die. */
        if (!sup->pid1)
            (void)child_signal_leftovers(false, sup->app_pgid,
                                         sup->leftovers_killed ? SIGKILL : SIGTERM,
                                         sup->leftovers_killed ? NULL : &sup->signalled);
        return;
    }
    if (sup->restart_pending && sup->app.pid == 0 && !child_group_alive(sup->app_pgid)) {
        if (sup->stop_signal)
            finish(sup, 128 + sup->stop_signal,
                   "stopped by SIG%s while the app was being restarted",
                   sig_name(sup->stop_signal));
        else
            enter_backoff(sup);
    }
}

static void reap_children(struct supervisor *sup)
{
    sup->reaping = true;
    bool none_left = child_reap_all(on_child_exit, sup);
    sup->reaping = false;
    after_reap(sup, none_left);
}

/* --- signals --- */

static void handle_stop_signal(struct supervisor *sup, int sig, int target)
{
    sup->stop_signal = sig;
    if (sup->app.pid <= 0) {
        if (sup->restart_pending)
            return; /* after_reap ends it once the old group is gone */
        finish(sup, 128 + sig, "stopped by SIG%s while waiting to restart the app", sig_name(sig));
        return;
    }
    char grace[32];
    config_format_duration(grace, sizeof grace, sup->cfg->grace_ms);
    log_info("received SIG%s: forwarding SIG%s to the app, %s grace before SIGKILL", sig_name(sig),
             sig_name(target), grace);
    begin_stop(sup, STOP_SIGNAL, target, sup->cfg->single_child);
}

static void handle_signal(struct supervisor *sup, int sig)
{
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
    if (sup->finishing)
        return;
    if ((sig == SIGTERM || sig == SIGINT) && !sup->stop_signal) {
        handle_stop_signal(sup, sig, target);
        return;
    }
    if (sup->app.pid > 0) {
        log_debug("forwarding SIG%s as SIG%s", sig_name(sig), sig_name(target));
        signals_send_to_app(sup->app.pid, sup->cfg->single_child, target);
    }
}

static void on_signal_fd(struct loop *loop, int fd, uint32_t events, void *data)
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
    if (may_restart && budget_left(sup)) {
        snprintf(sup->stop_desc, sizeof sup->stop_desc, "%s", desc);
        begin_stop(sup, STOP_RESTART_UNHEALTHY, SIGTERM, false);
        return;
    }
    const char *why =
        !may_restart ? (sup->cfg->on_unhealthy == CONFIG_ON_UNHEALTHY_EXIT ? "--on-unhealthy exit"
                                                                           : "restart policy is no")
                     : "restart budget spent";
    snprintf(sup->stop_desc, sizeof sup->stop_desc, "%s; not restarting (%s)", desc, why);
    begin_stop(sup, STOP_EXIT_UNHEALTHY, SIGTERM, false);
}

static void on_health_change(void *ctx, enum health_status old_status,
                             enum health_status new_status, const struct health_check_result *last)
{
    (void)old_status;
    struct supervisor *sup = ctx;
    if (sup->app.pid <= 0 || sup->finishing || sup->stop_cause != STOP_NONE) {
        publish(sup);
        return;
    }
    if (new_status == HEALTH_STATUS_HEALTHY)
        set_state(sup, STATUS_APP_RUNNING);
    else if (new_status == HEALTH_STATUS_UNHEALTHY)
        decide_unhealthy(sup, last);
    else
        publish(sup);
}

/* A check that changed nothing but its time is not written: renaming over
 * status.json makes ext4 write it back to disk, which would be most of what a
 * check costs. */
static void on_health_checked(void *ctx)
{
    struct supervisor *sup = ctx;
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
    if (new_tier > old_tier && old_tier != MEMORY_TIER_UNKNOWN && sup->cfg->pressure_signal &&
        sup->app.pid > 0 && sup->stop_cause == STOP_NONE) {
        log_info("sending SIG%s to the app (memory tier rose)",
                 sig_name(sup->cfg->pressure_signal));
        signals_send_to_app(sup->app.pid, sup->cfg->single_child, sup->cfg->pressure_signal);
    }
    publish(sup);
}

static void on_memory_restart(void *ctx, const struct memory_sample *s)
{
    struct supervisor *sup = ctx;
    if (sup->app.pid <= 0 || sup->finishing || sup->stop_cause != STOP_NONE)
        return;
    char threshold[32];
    config_format_duration(threshold, sizeof threshold, sup->cfg->memory_restart_for_ms);
    snprintf(sup->stop_desc, sizeof sup->stop_desc,
             "memory: working set %llu MiB stayed at or above --memory-restart for %s",
             (unsigned long long)(s->working_set_bytes >> 20), threshold);
    if (restart_allowed_by_policy(sup->cfg, true) && budget_left(sup)) {
        begin_stop(sup, STOP_RESTART_MEMORY, SIGTERM, false);
        return;
    }
    size_t len = strlen(sup->stop_desc);
    snprintf(sup->stop_desc + len, sizeof sup->stop_desc - len, "; not restarting (%s)",
             sup->cfg->restart == CONFIG_RESTART_NO ? "restart policy is no"
                                                    : "restart budget spent");
    begin_stop(sup, STOP_EXIT_MEMORY, SIGTERM, false);
}

static void on_oom_kill(void *ctx, uint64_t total)
{
    struct supervisor *sup = ctx;
    log_warn("the kernel OOM-killed a process in this cgroup (%llu OOM kills so far)",
             (unsigned long long)total);
    publish(sup);
}

/* --- setup and teardown --- */

/* Each module gets its own options, taken from the configuration here. */
static void setup_memory(struct supervisor *sup)
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
    };
    sup->memory = memory_new(sup->loop, &sup->memory_opts, &mcb);
    sup->appenv = (struct appenv_options){
        .emergency_env = cfg->emergency_env,
        .emergency_env_count = cfg->emergency_env_count,
        .emergency_env_explicit = cfg->emergency_env_explicit,
        .runtime_hints = cfg->runtime_hints,
    };
}

static int setup_health(struct supervisor *sup)
{
    const struct resil_config *cfg = sup->cfg;
    if (!cfg->health_url)
        return 0;
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
        snprintf(sup->reason, sizeof sup->reason, "cannot set up the health check: %s", err);
        return -1;
    }
    health_set_check_cb(sup->health, on_health_checked);
    return 0;
}

/* The reason line names what could not be had, and why. */
static int setup_failed(struct supervisor *sup, const char *what)
{
    snprintf(sup->reason, sizeof sup->reason, "cannot set up %s: %s", what, strerror(errno));
    return -1;
}

static int setup(struct supervisor *sup, const struct resil_config *cfg, char **envp)
{
    sup->cfg = cfg;
    sup->envp = envp;
    sup->pid1 = getpid() == 1;
    /* Orphans of the app must come to resil-init, not to the host's init. */
    if (!sup->pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("cannot become child subreaper: %s", strerror(errno));
    if (cfg->pdeath_signal && prctl(PR_SET_PDEATHSIG, cfg->pdeath_signal) < 0)
        log_warn("cannot set parent-death signal: %s", strerror(errno));
    if (supervisor_restart_budget_init(&sup->budget, cfg->max_restarts, cfg->restart_window_ms) <
        0) {
        return setup_failed(sup, "the restart budget (--max-restarts)");
    }
    sup->loop = loop_new();
    if (!sup->loop)
        return setup_failed(sup, "the event loop (epoll)");
    sup->signals = signals_setup();
    if (!sup->signals ||
        loop_add_fd(sup->loop, signals_fd(sup->signals), EPOLLIN, on_signal_fd, sup) < 0)
        return setup_failed(sup, "signal handling (signalfd)");
    sup->grace_timer = loop_timer_new(sup->loop, on_grace_expired, sup);
    sup->backoff_timer = loop_timer_new(sup->loop, on_backoff_done, sup);
    sup->final_timer = loop_timer_new(sup->loop, on_final_grace, sup);
    if (!sup->grace_timer || !sup->backoff_timer || !sup->final_timer)
        return setup_failed(sup, "timers (timerfd)");
    sup->state_dir = status_dir_resolve(cfg->state_dir, true);
    setup_memory(sup);
    return setup_health(sup);
}

static void teardown(struct supervisor *sup)
{
    health_free(sup->health);
    memory_free(sup->memory);
    loop_timer_free(sup->grace_timer);
    loop_timer_free(sup->backoff_timer);
    loop_timer_free(sup->final_timer);
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
    int code;
    if (setup(&sup, cfg, envp) < 0) {
        code = remap_exit_code(cfg, 70);
        char desc[REASON_MAX - 32];
        snprintf(desc, sizeof desc, "%.3900s", sup.reason[0] ? sup.reason : "cannot set up");
        snprintf(sup.reason, sizeof sup.reason, "exit %d: resil-init failed: %s", code, desc);
        log_emit(LOG_LEVEL_ERROR, true, NULL, 0, "%s", sup.reason);
        write_termination_log(cfg, sup.reason);
    } else {
        start_app(&sup);
        if (loop_run(sup.loop) < 0) {
            log_error("resil-init failed: epoll: %s", strerror(errno));
            sup.exit_code = 70;
        }
        code = sup.exit_code;
    }
    teardown(&sup);
    return code;
}
