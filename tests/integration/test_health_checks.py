"""Health checks (SPEC §2 health table and the rules below it, §4 exit 69,
§6 timing rules): what passes, what fails, retries, the start period, timing
of the checks, redirects, proxies, Unix sockets, and a hung endpoint that must
not delay a stop.

resil-init runs as PID 1 of a fresh PID namespace (skipped where `unshare
--pid` is not permitted). The health endpoint is a HealthServer in the test
process (the PID namespace shares the network), so what resil-init's checks
get is under the test's control; the app, progs/sup_app.py, records its starts
and the stop signals it gets. Intervals are 200-400 ms and timeouts 300 ms, so
every test is over in a second or two.
"""

import signal
import socket
import time

import pytest

from healthserver import HealthServer
from helpers import base_env, prog, starts, terms, wait_for

INTERVAL = 0.2


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(init, tmp_path, url, plan="run", on_term="exit0", env=None, **options):
    """resil-init as PID 1 checking url, over progs/sup_app.py. options override
    the defaults below (health_interval="400ms" is --health-interval 400ms; a
    value of None drops the option). Returns (run, app log), once the app has
    started."""
    opts = {"state_dir": tmp_path / "state", "termination_log": tmp_path / "termination-log",
            "restart": "no", "health_url": url, "health_interval": "200ms",
            "health_timeout": "300ms", "health_retries": "2", "grace": "2s"}
    opts.update(options)
    args = []
    for key, value in opts.items():
        if value is not None:
            args += ["--" + key.replace("_", "-"), value]
    log = tmp_path / "app.log"
    run = init([*args, "--", *prog("sup_app.py"), "--log", log, "--on-term", on_term,
                "--plan", plan], env=base_env(env))
    wait_for(lambda: starts(log), 10, "the app to start")
    return run, log


def termination_log(tmp_path):
    return (tmp_path / "termination-log").read_text().strip()


def assert_still_healthy(run, log, hs, hits):
    """hits checks arrived while the app kept running, started once, never stopped."""
    assert hs.wait_for_hits(hits, timeout=hits * INTERVAL * 3 + 2), f"only {hs.hits} checks"
    assert run.running(), run.stderr_text()
    assert len(starts(log)) == 1
    assert terms(log) == [], "the app was told to stop"


def stop(run, expected=0):
    run.signal(signal.SIGTERM)
    assert run.wait() == expected, run.stderr_text()


@pytest.fixture
def hs():
    with HealthServer() as server:
        yield server


# ---- what passes ----

def test_a_healthy_endpoint_keeps_the_app_running(init, tmp_path, hs):
    run, log = start(init, tmp_path, hs.url)
    assert_still_healthy(run, log, hs, 3)
    assert {h.path for h in hs.requests} == {"/health"}
    stop(run)


@pytest.mark.parametrize("verdict", ["warning", "degraded"])
def test_a_passing_json_verdict_keeps_the_app_running(init, tmp_path, hs, verdict):
    hs.set(body={"status": verdict})
    run, log = start(init, tmp_path, hs.url)
    assert_still_healthy(run, log, hs, 3)
    stop(run)
    assert verdict in run.stderr_text(), "the verdict was not reported in the log"


@pytest.mark.parametrize("body", [b"plain text, not JSON", {"status": 5}, ["critical"]],
                         ids=["not-json", "verdict-not-a-string", "json-array"])
def test_a_200_without_a_string_verdict_passes(init, tmp_path, hs, body):
    hs.set(body=body)
    run, log = start(init, tmp_path, hs.url)
    assert_still_healthy(run, log, hs, 3)
    stop(run)


@pytest.mark.parametrize("status", [204, 399])
def test_status_200_to_399_passes(init, tmp_path, hs, status):
    hs.set(status=status, body=b"")
    run, log = start(init, tmp_path, hs.url)
    assert_still_healthy(run, log, hs, 3)
    stop(run)


def test_a_body_over_64_kib_with_200_is_judged_by_its_status_alone(init, tmp_path, hs):
    # 1 MiB of JSON whose first bytes are {"status":"critical", ... : it passes.
    hs.huge(1024 * 1024, status=200, verdict="critical")
    run, log = start(init, tmp_path, hs.url)
    assert_still_healthy(run, log, hs, 3)
    stop(run)


