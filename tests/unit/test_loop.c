/* The event loop: fds, timers, deletion during dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "resil/loop.h"

struct counter {
    int fired;
    struct loop_timer *other;
};

static void count_and_stop(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    struct counter *c = data;
    c->fired++;
    loop_stop(loop);
}

static void timer_fires_once_after_delay(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter c = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &c);
    uint64_t start = loop_now_ms();
    loop_timer_arm(t, 50);
    assert_true(loop_timer_armed(t));
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(c.fired, 1);
    assert_true(loop_now_ms() - start >= 50);
    assert_false(loop_timer_armed(t));
    loop_timer_free(t);
    loop_free(loop);
}

/* Out of descriptors, a timer still runs out on time (the grace of a stop
 * must): it is timed by epoll_wait's timeout instead of a timerfd. */
static void a_timer_runs_out_without_a_descriptor(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter c = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &c);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int highest = fcntl(0, F_DUPFD_CLOEXEC, 0); /* the lowest free descriptor */
    assert_true(highest >= 0);
    close(highest);
    struct rlimit none = {.rlim_cur = (rlim_t)highest, .rlim_max = saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
    uint64_t start = loop_now_ms();
    int armed = loop_timer_arm(t, 50);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_int_equal(armed, 0);
    assert_true(loop_timer_armed(t));
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(c.fired, 1);
    assert_true(loop_now_ms() - start >= 50);
    loop_timer_free(t);
    loop_free(loop);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A timer costs a descriptor only once it is armed with a delay: a run that
 * never waits on one makes no timerfd (issue 10). */
static void a_timer_takes_a_descriptor_only_when_armed_with_a_delay(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter c = {0};
    int before = open_fds();
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &c);
    loop_timer_disarm(t);
    loop_timer_arm(t, 0); /* the next turn: no timerfd either */
    assert_int_equal(open_fds(), before);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(loop_timer_arm(t, 10), 0);
    assert_int_equal(open_fds(), before + 1);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(c.fired, 2);
    loop_timer_free(t);
    assert_int_equal(open_fds(), before);
    loop_free(loop);
}

/* A timer armed by `arm` with nothing else in the loop: it runs once, no
 * sooner than delay_ms, and no descriptor is made for it. */
static void check_runs_once_after_without_a_descriptor(int (*arm)(struct loop_timer *, uint64_t),
                                                       uint64_t delay_ms)
{
    struct loop *loop = loop_new();
    struct counter c = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &c);
    int before = open_fds();
    uint64_t start = loop_now_ms();
    assert_int_equal(arm(t, delay_ms), 0);
    assert_true(loop_timer_armed(t));
    assert_int_equal(open_fds(), before);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(c.fired, 1);
    assert_true(loop_now_ms() - start >= delay_ms);
    assert_false(loop_timer_armed(t));
    loop_timer_free(t);
    loop_free(loop);
}

/* loop_timer_arm_by_wait: the delay is kept, and no descriptor is made for it. */
static void a_timer_armed_by_wait_runs_out_without_a_descriptor(void **state)
{
    (void)state;
    check_runs_once_after_without_a_descriptor(loop_timer_arm_by_wait, 40);
}

/* Disarmed before it is due, it never fires; freeing it armed is safe. */
static void a_timer_armed_by_wait_can_be_disarmed_and_freed(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter never = {0}, stopper = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &never);
    struct loop_timer *later = loop_timer_new(loop, count_and_stop, &never);
    struct loop_timer *stop = loop_timer_new(loop, count_and_stop, &stopper);
    loop_timer_arm_by_wait(t, 10);
    loop_timer_arm_by_wait(later, 20);
    loop_timer_disarm(t);
    assert_false(loop_timer_armed(t));
    loop_timer_free(later);
    loop_timer_arm_by_wait(stop, 40);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(never.fired, 0);
    assert_int_equal(stopper.fired, 1);
    loop_timer_free(t);
    loop_timer_free(stop);
    loop_free(loop);
}

