"""The soak (`make soak`): resil-init through 10,000 restarts and 100,000 health
checks, with its open descriptors and VmRSS sampled all along. Both must stay
flat: a descriptor or a few bytes kept per restart or per check would add up
over the life of a container.

    python3 bench/soak.py [--restarts N] [--checks N] [--bin PATH] [--save]

Restarts: `resil-init --restart always --backoff 1ms -- true` (a window of 1 ms
keeps the budget from ever filling), counted from status.json. Health checks:
`--health-url` every 1 ms against examples' demo-app, counted from resil-init's
own debug lines ("check of ... passed"). Samples are taken as the count rises;
the first tenth is warm-up (allocator arenas, libcurl's first connection), and
the rest is flat when its second half never peaks above its first half (by
more than 64 KiB of RSS: page-granular noise).
Prints a markdown section; --save puts it in bench/results.md under "## Soak"
(replacing an earlier one). Exit 1 when a figure is not flat.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results.md"
RSS_SLACK_KIB = 64  # page-granular noise: a leak of a few bytes per event shows far above it


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Samples:
    def __init__(self, total):
        self.total = total
        self.rows = []  # (count, fds, rss KiB)
        self.next_at = 0

    def take(self, pid, count, last=False):
        if count >= self.next_at or last:
            self.rows.append((count, fds(pid), rss_kib(pid)))
            self.next_at = count + max(1, self.total // 50)

    def after_warmup(self):
        return [r for r in self.rows if r[0] >= self.total // 10] or self.rows

    def verdict(self):
        """(fds flat, RSS flat): the second half of the judged samples never
        goes above the first half's peak (descriptors come and go within a
        restart or a check: the exec-error pipe, the check's socket)."""
        rows = self.after_warmup()
        half = max(1, len(rows) // 2)
        early, late = rows[:half], rows[half:] or rows[-1:]
        fd_flat = max(r[1] for r in late) <= max(r[1] for r in early)
        rss_flat = max(r[2] for r in late) - max(r[2] for r in early) <= RSS_SLACK_KIB
        return fd_flat, rss_flat

    def describe(self, what, took):
        rows = self.after_warmup()
        first, last = rows[0], rows[-1]
        fd_flat, rss_flat = self.verdict()
        return (f"| {what} | {self.rows[-1][0]:,} | {took:.0f} s "
                f"| {first[1]} → {last[1]} (min {min(r[1] for r in rows)}, max {max(r[1] for r in rows)}) "
                f"| {first[2]:,} → {last[2]:,} KiB (max {max(r[2] for r in rows):,}) "
                f"| {'flat' if fd_flat and rss_flat else 'NOT FLAT'} |")


def start(binary, args, stderr):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIL_")}
    return subprocess.Popen([binary, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=stderr, env=env, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def soak_restarts(binary, total, work):
    state = work / "state-restarts"
    proc = start(binary, ["--state-dir", str(state), "--restart", "always", "--backoff", "1ms",
                          "--restart-window", "1ms", "--max-restarts", "5", "--grace", "1s",
                          "--", "true"], subprocess.DEVNULL)
    samples = Samples(total)
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            try:
                count = json.loads((state / "status.json").read_text())["app"]["restarts"]
            except (FileNotFoundError, ValueError, KeyError):
                count = 0
            samples.take(proc.pid, count, last=count >= total)
            if count >= total:
                break
            time.sleep(0.05)
    finally:
        took = time.monotonic() - t0
        stop(proc)
    if not samples.rows or samples.rows[-1][0] < total:
        raise SystemExit(f"soak: resil-init exited after {samples.rows[-1][0] if samples.rows else 0}"
                         f" restarts (status {proc.returncode})")
    return samples, took


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def soak_checks(binary, total, work):
    demo = REPO / "build" / "examples" / "demo-app"
    port = free_port()
    log = work / "checks.log"
    url = f"http://127.0.0.1:{port}/health"
    with open(log, "wb") as err:
        env_port = dict(os.environ, PORT=str(port))
        proc = subprocess.Popen(
            [binary, "-v", "--health-url", url, "--health-interval", "1ms", "--health-retries",
             "1000000", "--state-dir", str(work / "state-checks"), "--", str(demo)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            env={k: v for k, v in env_port.items() if not k.startswith("RESIL_")},
            start_new_session=True)
    samples = Samples(total)
    passed = re.compile(rb"health: check of \S+ passed")
    count, offset, rest = 0, 0, b""
    t0 = time.monotonic()
    try:
        while proc.poll() is None and count < total:
            with open(log, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            count += sum(1 for line in lines if passed.search(line))
            samples.take(proc.pid, count, last=count >= total)
            time.sleep(0.05)
    finally:
        took = time.monotonic() - t0
        stop(proc)
    if count < total:
        raise SystemExit(f"soak: only {count} health checks passed (status {proc.returncode}); "
                         f"see {log}")
    return samples, took


def section(binary, rows, commit):
    try:
        binary = str(Path(binary).resolve().relative_to(REPO))
    except ValueError:
        pass
    return "\n".join([
        "## Soak",
        "",
        f"`make soak` (bench/soak.py), binary `{binary}`, commit {commit}, "
        f"{time.strftime('%Y-%m-%d')}, run at `nice -n 19` on the shared 2-core VM. "
        "Open descriptors and VmRSS of resil-init, sampled 50 times along each run; "
        "the first tenth is warm-up and not judged. Flat means the second half of the judged "
        "samples never peaks above the first half: no descriptor more, and VmRSS no more than "
        f"{RSS_SLACK_KIB} KiB (page-granular noise) above.",
        "",
        "| run | events | wall | open fds (judged part) | VmRSS (judged part) | verdict |",
        "|---|---:|---:|---|---|---|",
        *rows,
        "",
    ])


def save(text):
    old = RESULTS.read_text() if RESULTS.exists() else ""
    m = re.search(r"^## Soak\n.*?(?=^## |\Z)", old, flags=re.M | re.S)
    new = old[:m.start()] + text + "\n" + old[m.end():] if m else old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--restarts", type=int, default=10000)
    ap.add_argument("--checks", type=int, default=100000)
    ap.add_argument("--bin", default=os.environ.get("RESIL_INIT_BIN") or str(REPO / "build" / "resil-init"))
    ap.add_argument("--save", action="store_true")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="resil-soak-"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    rows, flat = [], True
    for what, fn, total in (("restarts", soak_restarts, a.restarts),
                            ("health checks", soak_checks, a.checks)):
        print(f"soak: {total:,} {what} ...", file=sys.stderr, flush=True)
        samples, took = fn(a.bin, total, work)
        rows.append(samples.describe(what, took))
        flat = flat and all(samples.verdict())
        print(rows[-1], file=sys.stderr, flush=True)
    text = section(a.bin, rows, commit)
    print(text)
    if a.save:
        save(text)
    sys.exit(0 if flat else 1)


if __name__ == "__main__":
    main()
