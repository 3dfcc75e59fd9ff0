"""Shared helpers for the integration tests: running resil-init as PID 1 of a
fresh PID namespace (through `unshare`) or as a plain child subreaper, with its
output captured to files, every wait bounded, and cleanup that kills exactly
the processes a test started.

    run = run_init(["--grace", "1s", "--", "app", ...])   # PID 1; skips if not permitted
    run = run_subreaper(["--", "app"])                     # resil-init as a plain child
    run.pid, run.signal(sig), run.wait(timeout) -> code, run.stderr_text(),
    run.stdout_bytes(), run.reason_line(), run.app_pid(), run.ns()
    run_cmd(["status", "--state-dir", d]) -> CompletedProcess (short-lived runs)

The `init` fixture (conftest.py) wraps run_init with output under tmp_path.

Every run starts in its own session (start_new_session=True). resil-init puts
the app in a process group of its own, which a killpg of the run's group would
miss, so cleanup SIGKILLs the run's group and then every other process whose
session is the one the test created, and nothing else.
"""

import functools
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

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("RESIL_INIT_BIN") or REPO / "build" / "resil-init").resolve()
#: What /proc/PID/exe of a running resil-init names: BIN, or under qemu-user
#: (`make test-arm64`) the emulator, which runs the guest binary in its process.
EXE = Path(os.environ.get("RESIL_INIT_EXE") or BIN).resolve()
EXAMPLES = Path(os.environ.get("RESIL_EXAMPLES") or REPO / "build" / "examples")
PROGS = Path(__file__).resolve().parent / "progs"
PYTHON = sys.executable or "/usr/bin/python3"

UNSHARE = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]

START_TIMEOUT = 10.0   # resil-init and the app up and ready
EXIT_TIMEOUT = 10.0    # resil-init gone after it was told to go
POLL = 0.005

#: Log lines of resil-init in text format: "resil-init[PID]: LEVEL: message".
TEXT_LOG_LINE = re.compile(r"^resil-init\[\d+\]: (error|warn|info|debug): ")


def prog(name):
    """Command line running one of the helper programs in progs/."""
    return [PYTHON, str(PROGS / name)]


