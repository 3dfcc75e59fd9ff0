/* Configuration: one option table (config_options[], a row per option: its
 * names, type, field, default, limits and flags) feeds the command line, the
 * RESIL_* environment, the JSON config file, --help and --check-config; what an
 * option does is per-type code over its row, so the ways in cannot drift apart.
 * Sources are applied lowest precedence first (file, environment, flags): a later
 * scalar simply overwrites, and a repeatable option is emptied the first time a
 * higher source touches it, so the highest source giving a list replaces the others. */
#include "resil/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "resil/json.h"
#include "resil/listen.h"
#include "resil/metrics_http.h"
#include "resil/util.h"

/* A config file is a handful of keys; anything bigger is a mistake, not a config. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Far below what a nanosecond timespec holds, so callers may convert freely. */
#define DURATION_MAX_MS (UINT64_C(100) * 365 * 24 * 3600 * 1000)
/* Fraction digits kept: enough for ms of hours, and frac * unit cannot overflow. */
#define FRACTION_SCALE_MAX 1000000
#define VERBOSE_MAX 100
/* The restart budget holds one 8-byte timestamp per restart it allows, allocated
 * up front: 100000 is 800 kB at most, and more restarts than that inside one
 * window is a crash loop, not a budget. Far larger values used to make that
 * allocation fail and restarts silently stop. */
#define MAX_RESTARTS_MAX 100000

enum opt_id {
    OPT_SUBREAPER,
    OPT_SINGLE_CHILD,
    OPT_REMAP_EXIT,
    OPT_PDEATH_SIGNAL,
    OPT_REWRITE,
    OPT_GRACE,
    OPT_STOP_DELAY,
    OPT_RESTART,
    OPT_MAX_RESTARTS,
    OPT_RESTART_WINDOW,
    OPT_BACKOFF,
    OPT_STATE_DIR,
    OPT_TERMINATION_LOG,
    OPT_LISTEN,
    OPT_LISTEN_BACKLOG,
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
    OPT_METRICS,
    OPT_CONFIG,
    OPT_CHECK_CONFIG,
    OPT_HELP,
    OPT_VERSION,
    OPT_COUNT
};

static const struct config_choice restart_choices[] = {{"no", CONFIG_RESTART_NO},
                                                       {"on-failure", CONFIG_RESTART_ON_FAILURE},
                                                       {"always", CONFIG_RESTART_ALWAYS},
                                                       {NULL, 0}};
static const struct config_choice unhealthy_choices[] = {
    {"restart", CONFIG_ON_UNHEALTHY_RESTART}, {"exit", CONFIG_ON_UNHEALTHY_EXIT}, {NULL, 0}};
static const struct config_choice level_choices[] = {
    {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},    {"info", LOG_LEVEL_INFO},
    {"debug", LOG_LEVEL_DEBUG}, {"warning", LOG_LEVEL_WARN}, {NULL, 0}};
static const struct config_choice format_choices[] = {
    {"text", LOG_FORMAT_TEXT}, {"json", LOG_FORMAT_JSON}, {NULL, 0}};

/* ---- checks of single values, beyond their type ---- */

static int check_http_url(const char *value, char *err, size_t errlen)
{
    size_t skip = strncasecmp(value, "http://", 7) == 0    ? 7
                  : strncasecmp(value, "https://", 8) == 0 ? 8
                                                           : 0;

    if (skip == 0 || value[skip] == '\0') {
        char shown[128];
        util_redact_url(value, shown, sizeof shown);
        snprintf(err, errlen, "expected an http:// or https:// URL, got \"%.64s\"", shown);
        return -1;
    }
    for (const char *p = value; *p; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
            snprintf(err, errlen, "URL contains a space or control character");
            return -1;
        }
    }
    return 0;
}

static int check_socket_path(const char *value, char *err, size_t errlen)
{
    const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

    if (strlen(value) <= max)
        return 0;
    snprintf(err, errlen, "path longer than %zu bytes", max);
    return -1;
}

/* ---- the option table ---- */

/* offsetof a field of struct resil_config, refused at compile time unless the
 * field has type T, so a row cannot point its type's code at the wrong field.
 * (T is a type name, which cannot be parenthesized.) */
#define AT(field, T) /* NOLINTNEXTLINE(bugprone-macro-parentheses) */                              \
    _Generic(((struct resil_config *)0)->field, T : offsetof(struct resil_config, field))

#define SWITCH(f) .type = CONFIG_TYPE_SWITCH, .offset = AT(f, bool)
#define COUNT(f) .type = CONFIG_TYPE_COUNT, .offset = AT(f, int)
#define UINT(f) .type = CONFIG_TYPE_UINT, .offset = AT(f, unsigned)
#define DURATION(f) .type = CONFIG_TYPE_DURATION, .offset = AT(f, uint64_t)
#define SIZE(f) .type = CONFIG_TYPE_SIZE, .offset = AT(f, struct config_size_spec)
#define SIGNAL(f) .type = CONFIG_TYPE_SIGNAL, .offset = AT(f, int), .flags = CONFIG_OFF_OK
#define CHOICE(f, E, words) .type = CONFIG_TYPE_CHOICE, .offset = AT(f, E), .choices = (words)
#define STRING(f) .type = CONFIG_TYPE_STRING, .offset = AT(f, char *)
#define STRINGS(f, n)                                                                              \
    .type = CONFIG_TYPE_STRINGS, .offset = AT(f, char **), .aux_offset = AT(n, size_t),            \
    .repeatable = true
#define ENV_LIST(f, n)                                                                             \
    .type = CONFIG_TYPE_ENV, .offset = AT(f, char **), .aux_offset = AT(n, size_t),                \
    .repeatable = true
#define EXIT_CODES(f) .type = CONFIG_TYPE_EXIT_CODES, .offset = AT(f, bool *), .repeatable = true
#define REWRITE(f) .type = CONFIG_TYPE_REWRITE, .offset = AT(f, int *), .repeatable = true
#define BACKOFF(lo, hi)                                                                            \
    .type = CONFIG_TYPE_BACKOFF, .offset = AT(lo, uint64_t), .aux_offset = AT(hi, uint64_t)
#define ACTION .type = CONFIG_TYPE_ACTION

/* CHOICE fields are written as int. */
_Static_assert(sizeof(enum config_restart_policy) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum config_on_unhealthy) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum stored as int");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum stored as int");

