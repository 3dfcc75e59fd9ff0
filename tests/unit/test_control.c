/* control.sock: the request line, and requests served over the real socket by
 * a real loop to a client in a forked process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "resil/control.h"
#include "resil/loop.h"
#include "resil/metrics.h"

static void request_lines(void **state)
{
    (void)state;
    enum control_command cmd = CONTROL_UNKNOWN;
    assert_int_equal(control_parse_request("restart\n", 8, false, &cmd), 1);
    assert_int_equal(cmd, CONTROL_RESTART);
    assert_int_equal(control_parse_request("metrics\r\n", 9, false, &cmd), 1);
    assert_int_equal(cmd, CONTROL_METRICS);
    assert_int_equal(control_parse_request("restar", 6, false, &cmd), 0);
    assert_int_equal(control_parse_request("restart", 7, true, &cmd), -1);
    assert_int_equal(control_parse_request("", 0, true, &cmd), -1);
    assert_int_equal(control_parse_request("restart now\n", 12, false, &cmd), 1);
    assert_int_equal(cmd, CONTROL_UNKNOWN);
    assert_int_equal(control_parse_request("RESTART\n", 8, false, &cmd), 1);
    assert_int_equal(cmd, CONTROL_UNKNOWN);
    assert_int_equal(control_parse_request("\n", 1, false, &cmd), 1);
    assert_int_equal(cmd, CONTROL_UNKNOWN);
}

struct fixture {
    char dir[64];
    char path[128];
    struct loop *loop;
    struct control *control;
    struct metrics metrics;
    struct loop_timer *later;
    int restarts;
    int refuse;     /* the restart callback says no */
    int answer_now; /* the restart callback answers before returning */
    int never;      /* the restart callback leaves the request waiting */
    char result[METRICS_TEXT_MAX + 512];
    size_t result_len;
};

static size_t render(void *ctx, char *buf, size_t len)
{
    struct fixture *f = ctx;
    return metrics_render(&f->metrics, buf, len);
}

static int on_restart(void *ctx, char *why, size_t whylen)
{
    struct fixture *f = ctx;
    f->restarts++;
    if (f->refuse) {
        snprintf(why, whylen, "resil-init is stopping");
        return -1;
    }
    if (f->answer_now)
        control_restart_done(f->control, true, "app pid 7");
    else if (!f->never)
        loop_timer_arm(f->later, 30);
    return 0;
}

static void answer_later(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)loop;
    (void)t;
    struct fixture *f = data;
    control_restart_done(f->control, true, "app pid 42");
}

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/resil-control-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/control.sock", f->dir);
    f->loop = loop_new();
    metrics_init(&f->metrics, false);
    metrics_count_restart(&f->metrics, "manual");
    struct control_handler h = {.ctx = f, .restart = on_restart, .render_metrics = render};
    char err[256];
    f->control = control_new(f->loop, f->dir, &h, err, sizeof err);
    if (!f->control)
        fail_msg("%s", err);
    f->later = loop_timer_new(f->loop, answer_later, f);
}

static void teardown(struct fixture *f)
{
    control_free(f->control);
    loop_timer_free(f->later);
    loop_free(f->loop);
    rmdir(f->dir);
}

struct client_run {
    struct fixture *f;
    int pipe_fd;
};

static void collect(struct loop *loop, int fd, uint32_t events, void *data)
{
    (void)events;
    struct fixture *f = data;
    ssize_t n = read(fd, f->result + f->result_len, sizeof f->result - 1 - f->result_len);
    if (n > 0) {
        f->result_len += (size_t)n;
        f->result[f->result_len] = '\0';
        return;
    }
    loop_del_fd(loop, fd);
    loop_stop(loop);
}

/* A client in a child process (optionally as another uid); what it got, as
 * "rc:answer" or "rc:error", lands in f->result while the loop serves it. */
