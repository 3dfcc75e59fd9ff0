"""Fake cgroup v1/v2 memory trees for `resil-init --cgroup-root DIR`.

    cg = FakeCgroup(tmp_path, version=2, limit=512 * MiB, usage=100 * MiB)
    run_resil("--cgroup-root", cg.path, ...)      # or *cg.args
    cg.set_usage(480 * MiB)
    cg.bump_oom_kill()

Every change rewrites the file whole through a temporary file and rename(), so
resil-init never reads a half-written value (as with the kernel's own files).
Only plain files are written: resil-init must (and does) refuse to arm a PSI
trigger on them, so watching falls back to sampling every --memory-interval.
"""

import os
import tempfile

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# What a v1 kernel reports for "no limit" (PAGE_COUNTER_MAX in pages, as bytes).
V1_UNLIMITED = 9223372036854771712

_V2_FILES = ("memory.max", "memory.current", "memory.stat", "memory.events")
_V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "memory.oom_control")


class FakeCgroup:
    """One cgroup's memory files in a fresh directory under tmpdir.

    limit: bytes, or None for no limit ("max" in v2, V1_UNLIMITED in v1).
    usage: memory.current / memory.usage_in_bytes.
    inactive_file: the page cache the working set leaves out.
    psi_some_avg10: None for no memory.pressure file.
    """

    def __init__(self, tmpdir, version=2, limit=512 * MiB, usage=64 * MiB, inactive_file=0,
                 oom_kill=0, psi_some_avg10=None):
        if version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        self.version = version
        os.makedirs(str(tmpdir), exist_ok=True)
        self.path = tempfile.mkdtemp(prefix="cgroup-v%d-" % version, dir=str(tmpdir))
        self.limit = limit
        self.usage = usage
        self.inactive_file = inactive_file
        self.oom_kill = oom_kill
        self.psi_some_avg10 = psi_some_avg10
        self._psi_total = 0
        self._write_all()

    def __repr__(self):
        return "FakeCgroup(v%d %s limit=%r usage=%r inactive_file=%r oom_kill=%r psi=%r)" % (
            self.version, self.path, self.limit, self.usage, self.inactive_file,
            self.oom_kill, self.psi_some_avg10)

    # --- what tests pass to resil-init -------------------------------------

    @property
    def args(self):
        return ["--cgroup-root", self.path]

    @property
    def working_set(self):
        return max(0, self.usage - self.inactive_file)

    @property
    def files(self):
        """The names this layout uses (memory.pressure only when PSI is set)."""
        names = list(_V2_FILES if self.version == 2 else _V1_FILES)
        if self.psi_some_avg10 is not None:
            names.append("memory.pressure")
        return names

    # --- setters ------------------------------------------------------------

    def set_limit(self, limit):
        self.limit = limit
        self._write_limit()
        self._write_stat()  # v1 carries hierarchical_memory_limit there too

    def set_usage(self, usage, inactive_file=None):
        self.usage = usage
        if inactive_file is not None:
            self.inactive_file = inactive_file
            self._write_stat()
        self._write_usage()

    def set_working_set(self, working_set):
        """Usage such that usage - inactive_file == working_set."""
        self.set_usage(working_set + self.inactive_file)

    def set_inactive_file(self, inactive_file):
        self.inactive_file = inactive_file
        self._write_stat()

    def set_oom_kill(self, count):
        self.oom_kill = count
        self._write_events()

    def bump_oom_kill(self, n=1):
        self.set_oom_kill(self.oom_kill + n)

    def set_psi(self, some_avg10):
        """some avg10 in percent, or None to remove memory.pressure."""
        self.psi_some_avg10 = some_avg10
        self._write_pressure()

    # --- odd files ----------------------------------------------------------

    def write_raw(self, name, text):
        """Put exactly text in a file (garbage, empty, huge numbers ...)."""
        self._put(name, text)

    def remove(self, name):
        p = os.path.join(self.path, name)
        if os.path.isdir(p) and not os.path.islink(p):
            os.rmdir(p)
        elif os.path.lexists(p):
            os.unlink(p)

    def replace_with_dir(self, name):
        self.remove(name)
        os.mkdir(os.path.join(self.path, name))

    def break_file(self, name, how="garbage"):
        """how: garbage, empty, huge (past 2^64), missing, dir."""
        if how == "missing":
            self.remove(name)
        elif how == "dir":
            self.replace_with_dir(name)
        else:
            text = {"garbage": "not a number\n", "empty": "",
                    "huge": "123456789012345678901234567890\n"}[how]
            self.remove(name)
            self._put(name, text)

    def restore(self):
        """Rewrite every file from the current values (undoes break_file)."""
        for name in set(_V1_FILES + _V2_FILES + ("memory.pressure",)):
            p = os.path.join(self.path, name)
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
        self._write_all()

    def read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    # --- the files ----------------------------------------------------------

    def _put(self, name, text):
        fd, tmp = tempfile.mkstemp(prefix="." + name + ".", dir=self.path)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, os.path.join(self.path, name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _write_all(self):
        self._write_limit()
        self._write_usage()
        self._write_stat()
        self._write_events()
        self._write_pressure()

    def _limit_text(self):
        if self.limit is None:
            return "max\n" if self.version == 2 else "%d\n" % V1_UNLIMITED
        return "%d\n" % self.limit

    def _write_limit(self):
        name = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        self._put(name, self._limit_text())

    def _write_usage(self):
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        self._put(name, "%d\n" % self.usage)

    def _write_stat(self):
        inactive = self.inactive_file
        active = 0
        anon = max(0, self.usage - inactive)
        if self.version == 2:
            text = ("anon %d\nfile %d\nkernel 0\nkernel_stack 0\nsock 0\nshmem 0\n"
                    "active_anon %d\ninactive_anon 0\nactive_file %d\ninactive_file %d\n"
                    "unevictable 0\nworkingset_refault_file 0\npgfault 0\n"
                    % (anon, inactive + active, anon, active, inactive))
        else:
            hier = V1_UNLIMITED if self.limit is None else self.limit
            text = ("cache %d\nrss %d\nrss_huge 0\nshmem 0\nmapped_file 0\n"
                    "inactive_anon %d\nactive_anon 0\ninactive_file %d\nactive_file %d\n"
                    "unevictable 0\nhierarchical_memory_limit %d\n"
                    "hierarchical_memsw_limit %d\ntotal_cache %d\ntotal_rss %d\n"
                    "total_inactive_anon %d\ntotal_active_anon 0\n"
                    "total_inactive_file %d\ntotal_active_file %d\n"
                    % (inactive, anon, anon, inactive, active, hier, V1_UNLIMITED, inactive,
                       anon, anon, inactive, active))
        self._put("memory.stat", text)

    def _write_events(self):
        if self.version == 2:
            text = ("low 0\nhigh 0\nmax %d\noom %d\noom_kill %d\noom_group_kill 0\n"
                    % (self.oom_kill, self.oom_kill, self.oom_kill))
            self._put("memory.events", text)
        else:
            self._put("memory.oom_control",
                      "oom_kill_disable 0\nunder_oom 0\noom_kill %d\n" % self.oom_kill)

    def _write_pressure(self):
        if self.psi_some_avg10 is None:
            self.remove("memory.pressure")
            return
        some = float(self.psi_some_avg10)
        self._psi_total += int(some * 100000)
        self._put("memory.pressure",
                  "some avg10=%.2f avg60=%.2f avg300=%.2f total=%d\n"
                  "full avg10=%.2f avg60=%.2f avg300=%.2f total=%d\n"
                  % (some, some / 2, some / 4, self._psi_total,
                     some / 2, some / 4, some / 8, self._psi_total // 2))


if __name__ == "__main__":
    import sys

    root = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    for v in (1, 2):
        cg = FakeCgroup(root, version=v, usage=300 * MiB, inactive_file=20 * MiB,
                        psi_some_avg10=12.5)
        print(cg)
        for name in sorted(os.listdir(cg.path)):
            print("  %s: %r" % (name, cg.read(name)[:60]))
