/* A health endpoint's answer: the HTTP status (first two bytes, so codes far
 * outside 100-599 come too), whether the body was cut at 64 KiB (third byte),
 * an optional --health-json-field (up to the first NUL after that), then the
 * body. The verdict must come back NUL-terminated within its buffer. */
#include <stdbool.h>

#include "fuzz_util.h"
#include "resil/health_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    long status = (long)(data[0] | data[1] << 8) - 1000;
    bool truncated = data[2] & 1;
    bool with_field = data[2] & 2;
    data += 3;
    size -= 3;
    char *field = NULL;
    if (with_field) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t flen = nul ? (size_t)(nul - data) : size;
        field = fuzz_cstr(data, flen);
        data += nul ? flen + 1 : flen;
        size -= nul ? flen + 1 : flen;
    }
    char *body = malloc(size ? size : 1); /* exactly the bytes: no terminator to lean on */
    if (!body)
        abort();
    memcpy(body, data, size);
    char verdict[64];
    memset(verdict, 'x', sizeof verdict);
    enum health_verdict v =
        health_judge(status, body, size, truncated, field, verdict, sizeof verdict);
    if (!memchr(verdict, '\0', sizeof verdict))
        abort();
    if ((status < 200 || status > 399) && v != HEALTH_VERDICT_FAIL)
        abort();
    free(body);
    free(field);
    return 0;
}
