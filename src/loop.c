/* The event loop: the epoll set, its file descriptors and timers, and the
 * monotonic clock. Every source is a file descriptor in one epoll set; timers are
 * timerfds, so an idle resil-init waits with no timeout at all.
 * A timer whose timerfd cannot be had (no descriptor left) is kept on the short
 * list instead and timed by epoll_wait's own timeout: a grace or backoff must
 * run out even when the process is out of descriptors.
 * While nothing but a signal can end the wait (the signalfd aside, only
 * listeners, which the kernel makes raise a signal, and no timerfd armed),
 * the loop waits in sigtimedwait instead: the same events, one wake-up
 * path shorter for the signal a platform sends to stop the app. */
#define _GNU_SOURCE /* F_SETSIG */
#include "resil/loop.h"
#include "resil/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "resil/log.h"

#define LOOP_BATCH 32

struct watch {
    int fd; /* -1 once deleted; freed after the current batch */
    uint32_t events;
    bool listener;      /* loop_add_listener: may be told by the I/O signal */
    bool signal_driven; /* ...and is (F_SETSIG done) */
    loop_fd_cb cb;
    void *data;
    struct watch *next;
};

struct loop_timer {
    struct loop *loop;
    int fd; /* -1 until first armed with a delay: most timers never are */
    bool armed;
    bool immediate;  /* on the short list: runs once due_ms is reached, no timerfd */
    bool after_wait; /* ...or before anything else the loop calls (arm_after_wait) */
    uint64_t due_ms;
    loop_timer_cb cb;
    void *data;
};

/* Timers armed with delay 0 (libcurl asks for that at every step of a
 * transfer) run on the next turn without a timerfd round trip; so do timers
 * that could not get a timerfd, once their time has come. */
#define LOOP_IMMEDIATE_MAX 16

struct loop {
    int epfd;
    bool stopping;
    struct watch *watches;
    struct loop_timer *immediate[LOOP_IMMEDIATE_MAX];
    size_t nimmediate;
    size_t nafter_wait; /* how many of them are after_wait */
    struct {            /* loop_set_signal_wait */
        const sigset_t *set;
        int fd; /* the signalfd, which the signal wait leaves alone */
        int io_signo;
        loop_signal_cb cb;
        void *data;
        bool recheck_listeners; /* epoll must look at the listeners once more */
    } sigwait;
};

uint64_t loop_now_ms(void)
{
    struct timespec ts;
    util_clock(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
    struct loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->sigwait.fd = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    return loop;
}

static struct watch *find_watch(struct loop *loop, int fd)
{
    for (struct watch *w = loop->watches; w; w = w->next)
        if (w->fd == fd)
            return w;
    return NULL;
}

int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *data)
{
    struct watch *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->fd = fd;
    w->events = events;
    w->cb = cb;
    w->data = data;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int saved = errno;
        free(w);
        errno = saved;
        return -1;
    }
    w->next = loop->watches;
    loop->watches = w;
    return 0;
}

int loop_mod_fd(struct loop *loop, int fd, uint32_t events)
{
    struct watch *w = find_watch(loop, fd);
    if (!w) {
        errno = ENOENT;
        return -1;
    }
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    /* A listener let in again: what waited meanwhile was told, and dropped. */
    if (w->signal_driven && !(w->events & EPOLLIN) && (events & EPOLLIN))
        loop->sigwait.recheck_listeners = true;
    w->events = events;
    return 0;
}

/* The kernel queues the I/O signal, with the descriptor in si_fd, for each
 * connection: the signal wait hears of it. A descriptor that refuses stays
 * on epoll alone, which only costs the signal wait. */
static void make_signal_driven(struct loop *loop, struct watch *w)
{
    int flags = fcntl(w->fd, F_GETFL);
    if (flags < 0 || fcntl(w->fd, F_SETOWN, getpid()) < 0 ||
        fcntl(w->fd, F_SETSIG, loop->sigwait.io_signo) < 0 ||
        fcntl(w->fd, F_SETFL, flags | O_ASYNC) < 0)
        return;
    w->signal_driven = true;
}

int loop_add_listener(struct loop *loop, int fd, loop_fd_cb cb, void *data)
{
    if (loop_add_fd(loop, fd, EPOLLIN, cb, data) < 0)
        return -1;
    loop->watches->listener = true;
    if (loop->sigwait.cb)
        make_signal_driven(loop, loop->watches);
    return 0;
}

