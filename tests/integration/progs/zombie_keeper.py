"""An app whose first run leaves its process group holding only what cannot
die: a zombie whose parent moved to another group and never reaps it.

    zombie_keeper.py DIR [--stubborn]

Every start appends "start COUNT" to DIR/starts (COUNT: $RESIL_RESTART_COUNT).
The first start (COUNT 0) forks a keeper that leaves for a process group of
its own and never waits for its children; the keeper forks, in the app's
group, a child that exits at once (a zombie of the keeper, still a member of
the app's group), and with --stubborn a second one that ignores SIGTERM and
lives until SIGKILL (then it is a zombie of the keeper too). The keeper writes
its pid to DIR/keeper.pid; once everything is in place the app exits 1. Later
starts just run (until SIGTERM, or 30 s).
"""

import os
import signal
import sys
import time

from progutil import append

d = sys.argv[1]
stubborn = "--stubborn" in sys.argv[2:]
count = os.environ.get("RESIL_RESTART_COUNT", "?")
append(f"{d}/starts", f"start {count}\n")
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

if count != "0":
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.05)
    sys.exit(0)

ready_r, ready_w = os.pipe()
keeper = os.fork()
if keeper == 0:
    os.close(ready_r)
    app_group = os.getpgrp()
    kids = 2 if stubborn else 1
    for i in range(kids):
        if os.fork() == 0:
            os.setpgid(0, app_group)  # stays in the app's group
            if i == 0:
                os._exit(0)  # the zombie
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.write(ready_w, b"s")
            time.sleep(60)
            os._exit(0)
    os.setpgid(0, 0)  # the keeper leaves the app's group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    append(f"{d}/keeper.pid", f"{os.getpid()}\n")
    time.sleep(0.2)  # the first child has exited by now: its zombie stays
    os.write(ready_w, b"k")
    time.sleep(60)  # never waits
    os._exit(0)
os.close(ready_w)
want = 2 if stubborn else 1
got = b""
while len(got) < want:
    chunk = os.read(ready_r, 8)
    if not chunk:
        break
    got += chunk
sys.exit(1)
