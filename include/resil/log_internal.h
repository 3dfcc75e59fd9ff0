/* log.c's pure parts, for its unit tests: level names and text-line escaping. */
#ifndef RESIL_LOG_INTERNAL_H
#define RESIL_LOG_INTERNAL_H

#include <stddef.h>

#include "resil/log.h"

const char *log_level_name(enum log_level level);

/* The same for a text line: control characters as \n, \r, \t or \xHH,
 * invalid UTF-8 bytes as \xHH. */
size_t log_text_escape(char *out, size_t outlen, const char *s);

#endif
