"""--stop-delay and the readiness / liveness probes (SPEC 8): draining before a
stop, a second SIGTERM ending the delay, signals forwarded meanwhile, no
restart after an exit during it, --grace counted after it; `probe`, `probe
--ready` and `probe --live` in every state of the app.

resil-init runs as a subreaper here (see test_status_states: probe checks the
pid in status.json, which as PID 1 would be 1)."""

import signal
import time

import pytest

from healthserver import HealthServer
from helpers import children_of, proc_stat, prog, run_cmd, starts, terms, wait_for
from test_status_states import read_file, start, wait_state


def probes(state):
    """(probe, probe --ready, probe --live) exit codes."""
    return tuple(run_cmd(["probe", *flag, "--state-dir", state]).returncode
                 for flag in ([], ["--ready"], ["--live"]))


def test_sigterm_is_forwarded_after_the_delay_and_draining_is_not_ready(init, tmp_path):
    run, state, log = start(init, tmp_path, stop_delay="1s")
    wait_state(state, "running")
    assert probes(state) == (0, 0, 0)
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    wait_state(state, "draining")
    # Draining: the app still runs and serves, but takes no new traffic.
    assert probes(state) == (0, 1, 0)
    assert terms(log) == []
    term = wait_for(lambda: terms(log), 5, "the app to get SIGTERM")[0]
    waited = term["t"] - sent
    assert 0.95 <= waited < 2.0, f"SIGTERM forwarded {waited:.3f}s after it came, not 1s"
    assert run.wait() == 0, run.stderr_text()
    assert "stopped by SIGTERM" in run.reason_line()


def test_a_second_sigterm_ends_the_delay_at_once(init, tmp_path):
    run, state, log = start(init, tmp_path, stop_delay="30s")
    wait_state(state, "running")
    run.signal(signal.SIGTERM)
    wait_state(state, "draining")
    time.sleep(0.2)
    assert terms(log) == []
    second = time.monotonic()
    run.signal(signal.SIGTERM)
    term = wait_for(lambda: terms(log), 5, "the app to get SIGTERM")[0]
    assert term["t"] - second < 0.5
    assert run.wait() == 0, run.stderr_text()


def test_sigint_drains_too_and_other_signals_are_forwarded_meanwhile(init, tmp_path):
    log, ready = tmp_path / "signals.log", tmp_path / "ready"
    state = tmp_path / "state"
    run = init(["--stop-delay", "1s", "--state-dir", state, "--",
                *prog("sigrecorder.py"), "--log", log, "--ready", ready], pid1=False)
    wait_for(ready.exists, 10, "the app to be ready")
    run.signal(signal.SIGINT)
    wait_state(state, "draining")
    sent = time.monotonic()
    run.signal(signal.SIGUSR1)
    run.signal(signal.SIGHUP)
    wait_for(lambda: log.exists() and {"USR1", "HUP"} <= set(log.read_text().split()), 2,
             "USR1 and HUP to reach the app during the delay")
    assert time.monotonic() - sent < 0.5
    assert "INT" not in log.read_text().split()
    assert run.wait() == 0, run.stderr_text()
    assert log.read_text().split()[-1] == "INT"


def test_zombies_are_reaped_during_the_delay(init, tmp_path):
    state = tmp_path / "state"
    # The app leaves a zombie child every 50 ms; resil-init, as subreaper, must
    # reap each as it is reparented, draining or not.
    script = ("import os, time\n"
              "while True:\n"
              "    if os.fork() == 0:\n"
              "        if os.fork() == 0:\n"
              "            os._exit(0)\n"
              "        os._exit(0)\n"
              "    os.wait()\n"
              "    time.sleep(0.05)\n")
    run = init(["--stop-delay", "1500ms", "--state-dir", state, "--", "python3", "-c", script],
               pid1=False)
    wait_state(state, "running")
    run.signal(signal.SIGTERM)
    wait_state(state, "draining")
    time.sleep(0.6)

    def zombies():
        out = []
        for pid in children_of(run.pid):
            st = proc_stat(pid)
            if st and st[0] == "Z":
                out.append(pid)
        return out
    # A zombie may exist for an instant before its SIGCHLD is handled.
    wait_for(lambda: not zombies(), 1, "no zombie child of resil-init")
    assert read_file(state)["app"]["state"] == "draining"
    run.wait()