static void disarmed_timer_never_fires(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter never = {0}, stopper = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &never);
    struct loop_timer *stop = loop_timer_new(loop, count_and_stop, &stopper);
    loop_timer_arm(t, 0);
    usleep(5000); /* expired but not yet dispatched */
    loop_timer_disarm(t);
    loop_timer_arm(stop, 30);
    loop_run(loop);
    assert_int_equal(never.fired, 0);
    assert_int_equal(stopper.fired, 1);
    loop_timer_free(t);
    loop_timer_free(stop);
    loop_free(loop);
}

static void read_and_stop(struct loop *loop, int fd, uint32_t events, void *data)
{
    char buf[16];
    int *got = data;
    assert_true(events & EPOLLIN);
    *got = (int)read(fd, buf, sizeof buf);
    loop_stop(loop);
}

static void fd_callback_gets_readable_event(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int p[2];
    assert_int_equal(pipe(p), 0);
    int got = -1;
    assert_int_equal(loop_add_fd(loop, p[0], EPOLLIN, read_and_stop, &got), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    loop_run(loop);
    assert_int_equal(got, 3);
    loop_del_fd(loop, p[0]);
    close(p[0]);
    close(p[1]);
    loop_free(loop);
}

/* Both timers expire in the same epoll batch; the first frees the second. */
static void free_other_and_stop(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    struct counter *c = data;
    c->fired++;
    loop_timer_free(c->other);
    c->other = NULL;
    loop_stop(loop);
}

static void deleting_a_watch_during_dispatch_is_safe(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter a = {0}, b = {0};
    struct loop_timer *ta = loop_timer_new(loop, free_other_and_stop, &a);
    struct loop_timer *tb = loop_timer_new(loop, free_other_and_stop, &b);
    a.other = tb;
    b.other = ta;
    /* 1 ms, not 0: both must be timerfds expiring in one epoll batch */
    loop_timer_arm(ta, 1);
    loop_timer_arm(tb, 1);
    usleep(5000);
    loop_run(loop);
    assert_int_equal(a.fired + b.fired, 1);
    /* the one that fired freed the other and is left */
    loop_timer_free(a.fired ? ta : tb);
    loop_free(loop);
}

struct rearm {
    int runs;
    int limit;
};

static void rearm_until_limit(struct loop *loop, struct loop_timer *t, void *data)
{
    struct rearm *r = data;
    if (++r->runs < r->limit)
        loop_timer_arm(t, 0);
    else
        loop_stop(loop);
}

/* Zero-delay timers run on the next turn, including one re-armed from its own
 * callback, and a disarmed one never runs. */
static void immediate_timers_run_next_turn(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct rearm r = {.limit = 5};
    struct counter never = {0};
    struct loop_timer *t = loop_timer_new(loop, rearm_until_limit, &r);
    struct loop_timer *cancelled = loop_timer_new(loop, count_and_stop, &never);
    loop_timer_arm(cancelled, 0);
    loop_timer_arm(t, 0);
    loop_timer_disarm(cancelled);
    assert_false(loop_timer_armed(cancelled));
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(r.runs, 5);
    assert_int_equal(never.fired, 0);
    loop_timer_free(t);
    loop_timer_free(cancelled);
    loop_free(loop);
}

/* Freeing an armed immediate timer takes it off the list. */
static void freeing_an_armed_immediate_timer_is_safe(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter c = {0}, stopper = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &c);
    struct loop_timer *stop = loop_timer_new(loop, count_and_stop, &stopper);
    loop_timer_arm(t, 0);
    loop_timer_free(t);
    loop_timer_arm(stop, 20);
    loop_run(loop);
    assert_int_equal(c.fired, 0);
    assert_int_equal(stopper.fired, 1);
    loop_timer_free(stop);
    loop_free(loop);
}

/* A stop asked for before the loop runs is not lost (the first start of the
 * app failed before the loop began): the run ends at once, and only that run. */
static void stop_before_run_ends_the_next_run(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter c = {0};
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &c);
    loop_timer_arm(t, 20);
    loop_stop(loop);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(c.fired, 0);
    assert_int_equal(loop_run(loop), 0); /* the stop is spent: this run waits for the timer */
    assert_int_equal(c.fired, 1);
    loop_timer_free(t);
    loop_free(loop);
}

