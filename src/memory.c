/* Memory: the cgroup's limit, working set, pressure and OOM kills, the tier they
 * make, the watch that keeps them fresh while the app runs, and the app's
 * environment for a start (RESIL_* variables, emergency set, runtime hints).
 *
 * Nothing here may take resil-init down: cgroup files are read defensively and
 * anything odd only makes the sample unavailable (tier unknown). */
#include "resil/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "resil/log.h"

/* musl-gcc has no <linux/magic.h>. */
#define CGROUP2_SUPER_MAGIC_VALUE 0x63677270UL

/* The kernel reports "no limit" in v1 as PAGE_COUNTER_MAX rounded to a page
 * (9223372036854771712 and friends); nothing real comes near 2^62. */
#define UNLIMITED_FROM (UINT64_C(1) << 62)
#define MIB (UINT64_C(1) << 20)

/* memory.stat is ~2 KiB on current kernels; room to grow without a realloc. */
#define READ_CAP 16384
/* /proc/self/mountinfo can be long on busy hosts, but never this long. */
#define TEXT_MAX (4u << 20)

/* 150 ms of stall within 2 s; unprivileged triggers need a 2 s window multiple.
 * The kernel overwrites the last byte written with NUL, so the NUL is sent. */
static const char psi_trigger[] = "some 150000 2000000";
#define PSI_WINDOW_MS 2000 /* the trigger's window above */

#define PSI_WARNING 10.0
#define PSI_CRITICAL 40.0
#define DEFAULT_INTERVAL_MS 5000
#define MIN_INTERVAL_MS 10

/* ------------------------------------------------------------------------ */
/* Parsers                                                                   */
/* ------------------------------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *line_end(const char *line)
{
    const char *nl = strchr(line, '\n');
    return nl ? nl : line + strlen(line);
}

static const char *skip_spaces(const char *p)
{
    while (is_space(*p))
        p++;
    return p;
}

/* Digits at p; fails on none and on overflow (a value past 2^64 is garbage, not max). */
static int parse_digits(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    if (!is_digit(*p))
        return -1;
    for (; is_digit(*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *pp = p;
    *out = v;
    return 0;
}

int memory_parse_u64(const char *text, uint64_t *out)
{
    uint64_t v;
    if (!text || !out)
        return -1;
    const char *p = skip_spaces(text);
    if (parse_digits(&p, &v) < 0 || *skip_spaces(p) != '\0')
        return -1;
    *out = v;
    return 0;
}

int memory_parse_limit(const char *text, uint64_t *bytes, bool *unlimited)
{
    uint64_t v;
    if (!text || !bytes || !unlimited)
        return -1;
    const char *p = skip_spaces(text);
    if (strncmp(p, "max", 3) == 0 && *skip_spaces(p + 3) == '\0') {
        *bytes = UINT64_MAX;
        *unlimited = true;
        return 0;
    }
    if (memory_parse_u64(text, &v) < 0)
        return -1;
    *unlimited = v >= UNLIMITED_FROM;
    *bytes = *unlimited ? UINT64_MAX : v;
    return 0;
}

/* 1: found and parsed, 0: no such key, -1: the key's value is garbage. */
static int keyed_lookup(const char *text, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == '\t')) {
            const char *p = line + klen;
            while (*p == ' ' || *p == '\t')
                p++;
            uint64_t v;
            if (parse_digits(&p, &v) < 0)
                return -1;
            while (*p == ' ' || *p == '\t' || *p == '\r')
                p++;
            if (*p != '\n' && *p != '\0')
                return -1;
            *out = v;
            return 1;
        }
        line = next ? next + 1 : NULL;
    }
    return 0;
}

int memory_parse_keyed(const char *text, const char *key, uint64_t *out)
{
    if (!text || !key || !*key || !out)
        return -1;
    return keyed_lookup(text, key, out) == 1 ? 0 : -1;
}

/* A non-negative decimal like "12.34"; by hand, so no locale can change the point. */
static int parse_decimal(const char *p, double *out)
{
    uint64_t whole;
    if (parse_digits(&p, &whole) < 0)
        return -1;
    double v = (double)whole;
    if (*p == '.') {
        double scale = 0.1;
        p++;
        if (!is_digit(*p))
            return -1;
        for (; is_digit(*p); p++, scale /= 10)
            v += (*p - '0') * scale;
    }
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0')
        return -1;
    *out = v;
    return 0;
}

int memory_parse_psi_some_avg10(const char *text, double *out)
{
    if (!text || !out)
        return -1;
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, "some ", 5) == 0) {
            for (const char *p = line + 5; *p && *p != '\n';) {
                while (*p == ' ' || *p == '\t')
                    p++;
                if (strncmp(p, "avg10=", 6) == 0)
                    return parse_decimal(p + 6, out);
                while (*p && !is_space(*p))
                    p++;
            }
            return -1;
        }
        line = next ? next + 1 : NULL;
    }
    return -1;
}

