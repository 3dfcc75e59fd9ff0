"""resil-init under a real Docker engine (dockerd, containerd, runc), with the
image the repository's Dockerfile builds. Run by `make test-docker`
(tests/docker/run.sh starts the engine and builds the images first).

The test image is busybox-static with the repository image's /resil-init as
ENTRYPOINT and static test apps in /apps (tests/docker/apps/*.c, plus
examples/demo-app.c built with musl), so `docker run IMAGE [OPTIONS] -- APP`
runs resil-init as the container's PID 1 over APP. The arm64 image is the same
Dockerfile built with --platform linux/arm64; its test image holds the apps
cross-built for aarch64."""

import io
import json
import platform
import re
import shutil
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import INIT_IMAGE, INIT_IMAGE_ARM64, REPO, TEST_IMAGE_ARM64, build, docker, resil_init_help

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


def image_platform(image):
    return docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image).stdout.strip()


def test_dockerfile_image_without_platform_is_for_this_machine():
    """The legacy builder's cache ignores --platform: the arm64 build beside it
    must not have lent this one its layers or its label."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    assert image_platform(INIT_IMAGE) == f"linux/{arch}"


# --- the arm64 image: the same Dockerfile, --platform linux/arm64 ------------


def copy_out(image, path):
    """One file of an image, as bytes (docker create, docker cp to a tar stream)."""
    cid = docker("create", image).stdout.strip()
    try:
        stream = docker("cp", f"{cid}:{path}", "-", text=False).stdout
    finally:
        docker("rm", cid, check=False)
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        return tar.extractfile(tar.next()).read()


def test_arm64_image_holds_a_static_aarch64_binary_under_300_kb(tmp_path):
    binary = tmp_path / "resil-init"
    binary.write_bytes(copy_out(INIT_IMAGE_ARM64, "/resil-init"))
    desc = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "ARM aarch64" in desc, desc
    assert "statically linked" in desc, desc
    size = binary.stat().st_size
    assert size < 300_000, f"{size} bytes"


def test_arm64_image_is_recorded_as_linux_arm64_with_resil_init_as_entrypoint():
    assert image_platform(INIT_IMAGE_ARM64) == "linux/arm64"
    entrypoint = docker("image", "inspect", "--format", "{{json .Config.Entrypoint}}", INIT_IMAGE_ARM64).stdout
    assert json.loads(entrypoint) == ["/resil-init", "--"]


QEMU_IN_CONTAINER = "/qemu-aarch64"


def binfmt_runs_aarch64():
    """binfmt_misc hands aarch64 ELF files to qemu, with the F flag: the kernel
    opened the emulator when it was registered, so it also runs them in
    containers that hold no qemu (Debian's qemu-user-static registers it so)."""
    try:
        lines = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text().splitlines()
    except OSError:
        return False
    flags = [line.split(":", 1)[1] for line in lines if line.startswith("flags:")]
    return lines[:1] == ["enabled"] and bool(flags) and "F" in flags[0]


class Arm64Run:
    """docker run arguments for resil-init of an arm64 image: as is (arm64
    machine, binfmt_misc), or under qemu-aarch64-static bind-mounted into the
    container and named as the program. qemu-user does not follow execve(),
    so then resil-init starts the app through the emulator too."""

    def __init__(self, qemu):
        self.qemu = qemu

    def init(self, image):
        """Up to and including the program: resil-init's arguments follow."""
        if not self.qemu:
            return ["--platform", "linux/arm64", "--entrypoint", "/resil-init", image]
        return ["--platform", "linux/arm64", "-v", f"{self.qemu}:{QEMU_IN_CONTAINER}:ro",
                "--entrypoint", QEMU_IN_CONTAINER, image, "/resil-init"]  # fmt: skip

    def app(self, *cmd):
        return [QEMU_IN_CONTAINER, *cmd] if self.qemu else list(cmd)


@pytest.fixture(scope="module")
def arm64():
    if platform.machine() == "aarch64" or binfmt_runs_aarch64():
        return Arm64Run(qemu=None)
    qemu = shutil.which("qemu-aarch64-static")
    if not qemu:
        pytest.skip("cannot run aarch64 code here: no binfmt_misc entry qemu-aarch64 (F flag), "
                    "no qemu-aarch64-static (package qemu-user-static)")  # fmt: skip
    return Arm64Run(qemu=qemu)


def test_arm64_image_runs_its_binary_in_a_container(arm64):
    out = docker("run", "--rm", *arm64.init(INIT_IMAGE_ARM64), "--version").stdout
    assert read_version() in out


def test_arm64_exit_code_is_the_apps_status(run, arm64):
    c = run("-e", "PORT=0", *arm64.init(TEST_IMAGE_ARM64), "--",
            *arm64.app("/apps/demo-app", "--crash-after", "1"))  # fmt: skip
    assert c.wait() == 3
    assert c.reason_line(3), c.logs()


def test_arm64_docker_stop_ends_a_cooperative_app_with_143(run, arm64):
    c = run(*arm64.init(TEST_IMAGE_ARM64), "--", *arm64.app("/apps/stubborn", "obey", "none"))
    c.wait_log(r"^stubborn\[\d+\]: ready")
    took = c.stop()
    assert took < DOCKER_STOP_TIMEOUT - STOP_MARGIN, f"docker stop took {took:.1f}s: Docker's SIGKILL"
    assert c.wait() == 143
    assert "exit 143: stopped by SIGTERM" in (c.reason_line(143) or ""), c.logs()


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


def test_scratch_image_without_run_keeps_status_json_in_dev_shm(run, test_image):
    """The example without its VOLUME /run: no /run at all, and status.json goes
    to /dev/shm/resil-init (a tmpfs Docker mounts in every container, scratch
    ones too), where probe and status find it."""
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
    assert not re.search(r"^resil-init\[1\]: warn: .*status", c.logs(), re.MULTILINE), c.logs()
    assert c.exec("/resil-init", "probe").returncode == 0
    status = json.loads(c.exec("/resil-init", "status", check=True).stdout)
    assert status["app"]["state"] == "running"
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
