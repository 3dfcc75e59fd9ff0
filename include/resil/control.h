/* control.sock: commands to a running resil-init (`resil-init restart`,
 * `resil-init metrics`), served inside the event loop through the conn module
 * to peers whose uid is 0 or resil-init's own.
 *
 * The protocol: the client sends one line, `restart` or `metrics`. The answer
 * is one line, `ok[ DETAIL]` or `error REASON`, then for `metrics` the
 * exposition text; the server closes the connection after it. A restart is
 * answered once the new app has been started, or the restart failed. */
#ifndef RESIL_CONTROL_H
#define RESIL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resil/loop.h"

#define CONTROL_SOCKET_NAME "control.sock"
#define CONTROL_MAX_CONNS 8
#define CONTROL_REQUEST_MAX 64
#define CONTROL_DEADLINE_MS 2000 /* to send the request line; a restart then waits */
#define CONTROL_METRICS_TIMEOUT_MS 10000
#define CONTROL_RESTART_TIMEOUT_MS (15 * 60 * 1000) /* above any sane --grace */

enum control_command { CONTROL_RESTART, CONTROL_METRICS, CONTROL_UNKNOWN };

/* One request line out of the bytes so far: 0 when more are needed, 1 with
 * *cmd set once a line is complete (CONTROL_UNKNOWN for any other word), -1
 * when the peer ended without a line. */
int control_parse_request(const char *buf, size_t len, bool eof, enum control_command *cmd);

struct control_handler {
    void *ctx;
    /* A manual restart: 0 when it was begun or is under way (control_restart_done
     * answers later, possibly from inside this call), -1 with why filled. */
    int (*restart)(void *ctx, char *why, size_t whylen);
    /* The metrics text into buf; its length, 0 on failure. */
    size_t (*render_metrics)(void *ctx, char *buf, size_t len);
};

struct control;
/* Creates state_dir/control.sock (mode 0600). NULL with err filled. */
struct control *control_new(struct loop *loop, const char *state_dir,
                            const struct control_handler *handler, char *err, size_t errlen);
/* Answers every restart request waiting: `ok DETAIL` or `error DETAIL`. */
void control_restart_done(struct control *c, bool ok, const char *detail);
/* Closes the socket (waiting clients get `error resil-init is exiting`) and
 * removes its path. */
void control_free(struct control *c);

/* Client side: sends line to the socket at path and reads the whole answer
 * into out (NUL-terminated). 0, or -1 with err filled (not reachable, timed out). */
int control_request(const char *path, const char *line, uint64_t timeout_ms, char *out,
                    size_t outlen, char *err, size_t errlen);

/* The `restart` and `metrics` subcommands (argv[0] is the command); exit code. */
int control_command(int argc, char **argv);

#endif
