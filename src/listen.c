/* The --listen sockets: parsing their addresses, creating them once, and
 * placing them at fds 3.. in each forked child with the sd_listen_fds(3)
 * variables. Everything the child needs is prepared before fork, because
 * resil-init may have resolver threads: the child only dups and writes digits. */
#define _GNU_SOURCE /* F_DUPFD_CLOEXEC, SOCK_CLOEXEC */
#include "resil/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resil/util.h"

/* More sockets than this would be a typo, and the child keeps their temporary
 * copies on its stack. */
#define LISTEN_SET_MAX 64

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* --- parsing --- */

/* A LISTEN_FDNAMES entry: printable ASCII without ':' (the separator). */
static bool name_valid(const char *name, size_t len)
{
    if (len == 0 || len > LISTEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] <= ' ' || name[i] > '~' || name[i] == ':')
            return false;
    return true;
}

static bool parse_port(const char *s, unsigned *out)
{
    uint64_t v;
    if (util_parse_u64(s, 65535, &v) < 0)
        return false;
    *out = (unsigned)v;
    return true;
}

/* An IPv4 literal or a DNS name (letters, digits, '-', '.'). */
static bool host_valid(const char *h)
{
    size_t len = strlen(h);
    if (len == 0 || len > LISTEN_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.';
        if (!ok)
            return false;
    }
    return h[0] != '-' && h[0] != '.';
}

static int parse_unix(const char *text, const char *path, struct listen_addr *out, char *err,
                      size_t errlen)
{
    size_t len = strlen(path);
    if (len == 0)
        return fail(err, errlen, "address '%s': unix: needs a path", text);
    if (len > LISTEN_PATH_MAX)
        return fail(err, errlen, "address '%s': unix socket path longer than %zu bytes", text,
                    LISTEN_PATH_MAX);
    out->kind = LISTEN_UNIX;
    memcpy(out->path, path, len + 1);
    return 0;
}

static int parse_bracketed(const char *text, const char *rest, struct listen_addr *out, char *err,
                           size_t errlen)
{
    const char *close = strchr(rest, ']');
    if (!close)
        return fail(err, errlen, "address '%s': missing ']'", text);
    size_t hlen = (size_t)(close - rest - 1);
    struct in6_addr a6;
    if (hlen == 0 || hlen > LISTEN_HOST_MAX)
        return fail(err, errlen, "address '%s': not an IPv6 address", text);
    memcpy(out->host, rest + 1, hlen);
    out->host[hlen] = '\0';
    if (inet_pton(AF_INET6, out->host, &a6) != 1)
        return fail(err, errlen, "address '%s': '%s' is not an IPv6 address", text, out->host);
    if (close[1] != ':' || !parse_port(close + 2, &out->port))
        return fail(err, errlen, "address '%s': expected [IPV6]:PORT with a port 0-65535", text);
    out->kind = LISTEN_HOST;
    return 0;
}

static int parse_host_port(const char *text, const char *rest, struct listen_addr *out, char *err,
                           size_t errlen)
{
    const char *colon = strrchr(rest, ':');
    if (!colon) {
        if (!parse_port(rest, &out->port))
            return fail(err, errlen,
                        rest[0] && strspn(rest, "0123456789") == strlen(rest)
                            ? "address '%s': port must be a number 0-65535"
                            : "address '%s': expected PORT, HOST:PORT, [IPV6]:PORT or unix:PATH",
                        text);
        out->kind = LISTEN_ANY;
        return 0;
    }
    size_t hlen = (size_t)(colon - rest);
    if (memchr(rest, ':', hlen))
        return fail(err, errlen, "address '%s': an IPv6 address goes in brackets: [IPV6]:PORT",
                    text);
    if (hlen == 0 || hlen > LISTEN_HOST_MAX)
        return fail(err, errlen, "address '%s': missing host before ':'", text);
    memcpy(out->host, rest, hlen);
    out->host[hlen] = '\0';
    if (!host_valid(out->host))
        return fail(err, errlen, "address '%s': '%s' is not a host name or IPv4 address", text,
                    out->host);
    if (!parse_port(colon + 1, &out->port))
        return fail(err, errlen, "address '%s': port must be a number 0-65535", text);
    out->kind = LISTEN_HOST;
    return 0;
}

