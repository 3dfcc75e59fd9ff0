/* memhog: the app of the OOM tests. It prints how it was started (what
 * resil-init told it about memory and emergency mode), then, unless started in
 * emergency mode, touches memory 1 MiB at a time until the kernel's OOM killer
 * ends it. In emergency mode it stays small and waits for SIGTERM. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CHUNK = 1 << 20, GIVE_UP_MB = 8192 };

static const char *env(const char *name)
{
    const char *value = getenv(name);
    return value ? value : "(unset)";
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("memhog[%ld]: start RESIL_RESTART_REASON=%s RESIL_RESTART_COUNT=%s "
           "RESIL_EMERGENCY=%s EMERGENCY_MODE=%s RESIL_MEMORY_LIMIT_MB=%s\n",
           (long)getpid(), env("RESIL_RESTART_REASON"), env("RESIL_RESTART_COUNT"),
           env("RESIL_EMERGENCY"), env("EMERGENCY_MODE"), env("RESIL_MEMORY_LIMIT_MB"));
    if (strcmp(env("RESIL_EMERGENCY"), "1") == 0) {
        puts("memhog: emergency mode: not allocating, waiting");
        for (;;)
            pause();
    }
    for (int mb = 0; mb < GIVE_UP_MB; mb++) {
        char *chunk = malloc(CHUNK);
        if (!chunk) {
            puts("memhog: malloc failed before any OOM kill");
            return 1;
        }
        memset(chunk, 0x5a, CHUNK);
    }
    printf("memhog: touched %d MiB and was never OOM-killed: no memory limit?\n", GIVE_UP_MB);
    return 1;
}
