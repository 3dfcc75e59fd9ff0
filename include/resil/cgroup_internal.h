/* cgroup.c's pure parts, for its unit tests: the parsers of each file's text
 * and locating the cgroup from given /proc text. Other modules use cgroup.h. */
#ifndef RESIL_CGROUP_INTERNAL_H
#define RESIL_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resil/cgroup.h"

/* "max" or a number; *unlimited set for "max" and the v1 near-2^63 value. */
int cgroup_parse_limit(const char *text, uint64_t *bytes, bool *unlimited);
int cgroup_parse_u64(const char *text, uint64_t *out);
/* a "key value" line file (memory.stat, memory.events, memory.oom_control) */
int cgroup_parse_keyed(const char *text, const char *key, uint64_t *out);
/* memory.pressure: the "some avg10=" value */
int cgroup_parse_psi_some_avg10(const char *text, double *out);
/* /proc/self/cgroup: the v2 path ("0::/x") and the v1 memory path ("N:memory:/y"); each
 * out may be NULL; a missing one is set to "" */
int cgroup_parse_proc_cgroup(const char *text, char *v2_path, size_t v2len, char *v1_path,
                             size_t v1len);

/* /proc/meminfo: the "Key:   N kB" line of key, in bytes */
int cgroup_parse_meminfo(const char *text, const char *key, uint64_t *bytes);

/* Where a reader at the root of a v2 hierarchy takes the machine's memory
 * from (default /proc/meminfo); path must outlive the reader. */
void cgroup_reader_set_meminfo(struct cgroup_reader *r, const char *path);

/* From /proc/self/cgroup and /proc/self/mountinfo text. Returns 0, or -1 when
 * no memory controller is found (loc->dir is then ""). */
int cgroup_locate(const char *proc_cgroup, const char *mountinfo, struct cgroup_location *loc);

#endif
