/* The command line: every word resil-init is given, split at NUL bytes. Words
 * naming a config file are skipped (fuzz_config_file covers its content, and
 * a fuzzed path could name a FIFO or a device). */
#define _GNU_SOURCE /* strcasestr */
#include <stdbool.h>
#include <strings.h>

#include "fuzz_util.h"
#include "fuzz_config.h"
#include "resil/health_internal.h"

static bool names_a_file(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasestr(words[i], "config") && strcmp(words[i], "--check-config") != 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    char *storage;
    char **argv = fuzz_words(data, size, 64, &n, &storage);
    char *envp[] = {NULL};
    if (!names_a_file(argv, n)) {
        struct resil_config cfg;
        char err[512];
        if (fuzz_load_config(&cfg, (int)n, argv, envp) == 0) {
            if (cfg.health_url)
                (void)health_validate_url(cfg.health_url, err, sizeof err);
            config_free(&cfg);
        }
    }
    free(argv);
    free(storage);
    return 0;
}