static int copy_str(char *out, size_t outlen, const char *s, size_t n)
{
    if (!out)
        return 0;
    if (n >= outlen)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Is word one of the comma-separated items of list[0..len)? */
static bool list_has(const char *list, size_t len, const char *word)
{
    size_t wlen = strlen(word);
    const char *end = list + len;
    for (const char *p = list; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (n == wlen && memcmp(p, word, n) == 0)
            return true;
        p += n + 1;
    }
    return false;
}

int memory_parse_proc_cgroup(const char *text, char *v2_path, size_t v2len, char *v1_path,
                             size_t v1len)
{
    bool found = false;
    if (v2_path && v2len)
        v2_path[0] = '\0';
    if (v1_path && v1len)
        v1_path[0] = '\0';
    if (!text)
        return -1;
    for (const char *line = text; line && *line;) {
        const char *eol = line_end(line);
        const char *c1 = memchr(line, ':', (size_t)(eol - line));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
        if (c2) {
            /* The path is everything after the second colon: it may hold colons. */
            const char *path = c2 + 1;
            size_t plen = (size_t)(eol - path);
            bool v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
            bool v1 = !v2 && list_has(c1 + 1, (size_t)(c2 - c1 - 1), "memory");
            if ((v2 && copy_str(v2_path, v2len, path, plen) < 0) ||
                (v1 && copy_str(v1_path, v1len, path, plen) < 0))
                return -1;
            found = found || v2 || v1;
        }
        line = *eol ? eol + 1 : NULL;
    }
    return found ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Tiers                                                                     */
/* ------------------------------------------------------------------------ */

/* A percentage needs a limit to mean anything: without one it never triggers. */
static bool threshold(const struct config_size_spec *spec, const struct memory_sample *s,
                      uint64_t *out)
{
    if (!spec || !spec->set || (spec->is_percent && !s->limited))
        return false;
    *out = config_size_spec_bytes(spec, s->limited ? s->limit_bytes : 0);
    return true;
}

enum memory_tier memory_tier_for(const struct memory_sample *s, const struct resil_config *cfg)
{
    uint64_t at;
    if (!s || !s->available)
        return MEMORY_TIER_UNKNOWN;
    enum memory_tier t = MEMORY_TIER_NORMAL;
    if (cfg && threshold(&cfg->memory_warn, s, &at) && s->working_set_bytes >= at)
        t = MEMORY_TIER_WARNING;
    if (cfg && threshold(&cfg->memory_critical, s, &at) && s->working_set_bytes >= at)
        t = MEMORY_TIER_CRITICAL;
    if (s->psi_some_avg10 >= PSI_CRITICAL)
        t = MEMORY_TIER_CRITICAL;
    else if (s->psi_some_avg10 >= PSI_WARNING && t < MEMORY_TIER_WARNING)
        t = MEMORY_TIER_WARNING;
    return t;
}

const char *memory_tier_name(enum memory_tier t)
{
    switch (t) {
    case MEMORY_TIER_NORMAL:
        return "normal";
    case MEMORY_TIER_WARNING:
        return "warning";
    case MEMORY_TIER_CRITICAL:
        return "critical";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------------------ */
/* Locating the cgroup                                                       */
/* ------------------------------------------------------------------------ */

struct mount_entry {
    char root[MEMORY_PATH_MAX];
    char point[MEMORY_PATH_MAX];
    char fstype[64];
    char super[512];
};

/* One space-separated mountinfo field, with the kernel's \ooo escapes undone. */
static const char *mi_field(const char *p, const char *eol, char *out, size_t outlen)
{
    size_t n = 0;
    while (p < eol && *p == ' ')
        p++;
    for (; p < eol && *p != ' '; p++) {
        char c = *p;
        if (c == '\\' && eol - p >= 4 && p[1] >= '0' && p[1] <= '3' && is_digit(p[2]) &&
            is_digit(p[3])) {
            c = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        }
        if (n + 1 < outlen)
            out[n++] = c;
    }
    if (outlen)
        out[n] = '\0';
    return p;
}

static bool mi_parse_line(const char *line, const char *eol, struct mount_entry *e)
{
    char skip[MEMORY_PATH_MAX];
    const char *p = line;
    for (int i = 0; i < 3; i++) /* id, parent, major:minor */
        p = mi_field(p, eol, skip, sizeof skip);
    p = mi_field(p, eol, e->root, sizeof e->root);
    p = mi_field(p, eol, e->point, sizeof e->point);
    do { /* mount options, then optional fields up to the "-" separator */
        p = mi_field(p, eol, skip, sizeof skip);
    } while (p < eol && strcmp(skip, "-") != 0);
    if (strcmp(skip, "-") != 0)
        return false;
    p = mi_field(p, eol, e->fstype, sizeof e->fstype);
    p = mi_field(p, eol, skip, sizeof skip); /* source */
    mi_field(p, eol, e->super, sizeof e->super);
    return e->point[0] == '/';
}

/* Is path inside the cgroup subtree root (component-wise)? */
static bool path_under(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return path[0] == '/';
    return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool mount_matches(const struct mount_entry *e, bool v2)
{
    if (v2)
        return strcmp(e->fstype, "cgroup2") == 0;
    return strcmp(e->fstype, "cgroup") == 0 && list_has(e->super, strlen(e->super), "memory");
}

/* The mount of the wanted hierarchy that holds cg_path, preferring the deepest
 * subtree; any mount of it when none does (a cgroup namespace hides the path). */
static bool find_mount(const char *mountinfo, bool v2, const char *cg_path,
                       struct mount_entry *best)
{
    struct mount_entry *e = malloc(sizeof *e);
    bool found = false, found_under = false;
    if (!e)
        return false;
    for (const char *line = mountinfo; line && *line;) {
        const char *eol = line_end(line);
        if (mi_parse_line(line, eol, e) && mount_matches(e, v2)) {
            bool under = path_under(cg_path, e->root);
            if (!found || (under && (!found_under || strlen(e->root) > strlen(best->root)))) {
                *best = *e;
                found_under = under;
            }
            found = true;
        }
        line = *eol ? eol + 1 : NULL;
    }
    free(e);
    return found;
}

static bool has_dotdot(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return true;
    return false;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[MEMORY_PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return false;
    return stat(path, &st) == 0;
}

/* Our cgroup's directory under a mount; the mount root when the path is not
 * visible there (cgroup namespaces show "/.." paths, bind mounts hide parents). */
static void cgroup_dir(const struct mount_entry *mnt, const char *cg_path, char *out, size_t outlen)
{
    const char *rel = "";
    if (!has_dotdot(cg_path) && path_under(cg_path, mnt->root))
        rel = strcmp(mnt->root, "/") == 0 ? cg_path : cg_path + strlen(mnt->root);
    while (*rel == '/')
        rel++;
    size_t n = (size_t)snprintf(out, outlen, "%s%s%s", mnt->point, *rel ? "/" : "", rel);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    if (n >= outlen || !is_dir(out))
        snprintf(out, outlen, "%s", mnt->point);
}

struct locate_work {
    char v2_path[MEMORY_PATH_MAX];
    char v1_path[MEMORY_PATH_MAX];
    struct mount_entry v2_mnt;
    struct mount_entry v1_mnt;
    char v2_dir[MEMORY_PATH_MAX];
};

static void set_location(struct memory_location *loc, int version, const char *dir, const char *top,
                         const char *psi_dir)
{
    loc->version = version;
    snprintf(loc->dir, sizeof loc->dir, "%s", dir);
    snprintf(loc->top, sizeof loc->top, "%s", top);
    snprintf(loc->psi_dir, sizeof loc->psi_dir, "%s", psi_dir);
}

int memory_locate(const char *proc_cgroup, const char *mountinfo, struct memory_location *loc)
{
    if (!loc)
        return -1;
    memset(loc, 0, sizeof *loc);
    struct locate_work *w = calloc(1, sizeof *w);
    if (!w || !mountinfo ||
        memory_parse_proc_cgroup(proc_cgroup, w->v2_path, sizeof w->v2_path, w->v1_path,
                                 sizeof w->v1_path) < 0) {
        free(w);
        return -1;
    }
    bool v2 = w->v2_path[0] && find_mount(mountinfo, true, w->v2_path, &w->v2_mnt);
    bool v1 = w->v1_path[0] && find_mount(mountinfo, false, w->v1_path, &w->v1_mnt);
    if (v2)
        cgroup_dir(&w->v2_mnt, w->v2_path, w->v2_dir, sizeof w->v2_dir);
    /* Hybrid hosts: cgroup2 carries no memory controller, v1 does (README, "Memory and
     * emergency mode"); the
     * v2 cgroup may still offer memory.pressure. */
    if (v2 && (!v1 || file_exists(w->v2_dir, "memory.max"))) {
        set_location(loc, 2, w->v2_dir, w->v2_mnt.point, w->v2_dir);
    } else if (v1) {
        char dir[MEMORY_PATH_MAX];
        cgroup_dir(&w->v1_mnt, w->v1_path, dir, sizeof dir);
        set_location(loc, 1, dir, w->v1_mnt.point, v2 ? w->v2_dir : "");
    }
    free(w);
    return loc->dir[0] ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Reading a sample                                                          */
/* ------------------------------------------------------------------------ */

struct layout {
    int version;
    const char *limit;
    const char *usage;
    const char *inactive_keys[2];
    const char *hier_limit_key; /* memory.stat's own effective limit, v1 only */
    const char *events;
};

static const struct layout layout_v2 = {
    2, "memory.max", "memory.current", {"inactive_file", NULL}, NULL, "memory.events"};
static const struct layout layout_v1 = {1,
                                        "memory.limit_in_bytes",
                                        "memory.usage_in_bytes",
                                        {"total_inactive_file", "inactive_file"},
                                        "hierarchical_memory_limit",
                                        "memory.oom_control"};

struct memory_monitor {
    struct loop *loop;
    const struct resil_config *cfg;
    struct memory_callbacks cb;
    struct memory_location loc;
    struct memory_sample cur;
    char *buf; /* READ_CAP bytes for file contents */
    char why[MEMORY_PATH_MAX + 128];
    bool warned;    /* the current breakage was logged */
    bool oom_known; /* cur.oom_kills is a real reading */
    bool watching;
    struct loop_timer *timer;
    int psi_fd;
    bool psi_tried;               /* the trigger is created at most once */
    bool psi_in_loop;             /* registered with the loop (while watching) */
    struct loop_timer *psi_delay; /* creates the trigger one window into a run */
    int events_fd;
    bool start_known;
    uint64_t oom_at_start;
    bool above; /* working set at or above --memory-restart since above_since */
    bool restart_fired;
    uint64_t above_since_ms;
};

/* Reads a small file whole. O_NONBLOCK: a FIFO planted in a fake tree must not
 * hang the event loop. Returns 0, or -1 with errno set. */
static int read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    size_t n = 0;
    if (fd < 0)
        return -1;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return 0;
}

static int read_in(struct memory_monitor *m, const char *dir, const char *name)
{
    char path[MEMORY_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return read_file(path, m->buf, READ_CAP);
}

static int fail_errno(struct memory_monitor *m, const char *dir, const char *name)
{
    snprintf(m->why, sizeof m->why, "cannot read %s/%s: %s", dir, name, strerror(errno));
    return -1;
}

static int fail_garbage(struct memory_monitor *m, const char *dir, const char *name)
{
    snprintf(m->why, sizeof m->why, "cannot parse %s/%s", dir, name);
    return -1;
}

static const struct layout *layout_of(const struct memory_location *loc)
{
    if (loc->version == 2)
        return &layout_v2;
    if (loc->version == 1)
        return &layout_v1;
    if (file_exists(loc->dir, "memory.max") || file_exists(loc->dir, "memory.current"))
        return &layout_v2;
    if (file_exists(loc->dir, "memory.limit_in_bytes") ||
        file_exists(loc->dir, "memory.usage_in_bytes"))
        return &layout_v1;
    return NULL;
}

/* A cgroup2 mount root (the host's root cgroup) has no memory.max: no limit. */
static int read_own_limit(struct memory_monitor *m, const struct layout *l, uint64_t *limit,
                          bool *unlimited)
{
    const char *dir = m->loc.dir;
    if (read_in(m, dir, l->limit) < 0) {
        if (errno == ENOENT && l->version == 2 && m->loc.top[0] && strcmp(dir, m->loc.top) == 0) {
            *limit = UINT64_MAX;
            *unlimited = true;
            return 0;
        }
        return fail_errno(m, dir, l->limit);
    }
    if (memory_parse_limit(m->buf, limit, unlimited) < 0)
        return fail_garbage(m, dir, l->limit);
    return 0;
}

/* The effective limit is the smallest on the way up to the mount point. A
 * parent that cannot be read does not count: it is not ours to judge. */
static void walk_parent_limits(struct memory_monitor *m, const struct layout *l, uint64_t *limit)
{
    char path[MEMORY_PATH_MAX];
    size_t top_len = strlen(m->loc.top);
    if (!top_len || !path_under(m->loc.dir, m->loc.top))
        return;
    snprintf(path, sizeof path, "%s", m->loc.dir);
    for (;;) {
        char *slash = strrchr(path, '/');
        if (strlen(path) <= top_len || !slash || slash == path)
            return;
        *slash = '\0';
        uint64_t v;
        bool unlimited;
        if (read_in(m, path, l->limit) == 0 && memory_parse_limit(m->buf, &v, &unlimited) == 0 &&
            !unlimited && v < *limit)
            *limit = v;
    }
}

static int read_inactive(struct memory_monitor *m, const struct layout *l, uint64_t *limit,
                         uint64_t *inactive)
{
    const char *dir = m->loc.dir;
    int found = 0;
    if (read_in(m, dir, "memory.stat") < 0)
        return fail_errno(m, dir, "memory.stat");
    for (size_t i = 0; i < 2 && l->inactive_keys[i] && found == 0; i++)
        found = keyed_lookup(m->buf, l->inactive_keys[i], inactive);
    if (found != 1)
        return fail_garbage(m, dir, "memory.stat");
    uint64_t hier;
    if (l->hier_limit_key && keyed_lookup(m->buf, l->hier_limit_key, &hier) == 1 &&
        hier < UNLIMITED_FROM && hier < *limit)
        *limit = hier;
    return 0;
}

/* Old kernels have no oom_kill line: that reads as none. */
static int read_oom_kills(struct memory_monitor *m, const struct layout *l, uint64_t *out)
{
    const char *dir = m->loc.dir;
    *out = 0;
    if (read_in(m, dir, l->events) < 0)
        return errno == ENOENT ? 0 : fail_errno(m, dir, l->events);
    if (keyed_lookup(m->buf, "oom_kill", out) < 0)
        return fail_garbage(m, dir, l->events);
    return 0;
}

/* Pressure is a bonus: a kernel booted with psi=0 fails the read (EOPNOTSUPP),
 * which is no reason to give up the whole sample. */
static double read_psi(struct memory_monitor *m)
{
    double v;
    if (!m->loc.psi_dir[0] || read_in(m, m->loc.psi_dir, "memory.pressure") < 0)
        return -1;
    if (memory_parse_psi_some_avg10(m->buf, &v) < 0) {
        log_debug("memory: cannot parse %s/memory.pressure", m->loc.psi_dir);
        return -1;
    }
    return v;
}

static int read_sample(struct memory_monitor *m, struct memory_sample *s)
{
    uint64_t limit, inactive;
    bool unlimited;
    memset(s, 0, sizeof *s);
    s->psi_some_avg10 = -1;
    if (!m->loc.dir[0]) {
        snprintf(m->why, sizeof m->why, "no cgroup memory controller found");
        return -1;
    }
    const struct layout *l = layout_of(&m->loc);
    if (!l) {
        snprintf(m->why, sizeof m->why, "no memory.max or memory.limit_in_bytes in %s", m->loc.dir);
        return -1;
    }
    if (read_own_limit(m, l, &limit, &unlimited) < 0)
        return -1;
    if (read_in(m, m->loc.dir, l->usage) < 0)
        return fail_errno(m, m->loc.dir, l->usage);
    if (memory_parse_u64(m->buf, &s->usage_bytes) < 0)
        return fail_garbage(m, m->loc.dir, l->usage);
    if (read_inactive(m, l, &limit, &inactive) < 0 || read_oom_kills(m, l, &s->oom_kills) < 0)
        return -1;
    walk_parent_limits(m, l, &limit);
    s->available = true;
    s->limited = limit < UNLIMITED_FROM;
    s->limit_bytes = s->limited ? limit : 0;
    s->working_set_bytes = s->usage_bytes > inactive ? s->usage_bytes - inactive : 0;
    s->psi_some_avg10 = read_psi(m);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The monitor                                                               */
/* ------------------------------------------------------------------------ */

/* One warning per breakage: a broken file must not flood the log every sample. */
static void note_health(struct memory_monitor *m, bool ok)
{
    if (ok) {
        if (m->warned)
            log_info("memory: cgroup memory files are readable again");
        m->warned = false;
    } else if (!m->warned) {
        log_warn("memory: %s; memory tier unknown", m->why);
        m->warned = true;
    }
}

/* Samples measure how long the working set stays high; a gap resets it. */
static bool restart_due(struct memory_monitor *m, const struct memory_sample *s)
{
    uint64_t at;
    if (!m->cfg || !s->available || !threshold(&m->cfg->memory_restart, s, &at) ||
        s->working_set_bytes < at) {
        m->above = false;
        m->restart_fired = false;
        return false;
    }
    uint64_t now = loop_now_ms();
    if (!m->above) {
        m->above = true;
        m->above_since_ms = now;
    }
    if (m->restart_fired || now - m->above_since_ms < m->cfg->memory_restart_for_ms)
        return false;
    m->restart_fired = true;
    return true;
}

static uint64_t interval_ms(const struct memory_monitor *m)
{
    uint64_t ms =
        m->cfg && m->cfg->memory_interval_ms ? m->cfg->memory_interval_ms : DEFAULT_INTERVAL_MS;
    return ms < MIN_INTERVAL_MS ? MIN_INTERVAL_MS : ms;
}

/* The next sample comes after --memory-interval, or sooner when that is when
 * --memory-restart-for runs out, so a restart is not late by up to an interval. */
static uint64_t next_delay_ms(const struct memory_monitor *m)
{
    uint64_t delay = interval_ms(m);
    if (m->above && !m->restart_fired) {
        uint64_t due = m->above_since_ms + m->cfg->memory_restart_for_ms;
        uint64_t now = loop_now_ms();
        uint64_t left = due > now ? due - now : 0;
        if (left < delay)
            delay = left;
    }
    return delay;
}

/* Periodic samples are taken when an option needs the live working set
 * (--memory-restart: how long it stays high; --pressure-signal: when the tier
 * rises), and otherwise only as the fallback the README's Memory section promises: when no PSI
 * trigger could be armed and a tier threshold can be reached at all (a limit
 * exists, or a threshold is absolute). With a PSI trigger the tier is read
 * again on every pressure notification, at each start and exit of the app and
 * on memory.events changes, all of which cost nothing while idle: an idle
 * resil-init with no health loop then makes no wake-ups at all. */
static bool thresholds_reachable(const struct memory_monitor *m)
{
    return m->cur.limited || (m->cfg->memory_warn.set && !m->cfg->memory_warn.is_percent) ||
           (m->cfg->memory_critical.set && !m->cfg->memory_critical.is_percent);
}

static bool options_need_sampling(const struct memory_monitor *m)
{
    return m->cfg && (m->cfg->memory_restart.set || m->cfg->pressure_signal);
}

/* Asked-for sampling goes on through unreadable samples, so a file broken for a
 * moment does not silence --memory-restart for the rest of the run; the
 * fallback runs only while there is something readable to fall back on. */
static bool should_sample(const struct memory_monitor *m)
{
    bool fallback = m->cfg && m->cur.available && m->psi_fd < 0 && thresholds_reachable(m);
    return m->watching && (options_need_sampling(m) || fallback);
}

static void update_timer(struct memory_monitor *m)
{
    if (!m->timer)
        return;
    if (should_sample(m))
        loop_timer_arm(m->timer, next_delay_ms(m));
    else if (loop_timer_armed(m->timer))
        loop_timer_disarm(m->timer);
}

static void notify(struct memory_monitor *m, const struct memory_sample *old, bool oom_was_known,
                   bool restart)
{
    const struct memory_sample *s = &m->cur;
    if (s->available && oom_was_known && s->oom_kills > old->oom_kills && m->cb.oom_kill)
        m->cb.oom_kill(m->cb.ctx, s->oom_kills);
    if (m->watching && s->tier != old->tier && m->cb.tier_changed)
        m->cb.tier_changed(m->cb.ctx, old->tier, s->tier);
    if (m->watching && restart && m->cb.restart_needed)
        m->cb.restart_needed(m->cb.ctx, s);
}

/* quiet: a baseline taken at the edges of a run, which is news to nobody. */
static void refresh(struct memory_monitor *m, bool quiet)
{
    struct memory_sample s;
    bool ok = read_sample(m, &s) == 0;
    note_health(m, ok);
    if (!ok) /* keep the count, or a recovery would look like a burst of OOM kills */
        s.oom_kills = m->cur.oom_kills;
    s.tier = memory_tier_for(&s, m->cfg);
    struct memory_sample old = m->cur;
    bool oom_was_known = m->oom_known;
    m->cur = s;
    m->oom_known = m->oom_known || ok;
    if (m->watching && !quiet)
        notify(m, &old, oom_was_known, restart_due(m, &s));
    update_timer(m);
}

const struct memory_sample *memory_refresh(struct memory_monitor *m)
{
    if (!m)
        return NULL;
    refresh(m, false);
    return &m->cur;
}

const struct memory_sample *memory_current(const struct memory_monitor *m)
{
    return m ? &m->cur : NULL;
}

/* The supervisor has just refreshed the sample to decide on emergency mode, so
 * the start's baseline is that sample: no second read of the files. */
void memory_app_started(struct memory_monitor *m)
{
    if (!m)
        return;
    m->start_known = m->oom_known;
    m->oom_at_start = m->cur.oom_kills;
    m->above = false;
    m->restart_fired = false;
}

bool memory_oom_since_start(struct memory_monitor *m)
{
    if (!m)
        return false;
    memory_refresh(m);
    return m->start_known && m->cur.oom_kills > m->oom_at_start;
}

static void on_timer(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    memory_refresh(data);
}

static bool on_cgroup2(int fd)
{
    struct statfs sfs;
    return fstatfs(fd, &sfs) == 0 && (unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC_VALUE;
}

static void close_watch_fd(struct memory_monitor *m, int *fd)
{
    if (*fd < 0)
        return;
    if (m->loop)
        loop_del_fd(m->loop, *fd);
    close(*fd);
    *fd = -1;
}

static void close_psi_trigger(struct memory_monitor *m);

static void on_psi(struct loop *loop, int fd, uint32_t events, void *data)
{
    struct memory_monitor *m = data;
    (void)loop;
    (void)fd;
    if (events & (EPOLLERR | EPOLLHUP)) { /* the cgroup is gone: stop, or spin */
        log_debug("memory: PSI trigger closed by the kernel");
        close_psi_trigger(m);
    }
    memory_refresh(m);
}

/* kernfs keeps reporting a change until the file is read again through this fd. */
static int drain(int fd, char *buf)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    ssize_t r;
    while ((r = read(fd, buf, READ_CAP)) > 0) {
    }
    return r < 0 && errno != EINTR ? -1 : 0;
}

static void on_events(struct loop *loop, int fd, uint32_t events, void *data)
{
    struct memory_monitor *m = data;
    (void)loop;
    (void)events;
    if (drain(fd, m->buf) < 0) {
        log_debug("memory: memory.events unreadable: %s", strerror(errno));
        close_watch_fd(m, &m->events_fd);
    }
    memory_refresh(m);
}

/* A trigger lives as long as resil-init: closing one waits for an RCU grace
 * period in the kernel (8-20 ms measured here), which must not stall the loop
 * at every exit of the app. Between runs it is only taken out of the loop. */
static void psi_in_loop(struct memory_monitor *m, bool on)
{
    if (m->psi_fd < 0 || m->psi_in_loop == on)
        return;
    if (on && loop_add_fd(m->loop, m->psi_fd, EPOLLPRI, on_psi, m) < 0)
        return;
    if (!on)
        loop_del_fd(m->loop, m->psi_fd);
    m->psi_in_loop = on;
}

static void close_psi_trigger(struct memory_monitor *m)
{
    psi_in_loop(m, false);
    if (m->psi_fd >= 0)
        close(m->psi_fd);
    m->psi_fd = -1;
}

/* Plain files in a fake tree would just be overwritten by the trigger text, so
 * only real cgroup2 files are written to; anything refused falls back to sampling. */
static void open_psi_trigger(struct memory_monitor *m)
{
    char path[MEMORY_PATH_MAX];
    m->psi_tried = true;
    if (!m->loc.psi_dir[0] ||
        (size_t)snprintf(path, sizeof path, "%s/memory.pressure", m->loc.psi_dir) >= sizeof path)
        return;
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        log_debug("memory: no PSI trigger on %s: %s", path, strerror(errno));
        return;
    }
    if (!on_cgroup2(fd) || write(fd, psi_trigger, sizeof psi_trigger) < 0) {
        log_debug("memory: no PSI trigger on %s: %s", path,
                  on_cgroup2(fd) ? strerror(errno) : "not cgroup2");
        close(fd);
        return;
    }
    log_debug("memory: PSI trigger armed on %s", path);
    m->psi_fd = fd;
    psi_in_loop(m, m->watching);
}

/* Creating the trigger waits until the app has run one PSI window, so that a
 * short-lived app (or `resil-init -- true`) never pays for its teardown. */
static void on_psi_delay(struct loop *loop, struct loop_timer *timer, void *data)
{
    (void)loop;
    (void)timer;
    struct memory_monitor *m = data;
    if (!m->watching || m->psi_tried)
        return;
    open_psi_trigger(m);
    /* A sample already scheduled keeps its time; the trigger may make the
     * fallback sampling unnecessary. */
    if (!should_sample(m) || !loop_timer_armed(m->timer))
        update_timer(m);
}

/* v1's memory.oom_control cannot be polled (it wants cgroup.event_control and
 * an eventfd, usually on a read-only mount); there OOM kills show up in samples. */
static void open_events_watch(struct memory_monitor *m)
{
    char path[MEMORY_PATH_MAX];
    if (layout_of(&m->loc) != &layout_v2 ||
        (size_t)snprintf(path, sizeof path, "%s/memory.events", m->loc.dir) >= sizeof path)
        return;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    if (!on_cgroup2(fd) || drain(fd, m->buf) < 0 ||
        loop_add_fd(m->loop, fd, EPOLLPRI, on_events, m) < 0) {
        close(fd);
        return;
    }
    m->events_fd = fd;
}

void memory_watch(struct memory_monitor *m, bool on)
{
    if (!m || m->watching == on)
        return;
    if (!on) {
        m->watching = false;
        psi_in_loop(m, false);
        loop_timer_disarm(m->psi_delay);
        close_watch_fd(m, &m->events_fd);
        update_timer(m);
        return;
    }
    m->watching = true;
    if (m->loop) {
        psi_in_loop(m, true);
        if (!m->psi_tried && m->psi_delay && m->loc.psi_dir[0])
            loop_timer_arm(m->psi_delay, PSI_WINDOW_MS);
        open_events_watch(m);
    }
    update_timer(m);
}

struct memory_monitor *memory_new_at(struct loop *loop, const struct resil_config *cfg,
                                     const struct memory_callbacks *cb,
                                     const struct memory_location *loc)
{
    struct memory_monitor *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->buf = malloc(READ_CAP);
    if (!m->buf) {
        free(m);
        return NULL;
    }
    m->loop = loop;
    m->cfg = cfg;
    if (cb)
        m->cb = *cb;
    if (loc)
        m->loc = *loc;
    m->psi_fd = -1;
    m->events_fd = -1;
    m->cur.psi_some_avg10 = -1;
    if (loop) {
        m->timer = loop_timer_new(loop, on_timer, m);
        m->psi_delay = loop_timer_new(loop, on_psi_delay, m);
    }
    refresh(m, true);
    return m;
}

/* Reads a whole text file into a malloc'd string, or NULL. */
static char *read_text(const char *path)
{
    size_t cap = 8192;
    char *buf = malloc(cap);
    while (buf && read_file(path, buf, cap) == 0) {
        if (strlen(buf) + 1 < cap)
            return buf;
        char *bigger = cap < TEXT_MAX ? realloc(buf, cap * 2) : NULL;
        if (!bigger)
            break;
        buf = bigger;
        cap *= 2;
    }
    free(buf);
    return NULL;
}

struct memory_monitor *memory_new(struct loop *loop, const struct resil_config *cfg,
                                  const struct memory_callbacks *cb)
{
    struct memory_location *loc = calloc(1, sizeof *loc);
    if (!loc)
        return NULL;
    if (cfg && cfg->cgroup_root) {
        /* An explicit directory: files as they are there, layout by which exist. */
        if (strlen(cfg->cgroup_root) < sizeof loc->dir) {
            snprintf(loc->dir, sizeof loc->dir, "%s", cfg->cgroup_root);
            snprintf(loc->psi_dir, sizeof loc->psi_dir, "%s", cfg->cgroup_root);
        }
    } else {
        char *cgroups = read_text("/proc/self/cgroup");
        char *mountinfo = read_text("/proc/self/mountinfo");
        if (memory_locate(cgroups, mountinfo, loc) == 0)
            log_debug("memory: cgroup v%d files in %s", loc->version, loc->dir);
        free(cgroups);
        free(mountinfo);
    }
    struct memory_monitor *m = memory_new_at(loop, cfg, cb, loc);
    free(loc);
    return m;
}

void memory_free(struct memory_monitor *m)
{
    if (!m)
        return;
    memory_watch(m, false);
    close_psi_trigger(m);
    loop_timer_free(m->timer);
    loop_timer_free(m->psi_delay);
    free(m->buf);
    free(m);
}

/* ------------------------------------------------------------------------ */
/* The app's environment                                                     */
/* ------------------------------------------------------------------------ */

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
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 32;
        char **v = realloc(e->v, cap * sizeof *v);
        if (!v) {
            e->failed = true;
            free(s);
            return;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = s;
    e->v[e->n] = NULL;
}

static long env_find(const struct envvec *e, const char *key, size_t klen)
{
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->v[i], key, klen) == 0 && e->v[i][klen] == '=')
            return (long)i;
    return -1;
}

static const char *env_get(const struct envvec *e, const char *key)
{
    long i = env_find(e, key, strlen(key));
    return i < 0 ? NULL : e->v[i] + strlen(key) + 1;
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
    long i = env_find(e, key, klen);
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
static void add_emergency_set(struct envvec *e, const struct resil_config *cfg)
{
    for (size_t i = 0; cfg && i < cfg->emergency_env_count; i++) {
        const char *kv = cfg->emergency_env[i];
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (eq && eq > kv)
            env_set_n(e, kv, (size_t)(eq - kv), eq + 1, cfg->emergency_env_explicit);
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
    const char *node = env_get(e, "NODE_OPTIONS");
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
    const char *go = env_get(e, "GOMEMLIMIT");
    if (!go || !*go) {
        snprintf(value, sizeof value, "%" PRIu64, limit / 10 * 9 + limit % 10 * 9 / 10);
        env_set(e, "GOMEMLIMIT", value);
    }
}

char **memory_build_env(char **envp, const struct resil_config *cfg, const struct memory_sample *s,
                        bool emergency, unsigned restart_count, const char *restart_reason)
{
    struct envvec e = {0};
    char num[32];
    bool limited = s && s->available && s->limited;
    for (size_t i = 0; envp && envp[i]; i++)
        env_push(&e, strdup(envp[i]));
    if (emergency)
        add_emergency_set(&e, cfg);
    /* The RESIL_* set is resil-init's own word and always wins. */
    if (limited)
        snprintf(num, sizeof num, "%" PRIu64, s->limit_bytes / MIB);
    env_set(&e, "RESIL_MEMORY_LIMIT_MB", limited ? num : "");
    env_set(&e, "RESIL_MEMORY_TIER",
            memory_tier_name(s && s->available ? s->tier : MEMORY_TIER_UNKNOWN));
    env_set(&e, "RESIL_EMERGENCY", emergency ? "1" : "0");
    snprintf(num, sizeof num, "%u", restart_count);
    env_set(&e, "RESIL_RESTART_COUNT", num);
    env_set(&e, "RESIL_RESTART_REASON", restart_reason ? restart_reason : "start");
    if (limited && cfg && cfg->runtime_hints)
        add_runtime_hints(&e, s->limit_bytes);
    if (e.failed || !e.v) {
        memory_env_free(e.v);
        return NULL;
    }
    return e.v;
}

void memory_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}
