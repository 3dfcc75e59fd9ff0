/* status.json: the snapshot as JSON, the state directory (a tmpfs by default,
 * where a write costs no disk I/O), the atomic write, and the `status` and
 * `probe` subcommands that read it back. Written by the supervisor through a
 * temp file and rename, so a reader never sees half a file. */
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
#include <sys/vfs.h>
#include <unistd.h>

#include "resil/config.h"
#include "resil/json.h"
#include "resil/log.h"
#include "resil/util.h"

extern char **environ;

#define STATUS_FILE "status.json"
#define STATUS_READ_MAX (256 * 1024)
/* Both file names of a write: each, as before, up to 4 KiB. */
#define STATUS_NAMES_MAX (2 * 4096)

/* musl-gcc has no <linux/magic.h>. */
#define TMPFS_MAGIC_VALUE 0x01021994UL
#define RAMFS_MAGIC_VALUE 0x858458f6UL

static const char *const state_names[] = {"starting", "running", "unhealthy", "draining",
                                          "stopping", "backoff", "exited"};

static const char *app_state_name(enum status_app_state s)
{
    return (unsigned)s <= STATUS_APP_EXITED ? state_names[s] : "exited";
}

static void out_last_exit(struct json_out *o, const struct status_exit *e)
{
    if (!e->present) {
        json_null(o, "last_exit");
        return;
    }
    json_open(o, "last_exit");
    if (e->signal)
        json_null(o, "code");
    else
        json_int(o, "code", e->code);
    if (e->signal)
        json_text(o, "signal", config_signal_name(e->signal) ? config_signal_name(e->signal) : "?");
    else
        json_null(o, "signal");
    json_text(o, "reason", e->reason);
    json_time(o, "at", e->at_ms);
    json_close(o);
}

static void out_app(struct json_out *o, const struct status_snapshot *s)
{
    json_open(o, "app");
    json_u64(o, "pid", s->app_pid > 0, (uint64_t)s->app_pid);
    json_text(o, "state", app_state_name(s->state));
    json_time(o, "started_at", s->started_at_ms);
    json_u64(o, "restarts", true, s->restarts);
    json_bool(o, "emergency", s->emergency);
    out_last_exit(o, &s->last_exit);
    json_close(o);
}

static void out_health(struct json_out *o, const struct status_snapshot *s)
{
    const struct health_state *st = s->health;
    json_open(o, "health");
    if (s->health_url)
        json_text(o, "url", s->health_url);
    else
        json_null(o, "url");
    json_text(o, "status", health_status_name(st ? st->status : HEALTH_STATUS_UNKNOWN));
    json_u64(o, "consecutive_failures", true, st ? st->consecutive_failures : 0);
    json_time(o, "last_check_at", st ? st->last_check_at_ms : 0);
    json_u64(o, "last_http_status", st && st->last_http_status > 0,
             st ? (uint64_t)st->last_http_status : 0);
    if (st && st->last_verdict[0])
        json_text(o, "last_verdict", st->last_verdict);
    else
        json_null(o, "last_verdict");
    json_close(o);
}

static void out_memory(struct json_out *o, const struct status_snapshot *s)
{
    const struct memory_sample *ms = s->memory;
    bool ok = ms && ms->available;
    json_open(o, "memory");
    json_u64(o, "limit_bytes", ok && ms->limited, ok ? ms->limit_bytes : 0);
    json_u64(o, "working_set_bytes", ok, ok ? ms->working_set_bytes : 0);
    json_text(o, "tier", memory_tier_name(ok ? ms->tier : MEMORY_TIER_UNKNOWN));
    if (ok && ms->psi_some_avg10 >= 0)
        json_hundredths(o, "psi_some_avg10", ms->psi_some_avg10);
    else
        json_null(o, "psi_some_avg10");
    json_u64(o, "oom_kills", ok, ok ? ms->oom_kills : 0);
    json_close(o);
}

/* Everything but the strings from outside fits in this; each of their bytes
 * takes at most 6 ("\u00XX", or "\ufffd" for an invalid byte). */
#define STATUS_FIXED_MAX 1024

static size_t status_text_max(const struct status_snapshot *s)
{
    size_t outside = strnlen(s->last_exit.reason, sizeof s->last_exit.reason);
    if (s->health_url)
        outside += strlen(s->health_url);
    if (s->health)
        outside += strnlen(s->health->last_verdict, sizeof s->health->last_verdict);
    return STATUS_FIXED_MAX + 6 * outside;
}

