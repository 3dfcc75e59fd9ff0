"""The HealthServer fixture itself, checked with the standard library, so that a
broken fixture fails here and not as a puzzling resil-init failure elsewhere."""

import http.client
import json
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

from healthserver import HealthServer

# Proxy variables must not send these requests anywhere else.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url, timeout=5.0):
    """(status, headers, body) of a GET, whatever the status."""
    try:
        with OPENER.open(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


@pytest.fixture
def hs():
    with HealthServer() as server:
        yield server


def test_default_is_ok_json(hs):
    assert hs.url.startswith("http://127.0.0.1:") and hs.url.endswith("/health")
    status, headers, body = get(hs.url)
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    assert hs.hits == 1
    req = hs.requests[0]
    assert (req.method, req.path) == ("GET", "/health")
    assert req.headers["User-Agent"].startswith("Python-urllib/")


def test_set_changes_every_later_response(hs):
    hs.set(status=503, body={"status": "critical"})
    status, _, body = get(hs.url)
    assert status == 503 and json.loads(body) == {"status": "critical"}
    hs.set(status=204, body=b"")
    assert get(hs.url)[0] == 204
    hs.set(body="plain words", content_type="text/plain")
    status, headers, body = get(hs.url)
    assert (status, headers["Content-Type"], body) == (200, "text/plain", b"plain words")
    assert hs.hits == 3


def test_delay(hs):
    hs.set(delay=0.3)
    t0 = time.monotonic()
    assert get(hs.url)[0] == 200
    assert time.monotonic() - t0 >= 0.3


def test_hits_and_timestamps(hs):
    t0 = time.monotonic()
    for _ in range(3):
        get(hs.url)
    assert hs.wait_for_hits(3, timeout=1)
    times = hs.hit_times
    assert len(times) == 3 and times == sorted(times) and times[0] >= t0
    hs.reset_hits()
    assert hs.hits == 0
    assert not hs.wait_for_hits(1, timeout=0.1)


def test_wait_for_hits_wakes_up(hs):
    later = threading.Timer(0.2, get, args=(hs.url,))
    later.start()
    t0 = time.monotonic()
    assert hs.wait_for_hits(1, timeout=5)
    assert time.monotonic() - t0 < 3
    later.join(timeout=5)


def test_hang_until_released(hs):
    hs.set(hang=True)
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        get(hs.url, timeout=0.3)
    # A request hanging now completes once the hang is lifted.
    result = {}
    t = threading.Thread(target=lambda: result.update(r=get(hs.url)))
    t.start()
    assert hs.wait_for_hits(2, timeout=2)
    hs.set(status=201)
    t.join(timeout=5)
    assert result["r"][0] == 201


def get_in_background(url, outcomes):
    def run():
        try:
            outcomes.append(get(url, timeout=30))
        except Exception as e:  # noqa: BLE001 - any way of failing will do
            outcomes.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_stop_does_not_hang_on_blocked_handlers():
    hs = HealthServer()
    outcomes = []
    hs.set(hang=True)
    hung = get_in_background(hs.url, outcomes)
    assert hs.wait_for_hits(1, timeout=2)
    hs.set(hang=True, delay=60)  # a second request stuck in a delay
    slow = get_in_background(hs.url, outcomes)
    assert hs.wait_for_hits(2, timeout=2)
    silent = socket.create_connection(("127.0.0.1", hs.port))  # connects, never asks
    time.sleep(0.1)
    t0 = time.monotonic()
    hs.stop()
    assert time.monotonic() - t0 < 3
    hung.join(timeout=3)
    slow.join(timeout=3)
    assert not hung.is_alive() and not slow.is_alive()
    assert len(outcomes) == 2 and all(isinstance(o, Exception) for o in outcomes)
    silent.close()
    hs.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", hs.port), timeout=1)


def test_huge_body(hs):
    size = 10 * 1024 * 1024
    hs.huge(size)
    status, headers, body = get(hs.url, timeout=30)
    assert status == 200 and int(headers["Content-Length"]) == size and len(body) == size
    assert body.startswith(b'{"status":"critical"')
    assert json.loads(body)["status"] == "critical"
    # A client that stops after 64 KiB, as resil-init does, hurts nothing.
    with socket.create_connection(("127.0.0.1", hs.port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    hs.huge(100_000, status=500)
    status, _, body = get(hs.url, timeout=30)
    assert status == 500 and len(body) == 100_000
    hs.set()
    assert get(hs.url)[0] == 200


def test_garbage(hs):
    hs.garbage()
    with pytest.raises(http.client.BadStatusLine):
        get(hs.url)
    with socket.create_connection(("127.0.0.1", hs.port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data and not data.startswith(b"HTTP/")


def test_close_without_response(hs):
    hs.close_without_response()
    with pytest.raises(http.client.RemoteDisconnected):
        get(hs.url)
    assert hs.hits == 1


def test_unix_socket():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "health.sock")
        with HealthServer(unix_path=path) as hs:
            assert hs.url == "http://localhost/health"
            assert hs.port is None
            conn = UnixConnection(path)
            conn.request("GET", "/health")
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}
            conn.close()
            hs.set(status=503, body={"status": "down"})
            conn = UnixConnection(path)
            conn.request("GET", "/health")
            assert conn.getresponse().status == 503
            conn.close()
            assert hs.hits == 2
        assert not os.path.exists(path)
