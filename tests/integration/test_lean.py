"""resil-init does an init's two everyday jobs first and at no extra cost
(issue 10): a signal that reaches it is passed to the app before any logging,
status writing or other bookkeeping, and an idle resil-init (no health check, no
memory option) is not woken at all, from the first second on.

The order of system calls comes from strace(1) (`strace -ff`, one trace file
per process); CI installs it (.ci/run). Context switches come from
/proc/PID/status of resil-init itself.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (BIN, UNSHARE, Init, base_env, children_of, prog, read_lines, require_bin,
                     require_pidns, wait_file, wait_for, wait_line_in)

STRACE = shutil.which("strace")

#: One system call line of `strace -xx`: name(args) = result.
SYSCALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\w+)")


def require_strace():
    if not STRACE:
        pytest.skip("strace not installed (apt-get install strace; .ci/run installs it)")


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


class TracedInit(Init):
    """resil-init under `strace -ff -xx` (every process its own trace file,
    every string in hex), as PID 1 of a new PID namespace or as a subreaper."""

    def __init__(self, args, pid1, outdir):
        self.trace_prefix = Path(outdir) / "trace"
        via = [STRACE, "-ff", "-xx", "-qq", "-o", str(self.trace_prefix), *(UNSHARE if pid1 else [])]
        # LeakSanitizer cannot run under ptrace (make test-asan runs this too)
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        super().__init__(args, pid1=False, outdir=outdir, via=via,
                         env=base_env({"ASAN_OPTIONS": asan}))

    def _candidates(self):
        """resil-init is below strace (and unshare)."""
        return descendants(self.proc.pid)

    def resil_calls(self):
        """(name, args, result) of every system call resil-init made after its
        execve, in order (from the trace file of the process that exec'd BIN)."""
        for path in sorted(self.trace_prefix.parent.glob(self.trace_prefix.name + ".*")):
            calls = []
            for line in path.read_text().splitlines():
                m = SYSCALL.match(line)
                if not m:
                    continue
                name, args, res = m.groups()
                if name == "execve":
                    calls = []
                    if res == "0" and hex_bytes(args).decode(errors="replace") == str(BIN):
                        calls = [m.groups()]
                elif calls:
                    calls.append(m.groups())
            if calls:
                return calls[1:]
        raise AssertionError(f"no trace of {BIN} in {self.trace_prefix}.*")


def hex_bytes(arg):
    """The bytes of a `strace -xx` string argument ("\\x0f\\x00...")."""
    m = re.match(r'\s*"((?:\\x[0-9a-f]{2})*)"', arg)
    return bytes.fromhex(m.group(1).replace("\\x", "")) if m else b""


def signals_read(calls):
    """Indexes and numbers of the signals resil-init took, and how: from its
    signalfd ("read") or straight from the kernel ("rt_sigtimedwait", its wait
    while nothing but a signal can wake it)."""
    fds = {res for name, _, res in calls if name == "signalfd4"}
    out = []
    for i, (name, args, res) in enumerate(calls):
        fd = args.split(",", 1)[0]
        if name == "read" and fd in fds and res == "128":
            data = hex_bytes(args.split(",", 1)[1])
            out.append((i, int.from_bytes(data[:4], "little"), name))
        elif name == "rt_sigtimedwait" and res.isdigit():
            out.append((i, int(res), name))
    return out


def wait_timeout(name, args):
    """The timeout of a wait resil-init made ("-1", "0", or a timespec), or
    None when the call is not one of its waits."""
    if name.startswith("epoll_") and "wait" in name:
        return args.split(", ")[3]
    if name == "rt_sigtimedwait":
        return re.search(r"(NULL|\{tv_sec=[^}]*\}), 8$", args).group(1)
    return None


def strace_signame(name):
    """How strace names a signal: SIGRTMAX is SIGRT_32 (the kernel's
    real-time signals are counted from 32)."""
    number = getattr(signal, "SIG" + name)
    return f"SIGRT_{number - 32}" if number >= 32 else f"SIG{name}"


CASES = {
    # name: (pid1, options, [(signal sent, signal the app must get)])
    "pid1": (True, [], [("USR1", "USR1"), ("TERM", "TERM")]),
    "pid1-rtmax": (True, [], [("RTMAX", "RTMAX"), ("TERM", "TERM")]),
    # between two health checks (the first is 30 s away), nothing but a signal can wake it
    "pid1-health-between-checks": (True, ["--health-url", "http://127.0.0.1:9/",
                                          "--health-interval", "30s"],
                                   [("USR1", "USR1"), ("TERM", "TERM")]),
    "pid1-rewrite-debug": (True, ["-r", "USR1:USR2", "--log-level", "debug"],
                           [("USR1", "USR2"), ("HUP", "HUP"), ("TERM", "TERM")]),
    "subreaper-single-child": (False, ["-c"], [("USR2", "USR2"), ("INT", "INT")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_forwarded_signal_is_the_first_thing_resil_init_acts_on(tmp_path, case):
    """Right after taking a forwarded signal, resil-init's next system call is
    the kill() that passes it on: no log line, no status.json, no timer comes
    first. While it waits with nothing else to do (control.sock open, no timer
    armed), it takes the signal straight from the kernel in rt_sigtimedwait,
    not through epoll and a read() of its signalfd. SIGRTMAX, which the
    kernel raises for control.sock's connections, is still the app's when
    kill() sends it."""
    require_bin()
    require_strace()
    pid1, opts, sends = CASES[case]
    if pid1:
        require_pidns()
    log, ready = tmp_path / "app.log", tmp_path / "app.ready"
    cmd = [*prog("sigrecorder.py"), "--log", log, "--ready", ready, "--on-stop", "exit0"]
    run = TracedInit([*opts, "--", *cmd], pid1=pid1, outdir=tmp_path)
    try:
        wait_file(ready, timeout=30)
        expected = []
        for sent, got in sends:
            run.signal(getattr(signal, "SIG" + sent))
            wait_line_in(log, got, timeout=30)
            expected.append((sent, got))
        assert run.wait(timeout=30) == 0, run.stderr_text()
        assert read_lines(log) == [got for _, got in sends]
        calls = run.resil_calls()
    finally:
        run.cleanup()

    taken = signals_read(calls)
    for sent, got in expected:
        number = getattr(signal, "SIG" + sent)
        at = [i for i, signo, _ in taken if signo == number]
        assert at, f"SIG{sent} was never taken: {taken!r}"
        how = next(h for i, _, h in taken if i == at[0])
        assert how == "rt_sigtimedwait", f"SIG{sent}, sent to an idle resil-init, came by {how}"
        name, args, _ = calls[at[0] + 1]
        assert name == "kill" and args.endswith(strace_signame(got)), (
            f"after reading SIG{sent}, resil-init's next system call was {name}({args}), not "
            f"the kill() forwarding SIG{got}; the calls that followed: "
            f"{[c[0] for c in calls[at[0] + 1:at[0] + 12]]}")


STOP_ENDS = {
    # name: (--on-stop of the app, what ends resil-init's wait after the kill)
    "app-exits": ("exit0", "the app's exit"),
    "app-ignores": ("ignore", "the wait's 1 ms timeout"),
}


@pytest.mark.parametrize("case", sorted(STOP_ENDS))
def test_after_forwarding_sigterm_resil_init_waits_before_its_bookkeeping(tmp_path, case):
    """After the kill() that forwards SIGTERM, resil-init gives the CPU to the
    app: it waits (epoll, or sigtimedwait) before its log line, status.json or grace timer
    (none of which may come between the kill and that wait). They come all
    the same: the line is logged, status.json says "stopping", and the grace
    still ends an app that ignores SIGTERM."""
    require_bin()
    require_strace()
    require_pidns()
    on_stop, _ = STOP_ENDS[case]
    log, ready, state = tmp_path / "app.log", tmp_path / "app.ready", tmp_path / "state"
    cmd = [*prog("sigrecorder.py"), "--log", log, "--ready", ready, "--on-stop", on_stop]
    run = TracedInit(["--state-dir", str(state), "--grace", "2s", "--", *cmd], pid1=True,
                     outdir=tmp_path)
    try:
        wait_file(ready, timeout=30)
        wait_file(state / "status.json", timeout=30)
        run.signal(signal.SIGTERM)
        if on_stop == "ignore":
            wait_for(lambda: json.loads((state / "status.json").read_text())["app"]["state"] == "stopping",
                     30, 'status.json to say "stopping"')
        code = run.wait(timeout=30)
        calls = run.resil_calls()
    finally:
        run.cleanup()
    assert code == (0 if on_stop == "exit0" else 137), run.stderr_text()
    assert "received SIGTERM: forwarding SIGTERM to the app" in run.stderr_text()
    names = [c[0] for c in calls]
    kill = next(i for i, (name, args, _) in enumerate(calls)
                if name == "kill" and args.endswith("SIGTERM"))
    wait = next((i for i in range(kill + 1, len(calls))
                 if wait_timeout(*calls[i][:2]) is not None), None)
    assert wait is not None, f"no wait after the kill: {names[kill:]}"
    between = names[kill + 1:wait]
    assert all(n in ("kill", "sched_yield", "read", "clock_gettime") for n in between), (
        f"between the kill() and the next wait, resil-init did {between}")
    waited = calls[wait]
    assert wait_timeout(*waited[:2]) not in ("0", "{tv_sec=0, tv_nsec=0}"), (
        f"that wait did not wait: {waited}")


def ctxsw(pid):
    """(voluntary, nonvoluntary) context switches of pid."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])


IDLE_RUNS = {
    # name: (pid1, options)
    "pid1": (True, []),
    "subreaper": (False, []),
    "pid1-restart-on-failure": (True, ["--restart", "on-failure"]),
}


def test_an_idle_resil_init_is_never_woken(init, tmp_path):
    """Side by side, each resil-init supervising `sleep` with no health check
    and no memory option: from one second after the app started, 10 s without a
    single context switch of resil-init."""
    sleep = shutil.which("sleep")
    runs = {}
    for name, (pid1, opts) in IDLE_RUNS.items():
        if pid1:
            require_pidns()
        runs[name] = init([*opts, "--", sleep, "60"], pid1=pid1, outdir=tmp_path / name)
    for run in runs.values():
        app = run.app_pid()
        wait_for(lambda: os.readlink(f"/proc/{app}/exe") == os.path.realpath(sleep), 10,
                 "the app to exec sleep")
    time.sleep(1.0)
    before = {name: ctxsw(run.pid) for name, run in runs.items()}
    time.sleep(10.0)
    after = {name: ctxsw(run.pid) for name, run in runs.items()}
    woken = {name: (after[name][0] - before[name][0], after[name][1] - before[name][1])
             for name in runs}
    assert all(run.running() for run in runs.values())
    assert all(v == (0, 0) for v in woken.values()), (
        f"context switches (voluntary, nonvoluntary) in 10 s of idling: {woken}")


def opened_paths(calls):
    """(path, flags) of every open/openat, in order."""
    out = []
    for name, args, _ in calls:
        if name in ("open", "openat"):
            parts = args.split(", ")
            if name == "openat":
                parts = parts[1:]
            out.append((bytes(hex_bytes(parts[0])).decode(errors="replace"), parts[1]))
    return out


@pytest.mark.parametrize("pid1", [True, False], ids=["pid1", "subreaper"])
def test_a_short_run_does_only_the_work_something_uses(tmp_path, pid1):
    """`resil-init -- /bin/true`: no timer is created (nothing waits on one),
    the cgroup's files are read once, at start (none again at the app's exit),
    no PSI trigger is made, and no /proc scan looks for leftovers the reap
    already said there are none of."""
    require_bin()
    require_strace()
    if pid1:
        require_pidns()
    run = TracedInit(["--", shutil.which("true")], pid1=pid1, outdir=tmp_path)
    try:
        assert run.wait(timeout=30) == 0, run.stderr_text()
        calls = run.resil_calls()
    finally:
        run.cleanup()
    names = [c[0] for c in calls]
    assert "timerfd_create" not in names, "a timer was created in a run that armed none"
    opened = opened_paths(calls)
    paths = [p for p, _ in opened]
    cgroup = [p for p in paths if p.startswith(("/sys/fs/cgroup/", "/proc/self/cgroup",
                                                 "/proc/self/mountinfo"))]
    twice = sorted({p for p in cgroup if cgroup.count(p) > 1})
    assert cgroup, f"no cgroup file read at start: {paths}"
    assert not twice, f"cgroup files read more than once: {twice}"
    assert not [p for p in paths if p.startswith("/proc/self/task")], (
        f"a /proc scan for leftovers after the reap found no child: {paths}")
    assert not [p for p, flags in opened if p.endswith("memory.pressure") and "O_RDWR" in flags], (
        "a PSI trigger was created for a run that nothing watches")


def hex_of(text):
    """text as `strace -xx` writes it inside a string argument."""
    return "".join(f"\\x{b:02x}" for b in str(text).encode())


@pytest.mark.parametrize("pid1", [True, False], ids=["pid1", "subreaper"])
def test_the_state_dir_is_made_after_the_app_started_not_on_the_way(tmp_path, pid1):
    """The state directory, control.sock and the first status.json are not on
    the way from the fork to the app's exec (the exec wakes resil-init, which
    would run first): between the fork and the first of them resil-init has
    waited (epoll, or sigtimedwait). They do come, while the app runs."""
    require_bin()
    require_strace()
    if pid1:
        require_pidns()
    state = tmp_path / "state"
    run = TracedInit(["--state-dir", str(state), "--", shutil.which("sleep"), "1"], pid1=pid1,
                     outdir=tmp_path)
    try:
        wait_file(state / "status.json", timeout=30)
        assert (state / "control.sock").exists()
        assert run.wait(timeout=30) == 0, run.stderr_text()
        calls = run.resil_calls()
    finally:
        run.cleanup()
    names = [c[0] for c in calls]
    forks = [i for i, n in enumerate(names) if n in ("vfork", "fork", "clone", "clone3")]
    assert forks, f"no fork in {names}"
    at_state = [i for i, (_, args, _) in enumerate(calls) if hex_of(state) in args]
    assert at_state, "the state directory was never touched"
    waits = [i for i, (n, args, _) in enumerate(calls) if wait_timeout(n, args) is not None
             and forks[0] < i < at_state[0]]
    assert forks[0] < at_state[0] and waits, (
        f"the state directory was made on the way from the fork to the app's exec: "
        f"{names[forks[0]:at_state[0] + 1]}")


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True)
    return r.stdout.strip()


@pytest.mark.parametrize("run_fs", ["tmpfs", "disk"])
def test_the_default_state_dir_is_on_a_tmpfs_and_status_finds_it(tmp_path, run_fs):
    """No --state-dir: status.json goes to /run/resil-init when /run is a tmpfs,
    else to /dev/shm/resil-init (a tmpfs in every container), and `resil-init
    status` run by the app finds it there. In a private mount namespace, with a
    fresh tmpfs on /dev/shm and /run a tmpfs or a directory on disk."""
    require_bin()
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    disk = tmp_path / "run-on-disk"
    disk.mkdir()
    if run_fs == "disk" and fs_type(disk) in ("tmpfs", "ramfs"):
        pytest.skip(f"{tmp_path} is on a tmpfs here: no directory on disk to put /run on")
    out, where = tmp_path / "status.out", tmp_path / "where"
    # status.json comes a moment after the start (10 ms): the app waits for it, as a script would
    app = ("i=0; while [ $i -lt 500 ] && [ ! -e /run/resil-init/status.json ] && "
           "[ ! -e /dev/shm/resil-init/status.json ]; do sleep 0.01; i=$((i+1)); done; "
           f'"{BIN}" status > "{out}"; '
           f'ls /run/resil-init/status.json /dev/shm/resil-init/status.json > "{where}" 2>/dev/null; '
           "exit 0")
    mount_run = "mount -t tmpfs tmpfs /run" if run_fs == "tmpfs" else f'mount --bind "{disk}" /run'
    script = (f"mount --make-rprivate / && mount -t tmpfs tmpfs /dev/shm && {mount_run} && "
              f'exec "{BIN}" -- sh -c \'{app}\'')
    r = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True,
                       timeout=30, env=base_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["app"]["state"] in ("running", "starting"), doc
    want = "/run/resil-init/status.json" if run_fs == "tmpfs" else "/dev/shm/resil-init/status.json"
    assert where.read_text().split() == [want]
