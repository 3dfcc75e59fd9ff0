"""`make demo` tells the whole story, headless and in bounded time."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("RESIL_INIT_BIN", os.path.join(ROOT, "build", "resil-init"))
EXAMPLES = os.environ.get("RESIL_EXAMPLES", os.path.join(ROOT, "build", "examples"))

# Each stage of the story, in order, as resil-init and the demo print it.
STAGES = [
    "== demo: 1. the app is healthy",
    "restarting (reason crash",
    "reason crash)",
    "is unhealthy after 2 consecutive failed checks",
    "restarting (reason unhealthy",
    "memory tier normal -> critical",
    "restarting (reason memory",
    "reason memory, EMERGENCY MODE)",
    "EMERGENCY_MODE=on",
    '"emergency":true',
    "== demo: 6. zero downtime",
    "reason crash",
    "reason manual)",
    " 0 refused, ",  # with --listen none is refused; a request the stopping app took may fail
    "resil_app_restarts_total{reason=\"manual\"} 1",
    "received SIGTERM: forwarding SIGTERM to the app",
    "exit 0: stopped by SIGTERM",
    "== demo: done",
]


@pytest.fixture(scope="module")
def demo_output():
    for path in (BIN, os.path.join(EXAMPLES, "demo-app")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} not built")
    env = dict(os.environ, RESIL_INIT_BIN=BIN, RESIL_EXAMPLES=EXAMPLES)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "demo.py")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=env, timeout=120, start_new_session=True)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, out
    return out


def test_demo_shows_every_stage_in_order(demo_output):
    pos = 0
    for marker in STAGES:
        found = demo_output.find(marker, pos)
        assert found >= 0, f"missing after position {pos}: {marker!r}\n{demo_output}"
        pos = found + len(marker)


def test_demo_ends_with_exit_code_zero_and_reason(demo_output):
    assert "resil-init exited with 0; termination log: exit 0: stopped by SIGTERM" in demo_output
