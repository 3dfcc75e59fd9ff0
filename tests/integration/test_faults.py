"""Fault tests: resil-init in an environment that fails under it (issue 13).

fork() and pipe2() failing (RLIMIT_NPROC as an unprivileged user, RLIMIT_NOFILE)
at the first start and at a restart; every descriptor limit from 3 up; a full
and a read-only state directory; no /proc; stderr a pipe nobody reads; a
termination log that is a directory or a FIFO. Whatever fails, resil-init ends
in bounded time with an exit code that says so (70 when it is resil-init's own
failure) and one line naming what failed; the app's own outcome is reported
unchanged when the fault is only in a side channel (status.json, its log).

Every test has a hard deadline; mounts are the test's own and are unmounted.
"""

import errno
import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (BIN, EXIT_TIMEOUT, START_TIMEOUT, app_events_of, base_env, prog,
                     read_lines, require_bin, starts, terms, wait_for, wait_file)
from hostile import (as_user, fdinfo_flags, fill, hard_deadline, open_fds, require_root,
                     scratch_uid, shared_dir, skip_if_sanitized_without_proc, tmpfs,
                     without_leak_check)

_deadline = hard_deadline(60)

FORK_FAILED = os.strerror(errno.EAGAIN)
# EMFILE in glibc's words (the dynamic build) or musl's (the static one).
NO_FDS_WORDS = (os.strerror(errno.EMFILE), "No file descriptors available")


def says_no_fds(text):
    return any(w in text for w in NO_FDS_WORDS)


def app(log, plan="run", on_term="exit0"):
    return [*prog("sup_app.py"), "--log", str(log), "--plan", plan, "--on-term", on_term]


def user_env(uid):
    env = without_leak_check(base_env())
    env["HOME"] = "/"
    return env


# ---- fork and pipe2 failing ----

def test_fork_failure_at_first_start_exits_70(init):
    require_root()
    uid = scratch_uid()
    state = shared_dir(uid)
    run = init(["--state-dir", state, "--grace", "1s", "--", "true"], pid1=False,
               via=as_user(uid, "prlimit", "--nproc=1"), env=user_env(uid))
    assert run.wait(5) == 70, run.stderr_text()
    reason = run.reason_line()
    assert "exit 70" in reason and "fork" in reason and FORK_FAILED in reason, reason


def test_a_start_needs_no_descriptor_of_its_own(init, tmp_path):
    """The app is started with vfork (no exec-error pipe): the lowest descriptor
    limit at which resil-init can set up also lets it start the app; below it,
    the failure is the set-up's, named, exit 70 (found by trying)."""
    require_bin()
    for limit in range(6, 16):
        run = init(["--state-dir", tmp_path / f"s{limit}", "--grace", "1s", "--", "true"],
                   pid1=False, via=["prlimit", f"--nofile={limit}"])
        code = run.wait(5)
        if code == 0:
            break
        assert code == 70, (limit, run.stderr_text())
        reason = run.reason_line()
        assert says_no_fds(reason) and "fork" not in reason, reason
    assert code == 0, "no descriptor limit up to 15 let resil-init run `true`"


# Below 4 the dynamic loader itself cannot open libcurl.
@pytest.mark.parametrize("limit", range(4, 14))
def test_every_descriptor_limit_ends_in_bounded_time(init, tmp_path, limit):
    run = init(["--state-dir", tmp_path / "state", "--grace", "1s", "--", "true"], pid1=False,
               via=["prlimit", f"--nofile={limit}"])
    code = run.wait(5)
    assert code in (0, 70), (code, run.stderr_text())
    if code == 70:
        reason = run.reason_line()
        assert "exit 70" in reason and says_no_fds(reason), reason


def _restart_run(init, tmp_path, uid):
    d = shared_dir(uid)
    log = d / "app.log"
    run = init(["--state-dir", d / "state", "--restart", "always", "--backoff", "100ms",
                "--grace", "1s", "--", *app(log, plan="exit:0@0.5,run")], pid1=False,
               via=as_user(uid), env=user_env(uid))
    wait_for(lambda: starts(log), START_TIMEOUT, "the first start")
    return run, log