/* The JSON object into buf; its length, or 0 when it did not fit in cap. */
static size_t status_render(const struct status_snapshot *s, char *buf, size_t cap)
{
    struct json_out o;
    json_begin(&o, buf, cap);
    json_open(&o, NULL);
    json_text(&o, "version", RESIL_VERSION);
    json_u64(&o, "pid", true, (uint64_t)s->resil_pid);
    out_app(&o, s);
    out_health(&o, s);
    out_memory(&o, s);
    json_close(&o);
    return json_end(&o);
}

char *status_to_json(const struct status_snapshot *s)
{
    size_t cap = status_text_max(s);
    char *text = malloc(cap);
    if (text && status_render(s, text, cap) == 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Why path may not hold status.json, or NULL when it may. resil-init often
 * runs as root and `probe` trusts what it reads: a directory that is a symlink,
 * belongs to someone else or that others can write to would let them steer
 * root's writes (a planted symlink) or forge the state a probe reports. */
static const char *dir_problem(const char *path, char *buf, size_t len)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return strerror(errno);
    if (S_ISLNK(st.st_mode))
        return "it is a symbolic link";
    if (!S_ISDIR(st.st_mode))
        return "not a directory";
    if (st.st_uid != geteuid()) {
        snprintf(buf, len, "owned by uid %u, not by resil-init's uid %u", (unsigned)st.st_uid,
                 (unsigned)geteuid());
        return buf;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(buf, len, "writable by %s (mode %04o)",
                 st.st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st.st_mode & 07777));
        return buf;
    }
    if (access(path, W_OK) < 0)
        return strerror(errno);
    return NULL;
}

/* 0 when path is (now) a directory status.json may be written in; otherwise
 * -1, with one warning when warn (the last candidate). */
static int usable_dir(const char *path, bool warn)
{
    char buf[96];
    const char *problem = NULL;
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        problem = strerror(errno);
    else
        problem = dir_problem(path, buf, sizeof buf);
    if (!problem)
        return 0;
    if (warn)
        log_warn("state directory %s is not used: %s; status.json is not written", path, problem);
    return -1;
}

static bool on_tmpfs(const char *path)
{
    struct statfs sfs;
    if (statfs(path, &sfs) < 0)
        return false;
    unsigned long type = (unsigned long)sfs.f_type;
    return type == TMPFS_MAGIC_VALUE || type == RAMFS_MAGIC_VALUE;
}

#define DEFAULT_DIRS_MAX 4

/* The default state directories, best first: renaming over status.json on ext4
 * or overlayfs starts a disk write every time, on a tmpfs it costs nothing, so
 * a tmpfs /run comes first, then /dev/shm (a tmpfs in every Docker and
 * Kubernetes container), then /run and $TMPDIR on whatever they are. The
 * subcommands look in the same order, so they find what the supervisor wrote.
 * Only the $TMPDIR one is made, in tmpdir. */
static size_t default_dirs(const char *dirs[DEFAULT_DIRS_MAX], char tmpdir[4096])
{
    size_t n = 0;
    bool run_tmpfs = on_tmpfs("/run");
    if (run_tmpfs)
        dirs[n++] = "/run/resil-init";
    if (on_tmpfs("/dev/shm"))
        dirs[n++] = "/dev/shm/resil-init";
    if (!run_tmpfs)
        dirs[n++] = "/run/resil-init";
    const char *tmp = getenv("TMPDIR");
    if ((size_t)snprintf(tmpdir, 4096, "%s/resil-init", tmp && *tmp ? tmp : "/tmp") < 4096)
        dirs[n++] = tmpdir;
    return n;
}

static bool has_status_file(const char *dir)
{
    char path[4096 + sizeof STATUS_FILE + 1];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, STATUS_FILE) >= sizeof path)
        return false;
    return access(path, R_OK) == 0;
}

char *status_dir_resolve(const char *configured, bool create)
{
    if (configured) {
        if (create && usable_dir(configured, true) < 0)
            return NULL;
        return strdup(configured);
    }
    const char *dirs[DEFAULT_DIRS_MAX];
    char tmpdir[4096];
    size_t n = default_dirs(dirs, tmpdir);
    for (size_t i = 0; i < n; i++)
        if (create ? usable_dir(dirs[i], i + 1 == n) == 0 : has_status_file(dirs[i]))
            return strdup(dirs[i]);
    /* A reader names the best place in its message; a writer has none. */
    return create || n == 0 ? NULL : strdup(dirs[0]);
}

