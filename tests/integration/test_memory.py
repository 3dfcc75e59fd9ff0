"""Memory and emergency mode over fake cgroup trees (SPEC §3, the memory part
of §5, §6; README "Memory and emergency mode").

resil-init reads a FakeCgroup directory (v1 and v2 layouts) through
--cgroup-root; the app, progs/mem_envdump.py, appends one JSON line of its
environment per start and then does what its plan says for that start
(indexed by RESIL_RESTART_COUNT). Runs are subreapers (the memory logic does
not depend on being PID 1) except where a test says otherwise. Every wait is
bounded; sampling runs every 100 ms and restarts back off 100 ms.
"""

import json
import signal
import time

import pytest

from fakecgroup import MiB, GiB, FakeCgroup
from helpers import (START_TIMEOUT, base_env, json_lines, prog, read_lines,
                     run_cmd, wait_for)

LIMIT = 512 * MiB
MEM_OPTS = ["--memory-interval", "100ms", "--backoff", "100ms", "--grace", "2s"]
USER_KEYS = ("EMERGENCY_MODE", "DISABLE_WEBSOCKETS", "NODE_OPTIONS", "GOMEMLIMIT", "LOW_MEMORY")

versions = pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])


def pct(p, limit=LIMIT):
    return int(limit * p / 100)


def clean_env(extra=None):
    """base_env() without the variables these tests look at, plus extra."""
    env = base_env()
    for k in USER_KEYS:
        env.pop(k, None)
    env.update(extra or {})
    return env


