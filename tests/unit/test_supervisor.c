/* Restart accounting and backoff arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "resil/supervisor.h"
#include "resil/supervisor_internal.h"

static void backoff_doubles_from_min_to_max(void **state)
{
    (void)state;
    assert_int_equal(supervisor_backoff_delay_ms(1000, 30000, 0), 1000);
    assert_int_equal(supervisor_backoff_delay_ms(1000, 30000, 1), 2000);
    assert_int_equal(supervisor_backoff_delay_ms(1000, 30000, 4), 16000);
    assert_int_equal(supervisor_backoff_delay_ms(1000, 30000, 5), 30000);
    assert_int_equal(supervisor_backoff_delay_ms(1000, 30000, 63), 30000);
}

static void backoff_min_alone_is_fixed(void **state)
{
    (void)state;
    assert_int_equal(supervisor_backoff_delay_ms(500, 500, 0), 500);
    assert_int_equal(supervisor_backoff_delay_ms(500, 500, 9), 500);
}

static void backoff_never_overflows(void **state)
{
    (void)state;
    assert_int_equal(supervisor_backoff_delay_ms(UINT64_MAX / 2 + 1, UINT64_MAX, 10), UINT64_MAX);
    assert_int_equal(supervisor_backoff_delay_ms(0, 100, 5), 0);
}

static void budget_counts_restarts_inside_window(void **state)
{
    (void)state;
    struct supervisor_restart_budget b;
    supervisor_restart_budget_init(&b, 3, 10000);
    for (uint64_t t = 0; t < 3; t++) {
        assert_true(supervisor_restart_budget_allows(&b, t * 1000));
        supervisor_restart_budget_record(&b, t * 1000);
    }
    assert_false(supervisor_restart_budget_allows(&b, 3000));
    supervisor_restart_budget_free(&b);
}

static void budget_window_slides(void **state)
{
    (void)state;
    struct supervisor_restart_budget b;
    supervisor_restart_budget_init(&b, 2, 10000);
    supervisor_restart_budget_record(&b, 0);
    supervisor_restart_budget_record(&b, 5000);
    assert_false(supervisor_restart_budget_allows(&b, 9999));
    /* the first restart leaves the window at 10 s */
    assert_true(supervisor_restart_budget_allows(&b, 10000));
    supervisor_restart_budget_record(&b, 10000);
    assert_false(supervisor_restart_budget_allows(&b, 14999));
    assert_true(supervisor_restart_budget_allows(&b, 15000));
    supervisor_restart_budget_free(&b);
}

static void budget_zero_never_restarts(void **state)
{
    (void)state;
    struct supervisor_restart_budget b;
    supervisor_restart_budget_init(&b, 0, 10000);
    assert_false(supervisor_restart_budget_allows(&b, 0));
    supervisor_restart_budget_record(&b, 0);
    assert_false(supervisor_restart_budget_allows(&b, 100000));
    supervisor_restart_budget_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_doubles_from_min_to_max),
        cmocka_unit_test(backoff_min_alone_is_fixed),
        cmocka_unit_test(backoff_never_overflows),
        cmocka_unit_test(budget_counts_restarts_inside_window),
        cmocka_unit_test(budget_window_slides),
        cmocka_unit_test(budget_zero_never_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
