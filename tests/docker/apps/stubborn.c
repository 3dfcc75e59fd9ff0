/* stubborn: the app of the `docker stop` tests. It, and optionally a leftover
 * it leaves in a session of its own (out of reach of a signal to the app's
 * process group), each either obey SIGTERM or ignore it.
 *
 *   stubborn APP LEFTOVER      APP: obey | ignore    LEFTOVER: none | obey | ignore
 *
 * "ready" goes to stdout once both are in place (the leftover's setsid() done),
 * so a test knows when stopping the container means what it should. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
    fputs("usage: stubborn obey|ignore none|obey|ignore\n", stderr);
    exit(2);
}

static bool parse_ignore(const char *word)
{
    if (strcmp(word, "ignore") == 0)
        return true;
    if (strcmp(word, "obey") != 0)
        usage();
    return false;
}

static void wait_forever(bool ignore_term)
{
    signal(SIGTERM, ignore_term ? SIG_IGN : SIG_DFL);
    for (;;)
        pause();
}

/* The leftover reports its session id through the pipe once it has one. */
static pid_t leave_child(bool ignore_term)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("stubborn: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("stubborn: fork");
        exit(1);
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGTERM, ignore_term ? SIG_IGN : SIG_DFL);
        pid_t sid = setsid();
        if (write(fds[1], &sid, sizeof sid) != (ssize_t)sizeof sid)
            _exit(1);
        close(fds[1]);
        wait_forever(ignore_term);
    }
    close(fds[1]);
    pid_t sid = -1;
    if (read(fds[0], &sid, sizeof sid) != (ssize_t)sizeof sid || sid < 0) {
        fputs("stubborn: the leftover did not start its own session\n", stderr);
        exit(1);
    }
    close(fds[0]);
    return sid;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        usage();
    bool app_ignores = parse_ignore(argv[1]);
    bool leave = strcmp(argv[2], "none") != 0;
    bool leftover_ignores = leave && parse_ignore(argv[2]);
    signal(SIGTERM, app_ignores ? SIG_IGN : SIG_DFL);
    pid_t sid = leave ? leave_child(leftover_ignores) : -1;
    printf("stubborn[%ld]: ready (app %s SIGTERM; leftover: %s, session %ld)\n", (long)getpid(),
           argv[1], argv[2], (long)sid);
    fflush(stdout);
    wait_forever(app_ignores);
}
