/* status.json fields and types (README, "status.json, `status` and `probe`"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resil/status.h"
#include "resil/status_internal.h"

static cJSON *render(const struct status_snapshot *s)
{
    char *text = status_to_json(s);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    return root;
}

static const cJSON *at(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, a);
    return b ? cJSON_GetObjectItemCaseSensitive(o, b) : o;
}

static void running_app_has_numbers_booleans_and_rfc3339(void **state)
{
    (void)state;
    struct health_state hs = {.status = HEALTH_STATUS_HEALTHY,
                              .consecutive_failures = 0,
                              .last_check_at_ms = 1700000000123LL,
                              .last_http_status = 200};
    snprintf(hs.last_verdict, sizeof hs.last_verdict, "ok");
    struct memory_sample ms = {.available = true,
                               .limited = true,
                               .limit_bytes = 512ull << 20,
                               .working_set_bytes = 100ull << 20,
                               .psi_some_avg10 = 1.5,
                               .oom_kills = 2,
                               .tier = MEMORY_TIER_NORMAL};
    struct status_snapshot s = {.resil_pid = 1,
                                .app_pid = 7,
                                .state = STATUS_APP_RUNNING,
                                .started_at_ms = 1700000000000LL,
                                .restarts = 3,
                                .emergency = true,
                                .health_url = "http://127.0.0.1:3000/health",
                                .health = &hs,
                                .memory = &ms};
    cJSON *root = render(&s);
    assert_true(cJSON_IsString(at(root, "version", NULL)));
    assert_int_equal(at(root, "pid", NULL)->valueint, 1);
    assert_int_equal(at(root, "app", "pid")->valueint, 7);
    assert_string_equal(at(root, "app", "state")->valuestring, "running");
    assert_string_equal(at(root, "app", "started_at")->valuestring, "2023-11-14T22:13:20.000Z");
    assert_int_equal(at(root, "app", "restarts")->valueint, 3);
    assert_true(cJSON_IsTrue(at(root, "app", "emergency")));
    assert_true(cJSON_IsNull(at(root, "app", "last_exit")));
    assert_string_equal(at(root, "health", "status")->valuestring, "healthy");
    assert_int_equal(at(root, "health", "last_http_status")->valueint, 200);
    assert_string_equal(at(root, "health", "last_verdict")->valuestring, "ok");
    assert_string_equal(at(root, "health", "last_check_at")->valuestring,
                        "2023-11-14T22:13:20.123Z");
    assert_true(at(root, "memory", "limit_bytes")->valuedouble == (double)(512ull << 20));
    assert_string_equal(at(root, "memory", "tier")->valuestring, "normal");
    assert_int_equal(at(root, "memory", "oom_kills")->valueint, 2);
    assert_true(at(root, "memory", "psi_some_avg10")->valuedouble == 1.5);
    cJSON_Delete(root);
}

static void exited_app_reports_signal_and_unknown_memory(void **state)
{
    (void)state;
    struct status_snapshot s = {.resil_pid = 42, .state = STATUS_APP_EXITED};
    s.last_exit.present = true;
    s.last_exit.code = -1;
    s.last_exit.signal = SIGKILL;
    s.last_exit.at_ms = 1700000000000LL;
    snprintf(s.last_exit.reason, sizeof s.last_exit.reason, "oom");
    cJSON *root = render(&s);
    assert_true(cJSON_IsNull(at(root, "app", "pid")));
    assert_string_equal(at(root, "app", "state")->valuestring, "exited");
    const cJSON *last = at(root, "app", "last_exit");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(last, "code")));
    assert_string_equal(cJSON_GetObjectItem(last, "signal")->valuestring, "KILL");
    assert_string_equal(cJSON_GetObjectItem(last, "reason")->valuestring, "oom");
    assert_true(cJSON_IsNull(at(root, "health", "url")));
    assert_string_equal(at(root, "health", "status")->valuestring, "unknown");
    assert_true(cJSON_IsNull(at(root, "memory", "limit_bytes")));
    assert_string_equal(at(root, "memory", "tier")->valuestring, "unknown");
    cJSON_Delete(root);
}

/* Strings from outside (an endpoint's verdict, the URL) may hold quotes,
 * control characters and bytes that are not UTF-8: the file stays JSON. */
