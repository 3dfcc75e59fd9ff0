/* Configuration: one option table serves flags, RESIL_* environment variables
 * and the JSON config file (precedence: flag > environment > file > default). */
#ifndef RESIL_CONFIG_H
#define RESIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#include "resil/log.h"

#define RESIL_MAX_SIGNAL 65   /* signals 1..64 */
#define CONFIG_OPTIONS_MAX 64 /* room for the option table's rows */

enum config_restart_policy { CONFIG_RESTART_NO, CONFIG_RESTART_ON_FAILURE, CONFIG_RESTART_ALWAYS };
enum config_on_unhealthy { CONFIG_ON_UNHEALTHY_RESTART, CONFIG_ON_UNHEALTHY_EXIT };

/* A size given in bytes or as a percentage of the memory limit. */
struct config_size_spec {
    bool set;
    bool is_percent;
    uint64_t bytes; /* when !is_percent */
    double percent; /* 0 < percent <= 100, when is_percent */
};

struct resil_config {
    /* 1. init core */
    bool subreaper;                /* accepted; always on when not PID 1 */
    bool single_child;             /* -c */
    bool remap_exit[256];          /* -e CODE */
    int pdeath_signal;             /* -p, 0 = none */
    int rewrite[RESIL_MAX_SIGNAL]; /* -r FROM:TO; -1 = unchanged, 0 = drop */
    uint64_t grace_ms;
    int verbose; /* each -v: one level more */
    enum log_level log_level;
    enum log_format log_format;

    /* 2. supervision and health */
    enum config_restart_policy restart;
    unsigned max_restarts;
    uint64_t restart_window_ms;
    uint64_t backoff_min_ms;
    uint64_t backoff_max_ms;
    char *health_url;
    char *health_unix_socket;
    uint64_t health_interval_ms;
    uint64_t health_timeout_ms;
    uint64_t health_start_period_ms;
    unsigned health_retries;
    char *health_json_field; /* NULL: "status", then "overall_status" */
    enum config_on_unhealthy on_unhealthy;
    char *state_dir;       /* NULL: /run/resil-init, else $TMPDIR/resil-init */
    char *termination_log; /* NULL: /dev/termination-log when it exists */

    /* 3. memory */
    char *cgroup_root; /* NULL: detect */
    struct config_size_spec memory_warn;
    struct config_size_spec memory_critical;
    struct config_size_spec memory_restart; /* !set: off */
    uint64_t memory_restart_for_ms;
    uint64_t memory_interval_ms;
    char **emergency_env; /* KEY=VALUE strings */
    size_t emergency_env_count;
    bool emergency_env_explicit; /* given by the user, not the default set */
    int pressure_signal;         /* 0 = none */
    bool runtime_hints;

    /* 4. sockets, draining, metrics (acted on by their own modules) */
    char **listen; /* --listen ADDR strings as given; NULL-terminated */
    size_t listen_count;
    unsigned listen_backlog;
    uint64_t stop_delay_ms;
    char *metrics; /* --metrics ADDR; NULL: no metrics endpoint */

    /* the rest */
    char *config_file;
    bool check_config;
    char **command; /* points into argv; NULL-terminated */
    int command_argc;
    /* where each option's value came from (enum config_source), by table row:
     * read it with config_source_of */
    unsigned char sources[CONFIG_OPTIONS_MAX];
};

/* Where a value came from, lowest precedence first. */
enum config_source {
    CONFIG_SOURCE_DEFAULT,
    CONFIG_SOURCE_FILE,
    CONFIG_SOURCE_ENV,
    CONFIG_SOURCE_FLAG
};

/* How an option's value is spelled and stored; each type has one parser, one
 * default writer, one --help text and one --check-config form in config.c. */
enum config_type {
    CONFIG_TYPE_SWITCH,     /* bool; the bare flag means true */
    CONFIG_TYPE_COUNT,      /* int; each bare use counts one more (-vv) */
    CONFIG_TYPE_UINT,       /* unsigned, within min..max */
    CONFIG_TYPE_DURATION,   /* uint64_t milliseconds */
    CONFIG_TYPE_BACKOFF,    /* two uint64_t ms, MIN[:MAX] (offset: MIN, aux_offset: MAX) */
    CONFIG_TYPE_SIZE,       /* struct config_size_spec */
    CONFIG_TYPE_SIGNAL,     /* int, 0 = none */
    CONFIG_TYPE_CHOICE,     /* an enum, spelled as one of the row's words */
    CONFIG_TYPE_STRING,     /* char *, NULL = unset */
    CONFIG_TYPE_STRINGS,    /* repeatable: char ** (NULL-terminated), count at aux_offset */
    CONFIG_TYPE_ENV,        /* like STRINGS, of KEY=VALUE items, one per KEY */
    CONFIG_TYPE_EXIT_CODES, /* repeatable: bool[256], the codes reported as 0 */
    CONFIG_TYPE_REWRITE,    /* repeatable: int[RESIL_MAX_SIGNAL] of FROM:TO */
    CONFIG_TYPE_ACTION,     /* --help, --version: main acts on them, nothing is stored */
};

