"""An app that leaves one process in a session of its own, then exits 0.

    detacher.py DIR

The leftover calls setsid(), ignores SIGTERM, writes its pid to DIR/left.pid
(as the test's namespace sees it: the test passes no PID namespace) and lives
until SIGKILL (or 60 s). The app exits 0 once the pid file is written.
"""

import os
import signal
import sys
import time

d = sys.argv[1]
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    os.setsid()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tmp = f"{d}/left.pid.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(tmp, f"{d}/left.pid")
    os.write(w, b"x")
    time.sleep(60)
    os._exit(0)
os.close(w)
os.read(r, 1)
sys.exit(0)
