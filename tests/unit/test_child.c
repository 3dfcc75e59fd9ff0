/* child: starting the app and the record of it (reaped, released), group
 * signals that can never hit resil-init's own group, and exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "resil/child.h"
#include "resil/loop.h"
#include "resil/signals.h"

/* pgid 0 would be kill(0, sig): resil-init's own group. */
static void no_group_is_never_our_group(void **state)
{
    (void)state;
    signal(SIGUSR1, SIG_DFL);
    errno = 0;
    assert_int_equal(child_signal_group(0, SIGUSR1), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(child_signal_group(-5, SIGUSR1), -1);
}

/* A child that leads a process group of its own and waits for a signal. */
static pid_t fork_group_leader(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        pause();
        _exit(0);
    }
    setpgid(pid, pid);
    return pid;
}

static void a_group_gets_the_signal(void **state)
{
    (void)state;
    pid_t pid = fork_group_leader();
    assert_int_equal(child_signal_group(pid, SIGTERM), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
    assert_int_equal(child_status_code(status), 128 + SIGTERM);
}

extern char **environ;

/* Spawns argv the way the supervisor does, waits for it, and returns what
 * child_reaped says; the record is forgotten afterwards. */
static int spawn_wait_reap(char *const argv[], int *status)
{
    sigset_t before;
    sigprocmask(SIG_SETMASK, NULL, &before);
    struct loop *loop = loop_new();
    struct signals *sigs = signals_setup();
    assert_non_null(loop);
    assert_non_null(sigs);
    struct child_spawn req = {
        .argv = (char **)argv, .envp = environ, .signals = sigs, .loop = loop};
    struct child_process c;
    assert_int_equal(child_spawn(&req, &c), 0);
    assert_true(c.pid > 0);
    /* spawned with vfork: the app has exec'd (or failed to) by now, in its group */
    assert_int_equal(getpgid(c.pid), c.pid);
    assert_int_equal(waitpid(c.pid, status, 0), c.pid);
    int err = child_reaped(&c);
    assert_int_equal(c.pid, 0);
    signals_free(sigs);
    loop_free(loop);
    sigprocmask(SIG_SETMASK, &before, NULL);
    return err;
}

static void reaped_tells_the_exec_error_and_forgets_the_app(void **state)
{
    (void)state;
    int status;
    char *const missing[] = {"resil-init-test-no-such-command", NULL};
    assert_int_equal(spawn_wait_reap(missing, &status), ENOENT);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 127);

    char *const not_executable[] = {"/dev/null", NULL};
    assert_int_equal(spawn_wait_reap(not_executable, &status), EACCES);
    assert_int_equal(WEXITSTATUS(status), 126);

    char *const works[] = {"true", NULL};
    assert_int_equal(spawn_wait_reap(works, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    struct child_process c = CHILD_PROCESS_NONE;
    assert_int_equal(child_reaped(&c), 0);
    child_release(&c);
    assert_int_equal(c.pid, 0);
}

/* A group whose only member is a zombie nobody reaps is not alive: a restart
 * must not wait on it forever. A live member keeps it alive. */
static void a_zombie_does_not_keep_a_group_alive(void **state)
{
    (void)state;
    pid_t pid = fork_group_leader();
    assert_true(child_group_alive(pid));
    kill(pid, SIGKILL);
    siginfo_t info;
    /* Wait until it is a zombie, but leave it unreaped (WNOWAIT). */
    assert_int_equal(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0);
    assert_false(child_group_alive(pid));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(child_group_alive(pid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_group_is_never_our_group),
        cmocka_unit_test(a_group_gets_the_signal),
        cmocka_unit_test(reaped_tells_the_exec_error_and_forgets_the_app),
        cmocka_unit_test(a_zombie_does_not_keep_a_group_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
