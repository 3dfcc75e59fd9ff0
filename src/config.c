/* Configuration: one option table feeds the command line, the RESIL_* environment
 * and the JSON config file, so the three ways in cannot drift apart. Sources are
 * applied lowest precedence first (file, environment, flags): a later scalar
 * simply overwrites, and a repeatable option is emptied the first time a higher
 * source touches it, so the highest source giving a list replaces the others. */
#include "resil/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

/* A config file is a handful of keys; anything bigger is a mistake, not a config. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Far below what a nanosecond timespec holds, so callers may convert freely. */
#define DURATION_MAX_MS (UINT64_C(100) * 365 * 24 * 3600 * 1000)
/* Fraction digits kept: enough for ms of hours, and frac * unit cannot overflow. */
#define FRACTION_SCALE_MAX 1000000
#define VERBOSE_MAX 100

enum opt_id {
    OPT_SUBREAPER,
    OPT_SINGLE_CHILD,
    OPT_REMAP_EXIT,
    OPT_PDEATH_SIGNAL,
    OPT_REWRITE,
    OPT_GRACE,
    OPT_RESTART,
    OPT_MAX_RESTARTS,
    OPT_RESTART_WINDOW,
    OPT_BACKOFF,
    OPT_STATE_DIR,
    OPT_TERMINATION_LOG,
    OPT_HEALTH_URL,
    OPT_HEALTH_UNIX_SOCKET,
    OPT_HEALTH_INTERVAL,
    OPT_HEALTH_TIMEOUT,
    OPT_HEALTH_START_PERIOD,
    OPT_HEALTH_RETRIES,
    OPT_HEALTH_JSON_FIELD,
    OPT_ON_UNHEALTHY,
    OPT_CGROUP_ROOT,
    OPT_MEMORY_WARN,
    OPT_MEMORY_CRITICAL,
    OPT_MEMORY_RESTART,
    OPT_MEMORY_RESTART_FOR,
    OPT_MEMORY_INTERVAL,
    OPT_EMERGENCY_ENV,
    OPT_PRESSURE_SIGNAL,
    OPT_RUNTIME_HINTS,
    OPT_VERBOSE,
    OPT_LOG_LEVEL,
    OPT_LOG_FORMAT,
    OPT_CONFIG,
    OPT_CHECK_CONFIG,
    OPT_HELP,
    OPT_VERSION,
    OPT_COUNT
};

const struct config_option config_options[OPT_COUNT] = {
    [OPT_SUBREAPER] = {"subreaper", 's', NULL, false, "Init", "on",
                       "tini compatibility; subreaper is automatic when not PID 1"},
    [OPT_SINGLE_CHILD] = {"single-child", 'c', NULL, false, "Init", "off",
                          "signal the app alone, not its process group"},
    [OPT_REMAP_EXIT] = {"remap-exit", 'e', "CODE", true, "Init", "none",
                        "report an app exit status CODE as 0 (tini -e)"},
    [OPT_PDEATH_SIGNAL] = {"pdeath-signal", 'p', "SIG", false, "Init", "none",
                           "signal resil-init gets when its parent dies (tini -p)"},
    [OPT_REWRITE] = {"rewrite", 'r', "FROM:TO", true, "Init", "none",
                     "forward signal FROM as TO; TO 0 drops it (dumb-init -r)"},
    [OPT_GRACE] = {"grace", 0, "DURATION", false, "Init", "8s",
                   "after SIGTERM, time before the app's group gets SIGKILL"},
    [OPT_RESTART] = {"restart", 0, "P", false, "Supervision", "no",
                     "restart policy: no, on-failure or always"},
    [OPT_MAX_RESTARTS] = {"max-restarts", 0, "N", false, "Supervision", "5",
                          "restarts allowed inside --restart-window before giving up"},
    [OPT_RESTART_WINDOW] = {"restart-window", 0, "DURATION", false, "Supervision", "10m",
                            "sliding window for --max-restarts"},
    [OPT_BACKOFF] = {"backoff", 0, "MIN[:MAX]", false, "Supervision", "1s:30s",
                     "delay before a restart, doubling from MIN to MAX"},
    [OPT_STATE_DIR] = {"state-dir", 0, "DIR", false, "Supervision",
                       "/run/resil-init, else $TMPDIR/resil-init", "where status.json is kept"},
    [OPT_TERMINATION_LOG] = {"termination-log", 0, "PATH", false, "Supervision",
                             "/dev/termination-log when it exists",
                             "gets the one-line exit reason"},
    [OPT_HEALTH_URL] = {"health-url", 0, "URL", false, "Health checks", "none",
                        "http:// URL to check; enables the health loop"},
    [OPT_HEALTH_UNIX_SOCKET] = {"health-unix-socket", 0, "PATH", false, "Health checks", "none",
                                "send the health request over this Unix socket"},
    [OPT_HEALTH_INTERVAL] = {"health-interval", 0, "DURATION", false, "Health checks", "30s",
                             "time between the starts of two checks"},
    [OPT_HEALTH_TIMEOUT] = {"health-timeout", 0, "DURATION", false, "Health checks", "5s",
                            "a check taking longer fails"},
    [OPT_HEALTH_START_PERIOD] = {"health-start-period", 0, "DURATION", false, "Health checks", "0s",
                                 "failures in this period after a start do not count"},
    [OPT_HEALTH_RETRIES] = {"health-retries", 0, "N", false, "Health checks", "3",
                            "consecutive failures that make the app unhealthy"},
    [OPT_HEALTH_JSON_FIELD] = {"health-json-field", 0, "NAME", false, "Health checks",
                               "status, then overall_status", "JSON field holding the verdict"},
    [OPT_ON_UNHEALTHY] = {"on-unhealthy", 0, "A", false, "Health checks", "restart",
                          "restart (when --restart allows, else exit) or exit"},
    [OPT_CGROUP_ROOT] = {"cgroup-root", 0, "DIR", false, "Memory", "found from /proc/self/cgroup",
                         "directory of the cgroup's memory files"},
    [OPT_MEMORY_WARN] = {"memory-warn", 0, "SIZE", false, "Memory", "75%",
                         "working set at or above this is tier warning"},
    [OPT_MEMORY_CRITICAL] = {"memory-critical", 0, "SIZE", false, "Memory", "85%",
                             "working set at or above this is tier critical"},
    [OPT_MEMORY_RESTART] = {"memory-restart", 0, "SIZE", false, "Memory", "off",
                            "restart the app when the working set stays above this"},
    [OPT_MEMORY_RESTART_FOR] = {"memory-restart-for", 0, "DURATION", false, "Memory", "30s",
                                "how long it must stay above --memory-restart"},
    [OPT_MEMORY_INTERVAL] = {"memory-interval", 0, "DURATION", false, "Memory", "5s",
                             "sampling period of the working set"},
    [OPT_EMERGENCY_ENV] = {"emergency-env", 0, "KEY=VALUE", true, "Memory", "EMERGENCY_MODE=true",
                           "set in the app's environment in emergency mode"},
    [OPT_PRESSURE_SIGNAL] = {"pressure-signal", 0, "SIG", false, "Memory", "none",
                             "sent to the app when the memory tier rises while it runs"},
    [OPT_RUNTIME_HINTS] = {"runtime-hints", 0, NULL, false, "Memory", "off",
                           "size Node.js (NODE_OPTIONS) and Go (GOMEMLIMIT) to the limit"},
    [OPT_VERBOSE] = {"verbose", 'v', NULL, true, "Output", NULL,
                     "one log level more verbose per use"},
    [OPT_LOG_LEVEL] = {"log-level", 0, "L", false, "Output", "info", "error, warn, info or debug"},
    [OPT_LOG_FORMAT] = {"log-format", 0, "F", false, "Output", "text",
                        "text or json (one JSON object per line)"},
    [OPT_CONFIG] = {"config", 0, "FILE", false, "Other", "none",
                    "JSON file whose keys are the long option names"},
    [OPT_CHECK_CONFIG] = {"check-config", 0, NULL, false, "Other", "off",
                          "print the effective settings as JSON and exit"},
    [OPT_HELP] = {"help", 'h', NULL, false, "Other", NULL, "print this help and exit"},
    [OPT_VERSION] = {"version", 0, NULL, false, "Other", NULL, "print the version and exit"},
};