void loop_set_signal_wait(struct loop *loop, int signal_fd, const sigset_t *set, int io_signo,
                          loop_signal_cb cb, void *data)
{
    loop->sigwait.set = set;
    loop->sigwait.fd = signal_fd;
    loop->sigwait.io_signo = io_signo;
    loop->sigwait.cb = cb;
    loop->sigwait.data = data;
    for (struct watch *w = loop->watches; w; w = w->next)
        if (w->fd >= 0 && w->listener)
            make_signal_driven(loop, w);
}

/* The watch itself is freed after the batch being dispatched, which may still
 * hold a pointer to it. */
static struct watch *forget_watch(struct loop *loop, int fd)
{
    struct watch *w = find_watch(loop, fd);
    if (w)
        w->fd = -1;
    return w;
}

void loop_del_fd(struct loop *loop, int fd)
{
    if (forget_watch(loop, fd))
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void free_deleted_watches(struct loop *loop)
{
    struct watch **link = &loop->watches;
    while (*link) {
        struct watch *w = *link;
        if (w->fd < 0) {
            *link = w->next;
            free(w);
        } else {
            link = &w->next;
        }
    }
}

static void timer_fired(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)loop;
    (void)events;
    struct loop_timer *t = data;
    uint64_t expirations;
    if (read(fd, &expirations, sizeof expirations) < 0)
        return; /* EAGAIN: re-armed or disarmed since it fired */
    t->armed = false;
    t->cb(t->loop, t, t->data);
}

/* No timerfd yet: a timer costs its system calls only once it is armed with a
 * delay, so a run that never waits on it (`resil-init -- true`) pays nothing. */
struct loop_timer *loop_timer_new(struct loop *loop, loop_timer_cb cb, void *data)
{
    struct loop_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->loop = loop;
    t->cb = cb;
    t->data = data;
    t->fd = -1;
    return t;
}