class App:
    """The mem_envdump.py app of one test, and the state dir of its run."""

    def __init__(self, tmp_path):
        self.out = tmp_path / "starts.jsonl"
        self.sig = tmp_path / "starts.jsonl.sig"
        self.state = tmp_path / "state"

    def cmd(self, plan, variables=()):
        c = [*prog("mem_envdump.py"), "--out", str(self.out), "--plan", plan]
        for v in variables:
            c += ["--var", v]
        return c

    def starts(self):
        try:
            return json_lines(self.out.read_text())
        except FileNotFoundError:
            return []

    def wait_starts(self, n, timeout=START_TIMEOUT, run=None):
        def enough():
            s = self.starts()
            return s if len(s) >= n else None
        try:
            return wait_for(enough, timeout, f"{n} start(s) of the app")
        except AssertionError as e:
            raise AssertionError(f"{e}; starts: {self.starts()!r}; stderr: "
                                 f"{run.stderr_text() if run else ''!r}") from None

    def go(self, count):
        (self.out.parent / f"{self.out.name}.go{count}").touch()

    def signals(self):
        return read_lines(self.sig)

    def status(self):
        try:
            return json.loads((self.state / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wait_status(self, cond, what, timeout=START_TIMEOUT):
        def check():
            doc = self.status()
            return doc if doc is not None and cond(doc) else None
        try:
            return wait_for(check, timeout, what)
        except AssertionError as e:
            raise AssertionError(f"{e}; status: {self.status()!r}") from None

    def wait_running(self, start):
        """Until status.json shows this start's app running: by then resil-init
        has taken its memory baseline for the run (it does so before it
        publishes the state)."""
        return self.wait_status(
            lambda d: d["app"]["pid"] == start["pid"] and d["app"]["state"] == "running",
            f"status.json to show pid {start['pid']} running")


@pytest.fixture
def app(tmp_path):
    return App(tmp_path)


def start(init, app, cg, plan="run", opts=(), env=None, variables=(), pid1=False):
    cg_args = cg.args if isinstance(cg, FakeCgroup) else ["--cgroup-root", str(cg)]
    args = [*cg_args, *MEM_OPTS, "--state-dir", app.state, *opts, "--",
            *app.cmd(plan, variables)]
    return init(args, pid1=pid1, env=clean_env(env))


def stop(run, expect=0):
    """SIGTERM to resil-init; the app records TERM and exits 0."""
    run.signal(signal.SIGTERM)
    rc = run.wait()
    assert rc == expect, run.stderr_text()


def warn_lines(run):
    return [l for l in run.stderr_lines() if ": warn: " in l or '"level":"warn"' in l]


def assert_normal_start(s, reason="start", count="0"):
    assert s["RESIL_EMERGENCY"] == "0", s
    assert "EMERGENCY_MODE" not in s, s
    assert s["RESIL_RESTART_REASON"] == reason, s
    assert s["RESIL_RESTART_COUNT"] == count, s


def assert_emergency_start(s, reason, count):
    assert s["RESIL_EMERGENCY"] == "1", s
    assert s.get("EMERGENCY_MODE") == "true", s
    assert s["RESIL_RESTART_REASON"] == reason, s
    assert s["RESIL_RESTART_COUNT"] == count, s


# ---- tiers at the first start ----

@versions
@pytest.mark.parametrize("percent, tier, emergency", [
    (70, "normal", "0"), (80, "warning", "0"), (90, "critical", "1")])
def test_tier_and_environment_at_the_first_start(init, app, tmp_path, version, percent, tier,
                                                 emergency):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(percent))
    run = start(init, app, cg, plan="exit:0")
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_MEMORY_LIMIT_MB"] == "512"
    assert s["RESIL_MEMORY_TIER"] == tier
    assert s["RESIL_EMERGENCY"] == emergency
    assert s["RESIL_RESTART_COUNT"] == "0"
    assert s["RESIL_RESTART_REASON"] == "start"
    if emergency == "1":
        assert s.get("EMERGENCY_MODE") == "true", s
    else:
        assert "EMERGENCY_MODE" not in s, s


@pytest.mark.parametrize("usage, tier", [
    (384 * MiB - 1, "normal"), (384 * MiB, "warning"),          # 75% of 512 MiB
    (LIMIT * 85 // 100 - 1, "warning"), (-(-LIMIT * 85 // 100), "critical")],  # 435.2 MiB
    ids=["just-under-warn", "at-warn", "just-under-critical", "at-critical"])
def test_thresholds_are_at_or_above(init, app, tmp_path, usage, tier):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=usage)
    run = start(init, app, cg, plan="exit:0")
    assert run.wait() == 0, run.stderr_text()
    assert app.starts()[0]["RESIL_MEMORY_TIER"] == tier


@versions
def test_inactive_file_cache_is_not_working_set(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(90),
                    inactive_file=pct(30))
    run = start(init, app, cg, plan="exit:0")
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_MEMORY_TIER"] == "normal"
    assert_normal_start(s)
    assert app.status()["memory"]["working_set_bytes"] == pct(90) - pct(30)


@versions
def test_unlimited_cgroup_gives_empty_limit_and_normal_tier(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=None, usage=100 * GiB)
    run = start(init, app, cg, plan="exit:0")
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_MEMORY_LIMIT_MB"] == ""
    assert s["RESIL_MEMORY_TIER"] == "normal"
    assert_normal_start(s)
    assert app.status()["memory"]["limit_bytes"] is None


@versions
def test_percentages_never_trigger_a_memory_restart_without_a_limit(init, app, tmp_path,
                                                                    version):
    cg = FakeCgroup(tmp_path, version=version, limit=None, usage=100 * GiB)
    run = start(init, app, cg, plan="run", opts=[
        "--restart", "on-failure", "--memory-restart", "10%", "--memory-restart-for", "200ms"])
    s = app.wait_starts(1, run=run)[0]
    app.wait_running(s)
    time.sleep(0.8)   # four times --memory-restart-for, eight samples
    assert app.signals() == [], run.stderr_text()
    assert len(app.starts()) == 1
    stop(run)


@versions
def test_absolute_critical_threshold(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=120 * MiB)   # 23%
    run = start(init, app, cg, plan="exit:0", opts=["--memory-critical", "100M"])
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_MEMORY_TIER"] == "critical"
    assert_emergency_start(s, "start", "0")


@versions
def test_absolute_threshold_applies_without_a_limit(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=None, usage=120 * MiB)
    run = start(init, app, cg, plan="exit:0", opts=["--memory-critical", "100M"])
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_MEMORY_LIMIT_MB"] == ""
    assert s["RESIL_MEMORY_TIER"] == "critical"
    assert s["RESIL_EMERGENCY"] == "1"


@pytest.mark.parametrize("avg10, tier, emergency", [
    (5.0, "normal", "0"), (15.0, "warning", "0"), (45.0, "critical", "1")])
def test_memory_pressure_raises_the_tier(init, app, tmp_path, avg10, tier, emergency):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10), psi_some_avg10=avg10)
    run = start(init, app, cg, plan="exit:0")
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_MEMORY_TIER"] == tier
    assert s["RESIL_EMERGENCY"] == emergency
    assert app.status()["memory"]["psi_some_avg10"] == pytest.approx(avg10)