const size_t config_option_count = OPT_COUNT;

/* How a value is spelled, which decides the JSON types a config file may use. */
enum opt_kind { KIND_SWITCH, KIND_COUNT, KIND_NUMBER, KIND_TEXT, KIND_ACTION };

static enum opt_kind kind_of(enum opt_id id)
{
    switch (id) {
    case OPT_SUBREAPER:
    case OPT_SINGLE_CHILD:
    case OPT_RUNTIME_HINTS:
    case OPT_CHECK_CONFIG:
        return KIND_SWITCH;
    case OPT_HELP:
    case OPT_VERSION:
        return KIND_ACTION;
    case OPT_VERBOSE:
        return KIND_COUNT;
    case OPT_RESTART:
    case OPT_STATE_DIR:
    case OPT_TERMINATION_LOG:
    case OPT_HEALTH_URL:
    case OPT_HEALTH_UNIX_SOCKET:
    case OPT_HEALTH_JSON_FIELD:
    case OPT_ON_UNHEALTHY:
    case OPT_CGROUP_ROOT:
    case OPT_EMERGENCY_ENV:
    case OPT_REWRITE:
    case OPT_LOG_LEVEL:
    case OPT_LOG_FORMAT:
    case OPT_CONFIG:
        return KIND_TEXT;
    default:
        return KIND_NUMBER;
    }
}

struct choice {
    const char *name;
    int value;
};

static const struct choice restart_choices[] = {{"no", CONFIG_RESTART_NO},
                                                {"on-failure", CONFIG_RESTART_ON_FAILURE},
                                                {"always", CONFIG_RESTART_ALWAYS},
                                                {NULL, 0}};
static const struct choice unhealthy_choices[] = {
    {"restart", CONFIG_ON_UNHEALTHY_RESTART}, {"exit", CONFIG_ON_UNHEALTHY_EXIT}, {NULL, 0}};
static const struct choice level_choices[] = {
    {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},    {"info", LOG_LEVEL_INFO},
    {"debug", LOG_LEVEL_DEBUG}, {"warning", LOG_LEVEL_WARN}, {NULL, 0}};
static const struct choice format_choices[] = {
    {"text", LOG_FORMAT_TEXT}, {"json", LOG_FORMAT_JSON}, {NULL, 0}};

static int pick(const struct choice *c, const char *s)
{
    for (; c->name; c++)
        if (strcasecmp(c->name, s) == 0)
            return c->value;
    return -1;
}

static const char *choice_name(const struct choice *c, int value)
{
    for (; c->name; c++)
        if (c->value == value)
            return c->name;
    return NULL;
}

/* ---- value parsers ---- */

struct decimal {
    uint64_t whole;
    uint64_t frac;  /* the kept fraction digits as an integer */
    uint64_t scale; /* 10^(kept fraction digits) */
    bool has_frac;
};

static int read_decimal(const char **p, struct decimal *d)
{
    const char *s = *p;
    bool any = false;

    *d = (struct decimal){.scale = 1};
    for (; isdigit((unsigned char)*s); s++, any = true)
        if (__builtin_mul_overflow(d->whole, 10, &d->whole) ||
            __builtin_add_overflow(d->whole, (uint64_t)(*s - '0'), &d->whole))
            return -1;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return -1;
        d->has_frac = true;
        for (; isdigit((unsigned char)*s); s++, any = true) {
            if (d->scale < FRACTION_SCALE_MAX) {
                d->frac = d->frac * 10 + (uint64_t)(*s - '0');
                d->scale *= 10;
            }
        }
    }
    if (!any)
        return -1;
    *p = s;
    return 0;
}

static int scale_decimal(const struct decimal *d, uint64_t unit, uint64_t *out)
{
    uint64_t v;

    if (__builtin_mul_overflow(d->whole, unit, &v) ||
        __builtin_add_overflow(v, d->frac * unit / d->scale, &v))
        return -1;
    *out = v;
    return 0;
}

/* Milliseconds per unit at *p (advancing past it), or 0 when there is no unit. */
static uint64_t duration_unit(const char **p)
{
    const char *s = *p;
    uint64_t unit = 0;

    if (strncasecmp(s, "ms", 2) == 0) {
        *p = s + 2;
        return 1;
    }
    switch (tolower((unsigned char)*s)) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    default:
        return 0;
    }
    *p = s + 1;
    return unit;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
    const char *p = s;
    uint64_t total = 0;

    if (!s || !*s)
        return -1;
    while (*p) {
        const char *start = p;
        struct decimal d;
        uint64_t unit, part;

        if (read_decimal(&p, &d) < 0)
            return -1;
        unit = duration_unit(&p);
        if (unit == 0) {
            /* Bare seconds only on their own: "1m30" is more likely a typo than 1m30s. */
            if (start != s || *p)
                return -1;
            unit = 1000;
        }
        if (scale_decimal(&d, unit, &part) < 0 || __builtin_add_overflow(total, part, &total))
            return -1;
    }
    if (total > DURATION_MAX_MS)
        return -1;
    *out = total;
    return 0;
}

/* Binary multiplier of a unit suffix (B, K, KB, Ki, KiB, ...), or 0 when it is none. */
static uint64_t size_unit(const char *s)
{
    static const char units[] = "bkmgt";
    const char *u;
    int shift;

    if (!*s)
        return 1;
    u = strchr(units, tolower((unsigned char)*s));
    if (!u)
        return 0;
    shift = (int)(u - units) * 10;
    s++;
    if (shift && (*s == 'i' || *s == 'I'))
        s++;
    if (shift && (*s == 'b' || *s == 'B'))
        s++;
    return *s ? 0 : UINT64_C(1) << shift;
}

int config_parse_size(const char *s, bool allow_percent, struct config_size_spec *out)
{
    const char *p = s;
    struct decimal d;
    uint64_t unit, bytes;

    if (!s || read_decimal(&p, &d) < 0)
        return -1;
    if (p[0] == '%' && p[1] == '\0') {
        double pct = (double)d.whole + (double)d.frac / (double)d.scale;

        if (!allow_percent || !(pct > 0 && pct <= 100))
            return -1;
        *out = (struct config_size_spec){.set = true, .is_percent = true, .percent = pct};
        return 0;
    }
    unit = size_unit(p);
    /* A fraction of a byte is a typo, a fraction of a unit is fine ("1.5G"). */
    if (unit == 0 || (unit == 1 && d.has_frac) || scale_decimal(&d, unit, &bytes) < 0)
        return -1;
    *out = (struct config_size_spec){.set = true, .bytes = bytes};
    return 0;
}

uint64_t config_size_spec_bytes(const struct config_size_spec *s, uint64_t limit_bytes)
{
    long double v;

    if (!s || !s->set)
        return 0;
    if (!s->is_percent)
        return s->bytes;
    v = (long double)limit_bytes * (long double)s->percent / 100.0L;
    /* Rounding must not push a percentage of a huge limit past the limit (or past uint64). */
    return v >= (long double)limit_bytes ? limit_bytes : (uint64_t)v;
}

