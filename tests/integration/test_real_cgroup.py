"""Memory on this machine's real cgroups (SPEC §3, §6 "hybrid"): resil-init
WITHOUT --cgroup-root finds its cgroup from /proc/self/cgroup and
/proc/self/mountinfo, sees the limit, and a real kernel OOM kill restarts the
app in emergency mode.

Each test gets a fresh cgroup v1 memory cgroup `resil-test-<random>` with
memory.limit_in_bytes = 256M, created as a child of this process's own memory
cgroup (falling back to the root of the hierarchy). resil-init is started by
`sh -c 'echo $$ > cgroup.procs; exec ...'`, so it, the app and nothing else
live in the cgroup; at teardown whatever is left in it is killed and the
directory removed. Skipped, with the reason, where the machine does not allow
it (not root, no v1 memory controller, mkdir or the limit refused); a cgroup
that cannot be removed afterwards is an error, not a silent leftover.
"""

import errno
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (BIN, PROGS, PYTHON, UNSHARE, base_env, json_lines, pidns_problem,
                     require_bin)

MiB = 1 << 20
LIMIT = 256 * MiB
MOVE_FAILED = 99      # the launcher's exit status when it cannot join the cgroup


def _mountinfo():
    return Path("/proc/self/mountinfo").read_text().splitlines()


def v1_memory_mount():
    """Mount point of the cgroup v1 memory hierarchy, or None."""
    for line in _mountinfo():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(tail) >= 3 and tail[0] == "cgroup" and "memory" in tail[2].split(","):
            if fields[3] == "/":
                return fields[4]
    return None