const struct config_option config_options[OPT_COUNT] = {
    [OPT_SUBREAPER] = {"subreaper", 's', NULL, "Init",
                       "tini compatibility; subreaper is automatic when not PID 1",
                       SWITCH(subreaper), .def.on = true},
    [OPT_SINGLE_CHILD] = {"single-child", 'c', NULL, "Init",
                          "signal the app alone, not its process group", SWITCH(single_child)},
    [OPT_REMAP_EXIT] = {"remap-exit", 'e', "CODE", "Init",
                        "report an app exit status CODE as 0 (tini -e)", EXIT_CODES(remap_exit)},
    [OPT_PDEATH_SIGNAL] = {"pdeath-signal", 'p', "SIG", "Init",
                           "signal resil-init gets when its parent dies (tini -p)",
                           SIGNAL(pdeath_signal)},
    [OPT_REWRITE] = {"rewrite", 'r', "FROM:TO", "Init",
                     "forward signal FROM as TO; TO 0 drops it (dumb-init -r)", REWRITE(rewrite)},
    [OPT_GRACE] = {"grace", 0, "DURATION", "Init",
                   "after SIGTERM, time before the app's group gets SIGKILL", DURATION(grace_ms),
                   .def.ms = 8000},
    [OPT_STOP_DELAY] = {"stop-delay", 0, "DURATION", "Init",
                        "on SIGTERM/SIGINT, wait this long before forwarding it",
                        DURATION(stop_delay_ms)},
    [OPT_RESTART] = {"restart", 0, "P", "Supervision", "restart policy: no, on-failure or always",
                     CHOICE(restart, enum config_restart_policy, restart_choices),
                     .def.choice = CONFIG_RESTART_NO},
    [OPT_MAX_RESTARTS] = {"max-restarts", 0, "N", "Supervision",
                          "restarts allowed inside --restart-window before giving up",
                          UINT(max_restarts), .def.n = 5, .max = MAX_RESTARTS_MAX},
    [OPT_RESTART_WINDOW] = {"restart-window", 0, "DURATION", "Supervision",
                            "sliding window for --max-restarts", DURATION(restart_window_ms),
                            .def.ms = 10 * 60 * 1000, .flags = CONFIG_POSITIVE},
    [OPT_BACKOFF] = {"backoff", 0, "MIN[:MAX]", "Supervision",
                     "delay before a restart, doubling from MIN to MAX",
                     BACKOFF(backoff_min_ms, backoff_max_ms), .def.range_ms = {1000, 30 * 1000}},
    [OPT_STATE_DIR] = {"state-dir", 0, "DIR", "Supervision", "holds status.json", STRING(state_dir),
                       /* which one, and the fallbacks: README, "status.json" */
                       .default_text = "/run/resil-init or /dev/shm/resil-init"},
    [OPT_TERMINATION_LOG] = {"termination-log", 0, "PATH", "Supervision",
                             "gets the exit reason line", STRING(termination_log),
                             .default_text = "/dev/termination-log when it exists"},
    [OPT_LISTEN] = {"listen", 0, "ADDR", "Supervision",
                    "a listening socket the app inherits, kept across restarts",
                    STRINGS(listen, listen_count), .check = listen_validate},
    /* listen(2) takes an int. */
    [OPT_LISTEN_BACKLOG] = {"listen-backlog", 0, "N", "Supervision",
                            "backlog of each --listen socket", UINT(listen_backlog), .def.n = 4096,
                            .min = 1, .max = INT_MAX},
    [OPT_HEALTH_URL] = {"health-url", 0, "URL", "Health checks",
                        "http:// URL to check; enables the health loop", STRING(health_url),
                        .check = check_http_url},
    [OPT_HEALTH_UNIX_SOCKET] = {"health-unix-socket", 0, "PATH", "Health checks",
                                "send the health request over this Unix socket",
                                STRING(health_unix_socket), .check = check_socket_path},
    [OPT_HEALTH_INTERVAL] = {"health-interval", 0, "DURATION", "Health checks",
                             "time between the starts of two checks", DURATION(health_interval_ms),
                             .def.ms = 30 * 1000, .flags = CONFIG_POSITIVE},
    [OPT_HEALTH_TIMEOUT] = {"health-timeout", 0, "DURATION", "Health checks",
                            "a check taking longer fails", DURATION(health_timeout_ms),
                            .def.ms = 5 * 1000, .flags = CONFIG_POSITIVE},
    [OPT_HEALTH_START_PERIOD] = {"health-start-period", 0, "DURATION", "Health checks",
                                 "failures in this period after a start do not count",
                                 DURATION(health_start_period_ms)},
    [OPT_HEALTH_RETRIES] = {"health-retries", 0, "N", "Health checks",
                            "consecutive failures that make the app unhealthy",
                            UINT(health_retries), .def.n = 3, .min = 1, .max = UINT_MAX},
    [OPT_HEALTH_JSON_FIELD] = {"health-json-field", 0, "NAME", "Health checks",
                               "JSON field holding the verdict", STRING(health_json_field),
                               .default_text = "status, then overall_status"},
    [OPT_ON_UNHEALTHY] = {"on-unhealthy", 0, "A", "Health checks",
                          "restart (when --restart allows, else exit) or exit",
                          CHOICE(on_unhealthy, enum config_on_unhealthy, unhealthy_choices),
                          .def.choice = CONFIG_ON_UNHEALTHY_RESTART},
    [OPT_CGROUP_ROOT] = {"cgroup-root", 0, "DIR", "Memory", "where the cgroup's memory files are",
                         STRING(cgroup_root), .default_text = "found from /proc/self/cgroup"},
    [OPT_MEMORY_WARN] = {"memory-warn", 0, "SIZE", "Memory",
                         "working set at or above this is tier warning", SIZE(memory_warn),
                         .def.size = {.set = true, .is_percent = true, .percent = 75}},
    [OPT_MEMORY_CRITICAL] = {"memory-critical", 0, "SIZE", "Memory",
                             "working set at or above this is tier critical", SIZE(memory_critical),
                             .def.size = {.set = true, .is_percent = true, .percent = 85}},
    [OPT_MEMORY_RESTART] = {"memory-restart", 0, "SIZE", "Memory",
                            "restart the app when the working set stays above this",
                            SIZE(memory_restart), .flags = CONFIG_OFF_OK},
    [OPT_MEMORY_RESTART_FOR] = {"memory-restart-for", 0, "DURATION", "Memory",
                                "how long it must stay above --memory-restart",
                                DURATION(memory_restart_for_ms), .def.ms = 30 * 1000},
    [OPT_MEMORY_INTERVAL] = {"memory-interval", 0, "DURATION", "Memory",
                             "sampling period of the working set", DURATION(memory_interval_ms),
                             .def.ms = 5 * 1000, .flags = CONFIG_POSITIVE},
    [OPT_EMERGENCY_ENV] = {"emergency-env", 0, "KEY=VALUE", "Memory",
                           "set for the app in emergency mode",
                           ENV_LIST(emergency_env, emergency_env_count),
                           .def.item = "EMERGENCY_MODE=true"},
    [OPT_PRESSURE_SIGNAL] = {"pressure-signal", 0, "SIG", "Memory",
                             "sent to the app when the memory tier rises while it runs",
                             SIGNAL(pressure_signal)},
    [OPT_RUNTIME_HINTS] = {"runtime-hints", 0, NULL, "Memory",
                           "size Node.js (NODE_OPTIONS) and Go (GOMEMLIMIT) to the limit",
                           SWITCH(runtime_hints)},
    [OPT_VERBOSE] = {"verbose", 'v', NULL, "Output", "one log level more verbose per use",
                     COUNT(verbose), .max = VERBOSE_MAX, .repeatable = true},
    [OPT_LOG_LEVEL] = {"log-level", 0, "L", "Output", "error, warn, info or debug",
                       CHOICE(log_level, enum log_level, level_choices),
                       .def.choice = LOG_LEVEL_INFO},
    [OPT_LOG_FORMAT] = {"log-format", 0, "F", "Output", "text or json (one JSON object per line)",
                        CHOICE(log_format, enum log_format, format_choices),
                        .def.choice = LOG_FORMAT_TEXT},
    [OPT_METRICS] = {"metrics", 0, "ADDR", "Output",
                     "serve Prometheus GET /metrics on HOST:PORT or PORT", STRING(metrics),
                     .check = metrics_http_validate},
    [OPT_CONFIG] = {"config", 0, "FILE", "Other", "JSON file whose keys are the long option names",
                    STRING(config_file), .flags = CONFIG_NOT_IN_FILE},
    [OPT_CHECK_CONFIG] = {"check-config", 0, NULL, "Other",
                          "print the effective settings as JSON and exit", SWITCH(check_config)},
    [OPT_HELP] = {"help", 'h', NULL, "Other", "print this help and exit", ACTION},
    [OPT_VERSION] = {"version", 0, NULL, "Other", "print the version and exit", ACTION},
};

