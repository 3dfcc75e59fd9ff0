/* Unit tests of the option table, the value parsers and config_load's sources. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resil/config.h"

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})
#define NOARGS ((char *[]){NULL})

static int count(char **v)
{
    int n = 0;

    while (v[n])
        n++;
    return n;
}

/* config_load with argv and envp as NULL-terminated arrays; err gets the message. */
static int load(struct resil_config *cfg, char **argv, char **envp, char *err, size_t errlen)
{
    return config_load(cfg, count(argv), argv, envp, err, errlen);
}

/* Expects config_load to fail with a message containing needle. */
static void expect_error(char **argv, char **envp, const char *needle)
{
    struct resil_config cfg;
    char err[512];

    assert_int_equal(load(&cfg, argv, envp, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    assert_null(strchr(err, '\n'));
    /* Even after a failure cfg holds the defaults and can be freed. */
    assert_int_equal(cfg.grace_ms, 8000);
    assert_non_null(cfg.emergency_env);
    config_free(&cfg);
}

static void expect_ok(struct resil_config *cfg, char **argv, char **envp)
{
    char err[512] = "";

    if (load(cfg, argv, envp, err, sizeof err) != 0)
        fail_msg("config_load failed: %s", err);
}

/* A temporary config file holding text; the caller unlinks and frees the path. */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/resil-test-config-XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void drop_file(char *path)
{
    unlink(path);
    free(path);
}

/* ---- option table ---- */

static void test_option_table(void **state)
{
    static const char groups[] = "|Init|Supervision|Health checks|Memory|Output|Other|";
    static const char shorts[] = "scepvrh";

    (void)state;
    assert_true(config_option_count >= 30);
    for (size_t i = 0; i < config_option_count; i++) {
        const struct config_option *o = &config_options[i];
        char group[64];

        assert_non_null(o->name);
        assert_non_null(o->help);
        assert_non_null(o->group);
        snprintf(group, sizeof group, "|%s|", o->group);
        assert_non_null(strstr(groups, group));
        assert_int_not_equal(o->short_name, 'g');
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(o->name, config_options[j].name);
            if (o->short_name)
                assert_int_not_equal(o->short_name, config_options[j].short_name);
        }
    }
    for (const char *c = shorts; *c; c++) {
        bool found = false;

        for (size_t i = 0; i < config_option_count; i++)
            if (config_options[i].short_name == *c)
                found = true;
        if (!found)
            fail_msg("no option has the short name -%c", *c);
    }
}

static const struct config_option *find_option(const char *name)
{
    for (size_t i = 0; i < config_option_count; i++)
        if (strcmp(config_options[i].name, name) == 0)
            return &config_options[i];
    return NULL;
}

static void test_option_table_entries(void **state)
{
    static const char *const names[] = {"subreaper",
                                        "single-child",
                                        "remap-exit",
                                        "pdeath-signal",
                                        "rewrite",
                                        "grace",
                                        "verbose",
                                        "log-level",
                                        "log-format",
                                        "restart",
                                        "max-restarts",
                                        "restart-window",
                                        "backoff",
                                        "health-url",
                                        "health-unix-socket",
                                        "health-interval",
                                        "health-timeout",
                                        "health-start-period",
                                        "health-retries",
                                        "health-json-field",
                                        "on-unhealthy",
                                        "state-dir",
                                        "termination-log",
                                        "cgroup-root",
                                        "memory-warn",
                                        "memory-critical",
                                        "memory-restart",
                                        "memory-restart-for",
                                        "memory-interval",
                                        "emergency-env",
                                        "pressure-signal",
                                        "runtime-hints",
                                        "config",
                                        "check-config",
                                        "help",
                                        "version"};
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!find_option(names[i]))
            fail_msg("option --%s missing from the table", names[i]);
    assert_true(find_option("remap-exit")->repeatable);
    assert_true(find_option("rewrite")->repeatable);
    assert_true(find_option("emergency-env")->repeatable);
    assert_false(find_option("grace")->repeatable);
    assert_string_equal(config_default_text(find_option("grace"), buf, sizeof buf), "8s");
    assert_string_equal(config_default_text(find_option("backoff"), buf, sizeof buf), "1s:30s");
    assert_string_equal(config_default_text(find_option("emergency-env"), buf, sizeof buf),
                        "EMERGENCY_MODE=true");
    assert_int_equal(find_option("verbose")->short_name, 'v');
    assert_null(find_option("verbose")->arg);
    assert_string_equal(find_option("health-url")->arg, "URL");
}

/* ---- value parsers ---- */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } good[] = {{"250ms", 250},
                {"10s", 10000},
                {"2m", 120000},
                {"1h", 3600000},
                {"5", 5000},
                {"0", 0},
                {"0s", 0},
                {"1.5s", 1500},
                {"0.5", 500},
                {"1m30s", 90000},
                {"1h1m1s1ms", 3661001},
                {"10S", 10000},
                {"2M", 120000},
                {"007s", 7000}};
    static const char *const bad[] = {"",
                                      "-1",
                                      "10x",
                                      "abc",
                                      "1.",
                                      ".",
                                      "s",
                                      "ms",
                                      "10s ",
                                      " 10s",
                                      "1e3",
                                      "1m30",
                                      "+5",
                                      "5us",
                                      "1..5",
                                      "1.5.s",
                                      "99999999999999999999",
                                      "1000000h"};
    uint64_t ms;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ms = 12345;
        if (config_parse_duration_ms(good[i].in, &ms) != 0)
            fail_msg("\"%s\" rejected", good[i].in);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = 12345;
        if (config_parse_duration_ms(bad[i], &ms) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(ms, 12345);
    }
    assert_int_equal(config_parse_duration_ms(NULL, &ms), -1);
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *in;
        uint64_t bytes;
    } good[] = {{"512M", 512ULL << 20},
                {"1G", 1ULL << 30},
                {"400000000", 400000000},
                {"512MB", 512ULL << 20},
                {"512Mi", 512ULL << 20},
                {"512MiB", 512ULL << 20},
                {"512mib", 512ULL << 20},
                {"1k", 1024},
                {"2T", 2ULL << 40},
                {"0.5G", 512ULL << 20},
                {"100B", 100},
                {"1.5K", 1536}};
    static const char *const bad[] = {"",     "M",   "12X", "-5",   "1.5",       "5 M",
                                      "1MBi", "1Bi", "%",   "85 %", "99999999T", "1P"};
    struct config_size_spec s;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (config_parse_size(good[i].in, true, &s) != 0)
            fail_msg("\"%s\" rejected", good[i].in);
        assert_true(s.set);
        assert_false(s.is_percent);
        assert_int_equal(s.bytes, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_size(bad[i], true, &s) != -1)
            fail_msg("\"%s\" accepted", bad[i]);

    assert_int_equal(config_parse_size("85%", true, &s), 0);
    assert_true(s.set && s.is_percent);
    assert_true(s.percent == 85.0);
    assert_int_equal(config_parse_size("12.5%", true, &s), 0);
    assert_true(s.percent == 12.5);
    assert_int_equal(config_parse_size("100%", true, &s), 0);
    assert_int_equal(config_parse_size("85%", false, &s), -1);
    assert_int_equal(config_parse_size("0%", true, &s), -1);
    assert_int_equal(config_parse_size("100.1%", true, &s), -1);
    assert_int_equal(config_parse_size("101%", true, &s), -1);
    assert_int_equal(config_parse_size(NULL, true, &s), -1);
}

static void test_size_spec_bytes(void **state)
{
    struct config_size_spec s = {0};

    (void)state;
    assert_int_equal(config_size_spec_bytes(&s, 1000), 0);
    assert_int_equal(config_parse_size("50%", true, &s), 0);
    assert_int_equal(config_size_spec_bytes(&s, 1000), 500);
    assert_int_equal(config_size_spec_bytes(&s, 0), 0);
    assert_int_equal(config_parse_size("100%", true, &s), 0);
    assert_int_equal(config_size_spec_bytes(&s, UINT64_MAX), UINT64_MAX);
    assert_int_equal(config_parse_size("1G", true, &s), 0);
    assert_int_equal(config_size_spec_bytes(&s, 0), 1ULL << 30);
    assert_int_equal(config_size_spec_bytes(&s, 1000), 1ULL << 30);
}

