"""An app that makes COUNT orphans, then checks that init reaped them all.

    orphans.py COUNT [TIMEOUT]

Run as PID 2 of a PID namespace (with its own /proc) under an init at PID 1.
Middle children each fork a batch of grandchildren and exit at once; each
grandchild sleeps 5 ms (so its parent is gone and it is reparented to PID 1)
and exits. The app then waits until no process but itself and PID 1 is alive,
and until no zombie whose parent is PID 1 is left, within TIMEOUT seconds.
Once every orphan is forked it writes "orphans.py: forked N" to stderr (forking
is the slow part on a loaded machine, so a test can bound it apart from the
reaping), then prints "orphans=N zombies=Z live=L" and exits 0 when Z and L are
0, else 1.
"""

import os
import sys
import time

count = int(sys.argv[1])
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
BATCH = 20
me = os.getpid()


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


made = 0
while made < count:
    n = min(BATCH, count - made)
    middle = os.fork()
    if middle == 0:
        for _ in range(n):
            try:
                if os.fork() == 0:
                    time.sleep(0.005)
                    os._exit(0)
            except OSError:
                os._exit(1)
        os._exit(0)
    _, status = os.waitpid(middle, 0)
    if status != 0:
        print(f"fork failed after {made} orphans", flush=True)
        sys.exit(1)
    made += n
print(f"orphans.py: forked {made}", file=sys.stderr, flush=True)

deadline = time.monotonic() + timeout
while True:
    zombies = live = 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in (1, me):
            continue
        st = stat(d)
        if st is None:
            continue
        if st[0] == "Z":
            zombies += st[1] == 1
        else:
            live += 1
    if (zombies == 0 and live == 0) or time.monotonic() > deadline:
        break
    time.sleep(0.01)
print(f"orphans={made} zombies={zombies} live={live}", flush=True)
sys.exit(0 if zombies == 0 and live == 0 else 1)
