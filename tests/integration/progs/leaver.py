"""An app that leaves descendants behind when it exits 0 by itself.

    leaver.py DIR [--life SECONDS]

Forks two children in its own process group, then exits 0 once both are set up:
  a: records each TERM in DIR/a.log and keeps running (it ignores TERM);
  b: records TERM in DIR/b.log and exits 0.
Each writes its pid (as it sees it) to DIR/a.pid / DIR/b.pid when ready.
"""

import os
import signal
import sys
import time

from progutil import append, count_terms

d = sys.argv[1]
life = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--life" else 30.0


def child(name, exits):
    def on_term(sig, frame):
        n = terms()
        if n:
            append(f"{d}/{name}.log", "TERM\n" * n)
        if n and exits:
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    terms = count_terms()
    append(f"{d}/{name}.pid.tmp", str(os.getpid()))
    os.rename(f"{d}/{name}.pid.tmp", f"{d}/{name}.pid")
    deadline = time.monotonic() + life
    while time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(97)


for name, exits in (("a", False), ("b", True)):
    if os.fork() == 0:
        child(name, exits)

deadline = time.monotonic() + 10
while not all(os.path.exists(f"{d}/{n}.pid") for n in "ab") and time.monotonic() < deadline:
    time.sleep(0.005)
sys.exit(0)
