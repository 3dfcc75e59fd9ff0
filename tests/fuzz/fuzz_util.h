/* What the libFuzzer harnesses share: turning the fuzzer's bytes into the
 * NUL-terminated strings and word lists resil-init's parsers take. */
#ifndef RESIL_FUZZ_UTIL_H
#define RESIL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The bytes as a C string (an embedded NUL ends it, as it would in a file
 * read into a buffer); caller frees. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The bytes split at every NUL into at most max words, NULL-terminated; all
 * words live in *storage, which the caller frees with the vector. */
static inline char **fuzz_words(const uint8_t *data, size_t size, size_t max, size_t *count,
                                char **storage)
{
    char *buf = malloc(size + 1);
    char **v = calloc(max + 1, sizeof *v);
    size_t n = 0;
    if (!buf || !v)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (char *p = buf; n < max && p <= buf + size; p += strlen(p) + 1)
        v[n++] = p;
    *count = n;
    *storage = buf;
    return v;
}

#endif
