/* Signal plumbing for PID 1: the blocked set and its signalfd, which signals
 * pass on to the app and as what (-r), and sending them. Blocking rather than
 * handlers: a PID 1 without a handler never receives signals from inside its
 * namespace, while a blocked signal is always queued, and taking it in the
 * loop (from the signalfd, or by the loop's own sigtimedwait while nothing
 * else can wake it) keeps every decision out of async-signal context. */
#include "resil/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "resil/loop.h"
#include "resil/util.h"

struct signals {
    int fd;
    sigset_t blocked;
    sigset_t inherited_mask;
    struct sigaction inherited_chld;
    bool chld_changed;
};

/* Faults raised by resil-init's own code must keep their default action. */
static bool is_synchronous(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP ||
           sig == SIGSYS || sig == SIGABRT;
}

static void fill_blockable(sigset_t *set)
{
    sigfillset(set);
    for (int sig = 1; sig < NSIG; sig++)
        if (is_synchronous(sig))
            sigdelset(set, sig);
}

/* With SIGCHLD ignored the kernel would reap children itself and the app's exit
 * status would be lost. */
static int ensure_sigchld_default(struct signals *s)
{
    if (sigaction(SIGCHLD, NULL, &s->inherited_chld) < 0)
        return -1;
    if (s->inherited_chld.sa_handler != SIG_IGN && !(s->inherited_chld.sa_flags & SA_NOCLDWAIT))
        return 0;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    s->chld_changed = true;
    return sigaction(SIGCHLD, &dfl, NULL);
}

struct signals *signals_setup(void)
{
    struct signals *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = -1;
    fill_blockable(&s->blocked);
    if (sigprocmask(SIG_SETMASK, NULL, &s->inherited_mask) < 0 || ensure_sigchld_default(s) < 0 ||
        sigprocmask(SIG_BLOCK, &s->blocked, NULL) < 0)
        goto fail;
    s->fd = signalfd(-1, &s->blocked, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->fd < 0)
        goto fail;
    return s;
fail:
    signals_free(s);
    return NULL;
}

int signals_fd(const struct signals *s)
{
    return s->fd;
}

const sigset_t *signals_blocked(const struct signals *s)
{
    return &s->blocked;
}

int signals_io_signal(void)
{
    return SIGRTMAX;
}

UTIL_HOT int signals_next(struct signals *s)
{
    struct signalfd_siginfo info;
#ifdef __clang_analyzer__
    info.ssi_signo = 0; /* (see dispatch_once) */
    info.ssi_code = 0;
#endif
    for (;;) {
        long n = util_sys6(SYS_read, s->fd, (long)&info, sizeof info, 0, 0, 0);
        /* The listeners' notices: epoll reports those sockets itself. */
        if (n == (long)sizeof info &&
            !loop_is_listener_notice(signals_io_signal(), (int)info.ssi_signo, info.ssi_code))
            return (int)info.ssi_signo;
        if (n == (long)sizeof info || n == -EINTR)
            continue;
        return 0;
    }
}

void signals_restore_in_child(const struct signals *s)
{
    if (s->chld_changed)
        sigaction(SIGCHLD, &s->inherited_chld, NULL);
    sigprocmask(SIG_SETMASK, &s->inherited_mask, NULL);
}

void signals_free(struct signals *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

UTIL_HOT int signals_rewrite(const int rewrite[RESIL_MAX_SIGNAL], int sig)
{
    if (sig > 0 && sig < RESIL_MAX_SIGNAL && rewrite[sig] >= 0)
        return rewrite[sig];
    return sig;
}

UTIL_HOT bool signals_forwardable(int sig)
{
    return sig != SIGCHLD && sig != SIGPIPE && !is_synchronous(sig);
}

UTIL_HOT int signals_send_to_app(pid_t app_pid, bool single, int sig)
{
    if (app_pid <= 0)
        return -1;
    /* The app may have made itself a group leader elsewhere; its own pid is
     * still reachable then. */
    int rc = 0;
    long r = single ? -1 : util_sys6(SYS_kill, -app_pid, sig, 0, 0, 0, 0);
    if (r < 0)
        r = util_sys6(SYS_kill, app_pid, sig, 0, 0, 0, 0);
    if (r < 0) {
        errno = (int)-r;
        rc = -1;
    }
    /* The app is runnable now; on a busy (or the same) CPU, resil-init's
     * bookkeeping that follows (a log line, status.json, a timer) would run
     * before its handler. Yielding lets the app go first (a few hundred µs in
     * bench/'s SIGTERM figure on a loaded machine); with nothing else to run
     * it returns at once. */
    util_sys6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
    return rc;
}
