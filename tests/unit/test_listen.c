/* --listen: the address parser, socket creation, the child's fd placement and
 * the sd_listen_fds environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "resil/listen.h"

static void parses_every_form(void **state)
{
    (void)state;
    struct listen_addr a;
    char err[256];
    assert_int_equal(listen_parse("3000", &a, err, sizeof err), 0);
    assert_int_equal(a.kind, LISTEN_ANY);
    assert_int_equal(a.port, 3000);
    assert_string_equal(a.name, "listen");

    assert_int_equal(listen_parse("127.0.0.1:8080", &a, err, sizeof err), 0);
    assert_int_equal(a.kind, LISTEN_HOST);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 8080);

    assert_int_equal(listen_parse("web=[::1]:0", &a, err, sizeof err), 0);
    assert_int_equal(a.kind, LISTEN_HOST);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 0);
    assert_string_equal(a.name, "web");

    assert_int_equal(listen_parse("localhost:65535", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.port, 65535);

    /* '=' after the "unix:" is part of the path, not a name. */
    assert_int_equal(listen_parse("unix:/run/a=b.sock", &a, err, sizeof err), 0);
    assert_int_equal(a.kind, LISTEN_UNIX);
    assert_string_equal(a.path, "/run/a=b.sock");
    assert_string_equal(a.name, "listen");

    assert_int_equal(listen_parse("admin=unix:rel.sock", &a, err, sizeof err), 0);
    assert_string_equal(a.name, "admin");
    assert_string_equal(a.path, "rel.sock");
}

static void rejects_bad_addresses_naming_them(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",         "65536",      "-1",     "+80",      "30x0",      "abc",          ":3000",
        "host:",    "host:99999", "::1:80", "[::1]",    "[::1]80",   "[1.2.3.4]:80", "[zz]:80",
        "[::1:80",  "unix:",      "=3000",  "a:b=3000", "we b=3000", "bad_host!:80", "123456",
        "-host:80",
    };
    char err[256];
    struct listen_addr a;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (listen_parse(bad[i], &a, err, sizeof err) != -1)
            fail_msg("accepted '%s'", bad[i]);
        assert_true(strlen(err) > 0);
        assert_null(strchr(err, '\n'));
        if (bad[i][0])
            assert_non_null(strstr(err, bad[i]));
        assert_int_equal(listen_validate(bad[i], err, sizeof err), -1);
    }
}

static void rejects_overlong_name_and_path(void **state)
{
    (void)state;
    char text[600], err[256];
    memset(text, 'n', LISTEN_NAME_MAX + 1);
    snprintf(text + LISTEN_NAME_MAX + 1, sizeof text - LISTEN_NAME_MAX - 1, "=80");
    assert_int_equal(listen_validate(text, err, sizeof err), -1);
    memset(text, 'n', LISTEN_NAME_MAX);
    snprintf(text + LISTEN_NAME_MAX, sizeof text - LISTEN_NAME_MAX, "=80");
    assert_int_equal(listen_validate(text, err, sizeof err), 0);

    snprintf(text, sizeof text, "unix:/");
    memset(text + 6, 'p', LISTEN_PATH_MAX);
    text[6 + LISTEN_PATH_MAX] = '\0';
    assert_int_equal(listen_validate(text, err, sizeof err), -1);
    text[5 + LISTEN_PATH_MAX] = '\0';
    assert_int_equal(listen_validate(text, err, sizeof err), 0);
}

static int fd_flags(int fd)
{
    return fcntl(fd, F_GETFD);
}

static void opens_ipv4_loopback_with_reuseaddr_and_backlog(void **state)
{
    (void)state;
    struct listen_addr a;
    char err[256];
    assert_int_equal(listen_parse("127.0.0.1:0", &a, err, sizeof err), 0);
    int fd = listen_open(&a, 7, false, err, sizeof err);
    assert_true(fd >= 0);
    assert_true(fd_flags(fd) & FD_CLOEXEC);
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    int one = 0, acc = 0;
    socklen_t len = sizeof one;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
    assert_int_equal(one, 1);
    len = sizeof acc;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len), 0);
    assert_int_equal(acc, 1);
    struct sockaddr_in sin;
    len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    assert_int_equal(sin.sin_family, AF_INET);
    assert_int_equal(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);

    /* A client connects even though nobody accepts: the backlog holds it. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
    close(c);

    /* The same port again is in use: one line naming the address. */
    struct listen_addr again = a;
    again.port = ntohs(sin.sin_port);
    int fd2 = listen_open(&again, 7, false, err, sizeof err);
    assert_int_equal(fd2, -1);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", again.port);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, strerror(EADDRINUSE)));
    close(fd);
}