const size_t config_option_count = OPT_COUNT;
_Static_assert(OPT_COUNT <= CONFIG_OPTIONS_MAX, "struct resil_config's sources[] too small");

static bool is_list(const struct config_option *o)
{
    return o->type == CONFIG_TYPE_STRINGS || o->type == CONFIG_TYPE_ENV ||
           o->type == CONFIG_TYPE_EXIT_CODES || o->type == CONFIG_TYPE_REWRITE;
}

static int pick(const struct config_choice *c, const char *s)
{
    for (; c->name; c++)
        if (strcasecmp(c->name, s) == 0)
            return c->value;
    return -1;
}

static const char *choice_name(const struct config_choice *c, int value)
{
    for (; c->name; c++)
        if (c->value == value)
            return c->name;
    return NULL;
}

/* "no, on-failure or always": the names, aliases left out. */
static void choices_text(const struct config_choice *choices, char *buf, size_t len)
{
    size_t n = 0, used = 0;

    for (const struct config_choice *c = choices; c->name; c++)
        if (choice_name(choices, c->value) == c->name)
            n++;
    buf[0] = '\0';
    for (const struct config_choice *c = choices; c->name && used < len; c++) {
        if (choice_name(choices, c->value) != c->name)
            continue;
        n--;
        used += (size_t)snprintf(buf + used, len - used, "%s%s", c->name,
                                 n > 1    ? ", "
                                 : n == 1 ? " or "
                                          : "");
    }
}

/* ---- value parsers ---- */

static int scale_decimal(const struct util_decimal *d, uint64_t unit, uint64_t *out)
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
        struct util_decimal d;
        uint64_t unit, part;

        if (util_read_decimal(&p, FRACTION_SCALE_MAX, &d) < 0)
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
    struct util_decimal d;
    uint64_t unit, bytes;

    if (!s || util_read_decimal(&p, FRACTION_SCALE_MAX, &d) < 0)
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
    uint64_t v;

    if (util_parse_u64(s, max, &v) < 0)
        return -1;
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

/* ---- fields, by a row's offsets ---- */

static void *field_at(struct resil_config *cfg, size_t offset)
{
    return (char *)cfg + offset;
}

static const void *cfield_at(const struct resil_config *cfg, size_t offset)
{
    return (const char *)cfg + offset;
}

/* A STRINGS or ENV list: the NULL-terminated vector and its count. */
struct list_ref {
    char ***items;
    size_t *count;
};

static struct list_ref list_of(struct resil_config *cfg, const struct config_option *o)
{
    return (struct list_ref){field_at(cfg, o->offset), field_at(cfg, o->aux_offset)};
}

static void list_clear(struct list_ref l)
{
    for (size_t i = 0; i < *l.count; i++)
        free((*l.items)[i]);
    free(*l.items);
    *l.items = NULL;
    *l.count = 0;
}

/* Adds item; with one_per_key (KEY=VALUE items) it replaces an earlier entry
 * for the same KEY, so each name is set once. */
static int list_put(struct list_ref l, const char *item, bool one_per_key)
{
    size_t keylen = strcspn(item, "=");
    char *copy = strdup(item);
    char **grown;

    if (!copy)
        return -1;
    for (size_t i = 0; one_per_key && i < *l.count; i++) {
        if (strncmp((*l.items)[i], item, keylen + 1) == 0) {
            free((*l.items)[i]);
            (*l.items)[i] = copy;
            return 0;
        }
    }
    grown = realloc(*l.items, (*l.count + 2) * sizeof *grown);
    if (!grown) {
        free(copy);
        return -1;
    }
    grown[(*l.count)++] = copy;
    grown[*l.count] = NULL;
    *l.items = grown;
    return 0;
}

/* ---- applying values ---- */

