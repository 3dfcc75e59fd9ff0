/* The supervisor: one app run after another, by the restart policy, with health
 * and memory verdicts, until resil-init exits with a code that says why. */
#ifndef RESIL_SUPERVISOR_H
#define RESIL_SUPERVISOR_H

#include "resil/config.h"

/* Runs the app under cfg until the end; returns resil-init's exit code. */
int supervisor_run(const struct resil_config *cfg, char **envp);

#endif