static void test_parse_signal(void **state)
{
    static const struct {
        const char *in;
        int sig;
    } good[] = {{"TERM", SIGTERM},
                {"SIGTERM", SIGTERM},
                {"sigterm", SIGTERM},
                {"term", SIGTERM},
                {"15", 15},
                {"KILL", SIGKILL},
                {"HUP", SIGHUP},
                {"USR1", SIGUSR1},
                {"winch", SIGWINCH},
                {"IO", SIGIO},
                {"POLL", SIGIO},
                {"CHLD", SIGCHLD},
                {"SIGCONT", SIGCONT},
                {"PWR", SIGPWR},
                {"SYS", SIGSYS},
                {"64", 64},
                {"1", 1}};
    static const char *const bad[] = {"0",     "65",    "FOO",       "",          "SIG",
                                      "15x",   "-15",   "RTMIN+100", "RTMIN-1",   "RTMAX+1",
                                      "SIG15", "TERM ", "RTMIN+",    "SIGSIGTERM"};
    int sig;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (config_parse_signal(good[i].in, &sig) != 0)
            fail_msg("\"%s\" rejected", good[i].in);
        assert_int_equal(sig, good[i].sig);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_signal(bad[i], &sig) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(config_parse_signal("RTMIN", &sig), 0);
    assert_int_equal(sig, SIGRTMIN);
    assert_int_equal(config_parse_signal("SIGRTMIN+2", &sig), 0);
    assert_int_equal(sig, SIGRTMIN + 2);
    assert_int_equal(config_parse_signal("RTMAX", &sig), 0);
    assert_int_equal(sig, SIGRTMAX);
    assert_int_equal(config_parse_signal("rtmax-1", &sig), 0);
    assert_int_equal(sig, SIGRTMAX - 1);
}

static void test_signal_name(void **state)
{
    (void)state;
    assert_string_equal(config_signal_name(15), "TERM");
    assert_string_equal(config_signal_name(SIGKILL), "KILL");
    assert_string_equal(config_signal_name(SIGIO), "IO");
    assert_string_equal(config_signal_name(SIGCHLD), "CHLD");
    assert_string_equal(config_signal_name(SIGABRT), "ABRT");
    assert_string_equal(config_signal_name(SIGRTMIN), "RTMIN");
    assert_string_equal(config_signal_name(SIGRTMIN + 1), "RTMIN+1");
    assert_string_equal(config_signal_name(SIGRTMAX), "RTMAX");
    assert_null(config_signal_name(0));
    assert_null(config_signal_name(65));
    assert_null(config_signal_name(-1));
    /* Every name given back parses back to the same number. */
    for (int sig = 1; sig < RESIL_MAX_SIGNAL; sig++) {
        const char *name = config_signal_name(sig);
        int back = 0;

        if (!name)
            continue;
        assert_int_equal(config_parse_signal(name, &back), 0);
        assert_int_equal(back, sig);
    }
}

