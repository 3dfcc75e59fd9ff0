/* status.json: the snapshot as JSON, the state directory, the atomic write, and
 * the `status` and `probe` subcommands that read it back. Written by the supervisor through a temp
 * file and rename, so a reader (`resil-init status`, `resil-init probe`) never sees half a file. */
#define _GNU_SOURCE /* O_CLOEXEC on old headers */
#include "resil/status.h"
#include "resil/status_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resil/config.h"
#include "resil/log.h"
#include "resil/util.h"

extern char **environ;

#define STATUS_FILE "status.json"
#define STATUS_READ_MAX (256 * 1024)

static const char *const state_names[] = {"starting", "running", "unhealthy",
                                          "stopping", "backoff", "exited"};

static const char *app_state_name(enum status_app_state s)
{
    return (unsigned)s <= STATUS_APP_EXITED ? state_names[s] : "exited";
}

static void add_time(cJSON *obj, const char *key, long long realtime_ms)
{
    if (realtime_ms <= 0) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    char ts[40];
    log_format_time(ts, sizeof ts, realtime_ms);
    cJSON_AddStringToObject(obj, key, ts);
}

static cJSON *last_exit_json(const struct status_exit *e)
{
    if (!e->present)
        return cJSON_CreateNull();
    cJSON *obj = cJSON_CreateObject();
    if (e->signal)
        cJSON_AddNullToObject(obj, "code");
    else
        cJSON_AddNumberToObject(obj, "code", e->code);
    if (e->signal)
        cJSON_AddStringToObject(
            obj, "signal", config_signal_name(e->signal) ? config_signal_name(e->signal) : "?");
    else
        cJSON_AddNullToObject(obj, "signal");
    cJSON_AddStringToObject(obj, "reason", e->reason);
    add_time(obj, "at", e->at_ms);
    return obj;
}

static cJSON *app_json(const struct status_snapshot *s)
{
    cJSON *app = cJSON_CreateObject();
    if (s->app_pid > 0)
        cJSON_AddNumberToObject(app, "pid", s->app_pid);
    else
        cJSON_AddNullToObject(app, "pid");
    cJSON_AddStringToObject(app, "state", app_state_name(s->state));
    add_time(app, "started_at", s->started_at_ms);
    cJSON_AddNumberToObject(app, "restarts", s->restarts);
    cJSON_AddBoolToObject(app, "emergency", s->emergency);
    cJSON_AddItemToObject(app, "last_exit", last_exit_json(&s->last_exit));
    return app;
}

static cJSON *health_json(const struct status_snapshot *s)
{
    cJSON *h = cJSON_CreateObject();
    const struct health_state *st = s->health;
    if (s->health_url)
        cJSON_AddStringToObject(h, "url", s->health_url);
    else
        cJSON_AddNullToObject(h, "url");
    cJSON_AddStringToObject(h, "status",
                            health_status_name(st ? st->status : HEALTH_STATUS_UNKNOWN));
    cJSON_AddNumberToObject(h, "consecutive_failures", st ? st->consecutive_failures : 0);
    add_time(h, "last_check_at", st ? st->last_check_at_ms : 0);
    if (st && st->last_http_status > 0)
        cJSON_AddNumberToObject(h, "last_http_status", (double)st->last_http_status);
    else
        cJSON_AddNullToObject(h, "last_http_status");
    if (st && st->last_verdict[0])
        cJSON_AddStringToObject(h, "last_verdict", st->last_verdict);
    else
        cJSON_AddNullToObject(h, "last_verdict");
    return h;
}

static void add_u64_or_null(cJSON *obj, const char *key, bool present, uint64_t v)
{
    if (present)
        cJSON_AddNumberToObject(obj, key, (double)v);
    else
        cJSON_AddNullToObject(obj, key);
}

static cJSON *memory_json(const struct status_snapshot *s)
{
    cJSON *m = cJSON_CreateObject();
    const struct memory_sample *ms = s->memory;
    bool ok = ms && ms->available;
    add_u64_or_null(m, "limit_bytes", ok && ms->limited, ok ? ms->limit_bytes : 0);
    add_u64_or_null(m, "working_set_bytes", ok, ok ? ms->working_set_bytes : 0);
    cJSON_AddStringToObject(m, "tier", memory_tier_name(ok ? ms->tier : MEMORY_TIER_UNKNOWN));
    if (ok && ms->psi_some_avg10 >= 0)
        cJSON_AddNumberToObject(m, "psi_some_avg10", ms->psi_some_avg10);
    else
        cJSON_AddNullToObject(m, "psi_some_avg10");
    add_u64_or_null(m, "oom_kills", ok, ok ? ms->oom_kills : 0);
    return m;
}

