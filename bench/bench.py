"""resil-init benchmark: resil-init (dynamic and static) against tini,
tini-static and dumb-init, side by side in one run. See bench/README.md.

Usage: python3 bench/bench.py [--save] [--sections a,b,...]
  --save       also write the table to bench/results.md
  --sections   run only these sections (names in SECTIONS below)
Environment (defaults in brackets):
  BENCH_STARTUP_N [200]   runs per candidate and mode in the start-up section
  BENCH_SIGTERM_N [40]    fresh PID-1 runs per candidate, SIGTERM-forwarding section
  BENCH_SIGNAL_N [300]    signals per candidate and mode
  BENCH_IDLE_S [10]       idle window in seconds
  BENCH_ORPHANS [5000]    orphans per reaping burst / shutdown
  BENCH_REAP_REPS [3]     reaping bursts per candidate and mode
  BENCH_SHUTDOWN_REPS [2] shutdowns per candidate and mode
  BENCH_REAP_MODES [pid1,sub]
  BENCH_STARTUP_VARIANTS [1]  0: skip resil-init's diagnostic start-up variants
  BENCH_HEALTH_S [5]      health-check window in seconds
  BENCH_HEALTH_INTERVAL_MS [50]  --health-interval of the health-check section
  BENCH_MEMORY_S [20]     idle window of the memory-watching section
  BENCH_OOM_REPS [10]     OOM-kill → restart runs per binary on a fake cgroup
  BENCH_REAL_OOM_REPS [5] the same with a real OOM kill in a v1 memory cgroup
  BENCH_REAL_CGROUP [1]   0: make no real memory cgroup (no real OOM row)
  BENCH_EXIT_REPS [3]     app exit → init exit runs after a 2.5 s run
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
import select
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
        for c in ctx.cands:  # resil-init as a user runs it: its own default state dir
            items.append((c.name, wrap + c.argv(app, pid1), c.env(default_state=True)))
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
            ctx.add(Row("… same, resil-init with `--cgroup-root` on a fake v1 dir (no cgroup "
                        "discovery, small files; no memory.pressure)", {k[1]: v - base for k, v in meds.items()
                                             if isinstance(k, tuple) and k[0] == "nopsi"}, "µs", 0))
        if "nopsi+tmpfs" in variants:
            ctx.add(Row("… same, fake v1 dir and the state dir on tmpfs",
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
    section_page_faults(ctx)


def minor_faults(argv, env, runs: int) -> Optional[float]:
    """Mean minor page faults of `argv` and everything it waited for."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    for _ in range(runs):
        try:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
    return (resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before) / runs


def referenced_kib(pid: int) -> Optional[int]:
    """KiB of pid's memory referenced since the last clear_refs (smaps)."""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            return sum(int(line.split()[1]) for line in f if line.startswith("Referenced:"))
    except (OSError, ValueError):
        return None


def section_forward_pages(ctx: Ctx) -> None:
    """Pages the init touches to forward one signal, from sleep back to
    sleep: its referenced bits cleared (/proc/PID/clear_refs), SIGUSR1 sent
    (forwarded, the app ignores it), then smaps' Referenced. After a long
    sleep each such page may be cold (TLB, cache, a page the hypervisor took
    back), so fewer is a shorter, steadier SIGTERM forwarding."""
    app = ["/bin/sh", "-c", "trap '' USR1; exec sleep 30"]
    vals = {}
    for c in ctx.cands:
        handle = None
        try:
            handle = InitHandle(c, app, pid1=False, env=c.env())
            time.sleep(0.5)
            pid = handle.init_pid
            counts = []
            for _ in range(3):
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("1")
                os.kill(pid, signal.SIGUSR1)
                time.sleep(0.2)
                counts.append(referenced_kib(pid))
            vals[c.name] = None if None in counts else min(counts) // 4
        except (OSError, RuntimeError):
            vals[c.name] = None
        finally:
            if handle is not None:
                handle.stop()
    ctx.add(Row("pages touched to forward one signal (smaps Referenced after clear_refs; "
                "fewest of 3)", vals))
    ctx.raw["forward_pages"] = vals


def section_page_faults(ctx: Ctx) -> None:
    """Page faults the init itself takes for `-- /bin/true` (the run's minus
    /bin/true's own). On a VM each costs tens of µs, more than most system
    calls, so this count explains much of the start-up figure."""
    runs = 20
    alone = minor_faults(["/bin/true"], None, runs)
    vals = {}
    for c in ctx.cands:
        total = minor_faults(c.argv(["/bin/true"], False), c.env(), runs)
        vals[c.name] = round(total - alone) if total is not None and alone is not None else None
    ctx.add(Row("minor page faults by the init for `-- /bin/true` (getrusage, minus "
                "/bin/true's own)", vals))
    ctx.raw["page_faults"] = vals


# --------------------------------------------------------------------------
# SIGTERM forwarding overhead (a headline figure)


def sigterm_once(target) -> Optional[float]:
    """One fresh PID-1 run of sigapp.py --term, under the init `target` (a
    Candidate) or alone (None): µs from the bench's kill(SIGTERM) (to the init,
    or to the app itself) to the app's sigwaitinfo() return; None if lost."""
    app = [sys.executable, "-I", "-S", os.path.join(lib.BENCH_DIR, "sigapp.py"), "--term"]
    handle, popen, pid = None, None, None
    try:
        if target is not None:
            handle = InitHandle(target, app, pid1=True, stdout=subprocess.PIPE,
                                env=target.env(default_state=True))
            popen, pid = handle.popen, handle.init_pid
        else:
            popen = subprocess.Popen(lib.UNSHARE + app, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True, close_fds=True)
            exe = os.path.realpath(sys.executable)
            pid = lib.wait_for(lambda: next((k for k in lib.children(popen.pid)
                                             if lib.exe_of(k) == exe), None), 10.0)
        buf = bytearray()
        if not pid or lib.read_line(popen.stdout.fileno(), buf, 10.0) != b"ready":
            return None
        time.sleep(0.05)  # a platform's SIGTERM comes long after the start: let it settle
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        os.kill(pid, signal.SIGTERM)
        line = lib.read_line(popen.stdout.fileno(), buf, 2.0)
        popen.wait(5)
        return (int(line) - t0) / 1000.0 if line else None
    except (OSError, RuntimeError, ValueError, subprocess.SubprocessError):
        return None
    finally:
        if handle is not None:
            handle.stop()
        elif popen is not None:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
            popen.stdout.close()


