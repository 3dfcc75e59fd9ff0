"""control.sock and `resil-init restart` (SPEC 9): a graceful restart on
command, answered once the new app runs, without backoff and outside
--max-restarts; refused to other users, to a resil-init that is stopping, and
failing cleanly when nothing listens."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from helpers import BIN, alive, base_env, run_cmd, wait_for
from listenlib import listen_app, starts, wait_starts


def restart(state, **kw):
    return run_cmd(["restart", "--state-dir", state], timeout=30, **kw)


def test_restart_answers_once_the_new_app_runs(init, tmp_path):
    log, state = tmp_path / "starts.jsonl", tmp_path / "state"
    run = init(["--state-dir", state, "--restart", "on-failure", "--backoff", "100ms",
                "--max-restarts", "1", "--", *listen_app(
        log, "--port", "0")], pid1=False)
    first = wait_starts(log, 1, run=run)[0]
    sock = state / "control.sock"
    assert stat.S_ISSOCK(os.stat(sock).st_mode) and stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    for n in range(2, 5):
        began = time.monotonic()
        r = restart(state)
        took = time.monotonic() - began
        assert r.returncode == 0, r.stderr
        # The new app was started before the answer came: no backoff in between.
        new_pid = int(r.stdout.split("app pid ")[1])
        assert alive(new_pid)
        assert json.loads((state / "status.json").read_text())["app"]["pid"] == new_pid
        rec = wait_starts(log, n, run=run)
        assert rec[-1]["reason"] == "manual" and rec[-1]["pid"] == new_pid
        assert took < 3.0, f"restart took {took:.2f}s"
    # Three manual restarts did not spend --max-restarts 1: a crash still restarts.
    os.kill(starts(log)[-1]["pid"], signal.SIGKILL)
    wait_starts(log, 5, timeout=15, run=run)
    assert starts(log)[-1]["reason"] == "crash"
    assert first["pid"] != starts(log)[-1]["pid"]
    run.signal(signal.SIGTERM)
    assert run.wait() == 0
    assert not sock.exists()  # removed at exit


def test_restart_is_graceful(init, tmp_path):
    # The old app gets SIGTERM and --grace; one that ignores it is killed after.
    log, state = tmp_path / "starts.jsonl", tmp_path / "state"
    run = init(["--state-dir", state, "--grace", "1s", "--", *listen_app(
        log, "--port", "0", "--on-term", "ignore")], pid1=False)
    wait_starts(log, 1, run=run)
    began = time.monotonic()
    r = restart(state)
    assert r.returncode == 0, r.stderr
    assert 0.9 <= time.monotonic() - began < 3
    wait_starts(log, 2, run=run)
    assert "SIGKILL" in run.stderr_text()


def test_restart_is_refused_to_another_uid(init, tmp_path):
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to run the client as another uid")
    # A state dir others can reach (pytest's own tmp dirs are 0700).
    state = Path(tempfile.mkdtemp(prefix="resil-ctl-"))
    os.chmod(state, 0o755)
    log = tmp_path / "starts.jsonl"
    run = init(["--state-dir", state, "--", *listen_app(log, "--port", "0")], pid1=False)
    wait_starts(log, 1, run=run)
    nobody = {"preexec_fn": lambda: os.setuid(65534)}
    r = restart(state, **nobody)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr  # 0600: cannot connect
    # Even through an open socket file, the peer's uid decides.
    os.chmod(state / "control.sock", 0o666)
    r = restart(state, **nobody)
    assert r.returncode == 1, r.stderr
    assert "permission denied" in r.stderr and "65534" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1
    assert len(starts(log)) == 1
    r = run_cmd(["metrics", "--state-dir", state], **nobody)
    assert r.returncode == 1 and "permission denied" in r.stderr
    run.signal(signal.SIGTERM)
    run.wait()
    shutil.rmtree(state, ignore_errors=True)


def test_restart_fails_cleanly_when_nothing_runs(tmp_path):
    r = restart(tmp_path)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "cannot reach resil-init" in r.stderr, r.stderr
    # A socket file left by a resil-init that is gone: refused, same answer.
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "control.sock"))
    s.close()
    r = restart(tmp_path)
    assert r.returncode == 1 and "cannot reach resil-init" in r.stderr, r.stderr


def test_restart_fails_while_resil_init_is_stopping(init, tmp_path):
    log, state = tmp_path / "starts.jsonl", tmp_path / "state"
    run = init(["--state-dir", state, "--stop-delay", "5s", "--", *listen_app(
        log, "--port", "0")], pid1=False)
    wait_starts(log, 1, run=run)
    run.signal(signal.SIGTERM)
    wait_for(lambda: b'"draining"' in (state / "status.json").read_bytes(), 5, "draining")
    r = restart(state)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "stopping" in r.stderr or "draining" in r.stderr
    assert len(starts(log)) == 1


def test_a_restart_waiting_for_its_answer_learns_that_resil_init_stops(init, tmp_path):
    log, state = tmp_path / "starts.jsonl", tmp_path / "state"
    run = init(["--state-dir", state, "--grace", "10s", "--", *listen_app(
        log, "--port", "0", "--on-term", "ignore")], pid1=False)
    wait_starts(log, 1, run=run)
    client = subprocess.Popen([str(BIN), "restart", "--state-dir", str(state)], env=base_env(),
                              stderr=subprocess.PIPE, text=True)
    wait_for(lambda: b'"stopping"' in (state / "status.json").read_bytes(), 5, "stopping")
    run.signal(signal.SIGTERM)
    _, err = client.communicate(timeout=5)  # at once, not after the 10 s grace
    assert client.returncode == 1, err
    assert "stopping" in err
    os.kill(starts(log)[0]["pid"], signal.SIGKILL)
    run.wait()


def test_unknown_arguments_are_usage_errors(tmp_path):
    r = run_cmd(["restart", "--now"])
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr


def test_restart_skips_the_backoff_even_while_backing_off(init, tmp_path):
    log, state = tmp_path / "starts.jsonl", tmp_path / "state"
    run = init(["--state-dir", state, "--restart", "on-failure", "--backoff", "10s", "--",
                *listen_app(log, "--port", "0")], pid1=False)
    wait_starts(log, 1, run=run)
    began = time.monotonic()
    assert restart(state).returncode == 0
    assert time.monotonic() - began < 2.5
    # Crashed and waiting out a 10 s backoff: a restart now starts it now.
    os.kill(wait_starts(log, 2, run=run)[1]["pid"], signal.SIGKILL)
    wait_for(lambda: b'"backoff"' in (state / "status.json").read_bytes(), 5, "backoff")
    began = time.monotonic()
    r = restart(state)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - began < 2.5
    assert wait_starts(log, 3, run=run)[2]["reason"] == "manual"
