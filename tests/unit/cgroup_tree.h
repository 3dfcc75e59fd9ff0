/* Fake cgroup trees in a temporary directory and the file texts they hold,
 * shared by the cgroup backend's and the memory monitor's tests (include it
 * after cmocka.h). */
#ifndef RESIL_TEST_CGROUP_TREE_H
#define RESIL_TEST_CGROUP_TREE_H

#include <stdio.h>
#include <stdlib.h>

#define MiB (UINT64_C(1) << 20)

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

__attribute__((unused)) static const char v2_stat[] = "anon 104857600\n"
                                                      "file 52428800\n"
                                                      "kernel_stack 65536\n"
                                                      "active_anon 100000000\n"
                                                      "inactive_anon 4857600\n"
                                                      "active_file 31457280\n"
                                                      "inactive_file 20971520\n"
                                                      "unevictable 0\n"
                                                      "workingset_refault_file 87\n";

/* As this machine's v1 memory controller writes it (abridged). */
__attribute__((unused)) static const char v1_stat[] =
    "cache 372736\n"
    "rss 1662976\n"
    "inactive_anon 1540096\n"
    "inactive_file 258048\n"
    "active_file 114688\n"
    "hierarchical_memory_limit 9223372036854771712\n"
    "hierarchical_memsw_limit 9223372036854771712\n"
    "total_cache 372736\n"
    "total_inactive_file 300000\n"
    "total_active_file 114688\n";

__attribute__((unused)) static const char v2_events[] =
    "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
__attribute__((unused)) static const char v1_oom_control[] =
    "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
__attribute__((unused)) static const char v1_oom_control_old[] =
    "oom_kill_disable 0\nunder_oom 0\n";
__attribute__((unused)) static const char pressure[] =
    "some avg10=12.34 avg60=5.00 avg300=1.00 total=123456\n"
    "full avg10=3.00 avg60=1.00 avg300=0.00 total=2345\n";

/* ------------------------------------------------------------------------ */
/* Fake trees                                                                */
/* ------------------------------------------------------------------------ */

struct tree {
    char root[256];
};

static inline int tree_setup(void **state)
{
    struct tree *t = calloc(1, sizeof *t);
    snprintf(t->root, sizeof t->root, "/tmp/test_memory.XXXXXX");
    assert_non_null(mkdtemp(t->root));
    *state = t;
    return 0;
}

static inline int tree_teardown(void **state)
{
    struct tree *t = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->root);
    assert_int_equal(system(cmd), 0);
    free(t);
    return 0;
}

static inline void tree_path(const struct tree *t, const char *rel, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", t->root, rel);
}

static inline void tree_mkdir(const struct tree *t, const char *rel)
{
    char path[512], cmd[600];
    tree_path(t, rel, path, sizeof path);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
}

/* Atomic like the kernel's files look to a reader: no half-written state. */
static inline void tree_write(const struct tree *t, const char *rel, const char *text)
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

static inline void tree_remove(const struct tree *t, const char *rel)
{
    char path[512];
    tree_path(t, rel, path, sizeof path);
    unlink(path);
    rmdir(path);
}

static inline void fake_v2(const struct tree *t, const char *limit, const char *usage)
{
    tree_write(t, "memory.max", limit);
    tree_write(t, "memory.current", usage);
    tree_write(t, "memory.stat", v2_stat);
    tree_write(t, "memory.events", "oom 0\noom_kill 0\n");
    tree_write(t, "memory.pressure",
               "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
}

static inline void fake_v1(const struct tree *t, const char *limit, const char *usage)
{
    tree_write(t, "memory.limit_in_bytes", limit);
    tree_write(t, "memory.usage_in_bytes", usage);
    tree_write(t, "memory.stat", v1_stat);
    tree_write(t, "memory.oom_control", v1_oom_control);
}

#endif
