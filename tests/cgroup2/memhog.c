/* memhog: the memory hog of the cgroup v2 scenarios (tests/cgroup2/run.sh).
 *
 *   memhog [-k DIE_MS] MAX_MIB STEP_MIB STEP_MS LIFETIME_MS
 *
 * Allocates and touches STEP_MIB every STEP_MS until it holds MAX_MIB, then
 * keeps it; exits 0 LIFETIME_MS after its start (0: never), at the first look
 * at the clock after that: a cgroup over memory.high can hold it in the kernel
 * for up to 2 s at a time. -k: dies of SIGALRM DIE_MS after its start, which a
 * throttled process cannot postpone (a fatal signal ends the kernel's penalty
 * sleep): a hog that is gone before a given time. It prints
 * "memhog: holding N MiB" after each step, "memhog: got SIGUSR1" when that
 * signal comes (what --pressure-signal sends) and ends with status 0 on
 * SIGTERM, so the scenarios can tell from its output what it went through.
 * Under a cgroup limit the kernel may OOM-kill it instead: that is the point.
 * Static (musl) so it runs in the test VM's busybox initramfs. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)

static volatile sig_atomic_t got_usr1, got_term;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_term = 1;
}

static void say(const char *text)
{
    size_t len = strlen(text);
    while (len) {
        ssize_t n = write(STDOUT_FILENO, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        text += n;
        len -= (size_t)n;
    }
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int parse_arg(const char *text, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* Sleeps up to ms, waking early for a signal so SIGUSR1 and SIGTERM are seen at once. */
static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void report_signals(void)
{
    if (got_usr1) {
        got_usr1 = 0;
        say("memhog: got SIGUSR1\n");
    }
    if (got_term) {
        say("memhog: got SIGTERM, exiting\n");
        exit(0);
    }
}

static void grow(long step_mib)
{
    /* volatile: stores into memory nobody reads would be optimised away */
    volatile char *chunk = malloc((size_t)(step_mib * MIB));
    if (!chunk) {
        say("memhog: malloc failed\n");
        exit(1);
    }
    /* one write per page makes the memory resident and charged to the cgroup */
    for (long off = 0; off < step_mib * MIB; off += 4096)
        chunk[off] = (char)off;
}

int main(int argc, char **argv)
{
    long max_mib, step_mib, step_ms, lifetime_ms, die_ms = 0, held = 0;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-k") == 0) {
        if (parse_arg(argv[2], &die_ms) || die_ms == 0)
            argc = 0; /* usage error below */
        first = 3;
    }
    if (argc != first + 4 || parse_arg(argv[first], &max_mib) ||
        parse_arg(argv[first + 1], &step_mib) || parse_arg(argv[first + 2], &step_ms) ||
        parse_arg(argv[first + 3], &lifetime_ms) || step_mib == 0) {
        fprintf(stderr, "usage: memhog [-k DIE_MS] MAX_MIB STEP_MIB STEP_MS LIFETIME_MS\n");
        return 2;
    }
    if (die_ms) {
        struct itimerval when = {.it_value = {die_ms / 1000, (die_ms % 1000) * 1000}};
        setitimer(ITIMER_REAL, &when, NULL); /* SIGALRM keeps its default: death */
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    long start = now_ms();
    for (;;) {
        report_signals();
        long elapsed = now_ms() - start;
        if (lifetime_ms && elapsed >= lifetime_ms) {
            say("memhog: lifetime over, exiting\n");
            return 0;
        }
        if (held < max_mib) {
            long step = max_mib - held < step_mib ? max_mib - held : step_mib;
            grow(step);
            held += step;
            char line[64];
            snprintf(line, sizeof line, "memhog: holding %ld MiB\n", held);
            say(line);
            nap(step_ms);
            continue;
        }
        long left = lifetime_ms ? lifetime_ms - elapsed : 1000;
        nap(left < 1000 ? left : 1000);
    }
}
