/* resil-init's own log: levels, text and JSON lines, time stamps and JSON
 * escaping. One write(2) per line so lines from resil-init never
 * interleave mid-line with the app's output on a shared stderr. */
#include "resil/log.h"
#include "resil/log_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "resil/util.h"

#define LOG_LINE_MAX 4096

static enum log_level current_level = LOG_LEVEL_INFO;
static enum log_format current_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_setup(enum log_level level, enum log_format format)
{
    current_level = level;
    current_format = format;
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

size_t log_json_escape(char *out, size_t outlen, const char *s)
{
    size_t n = 0;
    if (outlen == 0)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t elen;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : 't';
            elen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            elen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else {
            esc[0] = (char)c;
            elen = 1;
        }
        if (n + elen >= outlen)
            break;
        memcpy(out + n, esc, elen);
        n += elen;
    }
    out[n] = '\0';
    return n;
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

static void append_json_string(char *buf, size_t cap, size_t *len, const char *s)
{
    append(buf, cap, len, "\"");
    if (*len < cap - 1)
        *len += log_json_escape(buf + *len, cap - *len, s);
    append(buf, cap, len, "\"");
}

static size_t format_json(char *buf, size_t cap, enum log_level level, const char *msg,
                          const struct log_field *fields, size_t nfields)
{
    char ts[40];
    size_t len = 0;
    log_format_time(ts, sizeof ts, util_realtime_ms());
    append(buf, cap, &len, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, log_level_name(level));
    append_json_string(buf, cap, &len, msg);
    for (size_t i = 0; i < nfields; i++) {
        append(buf, cap, &len, ",");
        append_json_string(buf, cap, &len, fields[i].key);
        append(buf, cap, &len, ":");
        if (fields[i].str)
            append_json_string(buf, cap, &len, fields[i].str);
        else
            append(buf, cap, &len, "%lld", fields[i].num);
    }
    /* A line cut short must still be a JSON object. */
    if (len > cap - 3)
        len = cap - 3;
    buf[len++] = '}';
    buf[len++] = '\n';
    return len;
}

static size_t format_text(char *buf, size_t cap, enum log_level level, const char *msg)
{
    size_t len = 0;
    append(buf, cap, &len, "resil-init[%d]: %s: %s", (int)getpid(), log_level_name(level), msg);
    if (len > cap - 2)
        len = cap - 2;
    buf[len++] = '\n';
    return len;
}

void log_emit(enum log_level level, bool force, const struct log_field *fields, size_t nfields,
              const char *fmt, ...)
{
    if (!force && !log_enabled(level))
        return;
    int saved_errno = errno;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char line[LOG_LINE_MAX + 512];
    size_t len = current_format == LOG_FORMAT_JSON
                     ? format_json(line, sizeof line, level, msg, fields, nfields)
                     : format_text(line, sizeof line, level, msg);
    /* A log line that cannot be written has nowhere to be reported. */
    (void)util_write_all(STDERR_FILENO, line, len);
    errno = saved_errno;
}