struct load_ctx {
    struct resil_config *cfg;
    enum config_source source;             /* the source being applied now */
    enum config_source applied[OPT_COUNT]; /* highest source that set each option */
    const char *file_path;                 /* the config file, once read */
    const char *const *only;               /* NULL, or the only option names read */
    bool lenient;                          /* skip unknown options (config_early_action) */
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

static void reset_rewrite(int *rewrite)
{
    for (int i = 0; i < RESIL_MAX_SIGNAL; i++)
        rewrite[i] = -1;
}

/* The first value a source gives a repeatable option replaces what lower sources gave. */
static void begin_option(struct load_ctx *ctx, enum opt_id id)
{
    const struct config_option *o = &config_options[id];
    void *at = field_at(ctx->cfg, o->offset);

    if (ctx->applied[id] >= ctx->source)
        return;
    ctx->applied[id] = ctx->source;
    switch (o->type) {
    case CONFIG_TYPE_EXIT_CODES:
        memset(at, 0, 256 * sizeof(bool));
        break;
    case CONFIG_TYPE_REWRITE:
        reset_rewrite(at);
        break;
    case CONFIG_TYPE_STRINGS:
    case CONFIG_TYPE_ENV:
        list_clear(list_of(ctx->cfg, o));
        break;
    case CONFIG_TYPE_COUNT:
        *(int *)at = 0;
        break;
    default:
        break;
    }
}

/* "0", "off" and "none" let a higher source switch off what a lower one set. */
static bool is_off(const struct config_option *o, const char *value)
{
    return (o->flags & CONFIG_OFF_OK) &&
           (strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0 ||
            strcasecmp(value, "none") == 0);
}

static int set_switch(struct load_ctx *ctx, const struct config_option *o, const char *who,
                      const char *value, void *at)
{
    bool *out = at;

    (void)o;
    if (!value) {
        *out = true;
        return 0;
    }
    if (config_parse_bool(value, out) < 0)
        return fail(ctx, "%s: expected true or false (yes/no, on/off, 1/0), got \"%.64s\"", who,
                    value);
    return 0;
}

static int set_count(struct load_ctx *ctx, const struct config_option *o, const char *who,
                     const char *value, void *at)
{
    int *out = at;
    unsigned n;

    if (!value) {
        if ((uint64_t)*out < o->max)
            (*out)++;
        return 0;
    }
    if (config_parse_uint(value, (unsigned)o->max, &n) < 0)
        return fail(ctx, "%s: bad count \"%.64s\"", who, value);
    *out = (int)n;
    return 0;
}

static int set_uint(struct load_ctx *ctx, const struct config_option *o, const char *who,
                    const char *value, void *at)
{
    unsigned *out = at;
    unsigned n;

    if (config_parse_uint(value, UINT_MAX, &n) < 0)
        return fail(ctx, "%s: bad number \"%.64s\"", who, value);
    if (n < o->min)
        return fail(ctx, "%s: must be at least %llu, got \"%.64s\"", who,
                    (unsigned long long)o->min, value);
    if (n > o->max)
        return fail(ctx, "%s: must be at most %llu, got \"%.64s\"", who, (unsigned long long)o->max,
                    value);
    *out = n;
    return 0;
}

static int set_duration(struct load_ctx *ctx, const struct config_option *o, const char *who,
                        const char *value, void *at)
{
    uint64_t *out = at;
    uint64_t ms;

    if (config_parse_duration_ms(value, &ms) < 0)
        return fail(ctx, "%s: bad duration \"%.64s\"", who, value);
    if ((o->flags & CONFIG_POSITIVE) && ms == 0)
        return fail(ctx, "%s: must be more than 0, got \"%.64s\"", who, value);
    *out = ms;
    return 0;
}

static int set_backoff(struct load_ctx *ctx, const struct config_option *o, const char *who,
                       const char *value, void *at)
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
    *(uint64_t *)at = min;
    *(uint64_t *)field_at(ctx->cfg, o->aux_offset) = max;
    return 0;
}

