/* Memory monitor: tiers, and the monitor over fake cgroup trees in a temporary
 * directory (readings, parent walk, odd files, OOM kills, callbacks, timers). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resil/loop.h"
#include "resil/memory_internal.h"

#include "cgroup_tree.h"
#include "memory_sample.h"

/* ------------------------------------------------------------------------ */
/* Tiers                                                                     */
/* ------------------------------------------------------------------------ */

static struct config_size_spec pct(double p)
{
    struct config_size_spec s = {.set = true, .is_percent = true, .percent = p};
    return s;
}

static struct config_size_spec abs_size(uint64_t b)
{
    struct config_size_spec s = {.set = true, .bytes = b};
    return s;
}

static struct memory_options base_opts(void)
{
    struct memory_options c;
    memset(&c, 0, sizeof c);
    c.warn = pct(75);
    c.critical = pct(85);
    c.restart_for_ms = 30000;
    c.interval_ms = 5000;
    return c;
}

static void test_tier_percent(void **state)
{
    (void)state;
    struct memory_options c = base_opts();
    struct memory_sample s = sample(true, 1000 * MiB, 100 * MiB, -1);
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_NORMAL);
    s.working_set_bytes = 750 * MiB;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_WARNING);
    s.working_set_bytes = 849 * MiB;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_WARNING);
    s.working_set_bytes = 850 * MiB;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_CRITICAL);
    s.available = false;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_UNKNOWN);
    assert_int_equal(memory_tier_for(NULL, &c), MEMORY_TIER_UNKNOWN);
}

static void test_tier_absolute_and_unlimited(void **state)
{
    (void)state;
    struct memory_options c = base_opts();
    struct memory_sample s = sample(false, 0, 100000 * MiB, -1);
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_NORMAL); /* percent: no limit, no tier */
    c.warn = abs_size(200 * MiB);
    c.critical = abs_size(300 * MiB);
    s.working_set_bytes = 199 * MiB;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_NORMAL);
    s.working_set_bytes = 200 * MiB;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_WARNING);
    s.working_set_bytes = 300 * MiB;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_CRITICAL);
    /* absolute thresholds with a limit too */
    s = sample(true, 1024 * MiB, 250 * MiB, -1);
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_WARNING);
}

static void test_tier_psi(void **state)
{
    (void)state;
    struct memory_options c = base_opts();
    struct memory_sample s = sample(true, 1000 * MiB, 10 * MiB, 9.99);
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_NORMAL);
    s.psi_some_avg10 = 10;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_WARNING);
    s.psi_some_avg10 = 40;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_CRITICAL);
    s.working_set_bytes = 900 * MiB;
    s.psi_some_avg10 = 15;
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_CRITICAL); /* PSI never lowers */
    s = sample(false, 0, 1, 50);
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_CRITICAL);
    assert_string_equal(memory_tier_name(MEMORY_TIER_CRITICAL), "critical");
    assert_string_equal(memory_tier_name(MEMORY_TIER_WARNING), "warning");
    assert_string_equal(memory_tier_name(MEMORY_TIER_NORMAL), "normal");
    assert_string_equal(memory_tier_name(MEMORY_TIER_UNKNOWN), "unknown");
}
/* ------------------------------------------------------------------------ */
/* The monitor                                                               */
/* ------------------------------------------------------------------------ */

struct seen {
    int tier_changes;
    enum memory_tier old_tier, new_tier;
    int restarts;
    int ooms;
    uint64_t oom_total;
};

static void seen_tier(void *ctx, enum memory_tier o, enum memory_tier n)
{
    struct seen *s = ctx;
    s->tier_changes++;
    s->old_tier = o;
    s->new_tier = n;
}

static void seen_restart(void *ctx, const struct memory_sample *sample_)
{
    struct seen *s = ctx;
    (void)sample_;
    s->restarts++;
}

static void seen_oom(void *ctx, uint64_t total)
{
    struct seen *s = ctx;
    s->ooms++;
    s->oom_total = total;
}

static struct memory_callbacks callbacks(struct seen *s)
{
    struct memory_callbacks cb = {s, seen_tier, seen_restart, seen_oom};
    return cb;
}

/* stderr goes to a file while fn runs; returns how many warnings were logged. */
struct capture {
    int saved;
    char path[64];
};

