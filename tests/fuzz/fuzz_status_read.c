/* status.json as `resil-init status` and `resil-init probe` read it: the bytes
 * are the file, in a state directory of the harness's own. */
#include <stdio.h>
#include <unistd.h>
#include <fcntl.h>

#include "fuzz_util.h"
#include "resil/status.h"

static char dir[] = "/tmp/resil-fuzz-status-XXXXXX";
static char path[sizeof dir + 16];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/status.json", dir);
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(null, STDOUT_FILENO) < 0) /* status prints the file */
        abort();
    close(null);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "we");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    char *status_argv[] = {"status", "--state-dir", dir, NULL};
    char *probe_argv[] = {"probe", "--state-dir", dir, NULL};
    int rc = status_command(3, status_argv);
    if (rc != 0 && rc != 1)
        abort();
    rc = status_probe_command(3, probe_argv);
    if (rc != 0 && rc != 1)
        abort();
    return 0;
}
