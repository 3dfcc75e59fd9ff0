/* Small helpers several modules need the same way: bounded whole-file reads,
 * write-all, growable arrays, overflow-checked decimal numbers, KEY=VALUE
 * vectors, outside text as valid UTF-8, URLs shown without their password,
 * and the wall clock. Each does one thing and leaves errno as the
 * failing call set it. */
#ifndef RESIL_UTIL_H
#define RESIL_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* --- reading files whole ---
 * Files are opened O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY and read to
 * end of file, never by st_size (0 on /proc and cgroup files). O_NONBLOCK
 * keeps a FIFO planted where a file was expected from hanging the caller: one
 * without a writer reads as empty, one whose writer is silent fails EAGAIN. */
#define UTIL_READ_REGULAR 1u  /* anything but a regular file fails with EINVAL */
#define UTIL_READ_NOFOLLOW 2u /* a symlink as the last component fails with ELOOP */
#define UTIL_READ_WAIT 4u     /* a pipe or FIFO is waited on (a config from <(...)) */

/* Reads up to cap - 1 bytes of path into buf (cap > 0), NUL-terminated; the
 * rest of a longer file is not read. Returns the length, or -1 with errno. */
ssize_t util_read_into(const char *path, char *buf, size_t cap, unsigned flags);

/* The whole file as a malloc'd NUL-terminated string (length in *len when len
 * is not NULL); NULL with errno, EFBIG when it holds more than max bytes. */
char *util_read_file(const char *path, size_t max, unsigned flags, size_t *len);

/* write(2) until all of buf is written, through EINTR and short writes.
 * 0, or -1 with errno (EIO when the file takes no more bytes). */
int util_write_all(int fd, const void *buf, size_t len);

/* --- growable arrays ---
 * Room for at least need items of size bytes in items (NULL: none yet), whose
 * capacity is *cap: returns the array, moved or not, with *cap updated; or
 * NULL with errno ENOMEM, items and *cap untouched. Capacity doubles from 8. */
void *util_grow(void *items, size_t *cap, size_t need, size_t size);

/* --- numbers, by hand so no locale changes them --- */

/* Decimal digits at *p, advancing past them. -1 with errno EINVAL when there
 * are none, ERANGE when the value passes 2^64 - 1 (*p is then not moved). */
int util_digits_u64(const char **p, uint64_t *out);

/* s is digits only and its value at most max. 0, or -1 with errno. */
int util_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* A non-negative decimal "12", "12.5" or ".5": the whole part, and the first
 * fraction digits (up to frac_scale_max, a power of ten) as frac / scale. */
struct util_decimal {
    uint64_t whole;
    uint64_t frac;
    uint64_t scale; /* 10^(fraction digits kept); 1 when none */
    bool has_frac;
};
/* At *p, advancing past it. -1 with errno EINVAL or ERANGE, *p not moved. */
int util_read_decimal(const char **p, uint64_t frac_scale_max, struct util_decimal *d);

/* --- KEY=VALUE vectors (environments) --- */

/* Index of the first entry of the NULL-terminated vector env whose key is the
 * klen bytes at key, or -1. */
long util_env_index(char *const *env, const char *key, size_t klen);
/* The value of key (NUL-terminated) in env, or NULL when absent. */
const char *util_env_get(char *const *env, const char *key);

/* --- text from outside, as UTF-8 ---
 * Health endpoints, cgroup trees and status files are not ours: what they say
 * is copied into status.json and JSON logs only as valid UTF-8. */

/* Bytes of the valid UTF-8 character at s (1 to 4, at most avail), or 0 when
 * s does not start one (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or cut short). */
size_t util_utf8_char_len(const unsigned char *s, size_t avail);

/* The first n bytes of s (up to a NUL) into out as valid UTF-8, NUL-terminated:
 * an invalid byte becomes U+FFFD, and a character that does not fit in
 * outlen - 1 bytes is left out whole, never cut. Returns the bytes written. */
size_t util_utf8_copy(char *out, size_t outlen, const char *s, size_t n);

/* url with the password of its user information replaced by "***"
 * ("http://user:***@host/"; a user part alone, often a token, is all "***"),
 * for every place a URL given on the command line is shown. */
void util_redact_url(const char *url, char *out, size_t outlen);

/* --- time --- */

/* CLOCK_REALTIME in milliseconds: timestamps for people, never for timeouts
 * (the loop's monotonic loop_now_ms is for those). */
/* clock_gettime without the vDSO (see util.c for why). */
void util_clock(clockid_t clock, struct timespec *ts);
long long util_realtime_ms(void);

/* --- the forwarding path: few pages, straight to the kernel ---
 * After a long sleep, every page the way from a signal's wake-up to its
 * kill() touches is one more chance of a stall (a cold TLB, a page the
 * hypervisor has taken back). So the functions on that way are UTIL_HOT (kept
 * together in .text.hot), and it makes its system calls itself: musl's
 * wrappers sit in pages of their own, and read() and epoll_wait() also pass
 * through its cancellation code. util_sys6 returns what the kernel does: the
 * result, or -errno. */
#define UTIL_HOT __attribute__((hot))

static inline long util_sys6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory", "cc");
    return x0;
#else
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
#endif
}

#endif
