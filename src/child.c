/* Children: starting the app (vfork, its own process group, the terminal, the
 * exec error) and the record of it (struct child_process), reaping every
 * child, and signalling the app's group and whatever is left at the end. */
#define _GNU_SOURCE /* execvpe, vfork */
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

/* Runs in the vforked child, before exec, on resil-init's memory: system calls
 * only (async-signal-safe, as libcurl's resolver may have threads in the
 * parent), nothing that allocates or takes a lock, and the one thing written to
 * the parent's memory is *exec_errno. The group and the terminal are set here,
 * before the exec, so nothing can signal the app before its group exists. */
static void exec_app(const struct child_spawn *req, volatile int *exec_errno)
{
    bool give_terminal = owns_terminal();
    setpgid(0, 0);
    /* SIGTTOU is still blocked here, which tcsetpgrp needs from a background group. */
    if (give_terminal)
        tcsetpgrp(STDIN_FILENO, getpid());
    loop_close_all_in_child(req->loop);
    /* After the loop's descriptors are closed, so none of theirs is reused.
     * (Its LISTEN_PID text is written into resil-init's memory, shared here:
     * the app's own pid, which is what the parent's copy should say too.) */
    if (listen_child_setup(req->listen, NULL) < 0) {
        *exec_errno = errno;
        _exit(126);
    }
    signals_restore_in_child(req->signals);
    execvpe(req->argv[0], req->argv, req->envp);
    int err = errno;
    *exec_errno = err;
    _exit(err == ENOENT ? 127 : 126);
}

/* vfork: no page tables copied and no page faulted in twice, and resil-init
 * resumes only once the app has exec'd (or failed to), so nothing it does next
 * (a log line, status.json) delays the exec, and a failed exec's errno is
 * simply left in memory instead of sent through a pipe. The price: resil-init
 * waits for execve itself, which loading a binary makes short. */
int child_spawn(const struct child_spawn *req, struct child_process *out)
{
    *out = CHILD_PROCESS_NONE;
    volatile int exec_errno = 0;
    /* The analyzer's "denial of service in the parent" is the price named above. */
    pid_t pid = vfork(); // NOLINT(clang-analyzer-security.insecureAPI.vfork)
    if (pid < 0) {
        out->failed_call = "vfork";
        return -1;
    }
    /* The analyzer allows only exec and _exit after vfork; exec_app keeps to
     * the rule that matters (system calls only, nothing allocated, no return),
     * which posix_spawn's own vfork-style child follows too. */
    if (pid == 0)
        exec_app(req, &exec_errno); // NOLINT(clang-analyzer-unix.Vfork)
    out->pid = pid;
    out->exec_errno = exec_errno;
    return 0;
}

int child_reaped(struct child_process *c)
{
    int err = c->exec_errno;
    child_release(c);
    return err;
}

void child_release(struct child_process *c)
{
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
    int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC); /* musl's open() adds an fcntl */
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

void child_signal_strays(bool pid1, pid_t app_pgid, int sig)
{
    if (pid1)
        kill(-1, sig);
    else if (app_pgid > 0)
        kill(-app_pgid, sig);
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
