/* memory.c's parts its unit tests reach directly: the tier rule, and a
 * monitor over a location given by the test (fake trees with a parent walk). */
#ifndef RESIL_MEMORY_INTERNAL_H
#define RESIL_MEMORY_INTERNAL_H

#include "resil/cgroup.h"
#include "resil/loop.h"
#include "resil/memory.h"

enum memory_tier memory_tier_for(const struct memory_sample *s, const struct memory_options *o);

/* memory_new with the location already known. */
struct memory_monitor *memory_new_at(struct loop *loop, const struct memory_options *opts,
                                     const struct memory_callbacks *cb,
                                     const struct cgroup_location *loc);

#endif
