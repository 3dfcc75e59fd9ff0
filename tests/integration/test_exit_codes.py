"""Exit codes and the reason line (SPEC §4, §6), and usage errors.

resil-init runs as PID 1 of a fresh PID namespace where the exit code depends
on it (skipped where `unshare --pid` is not permitted); usage errors, which
start nothing, are checked on a plain run.
"""

import json
import signal
import time

import pytest

from helpers import (EXIT_TIMEOUT, base_env, json_lines, prog, read_lines,
                     run_cmd, wait_file, wait_line_in)


def ready_sleep(tmp_path, seconds=30):
    """A shell app that marks itself ready, then is `sleep` with default dispositions."""
    ready = tmp_path / "app.ready"
    return ["sh", "-c", f': > "{ready}"; exec sleep {seconds}'], ready


# ---- the app's own end ----

@pytest.mark.parametrize("status", [0, 3, 125])
def test_exit_status_is_passed_through(init, status):
    run = init(["--", "sh", "-c", f"exit {status}"])
    assert run.wait() == status, run.stderr_text()


@pytest.mark.parametrize("sig, code", [("SEGV", 139), ("KILL", 137), ("ABRT", 134)])
def test_death_by_signal_is_128_plus_the_signal(init, sig, code):
    run = init(["--", "sh", "-c", f"ulimit -c 0; kill -{sig} $$"])
    assert run.wait() == code, run.stderr_text()


@pytest.mark.parametrize("sig, code", [("TERM", 143), ("INT", 130)])
def test_forwarded_stop_signal_to_a_default_disposition_app(init, tmp_path, sig, code):
    cmd, ready = ready_sleep(tmp_path)
    run = init(["--", *cmd])
    wait_file(ready)
    run.signal(getattr(signal, "SIG" + sig))
    assert run.wait() == code, run.stderr_text()


@pytest.mark.parametrize("sig, code", [("TERM", 143), ("INT", 130)])
def test_app_that_reraises_a_forwarded_stop_signal(init, tmp_path, sig, code):
    log, ready = tmp_path / "app.log", tmp_path / "app.ready"
    run = init(["--", *prog("sigrecorder.py"), "--log", log, "--ready", ready,
                "--on-stop", "reraise"])
    wait_file(ready)
    run.signal(getattr(signal, "SIG" + sig))
    assert run.wait() == code, run.stderr_text()
    assert read_lines(log) == [sig]


# ---- -e ----

def test_remap_exit_turns_the_status_into_0(init):
    run = init(["-e", "3", "--", "sh", "-c", "exit 3"])
    assert run.wait() == 0, run.stderr_text()


def test_remap_exit_leaves_other_statuses_alone(init):
    run = init(["-e", "3", "--", "sh", "-c", "exit 4"])
    assert run.wait() == 4, run.stderr_text()


def test_remap_exit_143_turns_a_forwarded_sigterm_death_into_0(init, tmp_path):
    cmd, ready = ready_sleep(tmp_path)
    run = init(["-e", "143", "--", *cmd])
    wait_file(ready)
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.stderr_text()


# ---- grace ----

def test_app_ignoring_sigterm_is_killed_after_grace(init, tmp_path):
    log, ready = tmp_path / "app.log", tmp_path / "app.ready"
    run = init(["--grace", "1s", "--", *prog("sigrecorder.py"), "--log", log, "--ready", ready,
                "--on-stop", "ignore"])
    wait_file(ready)
    t0 = time.monotonic()
    run.signal(signal.SIGTERM)
    wait_line_in(log, "TERM")
    code = run.wait(timeout=EXIT_TIMEOUT)
    took = time.monotonic() - t0
    assert code == 137, run.stderr_text()
    assert 0.9 <= took <= 2.0, f"exited {took:.2f}s after SIGTERM with --grace 1s"
    assert "grace" in run.reason_line(), run.stderr_text()


# ---- exec failures ----

def test_command_not_found_is_127_with_a_reason_naming_it(init):
    run = init(["--", "resil-test-no-such-command"])
    assert run.wait() == 127, run.stderr_text()
    assert "resil-test-no-such-command" in run.reason_line()


def test_missing_path_is_127(init, tmp_path):
    missing = tmp_path / "nope" / "app"
    run = init(["--", missing])
    assert run.wait() == 127, run.stderr_text()
    assert str(missing) in run.stderr_text()


