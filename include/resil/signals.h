/* Signals: everything catchable is blocked and read from a signalfd, so the loop
 * sees signals as ordinary events and resil-init is never interrupted. */
#ifndef RESIL_SIGNALS_H
#define RESIL_SIGNALS_H

#include <stdbool.h>
#include <sys/types.h>

#include "resil/config.h"

struct signals;

/* Saves the inherited mask and SIGCHLD disposition, blocks the catchable signals
 * and opens the signalfd. NULL on failure (errno set). */
struct signals *signals_setup(void);
int signals_fd(const struct signals *s);
/* Next pending signal number, or 0 when none is left. */
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
/* Sends sig to the app's process group, or to the app alone when single. */
int signals_send_to_app(pid_t app_pid, bool single, int sig);

#endif
