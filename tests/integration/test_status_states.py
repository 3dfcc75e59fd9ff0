"""status.json, `resil-init status` and `resil-init probe` in every state of
the app (SPEC §5, §6; README "status.json, status and probe").

probe checks that the pid in status.json is alive; as PID 1 that pid is 1,
which from the host is the host's init. So resil-init runs here as a plain
child of the test (a subreaper), where the pid in the file is its host pid and
status and probe can be run from the test. Memory is read from a fake cgroup
(well below its limit, or at critical for the emergency case), so the real
machine's memory never decides what the file says.
"""

import json
import re
import signal
import time

import pytest

from fakecgroup import MiB, FakeCgroup
from healthserver import HealthServer
from helpers import app_events, prog, run_cmd, starts, wait_for

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def start(init, tmp_path, plan="run", on_term="exit0", usage=64 * MiB, **kw):
    """resil-init as a subreaper over progs/sup_app.py; kw are long options
    (health_url=... is --health-url ...). Returns (run, state dir, app log) once
    the app has started."""
    state = tmp_path / "state"
    cg = FakeCgroup(tmp_path / "cgroup", limit=512 * MiB, usage=usage)
    opts = {"state_dir": state, "termination_log": tmp_path / "termination-log",
            "cgroup_root": cg.path, "grace": "3s"}
    opts.update(kw)
    args = []
    for key, value in opts.items():
        if value is not None:
            args += ["--" + key.replace("_", "-"), value]
    log = tmp_path / "app.log"
    run = init([*args, "--", *prog("sup_app.py"), "--log", log, "--plan", plan,
                "--on-term", on_term], pid1=False)
    wait_for(lambda: starts(log), 10, "the app to start")
    return run, state, log


