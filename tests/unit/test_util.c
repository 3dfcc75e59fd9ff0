/* util: bounded file reads (regular, /proc, FIFO, too large), write-all,
 * growth, numbers, KEY=VALUE lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "resil/util.h"

struct tmp {
    char dir[64];
    char path[128];
};

static void make_tmp(struct tmp *t, const char *name)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/resil-util-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
}

static void drop_tmp(struct tmp *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

static void write_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(util_write_all(fd, text, len), 0);
    close(fd);
}

static void reads_a_file_whole_and_bounded(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t, "f");
    static char big[10000];
    memset(big, 'x', sizeof big);
    write_file(t.path, big, sizeof big);

    size_t len = 0;
    char *text = util_read_file(t.path, sizeof big, 0, &len);
    assert_non_null(text);
    assert_int_equal(len, sizeof big);
    assert_int_equal(strlen(text), sizeof big);
    free(text);

    errno = 0;
    assert_null(util_read_file(t.path, sizeof big - 1, 0, &len));
    assert_int_equal(errno, EFBIG);

    char small[100];
    assert_int_equal(util_read_into(t.path, small, sizeof small, 0), 99);
    assert_int_equal(strlen(small), 99);
    drop_tmp(&t);

    errno = 0;
    assert_null(util_read_file(t.path, 100, 0, NULL));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(util_read_into(t.path, small, sizeof small, 0), -1);
    assert_int_equal(errno, ENOENT);
}

/* st_size is 0 there: the content must come from reading, not from stat. */
static void reads_proc_files(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = util_read_file("/proc/self/status", 1 << 20, UTIL_READ_REGULAR, &len);
    assert_non_null(text);
    assert_true(len > 0);
    assert_non_null(strstr(text, "Pid:"));
    free(text);
}

static void a_fifo_never_hangs_and_can_be_refused(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);

    /* no writer: empty at once */
    size_t len = 1;
    char *text = util_read_file(t.path, 100, 0, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    free(text);

    /* a writer that says nothing: EAGAIN, not a hang */
    int w = open(t.path, O_RDWR | O_NONBLOCK);
    assert_true(w >= 0);
    errno = 0;
    assert_null(util_read_file(t.path, 100, 0, NULL));
    assert_int_equal(errno, EAGAIN);
    close(w);

    errno = 0;
    assert_null(util_read_file(t.path, 100, UTIL_READ_REGULAR, NULL));
    assert_int_equal(errno, EINVAL);
    drop_tmp(&t);
}

static void nofollow_refuses_a_symlink(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t, "link");
    assert_int_equal(symlink("/proc/self/status", t.path), 0);
    char *text = util_read_file(t.path, 1 << 20, 0, NULL);
    assert_non_null(text);
    free(text);
    errno = 0;
    assert_null(util_read_file(t.path, 1 << 20, UTIL_READ_NOFOLLOW, NULL));
    assert_int_equal(errno, ELOOP);
    drop_tmp(&t);
}

static void write_all_reports_a_closed_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(util_write_all(p[1], "abc", 3), 0);
    char got[4] = "";
    assert_int_equal(read(p[0], got, 3), 3);
    assert_string_equal(got, "abc");
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    assert_int_equal(util_write_all(p[1], "abc", 3), -1);
    assert_int_equal(errno, EPIPE);
    close(p[1]);
}

static void grow_keeps_items_and_doubles(void **state)
{
    (void)state;
    int *v = NULL;
    size_t cap = 0;
    for (int i = 0; i < 100; i++) {
        int *grown = util_grow(v, &cap, (size_t)i + 1, sizeof *v);
        assert_non_null(grown);
        v = grown;
        v[i] = i;
    }
    assert_int_equal(cap, 128);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
    errno = 0;
    assert_null(util_grow(v, &cap, SIZE_MAX / 2, sizeof *v));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(cap, 128);
    free(v);
}