def section_sigterm(ctx: Ctx) -> None:
    """The platform's SIGTERM to PID 1 until the app's handler has it, minus
    the same with the app itself as PID 1: what the init adds to every stop."""
    n = env_int("BENCH_SIGTERM_N", 40)
    items = [None] + list(ctx.cands)
    log(f"SIGTERM forwarding: {n} fresh PID-1 runs x {len(items)} (app alone and each init), "
        "interleaved")
    res = lib.interleaved(items, n, sigterm_once, seed=13)
    base_runs = [t for t in res[0] if t is not None]
    base = median(base_runs)
    meds, over = {}, {}
    for i, c in enumerate(items[1:], 1):
        runs = [t for t in res[i] if t is not None]
        if len(runs) < n:
            ctx.notes.append(f"SIGTERM forwarding: {c.name}: {n - len(runs)} of {n} runs lost")
        meds[c.name] = median(runs)
        over[c.name] = meds[c.name] - base if meds[c.name] is not None and base is not None else None
    ctx.add(Row(f"SIGTERM forwarding overhead, PID 1: kill() → the app's handler, minus the app "
                f"alone as PID 1 (median of {n} fresh runs)", over, "µs", 0,
                note=f"app alone as PID 1: {base:.0f} µs" if base is not None else ""))
    ctx.raw["sigterm_pid1"] = {"app_alone_us": base, "median_us": meds, "overhead_us": over}
    by_name = {c.name: [t for t in res[i] if t is not None] for i, c in enumerate(items[1:], 1)}
    a, b = HEADLINE_PAIR
    if a in by_name and b in by_name:
        ctx.raw["sigterm_pid1"]["ratio_interval_95"] = overhead_ratio_interval(
            by_name[a], by_name[b], base_runs)


def overhead_ratio_interval(runs_a: list, runs_b: list, base_runs: list,
                            resamples: int = 2000) -> Optional[list]:
    """95% bootstrap interval of (median(a) - median(base)) / (median(b) -
    median(base)): how far the ratio of two overheads could move on another
    day's samples of the same machine. Each list is resampled on its own (the
    runs are independent fresh processes); seeded, so a run is reproducible."""
    if not runs_a or not runs_b or not base_runs:
        return None
    rng = random.Random(29)
    ratios = []
    for _ in range(resamples):
        base = median(rng.choices(base_runs, k=len(base_runs)))
        over_b = median(rng.choices(runs_b, k=len(runs_b))) - base
        if over_b > 0:
            ratios.append((median(rng.choices(runs_a, k=len(runs_a))) - base) / over_b)
    if len(ratios) < resamples // 2:
        return None
    ratios.sort()
    return [ratios[int(0.025 * (len(ratios) - 1))], ratios[int(0.975 * (len(ratios) - 1))]]


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
                handles.append(InitHandle(c, [sleep, "60"], pid1=(mode != "sub"), extra_args=extra,
                                          env=c.env(default_state=True)))
                keys.append((c.name, mode))
        for k, h in zip(keys, handles):
            if not h.wait_app(sleep):
                ctx.notes.append(f"idle: {k[0]} ({k[1]}) did not start sleep")
        # idle is measured from the first second of the app's run: any set-up an
        # init defers (a timer armed at start) counts as a wake-up here
        time.sleep(1.0)
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
# 7. health-check cost


def no_health(ctx: Ctx) -> dict:
    """Cells for the peers, which have no health checks (or memory watching)."""
    return {c.name: "—" for c in ctx.cands if not c.is_resil}


def curl_checks(curl: str, url: str, n: int) -> dict:
    """Runs `curl -fsS URL` n times, one process after another (what Docker's
    `HEALTHCHECK CMD curl -fsS URL` runs per check), stdout/stderr on
    /dev/null. Each child's own CPU time (ru_utime + ru_stime of wait4) and
    context switches; wall time of spawn + wait."""
    devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
          (os.POSIX_SPAWN_DUP2, devnull, 2)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # no proxy variables
    cpu, ctxsw, wall, maxrss, failed = [], [], [], [], 0
    try:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(curl, [curl, "-fsS", url], env, file_actions=fa)
            _, status, ru = os.wait4(pid, 0)
            wall.append((time.perf_counter_ns() - t0) / 1000)
            if os.waitstatus_to_exitcode(status) != 0:
                failed += 1
            cpu.append((ru.ru_utime + ru.ru_stime) * 1e6)
            ctxsw.append(ru.ru_nvcsw + ru.ru_nivcsw)
            maxrss.append(ru.ru_maxrss)
    finally:
        os.close(devnull)
    return {"n": n, "failed": failed, "cpu_us": median(cpu), "cpu_us_mean": sum(cpu) / n,
            "ctxsw": median(ctxsw), "wall_us": median(wall), "maxrss_kib": median(maxrss)}


