/* util: the small helpers of include/resil/util.h — bounded file reads,
 * write-all, growable arrays, decimal numbers, KEY=VALUE vectors, outside
 * text as valid UTF-8, URLs without their password, the wall clock. Nothing
 * here logs: callers word their own errors from errno. */
#include "resil/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define GROW_FIRST 8

static int open_for_reading(const char *path, unsigned flags)
{
    int oflags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    if (flags & UTIL_READ_NOFOLLOW)
        oflags |= O_NOFOLLOW;
    /* openat: musl's open() adds an fcntl for O_CLOEXEC, openat does not. */
    int fd = openat(AT_FDCWD, path, oflags);
    if (fd < 0 || !(flags & (UTIL_READ_REGULAR | UTIL_READ_WAIT)))
        return fd;
    struct stat st;
    if (fstat(fd, &st) < 0)
        goto fail;
    if ((flags & UTIL_READ_REGULAR) && !S_ISREG(st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    if ((flags & UTIL_READ_WAIT) && S_ISFIFO(st.st_mode) &&
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Reads into buf[*n .. cap) until end of file or a full buffer. */
static int read_some(int fd, char *buf, size_t cap, size_t *n)
{
    while (*n < cap) {
        ssize_t r = read(fd, buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        *n += (size_t)r;
    }
    return 0;
}

static void close_keeping_errno(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

ssize_t util_read_into(const char *path, char *buf, size_t cap, unsigned flags)
{
    size_t n = 0;
    if (cap == 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = open_for_reading(path, flags);
    if (fd < 0)
        return -1;
    int rc = read_some(fd, buf, cap - 1, &n);
    close_keeping_errno(fd);
    if (rc < 0)
        return -1;
    buf[n] = '\0';
    return (ssize_t)n;
}

char *util_read_file(const char *path, size_t max, unsigned flags, size_t *len)
{
    int fd = open_for_reading(path, flags);
    if (fd < 0)
        return NULL;
    size_t cap = 0, n = 0;
    char *buf = NULL;
    /* Room for max + 1 bytes tells "exactly max" from "more than max". */
    size_t limit = max < SIZE_MAX - 2 ? max + 1 : SIZE_MAX - 1;
    for (;;) {
        size_t want = limit - n > 4096 ? n + 4096 + 1 : limit + 1;
        char *grown = util_grow(buf, &cap, want, 1);
        if (!grown)
            break;
        buf = grown;
        int rc = read_some(fd, buf, cap - 1 < limit ? cap - 1 : limit, &n);
        if (rc < 0)
            break;
        if (n > max) {
            errno = EFBIG;
            break;
        }
        if (rc == 1) {
            close(fd);
            buf[n] = '\0';
            if (len)
                *len = n;
            return buf;
        }
    }
    close_keeping_errno(fd);
    int saved = errno;
    free(buf);
    errno = saved;
    return NULL;
}

int util_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void *util_grow(void *items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap && items)
        return items;
    size_t grown = *cap ? *cap : GROW_FIRST;
    while (grown < need) {
        if (grown > SIZE_MAX / 2) {
            errno = ENOMEM;
            return NULL;
        }
        grown *= 2;
    }
    if (size && grown > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *moved = realloc(items, grown * size);
    if (!moved)
        return NULL;
    *cap = grown;
    return moved;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int util_digits_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!is_digit(*s)) {
        errno = EINVAL;
        return -1;
    }
    for (; is_digit(*s); s++) {
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v)) {
            errno = ERANGE;
            return -1;
        }
    }
    *p = s;
    *out = v;
    return 0;
}

int util_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!s || util_digits_u64(&s, &v) < 0)
        return -1;
    if (*s != '\0') {
        errno = EINVAL;
        return -1;
    }
    if (v > max) {
        errno = ERANGE;
        return -1;
    }
    *out = v;
    return 0;
}

int util_read_decimal(const char **p, uint64_t frac_scale_max, struct util_decimal *out)
{
    const char *s = *p;
    struct util_decimal d = {.scale = 1};
    bool whole = is_digit(*s);
    if (whole && util_digits_u64(&s, &d.whole) < 0)
        return -1;
    if (*s == '.') {
        s++;
        if (!is_digit(*s)) {
            errno = EINVAL;
            return -1;
        }
        d.has_frac = true;
        for (; is_digit(*s); s++) {
            if (d.scale < frac_scale_max) {
                d.frac = d.frac * 10 + (uint64_t)(*s - '0');
                d.scale *= 10;
            }
        }
    } else if (!whole) {
        errno = EINVAL;
        return -1;
    }
    *p = s;
    *out = d;
    return 0;
}

long util_env_index(char *const *env, const char *key, size_t klen)
{
    for (long i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, klen) == 0 && env[i][klen] == '=')
            return i;
    return -1;
}

const char *util_env_get(char *const *env, const char *key)
{
    size_t klen = strlen(key);
    long i = util_env_index(env, key, klen);
    return i < 0 ? NULL : env[i] + klen + 1;
}

/* A system call, not the vDSO: the vDSO's first use faults in its pages and
 * walks its symbol table (3 to 4 page faults, ~100 us in a VM, on every
 * run's way to the app's start), while resil-init reads the clock a few times
 * per event, where a system call costs well under a microsecond. */
void util_clock(clockid_t clock, struct timespec *ts)
{
    if (syscall(SYS_clock_gettime, clock, ts) != 0)
        clock_gettime(clock, ts);
}

long long util_realtime_ms(void)
{
    struct timespec ts;
    util_clock(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t util_utf8_char_len(const unsigned char *s, size_t avail)
{
    if (avail == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min_second = 0x80, max_second = 0xBF; /* range of s[1], which rules out overlongs */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            min_second = 0xA0;
        else if (c == 0xED) /* U+D800..DFFF are surrogates, not characters */
            max_second = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            min_second = 0x90;
        else if (c == 0xF4) /* nothing past U+10FFFF */
            max_second = 0x8F;
    } else {
        return 0;
    }
    if (avail < len || s[1] < min_second || s[1] > max_second)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (!is_continuation(s[i]))
            return 0;
    return len;
}

size_t util_utf8_copy(char *out, size_t outlen, const char *s, size_t n)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    size_t w = 0;
    if (outlen == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t len = s ? strnlen(s, n) : 0;
    for (size_t i = 0; i < len;) {
        size_t clen = util_utf8_char_len(p + i, len - i);
        const char *from = clen ? (const char *)p + i : replacement;
        size_t take = clen ? clen : sizeof replacement - 1;
        if (w + take > outlen - 1)
            break;
        memcpy(out + w, from, take);
        w += take;
        i += clen ? clen : 1;
    }
    out[w] = '\0';
    return w;
}

void util_redact_url(const char *url, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    const char *authority = url ? strstr(url, "://") : NULL;
    if (!authority) {
        snprintf(out, outlen, "%s", url ? url : "");
        return;
    }
    authority += 3;
    size_t alen = strcspn(authority, "/?#");
    const char *at = NULL;
    for (const char *p = authority; p < authority + alen; p++)
        if (*p == '@')
            at = p;
    if (!at) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    /* The user name says which account, and is kept; the password goes. */
    const char *colon = memchr(authority, ':', (size_t)(at - authority));
    int keep = colon ? (int)(colon - authority) : 0;
    snprintf(out, outlen, "%.*s%.*s%s%s", (int)(authority - url), url, keep, authority,
             colon ? ":***" : "***", at);
}