static int set_size(struct load_ctx *ctx, const struct config_option *o, const char *who,
                    const char *value, void *at)
{
    struct config_size_spec *out = at;
    struct config_size_spec s;

    if (is_off(o, value)) {
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

static int set_signal(struct load_ctx *ctx, const struct config_option *o, const char *who,
                      const char *value, void *at)
{
    int *out = at;

    if (is_off(o, value)) {
        *out = 0;
        return 0;
    }
    if (config_parse_signal(value, out) < 0)
        return fail(ctx, "%s: bad signal \"%.64s\"", who, value);
    return 0;
}

static int set_choice(struct load_ctx *ctx, const struct config_option *o, const char *who,
                      const char *value, void *at)
{
    int *out = at;
    int v = pick(o->choices, value);
    char expected[128];

    if (v < 0) {
        choices_text(o->choices, expected, sizeof expected);
        return fail(ctx, "%s: expected %s, got \"%.64s\"", who, expected, value);
    }
    *out = v;
    return 0;
}

static int set_string(struct load_ctx *ctx, const struct config_option *o, const char *who,
                      const char *value, void *at)
{
    char **out = at;
    char *copy;

    (void)o;
    if (!*value)
        return fail(ctx, "%s: must not be empty", who);
    copy = strdup(value);
    if (!copy)
        return out_of_memory(ctx);
    free(*out);
    *out = copy;
    return 0;
}

static int add_string(struct load_ctx *ctx, const struct config_option *o, const char *who,
                      const char *value, void *at)
{
    (void)at;
    if (!*value)
        return fail(ctx, "%s: must not be empty", who);
    if (list_put(list_of(ctx->cfg, o), value, false) < 0)
        return out_of_memory(ctx);
    return 0;
}

static int add_env_item(struct load_ctx *ctx, const struct config_option *o, const char *who,
                        const char *value, void *at)
{
    const char *eq = strchr(value, '=');

    (void)at;
    if (!eq)
        return fail(ctx, "%s: expected KEY=VALUE, got \"%.64s\"", who, value);
    if (!valid_env_name(value, (size_t)(eq - value)))
        return fail(ctx, "%s: bad variable name in \"%.64s\"", who, value);
    if (list_put(list_of(ctx->cfg, o), value, true) < 0)
        return out_of_memory(ctx);
    return 0;
}

static int add_exit_code(struct load_ctx *ctx, const struct config_option *o, const char *who,
                         const char *value, void *at)
{
    bool *codes = at;
    unsigned code;

    (void)o;
    if (config_parse_uint(value, 255, &code) < 0)
        return fail(ctx, "%s: bad exit code \"%.64s\"", who, value);
    codes[code] = true;
    return 0;
}

static int add_rewrite(struct load_ctx *ctx, const struct config_option *o, const char *who,
                       const char *value, void *at)
{
    int *rewrite = at;
    int from, to;

    (void)o;
    if (config_parse_rewrite(value, &from, &to) < 0)
        return fail(ctx, "%s: bad rewrite \"%.64s\" (expected FROM:TO, e.g. TERM:QUIT or HUP:0)",
                    who, value);
    if (from == SIGKILL || from == SIGSTOP)
        return fail(ctx, "%s: %s cannot be caught, so it cannot be rewritten", who,
                    config_signal_name(from));
    rewrite[from] = to;
    return 0;
}

/* One parser per type: it checks value and stores it in its field (at). */
typedef int (*setter)(struct load_ctx *ctx, const struct config_option *o, const char *who,
                      const char *value, void *at);
static const setter setters[] = {
    [CONFIG_TYPE_SWITCH] = set_switch,   [CONFIG_TYPE_COUNT] = set_count,
    [CONFIG_TYPE_UINT] = set_uint,       [CONFIG_TYPE_DURATION] = set_duration,
    [CONFIG_TYPE_BACKOFF] = set_backoff, [CONFIG_TYPE_SIZE] = set_size,
    [CONFIG_TYPE_SIGNAL] = set_signal,   [CONFIG_TYPE_CHOICE] = set_choice,
    [CONFIG_TYPE_STRING] = set_string,   [CONFIG_TYPE_STRINGS] = add_string,
    [CONFIG_TYPE_ENV] = add_env_item,    [CONFIG_TYPE_EXIT_CODES] = add_exit_code,
    [CONFIG_TYPE_REWRITE] = add_rewrite,
};
_Static_assert(sizeof setters / sizeof setters[0] == CONFIG_TYPE_ACTION, "a setter per type");

/* value is NULL only for a switch or counter given on the command line without "=". */
static int set_value(struct load_ctx *ctx, enum opt_id id, const char *value, const char *who)
{
    const struct config_option *o = &config_options[id];
    void *at = field_at(ctx->cfg, o->offset);
    char why[160];

    begin_option(ctx, id);
    if (value && o->check && o->check(value, why, sizeof why) < 0)
        return fail(ctx, "%s: %s", who, why);
    return o->type == CONFIG_TYPE_ACTION ? 0 /* main.c acts on these before config_load */
                                         : setters[o->type](ctx, o, who, value, at);
}

static bool option_read(const struct load_ctx *ctx, int id)
{
    if (!ctx->only)
        return true;
    for (const char *const *n = ctx->only; *n; n++)
        if (strcmp(*n, config_options[id].name) == 0)
            return true;
    return false;
}

static int option_by_name(const struct load_ctx *ctx, const char *name, size_t len)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (strncmp(config_options[i].name, name, len) == 0 &&
            config_options[i].name[len] == '\0' && option_read(ctx, i))
            return i;
    return -1;
}

static int option_by_short(const struct load_ctx *ctx, char c)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (config_options[i].short_name == c && option_read(ctx, i))
            return i;
    return -1;
}

/* ---- defaults and freeing ---- */

static int set_default(struct resil_config *cfg, const struct config_option *o)
{
    void *at = field_at(cfg, o->offset);

    switch (o->type) {
    case CONFIG_TYPE_SWITCH:
        *(bool *)at = o->def.on;
        break;
    case CONFIG_TYPE_UINT:
        *(unsigned *)at = o->def.n;
        break;
    case CONFIG_TYPE_DURATION:
        *(uint64_t *)at = o->def.ms;
        break;
    case CONFIG_TYPE_BACKOFF:
        *(uint64_t *)at = o->def.range_ms[0];
        *(uint64_t *)field_at(cfg, o->aux_offset) = o->def.range_ms[1];
        break;
    case CONFIG_TYPE_SIZE:
        *(struct config_size_spec *)at = o->def.size;
        break;
    case CONFIG_TYPE_CHOICE:
        *(int *)at = o->def.choice;
        break;
    case CONFIG_TYPE_STRINGS:
    case CONFIG_TYPE_ENV:
        if (o->def.item)
            return list_put(list_of(cfg, o), o->def.item, false);
        break;
    case CONFIG_TYPE_REWRITE:
        reset_rewrite(at);
        break;
    default:
        break; /* zero: off, none, empty */
    }
    return 0;
}

static int config_defaults(struct resil_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < OPT_COUNT; i++)
        if (set_default(cfg, &config_options[i]) < 0)
            return -1;
    return 0;
}

void config_free(struct resil_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct config_option *o = &config_options[i];

        if (o->type == CONFIG_TYPE_STRING) {
            char **s = field_at(cfg, o->offset);

            free(*s);
            *s = NULL;
        } else if (o->type == CONFIG_TYPE_STRINGS || o->type == CONFIG_TYPE_ENV) {
            list_clear(list_of(cfg, o));
        }
    }
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
    struct cli_item *v = util_grow(items->v, &items->cap, items->n + 1, sizeof *v);

    if (!v)
        return out_of_memory(ctx);
    items->v = v;
    items->v[items->n++] = (struct cli_item){(enum opt_id)id, value, is_short};
    return 0;
}