def section_health_check_cost(ctx: Ctx) -> None:
    """CPU per health check of resil-init's in-process libcurl loop (as PID 1,
    `--health-interval` 50 ms against a local HTTP server) against `curl -fsS
    URL` as a process per check; RSS with the health loop active."""
    resil = [c for c in ctx.cands if c.is_resil]
    if not resil:
        return
    secs = env_int("BENCH_HEALTH_S", 5)
    interval = env_int("BENCH_HEALTH_INTERVAL_MS", 50)
    sleep = shutil.which("sleep") or "/bin/sleep"
    shm = tmpfs_dir()
    srv = lib.HealthServer()
    runs = []  # (candidate name, variant, path or None, handle)
    try:
        for c in resil:
            for variant in ("health", "tmpfs", "none"):
                if variant == "tmpfs" and not shm:
                    continue
                path = f"/health/{c.name}/{variant}"
                extra = ["--health-url", srv.url(path), "--health-interval", f"{interval}ms"]
                env = None
                if variant == "none":  # the same init without a health loop: RSS baseline
                    extra, path = [], None
                elif variant == "tmpfs":  # status.json (rewritten after every check) on tmpfs
                    env = c.env()
                    env["RESIL_STATE_DIR"] = os.path.join(shm, f"health-{c.name}")
                runs.append((c.name, variant, path,
                             InitHandle(c, [sleep, "600"], pid1=True, extra_args=extra, env=env)))
        for name, variant, _, h in runs:
            if not h.wait_app(sleep):
                ctx.notes.append(f"health: {name} ({variant}) did not start sleep")
        # past the first checks
        time.sleep(2.5)
        log(f"health: {len(runs)} resil-init instances, checks every {interval} ms, {secs} s window")
        before = [(srv.count(p) if p else 0, lib.snapshot(h.init_pid)) for _, _, p, h in runs]
        time.sleep(secs)
        after = [(srv.count(p) if p else 0, lib.snapshot(h.init_pid)) for _, _, p, h in runs]
        mem = [lib.rss(h.init_pid) for _, _, _, h in runs]
        threads = [lib.proc_threads(h.init_pid) for _, _, _, h in runs]
        for (name, variant, _, h), t in zip(runs, threads):
            if not h.alive():
                ctx.notes.append(f"health: {name} ({variant}) exited early")
            if t != 1:
                ctx.notes.append(f"health: {name} ({variant}) has {t} threads; CPU is the main one's")
    finally:
        lib.stop_all([h for *_, h in runs])
    res = {}
    for (name, variant, path, _), (n0, s0), (n1, s1), m in zip(runs, before, after, mem):
        checks = n1 - n0
        cpu = (s1.cpu_ns - s0.cpu_ns) / 1000
        wake = (s1.vol - s0.vol) + (s1.nonvol - s0.nonvol)
        res[(name, variant)] = {"checks": checks, "cpu_us": cpu, "wakeups": wake, "rss": m,
                                "cpu_per_check_us": cpu / checks if checks else None,
                                "wakeups_per_check": wake / checks if checks else None}
    nchecks = max([r["checks"] for (n, v), r in res.items() if v == "health"] or [0])
    curl = shutil.which("curl")
    cres = None
    if curl and nchecks:
        log(f"health: {nchecks} x `curl -fsS URL`, one process per check")
        curl_checks(curl, srv.url("/health/curl"), 5)  # warm-up (page cache, dynamic loader)
        cres = curl_checks(curl, srv.url("/health/curl"), nchecks)
        if cres["failed"]:
            ctx.notes.append(f"health: {cres['failed']} of {nchecks} curl runs failed")
    elif not curl:
        ctx.notes.append("health: curl not found (apt-get install curl): no comparison")
    srv.close()

    def vals(variant, key, scale=1.0):
        out = no_health(ctx)
        for c in resil:
            r = res.get((c.name, variant))
            v = r.get(key) if r else None
            out[c.name] = v * scale if isinstance(v, (int, float)) else v
        return out

    checks = {c.name: res[(c.name, "health")]["checks"] for c in resil if (c.name, "health") in res}
    ctx.add(Row(f"health check: CPU of the init per check, PID 1 (`--health-interval {interval}ms`, "
                f"CPU over {secs} s ÷ checks the server saw: "
                + ", ".join(f"{v}" for v in checks.values()) + ")",
                vals("health", "cpu_per_check_us"), "µs", 0, ratios=False))
    if shm:
        ctx.add(Row("… same, with the state dir (status.json, rewritten after every check) on tmpfs",
                    vals("tmpfs", "cpu_per_check_us"), "µs", 0, ratios=False))
    ctx.add(Row("health check: wake-ups (ctxsw) of the init per check",
                vals("health", "wakeups_per_check"), "", 1, ratios=False))
    if cres:
        per = {c.name: ratio(cres["cpu_us"], res[(c.name, "health")]["cpu_per_check_us"])
               for c in resil if res.get((c.name, "health"), {}).get("cpu_per_check_us")}
        ctx.add(Row(f"`curl -fsS URL` as a process per check (Docker `HEALTHCHECK CMD`): its CPU ÷ "
                    f"the init's per check (target ≥ 20×)",
                    {**no_health(ctx), **{k: f"{v:,.1f}×" for k, v in per.items()}}, ratios=False,
                    note=f"curl: {cres['cpu_us']:,.0f} µs CPU, {cres['maxrss_kib']:,.0f} KiB max RSS, "
                         f"{cres['wall_us'] / 1000:.1f} ms wall per check, median of {cres['n']}"))
    per_hour = {c.name: res[(c.name, "health")]["cpu_per_check_us"] * 120 / 1000
                for c in resil if res.get((c.name, "health"), {}).get("cpu_per_check_us")}
    ctx.add(Row("health checks at the default `--health-interval 30s`: CPU per hour (120 checks)",
                {**no_health(ctx), **per_hour}, "ms", 1, ratios=False,
                note=(f"curl: {cres['cpu_us'] * 120 / 1000:,.0f} ms" if cres else "")))
    for key, label in (("VmRSS", "VmRSS"), ("Pss", "Pss"), ("Private", "Private clean+dirty")):
        ctx.add(Row(f"{label} with the health loop active, PID 1 (target for static: VmRSS "
                    f"< 1.5 MB)" if key == "VmRSS" else f"{label} with the health loop active, PID 1",
                    {**no_health(ctx), **{c.name: res[(c.name, "health")]["rss"].get(key)
                                          for c in resil if (c.name, "health") in res}},
                    "KiB", ratios=False))
    ctx.add(Row("… VmRSS growth over the same init without a health loop (side by side)",
                {**no_health(ctx), **{c.name: res[(c.name, "health")]["rss"].get("VmRSS", 0)
                                      - res[(c.name, "none")]["rss"].get("VmRSS", 0)
                                      for c in resil if (c.name, "none") in res}},
                "KiB", ratios=False))
    ctx.raw["health"] = {f"{n}/{v}": r for (n, v), r in res.items()}
    ctx.raw["health_curl"] = cres


