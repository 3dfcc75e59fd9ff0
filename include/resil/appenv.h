/* appenv: the environment the app is started with — inherited variables,
 * the emergency set, RESIL_* variables and runtime hints. */
#ifndef RESIL_APPENV_H
#define RESIL_APPENV_H

#include <stdbool.h>
#include <stddef.h>

#include "resil/memory.h"

/* The options that shape it (--emergency-env, --runtime-hints). */
struct appenv_options {
    char **emergency_env; /* KEY=VALUE strings */
    size_t emergency_env_count;
    bool emergency_env_explicit; /* the user's own set wins over inherited values */
    bool runtime_hints;
};

/* What this start is, as the supervisor decided it. */
struct appenv_start {
    const struct memory_sample *memory; /* NULL when unknown */
    bool emergency;
    unsigned restart_count;
    const char *restart_reason; /* NULL: "start" */
};

/* envp + the emergency set (when emergency) + RESIL_* + runtime hints. Returns a
 * NULL-terminated malloc'd vector of malloc'd strings (free with appenv_free);
 * NULL only when out of memory. */
char **appenv_build(char **envp, const struct appenv_options *o, const struct appenv_start *start);
void appenv_free(char **env);

#endif
