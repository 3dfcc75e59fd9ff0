/* cgroup: the backend under the memory monitor. Finds our cgroup's memory
 * files (from /proc/self/cgroup and mountinfo, on v1, v2 and hybrid hosts),
 * knows each version's file names, parses their text and takes one reading
 * (at the root of a v2 hierarchy, the machine's, from /proc/meminfo).
 * It keeps no state between readings and decides nothing: tiers, timers and
 * watches are memory.c's.
 *
 * Nothing here may take resil-init down: cgroup files are read defensively and
 * anything odd only fails the reading, with the reason in words. */
#include "resil/cgroup.h"
#include "resil/cgroup_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "resil/log.h"
#include "resil/util.h"

/* musl-gcc has no <linux/magic.h>. */
#define CGROUP2_SUPER_MAGIC_VALUE 0x63677270UL

/* The kernel reports "no limit" in v1 as PAGE_COUNTER_MAX rounded to a page
 * (9223372036854771712 and friends); nothing real comes near 2^62. */
#define UNLIMITED_FROM (UINT64_C(1) << 62)

/* memory.stat is ~2 KiB on current kernels; room to grow without a realloc. */
#define READ_CAP 16384
/* /proc/self/mountinfo can be long on busy hosts, but never this long. */
#define TEXT_MAX (4u << 20)
/* PSI averages have two decimals; more digits are read but not kept. */
#define DECIMAL_SCALE_MAX 1000000000u
/* Finding our cgroup below a namespace root the mount does not show opens at
 * most this many directories (a big Kubernetes node has a few hundred). */
#define NS_SEARCH_DIRS 4096u
/* A container's cgroup.procs is short; a cgroup this crowded is not ours. */
#define PROCS_MAX (1u << 20)

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

int cgroup_parse_u64(const char *text, uint64_t *out)
{
    uint64_t v;
    if (!text || !out)
        return -1;
    const char *p = skip_spaces(text);
    if (util_digits_u64(&p, &v) < 0 || *skip_spaces(p) != '\0')
        return -1;
    *out = v;
    return 0;
}

int cgroup_parse_limit(const char *text, uint64_t *bytes, bool *unlimited)
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
    if (cgroup_parse_u64(text, &v) < 0)
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
            if (util_digits_u64(&p, &v) < 0)
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

int cgroup_parse_keyed(const char *text, const char *key, uint64_t *out)
{
    if (!text || !key || !*key || !out)
        return -1;
    return keyed_lookup(text, key, out) == 1 ? 0 : -1;
}

