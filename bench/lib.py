"""Reusable helpers for resil-init's benchmarks (bench/bench.py and later ones).

Everything here is plain Python 3 (stdlib only, Linux /proc).  The pieces:

- Candidate / candidates(): the inits compared (resil-init, resil-init-static,
  tini, tini-static, dumb-init) and how each is told "run this app".
- InitHandle: one init supervising one app, either as PID 1 of a fresh PID
  namespace (`unshare --pid --fork --kill-child --mount-proc`) or as a plain
  child (subreaper mode); .init_pid is the init's pid as the host sees it.
- become_subreaper() / cleanup_descendants(): the bench registers as child
  subreaper, so whatever an init leaves behind is reparented to the bench and
  cleanup_descendants() can kill exactly the processes the bench started (its
  own descendants, by pid) and reap them.
- Readers of /proc: cpu_ns(), ctxsw(), rss(), children().
- Statistics: median(), percentile(), ratio(), and formatting helpers.
- time_spawn(): wall time of one fork+exec+wait of an argv (posix_spawn).
- HealthServer: a threaded HTTP server on 127.0.0.1 answering {"status":"ok"}
  and counting requests per path (health-check section).
- Cgroups: fake_v2_cgroup() writes a fake v2 memory tree; make_memory_cgroup()
  makes a real v1 memory cgroup with a limit (removed by run_cleanup_hooks(),
  which bench.py runs at the end), cgroup_launcher() an argv prefix that joins
  it (InitHandle(..., launcher=...)).
- open_pidfd() / wait_death(): the moment a process (e.g. an app under an
  init) dies, from a pidfd.

New benchmarks build on InitHandle + snapshot()/rss(): start the inits side
by side, take a snapshot, let them run, take another, and report the
differences (see idle_cost()).
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"

UNSHARE = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36

# One private directory per bench run: resil-init's state dirs, FIFOs, ...
_TMP: Optional[str] = None


def tmpdir() -> str:
    global _TMP
    if _TMP is None:
        _TMP = tempfile.mkdtemp(prefix="resil-bench-")
    return _TMP


extra_cleanup: list = []  # more directories to remove with tmpdir()
cleanup_hooks: list = []  # callables run (once, last registered first) by run_cleanup_hooks()


def run_cleanup_hooks() -> list:
    """Runs and forgets the registered hooks (e.g. removing a cgroup the bench
    made); returns the errors as strings."""
    errors = []
    while cleanup_hooks:
        fn = cleanup_hooks.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report, go on with the others
            errors.append(f"{getattr(fn, '__name__', fn)}: {e}")
    return errors


def remove_tmpdir() -> None:
    global _TMP
    for d in extra_cleanup:
        shutil.rmtree(d, ignore_errors=True)
    extra_cleanup.clear()
    if _TMP is not None:
        shutil.rmtree(_TMP, ignore_errors=True)
        _TMP = None


# Where resil-init keeps status.json when no --state-dir is given (README,
# "status.json"): the bench removes the ones it created.
DEFAULT_STATE_DIRS = ("/run/resil-init", "/dev/shm/resil-init")


def guard_default_state_dirs() -> None:
    """Registers a cleanup hook that removes the default state directories
    that do not exist yet (and $TMPDIR/resil-init), once the bench is done."""
    tmp = os.environ.get("TMPDIR") or "/tmp"
    fresh = [d for d in (*DEFAULT_STATE_DIRS, os.path.join(tmp, "resil-init"))
             if not os.path.lexists(d)]

    def remove_default_state_dirs():
        for d in fresh:
            shutil.rmtree(d, ignore_errors=True)

    cleanup_hooks.append(remove_default_state_dirs)


# --------------------------------------------------------------------------
# candidates


@dataclass
class Candidate:
    name: str
    path: str
    pid1_prefix: list          # argv before COMMAND when running as PID 1
    sub_prefix: list           # argv before COMMAND when running as a plain child
    is_subreaper: bool         # whether it reaps orphans when not PID 1
    is_resil: bool = False
    _seq: int = field(default=0, repr=False)

    def argv(self, app: Sequence[str], pid1: bool) -> list:
        prefix = self.pid1_prefix if pid1 else self.sub_prefix
        return list(prefix) + list(app)

    def env(self, base: Optional[dict] = None, default_state: bool = False) -> dict:
        """Environment for one run. resil-init gets its own state dir (so runs
        side by side do not share /run/resil-init/status.json and the host's
        /run is left alone), unless default_state: then it keeps the state dir
        it picks by itself, as a user's container does (the headline figures;
        see guard_default_state_dirs()); the peers ignore RESIL_*."""
        env = dict(os.environ if base is None else base)
        for k in [k for k in env if k.startswith("RESIL_")]:
            del env[k]
        if self.is_resil and not default_state:
            self._seq += 1
            d = os.path.join(tmpdir(), f"state-{self.name}-{self._seq}")
            os.makedirs(d, exist_ok=True)
            env["RESIL_STATE_DIR"] = d
        return env

    def snapshot_binary(self) -> str:
        """Copies the binary into the bench's private directory and uses the
        copy from now on, so a rebuild during the run cannot change what is
        measured. Returns a description of the original (path, size, sha256)."""
        import hashlib

        orig = self.path
        with open(orig, "rb") as f:
            data = f.read()
        d = os.path.join(tmpdir(), "bin")
        os.makedirs(d, exist_ok=True)
        copy = os.path.join(d, self.name)
        with open(copy, "wb") as f:
            f.write(data)
        os.chmod(copy, 0o755)
        try:  # e.g. /tmp mounted noexec: keep measuring the original
            ok = subprocess.run([copy, "--version"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if not ok:
            return f"`{orig}`"
        self.path = copy
        self.pid1_prefix = [copy if a == orig else a for a in self.pid1_prefix]
        self.sub_prefix = [copy if a == orig else a for a in self.sub_prefix]
        rel = os.path.relpath(orig, REPO) if orig.startswith(str(REPO)) else orig
        return f"`{rel}` ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]})"

    def is_static(self) -> bool:
        return elf_is_static(self.path)


def candidates(include: Optional[Iterable[str]] = None) -> list:
    """The inits found on this machine, in table order. RESIL_INIT_BIN and
    RESIL_STATIC_BIN override the repo's build/ paths."""
    resil = os.environ.get("RESIL_INIT_BIN") or str(REPO / "build" / "resil-init")
    resil_static = os.environ.get("RESIL_STATIC_BIN") or str(REPO / "build" / "resil-init-static")
    found = []
    for name, path, sub_extra, subreaper, is_resil in (
        ("resil-init", resil, [], True, True),
        ("resil-init-static", resil_static, [], True, True),
        ("tini", shutil.which("tini") or "/usr/bin/tini", ["-s"], True, False),
        ("tini-static", shutil.which("tini-static") or "/usr/bin/tini-static", ["-s"], True, False),
        ("dumb-init", shutil.which("dumb-init") or "/usr/bin/dumb-init", None, False, False),
    ):
        if include is not None and name not in include:
            continue
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        if name == "dumb-init":  # dumb-init takes no "--"
            pid1, sub = [path], [path]
        else:
            pid1, sub = [path, "--"], [path] + sub_extra + ["--"]
        found.append(Candidate(name, path, pid1, sub, subreaper, is_resil))
    return found


