/* A memory sample as the cgroup backend would give it, for the tests of the
 * monitor and of the app's environment (include it after cmocka.h). */
#ifndef RESIL_TEST_MEMORY_SAMPLE_H
#define RESIL_TEST_MEMORY_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "resil/memory.h"

__attribute__((unused)) static struct memory_sample sample(bool limited, uint64_t limit,
                                                           uint64_t ws, double psi)
{
    struct memory_sample s = {.available = true,
                              .limited = limited,
                              .limit_bytes = limit,
                              .usage_bytes = ws,
                              .working_set_bytes = ws,
                              .psi_some_avg10 = psi};
    return s;
}

#endif