def own_cgroup(controller=None):
    """This process's cgroup path for a v1 controller, or the v2 path (controller None)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if controller is None and hid == "0" and ctrls == "":
            return path
        if controller is not None and controller in ctrls.split(","):
            return path
    return None


def cgroup2_mount():
    for line in _mountinfo():
        pre, _, post = line.partition(" - ")
        if post.split()[:1] == ["cgroup2"] and pre.split()[3] == "/":
            return pre.split()[4]
    return None


class RealCgroup:
    def __init__(self, path):
        self.path = Path(path)

    def file(self, name):
        return self.path / name

    def read(self, name):
        return self.file(name).read_text()

    def oom_kills(self):
        for line in self.read("memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def pids(self):
        try:
            return [int(p) for p in self.read("cgroup.procs").split()]
        except FileNotFoundError:
            return []

    def child(self, name):
        sub = self.path / name
        sub.mkdir()
        return RealCgroup(sub)


def _make_cgroup():
    """A new 256M cgroup, or pytest.skip with every reason it could not be made."""
    if os.geteuid() != 0:
        pytest.skip("real cgroup tests need root (creating a memory cgroup)")
    mount = v1_memory_mount()
    own = own_cgroup("memory")
    if mount is None or own is None:
        pytest.skip("no cgroup v1 memory controller here (/proc/self/mountinfo has no "
                    "cgroup memory mount or /proc/self/cgroup no memory line)")
    name = "resil-test-" + secrets.token_hex(4)
    candidates = [os.path.join(mount, own.lstrip("/"), name), os.path.join(mount, name)]
    tried = []
    for path in dict.fromkeys(os.path.normpath(c) for c in candidates):
        try:
            os.mkdir(path)
        except OSError as e:
            tried.append(f"mkdir {path}: {e.strerror}")
            continue
        try:
            Path(path, "memory.limit_in_bytes").write_text("%d\n" % LIMIT)
            if int(Path(path, "memory.limit_in_bytes").read_text()) != LIMIT:
                raise OSError(errno.EINVAL, "limit not taken")
        except OSError as e:
            os.rmdir(path)
            tried.append(f"memory.limit_in_bytes in {path}: {e.strerror}")
            continue
        return RealCgroup(path)
    pytest.skip("cannot create a v1 memory cgroup: " + "; ".join(tried))


def _remove_cgroup(cg):
    """Kill what is left inside (only processes this test put there), then rmdir,
    children first. Raises when the cgroup cannot be removed."""
    dirs = sorted((Path(d) for d, _, _ in os.walk(cg.path)), key=lambda p: -len(p.parts))
    deadline = time.monotonic() + 10
    for d in dirs:
        sub = RealCgroup(d)
        while True:
            left = sub.pids()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not left:
                try:
                    os.rmdir(d)
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
            elif time.monotonic() > deadline:
                raise AssertionError(f"processes {left} still in {d} after SIGKILL")
            time.sleep(0.02)


@pytest.fixture
def real_cgroup():
    cg = _make_cgroup()
    try:
        yield cg
    finally:
        _remove_cgroup(cg)


class Run:
    """resil-init started inside a cgroup (as PID 1 of a new PID namespace, or
    as a plain child subreaper), with its output in files."""

    def __init__(self, cg, args, outdir, pid1=False, wrap=()):
        require_bin()
        if pid1 and pidns_problem():
            pytest.skip(pidns_problem())
        outdir.mkdir(parents=True, exist_ok=True)
        self.err_path = outdir / "init.stderr"
        launcher = ['sh', '-c', 'echo $$ > "$0" || exit %d; exec "$@"' % MOVE_FAILED,
                    str(cg.file("cgroup.procs"))]
        prefix = [*wrap, *(UNSHARE if pid1 else [])]
        env = base_env()
        env.pop("NODE_OPTIONS", None)
        env.pop("GOMEMLIMIT", None)
        with open(outdir / "init.stdout", "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([*launcher, *prefix, str(BIN), *map(str, args)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, start_new_session=True)

    def stderr_text(self):
        return self.err_path.read_text(errors="replace")

    def wait(self, timeout=15):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"resil-init still running after {timeout}s: "
                                 f"{self.stderr_text()!r}") from None
        if rc == MOVE_FAILED:
            pytest.skip(f"cannot move a process into the cgroup: {self.stderr_text()!r}")
        return rc

    def reason_line(self):
        lines = [l for l in self.stderr_text().splitlines() if l.strip()]
        assert lines, "resil-init wrote nothing on stderr"
        return lines[-1]


@pytest.fixture
def runs():
    started = []
    yield started
    for r in started:          # the cgroup teardown kills what is inside; this reaps
        if r.proc.poll() is None:
            try:
                os.killpg(r.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                r.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def start(runs, cg, tmp_path, args, pid1=False):
    r = Run(cg, [*args], tmp_path / f"run{len(runs)}", pid1=pid1)
    runs.append(r)
    return r


def starts(path):
    try:
        return json_lines(Path(path).read_text())
    except FileNotFoundError:
        return []


def status(state):
    return json.loads((state / "status.json").read_text())


def envdump(out):
    return [PYTHON, str(PROGS / "mem_envdump.py"), "--out", str(out), "--plan", "exit:0"]


def hog(out, mb=400):
    return [PYTHON, str(PROGS / "mem_hog.py"), "--out", str(out), "--mb", str(mb)]


COMMON = ["--backoff", "100ms", "--memory-interval", "100ms", "--grace", "2s"]


# ---- the limit ----

@pytest.mark.parametrize("pid1", [False, True], ids=["subreaper", "pid1"])
def test_app_sees_the_real_limit(real_cgroup, runs, tmp_path, pid1):
    out, state = tmp_path / "starts.jsonl", tmp_path / "state"
    r = start(runs, real_cgroup, tmp_path,
              [*COMMON, "--state-dir", state, "--", *envdump(out)], pid1=pid1)
    assert r.wait() == 0, r.stderr_text()
    [s] = starts(out)
    assert s["RESIL_MEMORY_LIMIT_MB"] == "256", (s, r.stderr_text())
    assert s["RESIL_MEMORY_TIER"] == "normal", s
    assert s["RESIL_EMERGENCY"] == "0", s
    assert "EMERGENCY_MODE" not in s, s
    assert status(state)["memory"]["limit_bytes"] == LIMIT


def test_the_limit_is_found_on_a_host_with_a_long_mountinfo(real_cgroup, runs, tmp_path):
    """A busy host's /proc/self/mountinfo is longer than the buffer the
    cgroup's files are read into (16 KiB): it is read whole all the same, and
    the app still gets the real limit. In a private mount namespace, 300 extra
    mounts come before the memory hierarchy's (unmounted and mounted again), so
    its line lies past the first 16 KiB."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    memory = v1_memory_mount()
    many = ("mount --make-rprivate / && umount \"$1\" && i=0; while [ $i -lt 300 ]; do "
            "mkdir -p \"$0/$i\" && mount -t tmpfs -o size=4k t \"$0/$i\" || exit 1; i=$((i+1)); "
            "done; mount -t cgroup -o memory memory \"$1\" && shift && exec \"$@\"")
    out, state = tmp_path / "starts.jsonl", tmp_path / "state"
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", many, str(mnt), memory, "cat",
                            "/proc/self/mountinfo"], capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot make mounts here: {probe.stderr!r}")
    where = probe.stdout.find(f" {memory} ".encode())
    assert where > 16384, f"the memory hierarchy's line is at byte {where}"
    r = Run(real_cgroup, [*COMMON, "--state-dir", state, "--", *envdump(out)], tmp_path / "run",
            wrap=["unshare", "--mount", "sh", "-c", many, str(mnt), memory])
    runs.append(r)
    assert r.wait(timeout=60) == 0, r.stderr_text()
    [s] = starts(out)
    assert s["RESIL_MEMORY_LIMIT_MB"] == "256", (s, r.stderr_text())


def test_effective_limit_is_the_smallest_on_the_path(real_cgroup, runs, tmp_path):
    """resil-init in an unlimited child of the 256M cgroup still sees 256 MiB."""
    inner = real_cgroup.child("inner")
    assert int(inner.read("memory.limit_in_bytes")) > LIMIT
    out, state = tmp_path / "starts.jsonl", tmp_path / "state"
    r = start(runs, inner, tmp_path, [*COMMON, "--state-dir", state, "--", *envdump(out)])
    assert r.wait() == 0, r.stderr_text()
    [s] = starts(out)
    assert s["RESIL_MEMORY_LIMIT_MB"] == "256", (s, r.stderr_text())


