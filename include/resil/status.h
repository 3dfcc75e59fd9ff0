/* status.json: the supervisor's state, written atomically on every change, and
 * read back by `resil-init status` and `resil-init probe`. */
#ifndef RESIL_STATUS_H
#define RESIL_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "resil/health.h"
#include "resil/memory.h"

enum status_app_state {
    STATUS_APP_STARTING,
    STATUS_APP_RUNNING,
    STATUS_APP_UNHEALTHY,
    STATUS_APP_DRAINING, /* a stop was asked: --stop-delay before it is forwarded */
    STATUS_APP_STOPPING,
    STATUS_APP_BACKOFF,
    STATUS_APP_EXITED
};

struct status_exit {
    bool present;
    int code;        /* exit status, or -1 when killed by a signal */
    int signal;      /* 0 when it exited */
    char reason[32]; /* crash, unhealthy, memory, oom, exit, stop, ... */
    long long at_ms; /* CLOCK_REALTIME ms */
};

struct status_snapshot {
    int resil_pid;
    int app_pid; /* 0 when no app runs */
    enum status_app_state state;
    long long started_at_ms;
    unsigned restarts;
    bool emergency;
    struct status_exit last_exit;
    const char *health_url;             /* NULL when no health loop */
    const struct health_state *health;  /* NULL when no health loop */
    const struct memory_sample *memory; /* NULL when unknown */
};

/* Resolves --state-dir (NULL: /run/resil-init when usable, else $TMPDIR/resil-init) and
 * creates it. Returns a malloc'd path or NULL. */
char *status_dir_resolve(const char *configured, bool create);

/* Writes dir/status.json via a temp file and rename. 0 or -1 (errno set). */
int status_write(const char *dir, const struct status_snapshot *s);

/* A subcommand's --state-dir DIR (and RESIL_STATE_DIR) into cfg->state_dir;
 * -1 with one line on stderr for any other word (cfg then freed). */
struct resil_config;
int status_parse_dir_args(int argc, char **argv, struct resil_config *cfg);

/* The `status` and `probe` subcommands; they return the process exit code.
 * probe takes --ready or --live (SPEC 8). */
int status_command(int argc, char **argv);
int status_probe_command(int argc, char **argv);

#endif
