"""`resil-init status` and `resil-init probe` against a running resil-init
(SPEC §5, §6).

As PID 1 the pid in status.json is 1, which from the host is the host's init;
so the PID-1 checks run status and probe from inside the namespace (the app,
progs/status_app.py, runs them and reports). Subreaper mode is checked from
the host directly.
"""

import json
import os

from helpers import BIN, prog, run_cmd, wait_file


def start_status_app(init, tmp_path, pid1=True):
    state = tmp_path / "state"
    out = tmp_path / "out"
    out.mkdir()
    run = init(["--state-dir", state, "--", *prog("status_app.py"), BIN, state, out], pid1=pid1)
    report = json.loads(wait_file(out / "report.json").read_text())
    return run, state, out, report


def status_of(state):
    r = run_cmd(["status", "--state-dir", state])
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def test_status_inside_the_namespace_while_the_app_runs(init, tmp_path):
    run, state, out, report = start_status_app(init, tmp_path)
    assert report["status_rc"] == 0, report
    doc = json.loads(report["status_stdout"])
    assert doc["pid"] == 1
    assert doc["app"]["state"] == "running"
    assert doc["app"]["pid"] == report["my_pid"]
    assert doc["app"]["emergency"] is False
    assert doc["app"]["restarts"] == 0
    assert isinstance(doc["app"]["restarts"], int)


def test_probe_inside_the_namespace_is_0_while_the_app_runs(init, tmp_path):
    run, state, out, report = start_status_app(init, tmp_path)
    assert report["probe_rc"] == 0, report


def test_state_is_exited_and_probe_is_1_after_resil_init_exits(init, tmp_path):
    run, state, out, report = start_status_app(init, tmp_path)
    (out / "app.exit").touch()
    assert run.wait() == 0, run.stderr_text()
    assert status_of(state)["app"]["state"] == "exited"
    probe = run_cmd(["probe", "--state-dir", state])
    assert probe.returncode == 1, probe


def test_status_and_probe_of_a_subreaper_from_outside(init, tmp_path):
    run, state, out, report = start_status_app(init, tmp_path, pid1=False)
    doc = status_of(state)
    assert doc["pid"] == run.pid
    assert doc["app"]["state"] == "running"
    assert doc["app"]["pid"] == report["my_pid"]
    assert doc["app"]["emergency"] is False
    assert doc["app"]["restarts"] == 0
    assert run_cmd(["probe", "--state-dir", state]).returncode == 0


def test_probe_is_1_once_a_subreaper_has_exited(init, tmp_path):
    run, state, out, report = start_status_app(init, tmp_path, pid1=False)
    (out / "app.exit").touch()
    assert run.wait() == 0, run.stderr_text()
    assert status_of(state)["app"]["state"] == "exited"
    assert run_cmd(["probe", "--state-dir", state]).returncode == 1


def test_status_without_a_state_file_is_1_with_one_line(tmp_path):
    r = run_cmd(["status", "--state-dir", tmp_path / "empty"])
    assert r.returncode == 1, r
    assert r.stdout == ""
    assert len([l for l in r.stderr.splitlines() if l.strip()]) == 1, r.stderr


def test_probe_without_a_state_file_is_1(tmp_path):
    r = run_cmd(["probe", "--state-dir", tmp_path / "empty"])
    assert r.returncode == 1, r


def test_status_and_probe_refuse_a_fifo_at_once(tmp_path):
    """A FIFO where status.json should be (no writer ever comes) must not hang
    a probe: one line, exit 1, well inside the timeout."""
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / "status.json")
    for cmd in ("status", "probe"):
        r = run_cmd([cmd, "--state-dir", state], timeout=10)
        assert r.returncode == 1, r
        assert "not a regular file" in r.stderr, r.stderr
        assert len([l for l in r.stderr.splitlines() if l.strip()]) == 1, r.stderr


def test_status_of_a_file_starting_with_a_nul_byte(tmp_path):
    """Not a state file (resil-init writes JSON text): one line and exit 1,
    like any unreadable state file, never a read before the buffer."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "status.json").write_bytes(b"\0{}")
    r = run_cmd(["status", "--state-dir", state])
    assert r.returncode == 1, r
    assert r.stdout == "", r
    assert len(r.stderr.strip().splitlines()) == 1 and "NUL" in r.stderr, r