# ---- OOM kills ----

@versions
@pytest.mark.parametrize("pid1", [False, True], ids=["subreaper", "pid1"])
def test_oom_kill_restarts_the_app_in_emergency_mode(init, app, tmp_path, version, pid1):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="gokill,run", pid1=pid1,
                opts=["--restart", "on-failure", "--max-restarts", "3"])
    first = app.wait_starts(1, run=run)[0]
    assert_normal_start(first)
    app.wait_running(first)
    cg.bump_oom_kill()          # the kernel counts the kill ...
    app.go(0)                   # ... and the app dies of SIGKILL
    second = app.wait_starts(2, run=run)[1]
    assert_emergency_start(second, "oom", "1")
    assert second["RESIL_MEMORY_TIER"] == "normal"
    doc = app.wait_running(second)
    assert doc["app"]["emergency"] is True
    assert doc["app"]["last_exit"]["reason"] == "oom"
    assert doc["memory"]["oom_kills"] == 1
    stop(run)


@versions
def test_oom_kill_with_restart_no_exits_137_and_says_oom(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(10))
    term = tmp_path / "termination-log"
    run = start(init, app, cg, plan="gokill",
                opts=["--restart", "no", "--termination-log", term])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.bump_oom_kill()
    app.go(0)
    assert run.wait() == 137, run.stderr_text()
    reason = run.reason_line()
    assert "exit 137" in reason and "oom" in reason.lower(), reason
    logged = term.read_text()
    assert "exit 137" in logged and "oom" in logged.lower(), logged
    assert len(app.starts()) == 1


