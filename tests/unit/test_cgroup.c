/* cgroup backend: file parsers and locating the cgroup from /proc/self/cgroup
 * and mountinfo text, over fake trees in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resil/cgroup_internal.h"

#include "cgroup_tree.h"

/* ------------------------------------------------------------------------ */
/* Parsers                                                                   */
/* ------------------------------------------------------------------------ */

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(cgroup_parse_u64("123\n", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(cgroup_parse_u64("  42  \n", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cgroup_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(cgroup_parse_u64("18446744073709551616", &v), -1);
    assert_int_equal(cgroup_parse_u64("99999999999999999999999999\n", &v), -1);
    assert_int_equal(cgroup_parse_u64("", &v), -1);
    assert_int_equal(cgroup_parse_u64("\n", &v), -1);
    assert_int_equal(cgroup_parse_u64("abc", &v), -1);
    assert_int_equal(cgroup_parse_u64("-1", &v), -1);
    assert_int_equal(cgroup_parse_u64("12 34", &v), -1);
    assert_int_equal(cgroup_parse_u64("12k", &v), -1);
    assert_int_equal(cgroup_parse_u64(NULL, &v), -1);
    assert_int_equal(v, 7);
}

static void test_parse_limit(void **state)
{
    (void)state;
    uint64_t b;
    bool unl;
    assert_int_equal(cgroup_parse_limit("max\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(cgroup_parse_limit("536870912\n", &b, &unl), 0);
    assert_false(unl);
    assert_true(b == 512 * MiB);
    assert_int_equal(cgroup_parse_limit("9223372036854771712\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(cgroup_parse_limit("9223372036854775807\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(cgroup_parse_limit("4611686018427387904\n", &b, &unl), 0);
    assert_true(unl);
    assert_int_equal(cgroup_parse_limit("4611686018427387903\n", &b, &unl), 0);
    assert_false(unl);
    assert_int_equal(cgroup_parse_limit("", &b, &unl), -1);
    assert_int_equal(cgroup_parse_limit("maximum\n", &b, &unl), -1);
    assert_int_equal(cgroup_parse_limit("1G\n", &b, &unl), -1);
    assert_int_equal(cgroup_parse_limit("123456789012345678901234567890\n", &b, &unl), -1);
}

static void test_parse_stat(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(cgroup_parse_keyed(v2_stat, "inactive_file", &v), 0);
    assert_true(v == 20 * MiB);
    assert_int_equal(cgroup_parse_keyed(v2_stat, "active_file", &v), 0);
    assert_true(v == 30 * MiB);
    assert_int_equal(cgroup_parse_keyed(v2_stat, "anon", &v), 0);
    assert_true(v == 100 * MiB);
    assert_int_equal(cgroup_parse_keyed(v2_stat, "total_inactive_file", &v), -1);
    assert_int_equal(cgroup_parse_keyed(v1_stat, "total_inactive_file", &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(cgroup_parse_keyed(v1_stat, "inactive_file", &v), 0);
    assert_int_equal(v, 258048);
    assert_int_equal(cgroup_parse_keyed("inactive_file x\n", "inactive_file", &v), -1);
    assert_int_equal(cgroup_parse_keyed("inactive_file 12x\n", "inactive_file", &v), -1);
    assert_int_equal(cgroup_parse_keyed("inactive_file\n", "inactive_file", &v), -1);
    assert_int_equal(
        cgroup_parse_keyed("inactive_file 99999999999999999999999\n", "inactive_file", &v), -1);
    assert_int_equal(cgroup_parse_keyed("", "inactive_file", &v), -1);
    assert_int_equal(cgroup_parse_keyed("inactive_file 5", "inactive_file", &v), 0);
    assert_int_equal(v, 5);
}

static void test_parse_events(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(cgroup_parse_keyed(v2_events, "oom_kill", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(cgroup_parse_keyed(v2_events, "oom", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(cgroup_parse_keyed(v1_oom_control, "oom_kill", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(cgroup_parse_keyed(v1_oom_control_old, "oom_kill", &v), -1);
}

static void test_parse_psi(void **state)
{
    (void)state;
    double v = -5;
    assert_int_equal(cgroup_parse_psi_some_avg10(pressure, &v), 0);
    assert_true(v > 12.339 && v < 12.341);
    assert_int_equal(cgroup_parse_psi_some_avg10("some avg10=0.00 avg60=0.00\n", &v), 0);
    assert_true(v == 0);
    assert_int_equal(cgroup_parse_psi_some_avg10("some avg60=1.00 avg10=45 total=1\n", &v), 0);
    assert_true(v == 45);
    assert_int_equal(cgroup_parse_psi_some_avg10("full avg10=3.00\n", &v), -1);
    assert_int_equal(cgroup_parse_psi_some_avg10("some avg10=abc\n", &v), -1);
    assert_int_equal(cgroup_parse_psi_some_avg10("some avg10=1.\n", &v), -1);
    assert_int_equal(cgroup_parse_psi_some_avg10("", &v), -1);
    assert_int_equal(cgroup_parse_psi_some_avg10("garbage\n", &v), -1);
}

static void test_parse_meminfo(void **state)
{
    (void)state;
    const char *mi = "MemTotal:         468416 kB\n"
                     "MemFree:          438924 kB\n"
                     "Inactive(file):     1024 kB\n"
                     "HugePages_Total:       0\n";
    uint64_t v;
    assert_int_equal(cgroup_parse_meminfo(mi, "MemTotal", &v), 0);
    assert_true(v == UINT64_C(468416) * 1024);
    assert_int_equal(cgroup_parse_meminfo(mi, "Inactive(file)", &v), 0);
    assert_true(v == 1024 * 1024);
    assert_int_equal(cgroup_parse_meminfo(mi, "MemAvailable", &v), -1);
    assert_int_equal(cgroup_parse_meminfo(mi, "HugePages_Total", &v), -1); /* no unit */
    assert_int_equal(cgroup_parse_meminfo(mi, "Mem", &v), -1);
    assert_int_equal(cgroup_parse_meminfo("MemTotal: x kB\n", "MemTotal", &v), -1);
    assert_int_equal(cgroup_parse_meminfo("MemTotal: 99999999999999999999 kB\n", "MemTotal", &v),
                     -1);
    assert_int_equal(cgroup_parse_meminfo("MemTotal: 18014398509481984 kB\n", "MemTotal", &v), -1);
    assert_int_equal(cgroup_parse_meminfo("", "MemTotal", &v), -1);
}

static void test_proc_cgroup(void **state)
{
    (void)state;
    char v2[256], v1[256];
    assert_int_equal(cgroup_parse_proc_cgroup("0::/\n", v2, sizeof v2, v1, sizeof v1), 0);
    assert_string_equal(v2, "/");
    assert_string_equal(v1, "");
    assert_int_equal(
        cgroup_parse_proc_cgroup("0::/kubepods/pod1/ctr\n", v2, sizeof v2, v1, sizeof v1), 0);
    assert_string_equal(v2, "/kubepods/pod1/ctr");
    assert_int_equal(cgroup_parse_proc_cgroup("12:cpu,cpuacct:/a\n11:memory:/docker/abc\n"
                                              "1:name=systemd:/docker/abc\n",
                                              v2, sizeof v2, v1, sizeof v1),
                     0);
    assert_string_equal(v2, "");
    assert_string_equal(v1, "/docker/abc");
    /* this machine: hybrid */
    assert_int_equal(cgroup_parse_proc_cgroup("9:name=systemd:/\n4:memory:/x\n1:cpu:/\n0::/\n", v2,
                                              sizeof v2, v1, sizeof v1),
                     0);
    assert_string_equal(v2, "/");
    assert_string_equal(v1, "/x");
    assert_int_equal(cgroup_parse_proc_cgroup("0::/../../foo\n", v2, sizeof v2, NULL, 0), 0);
    assert_string_equal(v2, "/../../foo");
    assert_int_equal(cgroup_parse_proc_cgroup("3:memory,hugetlb:/a:b\n", NULL, 0, v1, sizeof v1),
                     0);
    assert_string_equal(v1, "/a:b");
    assert_int_equal(cgroup_parse_proc_cgroup("3:cpu:/a\n", v2, sizeof v2, v1, sizeof v1), -1);
    assert_int_equal(cgroup_parse_proc_cgroup("", v2, sizeof v2, v1, sizeof v1), -1);
    assert_int_equal(cgroup_parse_proc_cgroup("garbage", v2, sizeof v2, v1, sizeof v1), -1);
    assert_int_equal(cgroup_parse_proc_cgroup("0::/a/long/path\n", v2, 4, NULL, 0), -1);
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
    struct cgroup_location loc;
    char want[600];
    tree_mkdir(t, "memory/process_api/abc");
    tree_mkdir(t, "unified");
    tree_write(t, "unified/memory.pressure", pressure);
    const char *cg = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
    assert_int_equal(cgroup_locate(cg, mountinfo_for(t, "/", "unified"), &loc), 0);
    assert_int_equal(loc.version, 1);
    tree_path(t, "memory/process_api/abc", want, sizeof want);
    assert_string_equal(loc.dir, want);
    tree_path(t, "memory", want, sizeof want);
    assert_string_equal(loc.top, want);
    tree_path(t, "unified", want, sizeof want);
    assert_string_equal(loc.psi_dir, want);

    /* A v2 cgroup that does carry the memory controller wins. */
    tree_write(t, "unified/memory.max", "max\n");
    assert_int_equal(cgroup_locate(cg, mountinfo_for(t, "/", "unified"), &loc), 0);
    assert_int_equal(loc.version, 2);
    assert_string_equal(loc.dir, want);
}

static void test_locate_v2(void **state)
{
    struct tree *t = *state;
    struct cgroup_location loc;
    char want[600];
    tree_mkdir(t, "cg2/kubepods/pod1/ctr");
    const char *mi = mountinfo_for(t, "/", "cg2");
    assert_int_equal(cgroup_locate("0::/kubepods/pod1/ctr\n", mi, &loc), 0);
    assert_int_equal(loc.version, 2);
    tree_path(t, "cg2/kubepods/pod1/ctr", want, sizeof want);
    assert_string_equal(loc.dir, want);
    assert_string_equal(loc.psi_dir, want);
    tree_path(t, "cg2", want, sizeof want);
    assert_string_equal(loc.top, want);

    /* Not visible under the mount: the mount root is our cgroup. */
    assert_int_equal(cgroup_locate("0::/system.slice/gone\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);
    assert_int_equal(cgroup_locate("0::/../../foo\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);
    assert_int_equal(cgroup_locate("0::/\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);

    /* No memory controller anywhere. */
    assert_int_equal(cgroup_locate("0::/\n", "", &loc), -1);
    assert_string_equal(loc.dir, "");
    assert_int_equal(cgroup_locate("", mi, &loc), -1);
}

static void test_locate_v1_bind_mounted(void **state)
{
    struct tree *t = *state;
    struct cgroup_location loc;
    char want[600];
    /* Docker on v1: the container's own cgroup is what is mounted. */
    tree_mkdir(t, "memory");
    const char *cg = "11:memory:/docker/abc\n";
    assert_int_equal(cgroup_locate(cg, mountinfo_for(t, "/docker/abc", "none"), &loc), 0);
    assert_int_equal(loc.version, 1);
    tree_path(t, "memory", want, sizeof want);
    assert_string_equal(loc.dir, want);
    assert_string_equal(loc.psi_dir, "");

    tree_mkdir(t, "memory/sub");
    assert_int_equal(
        cgroup_locate("11:memory:/docker/abc/sub\n", mountinfo_for(t, "/docker/abc", "none"), &loc),
        0);
    tree_path(t, "memory/sub", want, sizeof want);
    assert_string_equal(loc.dir, want);
}

static void test_locate_escaped_mount_point(void **state)
{
    struct tree *t = *state;
    struct cgroup_location loc;
    char mi[1024], want[600];
    tree_mkdir(t, "cg two/x");
    snprintf(mi, sizeof mi, "41 31 0:38 / %s/cg\\040two rw - cgroup2 cgroup2 rw\n", t->root);
    assert_int_equal(cgroup_locate("0::/x\n", mi, &loc), 0);
    tree_path(t, "cg two/x", want, sizeof want);
    assert_string_equal(loc.dir, want);
}

/* Found by fuzz_cgroup_files: a '\r' between tokens stalled the token loop
 * (PID 1 at 100 % CPU for good). Any byte moves it on now. */
static void test_parse_psi_odd_separators(void **state)
{
    (void)state;
    double v = -5;
    assert_int_equal(cgroup_parse_psi_some_avg10("some total=12\r avg10=1.50 avg60=0\n", &v), 0);
    assert_true(v > 1.49 && v < 1.51);
    assert_int_equal(cgroup_parse_psi_some_avg10("some \r\r\ravg10=2.00\r\n", &v), 0);
    assert_true(v > 1.99 && v < 2.01);
    assert_int_equal(cgroup_parse_psi_some_avg10("some \r\n", &v), -1);
    assert_int_equal(cgroup_parse_psi_some_avg10("some \v\f\r", &v), -1);
}

/* Found by fuzz_mountinfo: a mount point and a cgroup path (4090 bytes here) that do not fit in
 * PATH_MAX together were read past the buffer, then the mount root (an
 * ancestor cgroup) was used. Now no location is found. */
static void test_locate_path_too_long(void **state)
{
    (void)state;
    static char cgroup[5000], mountinfo[256];
    static struct cgroup_location loc;
    char deep[4091];
    memset(deep, 'a', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    snprintf(cgroup, sizeof cgroup, "0::/%s\n", deep);
    snprintf(mountinfo, sizeof mountinfo, "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    errno = 0;
    assert_int_equal(cgroup_locate(cgroup, mountinfo, &loc), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    assert_string_equal(loc.dir, "");
    snprintf(cgroup, sizeof cgroup, "4:memory:/%s\n", deep);
    snprintf(mountinfo, sizeof mountinfo,
             "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
    assert_int_equal(cgroup_locate(cgroup, mountinfo, &loc), -1);
    assert_string_equal(loc.dir, "");
}

/* A fake tree at `rel` whose cgroup.procs lists `pid` (and two others). */
static void fake_procs(const struct tree *t, const char *rel, long pid)
{
    char path[200], text[64];
    tree_mkdir(t, rel);
    snprintf(path, sizeof path, "%s/cgroup.procs", rel);
    snprintf(text, sizeof text, "1\n%ld\n99999999\n", pid);
    tree_write(t, path, text);
}

/* `unshare --cgroup`: /proc/self/cgroup says "0::/", the host's mount shows its
 * root as "/.." per level above the namespace, and our cgroup is the one that
 * lists our pid. */
static void test_locate_ns_root_below_mount(void **state)
{
    struct tree *t = *state;
    struct cgroup_location loc;
    char mi[1024], want[600];
    fake_procs(t, "cg2/other", 1);           /* lists pids, not ours */
    fake_procs(t, "cg2/other/deeper", 4242); /* our pid, but two levels down */
    fake_procs(t, "cg2/ours", (long)getpid());
    tree_write(t, "cg2/a-file", "not a directory\n");
    snprintf(mi, sizeof mi, "26 23 0:23 /.. %s/cg2 rw,relatime - cgroup2 cgroup2 rw\n", t->root);
    assert_int_equal(cgroup_locate("0::/\n", mi, &loc), 0);
    assert_int_equal(loc.version, 2);
    tree_path(t, "cg2/ours", want, sizeof want);
    assert_string_equal(loc.dir, want);
    assert_string_equal(loc.psi_dir, want);
    tree_path(t, "cg2", want, sizeof want); /* the limit walk goes up to the mount */
    assert_string_equal(loc.top, want);

    /* Two levels, and our cgroup below the namespace's root. */
    fake_procs(t, "cg2/k/pod/app", (long)getpid()); /* namespace root cg2/k/pod */
    fake_procs(t, "cg2/ours/app", 1);
    snprintf(mi, sizeof mi, "26 23 0:23 /../.. %s/cg2 rw - cgroup2 cgroup2 rw\n", t->root);
    assert_int_equal(cgroup_locate("0::/app\n", mi, &loc), 0);
    tree_path(t, "cg2/k/pod/app", want, sizeof want);
    assert_string_equal(loc.dir, want);

    /* Nowhere to be found: the mount point, as without a namespace. */
    assert_int_equal(cgroup_locate("0::/gone\n", mi, &loc), 0);
    tree_path(t, "cg2", want, sizeof want);
    assert_string_equal(loc.dir, want);
    /* A root elsewhere, not above us: nothing to search. */
    snprintf(mi, sizeof mi, "26 23 0:23 /../x %s/cg2 rw - cgroup2 cgroup2 rw\n", t->root);
    assert_int_equal(cgroup_locate("0::/\n", mi, &loc), 0);
    assert_string_equal(loc.dir, want);
}

/* The root cgroup of a v2 machine: memory.stat and memory.pressure, but no
 * memory.max or memory.current. No limit, the machine's memory, no error. */
static void test_read_v2_root(void **state)
{
    struct tree *t = *state;
    struct cgroup_location loc;
    struct cgroup_memory mem;
    char meminfo[600], root[CGROUP_PATH_MAX];
    tree_path(t, "", root, sizeof root);
    cgroup_location_set(&loc, 2, root, root, root);
    tree_write(t, "memory.stat", v2_stat);
    tree_write(t, "memory.pressure", pressure);
    tree_write(t, "meminfo",
               "MemTotal:  524288 kB\nMemFree:  131072 kB\n"
               "MemAvailable: 300000 kB\nInactive(file):  65536 kB\n");
    tree_path(t, "meminfo", meminfo, sizeof meminfo);
    struct cgroup_reader *r = cgroup_reader_new(&loc);
    assert_non_null(r);
    assert_string_equal(cgroup_reader_error(r), ""); /* no reading has failed yet */
    cgroup_reader_set_meminfo(r, meminfo);
    assert_int_equal(cgroup_read(r, &mem), 0);
    assert_string_equal(cgroup_reader_error(r), "");
    assert_false(mem.limited);
    assert_true(mem.usage_bytes == 384 * MiB);
    assert_true(mem.working_set_bytes == 320 * MiB);
    assert_int_equal(mem.oom_kills, 0);
    assert_true(mem.psi_some_avg10 > 12.3 && mem.psi_some_avg10 < 12.4);

    /* What the machine says must make sense, or the reading fails, saying so. */
    tree_write(t, "meminfo", "MemTotal:  1024 kB\nMemFree:  2048 kB\nInactive(file): 0 kB\n");
    assert_int_equal(cgroup_read(r, &mem), -1);
    assert_non_null(strstr(cgroup_reader_error(r), "cannot parse"));
    tree_remove(t, "meminfo");
    assert_int_equal(cgroup_read(r, &mem), -1);
    assert_non_null(strstr(cgroup_reader_error(r), "cannot read"));

    /* A cgroup without the memory controller has no memory.stat: not the root. */
    tree_remove(t, "memory.stat");
    assert_int_equal(cgroup_read(r, &mem), -1);
    assert_non_null(strstr(cgroup_reader_error(r), "memory.max"));
    cgroup_reader_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_psi_odd_separators),
        cmocka_unit_test(test_locate_path_too_long),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_limit),
        cmocka_unit_test(test_parse_stat),
        cmocka_unit_test(test_parse_events),
        cmocka_unit_test(test_parse_psi),
        cmocka_unit_test(test_parse_meminfo),
        cmocka_unit_test(test_proc_cgroup),
        cmocka_unit_test_setup_teardown(test_locate_hybrid, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_v2, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_v1_bind_mounted, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_escaped_mount_point, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_locate_ns_root_below_mount, tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(test_read_v2_root, tree_setup, tree_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
