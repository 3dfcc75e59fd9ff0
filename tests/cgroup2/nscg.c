/* nscg: run a command at the root of a new cgroup namespace, as containers do.
 *
 *   nscg [--remount] COMMAND [ARG...]
 *
 * Plain: unshare(CLONE_NEWCGROUP) only, so /proc/self/cgroup says "0::/" while
 * /sys/fs/cgroup is still the host's mount, whose root now shows as "/.." in
 * /proc/self/mountinfo (what `unshare --cgroup` gives). --remount also takes a
 * private mount namespace and replaces /sys/fs/cgroup with a fresh cgroup2
 * mount, whose root is then the namespace's root (what Docker and runc give a
 * container; the kernel refuses a second mount of it on the same place).
 * Debian ships no static unshare(1), and the test VM has nothing else. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int first = 1;
    int remount = argc > 1 && strcmp(argv[1], "--remount") == 0;
    if (remount)
        first = 2;
    if (argc <= first) {
        fprintf(stderr, "usage: nscg [--remount] COMMAND [ARG...]\n");
        return 2;
    }
    if (unshare(CLONE_NEWCGROUP | (remount ? CLONE_NEWNS : 0)) < 0) {
        perror("nscg: unshare");
        return 1;
    }
    if (remount && (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    umount2("/sys/fs/cgroup", MNT_DETACH) < 0 ||
                    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0)) {
        perror("nscg: mount cgroup2");
        return 1;
    }
    execvp(argv[first], argv + first);
    perror("nscg: exec");
    return 127;
}
