"""Regression tests for the bugs found by attacking resil-init (issue 13): each
test sets up what a hostile environment did and holds resil-init to what a
user of tini or dumb-init expects instead (README "Security").

Every test has a hard deadline, and every wait inside it is bounded: a hang of
resil-init fails the test. Tests needing root (mounts, files of other users,
dropping to another uid) skip without it.
"""

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from fakecgroup import MiB, FakeCgroup
from healthserver import HealthServer
from helpers import (EXIT_TIMEOUT, START_TIMEOUT, TEXT_LOG_LINE, app_events_of, prog,
                     read_lines, run_cmd, starts, wait_for, wait_file)
from hostile import (as_user, hard_deadline, lenient_json, require_root, scratch_uid, shared_dir,
                     strict_json)

_deadline = hard_deadline(60)


def app(log, plan="run", on_term="exit0"):
    return [*prog("sup_app.py"), "--log", str(log), "--plan", plan, "--on-term", on_term]


def wait_start(log, n=1, timeout=START_TIMEOUT, run=None):
    def enough():
        s = starts(log)
        return s if len(s) >= n else None
    try:
        return wait_for(enough, timeout, f"{n} start(s) of the app")
    except AssertionError as e:
        raise AssertionError(f"{e}; stderr: {run.stderr_text() if run else ''!r}") from None


# ---- 2. a "\r" in memory.pressure must not make PID 1 spin ----