static void opens_ipv6_loopback_and_any(void **state)
{
    (void)state;
    struct listen_addr a;
    char err[256];
    assert_int_equal(listen_parse("[::1]:0", &a, err, sizeof err), 0);
    int fd = listen_open(&a, 16, true, err, sizeof err);
    if (fd < 0 && strstr(err, strerror(EADDRNOTAVAIL)))
        skip(); /* no IPv6 on this host */
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    struct sockaddr_in6 s6;
    socklen_t len = sizeof s6;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&s6, &len), 0);
    assert_int_equal(s6.sin6_family, AF_INET6);
    assert_memory_equal(&s6.sin6_addr, &in6addr_loopback, sizeof s6.sin6_addr);
    close(fd);

    /* PORT alone is dual-stack: an IPv4 client reaches it. */
    assert_int_equal(listen_parse("0", &a, err, sizeof err), 0);
    fd = listen_open(&a, 16, false, err, sizeof err);
    assert_true(fd >= 0);
    len = sizeof s6;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&s6, &len), 0);
    assert_int_equal(s6.sin6_family, AF_INET6);
    int v6only = 1;
    len = sizeof v6only;
    assert_int_equal(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
    assert_int_equal(v6only, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = s6.sin6_port};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
    close(c);
    close(fd);
}

static void tmp_path(char *out, size_t len, const char *leaf)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, len, "%s/resil-listen-%d-%s", dir && *dir ? dir : "/tmp", (int)getpid(), leaf);
}

