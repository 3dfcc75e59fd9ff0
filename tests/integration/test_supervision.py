"""Supervision (SPEC §2 restart options, §3 RESIL_RESTART_*, §4, §6): restart
policies, the restart budget, backoff, stop requests, and that a restart
never starts the new app while the old app's process group still holds its
port.

resil-init runs as PID 1 of a fresh PID namespace (skipped where `unshare
--pid` is not permitted). The apps record every start with the environment
they saw: progs/sup_app.py (JSON lines), a one-line shell app where start
times must be precise (a Python start costs ~150 ms, a shell one ~2 ms), and
progs/sup_portholder.py for the port test. Backoffs are 50-400 ms.
"""

import json
import signal
import socket
import time

import pytest

from fakecgroup import MiB, FakeCgroup
from healthserver import HealthServer
from helpers import app_events, app_events_of, prog, starts, wait_for


def options(tmp_path, **kw):
    """Command-line options: state dir and termination log in tmp_path, then kw
    (restart="always" is --restart always; a value None drops the option)."""
    opts = {"state_dir": tmp_path / "state", "termination_log": tmp_path / "termination-log",
            "grace": "2s"}
    opts.update(kw)
    args = []
    for key, value in opts.items():
        if value is None:
            continue
        if key == "remap_exit":
            args += ["-e", value]
        else:
            args += ["--" + key.replace("_", "-"), value]
    return args


def sup_app(log, plan="run", on_term="exit0"):
    return [*prog("sup_app.py"), "--log", log, "--plan", plan, "--on-term", on_term]


def start(init, tmp_path, plan="run", on_term="exit0", **kw):
    """resil-init over sup_app.py; returns (run, app log) once the app started."""
    log = tmp_path / "app.log"
    run = init([*options(tmp_path, **kw), "--", *sup_app(log, plan, on_term)])
    wait_for(lambda: starts(log), 10, "the app to start")
    return run, log


def shell_app(log, script):
    """A shell app that appends "<wall time> <RESIL_RESTART_COUNT> <RESIL_RESTART_REASON>"
    to log at each start, then runs script (in which $n is RESIL_RESTART_COUNT)."""
    return ["sh", "-c", 'echo "$(date +%s.%N) $RESIL_RESTART_COUNT $RESIL_RESTART_REASON" >> "$0"; '
            'n=$RESIL_RESTART_COUNT; ' + script, log]


def shell_starts(log):
    """[(time, count, reason)] of a shell_app."""
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [(float(t), c, r) for t, c, r in (l.split() for l in lines)]


def termination_log(tmp_path):
    return (tmp_path / "termination-log").read_text().strip()