static void test_parse_rewrite(void **state)
{
    int from = -1, to = -1;

    (void)state;
    assert_int_equal(config_parse_rewrite("15:3", &from, &to), 0);
    assert_int_equal(from, 15);
    assert_int_equal(to, 3);
    assert_int_equal(config_parse_rewrite("TERM:QUIT", &from, &to), 0);
    assert_int_equal(from, SIGTERM);
    assert_int_equal(to, SIGQUIT);
    assert_int_equal(config_parse_rewrite("HUP:0", &from, &to), 0);
    assert_int_equal(from, SIGHUP);
    assert_int_equal(to, 0);
    assert_int_equal(config_parse_rewrite("SIGUSR1:sigusr2", &from, &to), 0);
    assert_int_equal(from, SIGUSR1);
    assert_int_equal(to, SIGUSR2);

    from = to = 99;
    static const char *const bad[] = {"TERM",          "TERM:", ":TERM", "TERM:FOO", "0:TERM",
                                      "TERM:QUIT:HUP", "",      "65:1",  "TERM:65",  "TERM :QUIT"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (config_parse_rewrite(bad[i], &from, &to) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(from, 99);
    assert_int_equal(to, 99);
    assert_int_equal(config_parse_rewrite(NULL, &from, &to), -1);
}

static void test_parse_uint(void **state)
{
    unsigned v = 7;

    (void)state;
    assert_int_equal(config_parse_uint("0", 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(config_parse_uint("42", 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(config_parse_uint("255", 255, &v), 0);
    assert_int_equal(config_parse_uint("4294967295", UINT32_MAX, &v), 0);
    assert_int_equal(v, 4294967295U);
    v = 7;
    assert_int_equal(config_parse_uint("256", 255, &v), -1);
    assert_int_equal(config_parse_uint("4294967296", UINT32_MAX, &v), -1);
    assert_int_equal(config_parse_uint("99999999999999999999999", UINT32_MAX, &v), -1);
    assert_int_equal(config_parse_uint("-1", 10, &v), -1);
    assert_int_equal(config_parse_uint("", 10, &v), -1);
    assert_int_equal(config_parse_uint("1x", 10, &v), -1);
    assert_int_equal(config_parse_uint(" 1", 10, &v), -1);
    assert_int_equal(config_parse_uint("+1", 10, &v), -1);
    assert_int_equal(config_parse_uint(NULL, 10, &v), -1);
    assert_int_equal(v, 7);
}

static void test_parse_bool(void **state)
{
    static const char *const yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    bool b;

    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        b = false;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        b = true;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    assert_int_equal(config_parse_bool("", &b), -1);
    assert_int_equal(config_parse_bool("2", &b), -1);
    assert_int_equal(config_parse_bool("yess", &b), -1);
    assert_int_equal(config_parse_bool(NULL, &b), -1);
}

/* ---- config_load: defaults and command line ---- */

static void test_defaults(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, NOARGS, NULL);
    assert_true(cfg.subreaper);
    assert_false(cfg.single_child);
    assert_int_equal(cfg.grace_ms, 8000);
    assert_int_equal(cfg.restart, CONFIG_RESTART_NO);
    assert_int_equal(cfg.max_restarts, 5);
    assert_int_equal(cfg.restart_window_ms, 600000);
    assert_int_equal(cfg.backoff_min_ms, 1000);
    assert_int_equal(cfg.backoff_max_ms, 30000);
    assert_null(cfg.health_url);
    assert_int_equal(cfg.health_interval_ms, 30000);
    assert_int_equal(cfg.health_timeout_ms, 5000);
    assert_int_equal(cfg.health_start_period_ms, 0);
    assert_int_equal(cfg.health_retries, 3);
    assert_int_equal(cfg.on_unhealthy, CONFIG_ON_UNHEALTHY_RESTART);
    assert_true(cfg.memory_warn.set && cfg.memory_warn.is_percent);
    assert_true(cfg.memory_warn.percent == 75.0);
    assert_true(cfg.memory_critical.percent == 85.0);
    assert_false(cfg.memory_restart.set);
    assert_int_equal(cfg.memory_restart_for_ms, 30000);
    assert_int_equal(cfg.memory_interval_ms, 5000);
    assert_int_equal(cfg.emergency_env_count, 1);
    assert_string_equal(cfg.emergency_env[0], "EMERGENCY_MODE=true");
    assert_false(cfg.emergency_env_explicit);
    assert_int_equal(cfg.pdeath_signal, 0);
    assert_int_equal(cfg.pressure_signal, 0);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
    assert_int_equal(cfg.verbose, 0);
    for (int i = 0; i < RESIL_MAX_SIGNAL; i++)
        assert_int_equal(cfg.rewrite[i], -1);
    for (int i = 0; i < 256; i++)
        assert_false(cfg.remap_exit[i]);
    assert_null(cfg.command);
    assert_int_equal(cfg.command_argc, 0);
    assert_false(cfg.check_config);
    config_free(&cfg);
}

static void test_cli_forms(void **state)
{
    struct resil_config cfg;
    char **argv = ARGS("--grace=250ms", "--restart", "on-failure", "-e5", "-e", "143",
                       "--remap-exit=7", "-rTERM:QUIT", "-r", "HUP:0", "--rewrite", "USR1:USR2",
                       "-p", "KILL", "--health-url=http://127.0.0.1:3000/health",
                       "--memory-restart", "900M", "--emergency-env", "A=1", "--emergency-env=B=2",
                       "--pressure-signal", "SIGUSR1", "--runtime-hints", "app", "--grace", "x");

    (void)state;
    expect_ok(&cfg, argv, NULL);
    assert_int_equal(cfg.grace_ms, 250);
    assert_int_equal(cfg.restart, CONFIG_RESTART_ON_FAILURE);
    assert_true(cfg.remap_exit[5] && cfg.remap_exit[143] && cfg.remap_exit[7]);
    assert_false(cfg.remap_exit[0]);
    assert_int_equal(cfg.rewrite[SIGTERM], SIGQUIT);
    assert_int_equal(cfg.rewrite[SIGHUP], 0);
    assert_int_equal(cfg.rewrite[SIGUSR1], SIGUSR2);
    assert_int_equal(cfg.rewrite[SIGINT], -1);
    assert_int_equal(cfg.pdeath_signal, SIGKILL);
    assert_string_equal(cfg.health_url, "http://127.0.0.1:3000/health");
    assert_true(cfg.memory_restart.set);
    assert_int_equal(cfg.memory_restart.bytes, 900ULL << 20);
    assert_int_equal(cfg.emergency_env_count, 2);
    assert_string_equal(cfg.emergency_env[0], "A=1");
    assert_string_equal(cfg.emergency_env[1], "B=2");
    assert_null(cfg.emergency_env[2]);
    assert_true(cfg.emergency_env_explicit);
    assert_int_equal(cfg.pressure_signal, SIGUSR1);
    assert_true(cfg.runtime_hints);
    /* Everything from the first non-option word on is the command, untouched. */
    assert_int_equal(cfg.command_argc, 3);
    assert_ptr_equal(cfg.command, &argv[23]);
    assert_string_equal(cfg.command[0], "app");
    assert_string_equal(cfg.command[2], "x");
    assert_null(cfg.command[3]);
    config_free(&cfg);
}

static void test_cli_bundling(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, ARGS("-sg", "-vc", "--", "-v", "app"), NULL);
    assert_true(cfg.subreaper);
    assert_true(cfg.single_child);
    assert_int_equal(cfg.verbose, 1);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.command_argc, 2);
    assert_string_equal(cfg.command[0], "-v");
    config_free(&cfg);

    expect_ok(&cfg, ARGS("-vve143", "-g", "app"), NULL);
    assert_int_equal(cfg.verbose, 2);
    assert_true(cfg.remap_exit[143]);
    assert_int_equal(cfg.command_argc, 1);
    config_free(&cfg);

    expect_ok(&cfg, ARGS("-ce", "1", "-h", "--help", "--version", "--", "app"), NULL);
    assert_true(cfg.single_child);
    assert_true(cfg.remap_exit[1]);
    assert_string_equal(cfg.command[0], "app");
    config_free(&cfg);

    /* "-" alone is a word, not an option. */
    expect_ok(&cfg, ARGS("-v", "-", "x"), NULL);
    assert_string_equal(cfg.command[0], "-");
    config_free(&cfg);

    /* "--" with nothing after it: no command, and that is main's business. */
    expect_ok(&cfg, ARGS("--check-config", "--"), NULL);
    assert_true(cfg.check_config);
    assert_null(cfg.command);
    assert_int_equal(cfg.command_argc, 0);
    config_free(&cfg);

    expect_ok(&cfg, ARGS("--", "--", "app"), NULL);
    assert_string_equal(cfg.command[0], "--");
    config_free(&cfg);
}

static void test_cli_verbose_levels(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, ARGS("--log-level", "error", "-v"), NULL);
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
    config_free(&cfg);
    expect_ok(&cfg, ARGS("--log-level=ERROR", "-vvvvvv", "--verbose"), NULL);
    assert_int_equal(cfg.verbose, 7);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    config_free(&cfg);
    expect_ok(&cfg, ARGS("--log-level", "warning"), NULL);
    assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
    config_free(&cfg);
    expect_ok(&cfg, ARGS("--log-format", "json", "--log-level", "debug"), NULL);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    config_free(&cfg);
}

static void test_cli_switch_values(void **state)
{
    struct resil_config cfg;
    char *env[] = {"RESIL_SINGLE_CHILD=true", "RESIL_RUNTIME_HINTS=yes", NULL};

    (void)state;
    expect_ok(&cfg, ARGS("--single-child=no", "--subreaper=false"), env);
    assert_false(cfg.single_child);
    assert_false(cfg.subreaper);
    assert_true(cfg.runtime_hints);
    config_free(&cfg);
}

static void test_cli_errors(void **state)
{
    (void)state;
    expect_error(ARGS("--foo"), NULL, "unknown option --foo");
    expect_error(ARGS("--foo=bar", "app"), NULL, "unknown option --foo");
    expect_error(ARGS("-x"), NULL, "unknown option -x");
    expect_error(ARGS("-vx", "app"), NULL, "unknown option -x");
    expect_error(ARGS("--gr", "5s"), NULL, "unknown option --gr");
    expect_error(ARGS("--health-url"), NULL, "missing value for --health-url");
    expect_error(ARGS("-e"), NULL, "missing value for -e");
    expect_error(ARGS("-ve"), NULL, "missing value for -e");
    expect_error(ARGS("--verbose=2"), NULL, "--verbose");
    expect_error(ARGS("--help=1"), NULL, "--help");
    expect_error(ARGS("--single-child=maybe"), NULL, "--single-child");
    expect_error(ARGS("--grace", "abc"), NULL, "--grace: bad duration \"abc\"");
    expect_error(ARGS("--grace="), NULL, "--grace: bad duration \"\"");
    expect_error(ARGS("--restart", "sometimes"), NULL,
                 "--restart: expected no, on-failure or always, got \"sometimes\"");
    expect_error(ARGS("-e", "300"), NULL, "-e: bad exit code \"300\"");
    expect_error(ARGS("--remap-exit", "-1"), NULL, "--remap-exit: bad exit code \"-1\"");
    expect_error(ARGS("-p", "NOPE"), NULL, "-p: bad signal \"NOPE\"");
    expect_error(ARGS("-r", "TERM"), NULL, "-r: bad rewrite \"TERM\"");
    expect_error(ARGS("-r", "KILL:TERM"), NULL, "-r: KILL cannot be caught");
    expect_error(ARGS("--max-restarts", "-1"), NULL, "--max-restarts: bad number");
    expect_error(ARGS("--health-retries", "0"), NULL, "--health-retries");
    expect_error(ARGS("--health-interval", "0s"), NULL, "--health-interval");
    expect_error(ARGS("--health-timeout", "0"), NULL, "--health-timeout");
    expect_error(ARGS("--memory-interval", "0"), NULL, "--memory-interval");
    expect_error(ARGS("--restart-window", "0"), NULL, "--restart-window");
    expect_error(ARGS("--on-unhealthy", "panic"), NULL, "--on-unhealthy");
    expect_error(ARGS("--log-level", "loud"), NULL, "--log-level");
    expect_error(ARGS("--log-format", "xml"), NULL, "--log-format");
    expect_error(ARGS("--backoff", "30s:1s"), NULL, "--backoff");
    expect_error(ARGS("--backoff", "0:5s"), NULL, "--backoff");
    expect_error(ARGS("--backoff", "1s:x"), NULL, "--backoff: bad duration \"x\"");
    expect_error(ARGS("--backoff", "y:5s"), NULL, "--backoff: bad duration \"y\"");
    expect_error(ARGS("--health-url", "ftp://x/"), NULL, "--health-url");
    expect_error(ARGS("--health-url", "localhost:3000"), NULL, "--health-url");
    expect_error(ARGS("--health-url", "http://"), NULL, "--health-url");
    expect_error(ARGS("--health-url", "http://a b/"), NULL, "--health-url");
    expect_error(ARGS("--health-unix-socket", "/run/app.sock"), NULL, "--health-unix-socket");
    expect_error(ARGS("--state-dir", ""), NULL, "--state-dir");
    expect_error(ARGS("--memory-warn", "90%", "--memory-critical", "85%"), NULL,
                 "--memory-warn 90% is above");
    expect_error(ARGS("--memory-warn", "0%"), NULL, "--memory-warn");
    expect_error(ARGS("--memory-critical", "101%"), NULL, "--memory-critical");
    expect_error(ARGS("--memory-critical", "0"), NULL, "--memory-critical");
    expect_error(ARGS("--memory-warn", "2G", "--memory-critical", "1G"), NULL, "--memory-warn");
    expect_error(ARGS("--memory-restart", "lots"), NULL, "--memory-restart: bad size");
    expect_error(ARGS("--emergency-env", "NOEQUALS"), NULL, "--emergency-env");
    expect_error(ARGS("--emergency-env", "1A=x"), NULL, "--emergency-env");
    expect_error(ARGS("--emergency-env", "=x"), NULL, "--emergency-env");
    expect_error(ARGS("--emergency-env", "A-B=x"), NULL, "--emergency-env");
    expect_error(ARGS("--config="), NULL, "--config");
    expect_error(ARGS("--grace", "1\nx"), NULL, "--grace: bad duration \"1?x\"");
}

static void test_cli_accepts_edge_values(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg,
              ARGS("--memory-warn", "1G", "--memory-critical", "50%", "--memory-restart", "95%",
                   "--backoff", "5s", "--max-restarts", "0", "--grace", "0", "--health-url",
                   "HTTPS://example.com/h", "--health-unix-socket", "/run/app.sock",
                   "--pdeath-signal", "none", "--memory-restart", "off"),
              NULL);
    assert_false(cfg.memory_warn.is_percent);
    assert_int_equal(cfg.memory_warn.bytes, 1ULL << 30);
    assert_true(cfg.memory_critical.percent == 50.0);
    assert_false(cfg.memory_restart.set);
    assert_int_equal(cfg.backoff_min_ms, 5000);
    assert_int_equal(cfg.backoff_max_ms, 5000);
    assert_int_equal(cfg.max_restarts, 0);
    assert_int_equal(cfg.grace_ms, 0);
    assert_string_equal(cfg.health_unix_socket, "/run/app.sock");
    config_free(&cfg);
}

/* ---- environment ---- */

static void test_env(void **state)
{
    struct resil_config cfg;
    char *env[] = {"PATH=/bin",
                   "RESIL_GRACE=3s",
                   "RESIL_FOO=whatever",
                   "RESIL_RESTART_COUNT=4",
                   "RESIL_MEMORY_TIER=critical",
                   "RESIL_HEALTH_URL=http://127.0.0.1:1/h",
                   "RESIL_VERBOSE=2",
                   "RESIL_LOG_LEVEL=error",
                   "RESIL_REMAP_EXIT=1, 2,3",
                   "RESIL_REWRITE=TERM:QUIT,HUP:0",
                   "RESIL_EMERGENCY_ENV=A=1,JAVA_OPTS=-Xss1m,-Xmx1g, B=x",
                   "RESIL_STATE_DIR=",
                   "resil_max_restarts=9",
                   "RESIL_health_retries=9",
                   "RESIL_GRACE=99s",
                   "RESIL_HELP=1",
                   "RESIL_VERSION=1.2.3",
                   NULL};

    (void)state;
    expect_ok(&cfg, NOARGS, env);
    assert_int_equal(cfg.grace_ms, 3000); /* the first RESIL_GRACE, like getenv */
    assert_string_equal(cfg.health_url, "http://127.0.0.1:1/h");
    assert_int_equal(cfg.verbose, 2);
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_true(cfg.remap_exit[1] && cfg.remap_exit[2] && cfg.remap_exit[3]);
    assert_int_equal(cfg.rewrite[SIGTERM], SIGQUIT);
    assert_int_equal(cfg.rewrite[SIGHUP], 0);
    assert_int_equal(cfg.emergency_env_count, 3);
    assert_string_equal(cfg.emergency_env[0], "A=1");
    assert_string_equal(cfg.emergency_env[1], "JAVA_OPTS=-Xss1m,-Xmx1g");
    assert_string_equal(cfg.emergency_env[2], "B=x");
    assert_true(cfg.emergency_env_explicit);
    assert_null(cfg.state_dir);            /* empty counts as unset */
    assert_int_equal(cfg.max_restarts, 5); /* names are upper case only */
    assert_int_equal(cfg.health_retries, 3);
    config_free(&cfg);
}

static void test_env_flag_wins(void **state)
{
    struct resil_config cfg;
    char *env[] = {"RESIL_GRACE=3s", "RESIL_REMAP_EXIT=1,2", "RESIL_VERBOSE=3",
                   "RESIL_EMERGENCY_ENV=A=1", NULL};

    (void)state;
    expect_ok(&cfg, ARGS("--grace", "4s", "-e", "9", "-v"), env);
    assert_int_equal(cfg.grace_ms, 4000);
    assert_true(cfg.remap_exit[9]);
    assert_false(cfg.remap_exit[1]);
    assert_false(cfg.remap_exit[2]);
    assert_int_equal(cfg.verbose, 1);
    assert_int_equal(cfg.emergency_env_count, 1);
    assert_string_equal(cfg.emergency_env[0], "A=1");
    config_free(&cfg);
}

static void test_env_errors(void **state)
{
    (void)state;
    expect_error(NOARGS, (char *[]){"RESIL_GRACE=x", NULL}, "RESIL_GRACE: bad duration \"x\"");
    expect_error(NOARGS, (char *[]){"RESIL_REMAP_EXIT=1,300", NULL},
                 "RESIL_REMAP_EXIT: bad exit code \"300\"");
    expect_error(NOARGS, (char *[]){"RESIL_SINGLE_CHILD=maybe", NULL}, "RESIL_SINGLE_CHILD");
    expect_error(NOARGS, (char *[]){"RESIL_VERBOSE=lots", NULL}, "RESIL_VERBOSE");
    expect_error(NOARGS, (char *[]){"RESIL_EMERGENCY_ENV=nope", NULL}, "RESIL_EMERGENCY_ENV");
    expect_error(NOARGS, (char *[]){"RESIL_MEMORY_WARN=90%", "RESIL_MEMORY_CRITICAL=85%", NULL},
                 "RESIL_MEMORY_WARN: --memory-warn 90% is above --memory-critical 85%");
    expect_error(ARGS("--memory-critical", "80%"), (char *[]){"RESIL_MEMORY_WARN=81%", NULL},
                 "--memory-warn 81% is above --memory-critical 80%");
    /* A bad value is an error even when a flag overrides it. */
    expect_error(ARGS("--grace", "1s"), (char *[]){"RESIL_GRACE=x", NULL}, "RESIL_GRACE");
}

/* ---- config file ---- */

static void test_file(void **state)
{
    struct resil_config cfg;
    char *path = temp_file("{\n"
                           "  \"grace\": \"2s\",\n"
                           "  \"max-restarts\": 7,\n"
                           "  \"health-interval\": 1.5,\n"
                           "  \"health-url\": \"http://localhost/health\",\n"
                           "  \"remap-exit\": [143, \"1\"],\n"
                           "  \"rewrite\": \"TERM:INT\",\n"
                           "  \"emergency-env\": {\"NODE_ENV\": \"lean\", \"X\": \"\"},\n"
                           "  \"single-child\": true,\n"
                           "  \"subreaper\": false,\n"
                           "  \"memory-warn\": 1073741824,\n"
                           "  \"memory-critical\": \"2G\",\n"
                           "  \"verbose\": 1,\n"
                           "  \"log-format\": \"json\",\n"
                           "  \"state-dir\": null\n"
                           "}\n");

    (void)state;
    expect_ok(&cfg, ARGS("--config", path, "app"), NULL);
    assert_int_equal(cfg.grace_ms, 2000);
    assert_int_equal(cfg.max_restarts, 7);
    assert_int_equal(cfg.health_interval_ms, 1500);
    assert_string_equal(cfg.health_url, "http://localhost/health");
    assert_true(cfg.remap_exit[143] && cfg.remap_exit[1]);
    assert_int_equal(cfg.rewrite[SIGTERM], SIGINT);
    assert_int_equal(cfg.emergency_env_count, 2);
    assert_string_equal(cfg.emergency_env[0], "NODE_ENV=lean");
    assert_string_equal(cfg.emergency_env[1], "X=");
    assert_true(cfg.single_child);
    assert_false(cfg.subreaper);
    assert_int_equal(cfg.memory_warn.bytes, 1ULL << 30);
    assert_int_equal(cfg.memory_critical.bytes, 2ULL << 30);
    assert_int_equal(cfg.verbose, 1);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    assert_null(cfg.state_dir);
    assert_string_equal(cfg.config_file, path);
    assert_string_equal(cfg.command[0], "app");
    config_free(&cfg);
    drop_file(path);
}

static void test_file_precedence(void **state)
{
    struct resil_config cfg;
    char *path = temp_file("{\"grace\": \"2s\", \"health-timeout\": \"2s\", \"health-retries\": 9,"
                           " \"rewrite\": [\"TERM:INT\", \"HUP:0\"], \"remap-exit\": [1],"
                           " \"emergency-env\": [\"A=file\"], \"max-restarts\": \"8\"}");
    char cfgvar[128];
    char *env[] = {cfgvar, "RESIL_GRACE=3s", "RESIL_HEALTH_TIMEOUT=3s", "RESIL_REMAP_EXIT=2", NULL};

    (void)state;
    snprintf(cfgvar, sizeof cfgvar, "RESIL_CONFIG=%s", path);
    expect_ok(&cfg, ARGS("--grace", "4s", "-r", "USR1:USR2"), env);
    assert_int_equal(cfg.grace_ms, 4000);          /* flag > env > file */
    assert_int_equal(cfg.health_timeout_ms, 3000); /* env > file */
    assert_int_equal(cfg.health_retries, 9);       /* file > default */
    assert_int_equal(cfg.max_restarts, 8);
    assert_int_equal(cfg.health_interval_ms, 30000); /* default */
    /* A list from a higher source replaces the lower one's. */
    assert_int_equal(cfg.rewrite[SIGUSR1], SIGUSR2);
    assert_int_equal(cfg.rewrite[SIGTERM], -1);
    assert_int_equal(cfg.rewrite[SIGHUP], -1);
    assert_true(cfg.remap_exit[2]);
    assert_false(cfg.remap_exit[1]);
    assert_int_equal(cfg.emergency_env_count, 1);
    assert_string_equal(cfg.emergency_env[0], "A=file");
    assert_string_equal(cfg.config_file, path);
    config_free(&cfg);
    drop_file(path);
}

static void test_file_flag_beats_env_config(void **state)
{
    struct resil_config cfg;
    char *a = temp_file("{\"grace\": \"1s\"}");
    char *b = temp_file("{\"grace\": \"2s\"}");
    char cfgvar[128];
    char *env[] = {cfgvar, NULL};

    (void)state;
    snprintf(cfgvar, sizeof cfgvar, "RESIL_CONFIG=%s", a);
    expect_ok(&cfg, ARGS("--config", b), env);
    assert_int_equal(cfg.grace_ms, 2000);
    assert_string_equal(cfg.config_file, b);
    config_free(&cfg);
    drop_file(a);
    drop_file(b);
}

static void test_file_empty_list_replaces_default(void **state)
{
    struct resil_config cfg;
    char *path = temp_file("{\"emergency-env\": []}");

    (void)state;
    expect_ok(&cfg, ARGS("--config", path), NULL);
    assert_int_equal(cfg.emergency_env_count, 0);
    assert_true(cfg.emergency_env_explicit);
    config_free(&cfg);
    drop_file(path);
}

/* Writes text to a temp file and expects loading it to fail mentioning needle. */
static void expect_file_error(const char *text, const char *needle)
{
    char *path = temp_file(text);
    char want[256];

    snprintf(want, sizeof want, "config file %s: ", path);
    expect_error(ARGS("--config", path), NULL, want);
    expect_error(ARGS("--config", path), NULL, needle);
    drop_file(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_file_error("{\"foo\": 1}", "unknown key \"foo\"");
    expect_file_error("{\"grace\": \"abc\"}", "key \"grace\": bad duration \"abc\"");
    expect_file_error("{\"grace\": true}", "key \"grace\": expected a string or a number");
    expect_file_error("{\"grace\": [\"1s\"]}", "key \"grace\"");
    expect_file_error("{\"grace\": -1}", "bad duration \"-1\"");
    expect_file_error("{\"health-url\": 5}", "key \"health-url\": expected a string");
    expect_file_error("{\"single-child\": \"yes\"}",
                      "key \"single-child\": expected true or false");
    expect_file_error("{\"remap-exit\": [1, [2]]}", "key \"remap-exit\"");
    expect_file_error("{\"remap-exit\": [1, 300]}", "bad exit code \"300\"");
    expect_file_error("{\"remap-exit\": {\"a\": 1}}", "key \"remap-exit\"");
    expect_file_error("{\"emergency-env\": {\"1A\": \"x\"}}", "bad variable name");
    expect_file_error("{\"emergency-env\": {\"A\": 1}}", "key \"emergency-env\"");
    expect_file_error("{\"emergency-env\": [\"NOEQ\"]}", "key \"emergency-env\"");
    expect_file_error("{\"verbose\": \"2\"}", "key \"verbose\": expected a number");
    expect_file_error("{\"config\": \"/x.json\"}", "key \"config\"");
    expect_file_error("{\"help\": true}", "key \"help\"");
    expect_file_error("{\"grace\": \"1s\", \"grace\": \"2s\"}", "duplicate key \"grace\"");
    expect_file_error("{\"grace\": \"1s\",}", "invalid JSON at line 1");
    expect_file_error("{\n\"grace\": \"1s\"\n\n oops}", "invalid JSON at line 4");
    expect_file_error("{} {}", "invalid JSON");
    expect_file_error("", "invalid JSON");
    expect_file_error("[1, 2]", "expected a JSON object, got an array");
    expect_file_error("\"grace\"", "expected a JSON object");
    expect_file_error("{\"memory-warn\": \"95%\", \"memory-critical\": \"85%\"}",
                      "--memory-warn 95% is above");
    expect_file_error("{\"health-unix-socket\": \"/a.sock\"}",
                      "key \"health-unix-socket\": --health-unix-socket needs");
}

static void test_file_unreadable(void **state)
{
    char big_path[] = "/tmp/resil-test-big-XXXXXX";
    int fd;
    char *buf;

    (void)state;
    expect_error(ARGS("--config", "/nonexistent/resil.json"), NULL,
                 "config file /nonexistent/resil.json: No such file or directory");
    expect_error(ARGS("--config", "/tmp"), NULL, "config file /tmp: ");
    expect_error(NOARGS, (char *[]){"RESIL_CONFIG=/nonexistent/x.json", NULL},
                 "config file /nonexistent/x.json");

    /* Over the 1 MiB bound: refused before parsing. */
    fd = mkstemp(big_path);
    assert_true(fd >= 0);
    buf = malloc(2 << 20);
    assert_non_null(buf);
    memset(buf, ' ', 2 << 20);
    buf[0] = '{';
    buf[(2 << 20) - 1] = '}';
    assert_int_equal(write(fd, buf, 2 << 20), 2 << 20);
    close(fd);
    free(buf);
    expect_error(ARGS("--config", big_path), NULL, "larger than");
    unlink(big_path);
}

/* ---- state after errors ---- */

static void test_error_leaves_defaults(void **state)
{
    struct resil_config cfg;
    char err[256];

    (void)state;
    assert_int_equal(
        load(&cfg,
             ARGS("--log-format", "json", "--grace", "5s", "-e", "3", "--emergency-env", "A=1",
                  "--health-url", "http://x/", "--frobnicate"),
             NULL, err, sizeof err),
        -1);
    assert_string_equal(err, "unknown option --frobnicate");
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON); /* for main's error line */
    assert_int_equal(cfg.grace_ms, 8000);
    assert_false(cfg.remap_exit[3]);
    assert_null(cfg.health_url);
    assert_int_equal(cfg.emergency_env_count, 1);
    assert_string_equal(cfg.emergency_env[0], "EMERGENCY_MODE=true");
    config_free(&cfg);
    config_free(&cfg); /* twice is harmless */

    assert_int_equal(load(&cfg, NOARGS, (char *[]){"RESIL_LOG_FORMAT=json", "RESIL_GRACE=x", NULL},
                          err, sizeof err),
                     -1);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    config_free(&cfg);

    /* A tiny or absent error buffer is still safe. */
    assert_int_equal(load(&cfg, ARGS("--grace", "abc"), NULL, err, 8), -1);
    assert_int_equal(strlen(err), 7);
    config_free(&cfg);
    assert_int_equal(config_load(&cfg, 1, ARGS("--nope"), NULL, NULL, 0), -1);
    config_free(&cfg);
}

static void test_free_zeroed(void **state)
{
    struct resil_config cfg;

    (void)state;
    memset(&cfg, 0, sizeof cfg);
    config_free(&cfg);
    config_free(NULL);
}

/* ---- --check-config output ---- */

/* A configuration longer than the first buffer (a long command line) is
 * printed whole, and text from the user stays valid JSON. */
static void test_to_json_long_and_odd_text(void **state)
{
    struct resil_config cfg;
    static char big[6000];
    char *text;
    cJSON *root, *cmd;

    (void)state;
    memset(big, 'x', sizeof big - 1);
    expect_ok(&cfg, ARGS("--check-config", "--", "app", big, "q\"\n\xff"), NULL);
    text = config_to_json(&cfg);
    assert_non_null(text);
    root = cJSON_Parse(text);
    assert_non_null(root);
    cmd = cJSON_GetObjectItem(root, "command");
    assert_int_equal(cJSON_GetArraySize(cmd), 3);
    assert_string_equal(cJSON_GetArrayItem(cmd, 1)->valuestring, big);
    assert_string_equal(cJSON_GetArrayItem(cmd, 2)->valuestring, "q\"\n\xef\xbf\xbd");
    cJSON_Delete(root);
    free(text);
    config_free(&cfg);
}

static void test_to_json(void **state)
{
    struct resil_config cfg;
    char *text;
    cJSON *root, *item;

    (void)state;
    expect_ok(&cfg,
              ARGS("--grace", "250ms", "-e", "143", "-r", "TERM:QUIT", "-r", "HUP:0",
                   "--memory-restart", "1G", "--restart-window", "90s", "--pressure-signal",
                   "RTMIN+1", "--check-config", "--", "app", "--flag"),
              NULL);
    text = config_to_json(&cfg);
    assert_non_null(text);
    root = cJSON_Parse(text);
    assert_non_null(root);

    assert_string_equal(cJSON_GetObjectItem(root, "grace")->valuestring, "250ms");
    assert_string_equal(cJSON_GetObjectItem(root, "restart-window")->valuestring, "90s");
    assert_string_equal(cJSON_GetObjectItem(root, "health-interval")->valuestring, "30s");
    assert_string_equal(cJSON_GetObjectItem(root, "health-start-period")->valuestring, "0s");
    assert_string_equal(cJSON_GetObjectItem(root, "backoff")->valuestring, "1s:30s");
    assert_string_equal(cJSON_GetObjectItem(root, "memory-warn")->valuestring, "75%");
    assert_true(cJSON_GetObjectItem(root, "memory-restart")->valuedouble == (double)(1ULL << 30));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "health-url")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "pdeath-signal")));
    assert_string_equal(cJSON_GetObjectItem(root, "pressure-signal")->valuestring, "RTMIN+1");
    assert_string_equal(cJSON_GetObjectItem(root, "restart")->valuestring, "no");
    assert_string_equal(cJSON_GetObjectItem(root, "log-level")->valuestring, "info");
    assert_string_equal(cJSON_GetObjectItem(root, "log-format")->valuestring, "text");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "subreaper")));
    assert_int_equal(cJSON_GetObjectItem(root, "max-restarts")->valueint, 5);

    item = cJSON_GetObjectItem(root, "remap-exit");
    assert_int_equal(cJSON_GetArraySize(item), 1);
    assert_int_equal(cJSON_GetArrayItem(item, 0)->valueint, 143);
    item = cJSON_GetObjectItem(root, "rewrite");
    assert_int_equal(cJSON_GetArraySize(item), 2);
    assert_string_equal(cJSON_GetArrayItem(item, 0)->valuestring, "HUP:0");
    assert_string_equal(cJSON_GetArrayItem(item, 1)->valuestring, "TERM:QUIT");
    item = cJSON_GetObjectItem(root, "emergency-env");
    assert_string_equal(cJSON_GetArrayItem(item, 0)->valuestring, "EMERGENCY_MODE=true");
    item = cJSON_GetObjectItem(root, "command");
    assert_int_equal(cJSON_GetArraySize(item), 2);
    assert_string_equal(cJSON_GetArrayItem(item, 1)->valuestring, "--flag");

    /* Every option but --help and --version has a key. */
    for (size_t i = 0; i < config_option_count; i++) {
        const char *name = config_options[i].name;
        bool action = strcmp(name, "help") == 0 || strcmp(name, "version") == 0;

        assert_true(cJSON_HasObjectItem(root, name) == !action);
    }
    cJSON_Delete(root);
    free(text);
    config_free(&cfg);

    /* A zeroed config prints too: no command is an empty array. */
    memset(&cfg, 0, sizeof cfg);
    text = config_to_json(&cfg);
    assert_non_null(text);
    root = cJSON_Parse(text);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "command")), 0);
    cJSON_Delete(root);
    free(text);
}