static void hostile_verdict_and_url_stay_valid_json(void **state)
{
    (void)state;
    struct health_state hs = {.status = HEALTH_STATUS_UNHEALTHY, .consecutive_failures = 3};
    snprintf(hs.last_verdict, sizeof hs.last_verdict, "\"}\n\x01\xff\xc3(");
    struct status_snapshot s = {
        .resil_pid = 1, .health_url = "http://127.0.0.1:1/\"x\\y\x7f", .health = &hs};
    cJSON *root = render(&s);
    assert_string_equal(at(root, "health", "last_verdict")->valuestring,
                        "\"}\n\x01\xef\xbf\xbd\xef\xbf\xbd(");
    assert_string_equal(at(root, "health", "url")->valuestring, "http://127.0.0.1:1/\"x\\y\x7f");
    assert_int_equal(at(root, "health", "consecutive_failures")->valueint, 3);
    cJSON_Delete(root);
}

/* The buffer is sized from the strings: a URL longer than the rest of the
 * file together, made only of characters that need escaping, fits whole. */
static void long_escaped_url_is_written_whole(void **state)
{
    (void)state;
    char url[3001];
    memset(url, '"', sizeof url - 1);
    url[sizeof url - 1] = '\0';
    struct status_snapshot s = {.resil_pid = 1, .health_url = url};
    cJSON *root = render(&s);
    assert_string_equal(at(root, "health", "url")->valuestring, url);
    assert_string_equal(at(root, "memory", "tier")->valuestring, "unknown");
    cJSON_Delete(root);
}

/* Byte counts are integers in the text, not doubles cut to 15 digits. */
static void large_byte_counts_are_exact_integers(void **state)
{
    (void)state;
    struct memory_sample ms = {.available = true,
                               .limited = true,
                               .limit_bytes = UINT64_C(9007199254740993),
                               .working_set_bytes = 1,
                               .psi_some_avg10 = -1};
    struct status_snapshot s = {.resil_pid = 1, .memory = &ms};
    char *text = status_to_json(&s);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"limit_bytes\":9007199254740993,"));
    assert_non_null(strstr(text, "\"psi_some_avg10\":null"));
    free(text);
}

static void write_is_atomic_and_readable(void **state)
{
    (void)state;
    char dir[] = "/tmp/resil-status-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct status_snapshot s = {
        .resil_pid = (int)getpid(), .state = STATUS_APP_BACKOFF, .restarts = 1};
    assert_int_equal(status_write(dir, &s), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/status.json", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"state\":\"backoff\""));
    /* no temp file is left behind */
    snprintf(path, sizeof path, "%s/.status.json.tmp", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/status.json", dir);
    unlink(path);
    rmdir(dir);
}

/* A file longer than the writer's stack buffer is written whole too. */
static void long_status_is_written_whole(void **state)
{
    (void)state;
    char dir[] = "/tmp/resil-status-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static char url[5001];
    memset(url, 'u', sizeof url - 1);
    struct status_snapshot s = {.resil_pid = 1, .health_url = url};
    assert_int_equal(status_write(dir, &s), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/status.json", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    assert_non_null(root);
    assert_string_equal(at(root, "health", "url")->valuestring, url);
    assert_int_equal(buf[n - 1], '\n');
    cJSON_Delete(root);
    unlink(path);
    rmdir(dir);
}

static void write_to_missing_dir_fails(void **state)
{
    (void)state;
    struct status_snapshot s = {.resil_pid = 1};
    assert_int_equal(status_write("/nonexistent/resil", &s), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(running_app_has_numbers_booleans_and_rfc3339),
        cmocka_unit_test(exited_app_reports_signal_and_unknown_memory),
        cmocka_unit_test(hostile_verdict_and_url_stay_valid_json),
        cmocka_unit_test(long_escaped_url_is_written_whole),
        cmocka_unit_test(large_byte_counts_are_exact_integers),
        cmocka_unit_test(write_is_atomic_and_readable),
        cmocka_unit_test(long_status_is_written_whole),
        cmocka_unit_test(write_to_missing_dir_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
