/* appenv: the app's environment for a start — inherited variables, RESIL_*,
 * the emergency set and runtime hints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "resil/appenv.h"
#include "memory_sample.h"

#define MiB (UINT64_C(1) << 20)

static char **build(char **envp, const struct appenv_options *o, const struct memory_sample *s,
                    bool emergency, unsigned restart_count, const char *restart_reason)
{
    struct appenv_start start = {.memory = s,
                                 .emergency = emergency,
                                 .restart_count = restart_count,
                                 .restart_reason = restart_reason};
    return appenv_build(envp, o, &start);
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
    struct appenv_options c = {0};
    char *envp[] = {"PATH=/bin", "RESIL_EMERGENCY=9", "HOME=/root", NULL};
    struct memory_sample s = sample(true, 512 * MiB + 12345, 10 * MiB, -1);
    s.tier = MEMORY_TIER_NORMAL;
    char **env = build(envp, &c, &s, false, 0, "start");
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
    appenv_free(env);
}

static void test_env_unlimited_and_unknown(void **state)
{
    (void)state;
    struct appenv_options c = {0};
    c.runtime_hints = true;
    struct memory_sample s = sample(false, 0, 10 * MiB, -1);
    s.tier = MEMORY_TIER_NORMAL;
    char **env = build(NULL, &c, &s, false, 3, "crash");
    assert_string_equal(env_value(env, "RESIL_MEMORY_LIMIT_MB"), "");
    assert_string_equal(env_value(env, "RESIL_RESTART_COUNT"), "3");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "crash");
    assert_null(env_value(env, "NODE_OPTIONS"));
    assert_null(env_value(env, "GOMEMLIMIT"));
    appenv_free(env);

    env = build(NULL, &c, NULL, false, 0, NULL);
    assert_string_equal(env_value(env, "RESIL_MEMORY_LIMIT_MB"), "");
    assert_string_equal(env_value(env, "RESIL_MEMORY_TIER"), "unknown");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "start");
    appenv_free(env);
}

static void test_env_emergency_default_keeps_user_vars(void **state)
{
    (void)state;
    struct appenv_options c = {0};
    char *set[] = {"EMERGENCY_MODE=true"};
    c.emergency_env = set;
    c.emergency_env_count = 1;
    c.emergency_env_explicit = false;
    char *envp[] = {"EMERGENCY_MODE=off", NULL};
    struct memory_sample s = sample(true, 256 * MiB, 250 * MiB, -1);
    s.tier = MEMORY_TIER_CRITICAL;
    char **env = build(envp, &c, &s, true, 1, "oom");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "off");
    assert_string_equal(env_value(env, "RESIL_EMERGENCY"), "1");
    assert_string_equal(env_value(env, "RESIL_MEMORY_TIER"), "critical");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "oom");
    appenv_free(env);

    char *empty[] = {NULL};
    env = build(empty, &c, &s, true, 1, "oom");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "true");
    appenv_free(env);
}

static void test_env_emergency_explicit_overwrites(void **state)
{
    (void)state;
    struct appenv_options c = {0};
    char *set[] = {"EMERGENCY_MODE=yes", "CACHE_MB=16", "RESIL_EMERGENCY=bogus", "NOEQUALS"};
    c.emergency_env = set;
    c.emergency_env_count = 4;
    c.emergency_env_explicit = true;
    char *envp[] = {"EMERGENCY_MODE=off", "CACHE_MB=512", "CACHE_MB=1024", NULL};
    struct memory_sample s = sample(true, 256 * MiB, 250 * MiB, -1);
    char **env = build(envp, &c, &s, true, 2, "memory");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "yes");
    assert_string_equal(env_value(env, "CACHE_MB"), "16");
    assert_string_equal(env_value(env, "RESIL_EMERGENCY"), "1"); /* RESIL_* always win */
    assert_null(env_value(env, "NOEQUALS"));
    appenv_free(env);

    /* Not in emergency: the set stays out. */
    env = build(envp, &c, &s, false, 2, "memory");
    assert_string_equal(env_value(env, "EMERGENCY_MODE"), "off");
    appenv_free(env);
}

