"""resil-init under a real Docker engine (dockerd, containerd, runc), with the
image the repository's Dockerfile builds. Run by `make test-docker`
(tests/docker/run.sh starts the engine and builds the images first).

The test image is busybox-static with the repository image's /resil-init as
ENTRYPOINT and static test apps in /apps (tests/docker/apps/*.c, plus
examples/demo-app.c built with musl), so `docker run IMAGE [OPTIONS] -- APP`
runs resil-init as the container's PID 1 over APP."""

import io
import json
import re
import socket
import tarfile
import time
from pathlib import Path

import pytest

from conftest import INIT_IMAGE, REPO, build, docker, resil_init_help

DOCKER_STOP_TIMEOUT = 10  # Docker's default: SIGKILL to PID 1 after this
DEFAULT_GRACE = 8  # resil-init's default --grace
# A stop that ends this long before Docker's SIGKILL was resil-init's doing.
STOP_MARGIN = 0.4

HTTPD = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]  # /health is a file
HEALTH = ["--health-url", "http://127.0.0.1:8080/health", "--health-interval", "300ms"]
DEMO_APP_ENV = ["-e", "PORT=8080"]  # demo-app serves 127.0.0.1:$PORT


def wait_status(c, predicate, what, timeout=15):
    """`resil-init status` run inside the container, until predicate holds."""
    deadline = time.monotonic() + timeout
    while True:
        proc = c.exec("/resil-init", "status")
        status = json.loads(proc.stdout) if proc.returncode == 0 else None
        if status and predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status not {what} within {timeout}s: {proc.stdout}{proc.stderr}")
        time.sleep(0.2)


def read_version():
    return (Path(REPO) / "VERSION").read_text().strip()


# --- the repository's image -------------------------------------------------


def test_dockerfile_image_runs_its_static_binary():
    out = docker("run", "--rm", "--entrypoint", "/resil-init", INIT_IMAGE, "--version").stdout
    assert read_version() in out


def test_dockerfile_image_is_under_300_kb_with_resil_init_as_entrypoint():
    assert int(docker("image", "inspect", "--format", "{{.Size}}", INIT_IMAGE).stdout) < 300_000
    entrypoint = docker("image", "inspect", "--format", "{{json .Config.Entrypoint}}", INIT_IMAGE).stdout
    assert json.loads(entrypoint) == ["/resil-init", "--"]


# --- exit codes -------------------------------------------------------------


def test_exit_code_is_the_apps_status(run, test_image):
    c = run(test_image, "--", "sh", "-c", "exit 7")
    assert c.wait() == 7
    assert c.inspect("{{.State.ExitCode}}") == "7"
    assert c.reason_line(7), c.logs()


def test_command_not_found_exits_127(run, test_image):
    c = run(test_image, "--", "/apps/no-such-app")
    assert c.wait() == 127
    assert "command not found" in c.logs()


def test_unhealthy_app_exits_69(run, test_image):
    c = run(test_image, *HEALTH, "--health-retries", "2", "--", *HTTPD)
    c.wait_state(lambda s: s["Running"], what="running")
    wait_status(c, lambda st: st["health"]["status"] == "healthy", "healthy")
    c.exec("rm", "/www/health", check=True)  # httpd now answers 404
    assert c.wait() == 69
    assert "exit 69: unhealthy" in (c.reason_line(69) or ""), c.logs()


# --- docker stop --------------------------------------------------------------


def test_docker_stop_ends_a_cooperative_app_at_once_with_143(run, test_image):
    c = run(test_image, "--", "sleep", "1000")
    c.wait_state(lambda s: s["Running"], what="running")
    wait_status(c, lambda st: st["app"]["state"] == "running", "running")
    took = c.stop()
    assert took < 2, f"docker stop took {took:.1f}s"
    assert c.wait() == 143
    assert "exit 143: stopped by SIGTERM" in (c.reason_line(143) or ""), c.logs()


def stop_stubborn(run, test_image, app, leftover):
    c = run(test_image, "--", "/apps/stubborn", app, leftover)
    c.wait_log(r"^stubborn\[\d+\]: ready")
    took = c.stop()
    return c, took


def test_docker_stop_kills_an_app_ignoring_term_after_grace_before_docker_does(run, test_image):
    c, took = stop_stubborn(run, test_image, "ignore", "none")
    assert DEFAULT_GRACE - 0.5 < took < DOCKER_STOP_TIMEOUT - STOP_MARGIN, f"docker stop took {took:.1f}s"
    assert c.wait() == 137
    assert "grace period" in (c.reason_line(137) or ""), c.logs()


def test_docker_stop_with_a_leftover_ignoring_term_fits_docker_timeout(run, test_image):
    """The app obeys SIGTERM; a process it left in its own session ignores it."""
    c, took = stop_stubborn(run, test_image, "obey", "ignore")
    assert took < DOCKER_STOP_TIMEOUT - STOP_MARGIN, f"docker stop took {took:.1f}s"
    assert c.wait() == 143
    assert c.reason_line(143), c.logs()