static void run_client(struct fixture *f, const char *line, uid_t as_uid)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (as_uid != (uid_t)-1 && setuid(as_uid) < 0)
            _exit(3);
        static char out[METRICS_TEXT_MAX + 512];
        char err[256];
        int rc = control_request(f->path, line, 5000, out, sizeof out, err, sizeof err);
        dprintf(p[1], "%d:%s", rc, rc == 0 ? out : err);
        _exit(0);
    }
    close(p[1]);
    f->result_len = 0;
    f->result[0] = '\0';
    assert_int_equal(loop_add_fd(f->loop, p[0], EPOLLIN, collect, f), 0);
    loop_run(f->loop);
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void socket_is_private_to_the_owner(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    struct stat st;
    assert_int_equal(stat(f.path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    teardown(&f);
    assert_int_equal(stat(f.path, &st), -1); /* removed at exit */
}

static void metrics_request_gets_ok_and_the_text(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    run_client(&f, "metrics", (uid_t)-1);
    assert_true(strncmp(f.result, "0:ok\n# HELP ", 12) == 0);
    static char want[METRICS_TEXT_MAX];
    metrics_render(&f.metrics, want, sizeof want);
    assert_string_equal(f.result + 5, want);
    teardown(&f);
}

static void restart_is_answered_when_the_supervisor_says_so(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    uint64_t start = loop_now_ms();
    run_client(&f, "restart", (uid_t)-1);
    assert_string_equal(f.result, "0:ok app pid 42\n");
    assert_true(loop_now_ms() - start >= 30); /* held until answer_later */
    assert_int_equal(f.restarts, 1);

    f.answer_now = 1;
    run_client(&f, "restart", (uid_t)-1);
    assert_string_equal(f.result, "0:ok app pid 7\n");

    f.refuse = 1;
    run_client(&f, "restart", (uid_t)-1);
    assert_string_equal(f.result, "0:error resil-init is stopping\n");
    assert_int_equal(f.restarts, 3);
    teardown(&f);
}

static void free_now(struct loop *loop, struct loop_timer *t, void *data)
{
    (void)loop;
    (void)t;
    struct fixture *f = data;
    control_free(f->control);
    f->control = NULL;
}

static void waiting_restart_is_told_when_resil_init_exits(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    f.never = 1;
    struct loop_timer *t = loop_timer_new(f.loop, free_now, &f);
    loop_timer_arm(t, 50);
    run_client(&f, "restart", (uid_t)-1);
    assert_string_equal(f.result, "0:error resil-init is exiting\n");
    assert_null(f.control);
    struct stat st;
    assert_int_equal(stat(f.path, &st), -1);
    loop_timer_free(t);
    teardown(&f);
}

static void unknown_command_is_an_error(void **state)
{
    (void)state;
    struct fixture f;
    setup(&f);
    run_client(&f, "reboot", (uid_t)-1);
    assert_true(strncmp(f.result, "0:error unknown command", 23) == 0);
    assert_int_equal(f.restarts, 0);
    teardown(&f);
}

static void another_uid_is_refused(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fixture f;
    setup(&f);
    /* The socket is 0600: to test the credential check itself, open it up. */
    chmod(f.dir, 0711);
    chmod(f.path, 0666);
    run_client(&f, "restart", 65534);
    if (strncmp(f.result, "0:error permission denied: uid 65534", 36) != 0)
        fail_msg("got %s", f.result);
    assert_int_equal(f.restarts, 0);
    chmod(f.path, 0600);
    run_client(&f, "metrics", 65534);
    assert_non_null(strstr(f.result, "-1:cannot reach resil-init"));
    assert_non_null(strstr(f.result, strerror(EACCES)));
    teardown(&f);
}

static void nothing_listening_is_reported(void **state)
{
    (void)state;
    char out[64], err[256];
    assert_int_equal(control_request("/nonexistent/control.sock", "restart", 1000, out, sizeof out,
                                     err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "/nonexistent/control.sock"));
    char *argv[] = {"restart", "--state-dir", "/nonexistent", NULL};
    assert_int_equal(control_command(3, argv), 1);
    char *bad[] = {"metrics", "--bogus", NULL};
    assert_int_equal(control_command(2, bad), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_lines),
        cmocka_unit_test(socket_is_private_to_the_owner),
        cmocka_unit_test(metrics_request_gets_ok_and_the_text),
        cmocka_unit_test(restart_is_answered_when_the_supervisor_says_so),
        cmocka_unit_test(waiting_restart_is_told_when_resil_init_exits),
        cmocka_unit_test(unknown_command_is_an_error),
        cmocka_unit_test(another_uid_is_refused),
        cmocka_unit_test(nothing_listening_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