int listen_parse(const char *text, struct listen_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return fail(err, errlen, "must not be empty");
    const char *rest = text;
    /* NAME= comes before any ':', so "unix:/a=b" is a path, not a name. */
    const char *eq = strchr(text, '=');
    const char *colon = strchr(text, ':');
    if (eq && (!colon || eq < colon)) {
        size_t nlen = (size_t)(eq - text);
        if (!name_valid(text, nlen))
            return fail(err, errlen,
                        "address '%s': a name is 1-%d printable characters without ':' or spaces",
                        text, LISTEN_NAME_MAX);
        memcpy(out->name, text, nlen);
        out->name[nlen] = '\0';
        rest = eq + 1;
    } else {
        snprintf(out->name, sizeof out->name, "%s", LISTEN_DEFAULT_NAME);
    }
    if (strncmp(rest, "unix:", 5) == 0)
        return parse_unix(text, rest + 5, out, err, errlen);
    if (rest[0] == '[')
        return parse_bracketed(text, rest, out, err, errlen);
    return parse_host_port(text, rest, out, err, errlen);
}

int listen_validate(const char *text, char *err, size_t errlen)
{
    struct listen_addr a;
    return listen_parse(text, &a, err, errlen);
}

void listen_describe(const struct listen_addr *a, char *out, size_t outlen)
{
    switch (a->kind) {
    case LISTEN_ANY:
        snprintf(out, outlen, "port %u", a->port);
        break;
    case LISTEN_HOST:
        snprintf(out, outlen, strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host, a->port);
        break;
    case LISTEN_UNIX:
        snprintf(out, outlen, "unix:%s", a->path);
        break;
    }
}

/* --- creating --- */

static int open_failed(const struct listen_addr *a, const char *step, int saved, char *err,
                       size_t errlen)
{
    char where[LISTEN_PATH_MAX + LISTEN_HOST_MAX + 16];
    listen_describe(a, where, sizeof where);
    fail(err, errlen, "cannot listen on %s: %s: %s", where, step, strerror(saved));
    errno = saved;
    return -1;
}

static int sock_type(bool nonblock)
{
    return SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
}

/* Binds fd to sa and listens; the fd is closed on failure. */
static int bind_and_listen(int fd, const struct sockaddr *sa, socklen_t salen, int backlog,
                           const char **step)
{
    *step = "bind";
    if (bind(fd, sa, salen) == 0) {
        *step = "listen";
        if (listen(fd, backlog) == 0)
            return fd;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static int inet_socket(int family, bool nonblock, bool dual_stack)
{
    int fd = socket(family, sock_type(nonblock), 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual_stack)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    return fd;
}

/* PORT alone: one dual-stack [::] socket where the host has IPv6, else 0.0.0.0. */
static int open_any(const struct listen_addr *a, int backlog, bool nonblock, char *err,
                    size_t errlen)
{
    const char *step = "socket";
    int fd = inet_socket(AF_INET6, nonblock, true);
    if (fd >= 0) {
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)a->port)};
        s6.sin6_addr = in6addr_any;
        fd = bind_and_listen(fd, (struct sockaddr *)&s6, sizeof s6, backlog, &step);
        if (fd >= 0 || (errno != EADDRNOTAVAIL && errno != EAFNOSUPPORT))
            return fd >= 0 ? fd : open_failed(a, step, errno, err, errlen);
    } else if (errno != EAFNOSUPPORT) {
        return open_failed(a, step, errno, err, errlen);
    }
    step = "socket";
    fd = inet_socket(AF_INET, nonblock, false);
    if (fd < 0)
        return open_failed(a, step, errno, err, errlen);
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
    s4.sin_addr.s_addr = htonl(INADDR_ANY);
    fd = bind_and_listen(fd, (struct sockaddr *)&s4, sizeof s4, backlog, &step);
    return fd >= 0 ? fd : open_failed(a, step, errno, err, errlen);
}

