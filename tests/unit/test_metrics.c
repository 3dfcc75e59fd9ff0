/* The metrics registry and its text format: every family declared before its
 * samples, counters at 0 from the start, cumulative histogram buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resil/metrics.h"

static char text[METRICS_TEXT_MAX];

static const char *render(const struct metrics *m)
{
    size_t n = metrics_render(m, text, sizeof text);
    assert_true(n > 0);
    assert_int_equal(strlen(text), n);
    return text;
}

/* The value of the sample line that starts with "name{labels} " (or "name "). */
static double sample(const char *body, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    }
    fail_msg("no sample %s", series);
    return -1;
}

static bool is_declared(const char *body, const char *name, const char *type, const char *before)
{
    char want[160];
    snprintf(want, sizeof want, "# TYPE %s %s\n", name, type);
    const char *at = strstr(body, want);
    return at && at < before;
}

/* Every sample's family has # HELP and # TYPE above it; each family once. */
static void check_format(const char *body)
{
    const char *p = body;
    int families = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[256];
        size_t len = (size_t)(nl - p);
        assert_true(len < sizeof line);
        memcpy(line, p, len);
        line[len] = '\0';
        if (strncmp(line, "# TYPE ", 7) == 0) {
            families++;
            char name[128], type[32];
            assert_int_equal(sscanf(line, "# TYPE %127s %31s", name, type), 2);
            char help[140];
            snprintf(help, sizeof help, "# HELP %s ", name);
            assert_non_null(strstr(body, help));
            if (strcmp(type, "counter") == 0)
                assert_non_null(strstr(name, "_total"));
            char again[160];
            snprintf(again, sizeof again, "# TYPE %s ", name);
            assert_ptr_equal(strstr(body, again), p);
        } else if (line[0] != '#') {
            char name[128];
            assert_int_equal(sscanf(line, "%127[a-z_]", name), 1);
            char *suffix = NULL;
            if (!is_declared(body, name, "counter", p) && !is_declared(body, name, "gauge", p)) {
                suffix = strrchr(name, '_');
                assert_non_null(suffix);
                *suffix = '\0';
                assert_true(is_declared(body, name, "histogram", p));
            }
            char *value = strrchr(line, ' ');
            assert_non_null(value);
            char *end;
            strtod(value + 1, &end);
            assert_true(*end == '\0');
        }
        p = nl + 1;
    }
    assert_int_equal(families, 13); /* SPEC §10 */
}

static void every_family_is_present_at_zero_from_the_start(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m, true);
    const char *body = render(&m);
    check_format(body);
    for (int i = 0; i < METRICS_RESTART_REASONS; i++) {
        char series[80];
        snprintf(series, sizeof series, "resil_app_restarts_total{reason=\"%s\"}",
                 metrics_restart_reasons[i]);
        assert_true(sample(body, series) == 0);
    }
    assert_true(sample(body, "resil_app_up") == 0);
    assert_true(sample(body, "resil_health_checks_total{result=\"pass\"}") == 0);
    assert_true(sample(body, "resil_health_checks_total{result=\"fail\"}") == 0);
    assert_true(sample(body, "resil_health_check_duration_seconds_bucket{le=\"+Inf\"}") == 0);
    assert_true(sample(body, "resil_health_check_duration_seconds_count") == 0);
    assert_true(sample(body, "resil_memory_oom_kills_total") == 0);
    assert_true(sample(body, "resil_memory_tier{tier=\"normal\"}") == 0);
    assert_true(sample(body, "resil_emergency") == 0);
    assert_non_null(strstr(body, "# TYPE resil_health_check_duration_seconds histogram\n"));
}

static void updates_show_in_the_text(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m, true);
    assert_int_equal(metrics_count_restart(&m, "crash"), 0);
    assert_int_equal(metrics_count_restart(&m, "crash"), 0);
    assert_int_equal(metrics_count_restart(&m, "manual"), 0);
    assert_int_equal(metrics_count_restart(&m, "start"), -1);
    metrics_app_started(&m, 1700000000123LL, true);
    metrics_set_healthy(&m, true);
    const char *body = render(&m);
    check_format(body);
    assert_true(sample(body, "resil_app_restarts_total{reason=\"crash\"}") == 2);
    assert_true(sample(body, "resil_app_restarts_total{reason=\"manual\"}") == 1);
    assert_true(sample(body, "resil_app_restarts_total{reason=\"oom\"}") == 0);
    assert_true(sample(body, "resil_app_up") == 1);
    assert_non_null(strstr(body, "resil_app_start_time_seconds 1700000000.123\n"));
    assert_true(sample(body, "resil_health_healthy") == 1);
    assert_true(sample(body, "resil_emergency") == 1);

    metrics_app_exited(&m, SIGKILL); /* a wait status for death by SIGKILL */
    body = render(&m);
    assert_true(sample(body, "resil_app_up") == 0);
    assert_true(sample(body, "resil_health_healthy") == 0);
    assert_true(sample(body, "resil_app_last_exit_code") == 137);
    assert_true(sample(body, "resil_app_last_exit_signal") == 9);
    metrics_app_exited(&m, 3 << 8); /* exit status 3 */
    body = render(&m);
    assert_true(sample(body, "resil_app_last_exit_code") == 3);
    assert_true(sample(body, "resil_app_last_exit_signal") == 0);
}