int config_parse_uint(const char *s, unsigned max, unsigned *out)
{
    uint64_t v = 0;

    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
    }
    *out = (unsigned)v;
    return 0;
}

int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

struct signame {
    const char *name;
    int sig;
};

/* Primary names come before their aliases so config_signal_name() returns the usual one. */
static const struct signame signames[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},     {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},     {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
    {"SYS", SIGSYS},
#ifdef SIGIOT
    {"IOT", SIGIOT},
#endif
#ifdef SIGCLD
    {"CLD", SIGCLD},
#endif
#ifdef SIGPOLL
    {"POLL", SIGPOLL},
#endif
};

/* Real-time names need static storage for config_signal_name(); RTMIN is only known at run time. */
static const char *const rtmin_names[] = {
    "RTMIN",    "RTMIN+1",  "RTMIN+2",  "RTMIN+3",  "RTMIN+4",  "RTMIN+5",  "RTMIN+6",
    "RTMIN+7",  "RTMIN+8",  "RTMIN+9",  "RTMIN+10", "RTMIN+11", "RTMIN+12", "RTMIN+13",
    "RTMIN+14", "RTMIN+15", "RTMIN+16", "RTMIN+17", "RTMIN+18", "RTMIN+19", "RTMIN+20",
    "RTMIN+21", "RTMIN+22", "RTMIN+23", "RTMIN+24", "RTMIN+25", "RTMIN+26", "RTMIN+27",
    "RTMIN+28", "RTMIN+29", "RTMIN+30", "RTMIN+31", "RTMIN+32"};

static int parse_rt_signal(const char *s, int *out)
{
    unsigned n = 0;
    int base, dir, sig;

    if (strncasecmp(s, "RTMIN", 5) == 0) {
        base = SIGRTMIN;
        dir = 1;
    } else if (strncasecmp(s, "RTMAX", 5) == 0) {
        base = SIGRTMAX;
        dir = -1;
    } else {
        return -1;
    }
    s += 5;
    if (*s && (*s != (dir > 0 ? '+' : '-') || config_parse_uint(s + 1, RESIL_MAX_SIGNAL, &n) < 0))
        return -1;
    sig = base + dir * (int)n;
    if (sig < SIGRTMIN || sig > SIGRTMAX || sig >= RESIL_MAX_SIGNAL)
        return -1;
    *out = sig;
    return 0;
}

int config_parse_signal(const char *s, int *out)
{
    unsigned n;

    if (!s)
        return -1;
    if (isdigit((unsigned char)*s)) {
        if (config_parse_uint(s, RESIL_MAX_SIGNAL - 1, &n) < 0 || n == 0)
            return -1;
        *out = (int)n;
        return 0;
    }
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++) {
        if (strcasecmp(s, signames[i].name) == 0) {
            *out = signames[i].sig;
            return 0;
        }
    }
    return parse_rt_signal(s, out);
}

const char *config_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
        if (signames[i].sig == sig)
            return signames[i].name;
    if (sig == SIGRTMAX)
        return "RTMAX";
    if (sig >= SIGRTMIN && sig < SIGRTMAX &&
        (size_t)(sig - SIGRTMIN) < sizeof rtmin_names / sizeof rtmin_names[0])
        return rtmin_names[sig - SIGRTMIN];
    return NULL;
}

int config_parse_rewrite(const char *s, int *from, int *to)
{
    char buf[32];
    const char *colon;
    size_t len;
    int f, t = 0;

    if (!s || !(colon = strchr(s, ':')))
        return -1;
    len = (size_t)(colon - s);
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (config_parse_signal(buf, &f) < 0)
        return -1;
    if (strcmp(colon + 1, "0") != 0 && config_parse_signal(colon + 1, &t) < 0)
        return -1;
    *from = f;
    *to = t;
    return 0;
}

/* ---- applying values ---- */

