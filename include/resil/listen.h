/* --listen: the listening sockets resil-init creates once, keeps for its whole
 * life, and hands to every start of the app as fds 3.. with the sd_listen_fds(3)
 * environment (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES). The address parser is
 * shared with --metrics. */
#ifndef RESIL_LISTEN_H
#define RESIL_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

/* systemd's limit for a LISTEN_FDNAMES entry. */
#define LISTEN_NAME_MAX 255
#define LISTEN_HOST_MAX 253
#define LISTEN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define LISTEN_DEFAULT_NAME "listen"

enum listen_kind {
    LISTEN_ANY,  /* PORT alone: [::] dual-stack, else 0.0.0.0 */
    LISTEN_HOST, /* HOST:PORT or [IPV6]:PORT */
    LISTEN_UNIX, /* unix:PATH */
};

struct listen_addr {
    char name[LISTEN_NAME_MAX + 1]; /* LISTEN_DEFAULT_NAME when not given */
    enum listen_kind kind;
    char host[LISTEN_HOST_MAX + 1]; /* LISTEN_HOST: a literal or a host name, no brackets */
    unsigned port;                  /* LISTEN_ANY, LISTEN_HOST */
    char path[LISTEN_PATH_MAX + 1]; /* LISTEN_UNIX */
};

/* Parses `[NAME=]PORT|HOST:PORT|[IPV6]:PORT|unix:PATH`. 0, or -1 with one line
 * in err naming the address and what is wrong. */
int listen_parse(const char *text, struct listen_addr *out, char *err, size_t errlen);

/* The validator of the config rows: listen_parse without keeping the result. */
int listen_validate(const char *text, char *err, size_t errlen);

/* The address in words for messages: "127.0.0.1:3000", "[::]:3000", "unix:/run/a.sock". */
void listen_describe(const struct listen_addr *a, char *out, size_t outlen);

/* Creates, binds and listens (SO_REUSEADDR for TCP; a stale unix socket file is
 * removed first). The fd is CLOEXEC, blocking unless nonblock. Returns the fd,
 * or -1 with one line in err naming the address and the reason. */
int listen_open(const struct listen_addr *a, int backlog, bool nonblock, char *err, size_t errlen);

/* Removes a unix socket's path; nothing for TCP. */
void listen_unlink(const struct listen_addr *a);

/* All --listen sockets, and the environment that hands them over. The env
 * strings are built once; only LISTEN_PID's digits are written, in the child. */
struct listen_set {
    size_t count;
    struct listen_addr *addrs;
    int *fds;
    char fds_env[32];                        /* "LISTEN_FDS=N" */
    char pid_env[sizeof "LISTEN_PID=" + 20]; /* digits filled in the child */
    char *names_env;                         /* "LISTEN_FDNAMES=a:b" */
};

/* Parses and opens every address in order. NULL with err filled when one fails
 * (those already opened are closed again and their paths removed). count 0
 * gives an empty set. */
struct listen_set *listen_set_open(char *const *addrs, size_t count, int backlog, char *err,
                                   size_t errlen);
/* Closes every socket and removes the unix paths (resil-init is exiting). */
void listen_set_free(struct listen_set *s);

/* A new environment: envp without any LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, plus
 * the set's three entries (pointing into s, not copied). NULL when s is empty
 * or on allocation failure; free the vector alone with free(). */
char **listen_env_merge(char *const *envp, struct listen_set *s);

/* In the forked child, before exec; async-signal-safe. Moves *keep_fd (the
 * exec-error pipe, may be NULL) above the range, places the sockets at 3..N+2
 * in order with CLOEXEC cleared on those copies only, and writes the child's pid
 * into LISTEN_PID. 0, or -1 with errno. */
int listen_child_setup(struct listen_set *s, int *keep_fd);

/* Writes v in decimal with a NUL; async-signal-safe. The digits written, or 0
 * when outlen is too small. */
size_t listen_format_uint(char *out, size_t outlen, unsigned long v);

#endif
