/* The supervisor's phases, and the phase each event leads to. The table is
 * pure so the tests can walk every pair; the supervisor's one phase-entering
 * function does what a phase needs (signals, timers, status.json). */
#ifndef RESIL_PHASE_H
#define RESIL_PHASE_H

#include <stdbool.h>

enum sup_phase {
    SUP_PHASE_RUNNING,   /* the app runs */
    SUP_PHASE_DRAINING,  /* a stop was asked; --stop-delay runs before the app is signalled */
    SUP_PHASE_STOPPING,  /* the app's group was signalled; --grace runs until it is empty */
    SUP_PHASE_BACKOFF,   /* no app; the next start is scheduled */
    SUP_PHASE_FINISHING, /* no app and none will follow; leftovers get TERM, then KILL */
    SUP_PHASE_DONE,      /* nothing left: resil-init exits */
};

enum sup_event {
    SUP_EVENT_APP_EXITED,     /* the app's own process was reaped */
    SUP_EVENT_GROUP_EMPTY,    /* no process of the old app's group is left */
    SUP_EVENT_STOP_REQUEST,   /* SIGTERM / SIGINT to resil-init */
    SUP_EVENT_DELAY_OVER,     /* --stop-delay ran out */
    SUP_EVENT_UNHEALTHY,      /* the health checks gave their verdict */
    SUP_EVENT_MEMORY_RESTART, /* the working set stayed above --memory-restart */
    SUP_EVENT_MANUAL_RESTART, /* `resil-init restart` */
    SUP_EVENT_BACKOFF_OVER,   /* the start is due */
    SUP_EVENT_NO_CHILDREN,    /* resil-init has no child left at all */
};

/* What the supervisor knows when an event comes, beyond the phase. */
struct sup_facts {
    bool restart_planned; /* a restart follows the app run that is ending */
    bool app_alive;       /* the app's own process has not been reaped */
    bool group_alive;     /* a process of the app's group still exists (read only
                           * with restart_planned, and may be left false without it) */
    bool stop_delay;      /* --stop-delay is not 0 */
    bool start_failed;    /* SUP_EVENT_BACKOFF_OVER: the new app could not be forked */
};

/* The phase the event leads to; the same phase when the event changes nothing
 * there (an unhealthy verdict while stopping, a second stop while finishing). */
enum sup_phase sup_phase_next(enum sup_phase now, enum sup_event event, const struct sup_facts *f);

/* Whether `resil-init restart` is taken in this phase: not while draining,
 * finishing, or stopping for good. */
bool sup_phase_takes_manual_restart(enum sup_phase now, bool restart_planned);

const char *sup_phase_name(enum sup_phase p);
const char *sup_event_name(enum sup_event e);

#endif