/* What --check-config prints can be fed back as a config file (minus config and command). */
static void test_json_round_trip(void **state)
{
    struct resil_config a, b;
    char *text, *again, *path;
    cJSON *root;

    (void)state;
    expect_ok(&a,
              ARGS("--grace", "1m30s", "-e", "3", "-r", "USR1:0", "--memory-warn", "1.5G",
                   "--memory-critical", "90%", "--health-url", "http://h/", "--backoff", "250ms:1h",
                   "--emergency-env", "K=V"),
              NULL);
    text = config_to_json(&a);
    root = cJSON_Parse(text);
    cJSON_DeleteItemFromObject(root, "command");
    cJSON_DeleteItemFromObject(root, "config");
    free(text);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    path = temp_file(text);
    expect_ok(&b, ARGS("--config", path), NULL);
    free(b.config_file);
    b.config_file = NULL;
    again = config_to_json(&b);
    free(text);
    text = config_to_json(&a);
    assert_string_equal(again, text);
    free(text);
    free(again);
    config_free(&a);
    config_free(&b);
    drop_file(path);
}

/* ---- the table drives --help's defaults, the early scan and subcommands ---- */

/* --help's [default] is what --check-config prints for an untouched config. */
static void test_default_text_matches_defaults(void **state)
{
    struct resil_config cfg;
    char *text;
    cJSON *root;

    (void)state;
    expect_ok(&cfg, NOARGS, NULL);
    text = config_to_json(&cfg);
    root = cJSON_Parse(text);
    assert_non_null(root);
    for (size_t i = 0; i < config_option_count; i++) {
        const struct config_option *o = &config_options[i];
        const cJSON *v = cJSON_GetObjectItem(root, o->name);
        char buf[64], num[32];
        const char *def = config_default_text(o, buf, sizeof buf);

        if (o->type == CONFIG_TYPE_ACTION || o->type == CONFIG_TYPE_COUNT) {
            assert_null(def);
            continue;
        }
        assert_non_null(def);
        if (o->default_text)
            continue; /* words for what only the run time knows */
        if (cJSON_IsString(v)) {
            assert_string_equal(def, v->valuestring);
        } else if (cJSON_IsNumber(v)) {
            snprintf(num, sizeof num, "%g", v->valuedouble);
            assert_string_equal(def, num);
        } else if (cJSON_IsBool(v)) {
            assert_string_equal(def, cJSON_IsTrue(v) ? "on" : "off");
        } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1) {
            assert_string_equal(def, cJSON_GetArrayItem(v, 0)->valuestring);
        } else {
            assert_true(cJSON_IsNull(v) || cJSON_GetArraySize(v) == 0);
            if (strcmp(def, "none") != 0 && strcmp(def, "off") != 0)
                fail_msg("--%s: default \"%s\" but nothing is set", o->name, def);
        }
    }
    cJSON_Delete(root);
    free(text);
    config_free(&cfg);
}

