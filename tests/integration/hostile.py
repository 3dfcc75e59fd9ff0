"""What the hardening and fault suites share: a hard deadline per test, runs as
an unprivileged user, mounts of our own (made and unmounted by the test), and
reading status.json strictly.

    deadline = hard_deadline(60)            # an autouse fixture for a module
    uid = scratch_uid()                     # a uid no other process uses
    d = shared_dir(tmp_root, uid)           # a directory that uid may write
    as_user(uid, "prlimit", "--nproc=1")    # a `via` prefix for helpers.Init
    with tmpfs(path, size="16k", ro=False): ...
    strict_json(path)                       # parsed, or AssertionError on invalid UTF-8

Every mount is made in the test's own directory and unmounted on the way out,
even when the test fails.
"""

import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import BIN


def hard_deadline(seconds):
    """An autouse fixture failing any test that runs longer than seconds: a hang
    in resil-init must fail its test, never stall the suite."""

    @pytest.fixture(autouse=True)
    def _deadline():
        def expired(signum, frame):
            raise AssertionError(f"test still running after its {seconds}s deadline")

        old = signal.signal(signal.SIGALRM, expired)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)

    return _deadline


def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts, other users' files, setpriv)")


def scratch_uid():
    """A uid no other process on the machine runs as, so that RLIMIT_NPROC
    counts only this test's processes."""
    base = 52000 + (os.getpid() % 1000) * 7
    for uid in range(base, base + 7):
        if not _uid_in_use(uid):
            return uid
    pytest.skip("no unused uid found for an unprivileged run")


def _uid_in_use(uid):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                return True
        except FileNotFoundError:
            pass
    return False


_shared = []


def shared_dir(uid, prefix="resil-hostile-"):
    """A fresh directory outside pytest's private tmp tree (mode 0700), owned by
    uid; removed when the test session ends."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chown(d, uid, uid)
    _shared.append(d)
    return d


@atexit.register
def _remove_shared_dirs():
    for d in _shared:
        shutil.rmtree(d, ignore_errors=True)


def as_user(uid, *then):
    """A prefix that drops to uid (and gid uid, no groups), then runs `then`."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv(1) not installed")
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *then]


@contextlib.contextmanager
def tmpfs(path, size="64k", ro=False):
    """A small tmpfs at path, unmounted on the way out."""
    require_root()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size},mode=0755" + (",ro" if ro else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "resil-test", str(path)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def fill(path):
    """Fills the filesystem holding directory path until ENOSPC."""
    chunk = b"x" * 4096
    with open(Path(path) / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
    for i in range(64):  # the last few inodes too
        try:
            (Path(path) / f"i{i}").touch()
        except OSError:
            break


def strict_json(path):
    """status.json parsed as the strict UTF-8 JSON it must be."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError(f"{path} is not valid UTF-8 ({e}): {data!r}") from None
    return json.loads(text)


def lenient_json(path):
    """status.json parsed however broken its bytes are, or None."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8", errors="replace"))
    except (FileNotFoundError, ValueError):
        return None


def without_leak_check(env):
    """env for a run that takes away what LeakSanitizer's exit-time scan needs
    (a thread: fork fails under RLIMIT_NPROC=1; /proc/self/maps): under
    `make test-asan` the scan would fail and change the exit code. Address and
    UB checks stay on; a build without sanitizers ignores the variable."""
    env = dict(env)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "detect_leaks=0"
    return env


@functools.lru_cache(maxsize=None)
def sanitized_build():
    """True when resil-init is built with AddressSanitizer (make test-asan)."""
    data = BIN.read_bytes()
    return b"__asan_init" in data or b"libasan" in data


def skip_if_sanitized_without_proc():
    """The sanitizer runtime reads its options and the process map from /proc:
    without /proc its exit-time leak scan fails and changes the exit code,
    whatever resil-init did. Those runs are for the plain and static builds."""
    if sanitized_build():
        pytest.skip("the sanitizer runtime itself needs /proc")


def fdinfo_flags(pid, fd):
    """The open flags of a process's file descriptor (its open file description)."""
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError(f"no flags in /proc/{pid}/fdinfo/{fd}")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