def test_fork_failure_at_restart_exits_70(init, tmp_path):
    require_root()
    uid = scratch_uid()
    run, log = _restart_run(init, tmp_path, uid)
    # As the same user: lowering another process's limit needs no capability then.
    subprocess.run(as_user(uid, "prlimit", "--pid", str(run.pid), "--nproc=1"), check=True,
                   timeout=5)
    assert run.wait(5) == 70, run.stderr_text()
    reason = run.reason_line()
    assert "fork" in reason and FORK_FAILED in reason, reason
    assert len(starts(log)) == 1


def test_no_descriptor_left_at_restart_still_restarts_and_stops(init, tmp_path):
    """Out of descriptors before a restart: the backoff timer is timed by the
    loop's own wait, the app is started again (vfork needs no descriptor), and
    a stop still ends resil-init in bounded time."""
    require_root()
    uid = scratch_uid()
    run, log = _restart_run(init, tmp_path, uid)
    subprocess.run(as_user(uid, "prlimit", "--pid", str(run.pid),
                           f"--nofile={open_fds(run.pid)}"), check=True, timeout=5)
    wait_for(lambda: len(starts(log)) >= 2, START_TIMEOUT, "the restart")
    run.signal(signal.SIGTERM)
    assert run.wait(5) in (0, 143), run.stderr_text()


# ---- the state directory: full, read-only ----

def _state_fault_run(init, tmp_path, state):
    log = tmp_path / "app.log"
    run = init(["--state-dir", state, "--grace", "1s", "--", *app(log, plan="exit:3@0.3")],
               pid1=False)
    assert run.wait(EXIT_TIMEOUT) == 3, run.stderr_text()
    return run


def test_full_state_dir(init, tmp_path):
    with tmpfs(tmp_path / "full", size="16k") as state:
        fill(state)
        before = set(os.listdir(state))
        run = _state_fault_run(init, tmp_path, state)
        assert set(os.listdir(state)) == before, "a temp file was left in the full state dir"
    warned = [l for l in run.stderr_lines() if "status.json" in l and "warn" in l]
    assert warned and os.strerror(errno.ENOSPC) in warned[0], run.stderr_text()
    assert len(warned) <= 2, f"one warning per breakage, not per write: {warned}"


def test_read_only_state_dir(init, tmp_path):
    with tmpfs(tmp_path / "ro", size="16k", ro=True) as state:
        run = _state_fault_run(init, tmp_path, state)
        assert os.listdir(state) == []
    warned = [l for l in run.stderr_lines() if "warn" in l and str(state) in l]
    assert warned and os.strerror(errno.EROFS) in warned[0], run.stderr_text()


# ---- no /proc ----

NO_PROC = 'umount -l /proc && exec "$@"'


def test_no_proc_as_pid1(init, tmp_path):
    require_root()
    skip_if_sanitized_without_proc()
    d = tmp_path / "left"
    d.mkdir()
    via = ["unshare", "--pid", "--fork", "--kill-child", "-m", "sh", "-c", NO_PROC, "sh"]
    run = init(["--grace", "1s", "--state-dir", tmp_path / "state", "--",
                *prog("detacher.py"), d], pid1=False, via=via)
    left = int(wait_file(d / "left.pid").read_text())  # its pid inside the namespace
    t0 = time.monotonic()
    assert run.wait(1 + 5) == 0, run.stderr_text()
    assert time.monotonic() - t0 < 1 + 3
    assert left > 1


def test_no_proc_as_subreaper_exits_within_grace_and_says_so(init, tmp_path):
    require_root()
    skip_if_sanitized_without_proc()
    d = tmp_path / "left"
    d.mkdir()
    via = ["unshare", "-m", "sh", "-c", NO_PROC, "sh"]
    run = init(["--grace", "1s", "--state-dir", tmp_path / "state", "--",
                *prog("detacher.py"), d], pid1=False, via=via)
    left = int(wait_file(d / "left.pid").read_text())
    try:
        t0 = time.monotonic()
        code = run.wait(2 * 1 + 4)
        took = time.monotonic() - t0
        text = run.stderr_text()
        assert code == 0, text
        assert took < 2 * 1 + 2, f"took {took:.1f}s with a 1s grace"
        assert "/proc" in text, f"nothing says /proc was missing: {text!r}"
        assert "sending SIGKILL" not in text or "cannot" in text, text
    finally:
        try:
            os.kill(left, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- stderr a pipe nobody reads ----

def _full_pipe():
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)  # what the app inherits must stay as it was
    return r, w