static const char *early(char **argv)
{
    const struct config_option *o = config_early_action(count(argv), argv);

    return o ? o->name : NULL;
}

static void test_early_action(void **state)
{
    (void)state;
    assert_string_equal(early(ARGS("--help")), "help");
    assert_string_equal(early(ARGS("-h", "app")), "help");
    assert_string_equal(early(ARGS("--grace", "5s", "--version", "--help")), "version");
    assert_string_equal(early(ARGS("-ve", "3", "-vh")), "help");
    assert_string_equal(early(ARGS("--bogus", "--help")), "help");
    assert_string_equal(early(ARGS("--grace", "abc", "--help")), "help");
    /* What follows the command, or is an option's value, is not resil-init's. */
    assert_null(early(ARGS("app", "--help")));
    assert_null(early(ARGS("--", "--help")));
    assert_null(early(ARGS("--grace", "--help")));
    assert_null(early(ARGS("-e", "--help")));
    assert_null(early(ARGS("--help=1")));
    assert_null(early(NOARGS));
}

static int load_state_dir(struct resil_config *cfg, char **argv, char **envp, char *err,
                          size_t errlen)
{
    static const char *const only[] = {"state-dir", NULL};

    return config_load_only(cfg, only, count(argv), argv, envp, err, errlen);
}