/* The JSON and its newline, for one write(2), in buf when it fits (the usual
 * case: no allocation, so no fresh page per write), else in a malloc'd one
 * that *owned says to free. */
static char *status_line(const struct status_snapshot *s, char *buf, size_t buflen, size_t *len,
                         char **owned)
{
    size_t cap = status_text_max(s) + 1;
    char *line = cap <= buflen ? buf : malloc(cap);
    *owned = line == buf ? NULL : line;
    size_t n = line ? status_render(s, line, cap - 1) : 0;
    if (n == 0)
        return NULL;
    line[n] = '\n';
    line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

/* The temp file is created, never opened as found: O_EXCL and O_NOFOLLOW, so a
 * name planted in the directory (a symlink to /etc/shadow) is removed, not
 * written through. */
static int create_temp(const char *tmp)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    /* openat: musl's open() follows O_CLOEXEC with an fcntl of its own. */
    int fd = openat(AT_FDCWD, tmp, flags, 0644);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = openat(AT_FDCWD, tmp, flags, 0644);
    return fd;
}

/* The temp name and the final one, packed in names: for a usual state dir
 * both sit in one page of stack, not two (each page a write first touches is
 * a page fault, and the last write is on the way out of every run). */
static bool status_names(char names[STATUS_NAMES_MAX], const char *dir, const char **tmp,
                         const char **final)
{
    int n = snprintf(names, STATUS_NAMES_MAX / 2, "%s/.%s.tmp", dir, STATUS_FILE);
    if (n < 0 || n >= STATUS_NAMES_MAX / 2)
        return false;
    char *second = names + n + 1;
    int m = snprintf(second, STATUS_NAMES_MAX / 2, "%s/%s", dir, STATUS_FILE);
    if (m < 0 || m >= STATUS_NAMES_MAX / 2)
        return false;
    *tmp = names;
    *final = second;
    return true;
}

static int write_file(const char *dir, const char *text, size_t len)
{
    char names[STATUS_NAMES_MAX];
    const char *tmp, *final;
    if (!status_names(names, dir, &tmp, &final)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = create_temp(tmp);
    if (fd < 0)
        return -1;
    int rc = util_write_all(fd, text, len);
    int saved = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, final) < 0) {
        rc = -1;
        saved = errno;
    }
    if (rc < 0)
        unlink(tmp);
    errno = saved;
    return rc;
}

/* One warning per breakage (a full disk fails every write), one line when it
 * works again: a status file that stopped changing must not go unexplained. */
static int last_write_errno;

int status_write(const char *dir, const struct status_snapshot *s)
{
    size_t len = 0;
    char buf[STATUS_FIXED_MAX + 1024], *owned;
    char *text = status_line(s, buf, sizeof buf, &len, &owned);
    int rc = text ? write_file(dir, text, len) : -1;
    int err = rc < 0 ? (text ? errno : ENOMEM) : 0;
    free(owned);
    if (err && err != last_write_errno)
        log_warn("cannot write %s/%s: %s; it may be out of date", dir, STATUS_FILE, strerror(err));
    else if (!err && last_write_errno)
        log_info("%s/%s is written again", dir, STATUS_FILE);
    last_write_errno = err;
    errno = err;
    return rc;
}

/* --- the subcommands --- */

/* --state-dir and RESIL_STATE_DIR, read by the option table like resil-init's own. */
int status_parse_dir_args(int argc, char **argv, struct resil_config *cfg)
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
    /* Only a regular file, not through a symlink: a FIFO or device there must
     * not hang a probe, and a link must not make root print a file it names.
     * resil-init only ever renames a regular file into place. */
    size_t n = 0;
    char *buf = util_read_file(path, STATUS_READ_MAX, UTIL_READ_REGULAR | UTIL_READ_NOFOLLOW, &n);
    if (!buf) {
        fprintf(stderr, "resil-init %s: no state file at %s: %s\n", cmd, path,
                errno == EINVAL  ? "not a regular file"
                : errno == ELOOP ? "a symbolic link, not resil-init's file"
                                 : strerror(errno));
        return NULL;
    }
    const char *problem = n == 0 ? "it is empty" : strlen(buf) != n ? "it holds a NUL byte" : NULL;
    if (problem) {
        fprintf(stderr, "resil-init %s: %s is not a state file: %s\n", cmd, path, problem);
        free(buf);
        return NULL;
    }
    return buf;
}