char *status_to_json(const struct status_snapshot *s)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", RESIL_VERSION);
    cJSON_AddNumberToObject(root, "pid", s->resil_pid);
    cJSON_AddItemToObject(root, "app", app_json(s));
    cJSON_AddItemToObject(root, "health", health_json(s));
    cJSON_AddItemToObject(root, "memory", memory_json(s));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return access(path, W_OK);
    return -1;
}

static char *tmpdir_state_path(void)
{
    const char *tmp = getenv("TMPDIR");
    char *path = NULL;
    if (asprintf(&path, "%s/resil-init", tmp && *tmp ? tmp : "/tmp") < 0)
        return NULL;
    return path;
}

char *status_dir_resolve(const char *configured, bool create)
{
    if (configured) {
        if (create && make_dir(configured) < 0)
            return NULL;
        return strdup(configured);
    }
    if (create ? make_dir("/run/resil-init") == 0
               : access("/run/resil-init/" STATUS_FILE, R_OK) == 0)
        return strdup("/run/resil-init");
    char *fallback = tmpdir_state_path();
    if (fallback && create && make_dir(fallback) < 0) {
        free(fallback);
        return NULL;
    }
    return fallback;
}

int status_write(const char *dir, const struct status_snapshot *s)
{
    char *text = status_to_json(s);
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, STATUS_FILE);
    snprintf(final, sizeof final, "%s/%s", dir, STATUS_FILE);
    int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int rc = -1;
    if (fd >= 0) {
        rc = util_write_all(fd, text, strlen(text)) == 0 && util_write_all(fd, "\n", 1) == 0 ? 0
                                                                                             : -1;
        rc = close(fd) == 0 ? rc : -1;
        if (rc == 0)
            rc = rename(tmp, final);
        if (rc < 0)
            unlink(tmp);
    }
    free(text);
    return rc;
}

/* --- the subcommands --- */

/* --state-dir and RESIL_STATE_DIR, read by the option table like resil-init's own. */
static int parse_state_dir_args(int argc, char **argv, struct resil_config *cfg)
{
    static const char *const only[] = {"state-dir", NULL};
    char err[256];
    if (config_load_only(cfg, only, argc - 1, argv + 1, environ, err, sizeof err) < 0) {
        fprintf(stderr, "resil-init %s: %s (only --state-dir DIR)\n", argv[0], err);
        config_free(cfg);
        return -1;
    }
    return 0;
}

/* Reads the state file into a malloc'd string; NULL with a message on stderr. */
static char *read_status_file(const char *cmd, const char *configured_dir)
{
    char *dir = status_dir_resolve(configured_dir, false);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", STATUS_FILE);
    free(dir);
    /* Only a regular file: a FIFO or device there must not hang a probe. */
    size_t n = 0;
    char *buf = util_read_file(path, STATUS_READ_MAX, UTIL_READ_REGULAR, &n);
    if (!buf) {
        fprintf(stderr, "resil-init %s: no state file at %s: %s\n", cmd, path,
                errno == EINVAL ? "not a regular file" : strerror(errno));
        return NULL;
    }
    if (n == 0) {
        fprintf(stderr, "resil-init %s: empty state file at %s\n", cmd, path);
        free(buf);
        return NULL;
    }
    return buf;
}

int status_command(int argc, char **argv)
{
    struct resil_config cfg;
    if (parse_state_dir_args(argc, argv, &cfg) < 0)
        return 2;
    char *text = read_status_file("status", cfg.state_dir);
    config_free(&cfg);
    if (!text)
        return 1;
    fputs(text, stdout);
    size_t len = strlen(text); /* 0 when the file starts with a NUL byte */
    if (len == 0 || text[len - 1] != '\n')
        fputc('\n', stdout);
    free(text);
    return 0;
}

/* resil-init's own pid as written is only meaningful in its PID namespace; a
 * probe runs in the same container, so a vanished pid means a stale file. */
static bool supervisor_alive(const cJSON *root)
{
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(root, "pid");
    if (!cJSON_IsNumber(pid) || pid->valuedouble < 1)
        return false;
    return kill((pid_t)pid->valuedouble, 0) == 0 || errno == EPERM;
}

int status_probe_command(int argc, char **argv)
{
    struct resil_config cfg;
    if (parse_state_dir_args(argc, argv, &cfg) < 0)
        return 2;
    char *text = read_status_file("probe", cfg.state_dir);
    config_free(&cfg);
    if (!text)
        return 1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *app = cJSON_GetObjectItemCaseSensitive(root, "app");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(app, "state");
    const char *name = cJSON_IsString(state) ? state->valuestring : "unknown";
    bool ok =
        (strcmp(name, "running") == 0 || strcmp(name, "starting") == 0) && supervisor_alive(root);
    if (!ok)
        fprintf(stderr, "resil-init probe: app is %s\n", name);
    cJSON_Delete(root);
    return ok ? 0 : 1;
}
