"""A health endpoint whose behaviour a test changes while resil-init checks it.

    with HealthServer() as hs:                  # 127.0.0.1, ephemeral port
        run resil-init with --health-url hs.url
        hs.set(status=503)                      # every later request gets 503
        hs.set(body={"status": "critical"})     # 200 with a failing verdict
        hs.set(delay=2.0)                       # answer after 2 s
        hs.set(hang=True)                       # never answer (until set() again or stop())
        hs.huge(10 * 1024 * 1024)               # 200 with a 10 MB body
        hs.garbage()                            # non-HTTP bytes, then close
        hs.close_without_response()             # read the request, close
        assert hs.wait_for_hits(3, timeout=5)
        hs.hits, hs.hit_times, hs.requests

    with HealthServer(unix_path="/tmp/x.sock") as hs:   # --health-unix-socket
        hs.url                                  # http://localhost/health

Each request is served in its own daemon thread. stop() (also on leaving the
`with`) ends delays and hangs, shuts down open connections and returns
promptly even while a handler is blocked.
"""

import http.server
import json
import os
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field, replace

DEFAULT_BODY = b'{"status":"ok"}'


@dataclass
class Hit:
    at: float  # time.monotonic() when the request head was read
    method: str
    path: str
    headers: dict = field(default_factory=dict)


@dataclass
class _Behaviour:
    mode: str = "respond"  # respond | huge | garbage | close
    status: int = 200
    body: bytes = DEFAULT_BODY
    content_type: str = "application/json"
    delay: float = 0.0
    hang: bool = False
    huge_size: int = 0
    garbage: bytes = b""


def _as_bytes(body):
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _huge_body(size, verdict):
    """Head, padding length and tail of a JSON object of exactly size bytes
    that would fail on its verdict if it were read whole."""
    head = b'{"status":"%s","pad":"' % verdict.encode()
    tail = b'"}'
    if size < len(head) + len(tail):
        return b"x" * size, 0, b""
    return head, size - len(head) - len(tail), tail


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "healthserver"

    def address_string(self):
        # A Unix socket peer has no address: client_address is ''.
        addr = self.client_address
        if isinstance(addr, tuple) and addr:
            return str(addr[0])
        return "unix"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        self.server.owner._handle(self)

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET


class _ConnectionTracking:
    """Remembers open connections so stop() can cut them: a handler blocked
    reading from a client that never sends is released by the shutdown."""

    daemon_threads = True
    block_on_close = False

    def process_request(self, request, client_address):
        with self.owner._lock:
            self.owner._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.owner._lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)


class _TCPServer(_ConnectionTracking, http.server.ThreadingHTTPServer):
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind looks up the host's FQDN; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _UnixServer(_ConnectionTracking, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    pass


class HealthServer:
    def __init__(self, unix_path=None, path="/health", host="127.0.0.1"):
        self.path = path
        self.unix_path = unix_path
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._behaviour = _Behaviour()
        self._requests = []
        self._connections = set()
        self._stopped = False
        self._stop_event = threading.Event()
        if unix_path:
            if os.path.exists(unix_path):
                os.unlink(unix_path)
            self._server = _UnixServer(unix_path, _Handler)
        else:
            self._server = _TCPServer((host, 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="healthserver", daemon=True)
        self._thread.start()

    # ---- where it is ----

    @property
    def port(self):
        return None if self.unix_path else self._server.server_address[1]

    @property
    def url(self):
        if self.unix_path:
            return "http://localhost" + self.path
        host = self._server.server_address[0]
        return "http://%s:%d%s" % (host, self.port, self.path)

    # ---- what it does ----

    def set(self, status=200, body=DEFAULT_BODY, delay=0.0, hang=False,
            content_type="application/json"):
        """Plain responses from now on. body: bytes, str, or anything JSON."""
        self._update(_Behaviour(mode="respond", status=status, body=_as_bytes(body),
                                content_type=content_type, delay=delay, hang=hang))

    def huge(self, size=10 * 1024 * 1024, status=200, verdict="critical", delay=0.0):
        """A JSON body of size bytes whose verdict fails if it is read whole."""
        self._update(_Behaviour(mode="huge", status=status, huge_size=size,
                                body=verdict.encode(), delay=delay))

    def garbage(self, data=b"\x00\x01\x02 this is not HTTP \xff\r\n\r\n"):
        """Read the request, answer with non-HTTP bytes, close."""
        self._update(_Behaviour(mode="garbage", garbage=data))

    def close_without_response(self):
        """Read the request, close the connection without a byte."""
        self._update(_Behaviour(mode="close"))

    def _update(self, behaviour):
        with self._changed:
            self._behaviour = behaviour
            self._changed.notify_all()

    # ---- what happened ----

    @property
    def hits(self):
        with self._lock:
            return len(self._requests)

    @property
    def hit_times(self):
        with self._lock:
            return [r.at for r in self._requests]

    @property
    def requests(self):
        with self._lock:
            return [replace(r, headers=dict(r.headers)) for r in self._requests]

    def reset_hits(self):
        with self._lock:
            self._requests.clear()

    def wait_for_hits(self, n, timeout=10.0):
        """True once n requests arrived (counted since the last reset_hits)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._requests) >= n, timeout)

    # ---- lifetime ----

    def stop(self):
        with self._changed:
            if self._stopped:
                return
            self._stopped = True
            self._changed.notify_all()
            connections = list(self._connections)
        self._stop_event.set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.unix_path:
            try:
                os.unlink(self.unix_path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- serving, in a handler thread ----

    def _handle(self, h):
        # HTTP/1.1 would wait for a next request on the connection: one is enough.
        h.close_connection = True
        with self._changed:
            self._requests.append(Hit(time.monotonic(), h.command, h.path, dict(h.headers)))
            self._changed.notify_all()
            b = self._behaviour
        if b.delay and self._stop_event.wait(b.delay):
            return
        if b.hang and not self._wait_unhung():
            return
        with self._lock:
            b = self._behaviour if b.hang else b
        try:
            self._respond(h, b)
        except OSError:
            pass  # the client gave up (timeout, or 64 KiB of a huge body were enough)

    def _wait_unhung(self):
        """Hangs until the behaviour stops hanging (True) or the server stops."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or not self._behaviour.hang)
            return not self._stopped

    def _respond(self, h, b):
        if b.mode == "close":
            return
        if b.mode == "garbage":
            h.wfile.write(b.garbage)
            h.wfile.flush()
            return
        if b.mode == "huge":
            self._respond_huge(h, b)
            return
        h.send_response(b.status)
        h.send_header("Content-Type", b.content_type)
        h.send_header("Content-Length", str(len(b.body)))
        h.send_header("Connection", "close")
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(b.body)
        h.wfile.flush()

    def _respond_huge(self, h, b):
        head, pad, tail = _huge_body(b.huge_size, b.body.decode())
        h.send_response(b.status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(b.huge_size))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(head)
        chunk = b"x" * 65536
        while pad > 0 and not self._stopped:
            n = min(pad, len(chunk))
            h.wfile.write(chunk[:n])
            pad -= n
        h.wfile.write(tail)
        h.wfile.flush()