# --------------------------------------------------------------------------
# 8. memory watching: idle cost, OOM kill to emergency restart

OOM_APP = r"""exec 3>"$1"
if [ "$RESIL_RESTART_COUNT" = 0 ]; then
  echo "pid $$" >&3
  read _ <"$2"
  case $4 in
  oom) printf 'low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n' >"$3/memory.events"
       kill -9 $$ ;;
  crash) kill -9 $$ ;;
  real) exec "$5" -I -S -c "b = b'x' * (1 << 30)" ;;
  esac
  exit 3
fi
echo "start $RESIL_RESTART_COUNT $RESIL_RESTART_REASON $RESIL_EMERGENCY ${EMERGENCY_MODE:-}" >&3"""
# $1: FIFO the app reports on ("pid N" at the first start; "start COUNT REASON
# EMERGENCY EMERGENCY_MODE" at the restart); $2: FIFO it waits on for "go"
# (the bench opens a pidfd on it first); $3: the fake cgroup tree; $4: oom
# (bump oom_kill in memory.events, then SIGKILL itself), crash (SIGKILL only)
# or real (allocate 1 GiB in a real memory cgroup with a smaller limit, so the
# kernel's OOM killer ends it); $5: python3.


class RestartProbe:
    """The two FIFOs of OOM_APP, held open O_RDWR by the bench (so no open blocks
    and no read sees EOF between runs)."""

    def __init__(self):
        d = lib.tmpdir()
        self.out_path, self.go_path = os.path.join(d, "restart-out"), os.path.join(d, "restart-go")
        for p in (self.out_path, self.go_path):
            if not os.path.exists(p):
                os.mkfifo(p, 0o600)
        self.out = os.open(self.out_path, os.O_RDWR | os.O_CLOEXEC)
        self.go = os.open(self.go_path, os.O_RDWR | os.O_CLOEXEC)
        self.buf = bytearray()

    def close(self):
        os.close(self.out)
        os.close(self.go)

    def app_alone(self) -> Optional[float]:
        """µs from posix_spawn of OOM_APP's restart branch (as a restart runs
        it, without an init) to its line: the app's own start-up, which the
        restart rows include."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RESIL_RESTART_COUNT": "1",
               "RESIL_RESTART_REASON": "oom", "RESIL_EMERGENCY": "1"}
        argv = ["/bin/sh", "-c", OOM_APP, "sh", self.out_path, self.go_path, "/nonexistent", "oom"]
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        pid = os.posix_spawn(argv[0], argv, env)
        line = lib.read_line(self.out, self.buf, 5.0)
        t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        os.waitpid(pid, 0)
        return (t1 - t0) / 1000 if line and line.startswith(b"start ") else None

    def run(self, c, mode: str, tree: str, extra: list, launcher: list = (),
            timeout: float = 10.0) -> dict:
        """One start → death → restart → exit of OOM_APP under c (as PID 1).
        Returns {"us": death → restarted app's first line, "reason", "emergency", ...}
        or {"error": ...}."""
        app = ["/bin/sh", "-c", OOM_APP, "sh", self.out_path, self.go_path, tree, mode,
               sys.executable]
        args = ["--restart", "on-failure", "--max-restarts", "1", "--backoff", "0",
                "--grace", "2s"] + extra
        h = InitHandle(c, app, pid1=True, extra_args=args, launcher=launcher)
        pidfd = None
        try:
            line = lib.read_line(self.out, self.buf, timeout)
            if not line or not line.startswith(b"pid "):
                return {"error": f"first start said {line!r}"}
            app_pid = lib.wait_for(lambda: (lib.children(h.init_pid) or [None])[0], 2.0)
            pidfd = lib.open_pidfd(app_pid) if app_pid else None
            if pidfd is None:
                return {"error": "no pidfd on the app"}
            os.write(self.go, b"go\n")
            t0 = lib.wait_death(pidfd, timeout)
            if t0 is None:
                return {"error": "the app did not die"}
            line = lib.read_line(self.out, self.buf, timeout)
            t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            if not line or not line.startswith(b"start "):
                return {"error": f"no restart (got {line!r})"}
            f = line.decode().split() + [""]
            try:
                rc = h.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                rc = None
            return {"us": (t1 - t0) / 1000, "count": f[1], "reason": f[2], "emergency": f[3],
                    "emergency_mode": f[4], "rc": rc}
        finally:
            if pidfd is not None:
                os.close(pidfd)
            h.stop()


def exit_after_trigger(ctx: Ctx, resil: list, reps: int) -> dict:
    """Time from the app's death to the init's exit after a 2.5 s run, in which
    resil-init has created its PSI trigger (`--pressure-signal` with
    `--memory-interval 1s`: at the first sample, 1 s in) and must drop it at
    exit, against the same with a fake cgroup dir (no trigger). Subreaper
    mode; starts staggered by 0.3 s so that each exit is alone. Deaths and
    exits are seen through pidfds in one select() loop."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    items = [(c, v) for _ in range(reps) for c in resil for v in ("psi", "nopsi")]
    random.Random(9).shuffle(items)
    started, fds = [], {}  # fd -> (index, "app" | "init")
    t_dead, out = {}, {}
    next_start = time.monotonic()
    deadline = next_start + 0.3 * len(items) + 10
    try:
        while (len(started) < len(items) or fds) and time.monotonic() < deadline:
            if len(started) < len(items) and time.monotonic() >= next_start:
                c, v = items[len(started)]
                extra = ["--pressure-signal", "WINCH", "--memory-interval", "1s"]
                if v == "nopsi":
                    extra += ["--cgroup-root", fake_cgroup_dir()]
                h = InitHandle(c, [sleep, "2.5"], pid1=False, extra_args=extra)
                started.append((c.name, v, h))
                k = len(started) - 1
                app = h.wait_app(sleep, timeout=1.0)
                for pid, what in ((app, "app"), (h.popen.pid, "init")):
                    fd = lib.open_pidfd(pid) if pid else None
                    if fd is not None:
                        fds[fd] = (k, what)
                next_start += 0.3
            wait = max(0.0, next_start - time.monotonic()) if len(started) < len(items) else 1.0
            ready, _, _ = select.select(list(fds), [], [], wait)
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            for fd in ready:
                k, what = fds.pop(fd)
                os.close(fd)
                if what == "app":
                    t_dead[k] = now
                elif k in t_dead:
                    name, v, _ = started[k]
                    out.setdefault((name, v), []).append((now - t_dead[k]) / 1e6)
        for name, v, h in started:
            if h.popen.wait(5) != 0:
                ctx.notes.append(f"memory: exit after a 2.5 s run: {name} ({v}) exited "
                                 f"{h.popen.returncode}")
        return out
    finally:
        for fd in fds:
            os.close(fd)
        lib.stop_all([h for *_, h in started])


def section_memory_watch(ctx: Ctx) -> None:
    """(a) Idle CPU and wake-ups of memory watching: what a restart policy arms
    on the real cgroup (memory.events where it is v2) vs sampling (a fake v2
    tree with `--memory-interval`, and on the real cgroup with
    --memory-restart); (b) OOM kill → emergency
    restart latency on a fake v2 tree, and (c) on a real v1 memory cgroup;
    (d) the exit delay the kept PSI trigger costs."""
    resil = [c for c in ctx.cands if c.is_resil]
    if not resil:
        return
    secs = env_int("BENCH_MEMORY_S", 20)
    reps = env_int("BENCH_OOM_REPS", 10)
    real_reps = env_int("BENCH_REAL_OOM_REPS", 5)
    sleep = shutil.which("sleep") or "/bin/sleep"
    limit = 256 << 20
    cg, why = (None, "BENCH_REAL_CGROUP=0")
    if os.environ.get("BENCH_REAL_CGROUP", "1") != "0":
        cg, why = lib.make_memory_cgroup(limit)
    if not cg:
        ctx.notes.append(f"memory: no {limit >> 20} MiB v1 memory cgroup ({why}): the "
                         "event-driven rows use the bench's own cgroup, the real OOM row is skipped")
    launcher = lib.cgroup_launcher(cg) if cg else []
    fake = lib.fake_v2_cgroup(os.path.join(lib.tmpdir(), "fake-v2-idle"))
    where = f"real cgroup ({limit >> 20} MiB v1 limit)" if cg else "the bench's own cgroup"
    variants = [
        ("event", f"event-driven: {where}, `--restart on-failure` (memory.events where v2)",
         launcher, ["--restart", "on-failure"]),
        ("sample", "sampling: fake v2 cgroup (512 MiB limit, no memory.pressure), "
                   "`--memory-interval 5s`", [], ["--cgroup-root", fake, "--memory-interval", "5s"]),
        ("forced", f"sampling forced on the {where} by `--memory-restart 90%`", launcher,
         ["--memory-restart", "90%"]),
    ]
    runs = []
    try:
        # (a) idle
        for key, _, pre, extra in variants:
            for c in resil:
                runs.append((c.name, key, InitHandle(c, [sleep, "600"], pid1=True,
                                                     extra_args=extra, launcher=pre)))
        for name, key, h in runs:
            if not h.wait_app(sleep):
                ctx.notes.append(f"memory: {name} ({key}) did not start sleep")
        time.sleep(1.0)  # idle counts from the first second (as in the idle section)
        # no variant here asks for a PSI trigger (only --pressure-signal does)
        psi = {(n, k): bool(lib.psi_files(h.init_pid)) for n, k, h in runs}
        for (n, k), armed in psi.items():
            if armed:
                ctx.notes.append(f"memory: {n} ({k}): a PSI trigger was armed")
        log(f"memory: {len(runs)} resil-init instances watching memory, {secs} s window")
        # CPU is read every 0.25 s as well: each sample (one wake-up every 5 s)
        # shows up as one step, whose median is robust against one disturbed
        # sample among the 4 a window holds
        steps = {(n, k): [] for n, k, _ in runs}
        prev = {(n, k): lib.snapshot(h.init_pid) for n, k, h in runs}
        first = dict(prev)
        end = time.monotonic() + secs
        while time.monotonic() < end:
            time.sleep(min(0.25, max(0.0, end - time.monotonic())))
            for n, k, h in runs:
                snap = lib.snapshot(h.init_pid)
                if snap.cpu_ns > prev[(n, k)].cpu_ns:
                    steps[(n, k)].append((snap.cpu_ns - prev[(n, k)].cpu_ns) / 1000)
                prev[(n, k)] = snap
        by = {}
        for n, k, _ in runs:
            a, b = first[(n, k)], prev[(n, k)]
            by[(n, k)] = {"seconds": b.t - a.t, "cpu_us": (b.cpu_ns - a.cpu_ns) / 1000,
                          "wakeups": (b.vol - a.vol) + (b.nonvol - a.nonvol),
                          "cpu_steps_us": steps[(n, k)]}
        for n, k, h in runs:
            if not h.alive():
                ctx.notes.append(f"memory: {n} ({k}) exited early")
        lib.stop_all([h for *_, h in runs])
        scale = 3600.0 / secs
        for key, label, _, _ in variants:
            ctx.add(Row(f"memory watching, idle: wake-ups per hour ({secs} s × {scale:.0f}), {label}",
                        {**no_health(ctx), **{n: by[(n, k)]["wakeups"] * scale
                                              for (n, k) in by if k == key}}, "", 0, ratios=False))
            per = {n: median(by[(n, k)]["cpu_steps_us"]) or 0.0 for (n, k) in by if k == key}
            if any(per.values()):
                ctx.add(Row(f"… CPU per wake-up (median of the window's steps), {label}",
                            {**no_health(ctx), **per}, "µs", 0, ratios=False))
            ctx.add(Row(f"memory watching, idle: CPU per hour (wake-ups per hour × CPU per wake-up), "
                        f"{label}", {**no_health(ctx), **{
                            n: by[(n, k)]["wakeups"] * scale * per[n] / 1000
                            for (n, k) in by if k == key}}, "ms", 1, ratios=False))
        ctx.raw["memory_idle"] = {f"{n}/{k}": v for (n, k), v in by.items()}
        ctx.raw["memory_idle_psi"] = {f"{n}/{k}": v for (n, k), v in psi.items()}

        # (b) OOM kill → emergency restart on a fake v2 tree; a plain crash as control
        probe = RestartProbe()
        try:
            lat = {}
            rng = random.Random(3)
            log(f"memory: OOM kill → restart, fake v2 cgroup, {reps} runs x {len(resil)} x 2 modes")
            alone = []
            for _ in range(reps):
                alone.append(probe.app_alone())
                order = [(c, m) for c in resil for m in ("oom", "crash")]
                rng.shuffle(order)
                for c, mode in order:
                    tree = lib.fake_v2_cgroup(os.path.join(lib.tmpdir(), f"fake-v2-{c.name}"))
                    r = probe.run(c, mode, tree, ["--cgroup-root", tree])
                    lat.setdefault((c.name, mode), []).append(r)
            if cg:
                log(f"memory: real OOM kill in {cg}, {real_reps} runs x {len(resil)}")
                for _ in range(real_reps):
                    for c in resil:
                        before = lib.v1_oom_kills(cg)
                        r = probe.run(c, "real", "/nonexistent", [], launcher=launcher, timeout=20)
                        r["oom_kills"] = lib.v1_oom_kills(cg) - before
                        lat.setdefault((c.name, "real"), []).append(r)
        finally:
            probe.close()
    finally:
        lib.stop_all([h for *_, h in runs])
        if cg:
            try:
                lib.remove_cgroup(cg)
                lib.cleanup_hooks[:] = [f for f in lib.cleanup_hooks
                                        if getattr(f, "cgroup", None) != cg]
            except (OSError, RuntimeError) as e:
                ctx.notes.append(f"memory: could not remove {cg}: {e}")
    alone = [a for a in alone if a is not None]
    alone_note = (f"the app alone, posix_spawn → its first line: {median(alone):,.0f} µs"
                  if alone else "")
    expect = {"oom": ("oom", "1"), "crash": ("crash", "0"), "real": ("oom", "1")}
    for mode, label in (("oom", f"OOM kill → emergency restart: app's death (pidfd) → restarted "
                                f"app's first line, fake v2 cgroup, `--backoff 0`, PID 1 "
                                f"(median of {reps})"),
                        ("crash", "… same after a plain crash (SIGKILL, no OOM kill: reason crash, "
                                  "no emergency)"),
                        ("real", f"… same after a real OOM kill in a {limit >> 20} MiB v1 memory "
                                 f"cgroup (median of {real_reps})")):
        if mode == "real" and not cg:
            continue
        vals = no_health(ctx)
        for c in resil:
            rs = lat.get((c.name, mode), [])
            ok = [r for r in rs if "us" in r and (r["reason"], r["emergency"]) == expect[mode]
                  and (mode != "real" or r.get("oom_kills", 0) > 0)]
            bad = [r for r in rs if r not in ok]
            if bad:
                ctx.notes.append(f"memory ({mode}): {c.name}: {len(bad)} of {len(rs)} runs not as "
                                 f"expected (RESIL_RESTART_REASON={expect[mode][0]}, "
                                 f"RESIL_EMERGENCY={expect[mode][1]}): {bad[0]}")
            vals[c.name] = median([r["us"] for r in ok]) if ok else None
        ctx.add(Row(label, vals, "µs", 0, ratios=False, note=alone_note if mode == "oom" else ""))
    ctx.raw["memory_restart"] = {f"{n}/{m}": v for (n, m), v in lat.items()}
    ctx.raw["memory_restart_app_alone_us"] = alone

    # (d) what keeping the PSI trigger costs at the end
    ex_reps = env_int("BENCH_EXIT_REPS", 3)
    log(f"memory: app exit → init exit after a 2.5 s run, {ex_reps} runs x {len(resil)} x 2")
    ex = exit_after_trigger(ctx, resil, ex_reps)
    for v, label in (("psi", f"app's exit → init's exit after a 2.5 s run with `--pressure-signal` "
                             f"(PSI trigger created at the first sample, 1 s in, dropped at "
                             f"exit), subreaper (median of {ex_reps})"),
                     ("nopsi", "… same with `--cgroup-root` on a fake v1 dir (no PSI trigger)")):
        ctx.add(Row(label, {**no_health(ctx), **{c.name: median(ex.get((c.name, v), []))
                                                 for c in resil}}, "ms", 1, ratios=False))
    ctx.raw["exit_after_trigger_ms"] = {f"{n}/{v}": x for (n, v), x in ex.items()}


# --------------------------------------------------------------------------
# 9. restarts under load (--listen) and the metrics endpoint


class LoadClient:
    """Sequential HTTP/1.0 requests against 127.0.0.1:port in a thread: how many
    were answered, refused or failed otherwise, and the slowest one."""

    def __init__(self, port: int):
        import threading
        self.port, self.answered, self.refused, self.failed, self.worst = port, 0, 0, 0, 0.0
        self.failures: dict = {}  # exception name → count: which kind of failure it was
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import socket as so
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                with so.create_connection(("127.0.0.1", self.port), timeout=10) as c:
                    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    if not c.recv(4096).startswith(b"HTTP/1.0 200"):
                        raise OSError("bad answer")
                self.answered += 1
            except ConnectionRefusedError:
                self.refused += 1
                time.sleep(0.001)
            except OSError as e:
                self.failed += 1
                kind = type(e).__name__
                self.failures[kind] = self.failures.get(kind, 0) + 1
            self.worst = max(self.worst, time.monotonic() - began)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=15)


