/* appenv: the app's environment for one start — the inherited environment,
 * the emergency set when the supervisor decided on emergency mode, the RESIL_*
 * variables (memory limit and tier, restart count and reason) and the runtime
 * hints (NODE_OPTIONS, GOMEMLIMIT) a memory limit makes. Policy only: the
 * supervisor says what the start is, the memory monitor what memory is. */
#include "resil/appenv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resil/util.h"

#define MIB (UINT64_C(1) << 20)

struct envvec {
    char **v;
    size_t n, cap;
    bool failed;
};

static void env_push(struct envvec *e, char *s)
{
    if (!s || e->failed) {
        e->failed = true;
        free(s);
        return;
    }
    char **v = util_grow(e->v, &e->cap, e->n + 2, sizeof *v);
    if (!v) {
        e->failed = true;
        free(s);
        return;
    }
    e->v = v;
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
}

static char *make_entry(const char *key, size_t klen, const char *value)
{
    size_t vlen = strlen(value);
    char *s = malloc(klen + vlen + 2);
    if (s) {
        memcpy(s, key, klen);
        s[klen] = '=';
        memcpy(s + klen + 1, value, vlen + 1);
    }
    return s;
}

/* Later duplicates of key go, so what the app sees is what was set here. */
static void env_set_n(struct envvec *e, const char *key, size_t klen, const char *value,
                      bool overwrite)
{
    long i = e->v ? util_env_index(e->v, key, klen) : -1;
    if (i >= 0 && !overwrite)
        return;
    char *entry = make_entry(key, klen, value);
    if (i < 0) {
        env_push(e, entry);
        return;
    }
    if (!entry) {
        e->failed = true;
        return;
    }
    free(e->v[i]);
    e->v[i] = entry;
    for (size_t j = (size_t)i + 1; j < e->n;) {
        if (strncmp(e->v[j], key, klen) == 0 && e->v[j][klen] == '=') {
            free(e->v[j]);
            memmove(&e->v[j], &e->v[j + 1], (e->n - j) * sizeof *e->v);
            e->n--;
        } else {
            j++;
        }
    }
}

static void env_set(struct envvec *e, const char *key, const char *value)
{
    env_set_n(e, key, strlen(key), value, true);
}

/* The default set must not clobber what the user gave the container; a set the
 * user spelled out with --emergency-env is meant to win (README, "Memory and emergency mode"). */
static void add_emergency_set(struct envvec *e, const struct appenv_options *o)
{
    for (size_t i = 0; o && i < o->emergency_env_count; i++) {
        const char *kv = o->emergency_env[i];
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (eq && eq > kv)
            env_set_n(e, kv, (size_t)(eq - kv), eq + 1, o->emergency_env_explicit);
    }
}

/* V8 takes "_" and "-" alike in flag names. */
static bool has_old_space_flag(const char *opts)
{
    return strstr(opts, "--max-old-space-size") || strstr(opts, "--max_old_space_size");
}

static void add_runtime_hints(struct envvec *e, uint64_t limit)
{
    char value[64];
    uint64_t node_mib = limit / 4 * 3 / MIB;
    const char *node = util_env_get(e->v, "NODE_OPTIONS");
    if (node_mib && (!node || !*node)) {
        snprintf(value, sizeof value, "--max-old-space-size=%" PRIu64, node_mib);
        env_set(e, "NODE_OPTIONS", value);
    } else if (node_mib && !has_old_space_flag(node)) {
        size_t len = strlen(node) + 64;
        char *joined = malloc(len);
        if (!joined) {
            e->failed = true;
            return;
        }
        snprintf(joined, len, "%s --max-old-space-size=%" PRIu64, node, node_mib);
        env_set(e, "NODE_OPTIONS", joined);
        free(joined);
    }
    /* An empty GOMEMLIMIT means nothing to the Go runtime: treat it as unset. */
    const char *go = util_env_get(e->v, "GOMEMLIMIT");
    if (!go || !*go) {
        snprintf(value, sizeof value, "%" PRIu64, limit / 10 * 9 + limit % 10 * 9 / 10);
        env_set(e, "GOMEMLIMIT", value);
    }
}

char **appenv_build(char **envp, const struct appenv_options *o, const struct appenv_start *start)
{
    struct envvec e = {0};
    char num[32];
    const struct memory_sample *s = start->memory;
    bool limited = s && s->available && s->limited;
    for (size_t i = 0; envp && envp[i]; i++)
        env_push(&e, strdup(envp[i]));
    if (start->emergency)
        add_emergency_set(&e, o);
    /* The RESIL_* set is resil-init's own word and always wins. */
    if (limited)
        snprintf(num, sizeof num, "%" PRIu64, s->limit_bytes / MIB);
    env_set(&e, "RESIL_MEMORY_LIMIT_MB", limited ? num : "");
    env_set(&e, "RESIL_MEMORY_TIER",
            memory_tier_name(s && s->available ? s->tier : MEMORY_TIER_UNKNOWN));
    env_set(&e, "RESIL_EMERGENCY", start->emergency ? "1" : "0");
    snprintf(num, sizeof num, "%u", start->restart_count);
    env_set(&e, "RESIL_RESTART_COUNT", num);
    env_set(&e, "RESIL_RESTART_REASON", start->restart_reason ? start->restart_reason : "start");
    if (limited && o && o->runtime_hints)
        add_runtime_hints(&e, s->limit_bytes);
    if (e.failed || !e.v) {
        appenv_free(e.v);
        return NULL;
    }
    return e.v;
}

void appenv_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}
