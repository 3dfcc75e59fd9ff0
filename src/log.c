/* resil-init's own log: levels, text and JSON lines, time stamps and JSON
 * escaping. One write(2) per line so lines from resil-init never
 * interleave mid-line with the app's output on a shared stderr. */
#include "resil/log.h"
#include "resil/log_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "resil/util.h"

#define LOG_LINE_MAX 4096

static enum log_level current_level = LOG_LEVEL_INFO;
static enum log_format current_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* resil-init's own pid, taken once: every text line carries it, and a
 * getpid(2) per line is a system call on the way to each. No child of
 * resil-init ever logs (the app is exec'd at once), so it cannot go stale. */
static pid_t own_pid;

void log_setup(enum log_level level, enum log_format format)
{
    current_level = level;
    current_format = format;
    own_pid = getpid();
}

bool log_enabled(enum log_level level)
{
    return level <= current_level;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LEVEL_DEBUG)
        return "info";
    return level_names[level];
}

void log_format_time(char *out, size_t outlen, long long realtime_ms)
{
    time_t secs = (time_t)(realtime_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(realtime_ms % 1000));
}

/* One character of s as it goes into a line: valid UTF-8 as it is, control
 * characters and invalid bytes escaped by the format's rules. *used is the
 * bytes of s consumed; returns the length of the text in esc. */
typedef size_t (*escape_fn)(const unsigned char *s, size_t avail, char esc[8], size_t *used);

static size_t escape_json_char(const unsigned char *s, size_t avail, char esc[8], size_t *used)
{
    unsigned char c = s[0];
    size_t clen = util_utf8_char_len(s, avail);
    *used = clen ? clen : 1;
    if (!clen) /* JSON text must be UTF-8: an invalid byte becomes U+FFFD */
        return (size_t)snprintf(esc, 8, "\\ufffd");
    if (clen > 1) {
        memcpy(esc, s, clen);
        return clen;
    }
    if (c == '"' || c == '\\')
        return (size_t)snprintf(esc, 8, "\\%c", c);
    if (c == '\n')
        return (size_t)snprintf(esc, 8, "\\n");
    if (c == '\t')
        return (size_t)snprintf(esc, 8, "\\t");
    if (c < 0x20 || c == 0x7f)
        return (size_t)snprintf(esc, 8, "\\u%04x", c);
    esc[0] = (char)c;
    return 1;
}

/* A text line is one line: a newline, carriage return or escape sequence from
 * an endpoint's verdict must not start a forged line of its own or rewrite the
 * terminal, so control characters and invalid bytes are shown escaped. */
static size_t escape_text_char(const unsigned char *s, size_t avail, char esc[8], size_t *used)
{
    unsigned char c = s[0];
    size_t clen = util_utf8_char_len(s, avail);
    *used = clen ? clen : 1;
    if (clen > 1) {
        memcpy(esc, s, clen);
        return clen;
    }
    if (c == '\n')
        return (size_t)snprintf(esc, 8, "\\n");
    if (c == '\r')
        return (size_t)snprintf(esc, 8, "\\r");
    if (c == '\t')
        return (size_t)snprintf(esc, 8, "\\t");
    if (!clen || c < 0x20 || c == 0x7f)
        return (size_t)snprintf(esc, 8, "\\x%02x", c);
    esc[0] = (char)c;
    return 1;
}

/* Escapes s into out (at most outlen - 1 bytes, NUL-terminated); a character
 * whose escape does not fit is left out whole. */
static size_t escape_into(char *out, size_t outlen, const char *s, escape_fn escape)
{
    size_t n = 0;
    if (outlen == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left > 0) {
        char esc[8];
        size_t used;
        size_t elen = escape(p, left, esc, &used);
        if (n + elen >= outlen)
            break;
        memcpy(out + n, esc, elen);
        n += elen;
        p += used;
        left -= used;
    }
    out[n] = '\0';
    return n;
}

size_t log_json_escape(char *out, size_t outlen, const char *s)
{
    return escape_into(out, outlen, s, escape_json_char);
}

size_t log_text_escape(char *out, size_t outlen, const char *s)
{
    return escape_into(out, outlen, s, escape_text_char);
}

/* Appends printf output to buf at *len, never past cap - 1. */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

/* Room is kept for the closing quote and the line's "}\n": a line cut short
 * is still one JSON object. */
static void append_json_string(char *buf, size_t cap, size_t *len, const char *s)
{
    if (*len + 5 > cap)
        return;
    buf[(*len)++] = '"';
    *len += log_json_escape(buf + *len, cap - *len - 3, s);
    buf[(*len)++] = '"';
    buf[*len] = '\0';
}

static size_t format_json(char *buf, size_t cap, enum log_level level, const char *msg,
                          const struct log_field *fields, size_t nfields)
{
    char ts[40];
    size_t len = 0;
    log_format_time(ts, sizeof ts, util_realtime_ms());
    append(buf, cap - 2, &len, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts,
           log_level_name(level));
    append_json_string(buf, cap - 2, &len, msg);
    for (size_t i = 0; i < nfields; i++) {
        /* A field that does not fit whole is left out, not cut mid-way. */
        size_t before = len;
        char num[32];
        append(buf, cap - 2, &len, ",");
        append_json_string(buf, cap - 2, &len, fields[i].key);
        append(buf, cap - 2, &len, ":");
        if (fields[i].str) {
            append_json_string(buf, cap - 2, &len, fields[i].str);
        } else {
            snprintf(num, sizeof num, "%lld", fields[i].num);
            append(buf, cap - 2, &len, "%s", num);
        }
        if (len >= cap - 3)
            len = before;
    }
    buf[len++] = '}';
    buf[len++] = '\n';
    return len;
}

