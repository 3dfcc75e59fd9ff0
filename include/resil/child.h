/* Children: starting the app, reaping every child, signalling the app's group
 * and ending what is left. */
#ifndef RESIL_CHILD_H
#define RESIL_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "resil/listen.h"
#include "resil/loop.h"
#include "resil/signals.h"

struct child_spawn {
    char **argv; /* NULL-terminated; argv[0] looked up in PATH */
    char **envp; /* the app's environment */
    const struct signals *signals;
    struct loop *loop;         /* its descriptors are closed in the child */
    struct listen_set *listen; /* placed at fds 3.. in the child; NULL for none */
};

/* The app as child.c tracks it; the caller only reads pid (0: none runs). */
struct child_process {
    pid_t pid;
    int exec_errno;          /* errno of a failed exec; 0 when it worked */
    const char *failed_call; /* after child_spawn failed: the call, "vfork" */
};
#define CHILD_PROCESS_NONE ((struct child_process){.pid = 0, .exec_errno = 0})

/* Starts the app in its own process group (foreground on the terminal when
 * resil-init holds it) and returns once it has exec'd: 0, or -1 with errno
 * when vfork itself failed (*out is then CHILD_PROCESS_NONE). A failed exec is
 * a started child that exits 126 or 127 at once; child_reaped says why. */
int child_spawn(const struct child_spawn *req, struct child_process *out);

/* The app was reaped: returns the errno of a failed exec, or 0 when exec
 * worked, and forgets the process (*c becomes CHILD_PROCESS_NONE). */
int child_reaped(struct child_process *c);
/* Lets go of what *c still holds (at teardown, the app not reaped). */
void child_release(struct child_process *c);

/* Sends sig to every process of the group pgid (> 0). 0, or -1 with errno. */
int child_signal_group(pid_t pgid, int sig);

/* Reaps every child that has exited, calling on_exit for each.
 * Returns true when resil-init has no children left at all. */
bool child_reap_all(void (*on_exit)(void *ctx, pid_t pid, int status), void *ctx);

/* Whether any process of the group is still alive: zombies do not count
 * (one whose parent never reaps it would count forever). */
bool child_group_alive(pid_t pgid);

/* Signals what is left: as PID 1 every other process of the namespace; as a
 * subreaper the children reparented to resil-init and the members of the app's
 * process group (app_pgid, 0 for none). With already non-NULL, a process that
 * is in the list is skipped and one signalled is added, so each gets sig once. */
struct child_pid_list {
    pid_t *pids;
    size_t count, cap;
    bool group_signalled; /* the app's group got the signal as a whole */
};
/* false (errno set) when the children could not be listed (no /proc): only the
 * app's group was signalled then. */
bool child_signal_leftovers(bool pid1, pid_t app_pgid, int sig, struct child_pid_list *already);
/* child_signal_leftovers for when resil-init has no child left: as PID 1 the
 * processes that joined the namespace from outside (docker exec), as a
 * subreaper the app's group; no /proc scan, as it could find no child. */
void child_signal_strays(bool pid1, pid_t app_pgid, int sig);
void child_pid_list_free(struct child_pid_list *l);

/* Exit code by the README's "Exit codes" table: N, or 128+S. */
int child_status_code(int status);

#endif
