/* cgroup: where our cgroup's memory files are (v1, v2 or hybrid), what their
 * text says, and one reading of them. The memory monitor sits on top. */
#ifndef RESIL_CGROUP_H
#define RESIL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- locating --- */
#define CGROUP_PATH_MAX 4096
/* The three paths are packed one after another in text: a run with short
 * paths touches one page of it, not three (each page a start faults in costs
 * it time). They point into the structure itself, so it is never copied by
 * assignment: cgroup_location_copy. */
struct cgroup_location {
    int version;         /* 1 or 2; 0: decide by the files present in dir */
    const char *dir;     /* our cgroup's memory files; "" when none found */
    const char *top;     /* mount point the limit walk stops at; "": no walk */
    const char *psi_dir; /* where memory.pressure is looked for; "": nowhere */
    char text[3 * CGROUP_PATH_MAX];
};
/* No files found; the given place (each path cut to CGROUP_PATH_MAX - 1
 * bytes); the same place as from. */
void cgroup_location_clear(struct cgroup_location *loc);
void cgroup_location_set(struct cgroup_location *loc, int version, const char *dir, const char *top,
                         const char *psi_dir);
void cgroup_location_copy(struct cgroup_location *to, const struct cgroup_location *from);

/* --- reading --- */
struct cgroup_memory {
    bool limited;         /* a limit exists, here or in a parent up to the mount */
    uint64_t limit_bytes; /* when limited */
    uint64_t usage_bytes;
    uint64_t working_set_bytes; /* usage - inactive file cache */
    double psi_some_avg10;      /* < 0 when the cgroup has no readable memory.pressure */
    uint64_t oom_kills;         /* cumulative oom_kill count; 0 where the kernel has none */
};

struct cgroup_reader;
/* NULL only when out of memory; loc NULL reads nothing (every reading fails). */
struct cgroup_reader *cgroup_reader_new(const struct cgroup_location *loc);
/* The same, for our own cgroup: root (--cgroup-root) as it is, or, when NULL,
 * cgroup_locate over this process's /proc files, straight into the reader. */
struct cgroup_reader *cgroup_reader_new_self(const char *root);
/* 0, or -1 with cgroup_reader_error saying why ("cannot read DIR/FILE: ..."). */
int cgroup_read(struct cgroup_reader *r, struct cgroup_memory *out);
const char *cgroup_reader_error(const struct cgroup_reader *r);
/* The file to arm a PSI trigger on / to poll for OOM events (v2 only);
 * false when there is none. */
bool cgroup_pressure_path(const struct cgroup_reader *r, char *out, size_t outlen);
bool cgroup_events_path(struct cgroup_reader *r, char *out, size_t outlen);
/* Whether fd is on a real cgroup2 file system, not a plain file of a fake tree. */
bool cgroup_fd_is_v2(int fd);
void cgroup_reader_free(struct cgroup_reader *r);

#endif
