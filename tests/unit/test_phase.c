/* The supervisor's phase table: every phase against every event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "resil/phase.h"

#define R SUP_PHASE_RUNNING
#define DR SUP_PHASE_DRAINING
#define S SUP_PHASE_STOPPING
#define B SUP_PHASE_BACKOFF
#define F SUP_PHASE_FINISHING
#define D SUP_PHASE_DONE

static enum sup_phase next(enum sup_phase p, enum sup_event e, struct sup_facts f)
{
    return sup_phase_next(p, e, &f);
}

static const struct sup_facts none = {0};

static void app_exit_by_itself(void **state)
{
    (void)state;
    struct sup_facts restart_group_gone = {.restart_planned = true};
    struct sup_facts restart_group_alive = {.restart_planned = true, .group_alive = true};
    struct sup_facts no_restart_group_alive = {.group_alive = true};
    /* A restart waits for the old group to be empty, then backs off. */
    assert_int_equal(next(R, SUP_EVENT_APP_EXITED, restart_group_gone), B);
    assert_int_equal(next(R, SUP_EVENT_APP_EXITED, restart_group_alive), S);
    assert_int_equal(next(S, SUP_EVENT_GROUP_EMPTY, restart_group_gone), B);
    /* No restart: the end, which takes the group with the other leftovers. */
    assert_int_equal(next(R, SUP_EVENT_APP_EXITED, none), F);
    assert_int_equal(next(R, SUP_EVENT_APP_EXITED, no_restart_group_alive), F);
    assert_int_equal(next(S, SUP_EVENT_GROUP_EMPTY, none), F);
    assert_int_equal(next(B, SUP_EVENT_BACKOFF_OVER, none), R);
    struct sup_facts fork_failed = {.start_failed = true};
    assert_int_equal(next(B, SUP_EVENT_BACKOFF_OVER, fork_failed), F);
}

static void stop_with_and_without_delay(void **state)
{
    (void)state;
    struct sup_facts delay = {.stop_delay = true, .app_alive = true, .group_alive = true};
    struct sup_facts alive = {.app_alive = true, .group_alive = true};
    assert_int_equal(next(R, SUP_EVENT_STOP_REQUEST, alive), S);
    assert_int_equal(next(R, SUP_EVENT_STOP_REQUEST, delay), DR);
    assert_int_equal(next(DR, SUP_EVENT_DELAY_OVER, delay), S);
    /* A second SIGTERM ends the delay at once. */
    assert_int_equal(next(DR, SUP_EVENT_STOP_REQUEST, delay), S);
    /* The app leaving during the delay is never restarted, whatever the plan. */
    struct sup_facts would_restart = {.restart_planned = true};
    assert_int_equal(next(DR, SUP_EVENT_APP_EXITED, would_restart), F);
    /* Nothing else moves a drain. */
    assert_int_equal(next(DR, SUP_EVENT_UNHEALTHY, delay), DR);
    assert_int_equal(next(DR, SUP_EVENT_MEMORY_RESTART, delay), DR);
    assert_int_equal(next(DR, SUP_EVENT_MANUAL_RESTART, delay), DR);
    /* Stopped: the app's exit begins the end. */
    assert_int_equal(next(S, SUP_EVENT_APP_EXITED, none), F);
    assert_int_equal(next(F, SUP_EVENT_NO_CHILDREN, none), D);
    assert_int_equal(next(F, SUP_EVENT_STOP_REQUEST, none), F);
    assert_int_equal(next(D, SUP_EVENT_STOP_REQUEST, none), D);
}

static void stop_during_a_restart(void **state)
{
    (void)state;
    /* The app is still leaving: it goes on leaving, now for good. */
    struct sup_facts app_alive = {.app_alive = true, .group_alive = true};
    assert_int_equal(next(S, SUP_EVENT_STOP_REQUEST, app_alive), S);
    /* Only the old group is left: the end begins. */
    struct sup_facts group_only = {.group_alive = true};
    assert_int_equal(next(S, SUP_EVENT_STOP_REQUEST, group_only), F);
    /* Waiting to restart: exit at once. */
    assert_int_equal(next(B, SUP_EVENT_STOP_REQUEST, none), F);
}

static void restarts_asked_by_verdicts_and_by_hand(void **state)
{
    (void)state;
    struct sup_facts alive = {.app_alive = true, .group_alive = true};
    assert_int_equal(next(R, SUP_EVENT_UNHEALTHY, alive), S);
    assert_int_equal(next(R, SUP_EVENT_MEMORY_RESTART, alive), S);
    assert_int_equal(next(R, SUP_EVENT_MANUAL_RESTART, alive), S);
    /* A verdict while already stopping or between runs changes nothing. */
    assert_int_equal(next(S, SUP_EVENT_UNHEALTHY, alive), S);
    assert_int_equal(next(B, SUP_EVENT_MEMORY_RESTART, none), B);
    assert_int_equal(next(B, SUP_EVENT_MANUAL_RESTART, none), B);
    assert_int_equal(next(F, SUP_EVENT_MANUAL_RESTART, none), F);

    assert_true(sup_phase_takes_manual_restart(R, false));
    assert_true(sup_phase_takes_manual_restart(B, true));
    assert_true(sup_phase_takes_manual_restart(S, true));
    assert_false(sup_phase_takes_manual_restart(S, false));
    assert_false(sup_phase_takes_manual_restart(DR, false));
    assert_false(sup_phase_takes_manual_restart(F, false));
    assert_false(sup_phase_takes_manual_restart(D, false));
}

/* Every pair gives a phase, and events that cannot concern a phase keep it. */
static void every_pair_is_defined(void **state)
{
    (void)state;
    for (int p = R; p <= D; p++) {
        assert_string_not_equal(sup_phase_name((enum sup_phase)p), "?");
        for (int e = SUP_EVENT_APP_EXITED; e <= SUP_EVENT_NO_CHILDREN; e++) {
            assert_string_not_equal(sup_event_name((enum sup_event)e), "?");
            for (int bits = 0; bits < 32; bits++) {
                struct sup_facts f = {.restart_planned = bits & 1,
                                      .app_alive = bits & 2,
                                      .group_alive = bits & 4,
                                      .stop_delay = bits & 8,
                                      .start_failed = bits & 16};
                enum sup_phase n = sup_phase_next((enum sup_phase)p, (enum sup_event)e, &f);
                assert_true(n >= R && n <= D);
                /* Only the last child's reaping ends resil-init. */
                if (n == D)
                    assert_true(p == D || e == SUP_EVENT_NO_CHILDREN);
                /* Only a due start starts an app. */
                if (n == R && p != R)
                    assert_int_equal(e, SUP_EVENT_BACKOFF_OVER);
                /* Draining begins only from a running app. */
                if (n == DR && p != DR)
                    assert_int_equal(p, R);
            }
        }
    }
    assert_string_equal(sup_phase_name((enum sup_phase)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(app_exit_by_itself),
        cmocka_unit_test(stop_with_and_without_delay),
        cmocka_unit_test(stop_during_a_restart),
        cmocka_unit_test(restarts_asked_by_verdicts_and_by_hand),
        cmocka_unit_test(every_pair_is_defined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
