/* The one event loop: epoll over file descriptors and timerfd-backed timers,
 * or sigtimedwait while only signals can end the wait. Nothing here sleeps
 * except those waits, and with no armed timer they wait forever. */
#ifndef RESIL_LOOP_H
#define RESIL_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_timer;

typedef void (*loop_fd_cb)(struct loop *loop, int fd, uint32_t events, void *data);
typedef void (*loop_signal_cb)(struct loop *loop, int signo, void *data);
typedef void (*loop_timer_cb)(struct loop *loop, struct loop_timer *timer, void *data);

struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* events are EPOLLIN / EPOLLOUT / EPOLLPRI ... The fd stays owned by the caller. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_cb cb, void *data);
/* A listening socket (EPOLLIN): with a signal wait set, the kernel also
 * tells of its connections by the I/O signal, so the loop can keep waiting in
 * sigtimedwait while it is open. */
int loop_add_listener(struct loop *loop, int fd, loop_fd_cb cb, void *data);
/* Signals are blocked and read from signal_fd (a watch of its own): while
 * nothing but a signal can end the wait, the loop waits in sigtimedwait on
 * set instead and passes each signal it takes to cb, the listeners' I/O
 * signal (io_signo, with a kernel's si_code) to their own callbacks. */
void loop_set_signal_wait(struct loop *loop, int signal_fd, const sigset_t *set, int io_signo,
                          loop_signal_cb cb, void *data);
/* Whether a signal is the kernel's word about a listener, never the app's:
 * io_signo with a POLL_* si_code, or the bare SIGIO (SI_KERNEL) it sends
 * instead when the real-time queue is full. */
bool loop_is_listener_notice(int io_signo, int signo, int code);
int loop_mod_fd(struct loop *loop, int fd, uint32_t events);
void loop_del_fd(struct loop *loop, int fd);

/* Makes no system call: the timerfd behind a timer is created when it is
 * first armed with a delay. */
struct loop_timer *loop_timer_new(struct loop *loop, loop_timer_cb cb, void *data);
/* One-shot, delay_ms from now (0 fires on the next turn). Re-arming replaces.
 * 0, or -1 (logged) when no timerfd can be had: the timer stays disarmed. */
int loop_timer_arm(struct loop_timer *timer, uint64_t delay_ms);
/* The same without a timerfd, timed by epoll_wait's timeout alone (to the
 * millisecond): for a one-shot delay that costs no system call to set. */
int loop_timer_arm_by_wait(struct loop_timer *timer, uint64_t delay_ms);
/* Work put off until the loop has waited once, so that a process just woken
 * (the app, after a forwarded signal) gets the CPU first, yet done before the
 * loop calls anything else: right after the next wait ends (an event, or
 * max_ms at the latest; 0 counts as 1), or sooner, just before another
 * callback of the same turn. No system call; -1 when the short list is full
 * (the caller does the work at once then). */
int loop_timer_arm_after_wait(struct loop_timer *timer, uint64_t max_ms);
void loop_timer_disarm(struct loop_timer *timer);
bool loop_timer_armed(const struct loop_timer *timer);
void loop_timer_free(struct loop_timer *timer);

/* Runs until loop_stop(); returns 0, or -1 when epoll itself fails. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

/* In a forked child before exec: close every descriptor the loop knows about,
 * so the app inherits none of resil-init's own. Async-signal-safe. */
void loop_close_all_in_child(struct loop *loop);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t loop_now_ms(void);

#endif