def base_env(extra=None):
    """The environment for resil-init: the test's own, without any RESIL_*
    variable (RESIL_INIT_BIN and RESIL_EXAMPLES belong to the test harness)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIL_")}
    env.pop("EMERGENCY_MODE", None)
    env.update(extra or {})
    return env


def require_bin():
    if not os.access(BIN, os.X_OK):
        pytest.skip(f"{BIN} not built (run `make build/resil-init` or set RESIL_INIT_BIN)")


@functools.lru_cache(maxsize=None)
def pidns_problem():
    """None when `unshare --pid --fork --mount-proc` works here, else why not."""
    try:
        r = subprocess.run([*UNSHARE, "sh", "-c", 'test "$$" = 1'], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return "unshare(1) not installed"
    except subprocess.TimeoutExpired:
        return "unshare --pid timed out"
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        return f"unshare --pid --mount-proc not permitted here: {err[-1] if err else r.returncode}"
    return None


def require_pidns():
    problem = pidns_problem()
    if problem:
        pytest.skip(problem)


# ---- /proc ----

def proc_stat(pid):
    """(state, ppid, pgid, sid) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def alive(pid):
    """True while pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children_of(pid):
    """Host pids of the children of pid (all threads)."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tasks:
        try:
            out += [int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except FileNotFoundError:
            pass
    return out


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def session_pids(sid):
    """Live (non-zombie) processes of session sid."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[3] == sid and st[0] not in ("Z", "X"):
            out.append(pid)
    return out


def pidns_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:  # gone, or not ours to look at
        return None


def pids_in_ns(ns):
    """Live processes (host pids) whose PID namespace is ns."""
    out = []
    for pid in all_pids():
        if pidns_of(pid) == ns and alive(pid):
            out.append(pid)
    return out


def host_pid(ns, inner_pid):
    """Host pid of the process that is inner_pid in PID namespace ns."""
    for pid in pids_in_ns(ns):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and int(line.split()[-1]) == inner_pid:
                return pid
    return None


def ipv6_loopback_works():
    """Whether ::1 can be bound here (some CI hosts run without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_for(cond, timeout, what):
    """Polls cond() until it returns something truthy; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(POLL)


def wait_file(path, timeout=START_TIMEOUT, what=None):
    path = Path(path)
    wait_for(path.exists, timeout, what or f"{path} to appear")
    return path


def read_lines(path):
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_line_in(path, line, timeout=START_TIMEOUT):
    wait_for(lambda: line in read_lines(path), timeout, f"{line!r} in {path} (has {read_lines(path)!r})")


# ---- running resil-init ----

_running = []


class Init:
    """One resil-init run: as PID 1 of a new PID namespace (pid1=True), or as a
    plain child of the test, where it is a child subreaper.

    via: a command prefix that starts resil-init as its child (e.g. a parent
    process a test kills) or execs it (setpriv, prlimit, unshare -m); tty: a
    terminal fd given to the run's new session as its controlling terminal (and
    its stdin unless stdin= is given); stderr: a file descriptor for resil-init's
    stderr instead of the captured file (stderr_text() then has nothing)."""

    def __init__(self, args, pid1=True, outdir=None, via=None, tty=None, stderr=None,
                 **popen_kw):
        self.pid1 = pid1
        self.outdir = Path(outdir or tempfile.mkdtemp(prefix="resil-it-"))
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.outdir / "init.stdout"
        self.stderr_path = self.outdir / "init.stderr"
        self.argv = [str(BIN), *[str(a) for a in args]]
        prefix = [*(UNSHARE if pid1 else []), *(via or [])]
        popen_kw.setdefault("env", base_env())
        popen_kw.setdefault("stdin", subprocess.DEVNULL if tty is None else tty)
        if tty is not None and not pid1:
            popen_kw["preexec_fn"] = functools.partial(_new_session_with_tty, tty)
        else:
            popen_kw["start_new_session"] = True
        if tty is not None and pid1:
            # As `docker run -it` does: PID 1 leads its own session and holds the
            # terminal (setsid(1) does not fork, PID 1 is no group leader yet).
            prefix = [*UNSHARE, "setsid", "--ctty", *(via or [])]
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([*prefix, *self.argv], stdout=self._out,
                                     stderr=self._err if stderr is None else stderr, **popen_kw)
        self.sid = self.proc.pid
        self._pid = self.proc.pid if not prefix else None
        self.returncode = None
        self.ended_at = None
        _running.append(self)

    # -- identity --

    @property
    def pid(self):
        """Host pid of the resil-init process (the child of unshare as PID 1)."""
        if self._pid is None:
            self._pid = wait_for(self._find_pid, START_TIMEOUT, "resil-init to start")
        return self._pid

    def _candidates(self):
        """The processes resil-init is looked for among: the children of the
        process we started (a subclass may look deeper)."""
        return children_of(self.proc.pid)

    def _find_pid(self):
        """resil-init, once exec'd: the process we started itself (a prefix that
        execs, such as setpriv), or one of its children (a prefix that forks)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args[0]} exited with {self.proc.returncode} before "
                                 f"resil-init started: {self.stderr_text()!r}")
        # The same file, not the same name: in another mount namespace (unshare
        # inside a chroot) the exe link names the path as seen from outside.
        want = os.stat(EXE)
        for child in [self.proc.pid, *self._candidates()]:
            try:
                exe = os.stat(f"/proc/{child}/exe")
            except OSError:
                continue
            if (exe.st_dev, exe.st_ino) == (want.st_dev, want.st_ino):  # exec'd, not unshare any more
                return child
        return None

    def ns(self):
        return pidns_of(self.pid)

    def app_pid(self, timeout=START_TIMEOUT):
        """Host pid of the app (resil-init's first child)."""
        return wait_for(lambda: (children_of(self.pid) or [None])[0], timeout,
                        "resil-init to start the app")

    # -- control --

    def signal(self, sig):
        """Sends sig to resil-init. As PID 1 it gets only signals it blocks or
        handles: send once the app is up (resil-init is set up by then)."""
        os.kill(self.pid, sig)

    def wait(self, timeout=EXIT_TIMEOUT):
        """resil-init's exit code (unshare passes it on); fails after timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"resil-init still running after {timeout:.1f}s; "
                                 f"stderr so far: {self.stderr_text()!r}") from None
        self.ended_at = time.monotonic()
        return self.returncode

    def running(self):
        return self.proc.poll() is None

    # -- output --

    def stdout_bytes(self):
        self._out.flush()
        return self.stdout_path.read_bytes()

    def stderr_bytes(self):
        return self.stderr_path.read_bytes()

    def stderr_text(self):
        return self.stderr_bytes().decode(errors="replace")

    def stderr_lines(self):
        return [l for l in self.stderr_text().splitlines() if l.strip()]

    def reason_line(self):
        """The last line resil-init wrote on stderr (the reason line at exit)."""
        lines = self.stderr_lines()
        assert lines, "resil-init wrote nothing on stderr"
        return lines[-1]

    # -- cleanup --

    def cleanup(self):
        """SIGKILL the run's process group, then everything else of the session
        it created (the app's own process group is in it too), then reap."""
        try:
            os.killpg(self.sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = session_pids(self.sid)
            if self.proc.poll() is None and self.proc.pid not in left:
                left.append(self.proc.pid)
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._out.close()
        self._err.close()


def _new_session_with_tty(fd):
    """In the child before exec: a new session whose controlling terminal is fd."""
    import fcntl
    import termios
    os.setsid()
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def run_init(args, pid1=True, **popen_kw):
    """Starts resil-init with args (options, "--", command...). pid1=True runs it
    as PID 1 of a new PID namespace; skips when that is not permitted here."""
    require_bin()
    if pid1:
        require_pidns()
    return Init(args, pid1=pid1, **popen_kw)


def run_subreaper(args, **popen_kw):
    """resil-init as a plain child process of the test (not PID 1)."""
    return run_init(args, pid1=False, **popen_kw)


def cleanup_all():
    while _running:
        _running.pop().cleanup()


def run_cmd(args, timeout=EXIT_TIMEOUT, **kw):
    """Runs resil-init to completion for a short-lived command (usage errors,
    status, probe): CompletedProcess with text output."""
    require_bin()
    kw.setdefault("env", base_env())
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(BIN), *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout, start_new_session=True, **kw)


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


# -- the event log of progs/sup_app.py: one JSON object a line --

def app_events(log):
    """Every event the app recorded so far (none before the file exists)."""
    try:
        return [json.loads(l) for l in Path(log).read_text().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def app_events_of(log, kind):
    return [e for e in app_events(log) if e["event"] == kind]


def starts(log):
    return app_events_of(log, "start")


def terms(log):
    return app_events_of(log, "term")


def says_address_in_use(text):
    """EADDRINUSE in resil-init's words: glibc's strerror and musl's (the static
    build) spell it differently."""
    return "Address already in use" in text or "Address in use" in text
