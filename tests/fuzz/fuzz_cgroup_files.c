/* The text of a cgroup memory file, given to every parser that reads one:
 * memory.max / memory.limit_in_bytes, memory.current / memory.usage_in_bytes,
 * memory.stat and memory.events / memory.oom_control (keyed), memory.pressure,
 * and /proc/meminfo (the machine, for the root of a v2 hierarchy). */
#include <stdbool.h>

#include "fuzz_util.h"
#include "resil/cgroup_internal.h"

static const char *const keys[] = {"inactive_file", "total_inactive_file",
                                   "hierarchical_memory_limit", "oom_kill", "max"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    uint64_t v;
    bool unlimited;
    double d;
    (void)cgroup_parse_limit(text, &v, &unlimited);
    (void)cgroup_parse_u64(text, &v);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        (void)cgroup_parse_keyed(text, keys[i], &v);
    (void)cgroup_parse_meminfo(text, "MemTotal", &v);
    (void)cgroup_parse_meminfo(text, "Inactive(file)", &v);
    if (cgroup_parse_psi_some_avg10(text, &d) == 0 && !(d >= 0))
        abort(); /* a pressure is a non-negative number */
    free(text);
    return 0;
}
