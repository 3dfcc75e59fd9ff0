/* log.c's pure parts, for its unit tests: level names and JSON escaping. */
#ifndef RESIL_LOG_INTERNAL_H
#define RESIL_LOG_INTERNAL_H

#include <stddef.h>

#include "resil/log.h"

const char *log_level_name(enum log_level level);

/* Appends s to out as a JSON string body (no quotes), escaping as needed and
 * replacing invalid UTF-8 by U+FFFD; returns the bytes written, never more
 * than outlen - 1, always NUL-terminated, never cut inside a character or an
 * escape. */
size_t log_json_escape(char *out, size_t outlen, const char *s);
/* The same for a text line: control characters as \n, \r, \t or \xHH,
 * invalid UTF-8 bytes as \xHH. */
size_t log_text_escape(char *out, size_t outlen, const char *s);

#endif
