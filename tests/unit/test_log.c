/* Log lines: JSON escaping and the time format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "resil/log_internal.h"

static void escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    char out[64];
    log_json_escape(out, sizeof out, "a\"b\\c\nd\te\x01");
    assert_string_equal(out, "a\\\"b\\\\c\\nd\\te\\u0001");
}

static void escape_never_overflows_or_splits_an_escape(void **state)
{
    (void)state;
    char out[6];
    size_t n = log_json_escape(out, sizeof out, "abcd\"efgh");
    assert_int_equal(n, 4);
    assert_string_equal(out, "abcd");
}

static void time_is_rfc3339_utc_with_millis(void **state)
{
    (void)state;
    char out[40];
    log_format_time(out, sizeof out, 86400000LL + 1);
    assert_string_equal(out, "1970-01-02T00:00:00.001Z");
}

static void levels_filter(void **state)
{
    (void)state;
    log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    assert_true(log_enabled(LOG_LEVEL_WARN));
    assert_false(log_enabled(LOG_LEVEL_INFO));
    assert_string_equal(log_level_name(LOG_LEVEL_DEBUG), "debug");
}

static void json_escape_replaces_invalid_utf8(void **state)
{
    (void)state;
    char out[64];
    log_json_escape(out, sizeof out, "ok\xff\xc3\xa9");
    assert_string_equal(out, "ok\\ufffd\xc3\xa9");
    char small[4]; /* never cut inside a character */
    log_json_escape(small, sizeof small, "a\xe2\x82\xac");
    assert_string_equal(small, "a");
}

/* A verdict must not forge a line of its own, move the cursor or end in a
 * half character. */
static void text_escape_shows_control_characters(void **state)
{
    (void)state;
    char out[128];
    log_text_escape(out, sizeof out, "ok\nresil-init[1]: error: x\x1b[2K\r\t\xff\xc3\xa9");
    assert_string_equal(out, "ok\\nresil-init[1]: error: x\\x1b[2K\\r\\t\\xff\xc3\xa9");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_escape_replaces_invalid_utf8),
        cmocka_unit_test(text_escape_shows_control_characters),
        cmocka_unit_test(escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(escape_never_overflows_or_splits_an_escape),
        cmocka_unit_test(time_is_rfc3339_utc_with_millis),
        cmocka_unit_test(levels_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
