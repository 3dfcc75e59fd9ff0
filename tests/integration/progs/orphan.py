"""An app that double-forks one orphan, then exits 0 when told to.

    orphan.py DIR [--life SECONDS]

The orphan writes its pid to DIR/orphan.pid. On TERM it records "TERM" in
DIR/orphan.log (once per delivery), takes 0.3 s to finish its work, writes
DIR/orphan.done and exits 0. The app exits 0 as soon as DIR/app.exit exists.
"""

import os
import signal
import sys
import time

from progutil import append, count_terms

d = sys.argv[1]
life = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--life" else 30.0


def orphan():
    stopping = []

    def on_term(sig, frame):
        n = terms()
        if n:
            append(f"{d}/orphan.log", "TERM\n" * n)
        if not n or stopping:
            return
        stopping.append(True)
        time.sleep(0.3)  # a TERM meanwhile runs this handler nested, and is recorded
        append(f"{d}/orphan.done", "done\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    terms = count_terms()
    append(f"{d}/orphan.pid.tmp", str(os.getpid()))
    os.rename(f"{d}/orphan.pid.tmp", f"{d}/orphan.pid")
    deadline = time.monotonic() + life
    while time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(97)


middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        orphan()
    os._exit(0)
os.waitpid(middle, 0)

deadline = time.monotonic() + life
while not os.path.exists(f"{d}/app.exit"):
    if time.monotonic() > deadline:
        sys.exit(97)
    time.sleep(0.005)
sys.exit(0)
