/* What the config harnesses check the same way: a load either works (and its
 * effective settings print) or fails with one line saying why. */
#ifndef RESIL_FUZZ_CONFIG_H
#define RESIL_FUZZ_CONFIG_H

#include <stdlib.h>
#include <string.h>

#include "resil/config.h"

/* Loads, checks the outcome, and leaves cfg loaded (0) or freed (-1). */
static inline int fuzz_load_config(struct resil_config *cfg, int argc, char **argv, char **envp)
{
    char err[512];
    if (config_load(cfg, argc, argv, envp, err, sizeof err) == 0) {
        free(config_to_json(cfg));
        return 0;
    }
    if (!err[0] || strchr(err, '\n'))
        abort(); /* a usage error is one line naming what is wrong */
    config_free(cfg);
    return -1;
}

#endif