/* A word of a CONFIG_TYPE_CHOICE option; aliases follow the value's name. */
struct config_choice {
    const char *name;
    int value;
};

/* The default of a row, by its type (other types default to zero / none). */
union config_default {
    bool on;                      /* SWITCH */
    unsigned n;                   /* UINT */
    uint64_t ms;                  /* DURATION */
    uint64_t range_ms[2];         /* BACKOFF: MIN, MAX */
    int choice;                   /* CHOICE */
    struct config_size_spec size; /* SIZE; !set: off */
    const char *item;             /* STRINGS, ENV: the one default item, or NULL */
};

/* Row flags. */
#define CONFIG_POSITIVE 1u    /* DURATION, SIZE: 0 is refused */
#define CONFIG_OFF_OK 2u      /* SIZE, SIGNAL: "0", "off" and "none" unset it */
#define CONFIG_NOT_IN_FILE 4u /* no key in a config file (--config itself) */

/* One row of the option table: everything resil-init knows about an option. */
struct config_option {
    const char *name;  /* long name, e.g. "health-url"; env RESIL_HEALTH_URL */
    char short_name;   /* 0 when none */
    const char *arg;   /* metavar, NULL for a switch taking no value */
    const char *group; /* heading in --help and the README */
    const char *help;
    enum config_type type;
    size_t offset;     /* of its field in struct resil_config */
    size_t aux_offset; /* a second field, by type (see enum config_type) */
    union config_default def;
    /* --help's [default] where the value does not say it ("found from ..."); NULL:
     * config_default_text derives it from def. */
    const char *default_text;
    uint64_t min, max; /* UINT, COUNT: inclusive bounds */
    unsigned flags;
    bool repeatable;                     /* each use adds to a list or counts */
    const struct config_choice *choices; /* CHOICE: NULL-terminated */
    /* A further check of one given value (a URL's form, a path's length): 0, or
     * -1 with one line in err, which the caller prefixes with the option's name. */
    int (*check)(const char *value, char *err, size_t errlen);
};

extern const struct config_option config_options[];
extern const size_t config_option_count;

/* Where the named option's value came from: CONFIG_SOURCE_DEFAULT when the user
 * gave none (or the name is no option). */
enum config_source config_source_of(const struct resil_config *cfg, const char *name);

/* The [default] --help prints for o, in buf (or a static text); NULL for none. */
const char *config_default_text(const struct config_option *o, char *buf, size_t len);

/* The --help or --version row when argv (after the program name) asks for one
 * among its options (an app's own --help after COMMAND is the app's); else NULL. */
const struct config_option *config_early_action(int argc, char **argv);

/* Parses argv (starting after the program name), the environment and the config
 * file named by --config / RESIL_CONFIG into cfg. On error returns -1 with one
 * line (no newline) in err, naming the option, variable or key at fault. */
int config_load(struct resil_config *cfg, int argc, char **argv, char **envp, char *err,
                size_t errlen);
/* config_load for a subcommand: only the options named in `only` (NULL-terminated)
 * are read, from flags and RESIL_* variables (no config file), and any other
 * word of argv is an error. */
int config_load_only(struct resil_config *cfg, const char *const *only, int argc, char **argv,
                     char **envp, char *err, size_t errlen);
void config_free(struct resil_config *cfg);

/* Effective settings as a JSON object (caller frees), for --check-config. */
char *config_to_json(const struct resil_config *cfg);

/* Value parsers, shared with the tests. Each returns 0, or -1 on bad input. */
int config_parse_duration_ms(const char *s, uint64_t *out);
int config_parse_size(const char *s, bool allow_percent, struct config_size_spec *out);
int config_parse_signal(const char *s, int *out);            /* "TERM", "SIGTERM", "15" */
int config_parse_rewrite(const char *s, int *from, int *to); /* "15:3", "TERM:QUIT", "HUP:0" */
int config_parse_uint(const char *s, unsigned max, unsigned *out);
int config_parse_bool(const char *s, bool *out); /* 1/0 true/false yes/no on/off */
const char *config_signal_name(int sig);         /* "TERM", or NULL when unknown */
/* The shortest spelling config_parse_duration_ms reads back: "8s", "2m", "250ms". */
void config_format_duration(char *buf, size_t len, uint64_t ms);

/* Resolved byte value of a size against a limit (0 when a percentage has no limit). */
uint64_t config_size_spec_bytes(const struct config_size_spec *s, uint64_t limit_bytes);

#endif
