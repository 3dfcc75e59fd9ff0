"""Fixtures for the integration suites. Helpers live in helpers.py."""

import pytest

import helpers


@pytest.fixture
def init(tmp_path):
    """Factory: init(args, pid1=True, **popen_kw) -> helpers.Init, output under
    tmp_path; everything the run started is killed at teardown."""
    runs = []

    def start(args, pid1=True, **popen_kw):
        popen_kw.setdefault("outdir", tmp_path / f"run{len(runs)}")
        run = helpers.run_init(args, pid1=pid1, **popen_kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.cleanup()


@pytest.fixture(autouse=True)
def _kill_leftover_runs():
    """Runs started through helpers.run_init directly are cleaned up too."""
    yield
    helpers.cleanup_all()