def free_port() -> int:
    import socket as so
    with so.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def section_restart_load(ctx: Ctx) -> None:
    """The app (bench/listenapp.py) is SIGKILLed 10 times under a steady client
    load: requests refused or failed, and the worst latency, with resil-init
    --listen (the port held across restarts), without it (the app binds), and
    tini (which restarts nothing: the peers' baseline)."""
    restarts = env_int("BENCH_RESTARTS", 10)
    backoff_ms = env_int("BENCH_RESTART_BACKOFF_MS", 100)
    app = os.path.join(lib.BENCH_DIR, "listenapp.py")
    # The bench's own interpreter, not the first python3 on PATH: that may be a
    # wrapper script (a pyenv shim is bash), and wait_app() finds the app by
    # the binary it has exec'd, so it would never match the shim's name.
    python = os.path.realpath(sys.executable)
    start_ms = app_start_ms(python, app)
    res = {}
    for c in ctx.cands:
        modes = ["listen", "bind"] if c.is_resil else (["bind"] if c.name == "tini" else [])
        for mode in modes:
            port = free_port()
            extra = []
            if c.is_resil:
                extra = ["--restart", "always", "--backoff", f"{backoff_ms}ms",
                         "--max-restarts", str(restarts + 5)]
                if mode == "listen":
                    extra += ["--listen", f"127.0.0.1:{port}"]
            h = InitHandle(c, [python, app, str(port)], pid1=True, extra_args=extra)
            try:
                first = h.wait_app(python, timeout=10)
                ok = first and lib.wait_for(lambda: _answers(port), 10)
                if not ok:
                    ctx.notes.append(f"restart-load: {c.name} ({mode}) did not serve")
                    continue
                client = LoadClient(port)
                time.sleep(0.3)
                kills = 0
                for _ in range(restarts if c.is_resil else 1):
                    pid = h.wait_app(python, timeout=10)
                    if not pid:
                        break
                    os.kill(pid, signal.SIGKILL)
                    kills += 1
                    lib.wait_for(lambda: h.wait_app(python, 0.01) not in (None, pid), 10)
                    time.sleep(0.3)
                client.stop()
                res[(c.name, mode)] = {"answered": client.answered, "refused": client.refused,
                                       "failed": client.failed, "worst_ms": client.worst * 1000,
                                       "kills": kills, "failures": client.failures}
            finally:
                h.stop()
    if not res:
        return
    for key, label, unit, digits in (
            ("refused", "requests refused", "", 0), ("failed", "requests failed otherwise", "", 0),
            ("worst_ms", "worst request latency", "ms", 1), ("answered", "requests answered", "", 0)):
        for mode, what in (("listen", "with `--listen`"), ("bind", "the app binds its port")):
            vals = {c.name: res.get((c.name, mode), {}).get(key) for c in ctx.cands}
            if any(v is not None for v in vals.values()):
                ctx.add(Row(f"restart under load ({restarts} SIGKILLs, backoff {backoff_ms} ms), "
                            f"{what}: {label}", vals, unit, digits, ratios=False,
                            note="tini restarts nothing: one kill, then every request fails"
                            if mode == "bind" else "target: 0 refused, worst within backoff + "
                            f"app start + 50 ms; the app alone starts in {start_ms:,.0f} ms "
                            "(spawn → first answer, median of 3)"))
    ctx.raw["restart_load"] = {f"{n}/{m}": r for (n, m), r in res.items()}
    ctx.raw["restart_load_app_start_ms"] = start_ms


