"""An HTTP app for the --listen tests: it serves the sockets it inherits
(LISTEN_FDS, fds 3..) or, without them, binds --port itself, and records each
start.

    listen_app.py --log FILE [--port PORT] [--start-delay S] [--on-term exit0|ignore]

Each start appends one JSON line to FILE:
    {"event": "start", "pid", "t", "listen_fds", "listen_pid", "listen_fdnames",
     "reason", "fds": [[fd, target], ...] (every descriptor but 0-2, as found at start),
     "sockets": [[fd, family, type, address, listening, backlog-or-null], ...]}
then serves every socket: each connection gets "HTTP/1.0 200 OK" with the
app's pid as the body. GET /crash makes it die of SIGKILL after answering.
SIGTERM: exit 0 once the request in hand is answered (or keep running with
--on-term ignore).
"""

import json
import os
import selectors
import signal
import socket
import sys
import time

args = sys.argv[1:]
opts = {"--log": None, "--port": None, "--start-delay": "0", "--on-term": "exit0"}
while args:
    key, value, args = args[0], args[1], args[2:]
    if key not in opts:
        sys.exit("listen_app.py: unknown option " + key)
    opts[key] = value


def inherited_fds():
    out = []
    for f in os.listdir("/proc/self/fd"):
        try:
            out.append([int(f), os.readlink("/proc/self/fd/" + f)])
        except FileNotFoundError:
            pass  # the descriptor that listed the directory
    return sorted(x for x in out if x[0] > 2)


fds = inherited_fds()


state = {"busy": False, "stopping": False}


def on_term(sig, frame):
    """A request being answered is finished first, as a graceful server does."""
    if opts["--on-term"] == "ignore":
        return
    if state["busy"]:
        state["stopping"] = True
    else:
        os._exit(0)


signal.signal(signal.SIGTERM, on_term)
time.sleep(float(opts["--start-delay"]))

count = int(os.environ.get("LISTEN_FDS", "0") or 0)
if count:
    socks = [socket.socket(fileno=3 + i) for i in range(count)]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(opts["--port"])))
    s.listen(128)
    socks = [s]


def describe(s):
    addr = s.getsockname()
    if isinstance(addr, bytes):
        addr = addr.decode()
    listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    return [s.fileno(), int(s.family), int(s.type), addr, listening]


record = {"event": "start", "pid": os.getpid(), "t": time.monotonic(),
          "listen_fds": os.environ.get("LISTEN_FDS"),
          "listen_pid": os.environ.get("LISTEN_PID"),
          "listen_fdnames": os.environ.get("LISTEN_FDNAMES"),
          "reason": os.environ.get("RESIL_RESTART_REASON"),
          "fds": fds, "sockets": [describe(s) for s in socks]}
fd = os.open(opts["--log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, (json.dumps(record) + "\n").encode())
os.close(fd)

sel = selectors.DefaultSelector()
for s in socks:
    s.setblocking(True)
    sel.register(s, selectors.EVENT_READ)
body = str(os.getpid()).encode()


def serve(listener):
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    with conn:
        conn.settimeout(2)
        try:
            request = conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            return
    if request.startswith(b"GET /crash"):
        os.kill(os.getpid(), signal.SIGKILL)


while True:
    for key, _ in sel.select():
        state["busy"] = True
        serve(key.fileobj)
        state["busy"] = False
        if state["stopping"]:
            os._exit(0)
