"""An app that eats memory on its first start only, for the real-cgroup tests.

    mem_hog.py --out FILE [--mb N] [--chunk-mb C] [--hold S] [--defer-term]

Every start appends one JSON line with pid and the RESIL_* / EMERGENCY_MODE
variables to FILE. When RESIL_RESTART_COUNT is 0 (or unset) the app then
allocates N MiB (default 400) in C MiB chunks (default 10), touching every
page, appends {"allocated": N} once done (it should not get there under a
smaller limit: the kernel OOM-kills it first), and keeps the memory for
--hold seconds (default 0) before it exits 0. Any later start allocates
nothing and exits 0 at once.

With --defer-term, SIGTERM is blocked from the start until {"allocated": N} is
written, then takes its default action: a restart that the allocation itself
sets off (the working set crosses a --memory-restart threshold on the way up)
then ends the app only once it has reported, however slow the machine.
"""

import argparse
import json
import os
import signal
import time


def append(path, obj):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(obj, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--mb", type=int, default=400)
    p.add_argument("--chunk-mb", type=int, default=10)
    p.add_argument("--hold", type=float, default=0.0)
    p.add_argument("--defer-term", action="store_true")
    a = p.parse_args()
    if a.defer_term:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    line = {"pid": os.getpid()}
    line.update({k: v for k, v in os.environ.items()
                 if k.startswith("RESIL_") or k == "EMERGENCY_MODE"})
    append(a.out, line)
    if os.environ.get("RESIL_RESTART_COUNT", "0") in ("", "0"):
        chunks = []
        size = a.chunk_mb << 20
        for _ in range(a.mb // a.chunk_mb):
            chunk = bytearray(size)       # zeroed pages: touch them for real
            for off in range(0, size, 4096):
                chunk[off] = 1
            chunks.append(chunk)
        append(a.out, {"allocated": a.mb})
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        time.sleep(a.hold)


main()