/* --- loop_timer_arm_after_wait --- */

struct order {
    char seen[16];
    int n;
    struct loop_timer *after;   /* armed after_wait by the first callback */
    struct loop_timer *at_once; /* armed with delay 0 by it, when set */
    struct loop_timer *next;    /* armed 50 ms (a timerfd) by it, when set */
    uint64_t after_ran_ms;
    int stop_after; /* stop the loop once this many are seen */
};

static void note(struct loop *loop, struct order *o, char what)
{
    o->seen[o->n++] = what;
    if (o->n >= o->stop_after)
        loop_stop(loop);
}

static void after_wait_ran(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    struct order *o = data;
    o->after_ran_ms = loop_now_ms();
    note(loop, o, 'T');
}

static void next_ran(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    note(loop, data, 'N');
}

static void at_once_ran(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    note(loop, data, 'U');
}

/* The first readable pipe puts work off; the others just note themselves. */
static void on_pipe(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)events;
    struct order *o = data;
    char buf[8];
    assert_true(read(fd, buf, sizeof buf) > 0);
    bool first = o->n == 0;
    note(loop, o, first ? 'A' : 'B');
    if (!first)
        return;
    assert_int_equal(loop_timer_arm_after_wait(o->after, 1000), 0);
    if (o->at_once)
        loop_timer_arm(o->at_once, 0);
    if (o->next)
        assert_int_equal(loop_timer_arm(o->next, 50), 0);
}

/* What a callback puts off runs once the loop has waited, not at the end of
 * that turn: 50 ms later here, when a timer ends the wait, and before that
 * timer's callback (well before the 1 s limit). */
static void after_wait_work_goes_before_the_next_event(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int first[2];
    assert_int_equal(pipe(first), 0);
    struct order o = {.stop_after = 3};
    o.after = loop_timer_new(loop, after_wait_ran, &o);
    o.next = loop_timer_new(loop, next_ran, &o);
    assert_int_equal(loop_add_fd(loop, first[0], EPOLLIN, on_pipe, &o), 0);
    assert_int_equal(write(first[1], "x", 1), 1);
    uint64_t start = loop_now_ms();
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(o.n, 3);
    assert_memory_equal(o.seen, "ATN", 3);
    assert_true(o.after_ran_ms - start >= 50);
    assert_true(o.after_ran_ms - start < 1000);
    assert_false(loop_timer_armed(o.after));
    loop_timer_free(o.after);
    loop_timer_free(o.next);
    loop_free(loop);
    close(first[0]);
    close(first[1]);
}

/* With nothing to wake the loop, the work runs after max_ms, and not sooner. */
static void after_wait_work_runs_after_max_ms_when_nothing_comes(void **state)
{
    (void)state;
    check_runs_once_after_without_a_descriptor(loop_timer_arm_after_wait, 30);
}

/* Two events in one batch: the work the first puts off goes before the
 * second's callback, and so before a timer due at the end of that turn. */