static void unix_socket_replaces_stale_file_and_is_removed(void **state)
{
    (void)state;
    char path[108], text[128], err[256];
    tmp_path(path, sizeof path, "stale.sock");
    unlink(path);
    /* A stale socket: bound once, its listener closed. */
    int old = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    assert_int_equal(bind(old, (struct sockaddr *)&sun, sizeof sun), 0);
    close(old);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);

    snprintf(text, sizeof text, "unix:%s", path);
    char *addrs[] = {text};
    struct listen_set *s = listen_set_open(addrs, 1, 8, err, sizeof err);
    assert_non_null(s);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
    close(c);

    /* A live listener is not removed: a second set fails and names it. */
    assert_null(listen_set_open(addrs, 1, 8, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_int_equal(lstat(path, &st), 0);

    listen_set_free(s);
    assert_int_equal(lstat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void unix_path_that_is_not_a_socket_is_left_alone(void **state)
{
    (void)state;
    char path[108], text[128], err[256];
    tmp_path(path, sizeof path, "regular");
    int f = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(f >= 0);
    close(f);
    snprintf(text, sizeof text, "unix:%s", path);
    struct listen_addr a;
    assert_int_equal(listen_parse(text, &a, err, sizeof err), 0);
    assert_int_equal(listen_open(&a, 8, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a socket"));
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    unlink(path);
}

static void failed_set_closes_what_it_opened(void **state)
{
    (void)state;
    char path[108], text[128], err[256];
    tmp_path(path, sizeof path, "first.sock");
    unlink(path);
    snprintf(text, sizeof text, "unix:%s", path);
    char *addrs[] = {text, "999999"};
    assert_null(listen_set_open(addrs, 2, 8, err, sizeof err));
    assert_non_null(strstr(err, "999999"));
    struct stat st;
    assert_int_equal(lstat(path, &st), -1);
}

static void env_merge_replaces_inherited_listen_vars(void **state)
{
    (void)state;
    char err[256];
    char *addrs[] = {"web=127.0.0.1:0", "127.0.0.1:0"};
    struct listen_set *s = listen_set_open(addrs, 2, 8, err, sizeof err);
    assert_non_null(s);
    char *envp[] = {"PATH=/bin",        "LISTEN_FDS=9", "LISTEN_PID=1",
                    "LISTEN_FDNAMES=x", "HOME=/",       NULL};
    char **env = listen_env_merge(envp, s);
    assert_non_null(env);
    assert_string_equal(env[0], "PATH=/bin");
    assert_string_equal(env[1], "HOME=/");
    assert_string_equal(env[2], "LISTEN_FDS=2");
    assert_string_equal(env[3], "LISTEN_PID=");
    assert_string_equal(env[4], "LISTEN_FDNAMES=web:listen");
    assert_null(env[5]);
    free(env);
    listen_set_free(s);

    struct listen_set *empty = listen_set_open(NULL, 0, 8, err, sizeof err);
    assert_non_null(empty);
    assert_null(listen_env_merge(envp, empty));
    listen_set_free(empty);
}

static void formats_unsigned_integers(void **state)
{
    (void)state;
    char buf[24];
    assert_int_equal(listen_format_uint(buf, sizeof buf, 0), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(listen_format_uint(buf, sizeof buf, 4194304), 7);
    assert_string_equal(buf, "4194304");
    assert_int_equal(listen_format_uint(buf, sizeof buf, 18446744073709551615ul), 20);
    assert_string_equal(buf, "18446744073709551615");
    assert_int_equal(listen_format_uint(buf, 3, 123), 0);
    assert_int_equal(listen_format_uint(buf, 4, 123), 3);
    assert_string_equal(buf, "123");
}

/* The child's view: sockets at 3 and 4 in order, inheritable, the pid filled
 * in, and the exec-error pipe moved out of the range even when it sat in it. */
static void child_gets_sockets_at_3_and_up(void **state)
{
    (void)state;
    char err[256];
    char *addrs[] = {"127.0.0.1:0", "[::1]:0"};
    struct listen_set *s = listen_set_open(addrs, 1, 8, err, sizeof err);
    assert_non_null(s);
    struct listen_set *two = listen_set_open(addrs + 1, 1, 8, err, sizeof err);
    if (!two)
        two = listen_set_open(addrs, 1, 8, err, sizeof err);
    assert_non_null(two);
    int report[2];
    assert_int_equal(pipe(report), 0);
    struct sockaddr_storage want[2];
    socklen_t wlen[2] = {sizeof want[0], sizeof want[1]};
    getsockname(s->fds[0], (struct sockaddr *)&want[0], &wlen[0]);
    getsockname(two->fds[0], (struct sockaddr *)&want[1], &wlen[1]);

    struct listen_set merged = *s;
    int fds[2] = {s->fds[0], two->fds[0]};
    struct listen_addr as[2] = {s->addrs[0], two->addrs[0]};
    merged.count = 2;
    merged.fds = fds;
    merged.addrs = as;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(report[0]);
        /* The worst layout: the pipe at 3 where the first socket goes, the
         * first socket at 4 where the second goes, the second far above. */
        int hi0 = fcntl(fds[0], F_DUPFD, 20), hi1 = fcntl(fds[1], F_DUPFD, 30);
        int hip = fcntl(report[1], F_DUPFD, 40);
        close(fds[0]);
        close(fds[1]);
        close(report[1]);
        dup2(hip, 3);
        dup2(hi0, 4);
        close(hip);
        close(hi0);
        fds[0] = 4;
        fds[1] = hi1;
        int keep = 3;
        int r = listen_child_setup(&merged, &keep);
        char out[256];
        int n = 0;
        for (int i = 0; i < 2; i++) {
            struct sockaddr_storage got;
            socklen_t glen = sizeof got;
            int flags = fcntl(3 + i, F_GETFD);
            bool same = getsockname(3 + i, (struct sockaddr *)&got, &glen) == 0 &&
                        glen == wlen[i] && memcmp(&got, &want[i], glen) == 0;
            n += snprintf(out + n, sizeof out - (size_t)n, "%d%d", same, flags == 0);
        }
        snprintf(out + n, sizeof out - (size_t)n, " %d %d %s", r, keep > 4, merged.pid_env);
        ssize_t w = write(keep, out, strlen(out));
        _exit(w > 0 ? 0 : 1);
    }
    close(report[1]);
    char got[256] = "";
    ssize_t n = read(report[0], got, sizeof got - 1);
    assert_true(n > 0);
    got[n] = '\0';
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char expect[64];
    snprintf(expect, sizeof expect, "1111 0 1 LISTEN_PID=%d", (int)pid);
    assert_string_equal(got, expect);
    close(report[0]);
    listen_set_free(s);
    listen_set_free(two);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_every_form),
        cmocka_unit_test(rejects_bad_addresses_naming_them),
        cmocka_unit_test(rejects_overlong_name_and_path),
        cmocka_unit_test(opens_ipv4_loopback_with_reuseaddr_and_backlog),
        cmocka_unit_test(opens_ipv6_loopback_and_any),
        cmocka_unit_test(unix_socket_replaces_stale_file_and_is_removed),
        cmocka_unit_test(unix_path_that_is_not_a_socket_is_left_alone),
        cmocka_unit_test(failed_set_closes_what_it_opened),
        cmocka_unit_test(env_merge_replaces_inherited_listen_vars),
        cmocka_unit_test(formats_unsigned_integers),
        cmocka_unit_test(child_gets_sockets_at_3_and_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