static int cli_long(struct load_ctx *ctx, struct cli_items *items, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    int id = option_by_name(ctx, name, len);
    const char *value = eq ? eq + 1 : NULL;

    if (id < 0 && ctx->lenient) {
        (*i)++;
        return 0;
    }
    if (id < 0)
        return fail(ctx, "unknown option --%.*s", (int)(len > 64 ? 64 : len), name);
    if (config_options[id].arg && !value) {
        if (*i + 1 >= argc)
            return fail(ctx, "missing value for --%s", config_options[id].name);
        value = argv[++*i];
    } else if (!config_options[id].arg && value && config_options[id].type != CONFIG_TYPE_SWITCH) {
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

        if (*p == 'g' && !ctx->only)
            continue; /* tini's -g: group signalling is the default already */
        id = option_by_short(ctx, *p);
        if (id < 0 && ctx->lenient)
            break;
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

const struct config_option *config_early_action(int argc, char **argv)
{
    struct resil_config scratch = {0};
    struct load_ctx ctx = {.cfg = &scratch, .lenient = true};
    struct cli_items items = {0};
    const struct config_option *found = NULL;

    /* A malformed word ends the scan: what was found before it still counts,
     * and config_load reports the word itself. */
    (void)cli_collect(&ctx, &items, argc, argv);
    for (size_t i = 0; i < items.n && !found; i++)
        if (config_options[items.v[i].id].type == CONFIG_TYPE_ACTION)
            found = &config_options[items.v[i].id];
    free(items.v);
    return found;
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

static int option_by_env(const struct load_ctx *ctx, const char *name, const char *end)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (config_options[i].type != CONFIG_TYPE_ACTION &&
            env_name_is(config_options[i].name, name, end) && option_read(ctx, i))
            return i;
    return -1;
}

/* An empty variable counts as unset: templates often render "RESIL_X=" for "no value". */
static const char *env_get(char **envp, const char *name)
{
    const char *v = util_env_get(envp, name);

    return v && *v ? v : NULL;
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

/* A list in one variable: items split at ',' or newline. For KEY=VALUE items a ','
 * only splits before another KEY=, so values such as "-Xss1m,-Xmx1g" survive. */
static int apply_env_list(struct load_ctx *ctx, enum opt_id id, const char *value, const char *who)
{
    bool env_items = config_options[id].type == CONFIG_TYPE_ENV;
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
        id = option_by_env(ctx, *e + 6, eq);
        /* Like getenv(), the first of duplicate entries counts. */
        if (id < 0 || seen[id])
            continue;
        seen[id] = true;
        snprintf(who, sizeof who, "%.*s", (int)(eq - *e), *e);
        if (is_list(&config_options[id])) {
            if (apply_env_list(ctx, (enum opt_id)id, eq + 1, who) < 0)
                return -1;
        } else if (set_value(ctx, (enum opt_id)id, eq + 1, who) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- config file ---- */

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

/* The JSON a config file may give for one value of a type. */
enum json_form { JSON_BOOL, JSON_NUMBER, JSON_STRING_OR_NUMBER, JSON_STRING };

static enum json_form json_form_of(enum config_type t)
{
    switch (t) {
    case CONFIG_TYPE_SWITCH:
        return JSON_BOOL;
    case CONFIG_TYPE_COUNT:
        return JSON_NUMBER;
    case CONFIG_TYPE_UINT:
    case CONFIG_TYPE_DURATION:
    case CONFIG_TYPE_BACKOFF:
    case CONFIG_TYPE_SIZE:
    case CONFIG_TYPE_SIGNAL:
    case CONFIG_TYPE_EXIT_CODES:
        return JSON_STRING_OR_NUMBER;
    default:
        return JSON_STRING;
    }
}

static int apply_json_value(struct load_ctx *ctx, enum opt_id id, const cJSON *item,
                            const char *who)
{
    char num[64] = "";

    if (cJSON_IsNumber(item))
        snprintf(num, sizeof num, "%.15g", item->valuedouble);
    switch (json_form_of(config_options[id].type)) {
    case JSON_BOOL:
        if (!cJSON_IsBool(item))
            return type_error(ctx, who, "true or false", item);
        return set_value(ctx, id, cJSON_IsTrue(item) ? "true" : "false", who);
    case JSON_NUMBER:
        if (!cJSON_IsNumber(item))
            return type_error(ctx, who, "a number", item);
        return set_value(ctx, id, num, who);
    case JSON_STRING_OR_NUMBER:
        if (cJSON_IsString(item))
            return set_value(ctx, id, item->valuestring, who);
        if (!cJSON_IsNumber(item))
            return type_error(ctx, who, "a string or a number", item);
        return set_value(ctx, id, num, who);
    case JSON_STRING:
        if (!cJSON_IsString(item))
            return type_error(ctx, who, "a string", item);
        return set_value(ctx, id, item->valuestring, who);
    }
    return 0;
}

static int apply_env_object(struct load_ctx *ctx, enum opt_id id, const cJSON *obj, const char *who)
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
        rc = set_value(ctx, id, kv, who);
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
    if (cJSON_IsObject(item) && config_options[id].type == CONFIG_TYPE_ENV)
        return apply_env_object(ctx, id, item, who);
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
    int id = option_by_name(ctx, key, strlen(key));
    char who[1024];

    if (id < 0)
        return fail(ctx, "config file %s: unknown key \"%.64s\"", path, key);
    if ((config_options[id].flags & CONFIG_NOT_IN_FILE) ||
        config_options[id].type == CONFIG_TYPE_ACTION)
        return fail(ctx, "config file %s: key \"%s\" is not allowed in a config file", path, key);
    if (seen[id])
        return fail(ctx, "config file %s: duplicate key \"%s\"", path, key);
    seen[id] = true;
    if (cJSON_IsNull(item))
        return 0; /* null leaves the default, as --check-config prints unset options */
    snprintf(who, sizeof who, "config file %s: key \"%s\"", path, key);
    if (is_list(&config_options[id]))
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
    size_t len = 0;
    /* WAIT: a config given as `--config <(...)` is a pipe still being written. */
    char *buf = util_read_file(path, CONFIG_FILE_MAX, UTIL_READ_WAIT, &len);
    cJSON *root;
    int rc;

    if (!buf && errno == EFBIG)
        return fail(ctx, "config file %s: larger than %d bytes", path, CONFIG_FILE_MAX);
    if (!buf)
        return fail(ctx, "config file %s: %s", path, strerror(errno));
    /* Checked by hand below, so trailing junk after the object is an error too. */
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

/* Options whose values must be ordered, low <= high. A default yields to what
 * the user gave (the defaulted one follows the given one); only two given values
 * that contradict each other are a usage error. Pairs that are not here are
 * independent by their meaning (see the README's note under the options table). */
static const struct {
    enum opt_id low, high;
} ordered_pairs[] = {
    {OPT_MEMORY_WARN, OPT_MEMORY_CRITICAL},
    /* A restart delay longer than the window that counts restarts would make
     * --max-restarts unreachable. */
    {OPT_BACKOFF, OPT_RESTART_WINDOW},
};

/* The value a pair compares: a size (by its unit), or milliseconds (a duration,
 * or backoff's MIN). kind tells comparable values apart; false when unset. */
static bool ordered_value(const struct resil_config *cfg, const struct config_option *o, int *kind,
                          long double *v)
{
    const void *at = cfield_at(cfg, o->offset);

    if (o->type == CONFIG_TYPE_SIZE) {
        const struct config_size_spec *s = at;

        *kind = s->is_percent;
        *v = s->is_percent ? (long double)s->percent : (long double)s->bytes;
        return s->set;
    }
    *kind = 2;
    *v = (long double)*(const uint64_t *)at;
    return true;
}

static void ordered_text(const struct resil_config *cfg, const struct config_option *o, char *buf,
                         size_t len)
{
    char d[32];

    if (o->type == CONFIG_TYPE_SIZE) {
        format_size(buf, len, cfield_at(cfg, o->offset));
        return;
    }
    config_format_duration(d, sizeof d, *(const uint64_t *)cfield_at(cfg, o->offset));
    snprintf(buf, len, "%s%s", o->type == CONFIG_TYPE_BACKOFF ? "MIN " : "", d);
}

/* The defaulted option `to` takes the value of the given option `from`. */
static void follow(struct resil_config *cfg, const struct config_option *to,
                   const struct config_option *from)
{
    uint64_t *ms = field_at(cfg, to->offset);

    if (to->type == CONFIG_TYPE_SIZE) {
        *(struct config_size_spec *)field_at(cfg, to->offset) =
            *(const struct config_size_spec *)cfield_at(cfg, from->offset);
        return;
    }
    *ms = *(const uint64_t *)cfield_at(cfg, from->offset);
    if (to->type == CONFIG_TYPE_BACKOFF) {
        uint64_t *max = field_at(cfg, to->aux_offset);

        if (*max < *ms)
            *max = *ms;
    }
}

static int order_pair(struct load_ctx *ctx, enum opt_id low, enum opt_id high)
{
    const struct config_option *lo = &config_options[low], *hi = &config_options[high];
    bool low_given = ctx->applied[low] > CONFIG_SOURCE_DEFAULT;
    bool high_given = ctx->applied[high] > CONFIG_SOURCE_DEFAULT;
    int lk, hk;
    long double lv, hv;
    char where[1024], lt[48], ht[48];

    if (!ordered_value(ctx->cfg, lo, &lk, &lv) || !ordered_value(ctx->cfg, hi, &hk, &hv) ||
        lk != hk || lv <= hv)
        return 0;
    if (!low_given || !high_given) {
        if (!low_given)
            follow(ctx->cfg, lo, hi);
        else
            follow(ctx->cfg, hi, lo);
        return 0;
    }
    /* Name the source a user would edit first: the one of higher precedence. */
    origin(ctx, ctx->applied[low] >= ctx->applied[high] ? low : high, where, sizeof where);
    ordered_text(ctx->cfg, lo, lt, sizeof lt);
    ordered_text(ctx->cfg, hi, ht, sizeof ht);
    return fail(ctx, "%s--%s %s is above --%s %s", where, lo->name, lt, hi->name, ht);
}

static int validate(struct load_ctx *ctx)
{
    const struct resil_config *cfg = ctx->cfg;
    char where[1024];

    if (cfg->health_unix_socket && !cfg->health_url) {
        origin(ctx, OPT_HEALTH_UNIX_SOCKET, where, sizeof where);
        return fail(ctx, "%s--health-unix-socket needs --health-url (the path and Host to ask for)",
                    where);
    }
    for (size_t i = 0; i < sizeof ordered_pairs / sizeof ordered_pairs[0]; i++)
        if (order_pair(ctx, ordered_pairs[i].low, ordered_pairs[i].high) < 0)
            return -1;
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
    const struct config_choice *words = config_options[OPT_LOG_FORMAT].choices;
    const char *env = env_get(envp, "RESIL_LOG_FORMAT");
    int fmt = env ? pick(words, env) : -1;

    for (size_t i = 0; i < items->n; i++) {
        int f = items->v[i].id == OPT_LOG_FORMAT ? pick(words, items->v[i].value) : -1;

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

static int load(struct load_ctx *ctx, int argc, char **argv, char **envp)
{
    struct resil_config *cfg = ctx->cfg;
    struct cli_items items = {0};
    int rc;

    if (ctx->errlen)
        ctx->err[0] = '\0';
    rc = config_defaults(cfg) < 0 ? out_of_memory(ctx) : 0;
    if (rc == 0)
        rc = cli_collect(ctx, &items, argc, argv);
    if (rc == 0 && ctx->only && cfg->command)
        rc = fail(ctx, "unexpected argument %.64s", cfg->command[0]);
    if (rc == 0 && ctx->only)
        rc = apply_env(ctx, envp) < 0 || apply_cli(ctx, &items) < 0 ? -1 : 0;
    else if (rc == 0)
        rc = load_sources(ctx, &items, envp);
    if (rc == 0) {
        int level = (int)cfg->log_level + cfg->verbose;

        cfg->log_level = level > LOG_LEVEL_DEBUG ? LOG_LEVEL_DEBUG : (enum log_level)level;
        cfg->emergency_env_explicit = ctx->applied[OPT_EMERGENCY_ENV] > CONFIG_SOURCE_DEFAULT;
        for (int i = 0; i < OPT_COUNT; i++)
            cfg->sources[i] = (unsigned char)ctx->applied[i];
    } else {
        config_free(cfg);
        (void)config_defaults(cfg);
        recover_log_format(cfg, &items, envp);
    }
    free(items.v);
    if (ctx->errlen)
        sanitize_line(ctx->err);
    return rc;
}

enum config_source config_source_of(const struct resil_config *cfg, const char *name)
{
    for (int i = 0; i < OPT_COUNT; i++)
        if (strcmp(config_options[i].name, name) == 0)
            return (enum config_source)cfg->sources[i];
    return CONFIG_SOURCE_DEFAULT;
}

int config_load(struct resil_config *cfg, int argc, char **argv, char **envp, char *err,
                size_t errlen)
{
    struct load_ctx ctx = {.cfg = cfg, .err = err, .errlen = err ? errlen : 0};

    return load(&ctx, argc, argv, envp);
}

int config_load_only(struct resil_config *cfg, const char *const *only, int argc, char **argv,
                     char **envp, char *err, size_t errlen)
{
    struct load_ctx ctx = {.cfg = cfg, .only = only, .err = err, .errlen = err ? errlen : 0};

    return load(&ctx, argc, argv, envp);
}

/* ---- --help's defaults and --check-config output ---- */

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

static void format_backoff(char *buf, size_t len, uint64_t min_ms, uint64_t max_ms)
{
    char min[32], max[32];

    config_format_duration(min, sizeof min, min_ms);
    config_format_duration(max, sizeof max, max_ms);
    snprintf(buf, len, "%s:%s", min, max);
}

const char *config_default_text(const struct config_option *o, char *buf, size_t len)
{
    if (o->default_text)
        return o->default_text;
    switch (o->type) {
    case CONFIG_TYPE_SWITCH:
        return o->def.on ? "on" : "off";
    case CONFIG_TYPE_UINT:
        snprintf(buf, len, "%u", o->def.n);
        return buf;
    case CONFIG_TYPE_DURATION:
        config_format_duration(buf, len, o->def.ms);
        return buf;
    case CONFIG_TYPE_BACKOFF:
        format_backoff(buf, len, o->def.range_ms[0], o->def.range_ms[1]);
        return buf;
    case CONFIG_TYPE_SIZE:
        if (!o->def.size.set)
            return "off";
        format_size(buf, len, &o->def.size);
        return buf;
    case CONFIG_TYPE_CHOICE:
        return choice_name(o->choices, o->def.choice);
    case CONFIG_TYPE_STRINGS:
    case CONFIG_TYPE_ENV:
        return o->def.item ? o->def.item : "none";
    case CONFIG_TYPE_SIGNAL:
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_EXIT_CODES:
    case CONFIG_TYPE_REWRITE:
        return "none";
    case CONFIG_TYPE_COUNT:
    case CONFIG_TYPE_ACTION:
        break;
    }
    return NULL;
}

static void out_duration(struct json_out *o, const char *key, uint64_t ms)
{
    char buf[32];

    config_format_duration(buf, sizeof buf, ms);
    json_text(o, key, buf);
}

static void format_signal(char *buf, size_t len, int sig)
{
    const char *name = config_signal_name(sig);

    if (name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%d", sig);
}

static void out_signal(struct json_out *o, const char *key, int sig)
{
    const char *name = config_signal_name(sig);

    if (sig == 0)
        json_null(o, key);
    else if (name)
        json_text(o, key, name);
    else
        json_int(o, key, sig);
}

static void out_size(struct json_out *o, const char *key, const struct config_size_spec *s)
{
    char buf[32];

    if (!s->set) {
        json_null(o, key);
    } else if (!s->is_percent) {
        json_u64(o, key, true, s->bytes);
    } else {
        format_size(buf, sizeof buf, s);
        json_text(o, key, buf);
    }
}

static void out_backoff(struct json_out *o, const char *key, uint64_t min_ms, uint64_t max_ms)
{
    char buf[72];

    format_backoff(buf, sizeof buf, min_ms, max_ms);
    json_text(o, key, buf);
}

static void out_exit_codes(struct json_out *o, const char *key, const bool *codes)
{
    json_open_array(o, key);
    for (int code = 0; code < 256; code++)
        if (codes[code])
            json_int(o, NULL, code);
    json_close_array(o);
}

static void out_rewrite(struct json_out *o, const char *key, const int *rewrite)
{
    json_open_array(o, key);
    for (int sig = 1; sig < RESIL_MAX_SIGNAL; sig++) {
        char from[16], to[16], buf[40];

        if (rewrite[sig] < 0)
            continue;
        format_signal(from, sizeof from, sig);
        format_signal(to, sizeof to, rewrite[sig]);
        snprintf(buf, sizeof buf, "%s:%s", from, rewrite[sig] ? to : "0");
        json_text(o, NULL, buf);
    }
    json_close_array(o);
}

/* --check-config output ends up in CI logs: the URL's password is not shown. */
static void out_url(struct json_out *o, const char *key, const char *url)
{
    if (!url) {
        json_null(o, key);
        return;
    }
    size_t len = strlen(url) + 4;
    char *shown = malloc(len);
    if (!shown) {
        o->overflow = true;
        return;
    }
    util_redact_url(url, shown, len);
    json_text(o, key, shown);
    free(shown);
}

static void out_strings(struct json_out *o, const char *key, char *const *v, size_t n)
{
    json_open_array(o, key);
    for (size_t i = 0; v && i < n; i++)
        json_text(o, NULL, v[i]);
    json_close_array(o);
}

static void out_option(struct json_out *o, const struct resil_config *cfg,
                       const struct config_option *opt)
{
    const void *at = cfield_at(cfg, opt->offset);
    const char *key = opt->name;

    switch (opt->type) {
    case CONFIG_TYPE_SWITCH:
        json_bool(o, key, *(const bool *)at);
        break;
    case CONFIG_TYPE_COUNT:
        json_int(o, key, *(const int *)at);
        break;
    case CONFIG_TYPE_UINT:
        json_int(o, key, *(const unsigned *)at);
        break;
    case CONFIG_TYPE_DURATION:
        out_duration(o, key, *(const uint64_t *)at);
        break;
    case CONFIG_TYPE_BACKOFF:
        out_backoff(o, key, *(const uint64_t *)at,
                    *(const uint64_t *)cfield_at(cfg, opt->aux_offset));
        break;
    case CONFIG_TYPE_SIZE:
        out_size(o, key, at);
        break;
    case CONFIG_TYPE_SIGNAL:
        out_signal(o, key, *(const int *)at);
        break;
    case CONFIG_TYPE_CHOICE:
        json_text(o, key, choice_name(opt->choices, *(const int *)at));
        break;
    case CONFIG_TYPE_STRING:
        if (opt == &config_options[OPT_HEALTH_URL])
            out_url(o, key, *(char *const *)at);
        else
            json_text(o, key, *(char *const *)at);
        break;
    case CONFIG_TYPE_STRINGS:
    case CONFIG_TYPE_ENV:
        out_strings(o, key, *(char **const *)at, *(const size_t *)cfield_at(cfg, opt->aux_offset));
        break;
    case CONFIG_TYPE_EXIT_CODES:
        out_exit_codes(o, key, at);
        break;
    case CONFIG_TYPE_REWRITE:
        out_rewrite(o, key, at);
        break;
    case CONFIG_TYPE_ACTION:
        break;
    }
}

static size_t render_config(const struct resil_config *cfg, char *buf, size_t cap)
{
    struct json_out o;

    json_begin(&o, buf, cap);
    json_open(&o, NULL);
    for (int id = 0; id < OPT_COUNT; id++)
        if (config_options[id].type != CONFIG_TYPE_ACTION)
            out_option(&o, cfg, &config_options[id]);
    out_strings(&o, "command", cfg->command, cfg->command ? (size_t)cfg->command_argc : 0);
    json_close(&o);
    return json_end(&o);
}

/* The size is not known before: the buffer doubles until the text fits. */
#define CONFIG_JSON_MAX (16u << 20)

char *config_to_json(const struct resil_config *cfg)
{
    for (size_t cap = 4096; cap <= CONFIG_JSON_MAX; cap *= 2) {
        char *buf = malloc(cap);

        if (!buf)
            return NULL;
        if (render_config(cfg, buf, cap) > 0)
            return buf;
        free(buf);
    }
    return NULL;
}
