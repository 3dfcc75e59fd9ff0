"""An app for the supervision, health and status tests: it records each start
and what happens to it, and behaves as its plan says for that start.

    sup_app.py --log FILE [--plan ACTION[,ACTION...]] [--on-term exit0|exitN|reraise|ignore]
               [--life SECONDS]

Each start appends one JSON line to FILE (written with one O_APPEND write):
    {"event": "start", "t": time.monotonic(), "wall": time.time(), "pid": PID,
     "count": $RESIL_RESTART_COUNT, "reason": $RESIL_RESTART_REASON, "n": N}
where N is the number of earlier starts recorded in FILE. The action for this
start is plan[N] (the last one repeats):
    run            keep running (until a stop signal, or --life)
    exit:C         exit with status C at once
    exit:C@S       exit with status C after S seconds
    kill:SIG       die of signal SIG (a number) at once
Before exiting by its plan it appends {"event": "end", "t", "code"}.
SIGTERM and SIGINT are recorded ({"event": "term", "t", "sig"}), then
--on-term: exit0 (exit 0), exitN for a status N (e.g. exit1), reraise (die of
the signal), ignore (keep running). Handlers are installed before the start
line is written. --life (default 30 s) bounds every run: exit 97.
"""

import json
import os
import signal
import sys
import time

args = sys.argv[1:]
opts = {"--log": None, "--plan": "run", "--on-term": "exit0", "--life": "30"}
while args:
    key, value, args = args[0], args[1], args[2:]
    if key not in opts:
        sys.exit("sup_app.py: unknown option " + key)
    opts[key] = value
log = opts["--log"]
on_term = opts["--on-term"]


def record(event, **fields):
    fields = {"event": event, "t": time.monotonic(), "pid": os.getpid(), **fields}
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (json.dumps(fields) + "\n").encode())
    os.close(fd)


def on_stop(sig, frame):
    record("term", sig=sig)
    if on_term == "ignore":
        return
    if on_term == "reraise":
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        time.sleep(5)
        os._exit(98)
    os._exit(int(on_term[4:]) if on_term.startswith("exit") else 0)


signal.signal(signal.SIGTERM, on_stop)
signal.signal(signal.SIGINT, on_stop)

try:
    with open(log) as f:
        n = sum(1 for line in f if '"event": "start"' in line)
except FileNotFoundError:
    n = 0
plan = opts["--plan"].split(",")
action = plan[min(n, len(plan) - 1)]
record("start", wall=time.time(), count=os.environ.get("RESIL_RESTART_COUNT"),
       reason=os.environ.get("RESIL_RESTART_REASON"), emergency=os.environ.get("RESIL_EMERGENCY"),
       n=n)

deadline = time.monotonic() + float(opts["--life"])
if action.startswith("exit:"):
    code, _, after = action[5:].partition("@")
    end = time.monotonic() + float(after or 0)
    while time.monotonic() < end:
        time.sleep(min(0.01, max(0.0, end - time.monotonic())))
    record("end", code=int(code))
    os._exit(int(code))
if action.startswith("kill:"):
    sig = int(action[5:])
    record("end", signal=sig)
    if sig not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    time.sleep(5)
    os._exit(98)
while time.monotonic() < deadline:
    time.sleep(0.05)
os._exit(97)
