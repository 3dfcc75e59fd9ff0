/* The metrics endpoint's request bytes, as they arrive: classified after each
 * prefix (as a connection reading in pieces would) and whole, with the
 * buffer-full and end-of-stream flags from the first byte. Built once
 * include/resil/metrics_http.h is in the tree (branch sockets). */
#include <stdbool.h>

#include "fuzz_util.h"
#include "resil/metrics_http.h"

static bool known_answer(int rc)
{
    return rc == -1 || rc == 0 || rc == 200 || rc == 400 || rc == 404 || rc == 405 || rc == 414 ||
           rc == 431;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > METRICS_HTTP_REQUEST_MAX + 1)
        return 0;
    bool full = data[0] & 1, eof = data[0] & 2;
    char *buf = malloc(size); /* exactly the bytes: nothing after them to lean on */
    if (!buf)
        abort();
    memcpy(buf, data + 1, size - 1);
    bool head = false;
    for (size_t n = 0; n + 1 <= size; n += 1 + n / 4)
        if (!known_answer(metrics_http_classify(buf, n, false, false, &head)))
            abort();
    if (!known_answer(metrics_http_classify(buf, size - 1, full, eof, &head)))
        abort();
    free(buf);
    return 0;
}