static int timer_fd(struct loop_timer *t)
{
    if (t->fd >= 0)
        return 0;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0 || loop_add_fd(t->loop, fd, EPOLLIN, timer_fired, t) < 0) {
        log_warn("resil-init: cannot create a timer: %s; timing it by the loop's wait instead",
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    t->fd = fd;
    return 0;
}

static int timer_set(struct loop_timer *t, uint64_t delay_ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(delay_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(delay_ns % 1000000000ull);
    return timerfd_settime(t->fd, 0, &its, NULL);
}

static void immediate_remove(struct loop *loop, struct loop_timer *t)
{
    if (t->after_wait) {
        t->after_wait = false;
        loop->nafter_wait--;
    }
    for (size_t i = 0; i < loop->nimmediate; i++) {
        if (loop->immediate[i] == t) {
            loop->immediate[i] = loop->immediate[--loop->nimmediate];
            return;
        }
    }
}

/* On the short list, due delay_ms from now: epoll_wait's timeout times it. */
static void arm_on_short_list(struct loop_timer *t, uint64_t delay_ms)
{
    struct loop *loop = t->loop;
    loop->immediate[loop->nimmediate++] = t;
    t->immediate = true;
    t->due_ms = delay_ms ? loop_now_ms() + delay_ms : 0;
    t->armed = true;
}

int loop_timer_arm_by_wait(struct loop_timer *t, uint64_t delay_ms)
{
    loop_timer_disarm(t);
    if (t->loop->nimmediate >= LOOP_IMMEDIATE_MAX)
        return loop_timer_arm(t, delay_ms);
    arm_on_short_list(t, delay_ms);
    return 0;
}

int loop_timer_arm_after_wait(struct loop_timer *t, uint64_t max_ms)
{
    loop_timer_disarm(t);
    if (t->loop->nimmediate >= LOOP_IMMEDIATE_MAX)
        return -1; /* a timerfd could not keep the promise of going first */
    /* 0 would be due at the end of this very turn, before any wait. */
    arm_on_short_list(t, max_ms ? max_ms : 1);
    t->after_wait = true;
    t->loop->nafter_wait++;
    return 0;
}

int loop_timer_arm(struct loop_timer *t, uint64_t delay_ms)
{
    loop_timer_disarm(t);
    struct loop *loop = t->loop;
    bool room = loop->nimmediate < LOOP_IMMEDIATE_MAX;
    if ((delay_ms == 0 && room) || (timer_fd(t) < 0 && room)) {
        arm_on_short_list(t, delay_ms);
        return 0;
    }
    if (t->fd < 0 ||
        /* An all-zero it_value would disarm: "now" is one nanosecond away. */
        timer_set(t, delay_ms ? delay_ms * 1000000ull : 1) < 0)
        return -1;
    t->armed = true;
    return 0;
}

void loop_timer_disarm(struct loop_timer *t)
{
    if (!t || !t->armed)
        return;
    t->armed = false;
    if (t->immediate) {
        t->immediate = false;
        immediate_remove(t->loop, t);
        return;
    }
    timer_set(t, 0);
    /* Drop an expiration that is already pending so it cannot fire late. */
    uint64_t expirations;
    while (read(t->fd, &expirations, sizeof expirations) > 0) {
    }
}

bool loop_timer_armed(const struct loop_timer *t)
{
    return t && t->armed;
}

/* Closing the timerfd takes it out of the epoll set and drops whatever it
 * had pending: no disarm, no EPOLL_CTL_DEL needed. */
void loop_timer_free(struct loop_timer *t)
{
    if (!t)
        return;
    if (t->immediate)
        immediate_remove(t->loop, t);
    if (t->fd >= 0) {
        forget_watch(t->loop, t->fd);
        close(t->fd);
    }
    free(t);
}

static void run_after_wait(struct loop *loop);

/* Runs the timers in due[0..n). Each is taken off the short list before its
 * callback, which may arm it (or others) again for the turn after; what one
 * of them puts off with arm_after_wait still goes before the next, unless
 * they are themselves such timers (after_wait). */
static void run_short_list(struct loop *loop, struct loop_timer **due, size_t n, bool after_wait)
{
    for (size_t i = 0; i < n; i++) {
        struct loop_timer *t = due[i];
        if (!after_wait)
            run_after_wait(loop);
        /* An earlier callback may have disarmed or freed it (freeing disarms):
         * only a timer still on the list is run, and t is compared, not read. */
        bool still = false;
        for (size_t j = 0; j < loop->nimmediate; j++)
            still = still || loop->immediate[j] == t;
        if (!still)
            continue;
        immediate_remove(loop, t);
        t->immediate = false;
        t->armed = false;
        t->cb(loop, t, t->data);
        if (loop->stopping)
            return;
    }
}

/* What arm_after_wait put off runs now: the loop has waited since, or is
 * about to call something else. */
static void run_after_wait(struct loop *loop)
{
    if (loop->nafter_wait == 0)
        return;
    size_t n = 0;
    struct loop_timer *due[LOOP_IMMEDIATE_MAX] = {NULL};
    for (size_t i = 0; i < loop->nimmediate; i++)
        if (loop->immediate[i]->after_wait)
            due[n++] = loop->immediate[i];
    run_short_list(loop, due, n, true);
}

/* The short list's timers whose time has come. */
static void run_immediate(struct loop *loop)
{
    if (loop->nimmediate == 0)
        return; /* no clock read on the way back to sleep */
    uint64_t now = loop_now_ms();
    size_t n = 0;
    struct loop_timer *due[LOOP_IMMEDIATE_MAX] = {NULL};
    for (size_t i = 0; i < loop->nimmediate; i++)
        if (!loop->immediate[i]->after_wait && loop->immediate[i]->due_ms <= now)
            due[n++] = loop->immediate[i];
    run_short_list(loop, due, n, false);
}

/* -1 (forever) with nothing on the short list, else the milliseconds until the
 * first of it is due; at least 1 for an after_wait timer, which is there to
 * let the CPU go. */
static int wait_timeout_ms(const struct loop *loop)
{
    if (loop->nimmediate == 0)
        return -1;
    uint64_t now = loop_now_ms();
    uint64_t wait = UINT64_MAX;
    for (size_t i = 0; i < loop->nimmediate; i++) {
        const struct loop_timer *t = loop->immediate[i];
        uint64_t left = t->due_ms > now ? t->due_ms - now : 0;
        if (t->after_wait && left == 0)
            left = 1;
        if (left < wait)
            wait = left;
    }
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* Whether nothing but a signal (the I/O signal included) can end the wait:
 * then the loop waits in sigtimedwait, which the kernel wakes straight from
 * the sender, rather than in epoll on the signalfd, whose wake-up goes through
 * two wait queues and a read() (bench/results.md). A timerfd disarmed, or
 * whose timer is on the short list, can never be ready. */
UTIL_HOT static bool only_signals_can_wake(const struct loop *loop)
{
    if (!loop->sigwait.cb || loop->sigwait.recheck_listeners)
        return false;
    for (const struct watch *w = loop->watches; w; w = w->next) {
        if (w->fd < 0 || w->fd == loop->sigwait.fd || w->signal_driven)
            continue;
        if (w->cb == timer_fired) {
            const struct loop_timer *t = w->data;
            if (!t->armed || t->immediate)
                continue;
        }
        return false;
    }
    return true;
}

UTIL_HOT bool loop_is_listener_notice(int io_signo, int signo, int code)
{
    return (signo == io_signo && code > 0 && code <= POLL_HUP) ||
           (signo == SIGIO && code == SI_KERNEL);
}

UTIL_HOT static void take_signal(struct loop *loop, const siginfo_t *si)
{
    if (loop_is_listener_notice(loop->sigwait.io_signo, si->si_signo, si->si_code)) {
        struct watch *w = si->si_code == SI_KERNEL ? NULL : find_watch(loop, si->si_fd);
        if (!w)
            loop->sigwait.recheck_listeners = true; /* which ones: epoll tells */
        else if (w->signal_driven && (w->events & EPOLLIN))
            w->cb(loop, w->fd, EPOLLIN, w->data);
        return;
    }
    loop->sigwait.cb(loop, si->si_signo, loop->sigwait.data);
}

UTIL_HOT static int dispatch_signal_wait(struct loop *loop)
{
    siginfo_t si;
#ifdef __clang_analyzer__
    memset(&si, 0, sizeof si); /* (see dispatch_once) */
#endif
    int timeout = wait_timeout_ms(loop);
    struct timespec ts = {.tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000};
    long sig = util_sys6(SYS_rt_sigtimedwait, (long)loop->sigwait.set, (long)&si,
                         timeout < 0 ? 0 : (long)&ts, 8, 0, 0);
    if (sig < 0 && sig != -EAGAIN) {
        errno = (int)-sig;
        return errno == EINTR ? 0 : -1;
    }
    run_after_wait(loop);
    if (sig > 0)
        take_signal(loop, &si);
    free_deleted_watches(loop);
    if (!loop->stopping)
        run_immediate(loop);
    return 0;
}

/* On the forwarding path (UTIL_HOT in util.h). */
UTIL_HOT static int dispatch_once(struct loop *loop)
{
    if (only_signals_can_wake(loop))
        return dispatch_signal_wait(loop);
    /* No analyzer knows what the kernel writes through the asm: zeroed for
     * them alone, so the real loop pays no memset per turn. */
    struct epoll_event events[LOOP_BATCH];
#ifdef __clang_analyzer__
    memset(events, 0, sizeof events);
#endif
    int timeout = loop->sigwait.recheck_listeners ? 0 : wait_timeout_ms(loop);
    long n = util_sys6(SYS_epoll_pwait, loop->epfd, (long)events, LOOP_BATCH, timeout,
                       0 /* no mask */, 8);
    if (n < 0) {
        errno = (int)-n;
        return errno == EINTR ? 0 : -1;
    }
    /* The signalfd's reader drops the I/O signals (signals_next): a listener
     * served here may keep connections that no signal will tell of, so epoll
     * looks again before the signal wait takes over. */
    loop->sigwait.recheck_listeners = false;
    for (long i = 0; i < n; i++) {
        struct watch *w = events[i].data.ptr;
        run_after_wait(loop); /* armed before the wait, or by the last callback */
        if (w && w->fd >= 0) {
            loop->sigwait.recheck_listeners |= w->signal_driven;
            w->cb(loop, w->fd, events[i].events, w->data);
        }
    }
    if (n == 0)
        run_after_wait(loop); /* the wait timed out */
    free_deleted_watches(loop);
    if (!loop->stopping)
        run_immediate(loop);
    return 0;
}

/* A stop asked for before the loop runs (the first start of the app failed)
 * ends it at once; a stop is spent by the run it ends. */
int loop_run(struct loop *loop)
{
    int rc = 0;
    while (!loop->stopping && rc == 0)
        rc = dispatch_once(loop);
    loop->stopping = false;
    return rc;
}

void loop_stop(struct loop *loop)
{
    loop->stopping = true;
}

void loop_close_all_in_child(struct loop *loop)
{
    for (struct watch *w = loop->watches; w; w = w->next)
        if (w->fd >= 0)
            close(w->fd);
    close(loop->epfd);
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    for (struct watch *w = loop->watches; w; w = w->next)
        w->fd = -1;
    free_deleted_watches(loop);
    close(loop->epfd);
    free(loop);
}
