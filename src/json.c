/* json: the writer of include/resil/json.h. Every piece is appended with one
 * bounded vsnprintf or escape; once something does not fit, nothing more is
 * written and json_end says so. */
#include "resil/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "resil/log.h"

void json_begin(struct json_out *o, char *buf, size_t cap)
{
    *o = (struct json_out){.buf = buf, .cap = cap, .overflow = true};
    if (buf && cap) {
        buf[0] = '\0';
        o->overflow = false;
    }
}

size_t json_end(const struct json_out *o)
{
    return o->overflow ? 0 : o->len;
}

static void raw(struct json_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void raw(struct json_out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = true;
    else
        o->len += (size_t)n;
}

static void member(struct json_out *o, const char *key)
{
    if (key)
        raw(o, "%s\"%s\":", o->comma ? "," : "", key);
    else if (o->comma)
        raw(o, ",");
    o->comma = true;
}

/* An object or an array: the bracket is all that tells them apart. */
static void open_with(struct json_out *o, const char *key, const char *bracket)
{
    member(o, key);
    raw(o, "%s", bracket);
    o->comma = false;
}

static void close_with(struct json_out *o, const char *bracket)
{
    raw(o, "%s", bracket);
    o->comma = true;
}

void json_open(struct json_out *o, const char *key)
{
    open_with(o, key, "{");
}

void json_close(struct json_out *o)
{
    close_with(o, "}");
}

void json_open_array(struct json_out *o, const char *key)
{
    open_with(o, key, "[");
}

void json_close_array(struct json_out *o)
{
    close_with(o, "]");
}

void json_null(struct json_out *o, const char *key)
{
    member(o, key);
    raw(o, "null");
}

void json_bool(struct json_out *o, const char *key, bool v)
{
    member(o, key);
    raw(o, "%s", v ? "true" : "false");
}

void json_int(struct json_out *o, const char *key, long long v)
{
    member(o, key);
    raw(o, "%lld", v);
}

void json_u64(struct json_out *o, const char *key, bool present, uint64_t v)
{
    member(o, key);
    if (present)
        raw(o, "%" PRIu64, v);
    else
        raw(o, "null");
}

void json_hundredths(struct json_out *o, const char *key, double v)
{
    if (!(v >= 0 && v < 9007199254740992.0 / 100)) {
        json_null(o, key);
        return;
    }
    uint64_t h = (uint64_t)(v * 100 + 0.5);
    member(o, key);
    raw(o, "%" PRIu64 ".%02u", h / 100, (unsigned)(h % 100));
}

void json_text(struct json_out *o, const char *key, const char *text)
{
    if (!text) {
        json_null(o, key);
        return;
    }
    member(o, key);
    raw(o, "\"");
    if (!o->overflow) {
        size_t room = o->cap - o->len;
        size_t n = log_json_escape(o->buf + o->len, room, text);
        /* The escape leaves out a character that does not fit whole: with
         * less than one escape's worth of room left it may have. */
        if (n + 8 > room)
            o->overflow = true;
        else
            o->len += n;
    }
    raw(o, "\"");
}

void json_time(struct json_out *o, const char *key, long long realtime_ms)
{
    if (realtime_ms <= 0) {
        json_null(o, key);
        return;
    }
    char ts[40];
    log_format_time(ts, sizeof ts, realtime_ms);
    json_text(o, key, ts);
}
