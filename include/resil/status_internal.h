/* status.c's pure part, for its unit tests: a snapshot as JSON text. */
#ifndef RESIL_STATUS_INTERNAL_H
#define RESIL_STATUS_INTERNAL_H

#include "resil/status.h"

/* The JSON text of a snapshot (caller frees). */
char *status_to_json(const struct status_snapshot *s);

#endif