def test_docker_stop_with_app_and_leftover_ignoring_term_fits_one_grace(run, test_image):
    """Both ignore SIGTERM: the whole stop, leftovers included, must fit in one
    --grace budget, so resil-init (not Docker's SIGKILL) ends it and says why."""
    c, took = stop_stubborn(run, test_image, "ignore", "ignore")
    assert took < DOCKER_STOP_TIMEOUT - STOP_MARGIN, f"docker stop took {took:.1f}s: Docker's SIGKILL, not resil-init"
    assert c.wait() == 137
    assert c.reason_line(137), c.logs()


# --- signals ------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["HUP", "USR1"])
def test_docker_kill_signal_reaches_the_app(run, test_image, sig):
    c = run(*DEMO_APP_ENV, test_image, "--", "/apps/demo-app")
    c.wait_log(r"^demo-app\[\d+\]: listening")
    docker("kill", "-s", sig, c.id)
    c.wait_log(rf"^demo-app\[\d+\]: .*SIG{sig}.*received")
    assert c.state()["Running"]


# --- memory -------------------------------------------------------------------


def test_oom_kill_under_docker_memory_limit_restarts_in_emergency_mode(run, test_image):
    c = run(
        "--memory", "64m", "--memory-swap", "64m", test_image,
        "--restart", "on-failure", "--backoff", "100ms", "--", "/apps/memhog",
    )  # fmt: skip
    second = c.wait_log(r"^memhog\[\d+\]: start RESIL_RESTART_REASON=oom .*$", timeout=30).group(0)
    assert "RESIL_EMERGENCY=1" in second
    assert "EMERGENCY_MODE=true" in second
    assert "RESIL_MEMORY_LIMIT_MB=64" in second
    c.wait_log(r"emergency mode: not allocating")
    assert re.search(r"^resil-init\[1\]: warn: .*OOM", c.logs(), re.MULTILINE), c.logs()
    assert c.state()["Running"], "resil-init, not the container, should have taken the OOM kill"
    c.stop()
    assert c.wait() == 143  # the emergency-mode app, stopped
    assert c.inspect("{{.State.OOMKilled}}") == "true"  # Docker reports it once the container ends


# --- restarts: resil-init's own and Docker's ------------------------------------

CRASHER = ["--", "sh", "-c", 'echo "run $RESIL_RESTART_COUNT"; exit 3']


def test_restart_on_failure_inside_resil_init_keeps_the_container(run, test_image):
    c = run(test_image, "--restart", "on-failure", "--max-restarts", "2", "--backoff", "100ms", *CRASHER)
    assert c.wait() == 3
    assert re.findall(r"^run (\d+)$", c.logs(), re.MULTILINE) == ["0", "1", "2"]
    assert c.inspect("{{.RestartCount}}") == "0"
    assert "giving up after 2 restarts" in (c.reason_line(3) or ""), c.logs()


def test_docker_restart_policy_restarts_the_container_on_resil_inits_exit_code(run, test_image):
    c = run("--restart", "on-failure:2", test_image, *CRASHER)
    state = c.wait_state(
        lambda s: s["Status"] == "exited" and c.inspect("{{.RestartCount}}") == "2",
        timeout=30,
        what="exited after 2 restarts by Docker",
    )
    assert state["ExitCode"] == 3
    # each container start is a fresh resil-init: its own count starts at 0
    assert re.findall(r"^run (\d+)$", c.logs(), re.MULTILINE) == ["0", "0", "0"]


# --- docker run --init ----------------------------------------------------------


def test_docker_run_init_puts_tini_above_resil_init(run, test_image):
    c = run("--init", *DEMO_APP_ENV, test_image, "--", "/apps/demo-app")
    c.wait_log(r"^demo-app\[\d+\]: listening")
    assert c.exec("cat", "/proc/1/comm").stdout.strip() == "docker-init"
    status = wait_status(c, lambda st: st["app"]["state"] == "running", "running")
    assert status["pid"] != 1, "resil-init should run below docker-init, as subreaper"
    docker("kill", "-s", "HUP", c.id)
    c.wait_log(r"^demo-app\[\d+\]: .*SIGHUP.*received")
    took = c.stop()
    assert took < 2, f"docker stop took {took:.1f}s"
    assert c.wait() == 0  # demo-app ends gracefully on SIGTERM; tini passes the code on
    assert "exit 0: stopped by SIGTERM" in (c.reason_line(0) or ""), c.logs()


# --- status and probe through docker exec ---------------------------------------


def test_status_through_docker_exec(run, test_image):
    c = run(test_image, *HEALTH, "--", *HTTPD)
    status = wait_status(c, lambda st: st["health"]["status"] == "healthy", "healthy")
    assert status["pid"] == 1
    assert status["app"]["state"] == "running"
    assert status["health"]["last_http_status"] == 200