static size_t format_text(char *buf, size_t cap, enum log_level level, const char *msg)
{
    size_t len = 0;
    append(buf, cap, &len, "resil-init[%d]: %s: ", (int)(own_pid ? own_pid : getpid()),
           log_level_name(level));
    len += log_text_escape(buf + len, cap - len - 1, msg);
    buf[len++] = '\n';
    return len;
}

/* ---- writing without blocking ----
 * A log reader that stops reading must not stop PID 1 (no signal forwarded,
 * no child reaped until it drains). stderr is usually shared with the app, so
 * O_NONBLOCK is never set on that open file description (the app would get
 * EAGAIN on its own writes). Instead each line is written so that it cannot
 * block, by what stderr is:
 * - a pipe or FIFO: through a descriptor of our own onto the same pipe,
 *   opened O_NONBLOCK via /proc/self/fd/2 (a new open file description);
 *   without /proc, after poll() says there is room;
 * - a socket: send() with MSG_DONTWAIT, a per-call flag;
 * - a terminal or other device: after poll() says there is room;
 * - a regular file: as it is (a disk write does not wait for a reader).
 * Lines are at most PIPE_BUF bytes, so a pipe takes each whole or not at all.
 * A line that cannot be written now is dropped and counted; the count is
 * reported in a line of its own as soon as stderr takes one again. */

enum sink { SINK_UNKNOWN, SINK_PLAIN, SINK_OWN_FD, SINK_SOCKET, SINK_POLL };

static enum sink sink = SINK_UNKNOWN;
static int sink_fd = STDERR_FILENO;
static unsigned long long dropped;

static void choose_sink(void)
{
    struct stat st;
    sink = SINK_PLAIN;
    sink_fd = STDERR_FILENO;
    if (fstat(STDERR_FILENO, &st) < 0 || S_ISREG(st.st_mode))
        return;
    if (S_ISSOCK(st.st_mode)) {
        sink = SINK_SOCKET;
        return;
    }
    if (S_ISFIFO(st.st_mode)) {
        int fd = openat(AT_FDCWD, "/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            sink = SINK_OWN_FD;
            sink_fd = fd;
            return;
        }
    }
    sink = SINK_POLL;
}

/* 1 written whole, 0 no room now, -1 failed otherwise. */
static int write_line(const char *line, size_t len)
{
    if (sink == SINK_UNKNOWN)
        choose_sink();
    ssize_t n;
    do {
        if (sink == SINK_POLL) {
            struct pollfd pfd = {.fd = sink_fd, .events = POLLOUT};
            int ready = poll(&pfd, 1, 0);
            if (ready == 0)
                return 0;
            if (ready < 0 && errno != EINTR)
                return -1;
        }
        if (sink == SINK_SOCKET)
            n = send(sink_fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            n = write(sink_fd, line, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    /* A short write (a terminal, a socket) leaves half a line: end it. */
    if ((size_t)n < len && sink != SINK_PLAIN)
        (void)write(sink_fd, "\n", 1);
    else if ((size_t)n < len)
        (void)util_write_all(sink_fd, line + n, len - (size_t)n);
    return 1;
}

/* Lines are made in these, not on the stack: a log call is then a shallow
 * frame, and every run's first line does not fault in 12 KiB of fresh stack.
 * PID 1 is single-threaded and nothing logs while a line is being made. */
static char line_buf[PIPE_BUF];
static char msg_buf[LOG_LINE_MAX];

__attribute__((noinline)) static void report_dropped(void)
{
    char line[PIPE_BUF];
    char msg[128];
    snprintf(msg, sizeof msg, "%llu log line%s dropped: stderr was not being read", dropped,
             dropped == 1 ? "" : "s");
    size_t len = current_format == LOG_FORMAT_JSON
                     ? format_json(line, sizeof line, LOG_LEVEL_WARN, msg, NULL, 0)
                     : format_text(line, sizeof line, LOG_LEVEL_WARN, msg);
    if (write_line(line, len) == 1)
        dropped = 0;
}

static void emit_line(const char *line, size_t len)
{
    if (dropped)
        report_dropped();
    if (dropped) {
        dropped++;
        return;
    }
    if (write_line(line, len) == 0)
        dropped++;
}

void log_emit(enum log_level level, bool force, const struct log_field *fields, size_t nfields,
              const char *fmt, ...)
{
    if (!force && !log_enabled(level))
        return;
    int saved_errno = errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg_buf, sizeof msg_buf, fmt, ap);
    va_end(ap);

    size_t len = current_format == LOG_FORMAT_JSON
                     ? format_json(line_buf, sizeof line_buf, level, msg_buf, fields, nfields)
                     : format_text(line_buf, sizeof line_buf, level, msg_buf);
    emit_line(line_buf, len);
    errno = saved_errno;
}