def app_start_ms(python: str, app: str, reps: int = 3) -> float:
    """The app's own start, no init: spawn → its first answer on a fresh port,
    the 'app start' of the restart-load target."""
    times = []
    for _ in range(reps):
        port = free_port()
        began = time.monotonic()
        p = subprocess.Popen([python, app, str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            if lib.wait_for(lambda: _answers(port), 10):
                times.append((time.monotonic() - began) * 1000)
        finally:
            p.kill()
            p.wait()
    return median(times) if times else float("nan")


def _answers(port: int) -> bool:
    import socket as so
    try:
        with so.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return c.recv(64).startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def section_metrics(ctx: Ctx) -> None:
    """CPU of resil-init per scrape of --metrics (as PID 1, over `sleep`), and
    its VmRSS with the endpoint against the same init without it."""
    resil = [c for c in ctx.cands if c.is_resil]
    if not resil:
        return
    scrapes = env_int("BENCH_SCRAPES", 2000)
    sleep = shutil.which("sleep") or "/bin/sleep"
    res = {}
    for c in resil:
        port = free_port()
        with_ep = InitHandle(c, [sleep, "600"], pid1=True,
                             extra_args=["--metrics", f"127.0.0.1:{port}"])
        without = InitHandle(c, [sleep, "600"], pid1=True)
        try:
            with_ep.wait_app(sleep)
            without.wait_app(sleep)
            _scrape(port, 50)  # warm-up
            s0 = lib.snapshot(with_ep.init_pid)
            t0 = time.monotonic()
            _scrape(port, scrapes)
            wall = time.monotonic() - t0
            s1 = lib.snapshot(with_ep.init_pid)
            res[c.name] = {"cpu_per_scrape_us": (s1.cpu_ns - s0.cpu_ns) / 1000 / scrapes,
                           "wall_per_scrape_us": wall * 1e6 / scrapes,
                           "rss": lib.rss(with_ep.init_pid).get("VmRSS"),
                           "rss_without": lib.rss(without.init_pid).get("VmRSS")}
        finally:
            lib.stop_all([with_ep, without])
    names = {c.name: None for c in ctx.cands}
    ctx.add(Row(f"metrics: CPU of the init per scrape (PID 1, {scrapes} scrapes; target: less "
                "than one health check)",
                {**names, **{n: r["cpu_per_scrape_us"] for n, r in res.items()}}, "µs", 0,
                ratios=False))
    health = ctx.raw.get("health") or {}
    per = {n: health.get(f"{n}/health", {}).get("cpu_per_check_us") for n in res}
    if any(per.values()):
        ctx.add(Row("… a health check's CPU ÷ a scrape's",
                    {**names, **{n: f"{per[n] / r['cpu_per_scrape_us']:.1f}×" for n, r in res.items()
                                 if per.get(n) and r["cpu_per_scrape_us"]}}, ratios=False))
    ctx.add(Row("metrics: VmRSS with `--metrics`, PID 1 over `sleep`",
                {**names, **{n: r["rss"] for n, r in res.items()}}, "KiB", ratios=False))
    ctx.add(Row("… VmRSS growth over the same init without the endpoint",
                {**names, **{n: (r["rss"] or 0) - (r["rss_without"] or 0) for n, r in res.items()}},
                "KiB", ratios=False))
    ctx.raw["metrics"] = res


def _scrape(port: int, n: int) -> None:
    import socket as so
    for _ in range(n):
        with so.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            while c.recv(65536):
                pass



SECTIONS = [
    ("size", section_size),
    ("startup", section_startup),
    ("sigterm", section_sigterm),
    ("forward-pages", section_forward_pages),
    ("syscalls", section_syscalls),
    ("idle", section_idle),
    ("signals", section_signals),
    ("reap", section_reap),
    ("shutdown", section_shutdown),
    ("health", section_health_check_cost),
    ("memory", section_memory_watch),
    ("restart-load", section_restart_load),
    ("metrics", section_metrics),
]


# --------------------------------------------------------------------------
# output

RATIO_COLS = [  # (header, resil candidate, peer)
    ("resil-init ÷ tini", "resil-init", "tini"),
    ("static ÷ tini-static", "resil-init-static", "tini-static"),
    ("static ÷ dumb-init", "resil-init-static", "dumb-init"),
]


# The three figures of an init's everyday job (issue 10), printed first:
# (figure, target for resil-init-static ÷ tini-static, method, value getter, unit,
#  getter of the ratio's 95% interval or None)
HEADLINE = [
    ("SIGTERM forwarding overhead, PID 1", "≤ 1.00×",
     "median of {sigterm_n} fresh runs of `unshare --pid --fork --kill-child --mount-proc "
     "INIT -- sigapp.py --term`: the bench's kill(SIGTERM) to the init → the app's "
     "sigwaitinfo() return (CLOCK_MONOTONIC; the app has run that path once before), minus "
     "the same with the app itself as PID 1",
     lambda raw, n: raw.get("sigterm_pid1", {}).get("overhead_us", {}).get(n), "µs",
     lambda raw: raw.get("sigterm_pid1", {}).get("ratio_interval_95")),
    ("start-up overhead, `-- /bin/true` as PID 1", "≤ 0.80×",
     "median of {startup_n} posix_spawn + waitpid of `unshare … INIT -- /bin/true`, minus "
     "`unshare … /bin/true` alone; interleaved, 10 warm-up rounds",
     lambda raw, n: raw.get("startup_pid1", {}).get("overhead_us", {}).get(n), "µs", None),
    ("idle context switches in 10 s, PID 1", "0 (absolute)",
     "voluntary + nonvoluntary ctxsw of the init (/proc/PID/status) over {idle_s} s, from 1 s "
     "after the app (`sleep 60`) started; no health check, no memory option",
     lambda raw, n: raw.get("idle", {}).get(f"{n}/pid1", {}).get("wakeups"), "", None),
]
HEADLINE_PAIR = ("resil-init-static", "tini-static")


def render_headline(ctx: Ctx) -> list:
    a, b = HEADLINE_PAIR
    out = [f"**{a} against {b}** (the targets of issue 10; resil-init runs with its defaults, "
           "including its own choice of state dir):", "",
           f"| figure | {a} | {b} | ratio | target | method |", "|---|---:|---:|---:|---|---|"]
    for figure, target, method, get, unit, interval_of in HEADLINE:
        va, vb = get(ctx.raw, a), get(ctx.raw, b)
        interval = interval_of(ctx.raw) if interval_of else None
        shown = fmt_ratio(ratio(va, vb))
        if interval:
            shown += f" (95% bootstrap interval {interval[0]:.2f}–{interval[1]:.2f}×)"
        cells = [fmt_num(v, unit) if v is not None else "not measured" for v in (va, vb)]
        method = method.format(sigterm_n=env_int("BENCH_SIGTERM_N", 40),
                               startup_n=env_int("BENCH_STARTUP_N", 200),
                               idle_s=env_int("BENCH_IDLE_S", 10))
        out.append(f"| {figure} | {cells[0]} | {cells[1]} | {shown} | {target} | {method} |")
    out.append("")
    return out


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
    out += render_headline(ctx)
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
    lib.guard_default_state_dirs()
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
        for err in lib.run_cleanup_hooks():  # e.g. a memory cgroup the bench made
            log(f"cleanup: {err}")
            ctx.notes.append(f"cleanup failed: {err}")
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
