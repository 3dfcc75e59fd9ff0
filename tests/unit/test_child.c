/* child: the record of the app (reaped, released), group signals that can
 * never hit resil-init's own group, and exit codes. */
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

static void reaped_reads_the_exec_error_and_forgets_the_app(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    int err = ENOENT;
    assert_int_equal(write(p[1], &err, sizeof err), (ssize_t)sizeof err);
    close(p[1]);
    struct child_process c = {.pid = 42, .exec_error_fd = p[0]};
    assert_int_equal(child_reaped(&c), ENOENT);
    assert_int_equal(c.pid, 0);
    assert_int_equal(c.exec_error_fd, -1);
    assert_int_equal(fcntl(p[0], F_GETFD), -1); /* the pipe is closed */

    /* exec worked: the pipe closed empty */
    assert_int_equal(pipe(p), 0);
    close(p[1]);
    c = (struct child_process){.pid = 43, .exec_error_fd = p[0]};
    assert_int_equal(child_reaped(&c), 0);
    assert_int_equal(c.pid, 0);

    c = CHILD_PROCESS_NONE;
    assert_int_equal(child_reaped(&c), 0);
    child_release(&c);
    assert_int_equal(c.exec_error_fd, -1);
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
        cmocka_unit_test(reaped_reads_the_exec_error_and_forgets_the_app),
        cmocka_unit_test(a_zombie_does_not_keep_a_group_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
