/* The environment: NUL-separated NAME=VALUE entries, each given the RESIL_
 * prefix when it lacks one (RESIL_CONFIG, which names a file, is left out). */
#include <stdio.h>
#include <strings.h>

#include "fuzz_util.h"
#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n;
    char *storage;
    char **words = fuzz_words(data, size, 32, &n, &storage);
    char **envp = calloc(n + 1, sizeof *envp);
    size_t m = 0;
    if (!envp)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *w = words[i];
        if (strncmp(w, "RESIL_", 6) == 0)
            w += 6;
        if (strncasecmp(w, "CONFIG", 6) == 0)
            continue;
        size_t len = strlen(w) + 7;
        envp[m] = malloc(len);
        if (!envp[m])
            abort();
        snprintf(envp[m++], len, "RESIL_%s", w);
    }
    char *argv[] = {"--", "true", NULL};
    struct resil_config cfg;
    if (fuzz_load_config(&cfg, 2, argv, envp) == 0)
        config_free(&cfg);
    for (size_t i = 0; i < m; i++)
        free(envp[i]);
    free(envp);
    free(words);
    free(storage);
    return 0;
}
