/* fd_server: a TCP server that never binds. It accepts on the listening socket
 * it inherits as fd 3 (the sd_listen_fds protocol: LISTEN_FDS=1 and LISTEN_PID
 * naming itself), answers each connection with one line holding its pid, and
 * exits 1 after COUNT connections, so its supervisor must restart it while
 * clients keep connecting to the same socket.
 *
 *   fd_server COUNT */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { LISTEN_FD = 3 };

static int inherited_socket(void)
{
    const char *fds = getenv("LISTEN_FDS");
    const char *pid = getenv("LISTEN_PID");
    if (!fds || strcmp(fds, "1") != 0 || !pid || atol(pid) != (long)getpid()) {
        fprintf(stderr, "fd_server: no socket handed over (LISTEN_FDS=%s LISTEN_PID=%s, pid %ld)\n",
                fds ? fds : "(unset)", pid ? pid : "(unset)", (long)getpid());
        exit(2);
    }
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(LISTEN_FD, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
        fputs("fd_server: fd 3 is not a listening socket\n", stderr);
        exit(2);
    }
    return LISTEN_FD;
}

int main(int argc, char **argv)
{
    if (argc != 2 || atoi(argv[1]) < 1) {
        fputs("usage: fd_server COUNT\n", stderr);
        return 2;
    }
    int count = atoi(argv[1]);
    int sock = inherited_socket();
    printf("fd_server[%ld]: accepting on the inherited fd %d\n", (long)getpid(), sock);
    fflush(stdout);
    for (int served = 0; served < count; served++) {
        int conn = accept(sock, NULL, NULL);
        if (conn < 0) {
            perror("fd_server: accept");
            return 1;
        }
        char line[64];
        int n = snprintf(line, sizeof line, "fd_server %ld\n", (long)getpid());
        if (write(conn, line, (size_t)n) != n)
            perror("fd_server: write");
        close(conn);
    }
    return 1;
}