static void expect_only_error(char **argv, char **envp, const char *needle)
{
    struct resil_config cfg;
    char err[256];

    assert_int_equal(load_state_dir(&cfg, argv, envp, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    config_free(&cfg);
}

static void test_load_only(void **state)
{
    struct resil_config cfg;
    char err[256];
    char *env[] = {"RESIL_STATE_DIR=/from/env", "RESIL_GRACE=x", "RESIL_CONFIG=/nonexistent", NULL};

    (void)state;
    assert_int_equal(load_state_dir(&cfg, NOARGS, env, err, sizeof err), 0);
    assert_string_equal(cfg.state_dir, "/from/env"); /* RESIL_GRACE and the file are not read */
    config_free(&cfg);
    assert_int_equal(load_state_dir(&cfg, ARGS("--state-dir", "/a"), env, err, sizeof err), 0);
    assert_string_equal(cfg.state_dir, "/a");
    config_free(&cfg);
    assert_int_equal(load_state_dir(&cfg, ARGS("--state-dir=/b"), NULL, err, sizeof err), 0);
    assert_string_equal(cfg.state_dir, "/b");
    config_free(&cfg);
    assert_int_equal(
        load_state_dir(&cfg, NOARGS, (char *[]){"RESIL_STATE_DIR=", NULL}, err, sizeof err), 0);
    assert_null(cfg.state_dir);
    config_free(&cfg);

    expect_only_error(ARGS("--grace", "1s"), NULL, "unknown option --grace");
    expect_only_error(ARGS("-g"), NULL, "unknown option -g");
    expect_only_error(ARGS("--state-dir"), NULL, "missing value for --state-dir");
    expect_only_error(ARGS("--state-dir", "/a", "extra"), NULL, "unexpected argument extra");
    expect_only_error(ARGS("--state-dir", ""), NULL, "--state-dir: must not be empty");
}

/* ---- ordered pairs: a default yields, two given values that contradict are an error ---- */

static void test_memory_thresholds_default_yields(void **state)
{
    struct resil_config cfg;

    (void)state;
    /* warn follows critical down ... */
    expect_ok(&cfg, ARGS("--memory-critical", "50%"), NULL);
    assert_true(cfg.memory_critical.percent == 50.0);
    assert_true(cfg.memory_warn.is_percent && cfg.memory_warn.percent == 50.0);
    config_free(&cfg);
    /* ... and critical follows warn up, from any source */
    expect_ok(&cfg, NOARGS, (char *[]){"RESIL_MEMORY_WARN=90%", NULL});
    assert_true(cfg.memory_warn.percent == 90.0);
    assert_true(cfg.memory_critical.percent == 90.0);
    config_free(&cfg);
    /* a default that does not contradict stays */
    expect_ok(&cfg, ARGS("--memory-critical", "95%"), NULL);
    assert_true(cfg.memory_warn.percent == 75.0);
    config_free(&cfg);
    /* sizes in different units cannot be ordered before the limit is known */
    expect_ok(&cfg, ARGS("--memory-warn", "2G", "--memory-critical", "50%"), NULL);
    assert_int_equal(cfg.memory_warn.bytes, 2ULL << 30);
    assert_true(cfg.memory_critical.percent == 50.0);
    config_free(&cfg);
}

static void test_memory_thresholds_given_contradict(void **state)
{
    (void)state;
    expect_error(ARGS("--memory-warn", "60%", "--memory-critical", "50%"), NULL,
                 "--memory-warn 60% is above --memory-critical 50%");
    expect_error(ARGS("--memory-critical", "1G"), (char *[]){"RESIL_MEMORY_WARN=2G", NULL},
                 "--memory-warn 2147483648 is above --memory-critical 1073741824");
}

static void test_backoff_and_window_default_yields(void **state)
{
    struct resil_config cfg;

    (void)state;
    /* the window follows a long backoff up ... */
    expect_ok(&cfg, ARGS("--backoff", "20m:1h"), NULL);
    assert_int_equal(cfg.restart_window_ms, 20 * 60 * 1000);
    assert_int_equal(cfg.backoff_max_ms, 60 * 60 * 1000);
    config_free(&cfg);
    /* ... and the default backoff MIN follows a short window down */
    expect_ok(&cfg, ARGS("--restart-window", "500ms"), NULL);
    assert_int_equal(cfg.restart_window_ms, 500);
    assert_int_equal(cfg.backoff_min_ms, 500);
    assert_int_equal(cfg.backoff_max_ms, 30000);
    config_free(&cfg);
    /* MAX above the window is fine: the delay reaches it only after calm runs reset */
    expect_ok(&cfg, ARGS("--restart-window", "1s", "--backoff", "100ms:3s"), NULL);
    assert_int_equal(cfg.backoff_min_ms, 100);
    assert_int_equal(cfg.backoff_max_ms, 3000);
    config_free(&cfg);
}

static void test_backoff_contradictions(void **state)
{
    (void)state;
    expect_error(ARGS("--backoff", "20m", "--restart-window", "10m"), NULL,
                 "--backoff MIN 20m is above --restart-window 10m");
    expect_error(ARGS("--restart-window", "1m"), (char *[]){"RESIL_BACKOFF=2m", NULL},
                 "--backoff MIN 2m is above --restart-window 1m");
    /* MIN and MAX come in one value: MIN alone is a fixed delay, MIN above MAX an error */
    expect_error(ARGS("--backoff", "30s:1s"), NULL, "--backoff: MIN is above MAX in \"30s:1s\"");
}

/* Both are given often (a slow check delays the next one; --health-interval is
 * between starts), so neither is adjusted nor refused. */
static void test_health_timeout_and_interval_are_independent(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, ARGS("--health-interval", "200ms", "--health-timeout", "300ms"), NULL);
    assert_int_equal(cfg.health_interval_ms, 200);
    assert_int_equal(cfg.health_timeout_ms, 300);
    config_free(&cfg);
    expect_ok(&cfg, ARGS("--health-interval", "1s"), NULL);
    assert_int_equal(cfg.health_timeout_ms, 5000);
    config_free(&cfg);
}

static void test_defaults_are_ordered(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, NOARGS, NULL);
    assert_true(cfg.memory_warn.percent <= cfg.memory_critical.percent);
    assert_true(cfg.backoff_min_ms <= cfg.restart_window_ms);
    assert_true(cfg.backoff_min_ms <= cfg.backoff_max_ms);
    config_free(&cfg);
}

