/* Memory: cgroup file parsers, cgroup location, tiers, the app's environment,
 * and the monitor over fake cgroup trees in a temporary directory. */
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
#include "resil/memory.h"

#define MiB (UINT64_C(1) << 20)

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

static const char v2_stat[] = "anon 104857600\n"
                              "file 52428800\n"
                              "kernel_stack 65536\n"
                              "active_anon 100000000\n"
                              "inactive_anon 4857600\n"
                              "active_file 31457280\n"
                              "inactive_file 20971520\n"
                              "unevictable 0\n"
                              "workingset_refault_file 87\n";

/* As this machine's v1 memory controller writes it (abridged). */
static const char v1_stat[] = "cache 372736\n"
                              "rss 1662976\n"
                              "inactive_anon 1540096\n"
                              "inactive_file 258048\n"
                              "active_file 114688\n"
                              "hierarchical_memory_limit 9223372036854771712\n"
                              "hierarchical_memsw_limit 9223372036854771712\n"
                              "total_cache 372736\n"
                              "total_inactive_file 300000\n"
                              "total_active_file 114688\n";

static const char v2_events[] = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
static const char v1_oom_control[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
static const char v1_oom_control_old[] = "oom_kill_disable 0\nunder_oom 0\n";
static const char pressure[] = "some avg10=12.34 avg60=5.00 avg300=1.00 total=123456\n"
                               "full avg10=3.00 avg60=1.00 avg300=0.00 total=2345\n";

/* ------------------------------------------------------------------------ */
/* Parsers                                                                   */
/* ------------------------------------------------------------------------ */

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(memory_parse_u64("123\n", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(memory_parse_u64("  42  \n", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(memory_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(memory_parse_u64("18446744073709551616", &v), -1);
    assert_int_equal(memory_parse_u64("99999999999999999999999999\n", &v), -1);
    assert_int_equal(memory_parse_u64("", &v), -1);
    assert_int_equal(memory_parse_u64("\n", &v), -1);
    assert_int_equal(memory_parse_u64("abc", &v), -1);
    assert_int_equal(memory_parse_u64("-1", &v), -1);
    assert_int_equal(memory_parse_u64("12 34", &v), -1);
    assert_int_equal(memory_parse_u64("12k", &v), -1);
    assert_int_equal(memory_parse_u64(NULL, &v), -1);
    assert_int_equal(v, 7);
}

static void test_parse_limit(void **state)
{
    (void)state;
    uint64_t b;
    bool unl;
    assert_int_equal(memory_parse_limit("max\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(memory_parse_limit("536870912\n", &b, &unl), 0);
    assert_false(unl);
    assert_true(b == 512 * MiB);
    assert_int_equal(memory_parse_limit("9223372036854771712\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(memory_parse_limit("9223372036854775807\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(memory_parse_limit("4611686018427387904\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(memory_parse_limit("4611686018427387903\n", &b, &unl), 0);
    assert_false(unl);
    assert_int_equal(memory_parse_limit("", &b, &unl), -1);
    assert_int_equal(memory_parse_limit("maximum\n", &b, &unl), -1);
    assert_int_equal(memory_parse_limit("1G\n", &b, &unl), -1);
    assert_int_equal(memory_parse_limit("123456789012345678901234567890\n", &b, &unl), -1);
}

static void test_parse_stat(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(memory_parse_keyed(v2_stat, "inactive_file", &v), 0);
    assert_true(v == 20 * MiB);
    assert_int_equal(memory_parse_keyed(v2_stat, "active_file", &v), 0);
    assert_true(v == 30 * MiB);
    assert_int_equal(memory_parse_keyed(v2_stat, "anon", &v), 0);
    assert_true(v == 100 * MiB);
    assert_int_equal(memory_parse_keyed(v2_stat, "total_inactive_file", &v), -1);
    assert_int_equal(memory_parse_keyed(v1_stat, "total_inactive_file", &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(memory_parse_keyed(v1_stat, "inactive_file", &v), 0);
    assert_int_equal(v, 258048);
    assert_int_equal(memory_parse_keyed("inactive_file x\n", "inactive_file", &v), -1);
    assert_int_equal(memory_parse_keyed("inactive_file 12x\n", "inactive_file", &v), -1);
    assert_int_equal(memory_parse_keyed("inactive_file\n", "inactive_file", &v), -1);
    assert_int_equal(
        memory_parse_keyed("inactive_file 99999999999999999999999\n", "inactive_file", &v), -1);
    assert_int_equal(memory_parse_keyed("", "inactive_file", &v), -1);
    assert_int_equal(memory_parse_keyed("inactive_file 5", "inactive_file", &v), 0);
    assert_int_equal(v, 5);
}

static void test_parse_events(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(memory_parse_keyed(v2_events, "oom_kill", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(memory_parse_keyed(v2_events, "oom", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(memory_parse_keyed(v1_oom_control, "oom_kill", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(memory_parse_keyed(v1_oom_control_old, "oom_kill", &v), -1);
}

static void test_parse_psi(void **state)
{
    (void)state;
    double v = -5;
    assert_int_equal(memory_parse_psi_some_avg10(pressure, &v), 0);
    assert_true(v > 12.339 && v < 12.341);
    assert_int_equal(memory_parse_psi_some_avg10("some avg10=0.00 avg60=0.00\n", &v), 0);
    assert_true(v == 0);
    assert_int_equal(memory_parse_psi_some_avg10("some avg60=1.00 avg10=45 total=1\n", &v), 0);
    assert_true(v == 45);
    assert_int_equal(memory_parse_psi_some_avg10("full avg10=3.00\n", &v), -1);
    assert_int_equal(memory_parse_psi_some_avg10("some avg10=abc\n", &v), -1);
    assert_int_equal(memory_parse_psi_some_avg10("some avg10=1.\n", &v), -1);
    assert_int_equal(memory_parse_psi_some_avg10("", &v), -1);
    assert_int_equal(memory_parse_psi_some_avg10("garbage\n", &v), -1);
}

static void test_proc_cgroup(void **state)
{
    (void)state;
    char v2[256], v1[256];
    assert_int_equal(memory_parse_proc_cgroup("0::/\n", v2, sizeof v2, v1, sizeof v1), 0);
    assert_string_equal(v2, "/");
    assert_string_equal(v1, "");
    assert_int_equal(
        memory_parse_proc_cgroup("0::/kubepods/pod1/ctr\n", v2, sizeof v2, v1, sizeof v1), 0);
    assert_string_equal(v2, "/kubepods/pod1/ctr");
    assert_int_equal(memory_parse_proc_cgroup("12:cpu,cpuacct:/a\n11:memory:/docker/abc\n"
                                              "1:name=systemd:/docker/abc\n",
                                              v2, sizeof v2, v1, sizeof v1),
                     0);
    assert_string_equal(v2, "");
    assert_string_equal(v1, "/docker/abc");
    /* this machine: hybrid */
    assert_int_equal(memory_parse_proc_cgroup("9:name=systemd:/\n4:memory:/x\n1:cpu:/\n0::/\n", v2,
                                              sizeof v2, v1, sizeof v1),
                     0);
    assert_string_equal(v2, "/");
    assert_string_equal(v1, "/x");
    assert_int_equal(memory_parse_proc_cgroup("0::/../../foo\n", v2, sizeof v2, NULL, 0), 0);
    assert_string_equal(v2, "/../../foo");
    assert_int_equal(memory_parse_proc_cgroup("3:memory,hugetlb:/a:b\n", NULL, 0, v1, sizeof v1),
                     0);
    assert_string_equal(v1, "/a:b");
    assert_int_equal(memory_parse_proc_cgroup("3:cpu:/a\n", v2, sizeof v2, v1, sizeof v1), -1);
    assert_int_equal(memory_parse_proc_cgroup("", v2, sizeof v2, v1, sizeof v1), -1);
    assert_int_equal(memory_parse_proc_cgroup("garbage", v2, sizeof v2, v1, sizeof v1), -1);
    assert_int_equal(memory_parse_proc_cgroup("0::/a/long/path\n", v2, 4, NULL, 0), -1);
}

/* ------------------------------------------------------------------------ */
/* Fake trees                                                                */
/* ------------------------------------------------------------------------ */

struct tree {
    char root[256];
};

static int tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof *t);
    snprintf(t->root, sizeof t->root, "/tmp/test_memory.XXXXXX");
    assert_non_null(mkdtemp(t->root));
    *state = t;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->root);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

static void tree_path(const struct tree *t, const char *rel, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", t->root, rel);
}

static void tree_mkdir(const struct tree *t, const char *rel)
{
    char path[512], cmd[600];
    tree_path(t, rel, path, sizeof path);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
}

/* Atomic like the kernel's files look to a reader: no half-written state. */
static void tree_write(const struct tree *t, const char *rel, const char *text)
{
    char path[512], tmp[520];
    tree_path(t, rel, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void tree_remove(const struct tree *t, const char *rel)
{
    char path[512];
    tree_path(t, rel, path, sizeof path);
    unlink(path);
    rmdir(path);
}

static void fake_v2(const struct tree *t, const char *limit, const char *usage)
{
    tree_write(t, "memory.max", limit);
    tree_write(t, "memory.current", usage);
    tree_write(t, "memory.stat", v2_stat);
    tree_write(t, "memory.events", "oom 0\noom_kill 0\n");
    tree_write(t, "memory.pressure",
               "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
}

static void fake_v1(const struct tree *t, const char *limit, const char *usage)
{
    tree_write(t, "memory.limit_in_bytes", limit);
    tree_write(t, "memory.usage_in_bytes", usage);
    tree_write(t, "memory.stat", v1_stat);
    tree_write(t, "memory.oom_control", v1_oom_control);
}

/* ------------------------------------------------------------------------ */
/* Locating the cgroup                                                       */
/* ------------------------------------------------------------------------ */

static char *mountinfo_for(const struct tree *t, const char *v1_root, const char *v2_point)
{
    static char text[4096];
    snprintf(text, sizeof text,
             "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
             "32 31 0:29 / %s/cpu rw,relatime - cgroup cgroup rw,cpu\n"
             "35 31 0:32 %s %s/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
             "41 31 0:38 / %s/%s rw,relatime - cgroup2 cgroup2 rw\n",
             t->root, v1_root, t->root, t->root, v2_point);
    return text;
}

static void test_locate_hybrid(void **state)
{
    struct tree *t = *state;
    struct memory_location loc;
    char want[600];
    tree_mkdir(t, "memory/process_api/abc");
    tree_mkdir(t, "unified");
    tree_write(t, "unified/memory.pressure", pressure);
    const char *cg = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
    assert_int_equal(memory_locate(cg, mountinfo_for(t, "/", "unified"), &loc), 0);
    assert_int_equal(loc.version, 1);
    tree_path(t, "memory/process_api/abc", want, sizeof want);
    assert_string_equal(loc.dir, want);
    tree_path(t, "memory", want, sizeof want);
    assert_string_equal(loc.top, want);
    tree_path(t, "unified", want, sizeof want);
    assert_string_equal(loc.psi_dir, want);

    /* A v2 cgroup that does carry the memory controller wins. */
    tree_write(t, "unified/memory.max", "max\n");
    assert_int_equal(memory_locate(cg, mountinfo_for(t, "/", "unified"), &loc), 0);
    assert_int_equal(loc.version, 2);
    assert_string_equal(loc.dir, want);
}

static void test_locate_v2(void **state)
{
    struct tree *t = *state;
    struct memory_location loc;
    char want[600];
    tree_mkdir(t, "cg2/kubepods/pod1/ctr");
    const char *mi = mountinfo_for(t, "/", "cg2");
    assert_int_equal(memory_locate("0::/kubepods/pod1/ctr\n", mi, &loc), 0);
    assert_int_equal(loc.version, 2);
    tree_path(t, "cg2/kubepods/pod1/ctr", want, sizeof want);
    assert_string_equal(loc.dir, want);
    assert_string_equal(loc.psi_dir, want);
    tree_path(t, "cg2", want, sizeof want);
    assert_string_equal(loc.top, want);

    /* Not visible under the mount: the mount root is our cgroup. */
    assert_int_equal(memory_locate("0::/system.slice/gone\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);
    assert_int_equal(memory_locate("0::/../../foo\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);
    assert_int_equal(memory_locate("0::/\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);

    /* No memory controller anywhere. */
    assert_int_equal(memory_locate("0::/\n", "", &loc), -1);
    assert_string_equal(loc.dir, "");
    assert_int_equal(memory_locate("", mi, &loc), -1);
}

static void test_locate_v1_bind_mounted(void **state)
{
    struct tree *t = *state;
    struct memory_location loc;
    char want[600];
    /* Docker on v1: the container's own cgroup is what is mounted. */
    tree_mkdir(t, "memory");
    const char *cg = "11:memory:/docker/abc\n";
    assert_int_equal(memory_locate(cg, mountinfo_for(t, "/docker/abc", "none"), &loc), 0);
    assert_int_equal(loc.version, 1);
    tree_path(t, "memory", want, sizeof want);
    assert_string_equal(loc.dir, want);
    assert_string_equal(loc.psi_dir, "");

    tree_mkdir(t, "memory/sub");
    assert_int_equal(
        memory_locate("11:memory:/docker/abc/sub\n", mountinfo_for(t, "/docker/abc", "none"), &loc),
        0);
    tree_path(t, "memory/sub", want, sizeof want);
    assert_string_equal(loc.dir, want);
}

static void test_locate_escaped_mount_point(void **state)
{
    struct tree *t = *state;
    struct memory_location loc;
    char mi[1024], want[600];
    tree_mkdir(t, "cg two/x");
    snprintf(mi, sizeof mi, "41 31 0:38 / %s/cg\\040two rw - cgroup2 cgroup2 rw\n", t->root);
    assert_int_equal(memory_locate("0::/x\n", mi, &loc), 0);
    tree_path(t, "cg two/x", want, sizeof want);
    assert_string_equal(loc.dir, want);
}

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

static struct resil_config base_cfg(void)
{
    struct resil_config c;
    memset(&c, 0, sizeof c);
    c.memory_warn = pct(75);
    c.memory_critical = pct(85);
    c.memory_restart_for_ms = 30000;
    c.memory_interval_ms = 5000;
    return c;
}

static struct memory_sample sample(bool limited, uint64_t limit, uint64_t ws, double psi)
{
    struct memory_sample s = {.available = true,
                              .limited = limited,
                              .limit_bytes = limit,
                              .usage_bytes = ws,
                              .working_set_bytes = ws,
                              .psi_some_avg10 = psi};
    return s;
}

static void test_tier_percent(void **state)
{
    (void)state;
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
    struct memory_sample s = sample(false, 0, 100000 * MiB, -1);
    assert_int_equal(memory_tier_for(&s, &c), MEMORY_TIER_NORMAL); /* percent: no limit, no tier */
    c.memory_warn = abs_size(200 * MiB);
    c.memory_critical = abs_size(300 * MiB);
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
    struct resil_config c = base_cfg();
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
/* Environment                                                               */
/* ------------------------------------------------------------------------ */

static const char *env_value(char **env, const char *key)
{
    size_t n = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; env[i]; i++) {
        if (strncmp(env[i], key, n) == 0 && env[i][n] == '=') {
            assert_null(found); /* each key at most once */
            found = env[i] + n + 1;
        }
    }
    return found;
}

static void test_env_basic(void **state)
{
    (void)state;
    struct resil_config c = base_cfg();
    char *envp[] = {"PATH=/bin", "RESIL_EMERGENCY=9", "HOME=/root", NULL};
    struct memory_sample s = sample(true, 512 * MiB + 12345, 10 * MiB, -1);
    s.tier = MEMORY_TIER_NORMAL;
    char **env = memory_build_env(envp, &c, &s, false, 0, "start");
    assert_non_null(env);
    assert_string_equal(env_value(env, "PATH"), "/bin");
    assert_string_equal(env_value(env, "HOME"), "/root");
    assert_string_equal(env_value(env, "RESIL_MEMORY_LIMIT_MB"), "512");
    assert_string_equal(env_value(env, "RESIL_MEMORY_TIER"), "normal");
    assert_string_equal(env_value(env, "RESIL_EMERGENCY"), "0");
    assert_string_equal(env_value(env, "RESIL_RESTART_COUNT"), "0");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "start");
    assert_null(env_value(env, "EMERGENCY_MODE"));
    assert_null(env_value(env, "NODE_OPTIONS"));
    memory_env_free(env);
}

static void test_env_unlimited_and_unknown(void **state)
{
    (void)state;
    struct resil_config c = base_cfg();
    c.runtime_hints = true;
    struct memory_sample s = sample(false, 0, 10 * MiB, -1);
    s.tier = MEMORY_TIER_NORMAL;
    char **env = memory_build_env(NULL, &c, &s, false, 3, "crash");
    assert_string_equal(env_value(env, "RESIL_MEMORY_LIMIT_MB"), "");
    assert_string_equal(env_value(env, "RESIL_RESTART_COUNT"), "3");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "crash");
    assert_null(env_value(env, "NODE_OPTIONS"));
    assert_null(env_value(env, "GOMEMLIMIT"));
    memory_env_free(env);

    env = memory_build_env(NULL, &c, NULL, false, 0, NULL);
    assert_string_equal(env_value(env, "RESIL_MEMORY_LIMIT_MB"), "");
    assert_string_equal(env_value(env, "RESIL_MEMORY_TIER"), "unknown");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "start");
    memory_env_free(env);
}

static void test_env_emergency_default_keeps_user_vars(void **state)
{
    (void)state;
    struct resil_config c = base_cfg();
    char *set[] = {"EMERGENCY_MODE=true"};
    c.emergency_env = set;
    c.emergency_env_count = 1;
    c.emergency_env_explicit = false;
    char *envp[] = {"EMERGENCY_MODE=off", NULL};
    struct memory_sample s = sample(true, 256 * MiB, 250 * MiB, -1);
    s.tier = MEMORY_TIER_CRITICAL;
    char **env = memory_build_env(envp, &c, &s, true, 1, "oom");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "off");
    assert_string_equal(env_value(env, "RESIL_EMERGENCY"), "1");
    assert_string_equal(env_value(env, "RESIL_MEMORY_TIER"), "critical");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "oom");
    memory_env_free(env);

    char *empty[] = {NULL};
    env = memory_build_env(empty, &c, &s, true, 1, "oom");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "true");
    memory_env_free(env);
}

static void test_env_emergency_explicit_overwrites(void **state)
{
    (void)state;
    struct resil_config c = base_cfg();
    char *set[] = {"EMERGENCY_MODE=yes", "CACHE_MB=16", "RESIL_EMERGENCY=bogus", "NOEQUALS"};
    c.emergency_env = set;
    c.emergency_env_count = 4;
    c.emergency_env_explicit = true;
    char *envp[] = {"EMERGENCY_MODE=off", "CACHE_MB=512", "CACHE_MB=1024", NULL};
    struct memory_sample s = sample(true, 256 * MiB, 250 * MiB, -1);
    char **env = memory_build_env(envp, &c, &s, true, 2, "memory");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "yes");
    assert_string_equal(env_value(env, "CACHE_MB"), "16");
    assert_string_equal(env_value(env, "RESIL_EMERGENCY"), "1"); /* RESIL_* always win */
    assert_null(env_value(env, "NOEQUALS"));
    memory_env_free(env);

    /* Not in emergency: the set stays out. */
    env = memory_build_env(envp, &c, &s, false, 2, "memory");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "off");
    memory_env_free(env);
}

static void test_env_runtime_hints(void **state)
{
    (void)state;
    struct resil_config c = base_cfg();
    c.runtime_hints = true;
    struct memory_sample s = sample(true, 1024 * MiB, 1, -1);

    char **env = memory_build_env(NULL, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max-old-space-size=768");
    assert_string_equal(env_value(env, "GOMEMLIMIT"), "966367641");
    memory_env_free(env);

    char *append[] = {"NODE_OPTIONS=--enable-source-maps", "GOMEMLIMIT=100MiB", NULL};
    env = memory_build_env(append, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"),
                        "--enable-source-maps --max-old-space-size=768");
    assert_string_equal(env_value(env, "GOMEMLIMIT"), "100MiB");
    memory_env_free(env);

    char *skip[] = {"NODE_OPTIONS=--max-old-space-size=100", "GOMEMLIMIT=", NULL};
    env = memory_build_env(skip, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max-old-space-size=100");
    assert_string_equal(env_value(env, "GOMEMLIMIT"), "966367641");
    memory_env_free(env);

    char *underscore[] = {"NODE_OPTIONS=--max_old_space_size=100", NULL};
    env = memory_build_env(underscore, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max_old_space_size=100");
    memory_env_free(env);

    char *empty_node[] = {"NODE_OPTIONS=", NULL};
    env = memory_build_env(empty_node, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max-old-space-size=768");
    memory_env_free(env);

    c.runtime_hints = false;
    env = memory_build_env(NULL, &c, &s, false, 0, "start");
    assert_null(env_value(env, "NODE_OPTIONS"));
    assert_null(env_value(env, "GOMEMLIMIT"));
    memory_env_free(env);
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
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
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
    struct memory_location loc;
    memset(&loc, 0, sizeof loc);
    loc.version = 2;
    tree_mkdir(t, "a/b/c");
    tree_path(t, "a/b/c", loc.dir, sizeof loc.dir);
    snprintf(loc.top, sizeof loc.top, "%s", t->root);
    tree_write(t, "a/b/c/memory.max", "max\n");
    tree_write(t, "a/b/c/memory.current", "1048576\n");
    tree_write(t, "a/b/c/memory.stat", "inactive_file 0\n");
    tree_write(t, "a/b/memory.max", "garbage\n");
    tree_write(t, "a/memory.max", "268435456\n");
    tree_write(t, "memory.max", "536870912\n");
    struct resil_config c = base_cfg();
    struct memory_monitor *m = memory_new_at(NULL, &c, NULL, &loc);
    const struct memory_sample *s = memory_current(m);
    assert_true(s->available);
    assert_true(s->limited);
    assert_true(s->limit_bytes == 256 * MiB);
    memory_free(m);

    /* With --cgroup-root there is no walk. */
    char dir[600];
    tree_path(t, "a/b/c", dir, sizeof dir);
    c.cgroup_root = dir;
    m = memory_new(NULL, &c, NULL);
    assert_true(memory_current(m)->available);
    assert_false(memory_current(m)->limited);
    memory_free(m);
}

static void test_monitor_v1_hierarchical_limit(void **state)
{
    struct tree *t = *state;
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
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
    struct resil_config c = base_cfg();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    c.memory_restart = abs_size(400 * MiB);
    c.memory_restart_for_ms = 0;
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
    c.memory_restart_for_ms = 60;
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
    c.memory_restart_for_ms = 0;
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
    struct resil_config c = base_cfg();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    c.memory_interval_ms = 10;
    c.pressure_signal = SIGUSR1; /* an option that needs the live tier */
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
    struct resil_config c = base_cfg();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    struct capture cap;
    c.cgroup_root = t->root;
    c.memory_interval_ms = 10;
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
    struct resil_config c = base_cfg();
    struct seen seen = {0};
    struct memory_callbacks cb = callbacks(&seen);
    c.cgroup_root = t->root;
    c.memory_interval_ms = 10;
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
    struct resil_config c = base_cfg();
    c.memory_interval_ms = 20;
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
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_limit),
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_parse_events),
        cmocka_unit_test(test_parse_psi),
        cmocka_unit_test(test_proc_cgroup),
        cmocka_unit_test_setup_teardown(test_locate_hybrid, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_v2, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_v1_bind_mounted, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_escaped_mount_point, tree_setup, tree_teardown),
        cmocka_unit_test(test_tier_percent),
        cmocka_unit_test(test_tier_absolute_and_unlimited),
        cmocka_unit_test(test_tier_psi),
        cmocka_unit_test(test_env_basic),
        cmocka_unit_test(test_env_unlimited_and_unknown),
        cmocka_unit_test(test_env_emergency_default_keeps_user_vars),
        cmocka_unit_test(test_env_emergency_explicit_overwrites),
        cmocka_unit_test(test_env_runtime_hints),
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