static void numbers_are_checked_for_overflow(void **state)
{
    (void)state;
    uint64_t v;
    const char *p = "18446744073709551615 rest";
    assert_int_equal(util_digits_u64(&p, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_string_equal(p, " rest");
    p = "18446744073709551616";
    assert_int_equal(util_digits_u64(&p, &v), -1);
    assert_int_equal(errno, ERANGE);
    p = "x1";
    assert_int_equal(util_digits_u64(&p, &v), -1);
    assert_int_equal(errno, EINVAL);

    assert_int_equal(util_parse_u64("100", 100, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(util_parse_u64("101", 100, &v), -1);
    assert_int_equal(util_parse_u64("", 100, &v), -1);
    assert_int_equal(util_parse_u64("1 ", 100, &v), -1);
    assert_int_equal(util_parse_u64("-1", 100, &v), -1);
    assert_int_equal(util_parse_u64(NULL, 100, &v), -1);
}

static void decimals_keep_their_fraction(void **state)
{
    (void)state;
    struct util_decimal d;
    const char *p = "12.345s";
    assert_int_equal(util_read_decimal(&p, 100, &d), 0);
    assert_int_equal(d.whole, 12);
    assert_int_equal(d.frac, 34); /* digits past the scale are read, not kept */
    assert_int_equal(d.scale, 100);
    assert_true(d.has_frac);
    assert_string_equal(p, "s");
    p = ".5";
    assert_int_equal(util_read_decimal(&p, 1000, &d), 0);
    assert_int_equal(d.whole, 0);
    assert_int_equal(d.frac, 5);
    assert_int_equal(d.scale, 10);
    p = "7";
    assert_int_equal(util_read_decimal(&p, 1000, &d), 0);
    assert_false(d.has_frac);
    assert_int_equal(d.scale, 1);
    p = "1.";
    assert_int_equal(util_read_decimal(&p, 1000, &d), -1);
    assert_string_equal(p, "1.");
    p = ".";
    assert_int_equal(util_read_decimal(&p, 1000, &d), -1);
    p = "";
    assert_int_equal(util_read_decimal(&p, 1000, &d), -1);
}

static void env_lookup_matches_whole_keys(void **state)
{
    (void)state;
    char *env[] = {"PATHX=1", "PATH=/bin", "EMPTY=", "PATH=/late", NULL};
    assert_string_equal(util_env_get(env, "PATH"), "/bin");
    assert_string_equal(util_env_get(env, "EMPTY"), "");
    assert_null(util_env_get(env, "PAT"));
    assert_null(util_env_get(NULL, "PATH"));
    assert_int_equal(util_env_index(env, "PATHX=ignored", 5), 0);
    assert_int_equal(util_env_index(env, "EMPTY", 5), 2);
}

static void realtime_is_wall_clock_ms(void **state)
{
    (void)state;
    long long ms = util_realtime_ms();
    long long secs = (long long)time(NULL);
    assert_true(ms / 1000 >= secs - 1 && ms / 1000 <= secs + 1);
}

/* Text from endpoints and cgroup trees reaches JSON: as valid UTF-8, cut at a
 * character boundary, invalid bytes as U+FFFD. */
static void utf8_copy_cuts_at_characters_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    char out[64];
    char eacute[81];
    for (int i = 0; i < 40; i++)
        memcpy(eacute + 2 * i, "\xc3\xa9", 2);
    eacute[80] = '\0';
    assert_int_equal(util_utf8_copy(out, sizeof out, eacute, 80), 62); /* 31 whole, not 31.5 */
    assert_memory_equal(out, eacute, 62);
    assert_int_equal(out[62], '\0');
    util_utf8_copy(out, sizeof out, "ok\xff\xfe\xc3", 5);
    assert_string_equal(out, "ok\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    util_utf8_copy(out, sizeof out, "\xe2\x82\xac \xf0\x9f\x98\x80", 8); /* euro, emoji */
    assert_string_equal(out, "\xe2\x82\xac \xf0\x9f\x98\x80");
    /* overlong '/', a surrogate, past U+10FFFF: each byte replaced */
    util_utf8_copy(out, sizeof out, "\xc0\xaf", 2);
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(util_utf8_char_len((const unsigned char *)"\xed\xa0\x80", 3), 0);
    assert_int_equal(util_utf8_char_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
    assert_int_equal(util_utf8_char_len((const unsigned char *)"\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(util_utf8_char_len((const unsigned char *)"\xe2\x82", 2), 0);
    char tiny[3];
    assert_int_equal(util_utf8_copy(tiny, sizeof tiny, "\xe2\x82\xac", 3), 0); /* no room: none */
    assert_string_equal(tiny, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_copy_cuts_at_characters_and_replaces_invalid_bytes),
        cmocka_unit_test(reads_a_file_whole_and_bounded),
        cmocka_unit_test(reads_proc_files),
        cmocka_unit_test(a_fifo_never_hangs_and_can_be_refused),
        cmocka_unit_test(nofollow_refuses_a_symlink),
        cmocka_unit_test(write_all_reports_a_closed_pipe),
        cmocka_unit_test(grow_keeps_items_and_doubles),
        cmocka_unit_test(numbers_are_checked_for_overflow),
        cmocka_unit_test(decimals_keep_their_fraction),
        cmocka_unit_test(env_lookup_matches_whole_keys),
        cmocka_unit_test(realtime_is_wall_clock_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