int status_command(int argc, char **argv)
{
    struct resil_config cfg;
    if (status_parse_dir_args(argc, argv, &cfg) < 0)
        return 2;
    char *text = read_status_file("status", cfg.state_dir);
    config_free(&cfg);
    if (!text)
        return 1;
    fputs(text, stdout);
    size_t len = strlen(text); /* never 0: read_status_file refuses that */
    if (text[len - 1] != '\n')
        fputc('\n', stdout);
    free(text);
    return 0;
}

/* resil-init's own pid as written is only meaningful in its PID namespace; a
 * probe runs in the same container, so a vanished pid means a stale file. */
static bool supervisor_alive(const cJSON *root)
{
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(root, "pid");
    /* Checked as a double first: converting one past INT_MAX is undefined. */
    if (!cJSON_IsNumber(pid) || !(pid->valuedouble >= 1 && pid->valuedouble <= 4194304))
        return false;
    return kill((pid_t)pid->valuedouble, 0) == 0 || errno == EPERM;
}

enum probe_kind { PROBE_APP, PROBE_READY, PROBE_LIVE };

/* Takes --ready / --live out of argv (in place); -1 when both are given. */
static int probe_kind_from_args(int *argc, char **argv, enum probe_kind *kind)
{
    *kind = PROBE_APP;
    int kept = 1;
    for (int i = 1; i < *argc; i++) {
        enum probe_kind k = strcmp(argv[i], "--ready") == 0  ? PROBE_READY
                            : strcmp(argv[i], "--live") == 0 ? PROBE_LIVE
                                                             : PROBE_APP;
        if (k == PROBE_APP) {
            argv[kept++] = argv[i];
            continue;
        }
        if (*kind != PROBE_APP && *kind != k)
            return -1;
        *kind = k;
    }
    *argc = kept;
    return 0;
}

static bool last_check_passed(const cJSON *root)
{
    const cJSON *health = cJSON_GetObjectItemCaseSensitive(root, "health");
    if (!cJSON_IsObject(health))
        return true; /* no health check configured */
    const cJSON *failures = cJSON_GetObjectItemCaseSensitive(health, "consecutive_failures");
    return cJSON_IsNumber(failures) && failures->valuedouble == 0;
}

/* probe: the app runs and is not unhealthy. --ready: it runs, its last check
 * passed, and no stop or restart is under way. --live: resil-init supervises. */
static bool probe_passes(enum probe_kind kind, const char *state, const cJSON *root)
{
    switch (kind) {
    case PROBE_READY:
        return strcmp(state, "running") == 0 && last_check_passed(root);
    case PROBE_LIVE:
        return strcmp(state, "exited") != 0;
    case PROBE_APP:
        break;
    }
    return strcmp(state, "running") == 0 || strcmp(state, "starting") == 0 ||
           strcmp(state, "draining") == 0;
}

int status_probe_command(int argc, char **argv)
{
    enum probe_kind kind;
    if (probe_kind_from_args(&argc, argv, &kind) < 0) {
        fprintf(stderr, "resil-init probe: --ready and --live exclude each other\n");
        return 2;
    }
    struct resil_config cfg;
    if (status_parse_dir_args(argc, argv, &cfg) < 0)
        return 2;
    char *text = read_status_file("probe", cfg.state_dir);
    config_free(&cfg);
    if (!text)
        return 1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        fprintf(stderr, "resil-init probe: the state file is not a JSON object\n");
        cJSON_Delete(root);
        return 1;
    }
    const cJSON *app = cJSON_GetObjectItemCaseSensitive(root, "app");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(app, "state");
    const char *name = cJSON_IsString(state) ? state->valuestring : "unknown";
    bool alive = supervisor_alive(root);
    bool ok = alive && probe_passes(kind, name, root);
    if (!ok && !alive)
        fprintf(stderr, "resil-init probe: resil-init is not running (stale state file)\n");
    else if (!ok && kind == PROBE_READY && strcmp(name, "running") == 0)
        fprintf(stderr, "resil-init probe: not ready: the last health check failed\n");
    else if (!ok)
        fprintf(stderr, "resil-init probe: %sapp is %s\n", kind == PROBE_READY ? "not ready: " : "",
                name);
    cJSON_Delete(root);
    return ok ? 0 : 1;
}