/* Modules that must tell "given" from "defaulted" ask config_source_of. */
static void test_source_of(void **state)
{
    struct resil_config cfg;
    char *path = temp_file("{\"grace\": \"2s\", \"memory-interval\": \"1s\"}");
    char cfgvar[128];

    (void)state;
    snprintf(cfgvar, sizeof cfgvar, "RESIL_CONFIG=%s", path);
    expect_ok(&cfg, ARGS("--grace", "3s"), (char *[]){cfgvar, "RESIL_HEALTH_RETRIES=2", NULL});
    assert_int_equal(config_source_of(&cfg, "grace"), CONFIG_SOURCE_FLAG);
    assert_int_equal(config_source_of(&cfg, "health-retries"), CONFIG_SOURCE_ENV);
    assert_int_equal(config_source_of(&cfg, "memory-interval"), CONFIG_SOURCE_FILE);
    assert_int_equal(config_source_of(&cfg, "health-timeout"), CONFIG_SOURCE_DEFAULT);
    assert_int_equal(config_source_of(&cfg, "no-such-option"), CONFIG_SOURCE_DEFAULT);
    config_free(&cfg);
    /* after a failed load everything is the default again */
    expect_error(ARGS("--grace", "3s", "--bogus"), NULL, "--bogus");
    assert_int_equal(load(&cfg, ARGS("--grace", "3s", "--bogus"), NULL, NULL, 0), -1);
    assert_int_equal(config_source_of(&cfg, "grace"), CONFIG_SOURCE_DEFAULT);
    config_free(&cfg);
    drop_file(path);
}

/* Issue 13: a huge budget used to fail its allocation and silently allow no restart. */
static void test_max_restarts_bounded(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, ARGS("--max-restarts", "100000"), NULL);
    assert_int_equal(cfg.max_restarts, 100000);
    config_free(&cfg);
    expect_error(ARGS("--max-restarts", "100001"), NULL,
                 "--max-restarts: must be at most 100000, got \"100001\"");
    expect_error(ARGS("--max-restarts", "4294967295"), NULL,
                 "--max-restarts: must be at most 100000, got \"4294967295\"");
    expect_error(NOARGS, (char *[]){"RESIL_MAX_RESTARTS=4294967296", NULL},
                 "RESIL_MAX_RESTARTS: bad number \"4294967296\"");
    expect_file_error("{\"max-restarts\": 1e6}", "key \"max-restarts\": must be at most 100000");
}