/* A literal is used as it is; a name is resolved once, here, before any thread. */
static int open_host(const struct listen_addr *a, int backlog, bool nonblock, char *err,
                     size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof port, "%u", a->port);
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc != 0 || !res) {
        char where[LISTEN_HOST_MAX + 16];
        listen_describe(a, where, sizeof where);
        return fail(err, errlen, "cannot listen on %s: cannot resolve %s: %s", where, a->host,
                    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    }
    const char *step = "socket";
    int fd = inet_socket(res->ai_family, nonblock, false);
    if (fd >= 0)
        fd = bind_and_listen(fd, res->ai_addr, res->ai_addrlen, backlog, &step);
    int saved = errno;
    freeaddrinfo(res);
    return fd >= 0 ? fd : open_failed(a, step, saved, err, errlen);
}

/* A socket file nobody listens on is left over from an earlier run: connecting
 * to it is refused. Anything else at the path is not ours to remove. */
static int remove_stale_socket(const struct listen_addr *a, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(a->path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return fail(err, errlen, "cannot listen on unix:%s: the path exists and is not a socket",
                    a->path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return open_failed(a, "socket", errno, err, errlen);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
    int rc = connect(probe, (struct sockaddr *)&sun, sizeof sun);
    int saved = errno;
    close(probe);
    if (rc == 0)
        return fail(err, errlen, "cannot listen on unix:%s: another process is listening there",
                    a->path);
    if (saved == ECONNREFUSED && unlink(a->path) < 0 && errno != ENOENT)
        return open_failed(a, "removing the stale socket", errno, err, errlen);
    return 0;
}

static int open_unix(const struct listen_addr *a, int backlog, bool nonblock, char *err,
                     size_t errlen)
{
    if (remove_stale_socket(a, err, errlen) < 0)
        return -1;
    int fd = socket(AF_UNIX, sock_type(nonblock), 0);
    if (fd < 0)
        return open_failed(a, "socket", errno, err, errlen);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
    const char *step;
    fd = bind_and_listen(fd, (struct sockaddr *)&sun, sizeof sun, backlog, &step);
    return fd >= 0 ? fd : open_failed(a, step, errno, err, errlen);
}

int listen_open(const struct listen_addr *a, int backlog, bool nonblock, char *err, size_t errlen)
{
    switch (a->kind) {
    case LISTEN_ANY:
        return open_any(a, backlog, nonblock, err, errlen);
    case LISTEN_HOST:
        return open_host(a, backlog, nonblock, err, errlen);
    case LISTEN_UNIX:
        return open_unix(a, backlog, nonblock, err, errlen);
    }
    return fail(err, errlen, "unknown address kind");
}

void listen_unlink(const struct listen_addr *a)
{
    if (a->kind == LISTEN_UNIX)
        unlink(a->path);
}

/* --- the set and its environment --- */

static int build_names_env(struct listen_set *s)
{
    static const char prefix[] = "LISTEN_FDNAMES=";
    size_t len = sizeof prefix;
    for (size_t i = 0; i < s->count; i++)
        len += strlen(s->addrs[i].name) + 1;
    s->names_env = malloc(len);
    if (!s->names_env)
        return -1;
    char *p = s->names_env;
    memcpy(p, prefix, sizeof prefix - 1);
    p += sizeof prefix - 1;
    for (size_t i = 0; i < s->count; i++) {
        size_t n = strlen(s->addrs[i].name);
        if (i)
            *p++ = ':';
        memcpy(p, s->addrs[i].name, n);
        p += n;
    }
    *p = '\0';
    return 0;
}

static struct listen_set *set_alloc(size_t count)
{
    struct listen_set *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->addrs = calloc(count ? count : 1, sizeof *s->addrs);
    s->fds = malloc((count ? count : 1) * sizeof *s->fds);
    if (!s->addrs || !s->fds) {
        free(s->addrs);
        free(s->fds);
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < count; i++)
        s->fds[i] = -1;
    s->count = count;
    snprintf(s->fds_env, sizeof s->fds_env, "LISTEN_FDS=%zu", count);
    snprintf(s->pid_env, sizeof s->pid_env, "LISTEN_PID=");
    return s;
}

struct listen_set *listen_set_open(char *const *addrs, size_t count, int backlog, char *err,
                                   size_t errlen)
{
    if (count > LISTEN_SET_MAX) {
        fail(err, errlen, "at most %d --listen sockets", LISTEN_SET_MAX);
        return NULL;
    }
    struct listen_set *s = set_alloc(count);
    if (!s) {
        fail(err, errlen, "cannot allocate the listening sockets: %s", strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (listen_parse(addrs[i], &s->addrs[i], err, errlen) < 0 ||
            (s->fds[i] = listen_open(&s->addrs[i], backlog, false, err, errlen)) < 0) {
            s->count = i; /* only those opened are closed and unlinked */
            listen_set_free(s);
            return NULL;
        }
    }
    if (build_names_env(s) < 0) {
        fail(err, errlen, "cannot allocate LISTEN_FDNAMES: %s", strerror(errno));
        listen_set_free(s);
        return NULL;
    }
    return s;
}

void listen_set_free(struct listen_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        if (s->fds[i] >= 0) {
            close(s->fds[i]);
            listen_unlink(&s->addrs[i]);
        }
    }
    free(s->names_env);
    free(s->addrs);
    free(s->fds);
    free(s);
}

static bool is_listen_var(const char *entry)
{
    return strncmp(entry, "LISTEN_FDS=", 11) == 0 || strncmp(entry, "LISTEN_PID=", 11) == 0 ||
           strncmp(entry, "LISTEN_FDNAMES=", 15) == 0;
}

char **listen_env_merge(char *const *envp, struct listen_set *s)
{
    if (!s || s->count == 0)
        return NULL;
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **out = malloc((n + 4) * sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_listen_var(envp[i]))
            out[k++] = envp[i];
    out[k++] = s->fds_env;
    out[k++] = s->pid_env;
    out[k++] = s->names_env;
    out[k] = NULL;
    return out;
}

/* --- in the child --- */

size_t listen_format_uint(char *out, size_t outlen, unsigned long v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (outlen < n + 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n] = '\0';
    return n;
}

int listen_child_setup(struct listen_set *s, int *keep_fd)
{
    if (!s || s->count == 0)
        return 0;
    int first = 3;
    int above = first + (int)s->count;
    /* Out of the way first: dup2 onto 3.. must not clobber the exec-error pipe
     * or a socket not yet placed. */
    if (keep_fd && *keep_fd >= first && *keep_fd < above) {
        int moved = fcntl(*keep_fd, F_DUPFD_CLOEXEC, above);
        if (moved < 0)
            return -1;
        *keep_fd = moved;
    }
    int tmp[LISTEN_SET_MAX];
    for (size_t i = 0; i < s->count; i++) {
        tmp[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, above);
        if (tmp[i] < 0)
            return -1;
    }
    /* dup2's copy does not inherit FD_CLOEXEC: these are the only ones the app keeps. */
    for (size_t i = 0; i < s->count; i++) {
        if (dup2(tmp[i], first + (int)i) < 0)
            return -1;
        close(tmp[i]);
    }
    const size_t prefix = sizeof "LISTEN_PID=" - 1;
    if (listen_format_uint(s->pid_env + prefix, sizeof s->pid_env - prefix,
                           (unsigned long)getpid()) == 0) {
        errno = ERANGE;
        return -1;
    }
    return 0;
}
