"""The demo app (examples/demo-app.c) on its own, without resil-init.

The supervision tests lean on demo-app to crash, hang and leak on cue, so its
behaviour is pinned down here first. Every process is started by the test that
uses it and killed by that test; every wait has a deadline.
"""

import http.client
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = Path(os.environ.get("RESIL_EXAMPLES", REPO / "build" / "examples"))
DEMO = EXAMPLES / "demo-app"

pytestmark = pytest.mark.skipif(
    not os.access(DEMO, os.X_OK),
    reason=f"{DEMO} not built (run `make build/examples/demo-app` or set RESIL_EXAMPLES)",
)

STARTUP_TIMEOUT = 5.0
HTTP_TIMEOUT = 5.0
EXIT_TIMEOUT = 5.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """One demo-app process; its stdout is read line by line with deadlines."""

    def __init__(self, args=(), env=None, port=0):
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("RESIL_") and k not in ("EMERGENCY_MODE", "DEMO_CRASH_AFTER")}
        full_env["PORT"] = str(port)
        full_env.update(env or {})
        self.proc = subprocess.Popen([str(DEMO), *args], env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.port = None

    def wait_line(self, pattern, timeout=STARTUP_TIMEOUT):
        """Returns the first match of pattern in a stdout line, read so far or later."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                m = rx.search(line)
                if m:
                    return m
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or not self._read_some(left):
                raise AssertionError(f"no line matching {pattern!r} in {self.lines!r}")

    def _read_some(self, timeout):
        if not self._sel.select(timeout):
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buf += chunk
        *complete, self._buf = self._buf.split(b"\n")
        self.lines += [c.decode(errors="replace") for c in complete]
        return True

    def started(self):
        m = self.wait_line(r"listening on 127\.0\.0\.1:(\d+)")
        self.port = int(m.group(1))
        return self

    def get(self, path, timeout=HTTP_TIMEOUT):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def health(self):
        status, body = self.get("/health")
        return status, json.loads(body)

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def drain(self):
        while self._read_some(0.05):
            pass
        return self.lines

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT)
        self._sel.close()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def demo():
    started = []

    def start(args=(), env=None, port=0):
        d = Demo(args, env, port)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def raw_request(port, payload, timeout=HTTP_TIMEOUT, half_close=True):
    """Sends raw bytes and returns whatever comes back until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- health and environment ----

def test_health_reports_ok_and_the_resil_environment(demo):
    d = demo(env={"RESIL_RESTART_COUNT": "7", "RESIL_MEMORY_TIER": "warning"}).started()
    status, body = d.health()
    assert status == 200
    assert body["status"] == "ok"
    assert body["emergency"] is False
    assert body["pid"] == d.proc.pid
    assert body["restart_count"] == "7"
    assert body["tier"] == "warning"


def test_startup_line_names_port_and_resil_variables(demo):
    env = {"RESIL_RESTART_COUNT": "3", "RESIL_RESTART_REASON": "crash",
           "RESIL_MEMORY_LIMIT_MB": "512", "RESIL_MEMORY_TIER": "normal"}
    d = demo(env=env).started()
    line = d.wait_line(r"^demo-app\[(\d+)\]: listening").string
    assert f"demo-app[{d.proc.pid}]:" in line
    assert f":{d.port}" in line
    for key, value in env.items():
        assert f"{key}={value}" in line
    assert "EMERGENCY_MODE=off" in line


def test_unset_resil_variables_are_null_in_health(demo):
    d = demo().started()
    _, body = d.health()
    assert body["restart_count"] is None
    assert body["tier"] is None


def test_emergency_mode_reports_degraded(demo):
    d = demo(env={"EMERGENCY_MODE": "true"}).started()
    d.wait_line(r"emergency mode: websockets disabled, cache off")
    assert "EMERGENCY_MODE=on" in d.wait_line(r"listening").string
    status, body = d.health()
    assert status == 200
    assert body["status"] == "degraded"
    assert body["emergency"] is True


def test_root_answers_a_text_line_on_the_given_port(demo):
    port = free_port()
    d = demo(port=port).started()
    assert d.port == port
    status, body = d.get("/")
    assert status == 200
    assert body.endswith("\n") and body.count("\n") == 1


def test_a_taken_port_is_a_loud_failure(demo):
    first = demo().started()
    second = demo(port=first.port)
    assert second.wait_exit() == 1
    second.wait_line(r"cannot listen on 127\.0\.0\.1:%d" % first.port)


def test_unknown_path_is_404(demo):
    d = demo().started()
    assert d.get("/nope")[0] == 404


# ---- control endpoints ----

def test_unhealthy_makes_health_503_critical_until_recover(demo):
    d = demo().started()
    assert d.get("/unhealthy")[0] == 200
    status, body = d.health()
    assert status == 503
    assert body["status"] == "critical"
    assert d.get("/recover")[0] == 200
    status, body = d.health()
    assert (status, body["status"]) == (200, "ok")


def test_crash_answers_then_exits_3(demo):
    d = demo().started()
    status, body = d.get("/crash")
    assert status == 200
    assert json.loads(body) == {"crashing": True}
    assert d.wait_exit() == 3
    d.wait_line(r"crash requested")


def test_exit_with_code(demo):
    d = demo().started()
    assert d.get("/exit?code=42")[0] == 200
    assert d.wait_exit() == 42


@pytest.mark.parametrize("query", ["", "?code=", "?code=256", "?code=-1", "?code=1x", "?c=1"])
def test_exit_with_bad_code_is_400_and_keeps_running(demo, query):
    d = demo().started()
    assert d.get("/exit" + query)[0] == 400
    assert d.health()[0] == 200


def test_hang_stops_answering_but_keeps_the_port(demo):
    d = demo().started()
    assert d.get("/hang")[0] == 200
    d.wait_line(r"hang requested")
    # The TCP connection is accepted (the port is held) but no answer comes.
    with pytest.raises((socket.timeout, TimeoutError)):
        d.get("/health", timeout=1.0)
    assert d.proc.poll() is None
    # A hung app can still be stopped gracefully.
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait_exit() == 0


def test_leak_allocates_and_keeps_memory(demo):
    d = demo().started()
    before = rss_kib(d.proc.pid)
    status, body = d.get("/leak?mb=32")
    assert status == 200
    assert json.loads(body) == {"leaked_mb": 32, "total_mb": 32}
    assert rss_kib(d.proc.pid) - before >= 30 * 1024
    status, body = d.get("/leak?mb=8")
    assert json.loads(body)["total_mb"] == 40
    assert d.health()[1]["leaked_mb"] == 40
    d.wait_line(r"leaked 8 MiB, 40 MiB held in total")


@pytest.mark.parametrize("query", ["", "?mb=0", "?mb=abc", "?mb=99999999999", "?mb=-5"])
def test_leak_with_bad_size_is_400(demo, query):
    d = demo().started()
    assert d.get("/leak" + query)[0] == 400
    assert d.health()[0] == 200


# ---- switches and signals ----

def test_sigterm_shuts_down_gracefully_with_0(demo):
    d = demo().started()
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    d.wait_line(r"^demo-app\[%d\]: SIGTERM received, shutting down gracefully$" % d.proc.pid)


def test_port_is_free_right_after_sigterm(demo):
    d = demo().started()
    assert d.health()[0] == 200
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    # No SO_REUSEADDR on either side: the port must really be free now.
    assert demo(port=d.port).started().health()[0] == 200


def test_port_is_free_right_after_crash(demo):
    d = demo().started()
    assert d.get("/crash")[0] == 200
    assert d.wait_exit() == 3
    assert demo(port=d.port).started().health()[0] == 200


def test_port_is_free_right_after_killing_a_hung_app(demo):
    d = demo().started()
    assert d.get("/health")[0] == 200
    assert d.get("/hang")[0] == 200
    with socket.create_connection(("127.0.0.1", d.port), timeout=HTTP_TIMEOUT) as held:
        held.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        time.sleep(0.2)
        d.proc.kill()
        assert d.wait_exit() == -signal.SIGKILL
        assert demo(port=d.port).started().health()[0] == 200


def test_ignore_term_keeps_running(demo):
    d = demo(["--ignore-term"]).started()
    d.proc.send_signal(signal.SIGTERM)
    d.wait_line(r"SIGTERM received, ignored")
    time.sleep(0.3)
    assert d.proc.poll() is None
    assert d.health()[0] == 200
    d.proc.kill()
    assert d.wait_exit() == -signal.SIGKILL


def test_other_signals_are_logged_and_ignored(demo):
    d = demo().started()
    d.proc.send_signal(signal.SIGUSR1)
    d.wait_line(r"SIGUSR1 received, ignored")
    assert d.proc.poll() is None


@pytest.mark.parametrize("how", ["flag", "flag=", "env"])
def test_crash_after_exits_3(demo, how):
    if how == "flag":
        d = demo(["--crash-after", "0.3"])
    elif how == "flag=":
        d = demo(["--crash-after=0.3"])
    else:
        d = demo(env={"DEMO_CRASH_AFTER": "0.3"})
    d.started()
    start = time.monotonic()
    assert d.wait_exit() == 3
    assert time.monotonic() - start < 3
    d.wait_line(r"--crash-after 0\.3s elapsed: exiting with status 3")


@pytest.mark.parametrize("args,env", [
    (["--bogus"], {}),
    (["--crash-after"], {}),
    (["--crash-after", "soon"], {}),
    ([], {"DEMO_CRASH_AFTER": "-1"}),
    ([], {"PORT": "70000"}),
    ([], {"PORT": "http"}),
])
def test_bad_usage_exits_2(demo, args, env):
    d = demo(args, env)
    assert d.wait_exit() == 2
    assert b"usage: demo-app" in d.proc.stderr.read()


# ---- robustness ----

@pytest.mark.parametrize("payload,status", [
    (b"\x00\xff\xfe garbage \x01\n\n", b"400"),
    (b"\r\n\r\n", b"400"),
    (b"GET\r\n\r\n", b"400"),
    (b"GET nothing HTTP/1.0\r\n\r\n", b"400"),
    (b"POST /health HTTP/1.0\r\nContent-Length: 0\r\n\r\n", b"405"),
    (b"GET /health HTTP/1.0\r\n", b"200"),  # half-closed after the request line
    (b"A" * 5000, b"431"),
    (b"GET /" + b"x" * 5000 + b" HTTP/1.0\r\n\r\n", b"431"),
])
def test_garbage_gets_an_error_and_the_app_lives_on(demo, payload, status):
    d = demo().started()
    reply = raw_request(d.port, payload)
    assert reply.startswith(b"HTTP/1.0 " + status), reply[:100]
    assert d.proc.poll() is None
    assert d.health()[0] == 200


def test_clients_that_vanish_or_stall_do_not_block_others(demo):
    d = demo().started()
    stalled = [socket.create_connection(("127.0.0.1", d.port), timeout=HTTP_TIMEOUT)
               for _ in range(8)]
    try:
        stalled[0].sendall(b"GET /hea")
        stalled[1].close()  # gone without a word
        with socket.create_connection(("127.0.0.1", d.port), timeout=HTTP_TIMEOUT) as s:
            s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
            s.close()  # gone before reading the answer
        assert d.health()[0] == 200
    finally:
        for s in stalled:
            s.close()
    assert d.proc.poll() is None


def test_request_split_into_small_pieces(demo):
    d = demo().started()
    with socket.create_connection(("127.0.0.1", d.port), timeout=HTTP_TIMEOUT) as s:
        for piece in (b"GE", b"T /hea", b"lth HTTP/1.0\r", b"\nHost: x\r\n", b"\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    assert json.loads(body)["status"] == "ok"


def test_a_client_that_never_hangs_up_gets_its_answer_then_a_reset(demo):
    # The app lets the client close first (no TIME_WAIT on the app's port) and
    # resets a connection whose client has not hung up a while after its answer.
    d = demo().started()
    with socket.create_connection(("127.0.0.1", d.port), timeout=HTTP_TIMEOUT) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        data = b""
        with pytest.raises(ConnectionResetError):
            while chunk := s.recv(4096):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert len(body) == length
    assert json.loads(body)["status"] == "ok"
