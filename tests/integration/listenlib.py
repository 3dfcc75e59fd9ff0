"""Helpers for the --listen, control and metrics tests: free ports, the start
records of progs/listen_app.py, and a client loop that counts what happened to
each request while resil-init restarts the app underneath it."""

import json
import socket
import threading
import time
from pathlib import Path

from helpers import PYTHON, PROGS, ipv6_loopback_works as ipv6_loopback, wait_for


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listen_app(log, *extra):
    return [PYTHON, str(PROGS / "listen_app.py"), "--log", str(log), *[str(e) for e in extra]]


def starts(log):
    try:
        lines = Path(log).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(l) for l in lines if l.strip()]


def wait_starts(log, n, timeout=10, run=None):
    def enough():
        if run is not None and not run.running():
            raise AssertionError(f"resil-init exited: {run.stderr_text()!r}")
        got = starts(log)
        return got if len(got) >= n else None
    return wait_for(enough, timeout, f"{n} starts in {log}")


def http_get(port, path="/", host="127.0.0.1", timeout=5.0):
    """One HTTP/1.0 request; the body, or raises what the connection raised."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        raise ConnectionError(f"not an HTTP answer: {data[:80]!r}")
    return body


class ClientLoop:
    """Requests one after another against 127.0.0.1:port in a thread, counting
    answered, refused and otherwise failed requests and the worst latency."""

    def __init__(self, port):
        self.port = port
        self.answered = 0
        self.refused = 0
        self.failed = []
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                http_get(self.port, timeout=10)
                self.answered += 1
            except ConnectionRefusedError:
                self.refused += 1
                time.sleep(0.002)
            except OSError as e:
                self.failed.append(repr(e))
            self.worst = max(self.worst, time.monotonic() - began)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=15)