def test_probe_through_docker_exec_follows_the_apps_health(run, test_image):
    c = run(test_image, *HEALTH, "--health-retries", "1", "--restart", "on-failure", "--backoff", "60s",
            "--", *HTTPD)  # fmt: skip
    wait_status(c, lambda st: st["health"]["status"] == "healthy", "healthy")
    assert c.exec("/resil-init", "probe").returncode == 0
    c.exec("rm", "/www/health", check=True)
    wait_status(c, lambda st: st["app"]["state"] == "backoff", "waiting to restart")
    assert c.exec("/resil-init", "probe").returncode == 1


# --- examples/Dockerfile.scratch-app: FROM scratch, HEALTHCHECK via probe --------

SCRATCH_IMAGE = "resil-test/scratch-app"
FAST_HEALTH = ["-e", "RESIL_HEALTH_INTERVAL=300ms"]  # resil-init's checks; Docker's probe: --health-interval


@pytest.fixture(scope="module")
def scratch_image():
    build(SCRATCH_IMAGE, Path(REPO) / "examples", dockerfile=str(Path(REPO) / "examples/Dockerfile.scratch-app"),
          build_args=[f"INIT_IMAGE={INIT_IMAGE}"])  # fmt: skip
    return SCRATCH_IMAGE


# what `docker export` shows in any container: files Docker itself adds
DOCKER_ADDED = {".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf"}


def test_scratch_example_holds_only_resil_init_and_the_app(scratch_image):
    cid = docker("create", scratch_image).stdout.strip()
    try:
        exported = docker("export", cid, timeout=30, text=False).stdout
    finally:
        docker("rm", cid, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile()} - DOCKER_ADDED
    assert files == {"resil-init", "demo-app"}


def test_scratch_example_healthcheck_makes_docker_healthy(run, scratch_image):
    c = run("--health-interval", "500ms", *FAST_HEALTH, scratch_image)
    c.wait_state(lambda s: s.get("Health", {}).get("Status") == "healthy", timeout=30, what="healthy")
    status = json.loads(c.exec("/resil-init", "status", check=True).stdout)
    assert status["app"]["state"] == "running"


def test_scratch_example_healthcheck_makes_docker_unhealthy_when_the_app_is(run, scratch_image, test_image):
    c = run("--health-interval", "500ms", *FAST_HEALTH, "-e", "RESIL_BACKOFF=60s", scratch_image)
    c.wait_state(lambda s: s.get("Health", {}).get("Status") == "healthy", timeout=30, what="healthy")
    # busybox wget from a second container in the app's network namespace
    docker("run", "--rm", "--network", f"container:{c.id}", "--entrypoint", "wget", test_image,
           "-q", "-O-", "http://127.0.0.1:8080/unhealthy")  # fmt: skip
    c.wait_state(lambda s: s["Health"]["Status"] == "unhealthy", timeout=30, what="unhealthy")
    assert c.state()["Running"]


def test_scratch_image_without_a_writable_run_supervises_but_cannot_serve_probe(run, test_image):
    """What the example's VOLUME /run is for: the same image without it."""
    bare = "resil-test/scratch-bare"
    dockerfile = (
        "FROM scratch\n"
        f"COPY --from={INIT_IMAGE} /resil-init /resil-init\n"
        f"COPY --from={test_image} /apps/demo-app /demo-app\n"
        'ENTRYPOINT ["/resil-init", "--", "/demo-app"]\n'
    )
    docker("build", "-t", bare, "-", input=dockerfile)  # no context: everything comes from images
    c = run(*DEMO_APP_ENV, bare)
    c.wait_log(r"^demo-app\[\d+\]: listening")
    assert re.search(r"^resil-init\[1\]: warn: .*status", c.logs(), re.MULTILINE), c.logs()
    assert c.exec("/resil-init", "probe").returncode == 1
    assert c.state()["Running"]


# --- --listen: the port is resil-init's, through restarts (SPEC 7) ---------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listen_socket_survives_app_restarts_through_a_host_port(run, test_image):
    if "--listen" not in resil_init_help(test_image):
        pytest.skip("this resil-init has no --listen yet (SPEC 7)")
    port = free_port()
    c = run("--network", "host", test_image, "--listen", f"127.0.0.1:{port}",
            "--restart", "always", "--max-restarts", "100", "--backoff", "200ms",
            "--", "/apps/fd_server", "3")  # fmt: skip
    c.wait_log(r"^fd_server\[\d+\]: accepting")
    servers = []
    for _ in range(12):  # four app runs; connections made during a restart wait in the backlog
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            servers.append(s.recv(64).decode().strip())
    assert all(re.fullmatch(r"fd_server \d+", s) for s in servers), servers
    assert len(set(servers)) == 4, servers