def test_no_restart_when_the_app_exits_during_the_delay(init, tmp_path):
    run, state, log = start(init, tmp_path, plan="exit:3@1", restart="always",
                            backoff="100ms", stop_delay="10s")
    run.signal(signal.SIGTERM)
    wait_state(state, "draining")
    assert run.wait() == 3, run.stderr_text()
    assert len(starts(log)) == 1
    assert terms(log) == []
    assert "during the --stop-delay" in run.reason_line(), run.reason_line()


def test_grace_starts_after_the_delay(init, tmp_path):
    run, state, log = start(init, tmp_path, on_term="ignore", stop_delay="1s", grace="1s")
    wait_state(state, "running")
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait() == 137, run.stderr_text()
    took = time.monotonic() - sent
    term = terms(log)[0]
    assert term["t"] - sent >= 0.95
    assert 1.9 <= took < 3.0, f"killed {took:.2f}s after SIGTERM, not delay + grace = 2s"


# ---- probe, probe --ready, probe --live in every state ----

def test_probes_while_starting_healthy_and_after_a_failed_check(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, state, log = start(init, tmp_path, health_url=hs.url, health_interval="200ms",
                                health_retries="1000")
        wait_state(state, "starting")
        # Starting: the app runs, but its first check has not passed.
        assert probes(state) == (0, 1, 0)
        hs.set(status=200)
        wait_state(state, "running",
                   cond=lambda d: d["health"]["status"] == "healthy"
                   and d["health"]["consecutive_failures"] == 0)
        assert probes(state) == (0, 0, 0)
        hs.set(status=503)
        wait_state(state, "running", cond=lambda d: d["health"]["consecutive_failures"] >= 1)
        # Its last check failed, it is not yet unhealthy: not ready, still alive.
        assert probes(state) == (0, 1, 0)


def test_probes_while_unhealthy_stopping_backoff_and_exited(init, tmp_path):
    for sub in "usb":
        (tmp_path / sub).mkdir()
    with HealthServer() as hs:
        hs.set(status=503)
        # The start period lets the app (a Python program) start before the
        # failing checks count.
        run, state, log = start(init, tmp_path / "u", on_term="ignore", health_url=hs.url,
                                health_interval="200ms", health_retries="1", grace="3s",
                                health_start_period="1s")
        wait_state(state, "unhealthy", timeout=10)
        assert probes(state) == (1, 1, 0)
    run, state, log = start(init, tmp_path / "s", on_term="ignore", grace="5s")
    wait_state(state, "running")
    run.signal(signal.SIGTERM)
    wait_state(state, "stopping")
    assert probes(state) == (1, 1, 0)
    run, state, log = start(init, tmp_path / "b", plan="exit:1", restart="on-failure",
                            backoff="10s")
    wait_state(state, "backoff")
    # Being restarted: not ready, but alive, so a platform does not kill the container.
    assert probes(state) == (1, 1, 0)
    run.signal(signal.SIGTERM)
    run.wait()
    assert read_file(state)["app"]["state"] == "exited"
    assert probes(state) == (1, 1, 1)


def test_live_fails_once_resil_init_is_gone(init, tmp_path):
    run, state, log = start(init, tmp_path)
    wait_state(state, "running")
    run.signal(signal.SIGKILL)
    run.wait()
    assert read_file(state)["app"]["state"] == "running"  # stale
    assert probes(state) == (1, 1, 1)


def test_ready_and_live_exclude_each_other(tmp_path):
    r = run_cmd(["probe", "--ready", "--live", "--state-dir", tmp_path])
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr



STOPS_SLOWLY_LEAVING_A_STUBBORN_CHILD = """
import os, signal, sys, time
def on_term(sig, frame):
    if os.fork() == 0:
        os.setsid()  # out of the app's group: a leftover, not the app
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(30)
        os._exit(0)
    time.sleep(0.6)
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("pid1", [True, False], ids=["pid1", "subreaper"])
def test_the_whole_stop_fits_in_one_grace_budget(init, tmp_path, pid1):
    # The app takes 0.6 s of its 1 s grace and leaves a child that ignores
    # SIGTERM: that child is killed when the one budget runs out, at 1 s, not
    # after a second grace of its own.
    ready = tmp_path / "ready"
    run = init(["--grace", "1s", "--", "python3", "-c", STOPS_SLOWLY_LEAVING_A_STUBBORN_CHILD,
                ready], pid1=pid1)
    wait_for(ready.exists, 10, "the app to be ready")
    sent = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr_text()
    took = time.monotonic() - sent
    assert 0.9 <= took < 1.45, f"the stop took {took:.2f}s with --grace 1s"
