"""resil-init benchmark: resil-init (dynamic and static) against tini,
tini-static and dumb-init, side by side in one run. See bench/README.md.

Usage: python3 bench/bench.py [--save] [--sections a,b,...]
  --save       also write the table to bench/results.md
  --sections   run only these sections (names in SECTIONS below)
Environment (defaults in brackets):
  BENCH_STARTUP_N [200]   runs per candidate and mode in the start-up section
  BENCH_SIGNAL_N [300]    signals per candidate and mode
  BENCH_IDLE_S [10]       idle window in seconds
  BENCH_ORPHANS [5000]    orphans per reaping burst / shutdown
  BENCH_REAP_REPS [3]     reaping bursts per candidate and mode
  BENCH_SHUTDOWN_REPS [2] shutdowns per candidate and mode
  BENCH_REAP_MODES [pid1,sub]
  BENCH_STARTUP_VARIANTS [1]  0: skip resil-init's diagnostic start-up variants
  RESIL_INIT_BIN, RESIL_STATIC_BIN   the resil-init binaries to measure
The table goes to stdout and to build/bench/results.md; raw numbers to
build/bench/results.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import (InitHandle, fmt_num, fmt_ratio, median, percentile,  # noqa: E402
                 ratio)


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Row:
    metric: str
    values: dict                 # candidate name -> number, str or None
    unit: str = ""
    digits: int = 0
    ratios: bool = True          # whether ratio columns make sense
    note: str = ""


@dataclass
class Ctx:
    cands: list
    rows: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    binaries: list = field(default_factory=list)

    def names(self):
        return [c.name for c in self.cands]

    def add(self, row: Row):
        self.rows.append(row)


# --------------------------------------------------------------------------
# 6. binary size


def section_size(ctx: Ctx) -> None:
    sizes, static = {}, {}
    for c in ctx.cands:
        sizes[c.name] = os.stat(c.path).st_size / 1024
        static[c.name] = "static" if c.is_static() else "dynamic"
    ctx.add(Row("binary size", sizes, "KiB", 1))
    ctx.add(Row("linking", static, ratios=False))
    # the dynamic binaries also map their shared libraries at every start
    libs = {}
    for c in ctx.cands:
        if static[c.name] == "static":
            libs[c.name] = 0
            continue
        try:
            out = subprocess.run(["ldd", c.path], capture_output=True, text=True, timeout=10).stdout
            libs[c.name] = sum(1 for line in out.splitlines() if "=>" in line)
        except (OSError, subprocess.SubprocessError):
            libs[c.name] = None
    ctx.add(Row("shared libraries loaded (ldd)", libs, "", 0, ratios=False))
    ctx.raw["size_kib"] = sizes


# --------------------------------------------------------------------------
# 1. start-up overhead


def fake_cgroup_dir() -> str:
    """A cgroup-v1-style directory with no memory.pressure: resil-init given it
    as --cgroup-root arms no PSI trigger (diagnostic start-up variant)."""
    d = os.path.join(lib.tmpdir(), "fake-cgroup")
    if not os.path.isdir(d):
        os.makedirs(d)
        for name, text in (("memory.limit_in_bytes", "9223372036854771712\n"),
                           ("memory.usage_in_bytes", "10485760\n"),
                           ("memory.stat", "total_inactive_file 0\n"),
                           ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    return d


def tmpfs_dir() -> Optional[str]:
    """A private directory on a tmpfs (/dev/shm), or None."""
    try:
        with open("/proc/mounts") as f:
            if not any(line.split()[1] == "/dev/shm" and line.split()[2] == "tmpfs" for line in f):
                return None
        d = os.path.join("/dev/shm", os.path.basename(lib.tmpdir()))
        os.makedirs(d, exist_ok=True)
        lib.extra_cleanup.append(d)
        return d
    except OSError:
        return None


def section_startup(ctx: Ctx) -> None:
    n = env_int("BENCH_STARTUP_N", 200)
    app = ["/bin/true"]
    for pid1 in (False, True):
        mode = "PID 1 (unshare)" if pid1 else "subreaper"
        wrap = lib.UNSHARE if pid1 else []
        items = [("/bin/true alone", wrap + app, None)]
        for c in ctx.cands:
            items.append((c.name, wrap + c.argv(app, pid1), c.env()))
        # Diagnostic variants of resil-init (subreaper mode only): without the
        # PSI trigger, and also with the state dir on a tmpfs.
        variants = []
        if not pid1 and os.environ.get("BENCH_STARTUP_VARIANTS", "1") != "0":
            fake = fake_cgroup_dir()
            shm = tmpfs_dir()
            for c in ctx.cands:
                if not c.is_resil:
                    continue
                argv = [c.path, "--cgroup-root", fake, "--"] + app
                items.append((("nopsi", c.name), argv, c.env()))
                variants.append("nopsi")
                if shm:
                    env = c.env()
                    env["RESIL_STATE_DIR"] = os.path.join(shm, c.name)
                    items.append((("nopsi+tmpfs", c.name), argv, env))
                    variants.append("nopsi+tmpfs")
        # resolve argv[0] for posix_spawn (no PATH search)
        items = [(name, [shutil.which(a[0]) or a[0]] + a[1:], env) for name, a, env in items]
        log(f"start-up, {mode}: {n} runs x {len(items)} commands, interleaved")
        lib.interleaved(items, 10, lambda it: lib.time_spawn(it[1], it[2]), seed=7)  # warm-up
        res = lib.interleaved(items, n, lambda it: lib.time_spawn(it[1], it[2]), seed=11)
        meds, bad = {}, {}
        for i, (name, _, _) in enumerate(items):
            times = [t for t, _ in res[i]]
            codes = [rc for _, rc in res[i]]
            meds[name] = median(times) / 1000.0
            if any(rc != 0 for rc in codes):
                bad[str(name)] = sorted(set(codes))
        base = meds.pop("/bin/true alone")
        over = {name: meds[name] - base for name in ctx.names()}
        ctx.add(Row(f"start-up overhead, {mode} (median of {n})", over, "µs", 0,
                    note=f"`/bin/true` alone: {base:.0f} µs"))
        if "nopsi" in variants:
            ctx.add(Row("… same, resil-init without PSI trigger (`--cgroup-root` dir without "
                        "memory.pressure)", {k[1]: v - base for k, v in meds.items()
                                             if isinstance(k, tuple) and k[0] == "nopsi"}, "µs", 0))
        if "nopsi+tmpfs" in variants:
            ctx.add(Row("… same, without PSI trigger and with the state dir on tmpfs",
                        {k[1]: v - base for k, v in meds.items()
                         if isinstance(k, tuple) and k[0] == "nopsi+tmpfs"}, "µs", 0))
        ctx.raw[f"startup_{'pid1' if pid1 else 'sub'}"] = {
            "baseline_us": base, "median_us": {str(k): v for k, v in meds.items()},
            "overhead_us": over, "nonzero_exit": bad}
        for name, codes in bad.items():
            ctx.notes.append(f"start-up {mode}: {name} exited with {codes} in some runs")


def section_syscalls(ctx: Ctx) -> None:
    """Syscalls made by the init itself (not the app) for `-- /bin/true`."""
    strace = shutil.which("strace")
    if not strace:
        return
    vals = {}
    out = os.path.join(lib.tmpdir(), "strace.txt")
    for c in ctx.cands:
        try:
            subprocess.run([strace, "-c", "-o", out] + c.argv(["/bin/true"], False),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=c.env(), timeout=20)
            with open(out) as f:
                m = re.search(r"^-+.*\n\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total", f.read(), re.M)
            vals[c.name] = int(m.group(1)) if m else None
        except (OSError, subprocess.SubprocessError):
            vals[c.name] = None
    ctx.add(Row("syscalls by the init for `-- /bin/true` (strace -c)", vals))
    ctx.raw["syscalls"] = vals


# --------------------------------------------------------------------------
# 2 + 3. RSS and idle cost while supervising `sleep 60`


def section_idle(ctx: Ctx) -> None:
    secs = env_int("BENCH_IDLE_S", 10)
    sleep = shutil.which("sleep") or "/bin/sleep"
    keys, handles = [], []   # key: (candidate name, "pid1" | "sub" | "nopsi")
    control, control_row = None, None
    try:
        for mode in ("pid1", "sub", "nopsi"):
            for c in ctx.cands:
                if mode == "nopsi" and not c.is_resil:
                    continue
                extra = ["--cgroup-root", fake_cgroup_dir()] if mode == "nopsi" else []
                handles.append(InitHandle(c, [sleep, "60"], pid1=(mode != "sub"), extra_args=extra))
                keys.append((c.name, mode))
        for k, h in zip(keys, handles):
            if not h.wait_app(sleep):
                ctx.notes.append(f"idle: {k[0]} ({k[1]}) did not start sleep")
        time.sleep(1.0)  # let every init finish its start-up work
        mem = {k: lib.rss(h.init_pid) for k, h in zip(keys, handles)}
        # control: a process that only waits on a PSI trigger like resil-init's
        psi = [f for h in handles if h.cand.is_resil for f in lib.psi_files(h.init_pid)]
        if psi:
            try:
                control = lib.start_psi_waiter(psi[0])
            except (OSError, RuntimeError) as e:
                ctx.notes.append(f"idle: PSI control not started: {e}")
        log(f"idle: {len(handles)} inits supervising `sleep 60`, {secs} s window")
        before = lib.snapshot(control.pid) if control else None
        cost = lib.idle_cost(handles, secs)
        if control:
            after = lib.snapshot(control.pid)
            ctl = (after.vol - before.vol) + (after.nonvol - before.nonvol)
            events = lib.psi_waiter_events(control)
            ctx.raw["idle_psi_control"] = {"file": psi[0], "wakeups": ctl, "events": events}
            control_row = Row(f"… control: a bare epoll_wait() on a PSI trigger on resil-init's "
                              f"memory.pressure, wake-ups in the same {secs} s",
                              {n: ctl for n in ctx.names() if n.startswith("resil-init")},
                              ratios=False)
            ctx.notes.append(
                f"idle control: a process doing nothing but epoll_wait() on a PSI trigger "
                f"(`some 150000 2000000`, as resil-init writes) on {psi[0]} had {ctl} "
                f"context switches in the same {secs} s window and received {events} "
                "PSI events: wake-ups of that kind come from the kernel's PSI machinery "
                "(they vary with what else the machine does), not from resil-init's timers")
        for k, h in zip(keys, handles):
            if not h.alive():
                ctx.notes.append(f"idle: {k[0]} ({k[1]}) exited early")
    finally:
        if control:
            control.kill()
            control.wait()
            control.stdout.close()
        lib.stop_all(handles)
    by = dict(zip(keys, cost))
    names = ctx.names()
    for key, label in (("VmRSS", "VmRSS"), ("Pss", "Pss (smaps_rollup)"),
                       ("Private", "Private clean+dirty (smaps_rollup)")):
        ctx.add(Row(f"{label}, PID 1, supervising sleep", {
            n: mem.get((n, "pid1"), {}).get(key) for n in names}, "KiB"))
    ctx.add(Row("Private clean+dirty, subreaper", {
        n: mem.get((n, "sub"), {}).get("Private") for n in names}, "KiB"))
    for mode, label in (("pid1", "PID 1"), ("sub", "subreaper")):
        ctx.add(Row(f"idle wake-ups in {secs} s (vol+invol ctxsw), {label}",
                    {n: by[(n, mode)]["wakeups"] for n in names if (n, mode) in by}))
        if mode == "pid1":
            if control_row:
                ctx.add(control_row)
            ctx.add(Row(f"… same, resil-init without PSI trigger (`--cgroup-root` dir without "
                        "memory.pressure)", {n: by[(n, "nopsi")]["wakeups"] for n in names
                                             if (n, "nopsi") in by}, ratios=False))
        ctx.add(Row(f"idle CPU in {secs} s (sum_exec_runtime), {label}",
                    {n: by[(n, mode)]["cpu_us"] for n in names if (n, mode) in by}, "µs", 0))
    ctx.add(Row(f"idle CPU in {secs} s, utime+stime ticks (1/{lib.CLK_TCK} s), PID 1",
                {n: by[(n, "pid1")]["ticks"] for n in names if (n, "pid1") in by}, ratios=False))
    ctx.raw["rss_kib"] = {f"{n}/{m}": v for (n, m), v in mem.items()}
    ctx.raw["idle"] = {f"{n}/{m}": v for (n, m), v in by.items()}


# --------------------------------------------------------------------------
# 4. signal-forwarding latency


def section_signals(ctx: Ctx) -> None:
    n = env_int("BENCH_SIGNAL_N", 300)
    app = [sys.executable, "-I", "-S", os.path.join(lib.BENCH_DIR, "sigapp.py")]
    handles, bufs = [], {}
    lat = {}
    try:
        for pid1 in (True, False):
            for c in ctx.cands:
                h = InitHandle(c, app, pid1=pid1, stdout=subprocess.PIPE)
                handles.append(h)
        live = []
        for h in handles:
            buf = bytearray()
            line = lib.read_line(h.popen.stdout.fileno(), buf, 10.0)
            if line != b"ready":
                ctx.notes.append(f"signals: {h.cand.name} app not ready ({line!r})")
                continue
            bufs[id(h)] = buf
            lat[id(h)] = []
            live.append(h)
        log(f"signals: {n} SIGUSR1 per init x {len(live)} inits, interleaved")
        rng = random.Random(5)
        order = list(live)
        lost = {id(h): 0 for h in live}
        for _ in range(n):
            rng.shuffle(order)
            for h in order:
                t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                os.kill(h.init_pid, signal.SIGUSR1)
                line = lib.read_line(h.popen.stdout.fileno(), bufs[id(h)], 1.0)
                if line is None:
                    lost[id(h)] += 1
                    continue
                lat[id(h)].append((int(line) - t0) / 1000.0)
                time.sleep(0.0005)
    finally:
        lib.stop_all(handles)
    for pid1 in (True, False):
        mode = "PID 1" if pid1 else "subreaper"
        med, p95 = {}, {}
        for h in handles:
            if h.pid1 != pid1 or id(h) not in lat:
                continue
            med[h.cand.name] = median(lat[id(h)])
            p95[h.cand.name] = percentile(lat[id(h)], 95)
            if lost[id(h)]:
                ctx.notes.append(f"signals: {h.cand.name} ({mode}): {lost[id(h)]} of {n} signals "
                                 "not received within 1 s")
        ctx.add(Row(f"signal latency kill()→app, {mode}, median of {n}", med, "µs", 0))
        ctx.add(Row(f"signal latency kill()→app, {mode}, p95", p95, "µs", 0))
        ctx.raw[f"signal_{'pid1' if pid1 else 'sub'}"] = {"median_us": med, "p95_us": p95}


# --------------------------------------------------------------------------
# 5. reaping a burst of orphans

REAP_APP = r"""exec 3<"$1"
sh -c 'i=0; while [ "$i" -lt "$1" ]; do read _ <&3 & i=$((i+1)); done' spawner "$2"
exec 3<&-; echo ready; exec 0<"$3"; read _ || :"""
# $1: FIFO the orphans block on; $2: how many; $3: FIFO the app itself waits
# on (`read` returns at EOF, the app then exits 0). The spawner starts the
# readers in the background and exits: they are orphaned all at once and
# reparented to the init (one fork per orphan, cheaper than a double fork).


class OrphanRun:
    """One init whose app leaves `orphans` children of the init (started in the
    background by a spawner shell that then exits) blocked on FIFO A; closing A makes them all exit
    at once; closing FIFO B makes the app itself exit."""

    def __init__(self, c, pid1: bool, orphans: int, tag: str):
        self.cand, self.pid1, self.orphans = c, pid1, orphans
        base = os.path.join(lib.tmpdir(), f"fifo-{c.name}-{int(pid1)}-{tag}")
        self.fifo_a, self.fifo_b = base + "-a", base + "-b"
        os.mkfifo(self.fifo_a, 0o600)
        os.mkfifo(self.fifo_b, 0o600)
        # the bench holds the only writers; O_RDWR so that open never blocks
        self.wa = os.open(self.fifo_a, os.O_RDWR | os.O_CLOEXEC)
        self.wb = os.open(self.fifo_b, os.O_RDWR | os.O_CLOEXEC)
        self.h = InitHandle(c, ["/bin/sh", "-c", REAP_APP, "sh", self.fifo_a, str(orphans),
                                self.fifo_b], pid1=pid1, stdout=subprocess.PIPE)
        self.error = None

    def wait_ready(self, timeout: float = 120.0) -> bool:
        line = lib.read_line(self.h.popen.stdout.fileno(), bytearray(), timeout)
        got = lib.count_children(self.h.init_pid)
        # the orphans stay in the app's process group: remember it
        kids = lib.children(self.h.init_pid)
        self.pgid = lib.proc_pgrp(kids[0]) if kids else None
        reaper = self.pid1 or self.cand.is_subreaper
        if line != b"ready" or (reaper and got != self.orphans + 1):
            self.error = f"set-up failed (app said {line!r}; the init has {got} children)"
            return False
        return True

    def release_orphans(self) -> dict:
        """Closes FIFO A and waits until the init has no child but the app."""
        time.sleep(0.2)
        s0 = lib.snapshot(self.h.init_pid)
        t0 = time.monotonic()
        self._close("wa")
        left, deadline = self.orphans + 1, t0 + 30
        while left > 1 and time.monotonic() < deadline:
            time.sleep(0.0005)
            left = lib.count_children(self.h.init_pid)
        t1 = time.monotonic()
        s1 = lib.snapshot(self.h.init_pid)
        return {"wall_ms": (t1 - t0) * 1000, "cpu_ms": (s1.cpu_ns - s0.cpu_ns) / 1e6,
                "wakeups": (s1.vol - s0.vol) + (s1.nonvol - s0.nonvol), "unreaped": left - 1}

    def end_app(self) -> dict:
        """Closes FIFO B (the app exits, the orphans are still there) and waits
        for what the bench spawned to exit; counts the orphans still alive."""
        time.sleep(0.2)
        t0 = time.monotonic()
        self._close("wb")
        try:
            rc = self.h.popen.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
        t1 = time.monotonic()
        alive = lib.count_pgrp(self.pgid) if self.pgid and not self.pid1 else 0
        return {"wall_ms": (t1 - t0) * 1000, "rc": rc, "alive": alive}

    def _close(self, attr: str) -> None:
        fd = getattr(self, attr)
        if fd is not None:
            os.close(fd)
            setattr(self, attr, None)

    def close(self) -> None:
        self._close("wa")
        self._close("wb")
        self.h.stop()


def orphan_runs(ctx: Ctx, what: str, orphans: int, modes: list, reps: int, measure) -> dict:
    """Runs measure(run) for every candidate x mode x rep; two set-ups at a
    time (2 cores), measurements one at a time. Returns {(name, mode): [dict]}."""
    results = {}
    for rep in range(reps):
        for mode in modes:
            pid1 = mode == "pid1"
            cands = [c for c in ctx.cands if pid1 or c.is_subreaper or what == "shutdown"]
            for k in range(0, len(cands), 2):
                pair = cands[k:k + 2]
                runs = []
                try:
                    log(f"{what} ({mode}, run {rep + 1}/{reps}): "
                        f"{', '.join(c.name for c in pair)} creating {orphans} orphans each")
                    for c in pair:
                        runs.append(OrphanRun(c, pid1, orphans, f"{what}{rep}"))
                    for r in runs:
                        if not r.wait_ready():
                            ctx.notes.append(f"{what} ({mode}): {r.cand.name}: {r.error}")
                            continue
                        results.setdefault((r.cand.name, mode), []).append(measure(r))
                finally:
                    for r in runs:
                        r.close()
                    lib.cleanup_descendants()  # orphans a peer left behind (tini -s)
    return results


def section_reap(ctx: Ctx) -> None:
    orphans = env_int("BENCH_ORPHANS", 5000)
    reps = env_int("BENCH_REAP_REPS", 3)
    modes = [m.strip() for m in os.environ.get("BENCH_REAP_MODES", "pid1,sub").split(",") if m.strip()]
    results = orphan_runs(ctx, "reap", orphans, modes, reps, OrphanRun.release_orphans)
    for (n, mode), rs in results.items():
        for r in rs:
            if r["unreaped"]:
                ctx.notes.append(f"reap ({mode}): {n}: {r['unreaped']} orphans not reaped after 30 s")
    for mode in modes:
        label = "PID 1" if mode == "pid1" else "subreaper"
        wall, cpu = {}, {}
        for c in ctx.cands:
            rs = results.get((c.name, mode))
            if rs:
                wall[c.name] = median([r["wall_ms"] for r in rs])
                cpu[c.name] = median([r["cpu_ms"] for r in rs])
            elif mode != "pid1" and not c.is_subreaper:
                wall[c.name] = cpu[c.name] = "not a subreaper"
        ctx.add(Row(f"reap {orphans} orphans exiting at once: wall until all reaped, {label} "
                    f"(median of {reps})", wall, "ms", 1))
        ctx.add(Row(f"reap {orphans} orphans: CPU of the init, {label}", cpu, "ms", 1))
    ctx.raw["reap"] = {f"{n}/{m}": v for (n, m), v in results.items()}


def section_shutdown(ctx: Ctx) -> None:
    """The app exits while `orphans` processes it left behind still run."""
    orphans = env_int("BENCH_ORPHANS", 5000)
    modes = [m.strip() for m in os.environ.get("BENCH_REAP_MODES", "pid1,sub").split(",") if m.strip()]
    reps = env_int("BENCH_SHUTDOWN_REPS", 2)
    results = orphan_runs(ctx, "shutdown", orphans, modes, reps, OrphanRun.end_app)
    for mode in modes:
        label = "PID 1" if mode == "pid1" else "subreaper"
        wall, alive = {}, {}
        for n in ctx.names():
            rs = results.get((n, mode))
            if rs:
                wall[n] = median([r["wall_ms"] for r in rs])
                alive[n] = max(r["alive"] for r in rs)
                if any(r["rc"] is None for r in rs):
                    ctx.notes.append(f"shutdown ({mode}): {n} did not exit within 30 s")
        ctx.add(Row(f"app exits leaving {orphans} orphans: until the init has exited, {label} "
                    f"(median of {reps})", wall, "ms", 1, ratios=(mode == "pid1")))
        ctx.add(Row(f"… orphans still alive after the init exited, {label}", alive, ratios=False))
    ctx.raw["shutdown"] = {f"{n}/{m}": v for (n, m), v in results.items()}


# --------------------------------------------------------------------------
# hooks for benchmarks still to come


def section_health_check_cost(ctx: Ctx) -> None:
    """HOOK (not implemented yet): cost of resil-init's health-check loop.

    Suggested shape: start an HTTP server on 127.0.0.1 (a thread in the bench,
    or the app itself), start resil-init(-static) with
    `--health-url http://127.0.0.1:PORT/health --health-interval 250ms` as
    PID 1 via lib.InitHandle(c, app, pid1=True, extra_args=[...]), then
    lib.idle_cost([h], seconds) gives CPU µs and wake-ups per window: report
    CPU per check (cpu_us / checks) and RSS growth (lib.rss before/after) as
    Rows. The peers have no health checks: put "—" (a str) in their cells.
    """
    return None


def section_memory_watch(ctx: Ctx) -> None:
    """HOOK (not implemented yet): cost of resil-init's memory watching.

    Suggested shape: a fake cgroup directory (--cgroup-root DIR with
    memory.max/memory.current/memory.stat/memory.events files) or the real
    one, resil-init supervising `sleep`, and lib.idle_cost() over a window with
    the default --memory-interval and with PSI triggers available/unavailable;
    report wake-ups and CPU per window, plus the reaction time from writing a
    higher memory.current to the tier change in status.json (poll
    $RESIL_STATE_DIR/status.json; InitHandle sets a private RESIL_STATE_DIR).
    """
    return None


SECTIONS = [
    ("size", section_size),
    ("startup", section_startup),
    ("syscalls", section_syscalls),
    ("idle", section_idle),
    ("signals", section_signals),
    ("reap", section_reap),
    ("shutdown", section_shutdown),
    ("health", section_health_check_cost),
    ("memory", section_memory_watch),
]


# --------------------------------------------------------------------------
# output

RATIO_COLS = [  # (header, resil candidate, peer)
    ("resil-init ÷ tini", "resil-init", "tini"),
    ("static ÷ tini-static", "resil-init-static", "tini-static"),
    ("static ÷ dumb-init", "resil-init-static", "dumb-init"),
]


def render(ctx: Ctx, elapsed: float) -> str:
    names = ctx.names()
    cols = [rc for rc in RATIO_COLS if rc[1] in names and rc[2] in names]
    out = []
    today = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1).strip() if m else ""
    except OSError:
        pass
    out.append(f"Measured {today}; machine: {os.cpu_count()} cores ({cpu}), "
               f"kernel {platform.release()}; bench took {elapsed:.0f} s.")
    if ctx.binaries:
        out.append("Binaries: " + "; ".join(ctx.binaries) + ".")
    out.append("")
    out.append("| metric | " + " | ".join(names) + " | " + " | ".join(h for h, _, _ in cols) + " |")
    out.append("|---|" + "---:|" * (len(names) + len(cols)))
    for r in ctx.rows:
        cells = []
        for n in names:
            v = r.values.get(n)
            cells.append(fmt_num(v, r.unit, r.digits) if not isinstance(v, str) else v)
        rcells = []
        for _, a, b in cols:
            va, vb = r.values.get(a), r.values.get(b)
            if not r.ratios or isinstance(va, str) or isinstance(vb, str):
                rcells.append("—")
            else:
                rcells.append(fmt_ratio(ratio(va, vb)))
        metric = r.metric + (f" ({r.note})" if r.note else "")
        out.append(f"| {metric} | " + " | ".join(cells) + " | " + " | ".join(rcells) + " |")
    if ctx.notes:
        out.append("")
        out.append("Notes from this run:")
        for n in ctx.notes:
            out.append(f"- {n}")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", action="store_true", help="also write bench/results.md")
    ap.add_argument("--sections", default="", help="comma-separated subset of: "
                    + ",".join(n for n, _ in SECTIONS))
    args = ap.parse_args()
    want = [s for s in args.sections.split(",") if s] or [n for n, _ in SECTIONS]
    unknown = set(want) - {n for n, _ in SECTIONS}
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:  # unprivileged: a user namespace makes PID namespaces possible
        lib.UNSHARE[1:1] = ["--user", "--map-root-user"]

    cands = lib.candidates()
    if not cands:
        print("bench: no init found to measure", file=sys.stderr)
        return 1
    missing = {"resil-init", "resil-init-static", "tini", "tini-static", "dumb-init"} - {c.name for c in cands}
    ctx = Ctx(cands)
    for m in sorted(missing):
        ctx.notes.append(f"{m} not found: not measured")

    lib.become_subreaper()
    binaries = []
    for c in cands:
        if c.is_resil:  # measure a private copy: others may rebuild build/ meanwhile
            binaries.append(f"{c.name} = {c.snapshot_binary()}")
    ctx.binaries = binaries

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    start = time.monotonic()
    try:
        for name, fn in SECTIONS:
            if name in want:
                fn(ctx)
    finally:
        killed = lib.cleanup_descendants()
        if killed:
            log(f"cleanup: killed {killed} leftover process(es) the bench had started")
        lib.remove_tmpdir()
    table = render(ctx, time.monotonic() - start)
    print(table, end="")
    outdir = os.path.join(lib.REPO, "build", "bench")
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(ctx.raw, f, indent=1, default=str)
    if args.save:
        path = os.path.join(lib.BENCH_DIR, "results.md")
        kept = ""  # a hand-written "## Findings" section survives a re-save
        try:
            with open(path) as f:
                old = f.read()
            i = old.find("\n## Findings")
            if i >= 0:
                kept = "\n" + old[i + 1:]
        except OSError:
            pass
        with open(path, "w") as f:
            f.write("# resil-init benchmark results\n\n"
                    "Produced by `sh bench/run.sh --save` (method: bench/README.md).\n\n")
            f.write(table)
            f.write(kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
