/* json: a small writer of JSON text into a caller's buffer, front to back,
 * with no tree of allocations (status.json is written at every change of
 * state; --check-config prints the configuration). */
#ifndef RESIL_JSON_H
#define RESIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_out {
    char *buf;
    size_t cap, len;
    bool comma;    /* a member came before in the current object or array */
    bool overflow; /* buf was too small: the text is not to be used */
};

void json_begin(struct json_out *o, char *buf, size_t cap);
/* The text's length (NUL-terminated in buf), or 0 when it did not fit. */
size_t json_end(const struct json_out *o);

/* key is a member's name, written as it is (our own names need no escaping);
 * NULL for the top level and for array elements. */
void json_open(struct json_out *o, const char *key);
void json_close(struct json_out *o);
void json_open_array(struct json_out *o, const char *key);
void json_close_array(struct json_out *o);

void json_null(struct json_out *o, const char *key);
void json_bool(struct json_out *o, const char *key, bool v);
void json_int(struct json_out *o, const char *key, long long v);
/* null when !present */
void json_u64(struct json_out *o, const char *key, bool present, uint64_t v);
/* v with two decimals (PSI averages have no more), made without floating
 * point printf, whose frame is several KiB of stack (page faults on every
 * start); null when v is negative, NaN or beyond 2^53. */
void json_hundredths(struct json_out *o, const char *key, double v);
/* Text from outside goes in as valid UTF-8 whatever its bytes (invalid ones
 * become U+FFFD): tools that read the output reject anything else. NULL: null. */
void json_text(struct json_out *o, const char *key, const char *text);
/* A CLOCK_REALTIME time in ms as an RFC 3339 string; null when <= 0. */
void json_time(struct json_out *o, const char *key, long long realtime_ms);

#endif