/* /proc/meminfo: "Key:   N kB" in bytes. 0, or -1 when absent or garbage. */
int cgroup_parse_meminfo(const char *text, const char *key, uint64_t *bytes)
{
    size_t klen = key ? strlen(key) : 0;
    if (!text || !klen || !bytes)
        return -1;
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *p = line + klen + 1;
            uint64_t kib;
            while (*p == ' ' || *p == '\t')
                p++;
            if (util_digits_u64(&p, &kib) < 0 || strncmp(p, " kB", 3) != 0 ||
                (p[3] != '\n' && p[3] != '\0') || kib > UINT64_MAX / 1024)
                return -1;
            *bytes = kib * 1024;
            return 0;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

/* A non-negative decimal like "12.34"; by hand, so no locale can change the point. */
static int parse_decimal(const char *p, double *out)
{
    struct util_decimal d;
    if (!is_digit(*p) || util_read_decimal(&p, DECIMAL_SCALE_MAX, &d) < 0)
        return -1;
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0')
        return -1;
    *out = (double)d.whole + (double)d.frac / (double)d.scale;
    return 0;
}

/* Every turn of the token loop moves p forward: any byte counts as a
 * separator or as part of a token, so no byte (a '\r' from a FUSE or bind-mounted
 * tree) can stall it. */
int cgroup_parse_psi_some_avg10(const char *text, double *out)
{
    if (!text || !out)
        return -1;
    for (const char *line = text; line && *line;) {
        const char *next = strchr(line, '\n');
        if (strncmp(line, "some ", 5) == 0) {
            for (const char *p = line + 5; *p && *p != '\n';) {
                if (is_space(*p)) {
                    p++;
                    continue;
                }
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

int cgroup_parse_proc_cgroup(const char *text, char *v2_path, size_t v2len, char *v1_path,
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
/* Locating the cgroup                                                       */
/* ------------------------------------------------------------------------ */

/* The four fields of a mountinfo line that matter, packed one after another
 * in text (see struct cgroup_location); each cut to its own limit. */
#define MOUNT_FSTYPE_MAX 64
#define MOUNT_SUPER_MAX 512
#define MOUNT_TEXT_MAX (2 * CGROUP_PATH_MAX + MOUNT_FSTYPE_MAX + MOUNT_SUPER_MAX)
struct mount_entry {
    const char *root, *point, *fstype, *super;
    size_t used;
    char *text; /* MOUNT_TEXT_MAX bytes of room, in struct locate_work */
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

/* The next field into e's text, at most max bytes with its NUL. */
static const char *mi_take(struct mount_entry *e, const char *p, const char *eol,
                           const char **field, size_t max)
{
    char *out = e->text + e->used;
    p = mi_field(p, eol, out, max);
    *field = out;
    e->used += strlen(out) + 1;
    return p;
}

static bool mi_parse_line(const char *line, const char *eol, struct mount_entry *e)
{
    char skip[2]; /* only ever compared with "-" */
    const char *p = line;
    e->used = 0;
    for (int i = 0; i < 3; i++) /* id, parent, major:minor */
        p = mi_field(p, eol, skip, sizeof skip);
    p = mi_take(e, p, eol, &e->root, CGROUP_PATH_MAX);
    p = mi_take(e, p, eol, &e->point, CGROUP_PATH_MAX);
    do { /* mount options, then optional fields up to the "-" separator */
        p = mi_field(p, eol, skip, sizeof skip);
    } while (p < eol && strcmp(skip, "-") != 0);
    if (strcmp(skip, "-") != 0)
        return false;
    p = mi_take(e, p, eol, &e->fstype, MOUNT_FSTYPE_MAX);
    p = mi_field(p, eol, skip, sizeof skip); /* source */
    mi_take(e, p, eol, &e->super, MOUNT_SUPER_MAX);
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
 * subtree; any mount of it when none does (a cgroup namespace hides the path).
 * best is the scratch of the search, then holds the line chosen. */
static bool find_mount(const char *mountinfo, bool v2, const char *cg_path,
                       struct mount_entry *best)
{
    const char *chosen = NULL;
    size_t chosen_root_len = 0;
    bool chosen_under = false;
    for (const char *line = mountinfo; line && *line;) {
        const char *eol = line_end(line);
        if (mi_parse_line(line, eol, best) && mount_matches(best, v2)) {
            bool under = path_under(cg_path, best->root);
            size_t root_len = strlen(best->root);
            if (!chosen || (under && (!chosen_under || root_len > chosen_root_len))) {
                chosen = line;
                chosen_root_len = root_len;
                chosen_under = under;
            }
        }
        line = *eol ? eol + 1 : NULL;
    }
    return chosen && mi_parse_line(chosen, line_end(chosen), best);
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

/* dir/name into out, which has cap bytes; false when it does not fit. By
 * hand, not snprintf: printf's deep stack frame would be a page fault on the
 * way to every start. */
static bool join_path(char *out, size_t cap, const char *dir, const char *name)
{
    size_t dlen = strlen(dir), nlen = strlen(name);
    if (dlen + 1 + nlen >= cap)
        return false;
    memmove(out, dir, dlen + 1);
    out[dlen] = '/';
    memcpy(out + dlen + 1, name, nlen + 1);
    return true;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Does dir/name exist? dir (cap bytes of room) is lengthened in place for the
 * question and given back as it was. */
static bool exists_below(char *dir, size_t cap, const char *name)
{
    size_t len = strlen(dir);
    bool found = join_path(dir, cap, dir, name) && file_exists(dir);
    dir[len] = '\0';
    return found;
}

/* How many levels the mount's root lies above our cgroup namespace's root:
 * a mount made outside the namespace shows its root as "/.." (one level up),
 * "/../.." and so on. 0 when the root is not made of ".." alone. */
static int levels_above_ns(const char *root)
{
    int n = 0;
    const char *p = root;
    while (strncmp(p, "/..", 3) == 0 && (p[3] == '/' || p[3] == '\0')) {
        n++;
        p += 3;
    }
    return *p == '\0' ? n : 0;
}

/* Does dir/cgroup.procs list pid? */
static bool lists_pid(const char *dir, const char *pid)
{
    char path[CGROUP_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= sizeof path)
        return false;
    char *procs = util_read_file(path, PROCS_MAX, 0, NULL);
    bool found = false;
    size_t len = strlen(pid);
    for (const char *line = procs; line && *line && !found;) {
        found = strncmp(line, pid, len) == 0 && (line[len] == '\n' || line[len] == '\0');
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    free(procs);
    return found;
}

struct ns_search {
    char path[CGROUP_PATH_MAX]; /* the directory being looked at; grows and shrinks */
    const char *rel;            /* our cgroup below the namespace root, no leading '/' */
    char pid[24];
    unsigned budget; /* directories still allowed to be opened */
};

/* Depth-first over the directories `levels` below s->path for the one whose
 * s->rel lists our pid; s->path is left at the answer. */
static bool search_ns_root(struct ns_search *s, int levels)
{
    size_t len = strlen(s->path);
    if (levels == 0) {
        if (*s->rel && (size_t)snprintf(s->path + len, sizeof s->path - len, "/%s", s->rel) >=
                           sizeof s->path - len)
            return false;
        if (is_dir(s->path) && lists_pid(s->path, s->pid))
            return true;
        s->path[len] = '\0';
        return false;
    }
    DIR *d = s->budget ? opendir(s->path) : NULL;
    if (!d)
        return false;
    s->budget--;
    bool found = false;
    struct dirent *de;
    while (!found && s->budget && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) ||
            (size_t)snprintf(s->path + len, sizeof s->path - len, "/%s", de->d_name) >=
                sizeof s->path - len)
            continue;
        found = is_dir(s->path) && search_ns_root(s, levels - 1);
        if (!found)
            s->path[len] = '\0';
    }
    closedir(d);
    return found;
}

/* Inside a cgroup namespace whose root lies below the mount's root (`unshare
 * --cgroup` without a fresh cgroup mount), our cgroup's path names nothing
 * under the mount: the namespace's root is some directory `levels` down, and
 * only the one our pid is listed in is ours. The search is bounded; a tree
 * too big for it keeps the mount point, as before. */
static bool find_below_ns_root(const struct mount_entry *mnt, const char *cg_path, char *out,
                               size_t outlen)
{
    int levels = levels_above_ns(mnt->root);
    if (levels == 0 || has_dotdot(cg_path))
        return false;
    struct ns_search *s = calloc(1, sizeof *s);
    if (!s)
        return false;
    snprintf(s->path, sizeof s->path, "%s", mnt->point);
    s->rel = cg_path + strspn(cg_path, "/");
    snprintf(s->pid, sizeof s->pid, "%ld", (long)getpid());
    s->budget = NS_SEARCH_DIRS;
    bool found = search_ns_root(s, levels) && strlen(s->path) < outlen;
    if (found)
        snprintf(out, outlen, "%s", s->path);
    free(s);
    return found;
}

/* Our cgroup's directory under a mount; the mount root when the path is not
 * visible there and no search finds it (bind mounts hide parents).
 * false, with errno ENAMETOOLONG, when the path does not fit in out: the mount
 * root would then be an ancestor, whose numbers are not ours. */
static bool cgroup_dir(const struct mount_entry *mnt, const char *cg_path, char *out, size_t outlen)
{
    const char *rel = "";
    if (find_below_ns_root(mnt, cg_path, out, outlen))
        return true;
    if (!has_dotdot(cg_path) && path_under(cg_path, mnt->root))
        rel = strcmp(mnt->root, "/") == 0 ? cg_path : cg_path + strlen(mnt->root);
    while (*rel == '/')
        rel++;
    int n = snprintf(out, outlen, "%s%s%s", mnt->point, *rel ? "/" : "", rel);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        errno = ENAMETOOLONG;
        return false;
    }
    size_t len = (size_t)n;
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
    if (!is_dir(out))
        snprintf(out, outlen, "%s", mnt->point);
    return true;
}

/* Everything the search writes is packed one after another in text, each
 * piece given the room its limit asks (both cgroup paths, both mount entries,
 * both directories), so a start touches one page of it, not six. */
#define LOCATE_TEXT_MAX (4 * CGROUP_PATH_MAX + 2 * MOUNT_TEXT_MAX)
struct locate_work {
    struct mount_entry v2_mnt;
    struct mount_entry v1_mnt;
    size_t used;
    char text[LOCATE_TEXT_MAX];
};

/* The room after what is packed so far; at least the largest piece's. */
static char *work_room(struct locate_work *w)
{
    return w->text + w->used;
}

static void work_keep(struct locate_work *w, const char *s)
{
    w->used += strlen(s) + 1;
}

/* s, cut to CGROUP_PATH_MAX - 1 bytes, at *p; *p moves past its NUL. */
static const char *pack(char **p, const char *s)
{
    char *at = *p;
    size_t n = strnlen(s, CGROUP_PATH_MAX - 1);
    memcpy(at, s, n);
    at[n] = '\0';
    *p = at + n + 1;
    return at;
}

void cgroup_location_set(struct cgroup_location *loc, int version, const char *dir, const char *top,
                         const char *psi_dir)
{
    char *p = loc->text;
    loc->version = version;
    loc->dir = pack(&p, dir);
    loc->top = pack(&p, top);
    loc->psi_dir = pack(&p, psi_dir);
}

/* The mount of the wanted hierarchy into the next room of w. */
static bool find_mount_in(struct locate_work *w, const char *mountinfo, bool v2,
                          const char *cg_path, struct mount_entry *e)
{
    e->text = work_room(w);
    bool found = find_mount(mountinfo, v2, cg_path, e);
    if (found)
        w->used += e->used;
    return found;
}

static int locate_in(struct locate_work *w, const char *proc_cgroup, const char *mountinfo,
                     struct cgroup_location *loc)
{
    cgroup_location_clear(loc);
    w->used = 0;
    char *v2_path = work_room(w);
    if (cgroup_parse_proc_cgroup(proc_cgroup, v2_path, CGROUP_PATH_MAX, NULL, 0) < 0 || !mountinfo)
        return -1;
    work_keep(w, v2_path);
    char *v1_path = work_room(w);
    if (cgroup_parse_proc_cgroup(proc_cgroup, NULL, 0, v1_path, CGROUP_PATH_MAX) < 0)
        return -1;
    work_keep(w, v1_path);
    bool v2 = v2_path[0] && find_mount_in(w, mountinfo, true, v2_path, &w->v2_mnt);
    bool v1 = v1_path[0] && find_mount_in(w, mountinfo, false, v1_path, &w->v1_mnt);
    bool too_long = false;
    char *v2_dir = work_room(w);
    v2_dir[0] = '\0';
    if (v2 && !cgroup_dir(&w->v2_mnt, v2_path, v2_dir, CGROUP_PATH_MAX)) {
        v2 = false;
        too_long = true;
    }
    work_keep(w, v2_dir);
    /* Hybrid hosts: cgroup2 carries no memory controller, v1 does (README, "Memory and
     * emergency mode"); the v2 cgroup may still offer memory.pressure. */
    if (v2 && (!v1 || exists_below(v2_dir, CGROUP_PATH_MAX, "memory.max"))) {
        cgroup_location_set(loc, 2, v2_dir, w->v2_mnt.point, v2_dir);
    } else if (v1) {
        char *dir = work_room(w);
        if (cgroup_dir(&w->v1_mnt, v1_path, dir, CGROUP_PATH_MAX))
            cgroup_location_set(loc, 1, dir, w->v1_mnt.point, v2 ? v2_dir : "");
        else
            too_long = true;
    }
    if (!loc->dir[0] && too_long)
        errno = ENAMETOOLONG;
    return loc->dir[0] ? 0 : -1;
}

int cgroup_locate(const char *proc_cgroup, const char *mountinfo, struct cgroup_location *loc)
{
    if (!loc)
        return -1;
    /* Not calloc: only the bytes written are touched. */
    struct locate_work *w = malloc(sizeof *w);
    if (!w) {
        cgroup_location_clear(loc);
        return -1;
    }
    int rc = locate_in(w, proc_cgroup, mountinfo, loc);
    free(w);
    return rc;
}

/* Reads a whole text file into a malloc'd string, or NULL. */
static char *read_text(const char *path)
{
    return util_read_file(path, TEXT_MAX, 0, NULL);
}

void cgroup_location_clear(struct cgroup_location *loc)
{
    loc->version = 0;
    loc->text[0] = '\0';
    loc->dir = loc->top = loc->psi_dir = loc->text;
}

void cgroup_location_copy(struct cgroup_location *to, const struct cgroup_location *from)
{
    cgroup_location_set(to, from->version, from->dir, from->top, from->psi_dir);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */
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

/* Only what a start writes is touched (each page of it would be a page
 * fault): the location's packed text, buf's first bytes, and the locate
 * workspace's; why only once a reading fails. */
struct cgroup_reader {
    struct cgroup_location loc;
    const char *meminfo; /* the machine's numbers, for the root of a v2 hierarchy */
    bool failed;         /* why holds the last failure */
    char buf[READ_CAP];  /* a file's path, then its contents */
    char why[CGROUP_PATH_MAX + 128];
    struct locate_work work; /* while our own cgroup is looked for */
};

/* The path is made in buf, which the contents then replace. */
static int read_in(struct cgroup_reader *r, const char *dir, const char *name)
{
    if (!join_path(r->buf, CGROUP_PATH_MAX, dir, name)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return util_read_into(r->buf, r->buf, READ_CAP, 0) < 0 ? -1 : 0;
}

static bool reader_has(struct cgroup_reader *r, const char *dir, const char *name)
{
    return join_path(r->buf, CGROUP_PATH_MAX, dir, name) && file_exists(r->buf);
}

/* why now holds the failure: -1. */
static int failed(struct cgroup_reader *r)
{
    r->failed = true;
    return -1;
}

static int fail_errno(struct cgroup_reader *r, const char *dir, const char *name)
{
    snprintf(r->why, sizeof r->why, "cannot read %s/%s: %s", dir, name, strerror(errno));
    return failed(r);
}

static int fail_garbage(struct cgroup_reader *r, const char *dir, const char *name)
{
    snprintf(r->why, sizeof r->why, "cannot parse %s/%s", dir, name);
    return failed(r);
}

static const struct layout *layout_of(struct cgroup_reader *r)
{
    const char *dir = r->loc.dir;
    if (r->loc.version == 2)
        return &layout_v2;
    if (r->loc.version == 1)
        return &layout_v1;
    if (reader_has(r, dir, "memory.max") || reader_has(r, dir, "memory.current"))
        return &layout_v2;
    if (reader_has(r, dir, "memory.limit_in_bytes") || reader_has(r, dir, "memory.usage_in_bytes"))
        return &layout_v1;
    return NULL;
}

/* (The root of a v2 hierarchy has no memory.max: cgroup_read reads it as the
 * machine before it gets here.) */
static int read_own_limit(struct cgroup_reader *r, const struct layout *l, uint64_t *limit,
                          bool *unlimited)
{
    const char *dir = r->loc.dir;
    if (read_in(r, dir, l->limit) < 0)
        return fail_errno(r, dir, l->limit);
    if (cgroup_parse_limit(r->buf, limit, unlimited) < 0)
        return fail_garbage(r, dir, l->limit);
    return 0;
}

/* The effective limit is the smallest on the way up to the mount point. A
 * parent that cannot be read does not count: it is not ours to judge. */
static void walk_parent_limits(struct cgroup_reader *r, const struct layout *l, uint64_t *limit)
{
    char path[CGROUP_PATH_MAX];
    size_t top_len = strlen(r->loc.top);
    if (!top_len || !path_under(r->loc.dir, r->loc.top))
        return;
    size_t len = strlen(r->loc.dir);
    if (len >= sizeof path)
        return;
    memcpy(path, r->loc.dir, len + 1);
    for (;;) {
        char *slash = strrchr(path, '/');
        if (strlen(path) <= top_len || !slash || slash == path)
            return;
        *slash = '\0';
        uint64_t v;
        bool unlimited;
        if (read_in(r, path, l->limit) == 0 && cgroup_parse_limit(r->buf, &v, &unlimited) == 0 &&
            !unlimited && v < *limit)
            *limit = v;
    }
}

/* *hier_known: memory.stat gave v1's effective limit, which already is the
 * smallest on the way up (no walk needed). */
static int read_inactive(struct cgroup_reader *r, const struct layout *l, uint64_t *limit,
                         uint64_t *inactive, bool *hier_known)
{
    const char *dir = r->loc.dir;
    int found = 0;
    if (read_in(r, dir, "memory.stat") < 0)
        return fail_errno(r, dir, "memory.stat");
    for (size_t i = 0; i < 2 && l->inactive_keys[i] && found == 0; i++)
        found = keyed_lookup(r->buf, l->inactive_keys[i], inactive);
    if (found != 1)
        return fail_garbage(r, dir, "memory.stat");
    uint64_t hier;
    *hier_known = l->hier_limit_key && keyed_lookup(r->buf, l->hier_limit_key, &hier) == 1;
    if (*hier_known && hier < UNLIMITED_FROM && hier < *limit)
        *limit = hier;
    return 0;
}

/* Old kernels have no oom_kill line: that reads as none. */
static int read_oom_kills(struct cgroup_reader *r, const struct layout *l, uint64_t *out)
{
    const char *dir = r->loc.dir;
    *out = 0;
    if (read_in(r, dir, l->events) < 0)
        return errno == ENOENT ? 0 : fail_errno(r, dir, l->events);
    if (keyed_lookup(r->buf, "oom_kill", out) < 0)
        return fail_garbage(r, dir, l->events);
    return 0;
}

/* Pressure is a bonus: a kernel booted with psi=0 fails the read (EOPNOTSUPP),
 * which is no reason to give up the whole sample. */
static double read_psi(struct cgroup_reader *r)
{
    double v;
    if (!r->loc.psi_dir[0] || read_in(r, r->loc.psi_dir, "memory.pressure") < 0)
        return -1;
    if (cgroup_parse_psi_some_avg10(r->buf, &v) < 0) {
        log_debug("memory: cannot parse %s/memory.pressure", r->loc.psi_dir);
        return -1;
    }
    return v;
}

/* The root cgroup of a v2 hierarchy keeps memory.stat and memory.pressure but
 * has no memory.max or memory.current (a VM, or a host, where resil-init runs
 * in the root cgroup): no cgroup limit applies there, and the memory in use is
 * the machine's, from /proc/meminfo. A child cgroup without the memory
 * controller has no memory.stat either, so it is not taken for the root. */
static bool at_v2_root(struct cgroup_reader *r, const struct layout *l)
{
    return l->version == 2 && !reader_has(r, r->loc.dir, l->usage) &&
           !reader_has(r, r->loc.dir, l->limit) && reader_has(r, r->loc.dir, "memory.stat");
}

static int read_machine(struct cgroup_reader *r, const struct layout *l, struct cgroup_memory *s)
{
    uint64_t total, unused, inactive;
    if (util_read_into(r->meminfo, r->buf, READ_CAP, 0) < 0) {
        snprintf(r->why, sizeof r->why, "cannot read %s: %s", r->meminfo, strerror(errno));
        return failed(r);
    }
    if (cgroup_parse_meminfo(r->buf, "MemTotal", &total) < 0 ||
        cgroup_parse_meminfo(r->buf, "MemFree", &unused) < 0 ||
        cgroup_parse_meminfo(r->buf, "Inactive(file)", &inactive) < 0 || unused > total) {
        snprintf(r->why, sizeof r->why, "cannot parse %s", r->meminfo);
        return failed(r);
    }
    if (read_oom_kills(r, l, &s->oom_kills) < 0)
        return -1;
    s->limited = false;
    s->usage_bytes = total - unused;
    s->working_set_bytes = s->usage_bytes > inactive ? s->usage_bytes - inactive : 0;
    s->psi_some_avg10 = read_psi(r);
    return 0;
}

int cgroup_read(struct cgroup_reader *r, struct cgroup_memory *s)
{
    uint64_t limit, inactive;
    bool unlimited;
    memset(s, 0, sizeof *s);
    s->psi_some_avg10 = -1;
    if (!r->loc.dir[0]) {
        snprintf(r->why, sizeof r->why, "no cgroup memory controller found");
        return failed(r);
    }
    const struct layout *l = layout_of(r);
    if (!l) {
        snprintf(r->why, sizeof r->why, "no memory.max or memory.limit_in_bytes in %s", r->loc.dir);
        return failed(r);
    }
    if (at_v2_root(r, l))
        return read_machine(r, l, s);
    if (read_own_limit(r, l, &limit, &unlimited) < 0)
        return -1;
    if (read_in(r, r->loc.dir, l->usage) < 0)
        return fail_errno(r, r->loc.dir, l->usage);
    if (cgroup_parse_u64(r->buf, &s->usage_bytes) < 0)
        return fail_garbage(r, r->loc.dir, l->usage);
    bool hier_known = false;
    if (read_inactive(r, l, &limit, &inactive, &hier_known) < 0 ||
        read_oom_kills(r, l, &s->oom_kills) < 0)
        return -1;
    if (!hier_known)
        walk_parent_limits(r, l, &limit);
    s->limited = limit < UNLIMITED_FROM;
    s->limit_bytes = s->limited ? limit : 0;
    s->working_set_bytes = s->usage_bytes > inactive ? s->usage_bytes - inactive : 0;
    s->psi_some_avg10 = read_psi(r);
    return 0;
}

struct cgroup_reader *cgroup_reader_new(const struct cgroup_location *loc)
{
    /* Not calloc, and no copy of loc whole: only the bytes written are touched. */
    struct cgroup_reader *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    if (loc)
        cgroup_location_copy(&r->loc, loc);
    else
        cgroup_location_clear(&r->loc);
    r->meminfo = "/proc/meminfo";
    r->failed = false;
    return r;
}

/* A /proc file into buf[*used ..) when it fits, else into a malloc'd string
 * (*owned); NULL when it cannot be read. */
static const char *read_proc_text(struct cgroup_reader *r, const char *path, size_t *used,
                                  char **owned)
{
    char *at = r->buf + *used;
    size_t room = READ_CAP - *used;
    ssize_t n = room > 1 ? util_read_into(path, at, room, 0) : -1;
    if (n >= 0 && (size_t)n < room - 1) {
        *used += (size_t)n + 1;
        return at;
    }
    *owned = read_text(path); /* a busy host's mountinfo: longer than buf */
    return *owned;
}

/* Our own cgroup from /proc, with the reader's buffer and workspace: no
 * allocation comes and goes on the way to the start. */
static int locate_own(struct cgroup_reader *r)
{
    size_t used = 0;
    char *cg_owned = NULL, *mi_owned = NULL;
    const char *cgroups = read_proc_text(r, "/proc/self/cgroup", &used, &cg_owned);
    const char *mountinfo = read_proc_text(r, "/proc/self/mountinfo", &used, &mi_owned);
    errno = 0;
    int rc = locate_in(&r->work, cgroups, mountinfo, &r->loc);
    if (rc < 0 && errno == ENAMETOOLONG)
        log_warn("memory: the cgroup's path is too long to open (%d bytes or more with its "
                 "mount point); its memory files are not read",
                 CGROUP_PATH_MAX);
    free(cg_owned);
    free(mi_owned);
    return rc;
}

struct cgroup_reader *cgroup_reader_new_self(const char *root)
{
    struct cgroup_reader *r = cgroup_reader_new(NULL);
    if (!r)
        return NULL;
    if (root) {
        /* An explicit directory: files as they are there, layout by which exist. */
        if (strlen(root) < CGROUP_PATH_MAX)
            cgroup_location_set(&r->loc, 0, root, "", root);
    } else if (locate_own(r) == 0) {
        log_debug("memory: cgroup v%d files in %s", r->loc.version, r->loc.dir);
    }
    return r;
}

void cgroup_reader_set_meminfo(struct cgroup_reader *r, const char *path)
{
    r->meminfo = path;
}

const char *cgroup_reader_error(const struct cgroup_reader *r)
{
    return r->failed ? r->why : "";
}

static bool path_in(const char *dir, const char *name, char *out, size_t outlen)
{
    return dir[0] && join_path(out, outlen, dir, name);
}

bool cgroup_pressure_path(const struct cgroup_reader *r, char *out, size_t outlen)
{
    return path_in(r->loc.psi_dir, "memory.pressure", out, outlen);
}

/* v1's memory.oom_control cannot be polled (it wants cgroup.event_control and
 * an eventfd, usually on a read-only mount); there OOM kills show up in readings. */
bool cgroup_events_path(struct cgroup_reader *r, char *out, size_t outlen)
{
    return layout_of(r) == &layout_v2 && path_in(r->loc.dir, "memory.events", out, outlen);
}

bool cgroup_fd_is_v2(int fd)
{
    struct statfs sfs;
    return fstatfs(fd, &sfs) == 0 && (unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC_VALUE;
}

void cgroup_reader_free(struct cgroup_reader *r)
{
    free(r);
}
