/* The JSON config file (--config FILE): the bytes are the file, read back
 * through a memfd so that nothing touches the disk. */
#define _GNU_SOURCE /* memfd_create */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("resil-config", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char *argv[] = {"--config", path, "--", "true", NULL};
    char *envp[] = {NULL};
    struct resil_config cfg;
    if (fuzz_load_config(&cfg, 4, argv, envp) == 0)
        config_free(&cfg);
    close(fd);
    return 0;
}
