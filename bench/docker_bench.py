"""docker stop latency and container start overhead under a real Docker engine,
with resil-init as ENTRYPOINT, with `docker run --init` (tini-static as PID 1),
and with no init (the app as PID 1), side by side in one run.

bench/docker.sh starts a private engine and builds the images first; this
script measures and prints a markdown table (also build/bench/docker.md).
Knobs: BENCH_DOCKER_STARTS (runs per candidate, default 10) and
BENCH_DOCKER_STOPS (default 4; the no-handler case runs half as often, since
without an init each stop waits out Docker's 10 s timeout).
"""

import calendar
import os
import random
import re
import statistics
import subprocess
import sys
import time

DOCKER = os.environ.get("RESIL_DOCKER", "/usr/bin/docker")
IMAGE = os.environ.get("RESIL_DOCKER_TEST_IMAGE", "resil-test/apps")
STARTS = int(os.environ.get("BENCH_DOCKER_STARTS", "10"))
STOPS = int(os.environ.get("BENCH_DOCKER_STOPS", "4"))
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "bench", "docker.md")

# How each candidate runs APP ARGS: `docker run` options before the image, and
# the words after it.
CANDIDATES = {
    "resil-init": lambda app: ([], ["--", *app]),
    "tini (--init)": lambda app: (["--init", "--entrypoint", app[0]], app[1:]),
    "no init": lambda app: (["--entrypoint", app[0]], app[1:]),
}
DEMO_APP = ["/apps/demo-app"]  # ends at once on SIGTERM (its own handler)
SLEEP = ["sleep", "1000"]  # no handler: as PID 1 the kernel ignores SIGTERM for it


def docker(*args, timeout=60):
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.exit(f"docker_bench: docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def progress(msg):
    print(f"docker_bench: {msg}", file=sys.stderr, flush=True)


def create(name, app, *extra):
    opts, words = CANDIDATES[name](app)
    return docker("create", "--network", "none", *extra, *opts, IMAGE, *words)


def docker_time(stamp):
    """Docker's RFC 3339 time with nanoseconds, as seconds since the epoch."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    base = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return base + float("0." + (frac or "0"))


def started_finished(cid):
    started, finished = docker("inspect", "--format", "{{.State.StartedAt}} {{.State.FinishedAt}}", cid).split()
    return docker_time(started), docker_time(finished)


def start_overhead():
    """`docker start -a` of a created container running `true`: what the engine
    and the init add to a start, up to the container's exit (the whole command,
    and the daemon's StartedAt to FinishedAt, which leaves out the client, the
    attach and the daemon's set-up before runc starts the init)."""
    wall = {name: [] for name in CANDIDATES}
    inside = {name: [] for name in CANDIDATES}
    for _ in range(STARTS):
        order = list(CANDIDATES)
        random.shuffle(order)
        for name in order:
            cid = create(name, ["true"])
            t0 = time.monotonic()
            docker("start", "-a", cid)
            wall[name].append(time.monotonic() - t0)
            started, finished = started_finished(cid)
            inside[name].append(finished - started)
            docker("rm", cid)
    return wall, inside


def wait_ready(cid, pattern, timeout=20):
    if pattern is None:  # an app that prints nothing: give it a moment to be running
        time.sleep(0.5)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = subprocess.run([DOCKER, "logs", cid], capture_output=True, text=True).stdout
        if re.search(pattern, logs, re.MULTILINE):
            return
        time.sleep(0.05)
    sys.exit(f"docker_bench: {cid[:12]} not ready ({pattern!r}) within {timeout}s")


def stop_latency(app, ready, rounds):
    """Wall time of `docker stop` (Docker's default 10 s timeout) once the app
    is ready, and from the stop request to the daemon's FinishedAt (the
    container's exit, before the daemon's clean-up that `docker stop` waits for)."""
    wall = {name: [] for name in CANDIDATES}
    until_exit = {name: [] for name in CANDIDATES}
    for _ in range(rounds):
        order = list(CANDIDATES)
        random.shuffle(order)
        for name in order:
            cid = create(name, app, "-e", "PORT=8080")
            docker("start", cid)
            wait_ready(cid, ready)
            t0, epoch0 = time.monotonic(), time.time()
            docker("stop", cid, timeout=30)
            wall[name].append(time.monotonic() - t0)
            until_exit[name].append(started_finished(cid)[1] - epoch0)
            docker("rm", cid)
    return wall, until_exit


def ms(seconds):
    return f"{seconds * 1000:,.0f} ms"


def row(metric, times):
    med = {name: statistics.median(v) for name, v in times.items()}
    cells = [ms(med[name]) for name in CANDIDATES]
    r, tini, none = med["resil-init"], med["tini (--init)"], med["no init"]
    return f"| {metric} | " + " | ".join(cells) + f" | {r / tini:.2f}× | {r / none:.2f}× |"


def main():
    t0 = time.monotonic()
    progress(f"container start overhead, {STARTS} runs each")
    start_wall, start_inside = start_overhead()
    progress(f"docker stop, app with a SIGTERM handler, {STOPS} each")
    stop_wall, stop_exit = stop_latency(DEMO_APP, r"^demo-app\[\d+\]: listening", STOPS)
    sleeps = max(1, STOPS // 2)
    progress(f"docker stop, app without a handler, {sleeps} each")
    sleep_wall, sleep_exit = stop_latency(SLEEP, None, sleeps)
    server = docker("version", "--format", "{{.Server.Version}}")
    lines = [
        f"Docker {server}, cgroup v1, overlay2; {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M')}; took {time.monotonic() - t0:.0f} s. Medians.",
        "",
        "| metric | resil-init | tini (--init) | no init | resil-init ÷ tini | resil-init ÷ no init |",
        "|---|---:|---:|---:|---:|---:|",
        row(f"`docker start -a` of `true`, whole command ({STARTS} runs)", start_wall),
        row("… the daemon's StartedAt → FinishedAt", start_inside),
        row(f"`docker stop`, app with a SIGTERM handler (demo-app, {STOPS} runs), whole command", stop_wall),
        row("… stop request → the daemon's FinishedAt", stop_exit),
        row(f"`docker stop`, app without a handler (`sleep`, {sleeps} runs), whole command", sleep_wall),
        row("… stop request → the daemon's FinishedAt", sleep_exit),
    ]
    table = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