static void bucket(char *out, size_t len, const char *le)
{
    snprintf(out, len, "resil_health_check_duration_seconds_bucket{le=\"%s\"}", le);
}

static void histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m, true);
    metrics_health_checked(&m, true, 0.0004);
    metrics_health_checked(&m, true, 0.004);
    metrics_health_checked(&m, true, 0.005); /* on a bound: counted in it (le) */
    metrics_health_checked(&m, false, 5.0);
    metrics_health_checked(&m, false, 30.0);
    const char *body = render(&m);
    check_format(body);
    char series[128];
    bucket(series, sizeof series, "0.001");
    assert_true(sample(body, series) == 1);
    bucket(series, sizeof series, "0.005");
    assert_true(sample(body, series) == 3);
    bucket(series, sizeof series, "2.5");
    assert_true(sample(body, series) == 3);
    bucket(series, sizeof series, "5");
    assert_true(sample(body, series) == 4);
    bucket(series, sizeof series, "+Inf");
    assert_true(sample(body, series) == 5);
    assert_true(sample(body, "resil_health_check_duration_seconds_count") == 5);
    double sum = sample(body, "resil_health_check_duration_seconds_sum");
    assert_true(sum > 35.009 && sum < 35.0095);
    assert_true(sample(body, "resil_health_checks_total{result=\"pass\"}") == 3);
    assert_true(sample(body, "resil_health_checks_total{result=\"fail\"}") == 2);
    /* Each bucket is at least the one before. */
    double last = 0;
    for (size_t b = 0; b < METRICS_DURATION_BUCKETS; b++) {
        char le[32];
        snprintf(le, sizeof le, "%g", metrics_duration_bounds[b]);
        bucket(series, sizeof series, le);
        double v = sample(body, series);
        assert_true(v >= last);
        last = v;
    }
}

static void memory_and_oom_kills_since_start(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m, false);
    struct memory_sample s = {.available = true,
                              .limited = true,
                              .limit_bytes = 512u << 20,
                              .working_set_bytes = 300u << 20,
                              .oom_kills = 4,
                              .tier = MEMORY_TIER_WARNING};
    metrics_set_memory(&m, &s);
    const char *body = render(&m);
    assert_true(sample(body, "resil_memory_limit_bytes") == 512u << 20);
    assert_true(sample(body, "resil_memory_working_set_bytes") == 300u << 20);
    assert_true(sample(body, "resil_memory_tier{tier=\"warning\"}") == 1);
    assert_true(sample(body, "resil_memory_tier{tier=\"normal\"}") == 0);
    assert_true(sample(body, "resil_memory_oom_kills_total") == 0); /* the 4 came before */
    s.oom_kills = 6;
    s.limited = false;
    s.tier = MEMORY_TIER_CRITICAL;
    metrics_set_memory(&m, &s);
    body = render(&m);
    assert_true(sample(body, "resil_memory_oom_kills_total") == 2);
    assert_true(sample(body, "resil_memory_limit_bytes") == 0);
    assert_true(sample(body, "resil_memory_tier{tier=\"critical\"}") == 1);
    assert_true(sample(body, "resil_memory_tier{tier=\"warning\"}") == 0);
    /* An unavailable sample changes nothing. */
    struct memory_sample gone = {.available = false};
    metrics_set_memory(&m, &gone);
    assert_true(sample(render(&m), "resil_memory_oom_kills_total") == 2);
    /* Without health checks, healthy follows the app running. */
    assert_true(sample(render(&m), "resil_health_healthy") == 0);
    metrics_app_started(&m, 1000, false);
    assert_true(sample(render(&m), "resil_health_healthy") == 1);
}

static void too_small_a_buffer_gives_nothing(void **state)
{
    (void)state;
    struct metrics m;
    metrics_init(&m, true);
    char small[512];
    memset(small, 'x', sizeof small);
    assert_int_equal(metrics_render(&m, small, sizeof small), 0);
    assert_int_equal(small[0], '\0');
    size_t need = metrics_render(&m, text, sizeof text);
    assert_true(need > 0 && need < METRICS_TEXT_MAX / 2); /* room for bigger numbers */
    char exact[METRICS_TEXT_MAX];
    assert_int_equal(metrics_render(&m, exact, need + 1), need);
    assert_int_equal(metrics_render(&m, exact, need), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_family_is_present_at_zero_from_the_start),
        cmocka_unit_test(updates_show_in_the_text),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(memory_and_oom_kills_since_start),
        cmocka_unit_test(too_small_a_buffer_gives_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