static void capture_start(struct capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/test_memory_log.XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static int capture_stop(struct capture *c)
{
    char buf[8192];
    dup2(c->saved, 2);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    int warnings = 0;
    while (f && fgets(buf, sizeof buf, f))
        warnings += strstr(buf, ": warn: memory:") != NULL;
    if (f)
        fclose(f);
    unlink(c->path);
    return warnings;
}

static void test_monitor_v2_sample(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    c.cgroup_root = t->root;
    fake_v2(t, "1073741824\n", "524288000\n");
    tree_write(t, "memory.pressure", pressure);
    struct memory_monitor *m = memory_new(NULL, &c, NULL);
    const struct memory_sample *s = memory_current(m);
    assert_true(s->available);
    assert_true(s->limited);
    assert_true(s->limit_bytes == 1024 * MiB);
    assert_true(s->usage_bytes == 500 * MiB);
    assert_true(s->working_set_bytes == 480 * MiB);
    assert_true(s->psi_some_avg10 > 12.3 && s->psi_some_avg10 < 12.4);
    assert_int_equal(s->oom_kills, 0);
    assert_int_equal(s->tier, MEMORY_TIER_WARNING); /* from PSI */

    /* the working set never goes below zero */
    tree_write(t, "memory.current", "1000\n");
    tree_remove(t, "memory.pressure");
    s = memory_refresh(m);
    assert_true(s->available);
    assert_int_equal(s->working_set_bytes, 0);
    assert_true(s->psi_some_avg10 < 0);
    assert_int_equal(s->tier, MEMORY_TIER_NORMAL);

    tree_write(t, "memory.max", "max\n");
    s = memory_refresh(m);
    assert_true(s->available);
    assert_false(s->limited);
    memory_free(m);
}

static void test_monitor_v1_sample(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    c.cgroup_root = t->root;
    fake_v1(t, "9223372036854771712\n", "3272704\n");
    struct memory_monitor *m = memory_new(NULL, &c, NULL);
    const struct memory_sample *s = memory_current(m);
    assert_true(s->available);
    assert_false(s->limited);
    assert_int_equal(s->working_set_bytes, 3272704 - 300000);
    assert_int_equal(s->oom_kills, 5);
    assert_true(s->psi_some_avg10 < 0);
    assert_int_equal(s->tier, MEMORY_TIER_NORMAL);

    /* old kernels: no oom_kill line; no total_inactive_file: inactive_file */
    tree_write(t, "memory.oom_control", v1_oom_control_old);
    tree_write(t, "memory.stat", "inactive_file 1000\n");
    tree_write(t, "memory.limit_in_bytes", "104857600\n");
    tree_write(t, "memory.pressure", "some avg10=41.00 avg60=0 avg300=0 total=0\n");
    s = memory_refresh(m);
    assert_true(s->available);
    assert_true(s->limited);
    assert_int_equal(s->oom_kills, 0);
    assert_int_equal(s->working_set_bytes, 3272704 - 1000);
    assert_int_equal(s->tier, MEMORY_TIER_CRITICAL);
    memory_free(m);
}

static void test_monitor_parent_walk(void **state)
{
    struct tree *t = *state;
    struct cgroup_location loc;
    char dir[CGROUP_PATH_MAX];
    tree_mkdir(t, "a/b/c");
    tree_path(t, "a/b/c", dir, sizeof dir);
    cgroup_location_set(&loc, 2, dir, t->root, "");
    tree_write(t, "a/b/c/memory.max", "max\n");
    tree_write(t, "a/b/c/memory.current", "1048576\n");
    tree_write(t, "a/b/c/memory.stat", "inactive_file 0\n");
    tree_write(t, "a/b/memory.max", "garbage\n");
    tree_write(t, "a/memory.max", "268435456\n");
    tree_write(t, "memory.max", "536870912\n");
    struct memory_options c = base_opts();
    struct memory_monitor *m = memory_new_at(NULL, &c, NULL, &loc);
    const struct memory_sample *s = memory_current(m);
    assert_true(s->available);
    assert_true(s->limited);
    assert_true(s->limit_bytes == 256 * MiB);
    memory_free(m);

    /* With --cgroup-root there is no walk. */
    c.cgroup_root = dir;
    m = memory_new(NULL, &c, NULL);
    assert_true(memory_current(m)->available);
    assert_false(memory_current(m)->limited);
    memory_free(m);
}

static void test_monitor_v1_hierarchical_limit(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    c.cgroup_root = t->root;
    fake_v1(t, "9223372036854771712\n", "3272704\n");
    tree_write(t, "memory.stat", "total_inactive_file 0\nhierarchical_memory_limit 67108864\n");
    struct memory_monitor *m = memory_new(NULL, &c, NULL);
    assert_true(memory_current(m)->limited);
    assert_true(memory_current(m)->limit_bytes == 64 * MiB);
    memory_free(m);
}

static void expect_unavailable(struct memory_monitor *m)
{
    const struct memory_sample *s = memory_refresh(m);
    assert_false(s->available);
    assert_int_equal(s->tier, MEMORY_TIER_UNKNOWN);
}

static void test_monitor_odd_files(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct capture cap;
    c.cgroup_root = t->root;
    fake_v2(t, "1073741824\n", "524288000\n");
    capture_start(&cap);
    struct memory_monitor *m = memory_new(NULL, &c, NULL);
    assert_true(memory_current(m)->available);

    tree_write(t, "memory.current", "");
    expect_unavailable(m);
    tree_write(t, "memory.current", "garbage\n");
    expect_unavailable(m);
    tree_write(t, "memory.current", "123456789012345678901234567890\n");
    expect_unavailable(m);
    tree_remove(t, "memory.current");
    tree_mkdir(t, "memory.current");
    expect_unavailable(m);
    tree_remove(t, "memory.current");
    char fifo[600];
    tree_path(t, "memory.current", fifo, sizeof fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_unavailable(m); /* and does not hang */
    tree_remove(t, "memory.current");
    expect_unavailable(m);
    int first = capture_stop(&cap);
    assert_int_equal(first, 1);

    capture_start(&cap);
    tree_write(t, "memory.current", "1000\n");
    assert_true(memory_refresh(m)->available);
    tree_write(t, "memory.stat", "nothing useful\n");
    expect_unavailable(m);
    tree_write(t, "memory.stat", v2_stat);
    tree_write(t, "memory.max", "-1\n");
    expect_unavailable(m);
    tree_write(t, "memory.max", "max\n");
    tree_write(t, "memory.events", "oom_kill lots\n");
    expect_unavailable(m);
    tree_remove(t, "memory.events");
    tree_mkdir(t, "memory.events");
    expect_unavailable(m);
    assert_int_equal(capture_stop(&cap), 1); /* one more, after the recovery */

    if (geteuid() != 0) {
        tree_remove(t, "memory.events");
        tree_write(t, "memory.events", "oom_kill 0\n");
        char p[600];
        tree_path(t, "memory.stat", p, sizeof p);
        chmod(p, 0);
        capture_start(&cap);
        assert_true(memory_refresh(m)->available == false);
        capture_stop(&cap);
    }
    memory_free(m);
}

static void test_monitor_nothing_there(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct capture cap;
    char dir[600];
    tree_path(t, "does-not-exist", dir, sizeof dir);
    c.cgroup_root = dir;
    capture_start(&cap);
    struct memory_monitor *m = memory_new(NULL, &c, NULL);
    expect_unavailable(m);
    expect_unavailable(m);
    assert_int_equal(capture_stop(&cap), 1);
    assert_false(memory_oom_since_start(m));
    memory_free(m);
}

static void test_monitor_oom_rise(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    fake_v2(t, "1073741824\n", "104857600\n");
    tree_write(t, "memory.events", "oom 1\noom_kill 1\n");
    struct loop *loop = loop_new();
    struct memory_monitor *m = memory_new(loop, &c, &cb);
    memory_app_started(m);
    assert_false(memory_oom_since_start(m));
    memory_watch(m, true);
    tree_write(t, "memory.events", "oom 3\noom_kill 3\n");
    memory_refresh(m);
    assert_int_equal(seen.ooms, 1);
    assert_int_equal(seen.oom_total, 3);
    memory_refresh(m);
    assert_int_equal(seen.ooms, 1);
    assert_true(memory_oom_since_start(m));

    /* A broken read in between must not look like a burst of kills later. */
    struct capture cap;
    capture_start(&cap);
    tree_write(t, "memory.current", "x\n");
    memory_refresh(m);
    tree_write(t, "memory.current", "104857600\n");
    memory_refresh(m);
    capture_stop(&cap);
    assert_int_equal(seen.ooms, 1);

    memory_watch(m, false);
    memory_app_started(m);
    assert_false(memory_oom_since_start(m));
    tree_write(t, "memory.events", "oom 4\noom_kill 4\n");
    memory_refresh(m); /* not watching: no callback, but still remembered */
    assert_int_equal(seen.ooms, 1);
    assert_true(memory_oom_since_start(m));
    memory_free(m);
    loop_free(loop);
}

static void test_monitor_tier_callback(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    fake_v2(t, "1073741824\n", "104857600\n");
    struct memory_monitor *m = memory_new(NULL, &c, &cb);
    tree_write(t, "memory.current", "1000000000\n"); /* ~93%, minus 20 MiB inactive */
    memory_refresh(m);
    assert_int_equal(seen.tier_changes, 0); /* not watching */
    memory_watch(m, true);
    tree_write(t, "memory.current", "104857600\n");
    memory_refresh(m);
    assert_int_equal(seen.tier_changes, 1);
    assert_int_equal(seen.old_tier, MEMORY_TIER_CRITICAL);
    assert_int_equal(seen.new_tier, MEMORY_TIER_NORMAL);
    tree_write(t, "memory.current", "900000000\n");
    memory_refresh(m);
    assert_int_equal(seen.tier_changes, 2);
    assert_int_equal(seen.new_tier, MEMORY_TIER_WARNING);
    memory_refresh(m);
    assert_int_equal(seen.tier_changes, 2);
    tree_write(t, "memory.current", "garbage\n");
    struct capture cap;
    capture_start(&cap);
    memory_refresh(m);
    capture_stop(&cap);
    assert_int_equal(seen.tier_changes, 3);
    assert_int_equal(seen.new_tier, MEMORY_TIER_UNKNOWN);
    memory_free(m);
}

static void test_monitor_restart(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    c.restart = abs_size(400 * MiB);
    c.restart_for_ms = 0;
    fake_v2(t, "max\n", "104857600\n");
    struct memory_monitor *m = memory_new(NULL, &c, &cb);
    memory_app_started(m);
    memory_watch(m, true);
    tree_write(t, "memory.current", "524288000\n");
    memory_refresh(m);
    assert_int_equal(seen.restarts, 1);
    memory_refresh(m);
    assert_int_equal(seen.restarts, 1); /* once per stretch */
    memory_app_started(m);
    memory_refresh(m);
    assert_int_equal(seen.restarts, 2); /* a new run starts the count over */
    tree_write(t, "memory.current", "104857600\n");
    memory_refresh(m);
    tree_write(t, "memory.current", "524288000\n");
    memory_refresh(m);
    assert_int_equal(seen.restarts, 3);

    /* --memory-restart-for: it must stay high that long */
    c.restart_for_ms = 60;
    tree_write(t, "memory.current", "104857600\n");
    memory_refresh(m);
    tree_write(t, "memory.current", "524288000\n");
    memory_refresh(m);
    assert_int_equal(seen.restarts, 3);
    usleep(30 * 1000);
    memory_refresh(m);
    tree_write(t, "memory.current", "104857600\n");
    memory_refresh(m); /* dipped: start over */
    tree_write(t, "memory.current", "524288000\n");
    memory_refresh(m);
    usleep(40 * 1000);
    memory_refresh(m);
    assert_int_equal(seen.restarts, 3);
    usleep(30 * 1000);
    memory_refresh(m);
    assert_int_equal(seen.restarts, 4);

    /* not while no app runs */
    memory_watch(m, false);
    memory_app_started(m);
    c.restart_for_ms = 0;
    memory_refresh(m);
    assert_int_equal(seen.restarts, 4);
    memory_free(m);
}

static void stop_loop(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)timer;
    (void)data;
    loop_stop(loop);
}

static void run_loop_for(struct loop *loop, uint64_t ms)
{
    struct loop_timer *stop = loop_timer_new(loop, stop_loop, NULL);
    loop_timer_arm(stop, ms);
    loop_run(loop);
    loop_timer_free(stop);
}

static void test_monitor_sampling_timer(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    c.interval_ms = 10;
    c.sample_for_tier_changes = true; /* an option that needs the live tier */
    fake_v2(t, "1073741824\n", "104857600\n");
    struct loop *loop = loop_new();
    struct memory_monitor *m = memory_new(loop, &c, &cb);
    memory_watch(m, true);
    tree_write(t, "memory.current", "1000000000\n");
    run_loop_for(loop, 100);
    assert_int_equal(seen.tier_changes, 1);
    assert_int_equal(seen.new_tier, MEMORY_TIER_CRITICAL);

    /* A plain file is never taken for a PSI trigger (nor overwritten by one). */
    char p[600], buf[256] = "";
    tree_path(t, "memory.pressure", p, sizeof p);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_non_null(strstr(buf, "avg10=0.00"));

    /* watching off: no more samples */
    memory_watch(m, false);
    tree_write(t, "memory.current", "104857600\n");
    run_loop_for(loop, 60);
    assert_int_equal(seen.tier_changes, 1);
    memory_free(m);
    loop_free(loop);
}

static void test_monitor_no_timer_when_unavailable(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    struct capture cap;
    c.cgroup_root = t->root;
    c.interval_ms = 10;
    fake_v2(t, "1073741824\n", "garbage\n");
    struct loop *loop = loop_new();
    capture_start(&cap);
    struct memory_monitor *m = memory_new(loop, &c, &cb);
    memory_watch(m, true);
    tree_write(t, "memory.current", "104857600\n");
    run_loop_for(loop, 60);
    assert_int_equal(seen.tier_changes, 0); /* nothing sampled it */
    assert_false(memory_current(m)->available);
    memory_refresh(m); /* an explicit refresh finds it and sampling resumes */
    capture_stop(&cap);
    assert_int_equal(seen.tier_changes, 1);
    tree_write(t, "memory.current", "1000000000\n");
    run_loop_for(loop, 60);
    assert_int_equal(seen.tier_changes, 2);
    memory_free(m);
    loop_free(loop);
}

/* No limit, percentage thresholds and no option that needs the live working
 * set: no tier can be reached, so nothing samples (idle means no wake-ups);
 * an explicit refresh still reads the files. */
static void test_monitor_no_sampling_when_nothing_needs_it(void **state)
{
    struct tree *t = *state;
    struct memory_options c = base_opts();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    c.interval_ms = 10;
    fake_v2(t, "max\n", "104857600\n");
    struct loop *loop = loop_new();
    struct memory_monitor *m = memory_new(loop, &c, &cb);
    memory_watch(m, true);
    tree_write(t, "memory.current", "1000000000\n");
    run_loop_for(loop, 60);
    assert_int_equal(memory_current(m)->usage_bytes, 104857600);
    memory_refresh(m);
    assert_int_equal(memory_current(m)->usage_bytes, 1000000000);
    memory_free(m);
    loop_free(loop);
}

/* On a real cgroup this exercises the PSI trigger and memory.events paths; it
 * only checks that watching the machine's own cgroup is quiet and sane. */
static void test_monitor_this_machine(void **state)
{
    (void)state;
    struct memory_options c = base_opts();
    c.interval_ms = 20;
    struct loop *loop = loop_new();
    struct capture cap;
    capture_start(&cap);
    struct memory_monitor *m = memory_new(loop, &c, NULL);
    memory_app_started(m);
    memory_watch(m, true);
    run_loop_for(loop, 50);
    const struct memory_sample *s = memory_refresh(m);
    memory_watch(m, false);
    capture_stop(&cap);
    if (s->available)
        assert_true(s->working_set_bytes <= s->usage_bytes);
    memory_free(m);
    loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tier_percent),
        cmocka_unit_test(test_tier_absolute_and_unlimited),
        cmocka_unit_test(test_tier_psi),
        cmocka_unit_test_setup_teardown(test_monitor_v2_sample, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_v1_sample, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_parent_walk, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_v1_hierarchical_limit, tree_setup,
                                        tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_odd_files, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_nothing_there, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_oom_rise, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_tier_callback, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_restart, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_sampling_timer, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_no_sampling_when_nothing_needs_it, tree_setup,
                                        tree_teardown),
        cmocka_unit_test_setup_teardown(test_monitor_no_timer_when_unavailable, tree_setup,
                                        tree_teardown),
        cmocka_unit_test(test_monitor_this_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
