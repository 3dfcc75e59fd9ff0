/* Logging: resil-init's own lines on stderr, as text or one JSON object a line. */
#ifndef RESIL_LOG_H
#define RESIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* An extra key of a JSON log line (text lines carry the message alone). */
struct log_field {
    const char *key;
    const char *str; /* used when non-NULL */
    long long num;   /* used when str is NULL */
};

void log_setup(enum log_level level, enum log_format format);
bool log_enabled(enum log_level level);

/* force: written whatever the level (the exit reason line is). */
void log_emit(enum log_level level, bool force, const struct log_field *fields, size_t nfields,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_error(...) log_emit(LOG_LEVEL_ERROR, false, NULL, 0, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_LEVEL_WARN, false, NULL, 0, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LEVEL_INFO, false, NULL, 0, __VA_ARGS__)
#define log_debug(...) log_emit(LOG_LEVEL_DEBUG, false, NULL, 0, __VA_ARGS__)

/* RFC 3339 UTC time with milliseconds of a CLOCK_REALTIME value in ms. */
void log_format_time(char *out, size_t outlen, long long realtime_ms);

/* s as a JSON string body (no quotes) in out, the way JSON log lines carry it
 * (status.json too): escaped as needed, invalid UTF-8 replaced by U+FFFD.
 * Returns the bytes written, never more than outlen - 1, always
 * NUL-terminated, never cut inside a character or an escape. */
size_t log_json_escape(char *out, size_t outlen, const char *s);

#endif
