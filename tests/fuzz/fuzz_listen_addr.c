/* --listen addresses ([NAME=]PORT, HOST:PORT, [IPV6]:PORT, unix:PATH) and the
 * --metrics address: parsed, validated and described back whatever the text.
 * Built once include/resil/listen.h is in the tree (branch sockets). */
#include <stdbool.h>

#include "fuzz_util.h"
#include "resil/listen.h"
#include "resil/metrics_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    static struct listen_addr a;
    char err[512], words[600];
    memset(err, 'x', sizeof err);
    if (listen_parse(text, &a, err, sizeof err) == 0) {
        if (a.kind != LISTEN_UNIX && a.port > 65535)
            abort(); /* a port (0 is allowed: the kernel picks one) */
        listen_describe(&a, words, sizeof words);
        if (!memchr(words, '\0', sizeof words))
            abort();
    } else if (!memchr(err, '\0', sizeof err)) {
        abort(); /* terminated (config_load makes it one line: it replaces newlines) */
    }
    if ((listen_validate(text, err, sizeof err) == 0) !=
        (listen_parse(text, &a, err, sizeof err) == 0))
        abort(); /* the config row's check and the parser agree */
    (void)metrics_http_validate(text, err, sizeof err);
    free(text);
    return 0;
}
