/* The supervisor's state-by-event table. Each case says why it goes where it
 * goes; anything not listed leaves the phase as it is. */
#include "resil/phase.h"

/* An app run has ended (its process reaped, or its group emptied): what the
 * plan made for it says whether the next start or the end comes. */
static enum sup_phase after_run(const struct sup_facts *f)
{
    if (!f->restart_planned)
        return SUP_PHASE_FINISHING; /* which empties the group with the other leftovers */
    /* A new app never starts while a process of the old group lives. */
    return f->group_alive ? SUP_PHASE_STOPPING : SUP_PHASE_BACKOFF;
}

static enum sup_phase from_running(enum sup_event event, const struct sup_facts *f)
{
    switch (event) {
    case SUP_EVENT_APP_EXITED:
        return after_run(f);
    case SUP_EVENT_STOP_REQUEST:
        return f->stop_delay ? SUP_PHASE_DRAINING : SUP_PHASE_STOPPING;
    case SUP_EVENT_UNHEALTHY:
    case SUP_EVENT_MEMORY_RESTART:
    case SUP_EVENT_MANUAL_RESTART:
        return SUP_PHASE_STOPPING;
    default:
        return SUP_PHASE_RUNNING;
    }
}

static enum sup_phase from_draining(enum sup_event event)
{
    switch (event) {
    case SUP_EVENT_STOP_REQUEST: /* a second one ends the delay at once */
    case SUP_EVENT_DELAY_OVER:
        return SUP_PHASE_STOPPING;
    case SUP_EVENT_APP_EXITED: /* no restart once a stop was asked */
        return SUP_PHASE_FINISHING;
    default: /* verdicts and restart requests wait for nothing: the app is leaving */
        return SUP_PHASE_DRAINING;
    }
}

static enum sup_phase from_stopping(enum sup_event event, const struct sup_facts *f)
{
    switch (event) {
    case SUP_EVENT_APP_EXITED:
        return after_run(f);
    case SUP_EVENT_GROUP_EMPTY:
        return f->restart_planned ? SUP_PHASE_BACKOFF : SUP_PHASE_FINISHING;
    case SUP_EVENT_STOP_REQUEST:
        /* A restart under way is dropped. An app still alive is already being
         * stopped within the same grace; without it, the end begins. */
        return f->app_alive ? SUP_PHASE_STOPPING : SUP_PHASE_FINISHING;
    default:
        return SUP_PHASE_STOPPING;
    }
}

static enum sup_phase from_backoff(enum sup_event event, const struct sup_facts *f)
{
    switch (event) {
    case SUP_EVENT_BACKOFF_OVER:
        return f->start_failed ? SUP_PHASE_FINISHING : SUP_PHASE_RUNNING;
    case SUP_EVENT_STOP_REQUEST: /* no app to drain or stop: exit at once */
        return SUP_PHASE_FINISHING;
    default: /* a manual restart re-arms the backoff at 0 */
        return SUP_PHASE_BACKOFF;
    }
}

enum sup_phase sup_phase_next(enum sup_phase now, enum sup_event event, const struct sup_facts *f)
{
    switch (now) {
    case SUP_PHASE_RUNNING:
        return from_running(event, f);
    case SUP_PHASE_DRAINING:
        return from_draining(event);
    case SUP_PHASE_STOPPING:
        return from_stopping(event, f);
    case SUP_PHASE_BACKOFF:
        return from_backoff(event, f);
    case SUP_PHASE_FINISHING:
        return event == SUP_EVENT_NO_CHILDREN ? SUP_PHASE_DONE : SUP_PHASE_FINISHING;
    case SUP_PHASE_DONE:
        return SUP_PHASE_DONE;
    }
    return now;
}

bool sup_phase_takes_manual_restart(enum sup_phase now, bool restart_planned)
{
    return now == SUP_PHASE_RUNNING || now == SUP_PHASE_BACKOFF ||
           (now == SUP_PHASE_STOPPING && restart_planned);
}

const char *sup_phase_name(enum sup_phase p)
{
    static const char *const names[] = {"running", "draining",  "stopping",
                                        "backoff", "finishing", "done"};
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

const char *sup_event_name(enum sup_event e)
{
    static const char *const names[] = {
        "app exited",     "group empty",    "stop request", "stop delay over", "unhealthy",
        "memory restart", "manual restart", "backoff over", "no children",
    };
    return (unsigned)e < sizeof names / sizeof names[0] ? names[e] : "?";
}