def elf_is_static(path: str) -> bool:
    """True when the ELF file has no PT_INTERP (no dynamic loader)."""
    import struct

    with open(path, "rb") as f:
        data = f.read(65536)
    if data[:4] != b"\x7fELF":
        return False
    is64 = data[4] == 2
    e = "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(e + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(e + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(e + "HH", data, 0x2A)
    for i in range(phnum):
        (p_type,) = struct.unpack_from(e + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


# --------------------------------------------------------------------------
# process bookkeeping


def become_subreaper() -> None:
    """Orphans of what the bench starts are reparented to the bench (not to the
    machine's init), so cleanup_descendants() can find and reap them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def children(pid: int) -> list:
    """Direct children of pid (zombies included: a zombie is listed until its
    parent reaps it)."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def count_children(pid: int) -> int:
    """Number of direct children of a single-threaded pid (cheap poll)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return f.read().count(b" ")
    except OSError:
        return -1


def descendants(pid: int) -> list:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            if c not in seen:
                seen.append(c)
                todo.append(c)
    return seen


def proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError):
        return "?"


def proc_pgrp(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return int(s[s.rindex(")") + 2:].split()[2])
    except (OSError, ValueError, IndexError):
        return None


def count_pgrp(pgid: int) -> int:
    """Live (not zombie) processes in process group pgid (in this PID namespace)."""
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        if rest[0] not in ("Z", "X") and int(rest[2]) == pgid:
            n += 1
    return n


def cleanup_descendants(timeout: float = 2.0) -> int:
    """SIGKILL every live descendant of the bench (by pid: only processes the
    bench started or that were reparented to it as subreaper) and reap them.
    Returns how many were killed."""
    me = os.getpid()
    killed = 0
    deadline = time.monotonic() + timeout
    while True:
        live = [p for p in descendants(me) if proc_state(p) not in ("Z", "X", "?")]
        for p in live:
            try:
                os.kill(p, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        reap_all()
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    reap_all()
    return killed


def reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_for(pred: Callable[[], object], timeout: float, interval: float = 0.001):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


def exe_of(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


class InitHandle:
    """One init supervising one app.

    pid1=True: `unshare --pid --fork --kill-child --mount-proc INIT ... APP`;
    init_pid is found as the child of unshare (/proc/<unshare>/task/<unshare>/
    children) once it has exec'd the init binary.  pid1=False: the init is the
    bench's direct child.  The init is started in a new session (its own
    process group) so nothing reaches the terminal.  `launcher` is an argv
    prefix that must exec the rest in the same process (cgroup_launcher())."""

    def __init__(self, cand: Candidate, app: Sequence[str], pid1: bool = True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, env: Optional[dict] = None,
                 extra_args: Sequence[str] = (), timeout: float = 5.0,
                 launcher: Sequence[str] = ()):
        self.cand = cand
        self.pid1 = pid1
        prefix = cand.pid1_prefix if pid1 else cand.sub_prefix
        # extra init options go right after the binary
        argv = [prefix[0]] + list(extra_args) + prefix[1:] + list(app)
        if pid1:
            argv = UNSHARE + argv
        # launcher: a prefix that ends by exec'ing the rest (e.g. joining a cgroup)
        argv = list(launcher) + argv
        self.argv = argv
        self.popen = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                                      env=cand.env() if env is None else env,
                                      start_new_session=True, close_fds=True)
        self.init_pid = self.popen.pid
        if pid1:
            real = os.path.realpath(cand.path)

            def find():
                for c in children(self.popen.pid):
                    if exe_of(c) == real:
                        return c
                return None

            pid = wait_for(find, timeout)
            if not pid:
                self.stop()
                raise RuntimeError(f"{cand.name}: init did not start under unshare")
            self.init_pid = pid
        else:
            self.init_pid = self.popen.pid

    def app_pids(self) -> list:
        return children(self.init_pid)

    def wait_app(self, exe: Optional[str] = None, timeout: float = 5.0) -> Optional[int]:
        """Waits until the init has a child (that has exec'd `exe` when given)."""
        real = os.path.realpath(exe) if exe else None

        def find():
            for c in children(self.init_pid):
                if real is None or exe_of(c) == real:
                    return c
            return None

        return wait_for(find, timeout)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 3.0) -> Optional[int]:
        """Asks the init to stop (sig to the init, which forwards it to the app);
        SIGKILL after timeout. Returns the exit status of what the bench spawned."""
        if self.popen.poll() is None:
            try:
                os.kill(self.init_pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                for p in {self.init_pid, self.popen.pid}:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.popen.wait(2)
                except subprocess.TimeoutExpired:
                    pass
        for f in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        return self.popen.returncode


def stop_all(handles: Iterable[InitHandle], timeout: float = 3.0) -> None:
    handles = list(handles)
    for h in handles:
        if h.popen.poll() is None:
            try:
                os.kill(h.init_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for h in handles:
        h.stop(timeout=timeout)


# --------------------------------------------------------------------------
# /proc readers


def cpu_ns(pid: int) -> int:
    """CPU time of pid (all threads) in ns: se.sum_exec_runtime from
    /proc/<pid>/sched (ns resolution); utime+stime ticks as the fallback."""
    try:
        with open(f"/proc/{pid}/sched") as f:
            for line in f:
                if line.startswith("se.sum_exec_runtime"):
                    ms = float(line.split(":")[1])
                    return int(ms * 1e6)
    except OSError:
        pass
    return cpu_ticks(pid) * (1_000_000_000 // CLK_TCK)


def cpu_ticks(pid: int) -> int:
    """utime+stime of pid in clock ticks (1/CLK_TCK s) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # fields 14, 15 of stat(5)


def proc_threads(pid: int) -> Optional[int]:
    """Threads: of /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def ctxsw(pid: int) -> tuple:
    """(voluntary, nonvoluntary) context switches of pid from /proc/<pid>/status."""
    vol = nonvol = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                vol = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                nonvol = int(line.split()[1])
    return vol, nonvol


def rss(pid: int) -> dict:
    """Memory of pid in kB: VmRSS, VmHWM (status) and Rss, Pss, Private
    (clean+dirty), Shared (clean+dirty), Anonymous (smaps_rollup)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            vals = {}
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[-1] == "kB":
                    vals[parts[0].rstrip(":")] = int(parts[1])
        out["Rss"] = vals.get("Rss", 0)
        out["Pss"] = vals.get("Pss", 0)
        out["Private"] = vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)
        out["Shared"] = vals.get("Shared_Clean", 0) + vals.get("Shared_Dirty", 0)
        out["Anonymous"] = vals.get("Anonymous", 0)
    except OSError:
        pass
    return out


@dataclass
class Snapshot:
    t: float
    cpu_ns: int
    ticks: int
    vol: int
    nonvol: int


def snapshot(pid: int) -> Snapshot:
    vol, nonvol = ctxsw(pid)
    return Snapshot(time.monotonic(), cpu_ns(pid), cpu_ticks(pid), vol, nonvol)


def idle_cost(handles: Sequence[InitHandle], seconds: float) -> list:
    """CPU and context switches of each init over the same `seconds` window.
    Returns one dict per handle: cpu_us, ticks, vol, nonvol, wakeups."""
    before = [snapshot(h.init_pid) for h in handles]
    time.sleep(seconds)
    after = [snapshot(h.init_pid) for h in handles]
    out = []
    for b, a in zip(before, after):
        out.append({
            "seconds": a.t - b.t,
            "cpu_us": (a.cpu_ns - b.cpu_ns) / 1000,
            "ticks": a.ticks - b.ticks,
            "vol": a.vol - b.vol,
            "nonvol": a.nonvol - b.nonvol,
            "wakeups": (a.vol - b.vol) + (a.nonvol - b.nonvol),
        })
    return out


def psi_files(pid: int) -> list:
    """Paths of the */memory.pressure (or /proc/pressure/*) files pid holds open
    (for resil-init: its PSI trigger)."""
    out = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(".pressure") or target.startswith("/proc/pressure/"):
            out.append(target)
    return out


PSI_WAITER = r"""
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
os.write(fd, sys.argv[2].encode() + b"\0")
ep = select.epoll()
ep.register(fd, select.EPOLLPRI)
os.write(1, b"ready\n")
while True:
    for _ in ep.poll():
        os.write(1, b"event\n")
"""


def start_psi_waiter(path: str, trigger: str = "some 150000 2000000") -> subprocess.Popen:
    """A control process that does nothing but epoll_wait on a PSI trigger on
    `path` (the kernel wakes such a waiter now and then without an event: its
    context switches are the PSI trigger's own cost)."""
    p = subprocess.Popen([sys.executable, "-I", "-S", "-c", PSI_WAITER, path, trigger],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    if read_line(p.stdout.fileno(), bytearray(), 5.0) != b"ready":
        p.kill()
        p.wait()
        raise RuntimeError(f"PSI trigger on {path} refused")
    os.set_blocking(p.stdout.fileno(), False)
    return p


def psi_waiter_events(p: subprocess.Popen) -> int:
    """How many PSI events the control process has received so far."""
    n = 0
    while True:
        try:
            chunk = os.read(p.stdout.fileno(), 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        n += chunk.count(b"event")
    p._psi_events = getattr(p, "_psi_events", 0) + n
    return p._psi_events


# --------------------------------------------------------------------------
# timing


_DEVNULL_FD: Optional[int] = None


def time_spawn(argv: Sequence[str], env: Optional[dict] = None) -> tuple:
    """Wall time (ns) of posix_spawn + waitpid of argv, stdio on /dev/null.
    Returns (ns, exit status)."""
    global _DEVNULL_FD
    if _DEVNULL_FD is None:
        _DEVNULL_FD = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    fa = [(os.POSIX_SPAWN_DUP2, _DEVNULL_FD, 0),
          (os.POSIX_SPAWN_DUP2, _DEVNULL_FD, 1),
          (os.POSIX_SPAWN_DUP2, _DEVNULL_FD, 2)]
    e = os.environ if env is None else env
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], list(argv), e, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    return t1 - t0, os.waitstatus_to_exitcode(status)


def interleaved(items: Sequence, rounds: int, fn: Callable, seed: int = 1) -> dict:
    """Calls fn(item) `rounds` times per item, in a shuffled order each round so
    all items share the machine's noise. Returns {index: [results]}."""
    rng = random.Random(seed)
    out = {i: [] for i in range(len(items))}
    order = list(range(len(items)))
    for _ in range(rounds):
        rng.shuffle(order)
        for i in order:
            out[i].append(fn(items[i]))
    return out


def read_line(fd: int, buf: bytearray, timeout: float) -> Optional[bytes]:
    """One line from a raw fd (buffered in buf), or None on timeout/EOF."""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EINTR:
                continue
            return None
        if not chunk:
            return None
        buf.extend(chunk)
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[:i + 1]
    return line


# --------------------------------------------------------------------------
# statistics and formatting


def median(xs: Sequence[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def percentile(xs: Sequence[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (p in 0..100)."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None:
        return None
    if b == 0:
        return float("inf") if a > 0 else (1.0 if a == 0 else None)
    return a / b


def fmt_num(v, unit: str = "", digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    s = f"{v:,.{digits}f}"
    return f"{s} {unit}".strip()


def fmt_ratio(r: Optional[float]) -> str:
    if r is None:
        return "—"
    if r == float("inf"):
        return "∞"
    return f"{r:.2f}×"


# --------------------------------------------------------------------------
# a local HTTP server for health checks


class HealthServer:
    """A threaded HTTP server on 127.0.0.1 (port chosen by the kernel) that
    answers every GET with 200 and {"status":"ok"} and counts the requests per
    path, so several inits (each given its own path) can share it.

        srv = HealthServer(); url = srv.url("/health/x"); srv.count("/health/x"); srv.close()
    """

    BODY = b'{"status":"ok"}'

    def __init__(self):
        import http.server
        import threading

        counts: dict = {}
        lock = threading.Lock()
        body = self.BODY

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection, as resil-init asks

            def do_GET(self):  # noqa: N802 - http.server's name
                with lock:
                    counts[self.path] = counts.get(self.path, 0) + 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

            def handle_error(self, request, client_address):
                pass  # a check cut short by a stop (broken pipe, reset): not news

        self._counts, self._lock = counts, lock
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return self._counts.get(path, 0)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2)


# --------------------------------------------------------------------------
# cgroups: fake v2 trees, and a real v1 memory cgroup made (and removed) by the bench


def write_atomic(path: str, text: str) -> None:
    """Whole-file replace through rename, as tests/integration/fakecgroup.py does."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def fake_v2_cgroup(d: str, limit: int = 512 << 20, usage: int = 64 << 20,
                   oom_kill: int = 0) -> str:
    """A cgroup v2-style memory directory (memory.max, memory.current,
    memory.stat, memory.events; no memory.pressure, so resil-init arms no PSI
    trigger and samples every --memory-interval). Rewrites the files if d exists."""
    os.makedirs(d, exist_ok=True)
    write_atomic(os.path.join(d, "memory.max"), f"{limit}\n")
    write_atomic(os.path.join(d, "memory.current"), f"{usage}\n")
    write_atomic(os.path.join(d, "memory.stat"),
                 f"anon {usage}\nfile 0\nkernel 0\nkernel_stack 0\nsock 0\nshmem 0\n"
                 f"active_anon {usage}\ninactive_anon 0\nactive_file 0\ninactive_file 0\n"
                 "unevictable 0\nworkingset_refault_file 0\npgfault 0\n")
    write_atomic(os.path.join(d, "memory.events"), v2_events_text(oom_kill))
    return d


def v2_events_text(oom_kill: int) -> str:
    return (f"low 0\nhigh 0\nmax {oom_kill}\noom {oom_kill}\noom_kill {oom_kill}\n"
            "oom_group_kill 0\n")


def v1_memory_mount() -> Optional[str]:
    """Mount point of the cgroup v1 memory hierarchy, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields, tail = pre.split(), post.split()
            if len(tail) >= 3 and tail[0] == "cgroup" and "memory" in tail[2].split(",") \
                    and fields[3] == "/":
                return fields[4]
    return None


def own_memory_cgroup() -> Optional[str]:
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctrls.split(","):
                return path
    return None


def make_memory_cgroup(limit: int) -> tuple:
    """A new v1 memory cgroup `resil-bench-<random>` with memory.limit_in_bytes
    = limit, a child of this process's own memory cgroup (else of the root), as
    tests/integration/test_real_cgroup.py makes them. Returns (path, None) or
    (None, why not). remove_cgroup() is registered as a cleanup hook."""
    if os.geteuid() != 0:
        return None, "not root"
    mount, own = v1_memory_mount(), own_memory_cgroup()
    if mount is None or own is None:
        return None, "no cgroup v1 memory controller"
    name = f"resil-bench-{os.getpid()}-{random.randrange(1 << 24):06x}"
    tried = []
    for parent in dict.fromkeys((os.path.join(mount, own.lstrip("/")), mount)):
        path = os.path.join(os.path.normpath(parent), name)
        try:
            os.mkdir(path)
        except OSError as e:
            tried.append(f"mkdir {path}: {e.strerror}")
            continue
        try:
            with open(os.path.join(path, "memory.limit_in_bytes"), "w") as f:
                f.write(f"{limit}\n")
            with open(os.path.join(path, "memory.limit_in_bytes")) as f:
                if int(f.read()) != limit:
                    raise OSError(errno.EINVAL, "limit not taken")
        except OSError as e:
            os.rmdir(path)
            tried.append(f"memory.limit_in_bytes in {path}: {e.strerror}")
            continue
        def hook(p=path):
            remove_cgroup(p)
        hook.cgroup = path
        cleanup_hooks.append(hook)
        return path, None
    return None, "; ".join(tried)


def cgroup_pids(path: str) -> list:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def remove_cgroup(path: str, timeout: float = 10.0) -> None:
    """SIGKILLs what is left inside (only processes the bench put there), then
    removes the directory. Raises when it cannot."""
    if not os.path.isdir(path):
        return
    deadline = time.monotonic() + timeout
    while True:
        left = cgroup_pids(path)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap_all()
        if not left:
            try:
                os.rmdir(path)
                return
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
        elif time.monotonic() > deadline:
            raise RuntimeError(f"processes {left} still in {path} after SIGKILL")
        time.sleep(0.02)


def cgroup_launcher(path: str) -> list:
    """argv prefix that moves itself into the cgroup at path, then execs the rest."""
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', os.path.join(path, "cgroup.procs")]


def v1_oom_kills(path: str) -> int:
    try:
        with open(os.path.join(path, "memory.oom_control")) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------
# waiting for a process to die


def wait_death(pidfd: int, timeout: float) -> Optional[int]:
    """Blocks until the process of pidfd (from open_pidfd()) has exited: the
    pidfd turns readable when the process dies, the moment its parent gets
    SIGCHLD. Returns CLOCK_MONOTONIC ns at wake-up, or None on timeout."""
    r, _, _ = select.select([pidfd], [], [], timeout)
    if not r:
        return None
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def open_pidfd(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