static void after_wait_work_goes_before_the_rest_of_the_turn(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    struct order o = {.stop_after = 4};
    o.after = loop_timer_new(loop, after_wait_ran, &o);
    o.at_once = loop_timer_new(loop, at_once_ran, &o);
    assert_int_equal(loop_add_fd(loop, a[0], EPOLLIN, on_pipe, &o), 0);
    assert_int_equal(loop_add_fd(loop, b[0], EPOLLIN, on_pipe, &o), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(o.n, 4);
    assert_memory_equal(o.seen, "ATBU", 4);
    loop_timer_free(o.after);
    loop_timer_free(o.at_once);
    loop_free(loop);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

/* With the short list full the promise cannot be kept: -1, nothing armed
 * (the caller does the work at once); disarmed or freed, it never runs. */
static void after_wait_work_is_refused_when_the_list_is_full_and_can_be_dropped(void **state)
{
    (void)state;
    struct loop *loop = loop_new();
    struct counter never = {0}, stopper = {0};
    struct loop_timer *fill[16];
    for (int i = 0; i < 16; i++) {
        fill[i] = loop_timer_new(loop, count_and_stop, &never);
        assert_int_equal(loop_timer_arm_by_wait(fill[i], 60000), 0);
    }
    struct loop_timer *t = loop_timer_new(loop, count_and_stop, &never);
    assert_int_equal(loop_timer_arm_after_wait(t, 5), -1);
    assert_false(loop_timer_armed(t));
    for (int i = 0; i < 16; i++)
        loop_timer_free(fill[i]);
    struct loop_timer *gone = loop_timer_new(loop, count_and_stop, &never);
    assert_int_equal(loop_timer_arm_after_wait(t, 5), 0);
    assert_int_equal(loop_timer_arm_after_wait(gone, 5), 0);
    loop_timer_disarm(t);
    loop_timer_free(gone);
    struct loop_timer *stop = loop_timer_new(loop, count_and_stop, &stopper);
    loop_timer_arm_by_wait(stop, 40);
    assert_int_equal(loop_run(loop), 0);
    assert_int_equal(never.fired, 0);
    assert_int_equal(stopper.fired, 1);
    loop_timer_free(t);
    loop_timer_free(stop);
    loop_free(loop);
}

/* --- the signal wait (loop_set_signal_wait) --- */

struct sigwait_fixture {
    struct loop *loop;
    sigset_t set, saved;
    int sfd;
    int taken;       /* last signal passed to the signal callback */
    int by_signalfd; /* signals the signalfd's watch read */
    int accepted;
    bool gave_up;
    struct loop_timer *deadline;
};

static void took_signal(struct loop *loop, int signo, void *data)
{
    struct sigwait_fixture *f = data;
    f->taken = signo;
    loop_stop(loop);
}

static void read_signalfd(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)events;
    struct sigwait_fixture *f = data;
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == (ssize_t)sizeof info)
        f->by_signalfd++;
    loop_stop(loop);
}

static void give_up(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)t;
    struct sigwait_fixture *f = data;
    f->gave_up = true;
    loop_stop(loop);
}

static void accept_one(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)events;
    struct sigwait_fixture *f = data;
    int c = accept(fd, NULL, NULL);
    if (c >= 0) {
        f->accepted++;
        close(c);
    }
    loop_stop(loop);
}

static void sigwait_setup(struct sigwait_fixture *f)
{
    memset(f, 0, sizeof *f);
    sigemptyset(&f->set);
    sigaddset(&f->set, SIGUSR1);
    sigaddset(&f->set, SIGIO);
    sigaddset(&f->set, SIGRTMAX);
    assert_int_equal(sigprocmask(SIG_BLOCK, &f->set, &f->saved), 0);
    f->sfd = signalfd(-1, &f->set, SFD_NONBLOCK | SFD_CLOEXEC);
    assert_true(f->sfd >= 0);
    f->loop = loop_new();
    assert_int_equal(loop_add_fd(f->loop, f->sfd, EPOLLIN, read_signalfd, f), 0);
    loop_set_signal_wait(f->loop, f->sfd, &f->set, SIGRTMAX, took_signal, f);
    /* On the short list (no timerfd): it leaves the signal wait in use. */
    f->deadline = loop_timer_new(f->loop, give_up, f);
    assert_int_equal(loop_timer_arm_by_wait(f->deadline, 5000), 0);
}

static void sigwait_teardown(struct sigwait_fixture *f)
{
    struct signalfd_siginfo info;
    while (read(f->sfd, &info, sizeof info) == (ssize_t)sizeof info) {
    }
    loop_timer_free(f->deadline);
    loop_free(f->loop);
    close(f->sfd);
    assert_int_equal(sigprocmask(SIG_SETMASK, &f->saved, NULL), 0);
}

static int listener(struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    /* Abstract: nothing to clean up on disk. */
    snprintf(addr->sun_path + 1, sizeof addr->sun_path - 1, "resil-test-loop-%d", (int)getpid());
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    assert_int_equal(listen(fd, 8), 0);
    return fd;
}

