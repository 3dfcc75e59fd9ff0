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

/* The whole environment is one allocation: the vector, then the text of the
 * entries made here. Inherited entries are pointed to, not copied, so a start
 * costs one malloc however long the container's environment is. */
struct envvec {
    char **v;
    size_t n, cap;
    char *text; /* room left for made entries */
    size_t text_left;
    bool failed;
};

/* Room for the RESIL_* set: the longest name, '=', a 20-digit number, NUL. */
#define RESIL_ENTRY_MAX 64
#define RESIL_ENTRIES 5
/* NODE_OPTIONS gains " --max-old-space-size=N", GOMEMLIMIT is a number. */
#define HINT_ENTRY_MAX 64
#define HINT_ENTRIES 2

static void env_push(struct envvec *e, char *s)
{
    if (!s || e->failed || e->n + 1 >= e->cap) {
        e->failed = true;
        return;
    }
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
}

/* len bytes of the text room, or NULL (counted wrong: the build fails). */
static char *take(struct envvec *e, size_t len)
{
    if (len > e->text_left)
        return NULL;
    char *s = e->text;
    e->text += len;
    e->text_left -= len;
    return s;
}

static char *make_entry(struct envvec *e, const char *key, size_t klen, const char *value)
{
    size_t vlen = strlen(value);
    char *s = take(e, klen + vlen + 2);
    if (s) {
        memcpy(s, key, klen);
        s[klen] = '=';
        memcpy(s + klen + 1, value, vlen + 1);
    }
    return s;
}

/* entry ("KEY=...", klen the length of KEY) takes the first KEY's place and
 * later duplicates go, so what the app sees is what was set here. */
static void env_put(struct envvec *e, char *entry, size_t klen)
{
    long i = entry ? util_env_index(e->v, entry, klen) : -1;
    if (!entry || i < 0) {
        env_push(e, entry);
        return;
    }
    e->v[i] = entry;
    for (size_t j = (size_t)i + 1; j < e->n;) {
        if (strncmp(e->v[j], entry, klen) == 0 && e->v[j][klen] == '=') {
            memmove(&e->v[j], &e->v[j + 1], (e->n - j) * sizeof *e->v);
            e->n--;
        } else {
            j++;
        }
    }
}

static void env_set_n(struct envvec *e, const char *key, size_t klen, const char *value,
                      bool overwrite)
{
    if (!overwrite && util_env_index(e->v, key, klen) >= 0)
        return;
    env_put(e, make_entry(e, key, klen, value), klen);
}

static void env_set(struct envvec *e, const char *key, const char *value)
{
    env_set_n(e, key, strlen(key), value, true);
}

static bool names(const char *entry, const char *key)
{
    size_t klen = strlen(key);
    return strncmp(entry, key, klen) == 0 && entry[klen] == '=';
}

/* Vector slots and text bytes for this start, counted before the one malloc:
 * made entries are the emergency set, the RESIL_* set and the hints, which
 * may extend a NODE_OPTIONS from the environment or from the emergency set. */
static bool env_reserve(struct envvec *e, char *const *envp, const struct appenv_options *o,
                        const struct appenv_start *start)
{
    size_t slots = RESIL_ENTRIES + HINT_ENTRIES + 1, text = RESIL_ENTRIES * RESIL_ENTRY_MAX;
    size_t node_options = 0;
    for (size_t i = 0; envp && envp[i]; i++, slots++)
        if (names(envp[i], "NODE_OPTIONS"))
            node_options += strlen(envp[i]);
    for (size_t i = 0; start->emergency && o && i < o->emergency_env_count; i++, slots++) {
        size_t len = o->emergency_env[i] ? strlen(o->emergency_env[i]) : 0;
        text += len + 1;
        if (len && names(o->emergency_env[i], "NODE_OPTIONS"))
            node_options += len;
    }
    if (o && o->runtime_hints)
        text += HINT_ENTRIES * HINT_ENTRY_MAX + node_options;
    text += start->restart_reason ? strlen(start->restart_reason) : 0;
    e->v = malloc(slots * sizeof *e->v + text);
    if (!e->v)
        return false;
    e->cap = slots;
    e->v[0] = NULL;
    e->text = (char *)(e->v + slots);
    e->text_left = text;
    return true;
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
        size_t klen = strlen("NODE_OPTIONS"), len = klen + strlen(node) + HINT_ENTRY_MAX;
        char *entry = take(e, len);
        if (entry)
            snprintf(entry, len, "NODE_OPTIONS=%s --max-old-space-size=%" PRIu64, node, node_mib);
        env_put(e, entry, klen);
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
    if (!env_reserve(&e, envp, o, start))
        return NULL;
    for (size_t i = 0; envp && envp[i]; i++)
        env_push(&e, envp[i]);
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
    if (e.failed) {
        free(e.v);
        return NULL;
    }
    return e.v;
}

void appenv_free(char **env)
{
    free(env);
}
