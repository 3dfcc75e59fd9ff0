"""An app whose first run leaves a port holder behind, for the test that a
restart never starts the new app while the old app's process group lives.

    sup_portholder.py --log FILE --port PORT [--hold SECONDS] [--life SECONDS]

Every start appends JSON lines to FILE (one O_APPEND write each, "t" is
time.monotonic()):

First start ($RESIL_RESTART_COUNT is 0): {"event": "start", ...}; it forks a
child in its own process group (the default after fork) that binds and listens
on 127.0.0.1:PORT without SO_REUSEADDR, records {"event": "holder", "pid",
"bound"}, and on SIGTERM records {"event": "holder-term"} and keeps the port
--hold seconds (default 1) before it exits 0; it never dies of SIGTERM. Once
the holder listens, the app records {"event": "crash"} and exits 3.

Later starts: {"event": "start", ...}, then they look whether the holder's pid
still exists (/proc/PID: "holder_state" is its state letter, or null when
gone) and bind and listen on PORT at once, without SO_REUSEADDR, one try:
{"event": "bind", "ok": true|false, "errno": name|null, "holder_state"}. Then
they run until SIGTERM (exit 0). Everything gives up after --life seconds.
"""

import errno
import json
import os
import signal
import socket
import sys
import time

args = sys.argv[1:]
opts = {"--log": None, "--port": None, "--hold": "1", "--life": "30"}
while args:
    key, value, args = args[0], args[1], args[2:]
    if key not in opts:
        sys.exit("sup_portholder.py: unknown option " + key)
    opts[key] = value
log = opts["--log"]
port = int(opts["--port"])
deadline = time.monotonic() + float(opts["--life"])


def record(event, **fields):
    fields = {"event": event, "t": time.monotonic(), "pid": os.getpid(), **fields}
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (json.dumps(fields) + "\n").encode())
    os.close(fd)


def listen():
    """A listening socket on PORT, never with SO_REUSEADDR: (socket, None) or (None, errno name)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(16)
    except OSError as e:
        s.close()
        return None, errno.errorcode.get(e.errno, str(e.errno))
    return s, None


def events():
    with open(log) as f:
        return [json.loads(l) for l in f if l.strip()]


def holder():
    term_at = []
    signal.signal(signal.SIGTERM, lambda sig, frame: term_at.append(time.monotonic()))
    sock, err = listen()
    record("holder", bound=sock is not None, errno=err)
    while time.monotonic() < deadline:
        if term_at:
            record("holder-term")
            end = term_at[0] + float(opts["--hold"])
            while time.monotonic() < end:
                time.sleep(0.01)
            os._exit(0)
        time.sleep(0.01)
    os._exit(97)


count = os.environ.get("RESIL_RESTART_COUNT")
record("start", count=count, reason=os.environ.get("RESIL_RESTART_REASON"))
if count == "0":
    if os.fork() == 0:
        holder()
    while not any(e["event"] == "holder" for e in events()):
        if time.monotonic() > deadline:
            os._exit(97)
        time.sleep(0.005)
    record("crash")
    os._exit(3)

pid = [e["pid"] for e in events() if e["event"] == "holder"][0]
try:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    state = stat[stat.rindex(")") + 2:].split()[0]
except FileNotFoundError:
    state = None
sock, err = listen()
signal.signal(signal.SIGTERM, lambda sig, frame: os._exit(0))
record("bind", ok=sock is not None, errno=err, holder_state=state)
while time.monotonic() < deadline:
    time.sleep(0.05)
os._exit(97)
