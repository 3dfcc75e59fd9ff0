/* Children: starting the app (its own process group, the terminal, the
 * exec-error pipe) and the record of it (struct child_process), reaping every
 * child, and signalling the app's group and whatever is left at the end. */
#define _GNU_SOURCE /* execvpe, pipe2 */
#include "resil/child.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "resil/util.h"

/* The terminal goes to the app only when resil-init holds it, as with `docker
 * run -it`; a resil-init started in a shell's background must not steal it. */
static bool owns_terminal(void)
{
    pid_t fg = tcgetpgrp(STDIN_FILENO);
    return fg > 0 && fg == getpgrp();
}

/* Runs in the forked child, before exec: only async-signal-safe calls, since
 * libcurl's resolver may have threads in the parent. */
static void exec_app(const struct child_spawn *req, int error_fd, bool give_terminal)
{
    setpgid(0, 0);
    /* SIGTTOU is still blocked here, which tcsetpgrp needs from a background group. */
    if (give_terminal)
        tcsetpgrp(STDIN_FILENO, getpid());
    loop_close_all_in_child(req->loop);
    /* After the loop's descriptors are closed, so none of theirs is reused. */
    if (listen_child_setup(req->listen, &error_fd) < 0) {
        int err = errno;
        ssize_t ignored = write(error_fd, &err, sizeof err);
        (void)ignored;
        _exit(126);
    }
    signals_restore_in_child(req->signals);
    execvpe(req->argv[0], req->argv, req->envp);
    int err = errno;
    ssize_t ignored = write(error_fd, &err, sizeof err);
    (void)ignored;
    _exit(err == ENOENT ? 127 : 126);
}

int child_spawn(const struct child_spawn *req, struct child_process *out)
{
    *out = CHILD_PROCESS_NONE;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        out->failed_call = "pipe2";
        return -1;
    }
    bool give_terminal = owns_terminal();
    pid_t pid = fork();
    if (pid < 0) {
        out->failed_call = "fork";
        int saved = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        exec_app(req, pipefd[1], give_terminal);
    }
    /* Set in the parent too, so signals sent right after fork reach the group. */
    setpgid(pid, pid);
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    out->pid = pid;
    out->exec_error_fd = pipefd[0];
    return 0;
}

int child_reaped(struct child_process *c)
{
    int err = 0;
    ssize_t n = c->exec_error_fd >= 0 ? read(c->exec_error_fd, &err, sizeof err) : 0;
    child_release(c);
    return n == (ssize_t)sizeof err ? err : 0;
}

void child_release(struct child_process *c)
{
    if (c->exec_error_fd >= 0)
        close(c->exec_error_fd);
    *c = CHILD_PROCESS_NONE;
}

int child_signal_group(pid_t pgid, int sig)
{
    if (pgid <= 0) {
        errno = ESRCH;
        return -1;
    }
    return kill(-pgid, sig);
}

bool child_reap_all(void (*on_exit)(void *ctx, pid_t pid, int status), void *ctx)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            on_exit(ctx, pid, status);
            continue;
        }
        if (pid < 0 && errno == EINTR)
            continue;
        return pid < 0 && errno == ECHILD;
    }
}

static bool child_pid_list_has(const struct child_pid_list *l, pid_t pid)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->pids[i] == pid)
            return true;
    return false;
}

static void child_pid_list_add(struct child_pid_list *l, pid_t pid)
{
    pid_t *grown = util_grow(l->pids, &l->cap, l->count + 1, sizeof *grown);
    if (!grown)
        return; /* unlisted: it may be signalled twice, which is harmless */
    l->pids = grown;
    l->pids[l->count++] = pid;
}

void child_pid_list_free(struct child_pid_list *l)
{
    free(l->pids);
    memset(l, 0, sizeof *l);
}

/* State letter and process group from /proc/PID/stat; the command name may
 * hold ')' so the fields are read after the last one. -1 when it is gone. */
static int process_stat(pid_t pid, char *state, pid_t *group)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    int parent, g;
    if (!close_paren || sscanf(close_paren + 1, " %c %d %d", state, &parent, &g) != 3)
        return -1;
    *group = (pid_t)g;
    return 0;
}

static pid_t process_group_of(pid_t pid)
{
    char state;
    pid_t group;
    return process_stat(pid, &state, &group) == 0 ? group : -1;
}

/* /proc shows the processes of the PID namespace it was mounted for, which
 * need not be ours (`unshare --pid` without a new /proc): then its pids are
 * not the ones kill() takes. */
static bool proc_is_ours(void)
{
    char self[32], want[32];
    ssize_t n = readlink("/proc/self", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    snprintf(want, sizeof want, "%d", (int)getpid());
    return strcmp(self, want) == 0;
}

/* kill(-pgid, 0) finds zombies too. A member of the old group that died as
 * the child of a process outside it stays a zombie as long as that parent
 * does not reap it, and would hold a restart back forever: such members do
 * not count. Without a /proc of our own, kill's word is taken. */
bool child_group_alive(pid_t pgid)
{
    if (pgid <= 0 || (kill(-pgid, 0) < 0 && errno != EPERM))
        return false;
    DIR *proc = proc_is_ours() ? opendir("/proc") : NULL;
    if (!proc)
        return true;
    bool alive = false;
    struct dirent *de;
    while (!alive && (de = readdir(proc)) != NULL) {
        char state;
        pid_t group;
        if (isdigit((unsigned char)de->d_name[0]) &&
            process_stat((pid_t)atoi(de->d_name), &state, &group) == 0 && group == pgid)
            alive = state != 'Z' && state != 'X';
    }
    closedir(proc);
    return alive;
}

static void signal_child_once(pid_t pid, pid_t app_pgid, int sig, struct child_pid_list *already)
{
    if (already && child_pid_list_has(already, pid))
        return;
    /* Members of the app's group got the group signal already. */
    bool in_group_done = already && already->group_signalled && process_group_of(pid) == app_pgid;
    if (!in_group_done)
        kill(pid, sig);
    if (already)
        child_pid_list_add(already, pid);
}

/* resil-init's own children are listed per thread in /proc/self/task/TID/children:
 * reading those costs a few opens, where scanning /proc would read every process
 * of the host. */
static bool signal_children(pid_t app_pgid, int sig, struct child_pid_list *already)
{
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks)
        return false;
    struct dirent *de;
    while ((de = readdir(tasks)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", de->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
            signal_child_once((pid_t)pid, app_pgid, sig, already);
        fclose(f);
    }
    closedir(tasks);
    return true;
}

bool child_signal_leftovers(bool pid1, pid_t app_pgid, int sig, struct child_pid_list *already)
{
    if (pid1) {
        /* kill(-1) skips resil-init itself and reaches the whole namespace. */
        kill(-1, sig);
        return true;
    }
    /* Group members that are not yet resil-init's children (their parent is
     * alive) are reached through the group, once. */
    if (app_pgid > 0 && (!already || !already->group_signalled)) {
        kill(-app_pgid, sig);
        if (already)
            already->group_signalled = true;
    }
    return signal_children(app_pgid, sig, already);
}

int child_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 70;
}
