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

    /* the rest */
    char *config_file;
    bool check_config;
    char **command; /* points into argv; NULL-terminated */
    int command_argc;
};

/* Where a value came from, lowest precedence first. */
enum config_source {
    CONFIG_SOURCE_DEFAULT,
    CONFIG_SOURCE_FILE,
    CONFIG_SOURCE_ENV,
    CONFIG_SOURCE_FLAG
};

struct config_option {
    const char *name; /* long name, e.g. "health-url"; env RESIL_HEALTH_URL */
    char short_name;  /* 0 when none */
    const char *arg;  /* metavar, NULL for a switch taking no value */
    bool repeatable;
    const char *group; /* heading in --help and the README */
    const char *default_text;
    const char *help;
};

extern const struct config_option config_options[];
extern const size_t config_option_count;

/* Parses argv (starting after the program name), the environment and the config
 * file named by --config / RESIL_CONFIG into cfg. On error returns -1 with one
 * line (no newline) in err, naming the option, variable or key at fault. */
int config_load(struct resil_config *cfg, int argc, char **argv, char **envp, char *err,
                size_t errlen);
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
