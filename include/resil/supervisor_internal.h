/* supervisor.c's pure parts, for its unit tests: the restart budget and the
 * backoff delay. */
#ifndef RESIL_SUPERVISOR_INTERNAL_H
#define RESIL_SUPERVISOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* Restart accounting, pure so the tests can drive it with their own clock. */
struct supervisor_restart_budget {
    uint64_t *times_ms; /* restarts inside the window, oldest first */
    unsigned count;
    unsigned max;
    uint64_t window_ms;
};
/* 0, or -1 (errno ENOMEM) when room for max restarts cannot be allocated. */
int supervisor_restart_budget_init(struct supervisor_restart_budget *b, unsigned max,
                                   uint64_t window_ms);
/* Whether one more restart at now_ms stays inside the budget. */
bool supervisor_restart_budget_allows(struct supervisor_restart_budget *b, uint64_t now_ms);
void supervisor_restart_budget_record(struct supervisor_restart_budget *b, uint64_t now_ms);
void supervisor_restart_budget_free(struct supervisor_restart_budget *b);

/* Delay before the next restart: MIN doubling up to MAX, step counting from 0. */
uint64_t supervisor_backoff_delay_ms(uint64_t min_ms, uint64_t max_ms, unsigned step);

#endif