def _drain(r):
    os.set_blocking(r, False)
    data = b""
    try:
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    return data


def test_full_stderr_pipe_does_not_block_the_loop(init, tmp_path):
    r, w = _full_pipe()
    log = tmp_path / "app.log"
    term = tmp_path / "termination-log"
    try:
        run = init(["--grace", "2s", "--termination-log", term, "--state-dir", tmp_path / "s",
                    "-v", "-v", "--", *app(log)], pid1=False, stderr=w)
        os.close(w)
        w = None
        wait_for(lambda: starts(log), START_TIMEOUT, "the app to start")
        app_pid = starts(log)[0]["pid"]
        assert not fdinfo_flags(app_pid, 2) & os.O_NONBLOCK, \
            "the app's stderr (shared with resil-init) was made non-blocking"
        run.signal(signal.SIGWINCH)
        run.signal(signal.SIGTERM)
        wait_for(lambda: terms(log), 5, "SIGTERM forwarded while stderr is full")
        assert run.wait(EXIT_TIMEOUT) == 0
        assert "stopped by SIGTERM" in term.read_text()
    finally:
        if w is not None:
            os.close(w)
        os.close(r)


def test_dropped_log_lines_are_counted_once_stderr_drains(init, tmp_path):
    r, w = _full_pipe()
    log = tmp_path / "app.log"
    try:
        run = init(["--grace", "2s", "--state-dir", tmp_path / "s", "-v", "-v", "--",
                    *app(log)], pid1=False, stderr=w)
        os.close(w)
        w = None
        wait_for(lambda: starts(log), START_TIMEOUT, "the app to start")
        for _ in range(3):
            run.signal(signal.SIGWINCH)  # each one a debug line that cannot be written
        time.sleep(0.3)
        _drain(r)
        run.signal(signal.SIGTERM)
        assert run.wait(EXIT_TIMEOUT) == 0
        text = _drain(r).decode(errors="replace")
    finally:
        if w is not None:
            os.close(w)
        os.close(r)
    dropped = [l for l in text.splitlines() if "dropped" in l]
    assert dropped, text
    assert text.splitlines()[-1].startswith("resil-init["), text
    assert "exit 0" in text.splitlines()[-1]


# ---- the termination log is not a plain file ----

def test_termination_log_is_a_directory(init, tmp_path):
    d = tmp_path / "term.d"
    d.mkdir()
    log = tmp_path / "app.log"
    run = init(["--termination-log", d, "--state-dir", tmp_path / "s", "--",
                *app(log, plan="exit:4")], pid1=False)
    assert run.wait(EXIT_TIMEOUT) == 4, run.stderr_text()
    assert os.listdir(d) == []
    assert "exit 4" in run.reason_line()


@pytest.mark.parametrize("reader", [False, True], ids=["no reader", "reader"])
def test_termination_log_is_a_fifo(init, tmp_path, reader):
    fifo = tmp_path / "term.fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK) if reader else None
    log = tmp_path / "app.log"
    try:
        run = init(["--termination-log", fifo, "--state-dir", tmp_path / "s", "--",
                    *app(log, plan="exit:4")], pid1=False)
        assert run.wait(EXIT_TIMEOUT) == 4, run.stderr_text()
        if reader:
            got = os.read(rfd, 8192).decode()
            assert got.startswith("exit 4") and got.endswith("\n"), got
    finally:
        if rfd is not None:
            os.close(rfd)


def test_termination_log_fifo_full(init, tmp_path):
    fifo = tmp_path / "term.fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    wfd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            os.write(wfd, b"x" * 4096)
    except BlockingIOError:
        pass
    log = tmp_path / "app.log"
    try:
        run = init(["--termination-log", fifo, "--state-dir", tmp_path / "s", "--",
                    *app(log, plan="exit:4")], pid1=False)
        assert run.wait(EXIT_TIMEOUT) == 4, run.stderr_text()
    finally:
        os.close(wfd)
        os.close(rfd)