/* A listener in the fixture's loop, whose callback accepts one connection. */
static int watched_listener(struct sigwait_fixture *f, struct sockaddr_un *addr)
{
    int fd = listener(addr);
    assert_int_equal(loop_add_listener(f->loop, fd, accept_one, f), 0);
    return fd;
}

static void sigwait_teardown_listener(struct sigwait_fixture *f, int fd)
{
    loop_del_fd(f->loop, fd);
    close(fd);
    sigwait_teardown(f);
}

static int connect_to(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)addr, sizeof *addr), 0);
    return fd;
}

/* With nothing but signals able to end the wait, the loop takes them itself
 * (sigtimedwait) and the signalfd is never read. */
static void an_idle_loop_takes_a_signal_in_its_own_wait(void **state)
{
    (void)state;
    struct sigwait_fixture f;
    sigwait_setup(&f);
    kill(getpid(), SIGUSR1);
    assert_int_equal(loop_run(f.loop), 0);
    assert_int_equal(f.taken, SIGUSR1);
    assert_int_equal(f.by_signalfd, 0);
    sigwait_teardown(&f);
}

/* An armed timerfd can end the wait too: then it is epoll's, and the signal
 * comes by the signalfd. */
static void with_a_timerfd_armed_signals_come_by_the_signalfd(void **state)
{
    (void)state;
    struct sigwait_fixture f;
    sigwait_setup(&f);
    struct counter c = {0};
    struct loop_timer *t = loop_timer_new(f.loop, count_and_stop, &c);
    assert_int_equal(loop_timer_arm(t, 10000), 0);
    kill(getpid(), SIGUSR1);
    assert_int_equal(loop_run(f.loop), 0);
    assert_int_equal(f.by_signalfd, 1);
    assert_int_equal(f.taken, 0);
    /* Once it is disarmed, the loop's own wait is back. */
    loop_timer_disarm(t);
    kill(getpid(), SIGUSR1);
    assert_int_equal(loop_run(f.loop), 0);
    assert_int_equal(f.taken, SIGUSR1);
    assert_int_equal(f.by_signalfd, 1);
    loop_timer_free(t);
    sigwait_teardown(&f);
}

/* A listener does not hold the loop in epoll: a connection reaches its
 * callback by the I/O signal, and that signal is not passed on as one. */
static void a_listeners_connection_ends_the_signal_wait(void **state)
{
    (void)state;
    struct sigwait_fixture f;
    sigwait_setup(&f);
    struct sockaddr_un addr;
    int lfd = watched_listener(&f, &addr);
    int c = connect_to(&addr);
    assert_int_equal(loop_run(f.loop), 0);
    assert_false(f.gave_up);
    assert_int_equal(f.accepted, 1);
    assert_int_equal(f.taken, 0);
    assert_int_equal(f.by_signalfd, 0);
    /* The same number sent by kill() is a signal like any other. */
    kill(getpid(), SIGRTMAX);
    assert_int_equal(loop_run(f.loop), 0);
    assert_int_equal(f.taken, SIGRTMAX);
    close(c);
    sigwait_teardown_listener(&f, lfd);
}

/* With no room to queue the I/O signal the kernel raises a bare SIGIO: the
 * loop then asks epoll which listener it was. */
static void a_full_signal_queue_still_reaches_the_listener(void **state)
{
    (void)state;
    struct sigwait_fixture f;
    sigwait_setup(&f);
    struct sockaddr_un addr;
    int lfd = watched_listener(&f, &addr);
    struct rlimit saved, none = {.rlim_cur = 0};
    assert_int_equal(getrlimit(RLIMIT_SIGPENDING, &saved), 0);
    none.rlim_max = saved.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_SIGPENDING, &none), 0);
    int c = connect_to(&addr);
    assert_int_equal(setrlimit(RLIMIT_SIGPENDING, &saved), 0);
    assert_int_equal(loop_run(f.loop), 0);
    assert_false(f.gave_up);
    assert_int_equal(f.accepted, 1);
    assert_int_equal(f.taken, 0);
    close(c);
    sigwait_teardown_listener(&f, lfd);
}