def test_a_redirect_is_not_followed_and_passes_by_its_status(init, tmp_path, hs):
    with HealthServer() as target:
        target.set(status=503, body={"status": "critical"})
        hs.garbage(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                   b"Connection: close\r\n\r\n" % target.url.encode())
        run, log = start(init, tmp_path, hs.url)
        assert_still_healthy(run, log, hs, 3)
        assert target.hits == 0, "the redirect was followed"
        stop(run)


def test_proxy_variables_are_ignored(init, tmp_path, hs):
    with HealthServer() as proxy:
        proxy.set(status=503, body={"status": "critical"})
        env = {name: proxy.url.rsplit("/", 1)[0]
               for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")}
        env.update(https_proxy="http://127.0.0.1:1", HTTPS_PROXY="http://127.0.0.1:1")
        run, log = start(init, tmp_path, hs.url, env=env)
        assert_still_healthy(run, log, hs, 3)
        assert proxy.hits == 0, "the health check went through the proxy"
        stop(run)


def test_health_checks_go_over_the_unix_socket(init, tmp_path):
    with HealthServer(unix_path=str(tmp_path / "health.sock")) as hs:
        run, log = start(init, tmp_path, hs.url, health_unix_socket=tmp_path / "health.sock")
        assert hs.url == "http://localhost/health"
        assert_still_healthy(run, log, hs, 3)
        assert {h.path for h in hs.requests} == {"/health"}
        stop(run)


def test_a_failing_check_over_the_unix_socket_exits_69(init, tmp_path):
    with HealthServer(unix_path=str(tmp_path / "health.sock")) as hs:
        hs.set(status=503)
        run, log = start(init, tmp_path, hs.url, health_unix_socket=tmp_path / "health.sock")
        assert run.wait() == 69, run.stderr_text()
        assert hs.hits >= 2
        line = termination_log(tmp_path)
        assert "http://localhost/health" in line and "HTTP 503" in line, line


# ---- what fails ----

def _refused(hs):
    return f"http://127.0.0.1:{free_port()}/health"


FAILURES = {
    # name: (set up the server, return the URL to check or None for hs.url; words in the reason)
    "http-503": (lambda hs: hs.set(status=503), "HTTP 503"),
    "http-404": (lambda hs: hs.set(status=404), "HTTP 404"),
    "http-500-ok-body": (lambda hs: hs.set(status=500, body={"status": "ok"}), "HTTP 500"),
    "critical": (lambda hs: hs.set(body={"status": "critical"}), "critical"),
    "DOWN-any-case": (lambda hs: hs.set(body={"status": "DOWN"}), "DOWN"),
    "overall_status-critical": (lambda hs: hs.set(body={"overall_status": "critical"}),
                                "critical"),
    "timeout-hang": (lambda hs: hs.set(hang=True), "timeout"),
    "timeout-delay": (lambda hs: hs.set(delay=1.0), "timeout"),
    "connection-refused": (_refused, "connection refused"),
    "garbage": (lambda hs: hs.garbage(), None),
    "closed-without-response": (lambda hs: hs.close_without_response(), None),
    "huge-503": (lambda hs: hs.huge(1024 * 1024, status=503, verdict="ok"), "HTTP 503"),
    "critical-in-a-60-KiB-body": (lambda hs: hs.huge(60 * 1024, status=200, verdict="critical"),
                                  "critical"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failing_check_stops_the_app_and_exits_69_naming_url_and_failure(init, tmp_path, hs,
                                                                            case):
    setup, words = FAILURES[case]
    url = setup(hs) or hs.url
    run, log = start(init, tmp_path, url, on_term="exit0")
    assert run.wait() == 69, run.stderr_text()
    assert terms(log), "the app was not stopped with SIGTERM"
    assert len(starts(log)) == 1
    line = termination_log(tmp_path)
    assert line.startswith("exit 69"), line
    assert url in line, line
    if words:
        assert words in line, line
    assert "\n" not in line
    assert run.reason_line().endswith(line), (run.reason_line(), line)


def test_a_custom_json_field_carries_the_verdict(init, tmp_path, hs):
    hs.set(body={"status": "ok", "state": "critical"})
    run, log = start(init, tmp_path, hs.url, health_json_field="state")
    assert run.wait() == 69, run.stderr_text()
    assert "critical" in termination_log(tmp_path)


# ---- retries and the start period ----

def test_retries_minus_one_failures_then_a_success_do_not_make_it_unhealthy(init, tmp_path, hs):
    hs.set(status=503)
    run, log = start(init, tmp_path, hs.url, health_retries="3")
    for total in (2, 3, 5, 6):  # fail, fail, pass, fail, fail, pass
        assert hs.wait_for_hits(total, timeout=3), f"only {hs.hits} checks"
        hs.set(status=200 if total in (2, 5) else 503)
    hs.set(status=200)
    assert_still_healthy(run, log, hs, 8)
    stop(run)


def test_exactly_retries_consecutive_failures_make_it_unhealthy(init, tmp_path, hs):
    hs.set(status=503)
    run, log = start(init, tmp_path, hs.url, health_retries="3")
    assert run.wait() == 69, run.stderr_text()
    assert hs.hits == 3, f"{hs.hits} checks for --health-retries 3"


def test_failures_inside_the_start_period_do_not_count(init, tmp_path, hs):
    hs.set(status=503)
    run, log = start(init, tmp_path, hs.url, health_start_period="3s")
    assert hs.wait_for_hits(4, timeout=3)  # 4 failures > --health-retries 2
    hs.set(status=200)
    assert_still_healthy(run, log, hs, 7)
    stop(run)


def test_failures_count_once_the_start_period_is_over(init, tmp_path, hs):
    hs.set(status=503)
    run, log = start(init, tmp_path, hs.url, health_start_period="1s")
    assert run.wait() == 69, run.stderr_text()
    elapsed = run.ended_at - run.started_at
    assert elapsed >= 1.0, f"exited {elapsed:.2f}s after start, inside the 1 s start period"
    assert hs.hits >= 6, f"only {hs.hits} checks: failures in the start period counted"
    assert elapsed < 3.5


def test_the_first_success_ends_the_start_period(init, tmp_path, hs):
    run, log = start(init, tmp_path, hs.url, health_start_period="30s")
    assert hs.wait_for_hits(2, timeout=3)
    hs.set(status=503)
    assert run.wait(timeout=5) == 69, run.stderr_text()
    assert "HTTP 503" in termination_log(tmp_path)


# ---- timing ----

def test_first_check_one_interval_after_start_then_spaced_by_the_interval(init, tmp_path, hs):
    run, log = start(init, tmp_path, hs.url, health_interval="400ms")
    assert hs.wait_for_hits(3, timeout=5)
    times = hs.hit_times[:3]
    first = times[0] - run.started_at
    assert 0.39 <= first <= 0.4 + 0.6, f"first check {first:.3f}s after resil-init was started"
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.37 <= g <= 0.75 for g in gaps), f"gaps between checks: {gaps}"
    stop(run)


def test_slow_checks_never_overlap(init, tmp_path, hs):
    # Each answer takes 350 ms, longer than the 200 ms interval (but within the
    # 1 s timeout): a check starts only after the previous one ended.
    hs.set(delay=0.35)
    run, log = start(init, tmp_path, hs.url, health_timeout="1s")
    assert_still_healthy(run, log, hs, 4)
    times = hs.hit_times[:4]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.34 <= g <= 0.8 for g in gaps), f"gaps between checks: {gaps}"
    stop(run)


def test_sigterm_is_forwarded_at_once_while_a_check_hangs(init, tmp_path, hs):
    hs.set(hang=True)
    run, log = start(init, tmp_path, hs.url, on_term="reraise", health_timeout="5s",
                     health_retries="3")
    assert hs.wait_for_hits(1, timeout=3)  # a check is in flight and will hang for 5 s
    time.sleep(0.05)
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    got = wait_for(lambda: terms(log), 2, "the app to get SIGTERM")[0]["t"]
    assert got - sent < 0.2, f"SIGTERM reached the app {got - sent:.3f}s after it was sent"
    assert run.wait(timeout=3) == 143, run.stderr_text()
    assert run.ended_at - sent < 1.0, f"resil-init exited {run.ended_at - sent:.2f}s after SIGTERM"
