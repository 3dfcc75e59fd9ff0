"""--metrics and `resil-init metrics` (SPEC 10, issue 9): every family present
from the first scrape, values after each kind of restart, the histogram,
HTTP answers to odd requests, slow clients that cannot stall the loop, no
memory growth across scrapes, and the control socket's copy of the text.
Every text read is parsed with prometheus_client's own parser."""

import http.client
import json
import os
import signal
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakecgroup import MiB, FakeCgroup
from healthserver import HealthServer
from helpers import base_env, prog, run_cmd, starts, terms, wait_for
from listenlib import free_port

REASONS = ("crash", "unhealthy", "memory", "oom", "exit", "manual")
FAMILIES = {
    "resil_app_restarts": "counter",
    "resil_app_up": "gauge",
    "resil_app_start_time_seconds": "gauge",
    "resil_app_last_exit_code": "gauge",
    "resil_app_last_exit_signal": "gauge",
    "resil_health_checks": "counter",
    "resil_health_check_duration_seconds": "histogram",
    "resil_health_healthy": "gauge",
    "resil_memory_limit_bytes": "gauge",
    "resil_memory_working_set_bytes": "gauge",
    "resil_memory_tier": "gauge",
    "resil_memory_oom_kills": "counter",
    "resil_emergency": "gauge",
}