def test_hybrid_host_takes_pressure_from_cgroup2(real_cgroup, runs, tmp_path):
    """On a hybrid host the v1 memory files come with memory.pressure from the
    process's cgroup2 directory (where the kernel has PSI)."""
    mnt, v2 = cgroup2_mount(), own_cgroup(None)
    if mnt is None or v2 is None:
        pytest.skip("not a hybrid host: no cgroup2 mount or no 0:: line in /proc/self/cgroup")
    pressure = Path(mnt, v2.lstrip("/"), "memory.pressure")
    try:
        pressure.read_text()
    except OSError as e:
        pytest.skip(f"no readable {pressure}: {e.strerror}")
    if Path(mnt, v2.lstrip("/"), "memory.max").exists():
        pytest.skip("cgroup2 has memory.max here: memory comes from v2, not hybrid")
    out, state = tmp_path / "starts.jsonl", tmp_path / "state"
    r = start(runs, real_cgroup, tmp_path, [*COMMON, "--state-dir", state, "--",
                                            *envdump(out)])
    assert r.wait() == 0, r.stderr_text()
    mem = status(state)["memory"]
    assert mem["limit_bytes"] == LIMIT, mem
    assert isinstance(mem["psi_some_avg10"], (int, float)), mem


# ---- a real OOM kill ----

@pytest.mark.parametrize("pid1", [False, True], ids=["subreaper", "pid1"])
def test_real_oom_kill_restarts_the_app_in_emergency_mode(real_cgroup, runs, tmp_path, pid1):
    out, state = tmp_path / "starts.jsonl", tmp_path / "state"
    before = real_cgroup.oom_kills()
    r = start(runs, real_cgroup, tmp_path,
              [*COMMON, "--restart", "on-failure", "--max-restarts", "1", "--state-dir", state,
               "--", *hog(out)], pid1=pid1)
    assert r.wait(timeout=30) == 0, r.stderr_text()
    lines = starts(out)
    assert not any("allocated" in l for l in lines), "400 MB fitted under a 256M limit?"
    first, second = [l for l in lines if "pid" in l]
    assert first["RESIL_RESTART_REASON"] == "start" and first["RESIL_EMERGENCY"] == "0", first
    assert real_cgroup.oom_kills() > before, real_cgroup.read("memory.oom_control")
    assert second["RESIL_RESTART_COUNT"] == "1", second
    assert second["RESIL_RESTART_REASON"] == "oom", (second, r.stderr_text())
    assert second["RESIL_EMERGENCY"] == "1", second
    assert second.get("EMERGENCY_MODE") == "true", second
    assert second["RESIL_MEMORY_LIMIT_MB"] == "256", second
    doc = status(state)
    assert doc["app"]["restarts"] == 1
    assert doc["memory"]["oom_kills"] >= 1, doc["memory"]


def test_real_oom_kill_with_restart_no_exits_137(real_cgroup, runs, tmp_path):
    out, state, term = tmp_path / "starts.jsonl", tmp_path / "state", tmp_path / "termlog"
    r = start(runs, real_cgroup, tmp_path,
              [*COMMON, "--restart", "no", "--state-dir", state, "--termination-log", term,
               "--", *hog(out)])
    assert r.wait(timeout=30) == 137, r.stderr_text()
    assert "oom" in r.reason_line().lower(), r.reason_line()
    assert "oom" in term.read_text().lower(), term.read_text()
    last = status(state)["app"]["last_exit"]
    assert last["reason"] == "oom" and last["signal"] in ("KILL", "SIGKILL", 9), last


def test_real_memory_restart(real_cgroup, runs, tmp_path):
    """The first run holds 200 MiB (under the 256M limit): the working set stays
    above --memory-restart 160M, so the app is restarted (reason memory) into
    emergency mode; the second run allocates nothing and exits 0."""
    out, state = tmp_path / "starts.jsonl", tmp_path / "state"
    # The working set crosses 160M with a quarter of the 200 MiB still to
    # touch, 0.3 s of work idle and seconds of it under load: --defer-term has
    # the hog report its allocation before the restart's SIGTERM ends it, and
    # the long --grace keeps SIGKILL from cutting a slow allocation short.
    r = start(runs, real_cgroup, tmp_path,
              [*COMMON, "--grace", "30s", "--restart", "on-failure", "--max-restarts", "1",
               "--state-dir", state, "--memory-restart", "160M", "--memory-restart-for", "300ms",
               "--", *hog(out, mb=200), "--hold", "8", "--defer-term"])
    assert r.wait(timeout=30) == 0, r.stderr_text()
    lines = starts(out)
    assert {"allocated": 200} in lines, lines
    first, second = [l for l in lines if "pid" in l]
    assert real_cgroup.oom_kills() == 0, real_cgroup.read("memory.oom_control")
    assert second["RESIL_RESTART_REASON"] == "memory", (second, r.stderr_text())
    assert second["RESIL_EMERGENCY"] == "1", second
    assert second.get("EMERGENCY_MODE") == "true", second
