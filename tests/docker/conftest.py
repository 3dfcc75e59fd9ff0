"""Fixtures of the Docker suite: the engine tests/docker/run.sh started, the
test image built on top of the repository's image, and containers that are
removed after each test. Run through `make test-docker`, never on its own."""

import json
import os
import re
import subprocess
import time

import pytest

DOCKER = os.environ.get("RESIL_DOCKER", "/usr/bin/docker")
INIT_IMAGE = os.environ.get("RESIL_DOCKER_INIT_IMAGE", "resil-init:test")
BB_IMAGE = os.environ.get("RESIL_DOCKER_BB_IMAGE", "resil-bb:local")
TEST_IMAGE = os.environ.get("RESIL_DOCKER_TEST_IMAGE", "resil-test/apps")
INIT_IMAGE_ARM64 = os.environ.get("RESIL_DOCKER_INIT_IMAGE_ARM64", "resil-init:test-arm64")
TEST_IMAGE_ARM64 = os.environ.get("RESIL_DOCKER_TEST_IMAGE_ARM64", "resil-test/apps-arm64")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session", autouse=True)
def _engine_present():
    """Before any fixture that builds an image: skip everything, saying why."""
    reason = os.environ.get("RESIL_DOCKER_SKIP")
    if reason:
        pytest.skip(reason)
    if not os.environ.get("RESIL_DOCKER_RUN") or not os.environ.get("DOCKER_HOST"):
        pytest.skip("no private Docker engine: run these through `make test-docker` (tests/docker/run.sh)")


def docker(*args, check=True, timeout=60, text=True, input=None):
    """Debian's docker client against the private engine (DOCKER_HOST)."""
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=text, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def build(tag, context, dockerfile=None, build_args=(), timeout=600):
    """The legacy builder, as the README tells users (`--network host` for apt-get)."""
    args = ["build", "--network", "host", "-t", tag]
    if dockerfile:
        args += ["-f", dockerfile]
    for arg in build_args:
        args += ["--build-arg", arg]
    return docker(*args, str(context), timeout=timeout)


class Container:
    """One container: its logs (stdout and stderr, as `docker logs` gives them),
    state and exit, each with a deadline."""

    def __init__(self, cid):
        self.id = cid

    def logs(self):
        proc = docker("logs", self.id, check=False)
        return proc.stdout + proc.stderr

    def wait_log(self, pattern, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            text = self.logs()
            match = re.search(pattern, text, re.MULTILINE)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s; logs:\n{text}")
            time.sleep(0.1)

    def inspect(self, fmt):
        return docker("inspect", "--format", fmt, self.id).stdout.strip()

    def state(self):
        return json.loads(self.inspect("{{json .State}}"))

    def wait_state(self, predicate, timeout=15, what="the expected state"):
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {timeout}s: {state}; logs:\n{self.logs()}")
            time.sleep(0.1)

    def wait(self, timeout=30):
        """The container's exit code, once it has exited."""
        return int(docker("wait", self.id, timeout=timeout).stdout.strip())

    def exec(self, *cmd, check=False, timeout=30):
        return docker("exec", self.id, *cmd, check=check, timeout=timeout)

    def stop(self, timeout=40):
        """`docker stop` with Docker's default 10 s timeout; its duration in seconds."""
        start = time.monotonic()
        docker("stop", self.id, timeout=timeout)
        return time.monotonic() - start

    def reason_line(self, code):
        """resil-init's last words on stderr, "exit CODE: why", or None."""
        stderr = docker("logs", self.id, check=False).stderr
        match = re.search(rf"^.*\bexit {code}: .*$", stderr, re.MULTILINE)
        return match.group(0) if match else None


@pytest.fixture
def run():
    """Factory: run(*docker_run_args) -> Container, started detached; every
    container is removed (with its anonymous volumes) after the test."""
    started = []

    def start(*args):
        cid = docker("run", "-d", *args).stdout.strip()
        started.append(cid)
        return Container(cid)

    yield start
    if started:
        docker("rm", "-f", "-v", *started, check=False)


@pytest.fixture(scope="session")
def test_image():
    """Built by tests/docker/engine.sh: busybox-static, the repository image's
    /resil-init as ENTRYPOINT, the static apps in /apps, /www/health."""
    return TEST_IMAGE


def resil_init_help(image):
    return docker("run", "--rm", "--entrypoint", "/resil-init", image, "--help").stdout