static void test_env_runtime_hints(void **state)
{
    (void)state;
    struct appenv_options c = {0};
    c.runtime_hints = true;
    struct memory_sample s = sample(true, 1024 * MiB, 1, -1);

    char **env = build(NULL, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max-old-space-size=768");
    assert_string_equal(env_value(env, "GOMEMLIMIT"), "966367641");
    appenv_free(env);

    char *append[] = {"NODE_OPTIONS=--enable-source-maps", "GOMEMLIMIT=100MiB", NULL};
    env = build(append, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"),
                        "--enable-source-maps --max-old-space-size=768");
    assert_string_equal(env_value(env, "GOMEMLIMIT"), "100MiB");
    appenv_free(env);

    char *skip[] = {"NODE_OPTIONS=--max-old-space-size=100", "GOMEMLIMIT=", NULL};
    env = build(skip, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max-old-space-size=100");
    assert_string_equal(env_value(env, "GOMEMLIMIT"), "966367641");
    appenv_free(env);

    char *underscore[] = {"NODE_OPTIONS=--max_old_space_size=100", NULL};
    env = build(underscore, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max_old_space_size=100");
    appenv_free(env);

    char *empty_node[] = {"NODE_OPTIONS=", NULL};
    env = build(empty_node, &c, &s, false, 0, "start");
    assert_string_equal(env_value(env, "NODE_OPTIONS"), "--max-old-space-size=768");
    appenv_free(env);

    c.runtime_hints = false;
    env = build(NULL, &c, &s, false, 0, "start");
    assert_null(env_value(env, "NODE_OPTIONS"));
    assert_null(env_value(env, "GOMEMLIMIT"));
    appenv_free(env);
}
/* The result is one block sized before it is filled: the longest values it
 * makes (a long NODE_OPTIONS from the emergency set, extended by the hints)
 * fit, duplicates of a variable set here go, and the inherited strings are
 * the caller's, left as they were. */
static void test_env_one_block_holds_long_values_and_drops_duplicates(void **state)
{
    (void)state;
    static char long_node[4096 + 14] = "NODE_OPTIONS=";
    memset(long_node + 13, 'x', 4096);
    char *set[] = {long_node};
    struct appenv_options c = {
        .emergency_env = set, .emergency_env_count = 1, .emergency_env_explicit = true};
    c.runtime_hints = true;
    char path[] = "PATH=/bin";
    char *envp[] = {path, "RESIL_RESTART_COUNT=7", "NODE_OPTIONS=--a", "RESIL_RESTART_COUNT=8",
                    NULL};
    struct memory_sample s = sample(true, 1024 * MiB, 1, -1);
    char **env = build(envp, &c, &s, true, 2, "crash");
    assert_non_null(env);
    const char *node = env_value(env, "NODE_OPTIONS");
    assert_int_equal(strlen(node), 4096 + strlen(" --max-old-space-size=768"));
    assert_string_equal(node + 4096, " --max-old-space-size=768");
    assert_string_equal(env_value(env, "RESIL_RESTART_COUNT"), "2");
    assert_string_equal(env_value(env, "RESIL_RESTART_REASON"), "crash");
    assert_ptr_equal(env_value(env, "PATH"), path + 5);
    assert_string_equal(envp[1], "RESIL_RESTART_COUNT=7");
    appenv_free(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_basic),
        cmocka_unit_test(test_env_unlimited_and_unknown),
        cmocka_unit_test(test_env_emergency_default_keeps_user_vars),
        cmocka_unit_test(test_env_emergency_explicit_overwrites),
        cmocka_unit_test(test_env_runtime_hints),
        cmocka_unit_test(test_env_one_block_holds_long_values_and_drops_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