/* Epoll's turn drops the I/O signals it reads: connections a listener left
 * waiting there are still accepted once the signal wait is back. */
static void a_backlog_left_in_epolls_turn_is_not_lost(void **state)
{
    (void)state;
    struct sigwait_fixture f;
    sigwait_setup(&f);
    struct sockaddr_un addr;
    int lfd = watched_listener(&f, &addr);
    struct counter c = {0};
    struct loop_timer *t = loop_timer_new(f.loop, count_and_stop, &c);
    assert_int_equal(loop_timer_arm(t, 10000), 0); /* holds the loop in epoll */
    int c1 = connect_to(&addr), c2 = connect_to(&addr);
    assert_int_equal(loop_run(f.loop), 0);
    assert_int_equal(f.accepted, 1);
    loop_timer_disarm(t);
    assert_int_equal(loop_run(f.loop), 0);
    assert_false(f.gave_up);
    assert_int_equal(f.accepted, 2);
    loop_timer_free(t);
    close(c1);
    close(c2);
    sigwait_teardown_listener(&f, lfd);
}

struct resume {
    struct loop *loop;
    int fd;
};

static void resume_listener(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)loop;
    (void)t;
    struct resume *r = data;
    assert_int_equal(loop_mod_fd(r->loop, r->fd, EPOLLIN), 0);
}

/* A paused listener (events 0, as conn.c does when out of descriptors)
 * ignores its I/O signals; let in again, it still gets what came meanwhile. */
static void a_paused_listener_gets_what_came_meanwhile(void **state)
{
    (void)state;
    struct sigwait_fixture f;
    sigwait_setup(&f);
    struct sockaddr_un addr;
    int lfd = watched_listener(&f, &addr);
    assert_int_equal(loop_mod_fd(f.loop, lfd, 0), 0);
    struct resume r = {f.loop, lfd};
    struct loop_timer *t = loop_timer_new(f.loop, resume_listener, &r);
    assert_int_equal(loop_timer_arm_by_wait(t, 50), 0);
    int c = connect_to(&addr);
    assert_int_equal(loop_run(f.loop), 0);
    assert_false(f.gave_up);
    assert_int_equal(f.accepted, 1);
    loop_timer_free(t);
    close(c);
    sigwait_teardown_listener(&f, lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_before_run_ends_the_next_run),
        cmocka_unit_test(timer_fires_once_after_delay),
        cmocka_unit_test(a_timer_runs_out_without_a_descriptor),
        cmocka_unit_test(a_timer_armed_by_wait_runs_out_without_a_descriptor),
        cmocka_unit_test(a_timer_armed_by_wait_can_be_disarmed_and_freed),
        cmocka_unit_test(disarmed_timer_never_fires),
        cmocka_unit_test(a_timer_takes_a_descriptor_only_when_armed_with_a_delay),
        cmocka_unit_test(fd_callback_gets_readable_event),
        cmocka_unit_test(deleting_a_watch_during_dispatch_is_safe),
        cmocka_unit_test(immediate_timers_run_next_turn),
        cmocka_unit_test(freeing_an_armed_immediate_timer_is_safe),
        cmocka_unit_test(after_wait_work_goes_before_the_next_event),
        cmocka_unit_test(after_wait_work_runs_after_max_ms_when_nothing_comes),
        cmocka_unit_test(after_wait_work_goes_before_the_rest_of_the_turn),
        cmocka_unit_test(after_wait_work_is_refused_when_the_list_is_full_and_can_be_dropped),
        cmocka_unit_test(an_idle_loop_takes_a_signal_in_its_own_wait),
        cmocka_unit_test(with_a_timerfd_armed_signals_come_by_the_signalfd),
        cmocka_unit_test(a_listeners_connection_ends_the_signal_wait),
        cmocka_unit_test(a_full_signal_queue_still_reaches_the_listener),
        cmocka_unit_test(a_backlog_left_in_epolls_turn_is_not_lost),
        cmocka_unit_test(a_paused_listener_gets_what_came_meanwhile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
