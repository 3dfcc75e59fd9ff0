"""An app for the memory tests: at every start it appends one JSON line with its
memory-related environment to a file, then does what the plan says for this
start.

    mem_envdump.py --out FILE [--plan ACTION[,ACTION...]] [--var NAME]... [--life S]

The line holds pid, and every variable that is SET (an absent variable is not
in the line, an empty one is ""): all RESIL_*, EMERGENCY_MODE,
DISABLE_WEBSOCKETS, NODE_OPTIONS, GOMEMLIMIT and each --var NAME.

The plan is indexed by RESIL_RESTART_COUNT (the last action repeats):
  exit:N     exit with status N at once
  kill       SIGKILL itself at once
  run        keep running; TERM is recorded and the app exits 0
  gokill     keep running until FILE.go<count> exists, then SIGKILL itself
  goexit:N   keep running until FILE.go<count> exists, then exit N
While running, USR1, USR2 and TERM are recorded as lines "<count> <NAME>" in
FILE.sig. Whatever happens, the app exits 97 after --life seconds so nothing
outlives a broken test.
"""

import argparse
import json
import os
import signal
import time

KEYS = ("EMERGENCY_MODE", "DISABLE_WEBSOCKETS", "NODE_OPTIONS", "GOMEMLIMIT")


def append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--plan", default="run")
    p.add_argument("--var", action="append", default=[])
    p.add_argument("--life", type=float, default=20.0)
    a = p.parse_args()

    count = os.environ.get("RESIL_RESTART_COUNT", "")
    try:
        index = int(count)
    except ValueError:
        index = 0
    plan = a.plan.split(",")
    action = plan[min(index, len(plan) - 1)]

    def record(signum, frame):
        append(a.out + ".sig", "%s %s\n" % (count, signal.Signals(signum).name[3:]))
        if signum == signal.SIGTERM:
            os._exit(0)

    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
        signal.signal(sig, record)

    line = {"pid": os.getpid()}
    for k, v in os.environ.items():
        if k.startswith("RESIL_") or k in KEYS or k in a.var:
            line[k] = v
    append(a.out, json.dumps(line, sort_keys=True) + "\n")

    if action.startswith("exit:"):
        os._exit(int(action[5:]))
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    go = "%s.go%s" % (a.out, count)
    deadline = time.monotonic() + a.life
    while time.monotonic() < deadline:
        if action.startswith("go") and os.path.exists(go):
            if action == "gokill":
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(int(action.split(":")[1]) if ":" in action else 0)
        time.sleep(0.01)
    os._exit(97)


main()
