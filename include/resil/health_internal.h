/* health.c's pure part, for its unit tests: judging one response. */
#ifndef RESIL_HEALTH_INTERNAL_H
#define RESIL_HEALTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "resil/health.h"

/* Judges one response. verdict_out gets the verdict string found in the body
 * (empty when none). A truncated body is judged by its status code alone. */
enum health_verdict health_judge(long http_status, const char *body, size_t len, bool truncated,
                                 const char *field, char *verdict_out, size_t outlen);

#endif
