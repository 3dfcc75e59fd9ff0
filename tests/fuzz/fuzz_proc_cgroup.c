/* /proc/self/cgroup: the v2 ("0::/path") and v1 memory ("N:memory:/path")
 * paths, into buffers both large and small (a path that does not fit is an
 * error, never a cut path). */
#include "fuzz_util.h"
#include "resil/cgroup_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    static char v2[CGROUP_PATH_MAX], v1[CGROUP_PATH_MAX];
    char small2[16], small1[16];
    if (cgroup_parse_proc_cgroup(text, v2, sizeof v2, v1, sizeof v1) == 0 &&
        (strlen(v2) >= sizeof v2 || strlen(v1) >= sizeof v1))
        abort();
    (void)cgroup_parse_proc_cgroup(text, small2, sizeof small2, small1, sizeof small1);
    (void)cgroup_parse_proc_cgroup(text, NULL, 0, v1, sizeof v1);
    free(text);
    return 0;
}