/* ---- options whose effect other modules bring: the table alone reads them ---- */

static void test_new_options_defaults(void **state)
{
    struct resil_config cfg;
    char *text;
    cJSON *root;
    char buf[64];

    (void)state;
    expect_ok(&cfg, NOARGS, NULL);
    assert_null(cfg.listen);
    assert_int_equal(cfg.listen_count, 0);
    assert_int_equal(cfg.listen_backlog, 4096);
    assert_int_equal(cfg.stop_delay_ms, 0);
    assert_null(cfg.metrics);
    text = config_to_json(&cfg);
    root = cJSON_Parse(text);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "listen")), 0);
    assert_int_equal(cJSON_GetObjectItem(root, "listen-backlog")->valueint, 4096);
    assert_string_equal(cJSON_GetObjectItem(root, "stop-delay")->valuestring, "0s");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "metrics")));
    cJSON_Delete(root);
    free(text);
    config_free(&cfg);
    assert_string_equal(config_default_text(find_option("listen"), buf, sizeof buf), "none");
    assert_string_equal(config_default_text(find_option("listen-backlog"), buf, sizeof buf),
                        "4096");
    assert_string_equal(config_default_text(find_option("stop-delay"), buf, sizeof buf), "0s");
    assert_string_equal(config_default_text(find_option("metrics"), buf, sizeof buf), "none");
    assert_true(find_option("listen")->repeatable);
}

static void test_new_options_sources(void **state)
{
    struct resil_config cfg;
    char *path = temp_file("{\"listen\": [\"8080\", \"api=unix:/run/a.sock\"],"
                           " \"listen-backlog\": 64, \"stop-delay\": \"5s\","
                           " \"metrics\": \"127.0.0.1:9100\"}");
    char *text;
    cJSON *root, *l;

    (void)state;
    expect_ok(&cfg, ARGS("--config", path), NULL);
    assert_int_equal(cfg.listen_count, 2);
    assert_string_equal(cfg.listen[0], "8080");
    assert_string_equal(cfg.listen[1], "api=unix:/run/a.sock");
    assert_null(cfg.listen[2]);
    assert_int_equal(cfg.listen_backlog, 64);
    assert_int_equal(cfg.stop_delay_ms, 5000);
    assert_string_equal(cfg.metrics, "127.0.0.1:9100");
    text = config_to_json(&cfg);
    root = cJSON_Parse(text);
    l = cJSON_GetObjectItem(root, "listen");
    assert_int_equal(cJSON_GetArraySize(l), 2);
    assert_string_equal(cJSON_GetArrayItem(l, 1)->valuestring, "api=unix:/run/a.sock");
    assert_string_equal(cJSON_GetObjectItem(root, "stop-delay")->valuestring, "5s");
    assert_string_equal(cJSON_GetObjectItem(root, "metrics")->valuestring, "127.0.0.1:9100");
    cJSON_Delete(root);
    free(text);
    config_free(&cfg);

    /* env over file, a list from env replacing the file's; flags over both */
    expect_ok(
        &cfg, ARGS("--config", path, "--metrics", "9200", "--listen", "[::1]:80"),
        (char *[]){"RESIL_LISTEN=80, 443", "RESIL_STOP_DELAY=2s", "RESIL_LISTEN_BACKLOG=8", NULL});
    assert_int_equal(cfg.listen_count, 1);
    assert_string_equal(cfg.listen[0], "[::1]:80");
    assert_int_equal(cfg.stop_delay_ms, 2000);
    assert_int_equal(cfg.listen_backlog, 8);
    assert_string_equal(cfg.metrics, "9200");
    config_free(&cfg);
    expect_ok(&cfg, NOARGS, (char *[]){"RESIL_LISTEN=80, 443", NULL});
    assert_int_equal(cfg.listen_count, 2);
    assert_string_equal(cfg.listen[1], "443");
    config_free(&cfg);
    expect_ok(&cfg, ARGS("--listen=1", "--listen", "2", "--listen", "3", "app"), NULL);
    assert_int_equal(cfg.listen_count, 3);
    assert_string_equal(cfg.listen[2], "3");
    config_free(&cfg);
    drop_file(path);
}

static void test_new_options_errors(void **state)
{
    (void)state;
    expect_error(ARGS("--listen"), NULL, "missing value for --listen");
    expect_error(ARGS("--listen", ""), NULL, "--listen: must not be empty");
    expect_error(ARGS("--listen-backlog", "0"), NULL, "--listen-backlog: must be at least 1");
    expect_error(ARGS("--listen-backlog", "2147483648"), NULL,
                 "--listen-backlog: must be at most 2147483647");
    expect_error(ARGS("--listen-backlog", "many"), NULL, "--listen-backlog: bad number");
    expect_error(ARGS("--stop-delay", "soon"), NULL, "--stop-delay: bad duration \"soon\"");
    expect_error(ARGS("--metrics="), NULL, "--metrics: must not be empty");
    expect_error(NOARGS, (char *[]){"RESIL_STOP_DELAY=x", NULL}, "RESIL_STOP_DELAY");
    expect_file_error("{\"listen\": 8080}", "key \"listen\": expected a string");
    expect_file_error("{\"listen\": [[\"80\"]]}", "key \"listen\"");
    expect_file_error("{\"metrics\": 9100}", "key \"metrics\": expected a string");
    /* The address syntax, checked by the listen and metrics modules' validators. */
    expect_error(ARGS("--listen", "70000"), NULL, "--listen: address '70000': port must be");
    expect_error(ARGS("--listen", "::1:80"), NULL, "brackets");
    expect_error(NOARGS, (char *[]){"RESIL_LISTEN=80,bad name=81", NULL}, "bad name=81");
    expect_file_error("{\"listen\": [\"unix:\"]}", "unix: needs a path");
    expect_error(ARGS("--metrics", "unix:/m.sock"), NULL, "--metrics: address 'unix:/m.sock'");
    expect_error(ARGS("--metrics", "9464x"), NULL, "--metrics: address '9464x'");
}

/* --grace starts after --stop-delay, so any two values go together. */
static void test_grace_and_stop_delay_are_independent(void **state)
{
    struct resil_config cfg;

    (void)state;
    expect_ok(&cfg, ARGS("--stop-delay", "1m", "--grace", "1s"), NULL);
    assert_int_equal(cfg.stop_delay_ms, 60000);
    assert_int_equal(cfg.grace_ms, 1000);
    config_free(&cfg);
    expect_ok(&cfg, ARGS("--stop-delay", "1h"), NULL);
    assert_int_equal(cfg.grace_ms, 8000);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_option_table),
        cmocka_unit_test(test_option_table_entries),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_size_spec_bytes),
        cmocka_unit_test(test_parse_signal),
        cmocka_unit_test(test_signal_name),
        cmocka_unit_test(test_parse_rewrite),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_cli_forms),
        cmocka_unit_test(test_cli_bundling),
        cmocka_unit_test(test_cli_verbose_levels),
        cmocka_unit_test(test_cli_switch_values),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_accepts_edge_values),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_flag_wins),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_precedence),
        cmocka_unit_test(test_file_flag_beats_env_config),
        cmocka_unit_test(test_file_empty_list_replaces_default),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_unreadable),
        cmocka_unit_test(test_error_leaves_defaults),
        cmocka_unit_test(test_free_zeroed),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_to_json_long_and_odd_text),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_default_text_matches_defaults),
        cmocka_unit_test(test_early_action),
        cmocka_unit_test(test_load_only),
        cmocka_unit_test(test_memory_thresholds_default_yields),
        cmocka_unit_test(test_memory_thresholds_given_contradict),
        cmocka_unit_test(test_backoff_and_window_default_yields),
        cmocka_unit_test(test_backoff_contradictions),
        cmocka_unit_test(test_health_timeout_and_interval_are_independent),
        cmocka_unit_test(test_defaults_are_ordered),
        cmocka_unit_test(test_max_restarts_bounded),
        cmocka_unit_test(test_source_of),
        cmocka_unit_test(test_new_options_defaults),
        cmocka_unit_test(test_new_options_sources),
        cmocka_unit_test(test_new_options_errors),
        cmocka_unit_test(test_grace_and_stop_delay_are_independent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