def read_file(state):
    try:
        return json.loads((state / "status.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def wait_state(state, app_state, timeout=5, cond=lambda doc: True):
    """The status.json document once app.state is app_state (and cond holds)."""
    def ready():
        doc = read_file(state)
        return doc if doc and doc["app"]["state"] == app_state and cond(doc) else None
    return wait_for(ready, timeout, f"app.state {app_state!r} in {state / 'status.json'} "
                                    f"(now {read_file(state)!r})")


def status(state):
    r = run_cmd(["status", "--state-dir", state])
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def probe(state):
    return run_cmd(["probe", "--state-dir", state]).returncode


def check_types(doc):
    """What holds in every state: JSON numbers, booleans, RFC 3339 UTC times."""
    assert isinstance(doc["version"], str) and doc["version"]
    assert isinstance(doc["pid"], int)
    app = doc["app"]
    assert app["pid"] is None or isinstance(app["pid"], int)
    assert isinstance(app["restarts"], int) and not isinstance(app["restarts"], bool)
    assert isinstance(app["emergency"], bool), f"emergency is {app['emergency']!r}"
    if app["started_at"] is not None:
        assert RFC3339_UTC.match(app["started_at"]), app["started_at"]
    if app["last_exit"] is not None:
        assert RFC3339_UTC.match(app["last_exit"]["at"]), app["last_exit"]
    health = doc["health"]
    assert health["status"] in ("unknown", "starting", "healthy", "unhealthy"), health
    assert isinstance(health["consecutive_failures"], int)
    if health["last_check_at"] is not None:
        assert RFC3339_UTC.match(health["last_check_at"]), health["last_check_at"]
    assert health["last_http_status"] is None or isinstance(health["last_http_status"], int)
    for key in ("limit_bytes", "working_set_bytes", "oom_kills"):
        assert doc["memory"][key] is None or isinstance(doc["memory"][key], int), doc["memory"]


# ---- no state file ----

def test_status_without_a_state_file_exits_1_with_one_line_on_stderr(tmp_path):
    r = run_cmd(["status", "--state-dir", tmp_path / "nothing-here"])
    assert r.returncode == 1, r
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert probe(tmp_path / "nothing-here") == 1


# ---- starting ----

def test_starting_until_the_first_check_passes_probe_0(init, tmp_path):
    with HealthServer() as hs:
        run, state, log = start(init, tmp_path, health_url=hs.url, health_interval="30s")
        doc = wait_state(state, "starting")
        check_types(doc)
        assert status(state) == read_file(state)
        assert doc["pid"] == run.pid
        assert doc["app"]["pid"] == starts(log)[0]["pid"]
        assert doc["app"]["restarts"] == 0
        assert doc["app"]["emergency"] is False
        assert doc["app"]["last_exit"] is None
        assert doc["health"]["url"] == hs.url
        assert doc["health"]["status"] in ("starting", "unknown")
        assert doc["health"]["last_check_at"] is None
        assert hs.hits == 0
        assert probe(state) == 0


# ---- running ----

def test_running_and_healthy_probe_0(init, tmp_path):
    with HealthServer() as hs:
        run, state, log = start(init, tmp_path, health_url=hs.url, health_interval="200ms",
                                health_timeout="300ms")
        doc = wait_state(state, "running", cond=lambda d: d["health"]["last_check_at"])
        check_types(doc)
        health = doc["health"]
        assert health["status"] == "healthy", health
        assert health["last_http_status"] == 200, health
        assert health["consecutive_failures"] == 0, health
        assert health["last_verdict"] == "ok", health
        assert RFC3339_UTC.match(health["last_check_at"]), health
        assert doc["app"]["pid"] == starts(log)[0]["pid"]
        assert RFC3339_UTC.match(doc["app"]["started_at"])
        assert probe(state) == 0
        run.signal(signal.SIGTERM)
        assert run.wait() == 0, run.stderr_text()


def test_running_without_a_health_check_probe_0(init, tmp_path):
    run, state, log = start(init, tmp_path)
    doc = wait_state(state, "running")
    check_types(doc)
    assert doc["health"]["status"] == "unknown"
    assert doc["health"]["url"] is None
    assert probe(state) == 0


def test_restarts_are_counted(init, tmp_path):
    run, state, log = start(init, tmp_path, plan="exit:1,exit:1,run", restart="on-failure",
                            backoff="50ms")
    wait_for(lambda: len(starts(log)) == 3, 5, "the third start")
    doc = wait_state(state, "running", cond=lambda d: d["app"]["pid"] == starts(log)[2]["pid"])
    check_types(doc)
    assert doc["app"]["restarts"] == 2
    assert doc["app"]["last_exit"]["code"] == 1
    assert doc["app"]["last_exit"]["reason"] == "crash"
    assert probe(state) == 0


def test_emergency_is_true_when_started_at_critical(init, tmp_path):
    run, state, log = start(init, tmp_path, usage=500 * MiB)
    doc = wait_state(state, "running")
    check_types(doc)
    assert doc["app"]["emergency"] is True
    assert starts(log)[0]["emergency"] == "1"


# ---- unhealthy, stopping ----

def test_unhealthy_while_being_stopped_probe_1(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, state, log = start(init, tmp_path, on_term="ignore", health_url=hs.url,
                                health_interval="200ms", health_timeout="300ms",
                                health_retries="2")
        wait_for(lambda: any(e["event"] == "term" for e in app_events(log)), 5,
                 "the unhealthy app to get SIGTERM")
        doc = wait_for(lambda: (lambda d: d if d and d["app"]["state"] != "starting" else None)(
            read_file(state)), 2, "status.json to leave the starting state")
        check_types(doc)
        assert doc["app"]["state"] in ("unhealthy", "stopping"), doc["app"]
        assert doc["health"]["status"] == "unhealthy", doc["health"]
        assert doc["health"]["consecutive_failures"] >= 2, doc["health"]
        assert doc["health"]["last_http_status"] == 503, doc["health"]
        assert probe(state) == 1


def test_stopping_after_sigterm_probe_1(init, tmp_path):
    run, state, log = start(init, tmp_path, on_term="ignore")
    wait_state(state, "running")
    run.signal(signal.SIGTERM)
    wait_for(lambda: any(e["event"] == "term" for e in app_events(log)), 5,
             "the app to get SIGTERM")
    doc = wait_state(state, "stopping")
    check_types(doc)
    assert probe(state) == 1


# ---- backoff ----

def test_backoff_probe_1_and_no_app_pid(init, tmp_path):
    run, state, log = start(init, tmp_path, plan="exit:1", restart="on-failure", backoff="10s")
    doc = wait_state(state, "backoff")
    check_types(doc)
    assert doc["app"]["pid"] is None
    assert doc["app"]["restarts"] == 1
    assert doc["app"]["last_exit"]["code"] == 1
    assert doc["app"]["last_exit"]["reason"] == "crash"
    assert probe(state) == 1
    assert status(state) == doc
    run.signal(signal.SIGTERM)
    assert run.wait() == 143, run.stderr_text()


# ---- exited ----

@pytest.mark.parametrize("plan, code, sig", [("exit:3", 3, None), ("kill:9", None, "KILL")])
def test_exited_probe_1_with_last_exit(init, tmp_path, plan, code, sig):
    run, state, log = start(init, tmp_path, plan=plan)
    assert run.wait() == (code if code is not None else 137), run.stderr_text()
    doc = read_file(state)
    check_types(doc)
    assert doc["app"]["state"] == "exited"
    assert doc["app"]["pid"] is None
    last = doc["app"]["last_exit"]
    assert last["code"] == code, last
    if sig is None:
        assert last["signal"] is None, last
    else:
        assert last["signal"] in (sig, "SIG" + sig, 9), last
    assert last["reason"] == "crash", last
    assert probe(state) == 1
    assert status(state) == doc


def test_probe_1_when_resil_init_is_gone_but_the_file_says_running(init, tmp_path):
    run, state, log = start(init, tmp_path)
    wait_state(state, "running")
    run.signal(signal.SIGKILL)
    run.wait()
    assert read_file(state)["app"]["state"] == "running"
    assert probe(state) == 1


def test_backoff_after_an_unhealthy_verdict(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, state, log = start(init, tmp_path, restart="on-failure", backoff="10s",
                                health_url=hs.url, health_interval="200ms",
                                health_timeout="300ms", health_retries="2")
        doc = wait_state(state, "backoff")
        check_types(doc)
        assert doc["app"]["pid"] is None
        assert doc["app"]["restarts"] == 1
        assert doc["app"]["last_exit"]["reason"] == "unhealthy", doc["app"]["last_exit"]
        assert probe(state) == 1


def test_exited_after_an_unhealthy_verdict(init, tmp_path):
    with HealthServer() as hs:
        hs.set(status=503)
        run, state, log = start(init, tmp_path, health_url=hs.url, health_interval="200ms",
                                health_timeout="300ms", health_retries="2")
        assert run.wait() == 69, run.stderr_text()
        doc = read_file(state)
        check_types(doc)
        assert doc["app"]["state"] == "exited"
        assert doc["app"]["last_exit"]["reason"] == "unhealthy", doc["app"]["last_exit"]
        assert doc["health"]["status"] == "unhealthy", doc["health"]
        assert doc["health"]["last_http_status"] == 503, doc["health"]
        assert probe(state) == 1


def test_status_json_is_always_whole_while_it_changes_fast(init, tmp_path):
    # A crash loop with a 20 ms backoff rewrites the file several times per start.
    state = tmp_path / "state"
    log = tmp_path / "starts"
    run = init(["--state-dir", state, "--restart", "on-failure", "--max-restarts", "40",
                "--backoff", "20ms", "--", "sh", "-c", 'echo x >> "$0"; exit 1', log], pid1=False)
    seen, states = 0, set()
    deadline = time.monotonic() + 5
    while run.running() and time.monotonic() < deadline:
        try:
            text = (state / "status.json").read_text()
        except FileNotFoundError:
            continue
        doc = json.loads(text)  # never a half-written file
        states.add(doc["app"]["state"])
        seen += 1
    assert run.wait() == 1, run.stderr_text()
    assert seen > 20 and "backoff" in states, (seen, states)