def test_sigkill_while_critical_counts_as_oom_kill(init, app, tmp_path):
    """No oom_kill count rise, but the app died of SIGKILL while at critical."""
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="gokill,run",
                opts=["--restart", "on-failure", "--max-restarts", "3"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.set_usage(pct(95))
    app.wait_status(lambda d: d["memory"]["tier"] == "critical", "tier critical in status.json")
    app.go(0)
    second = app.wait_starts(2, run=run)[1]
    assert_emergency_start(second, "oom", "1")
    stop(run)


def test_sigkill_at_normal_tier_is_a_crash_not_an_oom_kill(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="kill,run",
                opts=["--restart", "on-failure", "--max-restarts", "3"])
    second = app.wait_starts(2, run=run)[1]
    assert_normal_start(second, reason="crash", count="1")
    stop(run)


def test_crash_restart_while_critical_is_emergency(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(90))
    run = start(init, app, cg, plan="exit:3,exit:0",
                opts=["--restart", "on-failure", "--max-restarts", "3"])
    assert run.wait() == 0, run.stderr_text()
    first, second = app.starts()
    assert_emergency_start(first, "start", "0")
    assert_emergency_start(second, "crash", "1")


@versions
def test_emergency_ends_once_memory_is_plentiful_again(init, app, tmp_path, version):
    """OOM kill -> emergency start, which crashes -> the next start is normal."""
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="gokill,exit:3,exit:0",
                opts=["--restart", "on-failure", "--max-restarts", "5"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.bump_oom_kill()
    app.go(0)
    assert run.wait() == 0, run.stderr_text()
    first, second, third = app.starts()
    assert_emergency_start(second, "oom", "1")
    assert_normal_start(third, reason="crash", count="2")
    assert third["RESIL_MEMORY_TIER"] == "normal"


# ---- memory restarts ----

@versions
def test_memory_restart_is_graceful_and_next_start_is_emergency(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(10))
    # --memory-critical 99%: the tier alone never makes an emergency here.
    run = start(init, app, cg, plan="run,run", opts=[
        "--restart", "on-failure", "--memory-critical", "99%",
        "--memory-restart", "90%", "--memory-restart-for", "300ms"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    raised = time.monotonic()
    cg.set_usage(pct(95))
    wait_for(lambda: "0 TERM" in app.signals(), 5, "the app to get SIGTERM")
    took = time.monotonic() - raised
    cg.set_usage(pct(10))
    second = app.wait_starts(2, run=run)[1]
    assert took >= 0.29, f"restarted {took:.3f}s after the working set rose (< 300ms)"
    assert took < 2.0, f"restarted only {took:.3f}s after the working set rose"
    assert_emergency_start(second, "memory", "1")
    assert second["RESIL_MEMORY_TIER"] != "critical"
    doc = app.wait_running(second)
    assert doc["app"]["last_exit"]["reason"] == "memory"
    stop(run)


def test_no_memory_restart_when_the_working_set_drops_in_time(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="run", opts=[
        "--restart", "on-failure", "--memory-restart", "90%", "--memory-restart-for", "800ms"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.set_usage(pct(95))
    time.sleep(0.2)
    cg.set_usage(pct(10))
    time.sleep(0.9)     # past the 800ms a restart would have taken from the rise
    assert app.signals() == [], run.stderr_text()
    assert len(app.starts()) == 1
    stop(run)


@versions
def test_memory_restart_with_restart_no_exits_137(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="run", opts=[
        "--restart", "no", "--memory-restart", "400M", "--memory-restart-for", "200ms"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.set_usage(450 * MiB)
    assert run.wait() == 137, run.stderr_text()
    assert app.signals() == ["0 TERM"]
    assert "memory" in run.reason_line(), run.reason_line()
    assert len(app.starts()) == 1


# ---- the emergency set and the user's variables ----

def test_emergency_env_replaces_the_default_set(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(90))
    run = start(init, app, cg, plan="exit:0", variables=["LOW_MEMORY"], opts=[
        "--emergency-env", "DISABLE_WEBSOCKETS=true", "--emergency-env", "LOW_MEMORY=1"])
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_EMERGENCY"] == "1"
    assert s.get("DISABLE_WEBSOCKETS") == "true", s
    assert s.get("LOW_MEMORY") == "1", s
    assert "EMERGENCY_MODE" not in s, s


def test_emergency_env_listing_emergency_mode_keeps_it(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(90))
    run = start(init, app, cg, plan="exit:0", opts=[
        "--emergency-env", "EMERGENCY_MODE=true", "--emergency-env", "DISABLE_WEBSOCKETS=true"])
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s.get("EMERGENCY_MODE") == "true", s
    assert s.get("DISABLE_WEBSOCKETS") == "true", s


def test_emergency_env_is_not_set_outside_emergency_mode(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="exit:0",
                opts=["--emergency-env", "DISABLE_WEBSOCKETS=true"])
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_EMERGENCY"] == "0"
    assert "DISABLE_WEBSOCKETS" not in s and "EMERGENCY_MODE" not in s, s


def test_user_variables_survive_the_default_emergency_set(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(90))
    run = start(init, app, cg, plan="exit:0",
                env={"EMERGENCY_MODE": "false", "DISABLE_WEBSOCKETS": "false"})
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_EMERGENCY"] == "1"
    assert s.get("EMERGENCY_MODE") == "false", s
    assert s.get("DISABLE_WEBSOCKETS") == "false", s


def test_explicit_emergency_env_overwrites_the_user_variable_it_names(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(90))
    run = start(init, app, cg, plan="exit:0",
                env={"EMERGENCY_MODE": "false", "DISABLE_WEBSOCKETS": "false"},
                opts=["--emergency-env", "DISABLE_WEBSOCKETS=true"])
    assert run.wait() == 0, run.stderr_text()
    [s] = app.starts()
    assert s["RESIL_EMERGENCY"] == "1"
    assert s.get("DISABLE_WEBSOCKETS") == "true", s
    assert s.get("EMERGENCY_MODE") == "false", s     # not named: the user's value


# ---- runtime hints ----

NODE_512 = "--max-old-space-size=384"        # 75% of 512 MiB
GO_512 = str(LIMIT * 9 // 10)                # 90% of 512 MiB in bytes


def run_hints(init, app, tmp_path, env=None, limit=LIMIT, version=2, hints=True):
    cg = FakeCgroup(tmp_path, version=version, limit=limit, usage=pct(10))
    run = start(init, app, cg, plan="exit:0", env=env,
                opts=["--runtime-hints"] if hints else [])
    assert run.wait() == 0, run.stderr_text()
    return app.starts()[0]


@versions
def test_runtime_hints_size_node_and_go_to_the_limit(init, app, tmp_path, version):
    s = run_hints(init, app, tmp_path, version=version)
    assert s.get("NODE_OPTIONS") == NODE_512, s
    assert s.get("GOMEMLIMIT") == GO_512, s


def test_runtime_hints_for_a_1g_limit(init, app, tmp_path):
    s = run_hints(init, app, tmp_path, limit=GiB)
    assert s.get("NODE_OPTIONS") == "--max-old-space-size=768", s
    assert s.get("GOMEMLIMIT") == str(GiB * 9 // 10), s


def test_runtime_hints_append_to_existing_node_options(init, app, tmp_path):
    s = run_hints(init, app, tmp_path, env={"NODE_OPTIONS": "--enable-source-maps"})
    assert s.get("NODE_OPTIONS") == "--enable-source-maps " + NODE_512, s


def test_runtime_hints_keep_an_existing_max_old_space_size(init, app, tmp_path):
    opts = "--enable-source-maps --max-old-space-size=100"
    s = run_hints(init, app, tmp_path, env={"NODE_OPTIONS": opts})
    assert s.get("NODE_OPTIONS") == opts, s


def test_runtime_hints_keep_an_existing_gomemlimit(init, app, tmp_path):
    s = run_hints(init, app, tmp_path, env={"GOMEMLIMIT": "200MiB"})
    assert s.get("GOMEMLIMIT") == "200MiB", s
    assert s.get("NODE_OPTIONS") == NODE_512, s


def test_runtime_hints_set_nothing_without_a_limit(init, app, tmp_path):
    s = run_hints(init, app, tmp_path, limit=None)
    assert "NODE_OPTIONS" not in s and "GOMEMLIMIT" not in s, s


def test_no_runtime_hints_unless_asked(init, app, tmp_path):
    s = run_hints(init, app, tmp_path, hints=False)
    assert "NODE_OPTIONS" not in s and "GOMEMLIMIT" not in s, s


# ---- --pressure-signal ----

@versions
def test_pressure_signal_when_the_tier_rises(init, app, tmp_path, version):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(10))
    run = start(init, app, cg, plan="run", opts=["--pressure-signal", "USR1"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    time.sleep(0.25)
    assert app.signals() == [], "signalled before the tier rose"
    cg.set_usage(pct(80))                                   # normal -> warning
    wait_for(lambda: app.signals() == ["0 USR1"], 5,
             f"one SIGUSR1 after normal -> warning (got {app.signals()!r})")
    cg.set_usage(pct(90))                                   # warning -> critical
    wait_for(lambda: app.signals() == ["0 USR1", "0 USR1"], 5,
             f"a second SIGUSR1 after warning -> critical (got {app.signals()!r})")
    stop(run)


def test_pressure_signal_when_psi_raises_the_tier(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10), psi_some_avg10=0.0)
    run = start(init, app, cg, plan="run", opts=["--pressure-signal", "USR2"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.set_psi(45.0)
    wait_for(lambda: app.signals() == ["0 USR2"], 5,
             f"SIGUSR2 after PSI some avg10 45 (got {app.signals()!r})")
    stop(run)


def test_no_pressure_signal_when_the_tier_falls(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(90))
    run = start(init, app, cg, plan="run", opts=["--pressure-signal", "USR1"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.set_usage(pct(10))
    app.wait_status(lambda d: d["memory"]["tier"] == "normal", "tier normal in status.json")
    time.sleep(0.3)
    assert app.signals() == [], run.stderr_text()
    stop(run)


# ---- odd files ----

@pytest.mark.parametrize("version, name, how", [
    (2, "memory.current", "garbage"),
    (2, "memory.max", "missing"),
    (2, "memory.stat", "dir"),
    (2, "memory.current", "empty"),
    (2, "memory.stat", "empty"),
    (2, "memory.max", "huge"),
    (1, "memory.usage_in_bytes", "garbage"),
    (1, "memory.limit_in_bytes", "missing"),
    (1, "memory.stat", "dir"),
    (1, "memory.limit_in_bytes", "empty"),
    (1, "memory.oom_control", "dir"),
], ids=lambda v: str(v))
def test_odd_cgroup_files_give_tier_unknown_and_one_warning(init, app, tmp_path, version, name,
                                                            how):
    cg = FakeCgroup(tmp_path, version=version, limit=LIMIT, usage=pct(90))
    cg.break_file(name, how)
    # --pressure-signal asks for live samples: the breakage must be told once, not per sample.
    run = start(init, app, cg, plan="run", opts=["--pressure-signal", "USR2"])
    s = app.wait_starts(1, run=run)[0]
    assert s["RESIL_MEMORY_TIER"] == "unknown", s
    assert s["RESIL_MEMORY_LIMIT_MB"] == "", s
    assert_normal_start(s)
    app.wait_running(s)
    time.sleep(0.5)                     # five samples of the broken tree
    assert run.running(), run.stderr_text()
    warns = warn_lines(run)
    assert len(warns) == 1, warns
    assert app.status()["memory"]["tier"] == "unknown"
    assert app.signals() == []
    stop(run)


def test_missing_cgroup_root_gives_tier_unknown_and_one_warning(init, app, tmp_path):
    run = start(init, app, tmp_path / "no-such-dir", plan="run")
    s = app.wait_starts(1, run=run)[0]
    assert s["RESIL_MEMORY_TIER"] == "unknown", s
    assert s["RESIL_MEMORY_LIMIT_MB"] == "", s
    app.wait_running(s)
    time.sleep(0.3)
    assert len(warn_lines(run)) == 1, run.stderr_text()
    stop(run)


def test_tier_is_known_again_once_the_files_are_fixed(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10))
    cg.break_file("memory.current", "garbage")
    run = start(init, app, cg, plan="goexit:3,run",
                opts=["--restart", "on-failure", "--max-restarts", "3"])
    first = app.wait_starts(1, run=run)[0]
    assert first["RESIL_MEMORY_TIER"] == "unknown"
    app.wait_running(first)
    cg.restore()    # read again at the next start at the latest (README: nothing is
    app.go(0)       # armed while no file can be read)
    second = app.wait_starts(2, run=run)[1]
    assert second["RESIL_MEMORY_TIER"] == "normal", second
    assert second["RESIL_MEMORY_LIMIT_MB"] == "512", second
    assert len(warn_lines(run)) >= 1
    stop(run)


# ---- status.json ----

def status_doc(app):
    r = run_cmd(["status", "--state-dir", app.state])
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def test_status_memory_fields_v2(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=300 * MiB, inactive_file=20 * MiB,
                    oom_kill=2, psi_some_avg10=12.5)
    run = start(init, app, cg, plan="run")
    app.wait_running(app.wait_starts(1, run=run)[0])
    doc = status_doc(app)
    mem = doc["memory"]
    assert is_int(mem["limit_bytes"]) and mem["limit_bytes"] == LIMIT, mem
    assert is_int(mem["working_set_bytes"]) and mem["working_set_bytes"] == 280 * MiB, mem
    assert mem["tier"] == "warning", mem              # 55% of the limit, but PSI 12.5
    assert isinstance(mem["psi_some_avg10"], (int, float)), mem
    assert mem["psi_some_avg10"] == pytest.approx(12.5), mem
    assert is_int(mem["oom_kills"]) and mem["oom_kills"] == 2, mem
    assert doc["app"]["emergency"] is False
    cg.bump_oom_kill()
    wait_for(lambda: status_doc(app)["memory"]["oom_kills"] == 3, 5,
             "oom_kills 3 in status.json")
    stop(run)


def test_status_memory_fields_v1(init, app, tmp_path):
    cg = FakeCgroup(tmp_path, version=1, limit=LIMIT, usage=pct(90), inactive_file=0,
                    oom_kill=1)
    run = start(init, app, cg, plan="run")
    app.wait_running(app.wait_starts(1, run=run)[0])
    doc = status_doc(app)
    mem = doc["memory"]
    assert mem["limit_bytes"] == LIMIT and is_int(mem["limit_bytes"]), mem
    assert mem["working_set_bytes"] == pct(90), mem
    assert mem["tier"] == "critical", mem
    assert mem["psi_some_avg10"] is None, mem
    assert mem["oom_kills"] == 1 and is_int(mem["oom_kills"]), mem
    assert doc["app"]["emergency"] is True
    stop(run)


def test_watch_survives_a_file_broken_for_a_moment_while_the_app_runs(init, app, tmp_path):
    """memory.current unreadable for a few samples mid-run, then fine again: the
    working set is still watched and --memory-restart still fires."""
    cg = FakeCgroup(tmp_path, version=2, limit=LIMIT, usage=pct(10))
    # The 1 s backoff is this test's time to bring the usage down after the
    # restart (below), before the second run's own 200 ms window can run out.
    run = start(init, app, cg, plan="run,run", opts=[
        "--restart", "on-failure", "--memory-critical", "99%", "--backoff", "1s",
        "--memory-restart", "90%", "--memory-restart-for", "200ms"])
    first = app.wait_starts(1, run=run)[0]
    app.wait_running(first)
    cg.break_file("memory.current", "garbage")
    app.wait_status(lambda d: d["memory"]["tier"] == "unknown", "tier unknown in status.json")
    cg.restore()
    cg.set_usage(pct(95))
    try:
        wait_for(lambda: "0 TERM" in app.signals(), 3, "the memory restart after the files "
                 "were readable again")
    except AssertionError as e:
        raise AssertionError(f"{e}; status: {app.status()!r}; stderr: "
                             f"{run.stderr_text()!r}") from None
    # Left at 95%, the usage would rightly restart the second run too, 200 ms
    # in: on a loaded machine that is before Python has recorded its start.
    cg.set_usage(pct(10))
    second = app.wait_starts(2, run=run)[1]
    assert_emergency_start(second, "memory", "1")
    assert len(warn_lines(run)) >= 1
    stop(run)
