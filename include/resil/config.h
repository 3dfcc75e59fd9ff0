/* Configuration: one option table serves flags, RESIL_* environment variables
 * and the JSON config file (precedence: flag > environment > file > default). */
#ifndef RESIL_CONFIG_H
#define RESIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>

#include "resil/log.h"

#define RESIL_MAX_SIGNAL 65 /* signals 1..64 */

enum restart_policy { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };
enum on_unhealthy { ON_UNHEALTHY_RESTART, ON_UNHEALTHY_EXIT };

/* A size given in bytes or as a percentage of the memory limit. */
struct size_spec {
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
    enum restart_policy restart;
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
    enum on_unhealthy on_unhealthy;
    char *state_dir;       /* NULL: /run/resil-init, else $TMPDIR/resil-init */
    char *termination_log; /* NULL: /dev/termination-log when it exists */

    /* 3. memory */
    char *cgroup_root; /* NULL: detect */
    struct size_spec memory_warn;
    struct size_spec memory_critical;
    struct size_spec memory_restart; /* !set: off */
    uint64_t memory_restart_for_ms;
    uint64_t memory_interval_ms;
    char **emergency_env; /* KEY=VALUE strings */
    size_t emergency_env_count;
    bool emergency_env_explicit; /* given by the user, not the default set */
    int pressure_signal;         /* 0 = none */
    bool runtime_hints;

    /* the rest */
    char *config_file;
    bool check_config;
    char **command; /* points into argv; NULL-terminated */
    int command_argc;
};

/* Where a value came from, lowest precedence first. */
enum config_source { SOURCE_DEFAULT, SOURCE_FILE, SOURCE_ENV, SOURCE_FLAG };

struct option_def {
    const char *name; /* long name, e.g. "health-url"; env RESIL_HEALTH_URL */
    char short_name;  /* 0 when none */
    const char *arg;  /* metavar, NULL for a switch taking no value */
    bool repeatable;
    const char *group; /* heading in --help and the README */
    const char *default_text;
    const char *help;
};

extern const struct option_def resil_options[];
extern const size_t resil_option_count;

/* Parses argv (starting after the program name), the environment and the config
 * file named by --config / RESIL_CONFIG into cfg. On error returns -1 with one
 * line (no newline) in err, naming the option, variable or key at fault. */
int config_load(struct resil_config *cfg, int argc, char **argv, char **envp, char *err,
                size_t errlen);
void config_free(struct resil_config *cfg);

/* Effective settings as a JSON object (caller frees), for --check-config. */
char *config_to_json(const struct resil_config *cfg);

/* Value parsers, shared with the tests. Each returns 0, or -1 on bad input. */
int parse_duration_ms(const char *s, uint64_t *out);
int parse_size(const char *s, bool allow_percent, struct size_spec *out);
int parse_signal(const char *s, int *out);            /* "TERM", "SIGTERM", "15" */
int parse_rewrite(const char *s, int *from, int *to); /* "15:3", "TERM:QUIT", "HUP:0" */
int parse_uint(const char *s, unsigned max, unsigned *out);
int parse_bool(const char *s, bool *out); /* 1/0 true/false yes/no on/off */
const char *signal_name(int sig);
/* The shortest spelling parse_duration_ms reads back: "8s", "2m", "250ms". */
void format_duration(char *buf, size_t len, uint64_t ms); /* "TERM", or NULL when unknown */

/* Resolved byte value of a size against a limit (0 when a percentage has no limit). */
uint64_t size_spec_bytes(const struct size_spec *s, uint64_t limit_bytes);

#endif