struct load_ctx {
    struct resil_config *cfg;
    enum config_source source;             /* the source being applied now */
    enum config_source applied[OPT_COUNT]; /* highest source that set each option */
    const char *file_path;                 /* the config file, once read */
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct load_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    if (ctx->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(ctx->err, ctx->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int out_of_memory(struct load_ctx *ctx)
{
    return fail(ctx, "out of memory");
}

static bool valid_env_name(const char *s, size_t len)
{
    if (len == 0 || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

static void free_env_list(struct resil_config *cfg)
{
    for (size_t i = 0; i < cfg->emergency_env_count; i++)
        free(cfg->emergency_env[i]);
    free(cfg->emergency_env);
    cfg->emergency_env = NULL;
    cfg->emergency_env_count = 0;
}

/* Adds KEY=VALUE, replacing an earlier entry for the same KEY so each name is set once. */
static int env_list_put(struct resil_config *cfg, const char *kv)
{
    size_t keylen = strcspn(kv, "=");
    char *copy = strdup(kv);
    char **grown;

    if (!copy)
        return -1;
    for (size_t i = 0; i < cfg->emergency_env_count; i++) {
        if (strncmp(cfg->emergency_env[i], kv, keylen + 1) == 0) {
            free(cfg->emergency_env[i]);
            cfg->emergency_env[i] = copy;
            return 0;
        }
    }
    grown = realloc(cfg->emergency_env, (cfg->emergency_env_count + 2) * sizeof *grown);
    if (!grown) {
        free(copy);
        return -1;
    }
    grown[cfg->emergency_env_count++] = copy;
    grown[cfg->emergency_env_count] = NULL;
    cfg->emergency_env = grown;
    return 0;
}

/* The first value a source gives a repeatable option replaces what lower sources gave. */
static void begin_option(struct load_ctx *ctx, enum opt_id id)
{
    struct resil_config *cfg = ctx->cfg;

    if (ctx->applied[id] >= ctx->source)
        return;
    ctx->applied[id] = ctx->source;
    switch (id) {
    case OPT_REMAP_EXIT:
        memset(cfg->remap_exit, 0, sizeof cfg->remap_exit);
        break;
    case OPT_REWRITE:
        for (int i = 0; i < RESIL_MAX_SIGNAL; i++)
            cfg->rewrite[i] = -1;
        break;
    case OPT_EMERGENCY_ENV:
        free_env_list(cfg);
        cfg->emergency_env_explicit = true;
        break;
    case OPT_VERBOSE:
        cfg->verbose = 0;
        break;
    default:
        break;
    }
}

static int set_switch(struct load_ctx *ctx, const char *who, const char *value, bool *out)
{
    if (!value) {
        *out = true;
        return 0;
    }
    if (config_parse_bool(value, out) < 0)
        return fail(ctx, "%s: expected true or false (yes/no, on/off, 1/0), got \"%.64s\"", who,
                    value);
    return 0;
}

static int set_verbose(struct load_ctx *ctx, const char *who, const char *value)
{
    unsigned n;

    if (!value) {
        if (ctx->cfg->verbose < VERBOSE_MAX)
            ctx->cfg->verbose++;
        return 0;
    }
    if (config_parse_uint(value, VERBOSE_MAX, &n) < 0)
        return fail(ctx, "%s: bad count \"%.64s\"", who, value);
    ctx->cfg->verbose = (int)n;
    return 0;
}

static int set_choice(struct load_ctx *ctx, const char *who, const char *value,
                      const struct choice *choices, const char *expected, int *out)
{
    int v = pick(choices, value);

    if (v < 0)
        return fail(ctx, "%s: expected %s, got \"%.64s\"", who, expected, value);
    *out = v;
    return 0;
}

static int set_duration(struct load_ctx *ctx, const char *who, const char *value, bool positive,
                        uint64_t *out)
{
    uint64_t ms;

    if (config_parse_duration_ms(value, &ms) < 0)
        return fail(ctx, "%s: bad duration \"%.64s\"", who, value);
    if (positive && ms == 0)
        return fail(ctx, "%s: must be more than 0, got \"%.64s\"", who, value);
    *out = ms;
    return 0;
}

static int set_backoff(struct load_ctx *ctx, const char *who, const char *value)
{
    char buf[64];
    const char *colon = strchr(value, ':');
    const char *max_text = colon ? colon + 1 : value;
    size_t len = colon ? (size_t)(colon - value) : strlen(value);
    uint64_t min, max;

    if (len >= sizeof buf)
        return fail(ctx, "%s: bad duration \"%.64s\"", who, value);
    memcpy(buf, value, len);
    buf[len] = '\0';
    if (config_parse_duration_ms(buf, &min) < 0)
        return fail(ctx, "%s: bad duration \"%s\"", who, buf);
    if (config_parse_duration_ms(max_text, &max) < 0)
        return fail(ctx, "%s: bad duration \"%.64s\"", who, max_text);
    if (min > max)
        return fail(ctx, "%s: MIN is above MAX in \"%.64s\"", who, value);
    /* Doubling from 0 stays 0, so a MAX with a zero MIN would never be reached. */
    if (min == 0 && max > 0)
        return fail(ctx, "%s: MIN must be more than 0 when MAX is given, got \"%.64s\"", who,
                    value);
    ctx->cfg->backoff_min_ms = min;
    ctx->cfg->backoff_max_ms = max;
    return 0;
}

static int set_uint(struct load_ctx *ctx, const char *who, const char *value, unsigned min,
                    unsigned *out)
{
    unsigned n;

    if (config_parse_uint(value, UINT_MAX, &n) < 0)
        return fail(ctx, "%s: bad number \"%.64s\"", who, value);
    if (n < min)
        return fail(ctx, "%s: must be at least %u, got \"%.64s\"", who, min, value);
    *out = n;
    return 0;
}

/* "0" and "none" let a higher source switch off a signal a lower one set. */
static int set_signal(struct load_ctx *ctx, const char *who, const char *value, int *out)
{
    if (strcmp(value, "0") == 0 || strcasecmp(value, "none") == 0) {
        *out = 0;
        return 0;
    }
    if (config_parse_signal(value, out) < 0)
        return fail(ctx, "%s: bad signal \"%.64s\"", who, value);
    return 0;
}

static int set_string(struct load_ctx *ctx, const char *who, const char *value, char **out)
{
    char *copy;

    if (!*value)
        return fail(ctx, "%s: must not be empty", who);
    copy = strdup(value);
    if (!copy)
        return out_of_memory(ctx);
    free(*out);
    *out = copy;
    return 0;
}

static int set_url(struct load_ctx *ctx, const char *who, const char *value)
{
    size_t skip = strncasecmp(value, "http://", 7) == 0    ? 7
                  : strncasecmp(value, "https://", 8) == 0 ? 8
                                                           : 0;

    if (skip == 0 || value[skip] == '\0')
        return fail(ctx, "%s: expected an http:// or https:// URL, got \"%.64s\"", who, value);
    for (const char *p = value; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return fail(ctx, "%s: URL contains a space or control character", who);
    return set_string(ctx, who, value, &ctx->cfg->health_url);
}

static int set_socket_path(struct load_ctx *ctx, const char *who, const char *value)
{
    const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

    if (strlen(value) > max)
        return fail(ctx, "%s: path longer than %zu bytes", who, max);
    return set_string(ctx, who, value, &ctx->cfg->health_unix_socket);
}

/* off_ok: "0", "off" and "none" unset it, so a flag can cancel a lower source. */
static int set_size(struct load_ctx *ctx, const char *who, const char *value, bool off_ok,
                    struct config_size_spec *out)
{
    struct config_size_spec s;

    if (off_ok && (strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0 ||
                   strcasecmp(value, "none") == 0)) {
        *out = (struct config_size_spec){0};
        return 0;
    }
    if (config_parse_size(value, true, &s) < 0)
        return fail(ctx, "%s: bad size \"%.64s\" (expected e.g. 512M, 1G, 400000000 or 85%%)", who,
                    value);
    if (!s.is_percent && s.bytes == 0)
        return fail(ctx, "%s: must be more than 0, got \"%.64s\"", who, value);
    *out = s;
    return 0;
}

static int add_remap_exit(struct load_ctx *ctx, const char *who, const char *value)
{
    unsigned code;

    if (config_parse_uint(value, 255, &code) < 0)
        return fail(ctx, "%s: bad exit code \"%.64s\"", who, value);
    ctx->cfg->remap_exit[code] = true;
    return 0;
}

static int add_rewrite(struct load_ctx *ctx, const char *who, const char *value)
{
    int from, to;

    if (config_parse_rewrite(value, &from, &to) < 0)
        return fail(ctx, "%s: bad rewrite \"%.64s\" (expected FROM:TO, e.g. TERM:QUIT or HUP:0)",
                    who, value);
    if (from == SIGKILL || from == SIGSTOP)
        return fail(ctx, "%s: %s cannot be caught, so it cannot be rewritten", who,
                    config_signal_name(from));
    ctx->cfg->rewrite[from] = to;
    return 0;
}

static int add_emergency_env(struct load_ctx *ctx, const char *who, const char *value)
{
    const char *eq = strchr(value, '=');

    if (!eq)
        return fail(ctx, "%s: expected KEY=VALUE, got \"%.64s\"", who, value);
    if (!valid_env_name(value, (size_t)(eq - value)))
        return fail(ctx, "%s: bad variable name in \"%.64s\"", who, value);
    if (env_list_put(ctx->cfg, value) < 0)
        return out_of_memory(ctx);
    return 0;
}

static int set_enum(struct load_ctx *ctx, enum opt_id id, const char *who, const char *value)
{
    struct resil_config *cfg = ctx->cfg;
    int v = 0, rc;

    switch (id) {
    case OPT_RESTART:
        rc = set_choice(ctx, who, value, restart_choices, "no, on-failure or always", &v);
        if (rc == 0)
            cfg->restart = (enum config_restart_policy)v;
        return rc;
    case OPT_ON_UNHEALTHY:
        rc = set_choice(ctx, who, value, unhealthy_choices, "restart or exit", &v);
        if (rc == 0)
            cfg->on_unhealthy = (enum config_on_unhealthy)v;
        return rc;
    case OPT_LOG_LEVEL:
        rc = set_choice(ctx, who, value, level_choices, "error, warn, info or debug", &v);
        if (rc == 0)
            cfg->log_level = (enum log_level)v;
        return rc;
    default:
        rc = set_choice(ctx, who, value, format_choices, "text or json", &v);
        if (rc == 0)
            cfg->log_format = (enum log_format)v;
        return rc;
    }
}

/* value is NULL only for a switch given on the command line without "=". */
static int set_value(struct load_ctx *ctx, enum opt_id id, const char *value, const char *who)
{
    struct resil_config *cfg = ctx->cfg;

    begin_option(ctx, id);
    switch (id) {
    case OPT_SUBREAPER:
        return set_switch(ctx, who, value, &cfg->subreaper);
    case OPT_SINGLE_CHILD:
        return set_switch(ctx, who, value, &cfg->single_child);
    case OPT_RUNTIME_HINTS:
        return set_switch(ctx, who, value, &cfg->runtime_hints);
    case OPT_CHECK_CONFIG:
        return set_switch(ctx, who, value, &cfg->check_config);
    case OPT_HELP:
    case OPT_VERSION:
        return 0; /* main.c acts on these before config_load */
    case OPT_VERBOSE:
        return set_verbose(ctx, who, value);
    case OPT_REMAP_EXIT:
        return add_remap_exit(ctx, who, value);
    case OPT_PDEATH_SIGNAL:
        return set_signal(ctx, who, value, &cfg->pdeath_signal);
    case OPT_PRESSURE_SIGNAL:
        return set_signal(ctx, who, value, &cfg->pressure_signal);
    case OPT_REWRITE:
        return add_rewrite(ctx, who, value);
    case OPT_GRACE:
        return set_duration(ctx, who, value, false, &cfg->grace_ms);
    case OPT_RESTART_WINDOW:
        return set_duration(ctx, who, value, true, &cfg->restart_window_ms);
    case OPT_HEALTH_INTERVAL:
        return set_duration(ctx, who, value, true, &cfg->health_interval_ms);
    case OPT_HEALTH_TIMEOUT:
        return set_duration(ctx, who, value, true, &cfg->health_timeout_ms);
    case OPT_HEALTH_START_PERIOD:
        return set_duration(ctx, who, value, false, &cfg->health_start_period_ms);
    case OPT_MEMORY_RESTART_FOR:
        return set_duration(ctx, who, value, false, &cfg->memory_restart_for_ms);
    case OPT_MEMORY_INTERVAL:
        return set_duration(ctx, who, value, true, &cfg->memory_interval_ms);
    case OPT_BACKOFF:
        return set_backoff(ctx, who, value);
    case OPT_RESTART:
    case OPT_ON_UNHEALTHY:
    case OPT_LOG_LEVEL:
    case OPT_LOG_FORMAT:
        return set_enum(ctx, id, who, value);
    case OPT_MAX_RESTARTS:
        return set_uint(ctx, who, value, 0, &cfg->max_restarts);
    case OPT_HEALTH_RETRIES:
        return set_uint(ctx, who, value, 1, &cfg->health_retries);
    case OPT_HEALTH_URL:
        return set_url(ctx, who, value);
    case OPT_HEALTH_UNIX_SOCKET:
        return set_socket_path(ctx, who, value);
    case OPT_HEALTH_JSON_FIELD:
        return set_string(ctx, who, value, &cfg->health_json_field);
    case OPT_STATE_DIR:
        return set_string(ctx, who, value, &cfg->state_dir);
    case OPT_TERMINATION_LOG:
        return set_string(ctx, who, value, &cfg->termination_log);
    case OPT_CGROUP_ROOT:
        return set_string(ctx, who, value, &cfg->cgroup_root);
    case OPT_CONFIG:
        return set_string(ctx, who, value, &cfg->config_file);
    case OPT_MEMORY_WARN:
        return set_size(ctx, who, value, false, &cfg->memory_warn);
    case OPT_MEMORY_CRITICAL:
        return set_size(ctx, who, value, false, &cfg->memory_critical);
    case OPT_MEMORY_RESTART:
        return set_size(ctx, who, value, true, &cfg->memory_restart);
    case OPT_EMERGENCY_ENV:
        return add_emergency_env(ctx, who, value);
    case OPT_COUNT:
        break;
    }
    return fail(ctx, "%s: not a setting", who);
}

static int option_by_name(const char *name, size_t len)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (strncmp(config_options[i].name, name, len) == 0 && config_options[i].name[len] == '\0')
            return i;
    return -1;
}

static int option_by_short(char c)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (config_options[i].short_name == c)
            return i;
    return -1;
}

/* ---- defaults and freeing ---- */

static int config_defaults(struct resil_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->subreaper = true;
    for (int i = 0; i < RESIL_MAX_SIGNAL; i++)
        cfg->rewrite[i] = -1;
    cfg->grace_ms = 8000;
    cfg->log_level = LOG_LEVEL_INFO;
    cfg->log_format = LOG_FORMAT_TEXT;
    cfg->restart = CONFIG_RESTART_NO;
    cfg->max_restarts = 5;
    cfg->restart_window_ms = 10 * 60 * 1000;
    cfg->backoff_min_ms = 1000;
    cfg->backoff_max_ms = 30 * 1000;
    cfg->health_interval_ms = 30 * 1000;
    cfg->health_timeout_ms = 5 * 1000;
    cfg->health_start_period_ms = 0;
    cfg->health_retries = 3;
    cfg->on_unhealthy = CONFIG_ON_UNHEALTHY_RESTART;
    cfg->memory_warn = (struct config_size_spec){.set = true, .is_percent = true, .percent = 75};
    cfg->memory_critical =
        (struct config_size_spec){.set = true, .is_percent = true, .percent = 85};
    cfg->memory_restart_for_ms = 30 * 1000;
    cfg->memory_interval_ms = 5 * 1000;
    return env_list_put(cfg, "EMERGENCY_MODE=true");
}

void config_free(struct resil_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->health_url);
    free(cfg->health_unix_socket);
    free(cfg->health_json_field);
    free(cfg->state_dir);
    free(cfg->termination_log);
    free(cfg->cgroup_root);
    free(cfg->config_file);
    cfg->health_url = cfg->health_unix_socket = cfg->health_json_field = NULL;
    cfg->state_dir = cfg->termination_log = cfg->cgroup_root = cfg->config_file = NULL;
    free_env_list(cfg);
}

/* ---- command line ---- */

struct cli_item {
    enum opt_id id;
    const char *value; /* NULL for a bare switch */
    bool is_short;
};

struct cli_items {
    struct cli_item *v;
    size_t n, cap;
};

static int push_item(struct load_ctx *ctx, struct cli_items *items, int id, const char *value,
                     bool is_short)
{
    if (items->n == items->cap) {
        size_t cap = items->cap ? items->cap * 2 : 16;
        struct cli_item *v = realloc(items->v, cap * sizeof *v);

        if (!v)
            return out_of_memory(ctx);
        items->v = v;
        items->cap = cap;
    }
    items->v[items->n++] = (struct cli_item){(enum opt_id)id, value, is_short};
    return 0;
}

static int cli_long(struct load_ctx *ctx, struct cli_items *items, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int id = option_by_name(name, len);
    const char *value = eq ? eq + 1 : NULL;

    if (id < 0)
        return fail(ctx, "unknown option --%.*s", (int)(len > 64 ? 64 : len), name);
    if (config_options[id].arg && !value) {
        if (*i + 1 >= argc)
            return fail(ctx, "missing value for --%s", config_options[id].name);
        value = argv[++*i];
    } else if (!config_options[id].arg && value && kind_of((enum opt_id)id) != KIND_SWITCH) {
        return fail(ctx, "--%s does not take a value", config_options[id].name);
    }
    (*i)++;
    return push_item(ctx, items, id, value, false);
}

/* A cluster of short options: "-vv", "-sg", "-e143", "-ve 143". */
static int cli_short(struct load_ctx *ctx, struct cli_items *items, int argc, char **argv, int *i)
{
    for (const char *p = argv[*i] + 1; *p; p++) {
        int id;

        if (*p == 'g')
            continue; /* tini's -g: group signalling is the default already */
        id = option_by_short(*p);
        if (id < 0)
            return fail(ctx, "unknown option -%c", *p);
        if (!config_options[id].arg) {
            if (push_item(ctx, items, id, NULL, true) < 0)
                return -1;
            continue;
        }
        if (p[1]) {
            (*i)++;
            return push_item(ctx, items, id, p + 1, true);
        }
        if (*i + 1 >= argc)
            return fail(ctx, "missing value for -%c", *p);
        *i += 2;
        return push_item(ctx, items, id, argv[*i - 1], true);
    }
    (*i)++;
    return 0;
}

static int cli_collect(struct load_ctx *ctx, struct cli_items *items, int argc, char **argv)
{
    int i = 0;

    while (i < argc) {
        const char *arg = argv[i];
        int rc;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        rc = arg[1] == '-' ? cli_long(ctx, items, argc, argv, &i)
                           : cli_short(ctx, items, argc, argv, &i);
        if (rc < 0)
            return -1;
    }
    if (i < argc) {
        ctx->cfg->command = &argv[i];
        ctx->cfg->command_argc = argc - i;
    }
    return 0;
}

static int apply_cli(struct load_ctx *ctx, const struct cli_items *items)
{
    ctx->source = CONFIG_SOURCE_FLAG;
    for (size_t i = 0; i < items->n; i++) {
        const struct cli_item *it = &items->v[i];
        const struct config_option *o = &config_options[it->id];
        char who[72];

        if (it->is_short)
            snprintf(who, sizeof who, "-%c", o->short_name);
        else
            snprintf(who, sizeof who, "--%s", o->name);
        if (set_value(ctx, it->id, it->value, who) < 0)
            return -1;
    }
    return 0;
}

/* ---- environment ---- */

/* Whether s..end spells RESIL_<NAME> of opt: upper case, '-' as '_'. */
static bool env_name_is(const char *opt, const char *s, const char *end)
{
    for (; *opt; opt++, s++) {
        char want = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);

        if (s == end || *s != want)
            return false;
    }
    return s == end;
}

static int option_by_env(const char *name, const char *end)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (kind_of((enum opt_id)i) != KIND_ACTION &&
            env_name_is(config_options[i].name, name, end))
            return i;
    return -1;
}

/* An empty variable counts as unset: templates often render "RESIL_X=" for "no value". */
static const char *env_get(char **envp, const char *name)
{
    size_t len = strlen(name);

    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return (*e)[len + 1] ? *e + len + 1 : NULL;
    return NULL;
}

/* Whether s (after a ',') starts a new KEY=VALUE item rather than continuing a value. */
static bool starts_env_item(const char *s)
{
    size_t len;

    while (*s == ' ' || *s == '\t')
        s++;
    len = strcspn(s, "=,\n");
    return s[len] == '=' && valid_env_name(s, len);
}

static char *list_separator(char *s, bool env_items)
{
    for (; *s; s++)
        if (*s == '\n' || (*s == ',' && (!env_items || starts_env_item(s + 1))))
            return s;
    return s;
}

static char *trim(char *s, bool trailing)
{
    size_t len;

    while (*s == ' ' || *s == '\t')
        s++;
    len = strlen(s);
    while (trailing && len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

/* A list in one variable: items split at ',' or newline. For emergency-env a ',' only
 * splits before another KEY=, so values such as "-Xss1m,-Xmx1g" survive. */
static int apply_env_list(struct load_ctx *ctx, enum opt_id id, const char *value, const char *who)
{
    bool env_items = id == OPT_EMERGENCY_ENV;
    char *copy = strdup(value);
    char *item = copy;
    int rc = 0;

    if (!copy)
        return out_of_memory(ctx);
    begin_option(ctx, id);
    while (rc == 0) {
        char *end = list_separator(item, env_items);
        bool last = *end == '\0';
        char *t;

        *end = '\0';
        t = trim(item, !env_items);
        if (*t)
            rc = set_value(ctx, id, t, who);
        if (last)
            break;
        item = end + 1;
    }
    free(copy);
    return rc;
}

static int apply_env(struct load_ctx *ctx, char **envp)
{
    bool seen[OPT_COUNT] = {false};

    ctx->source = CONFIG_SOURCE_ENV;
    for (char **e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char who[72];
        int id;

        if (strncmp(*e, "RESIL_", 6) != 0 || !eq || eq[1] == '\0')
            continue;
        id = option_by_env(*e + 6, eq);
        /* Like getenv(), the first of duplicate entries counts. */
        if (id < 0 || seen[id])
            continue;
        seen[id] = true;
        snprintf(who, sizeof who, "%.*s", (int)(eq - *e), *e);
        if (config_options[id].repeatable && id != OPT_VERBOSE) {
            if (apply_env_list(ctx, (enum opt_id)id, eq + 1, who) < 0)
                return -1;
        } else if (set_value(ctx, (enum opt_id)id, eq + 1, who) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- config file ---- */

static int read_whole_file(struct load_ctx *ctx, const char *path, char **out, size_t *outlen)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int fd, rc = 0;

    if (!buf)
        return out_of_memory(ctx);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(buf);
        return fail(ctx, "config file %s: %s", path, strerror(errno));
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            size_t ncap = cap * 2 > CONFIG_FILE_MAX + 1 ? CONFIG_FILE_MAX + 1 : cap * 2;
            char *grown;

            if (cap > CONFIG_FILE_MAX) {
                rc = fail(ctx, "config file %s: larger than %d bytes", path, CONFIG_FILE_MAX);
                break;
            }
            grown = realloc(buf, ncap);
            if (!grown) {
                rc = out_of_memory(ctx);
                break;
            }
            buf = grown;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail(ctx, "config file %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static const char *json_type(const cJSON *j)
{
    if (cJSON_IsBool(j))
        return "a boolean";
    if (cJSON_IsNumber(j))
        return "a number";
    if (cJSON_IsString(j))
        return "a string";
    if (cJSON_IsArray(j))
        return "an array";
    if (cJSON_IsObject(j))
        return "an object";
    return "null";
}

static int type_error(struct load_ctx *ctx, const char *who, const char *expected, const cJSON *got)
{
    return fail(ctx, "%s: expected %s, got %s", who, expected, json_type(got));
}

static int apply_json_value(struct load_ctx *ctx, enum opt_id id, const cJSON *item,
                            const char *who)
{
    char num[64] = "";

    if (cJSON_IsNumber(item))
        snprintf(num, sizeof num, "%.15g", item->valuedouble);
    switch (kind_of(id)) {
    case KIND_SWITCH:
        if (!cJSON_IsBool(item))
            return type_error(ctx, who, "true or false", item);
        return set_value(ctx, id, cJSON_IsTrue(item) ? "true" : "false", who);
    case KIND_COUNT:
        if (!cJSON_IsNumber(item))
            return type_error(ctx, who, "a number", item);
        return set_value(ctx, id, num, who);
    case KIND_NUMBER:
        if (cJSON_IsString(item))
            return set_value(ctx, id, item->valuestring, who);
        if (!cJSON_IsNumber(item))
            return type_error(ctx, who, "a string or a number", item);
        return set_value(ctx, id, num, who);
    case KIND_TEXT:
        if (!cJSON_IsString(item))
            return type_error(ctx, who, "a string", item);
        return set_value(ctx, id, item->valuestring, who);
    case KIND_ACTION:
        break;
    }
    return 0;
}

static int apply_env_object(struct load_ctx *ctx, const cJSON *obj, const char *who)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, obj)
    {
        char *kv;
        size_t len;
        int rc;

        if (!valid_env_name(m->string, strlen(m->string)))
            return fail(ctx, "%s: bad variable name \"%.64s\"", who, m->string);
        if (!cJSON_IsString(m))
            return type_error(ctx, who, "string values", m);
        len = strlen(m->string) + strlen(m->valuestring) + 2;
        kv = malloc(len);
        if (!kv)
            return out_of_memory(ctx);
        snprintf(kv, len, "%s=%s", m->string, m->valuestring);
        rc = set_value(ctx, OPT_EMERGENCY_ENV, kv, who);
        free(kv);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int apply_json_list(struct load_ctx *ctx, enum opt_id id, const cJSON *item, const char *who)
{
    const cJSON *el;

    begin_option(ctx, id);
    if (cJSON_IsObject(item) && id == OPT_EMERGENCY_ENV)
        return apply_env_object(ctx, item, who);
    if (!cJSON_IsArray(item))
        return apply_json_value(ctx, id, item, who);
    cJSON_ArrayForEach(el, item)
    {
        if (cJSON_IsArray(el) || cJSON_IsObject(el))
            return type_error(ctx, who, "an array of single values", el);
        if (apply_json_value(ctx, id, el, who) < 0)
            return -1;
    }
    return 0;
}

static int apply_json_key(struct load_ctx *ctx, const char *path, const cJSON *item, bool *seen)
{
    const char *key = item->string;
    int id = option_by_name(key, strlen(key));
    char who[1024];

    if (id < 0)
        return fail(ctx, "config file %s: unknown key \"%.64s\"", path, key);
    if (id == OPT_CONFIG || kind_of((enum opt_id)id) == KIND_ACTION)
        return fail(ctx, "config file %s: key \"%s\" is not allowed in a config file", path, key);
    if (seen[id])
        return fail(ctx, "config file %s: duplicate key \"%s\"", path, key);
    seen[id] = true;
    if (cJSON_IsNull(item))
        return 0; /* null leaves the default, as --check-config prints unset options */
    snprintf(who, sizeof who, "config file %s: key \"%s\"", path, key);
    if (config_options[id].repeatable && id != OPT_VERBOSE)
        return apply_json_list(ctx, (enum opt_id)id, item, who);
    return apply_json_value(ctx, (enum opt_id)id, item, who);
}

static int json_error(struct load_ctx *ctx, const char *path, const char *buf, const char *at)
{
    int line = 1, col = 1;

    for (const char *p = buf; buf && at && p < at; p++) {
        col++;
        if (*p == '\n') {
            line++;
            col = 1;
        }
    }
    return fail(ctx, "config file %s: invalid JSON at line %d, column %d", path, line, col);
}

static int apply_json_root(struct load_ctx *ctx, const char *path, const cJSON *root)
{
    bool seen[OPT_COUNT] = {false};
    const cJSON *item;

    if (!cJSON_IsObject(root))
        return fail(ctx, "config file %s: expected a JSON object, got %s", path, json_type(root));
    ctx->source = CONFIG_SOURCE_FILE;
    cJSON_ArrayForEach(item, root)
    {
        if (apply_json_key(ctx, path, item, seen) < 0)
            return -1;
    }
    return 0;
}

static int apply_file(struct load_ctx *ctx, const char *path)
{
    const char *end = NULL;
    char *buf = NULL;
    size_t len = 0;
    cJSON *root;
    int rc;

    if (read_whole_file(ctx, path, &buf, &len) < 0)
        return -1;
    /* Not NUL-terminated by cJSON's rules, so trailing junk is checked by hand below. */
    root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
    while (root && end < buf + len && isspace((unsigned char)*end))
        end++;
    if (!root || end < buf + len)
        rc = json_error(ctx, path, buf, end);
    else
        rc = apply_json_root(ctx, path, root);
    cJSON_Delete(root);
    free(buf);
    return rc;
}

/* ---- loading ---- */

static const char *config_path(const struct cli_items *items, char **envp)
{
    const char *path = NULL;

    for (size_t i = 0; i < items->n; i++)
        if (items->v[i].id == OPT_CONFIG)
            path = items->v[i].value;
    return path ? path : env_get(envp, "RESIL_CONFIG");
}

static void format_size(char *buf, size_t len, const struct config_size_spec *s)
{
    if (s->is_percent)
        snprintf(buf, len, "%g%%", s->percent);
    else
        snprintf(buf, len, "%llu", (unsigned long long)s->bytes);
}

/* Where an option's current value came from, as an error prefix; flags and defaults
 * need none since the message names the option by its flag. */
static void origin(const struct load_ctx *ctx, enum opt_id id, char *buf, size_t len)
{
    const char *name = config_options[id].name;
    char env[72];

    if (ctx->applied[id] == CONFIG_SOURCE_FILE) {
        snprintf(buf, len, "config file %s: key \"%s\": ", ctx->file_path, name);
    } else if (ctx->applied[id] == CONFIG_SOURCE_ENV) {
        size_t i = 0;

        for (; i < sizeof env - 1 && name[i]; i++)
            env[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
        env[i] = '\0';
        snprintf(buf, len, "RESIL_%s: ", env);
    } else {
        buf[0] = '\0';
    }
}

static int validate(struct load_ctx *ctx)
{
    const struct resil_config *cfg = ctx->cfg;
    const struct config_size_spec *w = &cfg->memory_warn, *c = &cfg->memory_critical;
    char where[1024];

    if (cfg->health_unix_socket && !cfg->health_url) {
        origin(ctx, OPT_HEALTH_UNIX_SOCKET, where, sizeof where);
        return fail(ctx, "%s--health-unix-socket needs --health-url (the path and Host to ask for)",
                    where);
    }
    if (w->set && c->set && w->is_percent == c->is_percent &&
        (w->is_percent ? w->percent > c->percent : w->bytes > c->bytes)) {
        char wt[32], ct[32];
        bool warn_culprit = ctx->applied[OPT_MEMORY_WARN] >= ctx->applied[OPT_MEMORY_CRITICAL];

        origin(ctx, warn_culprit ? OPT_MEMORY_WARN : OPT_MEMORY_CRITICAL, where, sizeof where);
        format_size(wt, sizeof wt, w);
        format_size(ct, sizeof ct, c);
        return fail(ctx, "%s--memory-warn %s is above --memory-critical %s", where, wt, ct);
    }
    return 0;
}

static int load_sources(struct load_ctx *ctx, const struct cli_items *items, char **envp)
{
    const char *path = config_path(items, envp);

    if (path && !*path)
        return fail(ctx, "--config: must not be empty");
    ctx->file_path = path;
    if (path && apply_file(ctx, path) < 0)
        return -1;
    if (apply_env(ctx, envp) < 0 || apply_cli(ctx, items) < 0)
        return -1;
    return validate(ctx);
}

/* After an error main still logs in the format the user asked for, when it can tell. */
static void recover_log_format(struct resil_config *cfg, const struct cli_items *items, char **envp)
{
    const char *env = env_get(envp, "RESIL_LOG_FORMAT");
    int fmt = env ? pick(format_choices, env) : -1;

    for (size_t i = 0; i < items->n; i++) {
        int f = items->v[i].id == OPT_LOG_FORMAT ? pick(format_choices, items->v[i].value) : -1;

        if (f >= 0)
            fmt = f;
    }
    if (fmt >= 0)
        cfg->log_format = (enum log_format)fmt;
}

/* One line, whatever a path, key or value smuggled in. */
static void sanitize_line(char *s)
{
    for (; s && *s; s++)
        if (iscntrl((unsigned char)*s))
            *s = '?';
}

int config_load(struct resil_config *cfg, int argc, char **argv, char **envp, char *err,
                size_t errlen)
{
    struct load_ctx ctx = {.cfg = cfg, .err = err, .errlen = err ? errlen : 0};
    struct cli_items items = {0};
    int rc;

    if (ctx.errlen)
        err[0] = '\0';
    rc = config_defaults(cfg) < 0 ? out_of_memory(&ctx) : 0;
    if (rc == 0)
        rc = cli_collect(&ctx, &items, argc, argv);
    if (rc == 0)
        rc = load_sources(&ctx, &items, envp);
    if (rc == 0) {
        int level = (int)cfg->log_level + cfg->verbose;

        cfg->log_level = level > LOG_LEVEL_DEBUG ? LOG_LEVEL_DEBUG : (enum log_level)level;
    } else {
        config_free(cfg);
        (void)config_defaults(cfg);
        recover_log_format(cfg, &items, envp);
    }
    free(items.v);
    if (ctx.errlen)
        sanitize_line(err);
    return rc;
}

/* ---- --check-config output ---- */

void config_format_duration(char *buf, size_t len, uint64_t ms)
{
    static const struct {
        uint64_t ms;
        const char *suffix;
    } units[] = {{3600 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};

    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].suffix);
            return;
        }
    }
    snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static cJSON *json_duration(uint64_t ms)
{
    char buf[32];

    config_format_duration(buf, sizeof buf, ms);
    return cJSON_CreateString(buf);
}

static void format_signal(char *buf, size_t len, int sig)
{
    const char *name = config_signal_name(sig);

    if (name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%d", sig);
}

static cJSON *json_signal(int sig)
{
    const char *name = config_signal_name(sig);

    if (sig == 0)
        return cJSON_CreateNull();
    return name ? cJSON_CreateString(name) : cJSON_CreateNumber(sig);
}

static cJSON *json_size(const struct config_size_spec *s)
{
    char buf[32];

    if (!s->set)
        return cJSON_CreateNull();
    if (!s->is_percent)
        return cJSON_CreateNumber((double)s->bytes);
    format_size(buf, sizeof buf, s);
    return cJSON_CreateString(buf);
}

static cJSON *json_text(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *json_backoff(const struct resil_config *cfg)
{
    char min[32], max[32], buf[72];

    config_format_duration(min, sizeof min, cfg->backoff_min_ms);
    config_format_duration(max, sizeof max, cfg->backoff_max_ms);
    snprintf(buf, sizeof buf, "%s:%s", min, max);
    return cJSON_CreateString(buf);
}

static cJSON *json_remap_exit(const struct resil_config *cfg)
{
    cJSON *a = cJSON_CreateArray();

    for (int code = 0; a && code < 256; code++)
        if (cfg->remap_exit[code])
            cJSON_AddItemToArray(a, cJSON_CreateNumber(code));
    return a;
}

static cJSON *json_rewrite(const struct resil_config *cfg)
{
    cJSON *a = cJSON_CreateArray();

    for (int sig = 1; a && sig < RESIL_MAX_SIGNAL; sig++) {
        char from[16], to[16], buf[40];

        if (cfg->rewrite[sig] < 0)
            continue;
        format_signal(from, sizeof from, sig);
        format_signal(to, sizeof to, cfg->rewrite[sig]);
        snprintf(buf, sizeof buf, "%s:%s", from, cfg->rewrite[sig] ? to : "0");
        cJSON_AddItemToArray(a, cJSON_CreateString(buf));
    }
    return a;
}

static cJSON *json_strings(char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();

    for (size_t i = 0; a && v && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

static cJSON *json_option(const struct resil_config *cfg, enum opt_id id)
{
    switch (id) {
    case OPT_SUBREAPER:
        return cJSON_CreateBool(cfg->subreaper);
    case OPT_SINGLE_CHILD:
        return cJSON_CreateBool(cfg->single_child);
    case OPT_REMAP_EXIT:
        return json_remap_exit(cfg);
    case OPT_PDEATH_SIGNAL:
        return json_signal(cfg->pdeath_signal);
    case OPT_REWRITE:
        return json_rewrite(cfg);
    case OPT_GRACE:
        return json_duration(cfg->grace_ms);
    case OPT_RESTART:
        return json_text(choice_name(restart_choices, (int)cfg->restart));
    case OPT_MAX_RESTARTS:
        return cJSON_CreateNumber(cfg->max_restarts);
    case OPT_RESTART_WINDOW:
        return json_duration(cfg->restart_window_ms);
    case OPT_BACKOFF:
        return json_backoff(cfg);
    case OPT_STATE_DIR:
        return json_text(cfg->state_dir);
    case OPT_TERMINATION_LOG:
        return json_text(cfg->termination_log);
    case OPT_HEALTH_URL:
        return json_text(cfg->health_url);
    case OPT_HEALTH_UNIX_SOCKET:
        return json_text(cfg->health_unix_socket);
    case OPT_HEALTH_INTERVAL:
        return json_duration(cfg->health_interval_ms);
    case OPT_HEALTH_TIMEOUT:
        return json_duration(cfg->health_timeout_ms);
    case OPT_HEALTH_START_PERIOD:
        return json_duration(cfg->health_start_period_ms);
    case OPT_HEALTH_RETRIES:
        return cJSON_CreateNumber(cfg->health_retries);
    case OPT_HEALTH_JSON_FIELD:
        return json_text(cfg->health_json_field);
    case OPT_ON_UNHEALTHY:
        return json_text(choice_name(unhealthy_choices, (int)cfg->on_unhealthy));
    case OPT_CGROUP_ROOT:
        return json_text(cfg->cgroup_root);
    case OPT_MEMORY_WARN:
        return json_size(&cfg->memory_warn);
    case OPT_MEMORY_CRITICAL:
        return json_size(&cfg->memory_critical);
    case OPT_MEMORY_RESTART:
        return json_size(&cfg->memory_restart);
    case OPT_MEMORY_RESTART_FOR:
        return json_duration(cfg->memory_restart_for_ms);
    case OPT_MEMORY_INTERVAL:
        return json_duration(cfg->memory_interval_ms);
    case OPT_EMERGENCY_ENV:
        return json_strings(cfg->emergency_env, cfg->emergency_env_count);
    case OPT_PRESSURE_SIGNAL:
        return json_signal(cfg->pressure_signal);
    case OPT_RUNTIME_HINTS:
        return cJSON_CreateBool(cfg->runtime_hints);
    case OPT_VERBOSE:
        return cJSON_CreateNumber(cfg->verbose);
    case OPT_LOG_LEVEL:
        return json_text(choice_name(level_choices, (int)cfg->log_level));
    case OPT_LOG_FORMAT:
        return json_text(choice_name(format_choices, (int)cfg->log_format));
    case OPT_CONFIG:
        return json_text(cfg->config_file);
    case OPT_CHECK_CONFIG:
        return cJSON_CreateBool(cfg->check_config);
    default:
        return NULL;
    }
}

char *config_to_json(const struct resil_config *cfg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *cmd;
    char *out = NULL;

    if (!root)
        return NULL;
    for (int id = 0; id < OPT_COUNT; id++) {
        cJSON *v;

        if (kind_of((enum opt_id)id) == KIND_ACTION)
            continue;
        v = json_option(cfg, (enum opt_id)id);
        if (!v)
            goto out;
        cJSON_AddItemToObject(root, config_options[id].name, v);
    }
    cmd = json_strings(cfg->command, cfg->command ? (size_t)cfg->command_argc : 0);
    if (!cmd)
        goto out;
    cJSON_AddItemToObject(root, "command", cmd);
    out = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return out;
}
