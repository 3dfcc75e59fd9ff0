/* /proc/self/cgroup and /proc/self/mountinfo together, as cgroup_locate takes
 * them: the bytes up to the first NUL are the cgroup file, the rest the mount
 * table. Paths it builds must fit its buffers whatever the lengths. */
#include "fuzz_util.h"
#include "resil/cgroup_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t clen = nul ? (size_t)(nul - data) : size;
    char *cgroup = fuzz_cstr(data, clen);
    char *mountinfo = fuzz_cstr(nul ? nul + 1 : data + size, nul ? size - clen - 1 : 0);
    static struct cgroup_location loc;
    if (cgroup_locate(cgroup, mountinfo, &loc) == 0 &&
        (strnlen(loc.dir, CGROUP_PATH_MAX) == CGROUP_PATH_MAX || !loc.dir[0]))
        abort();
    free(cgroup);
    free(mountinfo);
    return 0;
}
