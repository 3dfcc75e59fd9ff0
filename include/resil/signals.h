/* Signals: everything catchable is blocked and taken by the loop (from a
 * signalfd, or in its own sigtimedwait), so resil-init is never interrupted. */
#ifndef RESIL_SIGNALS_H
#define RESIL_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "resil/config.h"

struct signals;

/* Saves the inherited mask and SIGCHLD disposition, blocks the catchable signals
 * and opens the signalfd. NULL on failure (errno set). */
struct signals *signals_setup(void);
int signals_fd(const struct signals *s);
/* The set blocked and read, for the loop's sigtimedwait. */
const sigset_t *signals_blocked(const struct signals *s);
/* The signal the loop's listeners raise (F_SETSIG): SIGRTMAX, with a kernel's
 * si_code, so the same number sent by kill() still reaches the app. */
int signals_io_signal(void);
/* Next pending signal number, or 0 when none is left; the listeners' I/O
 * signals are skipped (epoll reports those sockets itself). */
int signals_next(struct signals *s);
/* In the forked child: the mask and dispositions resil-init inherited. Async-signal-safe. */
void signals_restore_in_child(const struct signals *s);
void signals_free(struct signals *s);

/* What a received signal becomes by the -r table (rewrite[sig]: -1 unchanged,
 * 0 dropped, else the new signal): 0 when dropped. */
int signals_rewrite(const int rewrite[RESIL_MAX_SIGNAL], int sig);
/* Whether a received signal is passed on to the app at all (SIGCHLD and the
 * SIGPIPE of resil-init's own sockets are not). */
bool signals_forwardable(int sig);
/* Sends sig to the app's process group, or to the app alone when single,
 * then yields the CPU so that the app, now runnable, goes first. */
int signals_send_to_app(pid_t app_pid, bool single, int sig);

#endif