CR_PRESSURE = ("some total=12\r avg10=1.00 avg60=0.50 avg300=0.25\n"
               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


@pytest.mark.parametrize("when", ["at start", "while running"])
def test_carriage_return_in_memory_pressure_does_not_hang(init, tmp_path, when):
    cg = FakeCgroup(tmp_path, version=2, psi_some_avg10=1.0)
    if when == "at start":
        cg.write_raw("memory.pressure", CR_PRESSURE)
    log = tmp_path / "app.log"
    run = init([*cg.args, "--memory-interval", "50ms", "--memory-restart", "90%",
                "--state-dir", tmp_path / "state", "--grace", "2s", "--", *app(log)])
    wait_start(log, run=run)
    if when == "while running":
        cg.write_raw("memory.pressure", CR_PRESSURE)
        time.sleep(0.5)  # several samples read it
    run.signal(signal.SIGTERM)
    assert run.wait(EXIT_TIMEOUT) == 0, run.stderr_text()
    assert app_events_of(log, "term"), "the SIGTERM never reached the app"


# ---- 3. status.json's temp file and the state directory ----

def status_app_run(init, tmp_path, args, env=None):
    """A short run that writes status.json at least twice (start, exit)."""
    log = tmp_path / "app.log"
    kw = {"env": env} if env else {}
    run = init([*args, "--", *app(log, plan="exit:0@0.3")], **kw)
    assert run.wait(EXIT_TIMEOUT) == 0, run.stderr_text()
    return run


def test_status_temp_file_symlink_is_not_followed(init, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / ".status.json.tmp").symlink_to(victim)
    status_app_run(init, tmp_path, ["--state-dir", state])
    assert victim.read_text() == "precious\n", "resil-init wrote through a planted symlink"
    doc = strict_json(state / "status.json")
    assert doc["app"]["state"] == "exited"
    assert not (state / "status.json").is_symlink()


def _hostile_dir(tmp_path, how):
    """A state directory resil-init must not trust, and the directory whose
    content would show that it did."""
    d = tmp_path / "state"
    if how == "owned by another user":
        require_root()
        d.mkdir(mode=0o755)
        os.chown(d, 4242, 4242)
        return d, d
    if how == "world-writable":
        d.mkdir()
        os.chmod(d, 0o777)
        return d, d
    if how == "group-writable":
        d.mkdir()
        os.chmod(d, 0o775)
        return d, d
    if how == "a symlink":
        target = tmp_path / "elsewhere"
        target.mkdir(mode=0o755)
        d.symlink_to(target)
        return d, target
    raise ValueError(how)


@pytest.mark.parametrize("how", ["owned by another user", "world-writable", "group-writable",
                                 "a symlink"])
def test_hostile_state_dir_is_not_used(init, tmp_path, how):
    d, content = _hostile_dir(tmp_path, how)
    run = status_app_run(init, tmp_path, ["--state-dir", d])
    assert not (content / "status.json").exists(), \
        f"status.json written into a state dir that is {how}"
    assert not any(content.iterdir()), list(content.iterdir())
    warned = [l for l in run.stderr_lines() if "warn" in l and str(d) in l]
    assert warned, f"no warning naming {d}: {run.stderr_text()!r}"


def test_hostile_tmpdir_fallback_is_not_used(init, tmp_path):
    """Read-only /run, shared /tmp: $TMPDIR/resil-init planted by someone else."""
    require_root()
    uid = scratch_uid()
    tmpdir = shared_dir(uid)
    planted = tmpdir / "resil-init"
    planted.mkdir()
    os.chmod(planted, 0o777)  # root's, writable by all: anyone could plant symlinks
    log = shared_dir(uid) / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIL_")}
    env["TMPDIR"] = str(tmpdir)
    run = init(["--", *app(log, plan="exit:0@0.3")], pid1=False, via=as_user(uid), env=env)
    assert run.wait(EXIT_TIMEOUT) == 0, run.stderr_text()
    assert not any(planted.iterdir()), list(planted.iterdir())
    assert "resil-init" in run.stderr_text() and str(planted) in run.stderr_text(), \
        run.stderr_text()


# ---- 4. a cgroup path longer than PATH_MAX once joined to its mount point ----

def _fake_proc_prefix(tmp_path, cgroup_text, mountinfo_text):
    """A `via` prefix: a private mount namespace in which resil-init's own
    /proc/self/cgroup and /proc/self/mountinfo are the given texts."""
    require_root()
    (tmp_path / "cgroup.txt").write_text(cgroup_text)
    (tmp_path / "mountinfo.txt").write_text(mountinfo_text)
    script = ('mount --bind "$0/cgroup.txt" /proc/$$/cgroup && '
              'mount --bind "$0/mountinfo.txt" /proc/$$/mountinfo && exec "$@"')
    return ["unshare", "-m", "sh", "-c", script, str(tmp_path)]


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_cgroup_path_too_long_for_its_mount_point(init, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=512 * MiB)
    deep = "/" + "a" * 4080  # under PATH_MAX alone, over it after the mount point
    if version == 2:
        cgroup = f"0::{deep}\n"
        mountinfo = f"30 25 0:26 / {cg.path} rw,relatime - cgroup2 cgroup2 rw\n"
    else:
        cgroup = f"4:memory:{deep}\n1:cpu:/\n0::/\n"
        mountinfo = f"34 30 0:31 / {cg.path} rw,relatime - cgroup cgroup rw,memory\n"
    state = tmp_path / "state"
    log = tmp_path / "app.log"
    run = init(["--state-dir", state, "--", *app(log, plan="exit:0@0.3")], pid1=False,
               via=_fake_proc_prefix(tmp_path, cgroup, mountinfo))
    assert run.wait(EXIT_TIMEOUT) == 0, run.stderr_text()
    mem = strict_json(state / "status.json")["memory"]
    # The mount root is an ancestor cgroup: its numbers are not this container's.
    assert mem["limit_bytes"] is None and mem["tier"] == "unknown", mem
    assert "too long" in run.stderr_text(), run.stderr_text()


# ---- 5. a flood of real-time signals must not starve the timers ----

def test_signal_flood_does_not_starve_timers(init, tmp_path):
    log = tmp_path / "app.log"
    with HealthServer() as hs:
        # Real-time signal 40 is forwarded as URG, which the app ignores: each
        # costs resil-init a kill(). A number, not RTMIN: glibc's SIGRTMIN is 34,
        # musl's (the static build) 35, and 34 is one of musl's own.
        run = init(["-r", "40:URG", "--grace", "1s", "--health-url", hs.url,
                    "--health-interval", "100ms", "--", *app(log, on_term="ignore")],
                   pid1=False)
        wait_start(log, run=run)
        assert hs.wait_for_hits(1, timeout=5), "no health check before the flood"
        flooders = [subprocess.Popen([*prog("flooder.py"), str(run.pid),
                                      "40"]) for _ in range(2)]
        try:
            time.sleep(0.3)
            hs.reset_hits()
            time.sleep(1.5)
            hits = hs.hits
            run.signal(signal.SIGTERM)
            t0 = time.monotonic()
            code = run.wait(6)
            took = time.monotonic() - t0
        finally:
            for f in flooders:
                f.kill()
                f.wait(5)
    assert hits >= 3, f"{hits} health checks in 1.5 s of signal flood (interval 100ms)"
    assert code == 137, run.stderr_text()[-2000:]
    assert took < 4, f"the 1s grace took {took:.1f}s to run out during the flood"


# ---- 6. a zombie in the old group must not block the restart ----

@pytest.mark.parametrize("stubborn", [False, True], ids=["zombie", "member-killed-at-grace"])
def test_restart_not_blocked_by_unreaped_zombie_in_old_group(init, tmp_path, stubborn):
    d = tmp_path / "zk"
    d.mkdir()
    run = init(["--restart", "on-failure", "--backoff", "100ms", "--grace", "1s", "--",
                *prog("zombie_keeper.py"), d, *(["--stubborn"] if stubborn else [])])
    try:
        wait_for(lambda: len(read_lines(d / "starts")) >= 2, 1 + 6,
                 "the restart after the first run left a zombie in its group")
    except AssertionError as e:
        raise AssertionError(f"{e}; stderr: {run.stderr_text()!r}") from None
    assert read_lines(d / "starts")[1] == "start 1"
    run.signal(signal.SIGTERM)
    assert run.wait(EXIT_TIMEOUT) in (0, 143), run.stderr_text()


# ---- 7. --max-restarts at the top of its range ----

@pytest.mark.parametrize("value", ["4294967295", "4294967294", "1000000000"])
def test_max_restarts_huge_is_honoured_or_refused(init, tmp_path, value):
    check = run_cmd(["--check-config", "--max-restarts", value, "--", "true"])
    log = tmp_path / "app.log"
    run = init(["--restart", "on-failure", "--max-restarts", value, "--backoff", "100ms", "--",
                *app(log, plan="exit:1,run")], pid1=False)
    if check.returncode == 2:
        # Refused: the same way everywhere, as a usage error naming the option.
        assert "max-restarts" in check.stderr, check.stderr
        assert run.wait(EXIT_TIMEOUT) == 2, run.stderr_text()
        assert "max-restarts" in run.reason_line()
        assert not starts(log)
        return
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["max-restarts"] == int(value)
    wait_start(log, 2, run=run)  # accepted: then restarts happen
    run.signal(signal.SIGTERM)
    assert run.wait(EXIT_TIMEOUT) == 0, run.stderr_text()


def test_max_restarts_huge_from_environment(init, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIL_")}
    env["RESIL_MAX_RESTARTS"] = "4294967295"
    log = tmp_path / "app.log"
    run = init(["--restart", "on-failure", "--backoff", "100ms", "--",
                *app(log, plan="exit:1,run")], pid1=False, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and run.running() and len(starts(log)) < 2:
        time.sleep(0.02)
    if not run.running():
        assert run.wait(1) == 2 and "MAX_RESTARTS" in run.reason_line(), run.stderr_text()
        return
    assert len(starts(log)) >= 2, f"never restarted: {run.stderr_text()!r}"


# ---- 8. status.json and JSON logs stay valid UTF-8 ----

@contextlib.contextmanager
def healthy_run(init, tmp_path, body, extra=()):
    """resil-init checking an endpoint that answers 200 with body, once a
    verdict is in status.json: (run, state dir)."""
    state = tmp_path / "state"
    log = tmp_path / "app.log"
    with HealthServer() as hs:
        hs.set(body=body)
        run = init(["--state-dir", state, "--health-url", hs.url, "--health-interval", "100ms",
                    *extra, "--", *app(log)], pid1=False)
        wait_start(log, run=run)  # its SIGTERM handler is in place

        def verdict_published():
            doc = lenient_json(state / "status.json")
            return doc and doc["health"]["last_verdict"] is not None
        wait_for(verdict_published, START_TIMEOUT, "a verdict in status.json")
        yield run, state
        run.signal(signal.SIGTERM)
        assert run.wait(EXIT_TIMEOUT) == 0, run.stderr_text()


def test_verdict_cut_at_a_character_boundary(init, tmp_path):
    verdict = "é" * 40  # 80 bytes: cut at 64
    with healthy_run(init, tmp_path, json.dumps({"status": verdict}).encode(),
                     ["--log-format", "json"]) as (run, state):
        got = strict_json(state / "status.json")["health"]["last_verdict"]
    assert verdict.startswith(got) and len(got) >= 20, got
    for line in run.stderr_bytes().splitlines():
        json.loads(line.decode("utf-8"))  # raises on invalid UTF-8


def test_invalid_utf8_from_the_endpoint_is_replaced(init, tmp_path):
    with healthy_run(init, tmp_path, b'{"status":"ok\xff\xfe\xc3"}',
                     ["--log-format", "json"]) as (run, state):
        got = strict_json(state / "status.json")["health"]["last_verdict"]
    assert got.startswith("ok") and "\ufffd" in got, got
    lines = run.stderr_bytes().splitlines()
    assert any(b"ok" in l and b"verdict" in l for l in lines), lines
    for line in lines:
        json.loads(line.decode("utf-8"))


# ---- 9. `resil-init status` and `probe` on a hostile status.json ----

def _status(cmd, state):
    try:
        return run_cmd([cmd, "--state-dir", state], timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"resil-init {cmd} hung on {state}/status.json") from None


@pytest.mark.parametrize("cmd", ["status", "probe"])
def test_status_file_starting_with_nul(tmp_path, cmd):
    state = tmp_path / "state"
    state.mkdir()
    (state / "status.json").write_bytes(b'\x00{"app": {"state": "running"}}\n')
    r = _status(cmd, state)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "status.json" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["status", "probe"])
def test_status_file_that_is_a_fifo(tmp_path, cmd):
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / "status.json")
    r = _status(cmd, state)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "status.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("cmd", ["status", "probe"])
def test_status_file_that_is_a_symlink(tmp_path, cmd):
    state = tmp_path / "state"
    state.mkdir()
    secret = tmp_path / "secret"
    secret.write_text('{"pid": 1, "app": {"state": "running"}, "SECRET": "hunter2"}\n')
    (state / "status.json").symlink_to(secret)
    r = _status(cmd, state)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "hunter2" not in r.stdout
    assert "status.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ---- credentials in --health-url ----

def test_health_url_credentials_are_redacted(init, tmp_path):
    state = tmp_path / "state"
    term = tmp_path / "termination-log"
    log = tmp_path / "app.log"
    with HealthServer() as hs:
        hs.set(status=503)
        url = hs.url.replace("http://", "http://alice:s3cr3t-pw@")
        check = run_cmd(["--check-config", "--health-url", url, "--", "true"])
        run = init(["--state-dir", state, "--termination-log", term, "--health-url", url,
                    "--health-interval", "100ms", "--health-retries", "2", "-v", "-v",
                    "--", *app(log)], pid1=False)
        snapshots = []

        def exited():
            doc = lenient_json(state / "status.json")
            if doc:
                snapshots.append(json.dumps(doc))
            return not run.running()
        wait_for(exited, START_TIMEOUT, "resil-init to exit 69")
        headers = [r.headers for r in hs.requests]
    assert run.wait(1) == 69, run.stderr_text()
    assert any("Authorization" in h for h in headers), "the credentials must still be sent"
    shown = {"stderr": run.stderr_text(), "termination log": term.read_text(),
             "status.json": (state / "status.json").read_text() + "".join(snapshots),
             "--check-config": check.stdout + check.stderr}
    for where, text in shown.items():
        assert "s3cr3t-pw" not in text, f"the password is shown in {where}: {text!r}"
    assert f"127.0.0.1:{hs.port}/health" in run.reason_line()
    assert f"127.0.0.1:{hs.port}/health" in strict_json(state / "status.json")["health"]["url"]


# ---- control characters from the endpoint in text logs ----

def test_verdict_control_characters_escaped_in_text_log(init, tmp_path):
    forged = "ok\nresil-init[1]: error: exit 0: forged\x1b[2K\r"
    with healthy_run(init, tmp_path, json.dumps({"status": forged}).encode()) as (run, _):
        pass
    data = run.stderr_bytes()
    assert b"\x1b" not in data and b"\r" not in data, data
    lines = data.decode().splitlines()
    assert all(TEXT_LOG_LINE.match(l) for l in lines), lines
    assert not any(l.startswith("resil-init[1]: error: exit 0: forged") for l in lines), lines
    assert any("forged" in l and "health:" in l for l in lines), lines


# ---- an OOM kill during the run, then the app's own exit ----

def test_own_exit_after_oom_kill_in_cgroup_reports_own_status(init, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=512 * MiB, usage=64 * MiB)
    log = tmp_path / "app.log"
    run = init([*cg.args, "--memory-interval", "50ms", "--", *app(log, plan="exit:97@1.0")],
               pid1=False)
    wait_start(log, run=run)
    cg.bump_oom_kill()  # e.g. a worker of the app was OOM-killed; the app then gave up
    assert run.wait(EXIT_TIMEOUT) == 97, run.stderr_text()
    reason = run.reason_line()
    assert reason.split(": ", 2)[-1].startswith("exit 97"), reason
    assert "status 97" in reason and "OOM" in reason, reason
