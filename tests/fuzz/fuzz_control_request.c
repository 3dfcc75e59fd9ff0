/* A control.sock request line, as it arrives: every prefix, then the whole,
 * with end of stream from the first byte. Built once include/resil/control.h
 * is in the tree (branch sockets). */
#include <stdbool.h>

#include "fuzz_util.h"
#include "resil/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > CONTROL_REQUEST_MAX * 4)
        return 0;
    bool eof = data[0] & 1;
    char *buf = malloc(size);
    if (!buf)
        abort();
    memcpy(buf, data + 1, size - 1);
    enum control_command cmd = CONTROL_UNKNOWN;
    for (size_t n = 0; n + 1 <= size; n++) {
        int rc = control_parse_request(buf, n, false, &cmd);
        if (rc < -1 || rc > 1 ||
            (rc == 1 && cmd != CONTROL_RESTART && cmd != CONTROL_METRICS && cmd != CONTROL_UNKNOWN))
            abort();
    }
    int rc = control_parse_request(buf, size - 1, eof, &cmd);
    if (rc < -1 || rc > 1)
        abort();
    free(buf);
    return 0;
}