def test_non_executable_file_is_126(init, tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    run = init(["--", script])
    assert run.wait() == 126, run.stderr_text()
    assert str(script) in run.reason_line()


# ---- usage errors: nothing is started ----

def assert_usage_error(result, marker, names):
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert result.returncode == 2, result
    assert len(lines) == 1, result.stderr
    assert names in lines[0], result.stderr
    assert not marker.exists(), "the app ran despite the usage error"


def test_unknown_option_is_a_usage_error_and_starts_nothing(tmp_path):
    marker = tmp_path / "ran"
    result = run_cmd(["--bogus", "--", "touch", marker])
    assert_usage_error(result, marker, "--bogus")


def test_bad_duration_is_a_usage_error_and_starts_nothing(tmp_path):
    marker = tmp_path / "ran"
    result = run_cmd(["--grace", "abc", "--", "touch", marker])
    assert_usage_error(result, marker, "grace")


@pytest.mark.parametrize("url", ["http://[zz]/health", "http://127.0.0.1:99999/health",
                                 "ftp://127.0.0.1/health"])
def test_unusable_health_url_is_a_usage_error_and_starts_nothing(tmp_path, url):
    marker = tmp_path / "ran"
    result = run_cmd(["--health-url", url, "--", "touch", marker])
    assert_usage_error(result, marker, "--health-url")


def test_bad_value_from_the_environment_is_a_usage_error(tmp_path):
    marker = tmp_path / "ran"
    result = run_cmd(["--", "touch", marker], env=base_env({"RESIL_GRACE": "abc"}))
    assert_usage_error(result, marker, "RESIL_GRACE")


def test_unknown_resil_environment_variable_is_ignored(tmp_path):
    marker = tmp_path / "ran"
    result = run_cmd(["--", "touch", marker], env=base_env({"RESIL_FOO": "bar"}))
    assert result.returncode == 0, result
    assert marker.exists()


def test_no_command_is_a_usage_error():
    result = run_cmd([])
    assert result.returncode == 2, result
    assert len([l for l in result.stderr.splitlines() if l.strip()]) == 1, result.stderr


# ---- the reason line ----

def test_reason_line_goes_to_the_termination_log(init, tmp_path):
    tlog = tmp_path / "termination-log"
    run = init(["--termination-log", tlog, "--", "sh", "-c", "exit 3"])
    assert run.wait() == 3, run.stderr_text()
    text = tlog.read_text()
    assert "exit 3" in text
    assert len(text.encode()) < 4096
    assert len(text.strip().splitlines()) == 1, text


def test_reason_line_is_written_to_stderr_at_every_log_level(init):
    run = init(["--log-level", "error", "--", "sh", "-c", "exit 0"])
    assert run.wait() == 0, run.stderr_text()
    assert "exit 0" in run.reason_line()


def test_termination_log_of_a_very_long_command_stays_under_4096_bytes(init, tmp_path):
    tlog = tmp_path / "termination-log"
    # A missing command whose path is long (but under PATH_MAX): the reason
    # line names it, and must be cut to fit.
    long_cmd = str(tmp_path / "/".join(["d" * 200] * 18) / "app")
    assert 3600 < len(long_cmd) < 4000
    run = init(["--termination-log", tlog, "--", long_cmd])
    assert run.wait() == 127, run.stderr_text()[:500]
    data = tlog.read_bytes()
    assert 0 < len(data) < 4096
    assert data.startswith(b"exit 127")


def test_json_log_format_makes_every_stderr_line_a_json_object(init, tmp_path):
    cmd, ready = ready_sleep(tmp_path)
    run = init(["--log-format", "json", "-v", "--", *cmd])
    wait_file(ready)
    run.signal(signal.SIGUSR1)  # forwarded: sleep dies of it, more log lines
    assert run.wait() == 128 + signal.SIGUSR1, run.stderr_text()
    lines = [l for l in run.stderr_text().splitlines() if l.strip()]
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert {"ts", "level", "msg"} <= obj.keys(), line
    assert "exit 138" in json.loads(lines[-1])["msg"]


def test_json_log_format_applies_to_usage_errors(tmp_path):
    marker = tmp_path / "ran"
    result = run_cmd(["--log-format", "json", "--grace", "abc", "--", "touch", marker])
    assert result.returncode == 2, result
    (obj,) = json_lines(result.stderr)
    assert {"ts", "level", "msg"} <= obj.keys()
    assert not marker.exists()