def scrape_raw(port, path="/metrics"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


def parse(text):
    """{family: (type, {(sample name, sorted labels): value})}"""
    out = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = (fam.type, {(s.name, tuple(sorted(s.labels.items()))): s.value
                                    for s in fam.samples})
    return out


def scrape(port):
    resp, body = scrape_raw(port)
    assert resp.status == 200, (resp.status, body)
    return parse(body.decode())


def value(m, family, sample=None, **labels):
    return m[family][1][(sample or family, tuple(sorted(labels.items())))]


def start(init, tmp_path, app=None, health=None, cg=None, extra=(), env=None):
    port = free_port()
    state = tmp_path / "state"
    cg = cg or FakeCgroup(tmp_path / "cg", limit=512 * MiB, usage=64 * MiB)
    log = tmp_path / "app.log"
    args = ["--metrics", f"127.0.0.1:{port}", "--state-dir", state, "--cgroup-root", cg.path,
            "--memory-interval", "100ms", *extra]
    if health:
        args += ["--health-url", health]
    run = init([*args, "--", *(app or [*prog("sup_app.py"), "--log", log])], pid1=False,
               **({"env": env} if env else {}))
    if app is None:
        wait_for(lambda: starts(log), 10, "the app to start")
    return run, port, state, log, cg


def test_every_metric_is_there_from_the_first_scrape(init, tmp_path):
    with HealthServer() as hs:
        before = time.time()
        run, port, state, log, cg = start(init, tmp_path, health=hs.url,
                                          extra=["--health-interval", "30s"])
        resp, body = scrape_raw(port)
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
        assert int(resp.getheader("Content-Length")) == len(body)
        assert resp.getheader("Connection") == "close"
        text = body.decode()
        m = parse(text)
        assert {k: v[0] for k, v in m.items()} == FAMILIES
        for family in FAMILIES:
            assert f"# HELP {family}" in text
        for reason in REASONS:
            assert value(m, "resil_app_restarts", "resil_app_restarts_total", reason=reason) == 0
        assert value(m, "resil_app_up") == 1
        assert before - 1 <= value(m, "resil_app_start_time_seconds") <= time.time()
        assert value(m, "resil_app_last_exit_code") == 0
        assert value(m, "resil_app_last_exit_signal") == 0
        for result in ("pass", "fail"):
            assert value(m, "resil_health_checks", "resil_health_checks_total", result=result) == 0
        h = "resil_health_check_duration_seconds"
        assert value(m, h, h + "_count") == 0 and value(m, h, h + "_bucket", le="+Inf") == 0
        assert value(m, "resil_health_healthy") == 0  # no check has passed yet
        assert value(m, "resil_memory_limit_bytes") == 512 * MiB
        assert value(m, "resil_memory_working_set_bytes") == 64 * MiB
        assert value(m, "resil_memory_tier", tier="normal") == 1
        assert value(m, "resil_memory_tier", tier="warning") == 0
        assert value(m, "resil_memory_tier", tier="critical") == 0
        assert value(m, "resil_memory_oom_kills", "resil_memory_oom_kills_total") == 0
        assert value(m, "resil_emergency") == 0


def test_http_1_0_and_head_and_odd_requests(init, tmp_path):
    run, port, *_ = start(init, tmp_path)

    def raw(request, read_all=True):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk

    got = raw(b"GET /metrics HTTP/1.0\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert parse(body.decode())
    got = raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n")
    assert b"Content-Length: " in got
    assert raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert raw(b"GET /metrics/x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert raw(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    assert raw(b"\x16\x03\x01\x00\xa5\x01\x00").startswith(b"HTTP/1.1 400 ")  # TLS hello
    assert raw(b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414 ")
    big_header = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 8000 + b"\r\n\r\n"
    assert raw(big_header).startswith(b"HTTP/1.1 431 ")
    assert scrape(port)  # still serving


def test_values_after_crash_and_manual_restarts(init, tmp_path):
    log = tmp_path / "app.log"
    app = [*prog("sup_app.py"), "--log", log, "--plan", "exit:3,run"]
    run, port, state, _, cg = start(init, tmp_path, app=app,
                                    extra=["--restart", "on-failure", "--backoff", "100ms"])
    wait_for(lambda: len(starts(log)) >= 2, 10, "the restart after the crash")
    m = wait_for(lambda: (lambda m: m if value(m, "resil_app_up") == 1 else None)(scrape(port)),
                 5, "the app up again")
    assert value(m, "resil_app_restarts", "resil_app_restarts_total", reason="crash") == 1
    assert value(m, "resil_app_last_exit_code") == 3
    assert value(m, "resil_app_last_exit_signal") == 0
    started = value(m, "resil_app_start_time_seconds")
    r = run_cmd(["restart", "--state-dir", state], timeout=30)
    assert r.returncode == 0, r.stderr
    m = scrape(port)
    assert value(m, "resil_app_restarts", "resil_app_restarts_total", reason="manual") == 1
    assert value(m, "resil_app_restarts", "resil_app_restarts_total", reason="crash") == 1
    assert value(m, "resil_app_up") == 1
    assert value(m, "resil_app_start_time_seconds") > started
    # sup_app.py exits 0 on SIGTERM.
    assert value(m, "resil_app_last_exit_code") == 0


def test_values_after_an_unhealthy_restart_and_a_consistent_histogram(init, tmp_path):
    with HealthServer() as hs:
        log = tmp_path / "app.log"
        run, port, state, _, cg = start(
            init, tmp_path, health=hs.url,
            extra=["--restart", "on-failure", "--backoff", "100ms", "--health-interval", "100ms",
                   "--health-retries", "2"])
        wait_for(lambda: value(scrape(port), "resil_health_healthy") == 1, 5, "healthy")
        m = scrape(port)
        assert value(m, "resil_health_checks", "resil_health_checks_total", result="pass") >= 1
        hs.set(status=503)
        wait_for(lambda: len(starts(log)) >= 2, 10, "the unhealthy restart")
        hs.set(status=200)
        m = wait_for(lambda: (lambda m: m if value(m, "resil_health_healthy") == 1 else None)(
            scrape(port)), 5, "healthy again")
        # Each restart as resil-init logged it (a start killed before the app
        # wrote its own line is one too).
        unhealthy_starts = run.stderr_text().count("reason unhealthy)")
        assert unhealthy_starts >= 1
        assert value(m, "resil_app_restarts", "resil_app_restarts_total",
                     reason="unhealthy") == unhealthy_starts, (starts(log), run.stderr_text())
        passed = value(m, "resil_health_checks", "resil_health_checks_total", result="pass")
        failed = value(m, "resil_health_checks", "resil_health_checks_total", result="fail")
        assert failed >= 2
        h = "resil_health_check_duration_seconds"
        samples = m[h][1]
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                          if k[0] == h + "_bucket"))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), buckets  # cumulative
        assert buckets[-1][0] == float("inf")
        assert buckets[-1][1] == value(m, h, h + "_count") == passed + failed
        assert 0 < value(m, h, h + "_sum") < (passed + failed) * 5


def test_values_after_a_memory_restart(init, tmp_path):
    cg = FakeCgroup(tmp_path / "cg", limit=512 * MiB, usage=64 * MiB)
    run, port, state, log, _ = start(
        init, tmp_path, cg=cg,
        extra=["--restart", "on-failure", "--backoff", "100ms", "--memory-restart", "400M",
               "--memory-restart-for", "200ms", "--memory-critical", "99%"])
    cg.set_usage(450 * MiB)
    wait_for(lambda: value(scrape(port), "resil_memory_working_set_bytes") == 450 * MiB, 5,
             "the working set in the metrics")
    assert value(scrape(port), "resil_memory_tier", tier="warning") == 1
    wait_for(lambda: terms(log), 5, "the memory restart's SIGTERM")
    cg.set_usage(64 * MiB)
    wait_for(lambda: len(starts(log)) >= 2, 10, "the memory restart")
    m = wait_for(lambda: (lambda m: m if value(m, "resil_app_up") == 1 else None)(scrape(port)),
                 5, "the app up again")
    assert value(m, "resil_app_restarts", "resil_app_restarts_total", reason="memory") == 1
    assert value(m, "resil_emergency") == 1  # a start after a memory restart
    cg.bump_oom_kill()
    wait_for(lambda: value(scrape(port), "resil_memory_oom_kills",
                           "resil_memory_oom_kills_total") == 1, 5, "the OOM kill counted")


def test_slow_and_idle_clients_stall_nothing(init, tmp_path):
    sig_log, ready = tmp_path / "signals.log", tmp_path / "ready"
    app = [*prog("sigrecorder.py"), "--log", sig_log, "--ready", ready]
    run, port, *_ = start(init, tmp_path, app=app)
    wait_for(ready.exists, 10, "the app to be ready")
    idle = []
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 2:
            s.sendall(b"GET /metr")  # slowloris: a request that never ends
        idle.append(s)
    try:
        time.sleep(0.2)
        for n, sig in enumerate((signal.SIGUSR1, signal.SIGHUP, signal.SIGUSR2), 1):
            sent = time.monotonic()
            run.signal(sig)
            wait_for(lambda: len(recorded(sig_log)) >= n, 2, "the signal forwarded")
            took = time.monotonic() - sent
            assert took < 0.25, f"SIG{sig.name} reached the app after {took * 1000:.0f} ms"
        began = time.monotonic()
        assert scrape(port)
        assert time.monotonic() - began < 1.0
    finally:
        for s in idle:
            s.close()
    assert recorded(sig_log) == ["USR1", "HUP", "USR2"]


def recorded(path):
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_rss_does_not_grow_over_10000_scrapes(init, tmp_path):
    # Under AddressSanitizer freed memory waits in a quarantine (and RSS grows
    # with it) unless the quarantine is off; a plain build ignores the variable.
    env = base_env({"ASAN_OPTIONS": "quarantine_size_mb=0:thread_local_quarantine_size_kb=0"})
    run, port, *_ = start(init, tmp_path, env=env)

    def scrapes(n):
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                while s.recv(65536):
                    pass

    scrapes(100)
    after_100 = rss_kib(run.pid)
    scrapes(9900)
    after_10000 = rss_kib(run.pid)
    assert after_10000 - after_100 <= 16, f"RSS {after_100} KiB -> {after_10000} KiB"


def test_resil_init_metrics_prints_the_same_families(init, tmp_path):
    run, port, state, *_ = start(init, tmp_path)
    r = run_cmd(["metrics", "--state-dir", state])
    assert r.returncode == 0, r.stderr
    assert parse(r.stdout) == scrape(port)
    assert r.stdout.startswith("# HELP resil_app_restarts_total")


def test_bad_address_or_port_in_use_exits_2_with_nothing_started(tmp_path):
    marker = tmp_path / "started"
    app = ["sh", "-c", f"touch {marker}"]
    for bad in ("99999", "unix:/tmp/m.sock", "host name:80"):
        r = run_cmd(["--metrics", bad, "--", *app])
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "--metrics" in r.stderr and bad in r.stderr, r.stderr
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        r = run_cmd(["--metrics", f"127.0.0.1:{port}", "--", *app])
    assert r.returncode == 2, r.stderr
    assert f"127.0.0.1:{port}" in r.stderr and "Address already in use" in r.stderr
    assert not marker.exists()