def read_status(tmp_path):
    try:
        return json.loads((tmp_path / "state" / "status.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


# ---- restart policies and RESIL_RESTART_* ----

def test_unhealthy_app_is_restarted_with_reason_unhealthy(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, log = start(init, tmp_path, restart="on-failure", backoff="100ms",
                         health_url=hs.url, health_interval="200ms", health_timeout="300ms",
                         health_retries="2")
        wait_for(lambda: app_events_of(log, "term"), 5, "the unhealthy app to get SIGTERM")
        hs.set(status=200)
        wait_for(lambda: len(starts(log)) >= 2, 5, "the restart")
        first, second = starts(log)[:2]
        assert (first["count"], first["reason"]) == ("0", "start")
        assert (second["count"], second["reason"]) == ("1", "unhealthy")
        assert app_events_of(log, "term")[0]["pid"] == first["pid"]
        assert app_events_of(log, "term")[0]["t"] < second["t"]
        time.sleep(0.5)  # the new app is healthy: no further restart
        assert len(starts(log)) == 2 and run.running()
        run.signal(signal.SIGTERM)
        assert run.wait() == 0, run.stderr_text()


@pytest.mark.parametrize("plan", ["exit:3,run", "kill:9,run"])
def test_crashed_app_is_restarted_with_reason_crash(init, tmp_path, plan):
    # Memory well below its limit, so a SIGKILL is a crash, never taken for an OOM kill.
    cg = FakeCgroup(tmp_path / "cgroup", limit=512 * MiB, usage=64 * MiB)
    run, log = start(init, tmp_path, plan=plan, restart="on-failure", backoff="100ms",
                     cgroup_root=cg.path)
    wait_for(lambda: len(starts(log)) >= 2, 5, "the restart")
    first, second = starts(log)
    assert (first["count"], first["reason"]) == ("0", "start")
    assert (second["count"], second["reason"]) == ("1", "crash")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr_text()


def test_restart_always_restarts_after_exit_0_with_reason_exit(init, tmp_path):
    run, log = start(init, tmp_path, plan="exit:0,run", restart="always", backoff="100ms")
    wait_for(lambda: len(starts(log)) >= 2, 5, "the restart")
    assert [(s["count"], s["reason"]) for s in starts(log)] == [("0", "start"), ("1", "exit")]
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr_text()


def test_restart_on_failure_does_not_restart_after_exit_0(init, tmp_path):
    run, log = start(init, tmp_path, plan="exit:0,run", restart="on-failure", backoff="100ms")
    assert run.wait() == 0, run.stderr_text()
    assert len(starts(log)) == 1


def test_restart_no_exits_with_the_apps_code(init, tmp_path):
    run, log = start(init, tmp_path, plan="exit:5,run", restart="no", backoff="100ms")
    assert run.wait() == 5, run.stderr_text()
    assert len(starts(log)) == 1
    assert termination_log(tmp_path).startswith("exit 5"), termination_log(tmp_path)


def test_restart_budget_exhausted_exits_with_the_last_failures_code(init, tmp_path):
    run, log = start(init, tmp_path, plan="exit:7", restart="on-failure", max_restarts="2",
                     backoff="100ms")
    assert run.wait() == 7, run.stderr_text()
    assert [(s["count"], s["reason"]) for s in starts(log)] == [
        ("0", "start"), ("1", "crash"), ("2", "crash")]
    line = termination_log(tmp_path)
    assert line.startswith("exit 7") and "giving up" in line, line
    assert run.reason_line().endswith(line)


def test_restart_budget_exhausted_by_unhealthy_runs_exits_69(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, log = start(init, tmp_path, restart="on-failure", max_restarts="1",
                         backoff="100ms", health_url=hs.url, health_interval="200ms",
                         health_timeout="300ms", health_retries="2")
        assert run.wait() == 69, run.stderr_text()
        assert [(s["count"], s["reason"]) for s in starts(log)] == [
            ("0", "start"), ("1", "unhealthy")]
        assert hs.hits >= 4, f"{hs.hits} checks: the new app did not get its own 2 retries"
        line = termination_log(tmp_path)
        assert line.startswith("exit 69") and hs.url in line and "HTTP 503" in line, line


def test_on_unhealthy_exit_exits_69_even_when_restarts_are_allowed(init, tmp_path):
    with HealthServer() as hs:
        hs.set(body={"status": "critical"})
        run, log = start(init, tmp_path, restart="always", on_unhealthy="exit",
                         backoff="100ms", health_url=hs.url, health_interval="200ms",
                         health_timeout="300ms", health_retries="2")
        assert run.wait() == 69, run.stderr_text()
        assert len(starts(log)) == 1
        assert app_events_of(log, "term"), "the app was not stopped with SIGTERM"
        line = termination_log(tmp_path)
        assert line.startswith("exit 69") and hs.url in line and "critical" in line, line


def test_max_restarts_0_never_restarts(init, tmp_path):
    run, log = start(init, tmp_path, plan="exit:7,run", restart="always", max_restarts="0",
                     backoff="100ms")
    assert run.wait() == 7, run.stderr_text()
    assert len(starts(log)) == 1


def test_the_budget_window_slides(init, tmp_path):
    # One restart allowed per 250 ms; the app fails every ~300 ms: never out of budget.
    log = tmp_path / "starts"
    run = init([*options(tmp_path, restart="on-failure", max_restarts="1",
                         restart_window="250ms", backoff="50ms"),
                "--", *shell_app(log, "sleep 0.3; exit 1")])
    wait_for(lambda: len(shell_starts(log)) >= 4, 5, "four starts")
    assert run.running(), run.stderr_text()
    assert [c for _, c, _ in shell_starts(log)][:4] == ["0", "1", "2", "3"]


# ---- backoff ----

def gaps(starts_):
    return [round(b[0] - a[0], 3) for a, b in zip(starts_, starts_[1:])]


def test_backoff_doubles_from_min_to_max(init, tmp_path):
    log = tmp_path / "starts"
    run = init([*options(tmp_path, restart="on-failure", max_restarts="5",
                         backoff="100ms:400ms"),
                "--", *shell_app(log, "exit 1")])
    assert run.wait() == 1, run.stderr_text()
    got = gaps(shell_starts(log))
    assert len(got) == 5, got
    for gap, delay in zip(got, [0.1, 0.2, 0.4, 0.4, 0.4]):
        assert delay - 0.01 <= gap <= delay * 1.5 + 0.1, \
            f"gaps {got}, want 100, 200, 400, 400, 400 ms"


def test_backoff_min_alone_is_a_fixed_delay(init, tmp_path):
    log = tmp_path / "starts"
    run = init([*options(tmp_path, restart="on-failure", max_restarts="3", backoff="150ms"),
                "--", *shell_app(log, "exit 1")])
    assert run.wait() == 1, run.stderr_text()
    got = gaps(shell_starts(log))
    assert len(got) == 3, got
    assert all(0.14 <= g <= 0.35 for g in got), f"gaps {got}, want 150 ms each"


def test_backoff_returns_to_min_after_a_run_as_long_as_the_restart_window(init, tmp_path):
    # Starts 0-2 fail at once (delays 100, 200, 400 ms); start 3 runs 1.1 s, longer
    # than the 1 s window, then fails: the delay is 100 ms again, not 800 ms;
    # start 4 fails at once: 200 ms.
    log = tmp_path / "starts"
    script = 'if [ "$n" = 3 ]; then sleep 1.1; echo "$(date +%s.%N) end" >> "$0"; exit 1; fi; ' \
             '[ "$n" -ge 5 ] && exec sleep 30; exit 1'
    run = init([*options(tmp_path, restart="on-failure", max_restarts="20",
                         restart_window="1s", backoff="100ms:3s"),
                "--", "sh", "-c", 'echo "$(date +%s.%N) $RESIL_RESTART_COUNT x" >> "$0"; '
                'n=$RESIL_RESTART_COUNT; ' + script, log])
    wait_for(lambda: len(log.read_text().splitlines()) >= 7 if log.exists() else False, 8,
             "six starts")
    lines = [l.split() for l in log.read_text().splitlines()]
    t = [float(l[0]) for l in lines]
    assert [l[1] for l in lines[:7]] == ["0", "1", "2", "3", "end", "4", "5"], lines
    before = [round(b - a, 3) for a, b in zip(t[:4], t[1:4])]
    assert 0.09 <= before[0] <= 0.3 and 0.19 <= before[1] <= 0.45 and 0.39 <= before[2], before
    after_long_run = t[5] - t[4]
    assert 0.09 <= after_long_run <= 0.5, \
        f"{after_long_run:.3f}s after the long run; want the 100 ms minimum, not 800 ms"
    assert 0.19 <= t[6] - t[5] <= 0.6, f"then {t[6] - t[5]:.3f}s; want 200 ms"
    run.signal(signal.SIGTERM)
    assert run.wait() == 143, run.stderr_text()


# ---- a restart frees the port ----

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("grace, holder_fate", [("300ms", "killed"), ("3s", "exits after 1s")])
def test_restarted_app_binds_the_port_the_old_apps_group_held(init, tmp_path, grace,
                                                               holder_fate):
    log = tmp_path / "app.log"
    port = free_port()
    run = init([*options(tmp_path, restart="on-failure", backoff="100ms", grace=grace),
                "--", *prog("sup_portholder.py"), "--log", log, "--port", port, "--hold", "1"])
    wait_for(lambda: app_events_of(log, "bind"), 8, "the restarted app to bind")
    holder = app_events_of(log, "holder")[0]
    assert holder["bound"], holder
    assert app_events_of(log, "holder-term"), "the old app's group did not get SIGTERM"
    bind = app_events_of(log, "bind")
    assert len(bind) == 1 and bind[0]["ok"], f"restarted app could not bind port {port}: {bind}"
    assert bind[0]["holder_state"] is None, f"the old holder (pid {holder['pid']}) still exists"
    second = starts(log)[1]
    assert (second["count"], second["reason"]) == ("1", "crash")
    waited = second["t"] - app_events_of(log, "holder-term")[0]["t"]
    if holder_fate == "killed":
        assert waited >= 0.25, f"new app {waited:.2f}s after SIGTERM, before the 300 ms grace"
    else:
        assert waited >= 0.95, f"new app {waited:.2f}s after SIGTERM, the holder held 1 s"
        assert waited < 2.5, f"new app {waited:.2f}s after SIGTERM: waited for the 3 s grace"
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr_text()


# ---- stop requests ----

@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_during_backoff_exits_at_once_with_128_plus_it(init, tmp_path, sig, code):
    run, log = start(init, tmp_path, plan="exit:1", restart="on-failure", backoff="10s")
    wait_for(lambda: (read_status(tmp_path) or {}).get("app", {}).get("state") == "backoff", 5,
             "the backoff state")
    sent = time.monotonic()
    run.signal(sig)
    assert run.wait(timeout=3) == code, run.stderr_text()
    assert run.ended_at - sent < 1.0, f"exited {run.ended_at - sent:.2f}s after the signal"
    assert len(starts(log)) == 1
    assert termination_log(tmp_path).startswith(f"exit {code}"), termination_log(tmp_path)


@pytest.mark.parametrize("restart, on_term, code", [
    ("always", "exit0", 0), ("on-failure", "exit1", 1), ("always", "reraise", 143)])
def test_a_stop_request_is_never_followed_by_a_restart(init, tmp_path, restart, on_term, code):
    run, log = start(init, tmp_path, on_term=on_term, restart=restart, backoff="50ms")
    run.signal(signal.SIGTERM)
    assert run.wait() == code, run.stderr_text()
    assert len(starts(log)) == 1
    assert app_events_of(log, "term")


def test_a_stop_request_while_an_unhealthy_app_is_stopped_for_a_restart_ends_it(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, log = start(init, tmp_path, on_term="ignore", restart="always", backoff="50ms",
                         grace="1s", health_url=hs.url, health_interval="200ms",
                         health_timeout="300ms", health_retries="2")
        wait_for(lambda: app_events_of(log, "term"), 5, "the unhealthy app to get SIGTERM")
        sent = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(timeout=5)
        assert len(starts(log)) == 1, "restarted after a stop request"
        assert code in (69, 137, 143), run.stderr_text()
        assert run.ended_at - sent < 2.5


def test_a_stop_request_while_the_old_group_is_waited_for_ends_it(init, tmp_path):
    # The app crashed; its port holder takes 1 s to go: SIGTERM meanwhile.
    log = tmp_path / "app.log"
    run = init([*options(tmp_path, restart="on-failure", backoff="50ms", grace="3s"),
                "--", *prog("sup_portholder.py"), "--log", log, "--port", free_port(),
                "--hold", "1"])
    wait_for(lambda: app_events_of(log, "holder-term"), 8, "the holder to get SIGTERM")
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=5) == 143, run.stderr_text()
    assert run.ended_at - sent < 2.5
    assert len(starts(log)) == 1, "restarted after a stop request"
    assert termination_log(tmp_path).startswith("exit 143"), termination_log(tmp_path)


def test_unhealthy_app_that_outlives_grace_still_exits_69_and_says_both(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, log = start(init, tmp_path, on_term="ignore", restart="no", grace="300ms",
                         health_url=hs.url, health_interval="200ms", health_timeout="300ms",
                         health_retries="2")
        assert run.wait() == 69, run.stderr_text()
        assert app_events_of(log, "term"), "the app did not get SIGTERM"
        line = termination_log(tmp_path)
        assert line.startswith("exit 69"), line
        assert "unhealthy" in line and hs.url in line, line
        assert "grace" in line and "kill" in line, line
        assert not any(e["event"] == "end" for e in app_events(log))


def test_remap_exit_69_turns_an_unhealthy_exit_into_0(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, log = start(init, tmp_path, restart="no", remap_exit="69", health_url=hs.url,
                         health_interval="200ms", health_timeout="300ms", health_retries="2")
        assert run.wait() == 0, run.stderr_text()
        assert "unhealthy" in termination_log(tmp_path)
