"""scripts/deps.sh, which `make`, `make demo`, `make test` and CI run first.

dpkg-query, dpkg, apt-get, apt-cache and id are fakes on PATH here: the tests
decide what is installed and who is asking, and read back what would have
been run on a real machine (nothing is installed).
"""

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPS = REPO / "scripts" / "deps.sh"

FAKES = {
    # Like dpkg-query -W -f='${Package}:${Architecture} ${db:Status-Status}\n' NAME...:
    # one line per installed match, "no packages found" on stderr for the others.
    "dpkg-query": r"""#!/bin/sh
printf 'dpkg-query %s\n' "$*" | tr -d '\n' >>"$FAKE_LOG.queries"; echo >>"$FAKE_LOG.queries"
rc=0
for name; do
	case $name in -*) continue ;; esac
	hit=
	for have in $FAKE_INSTALLED; do
		case $name in
		*:*) [ "$have" = "$name" ] && hit=$have ;;
		*) [ "${have%%:*}" = "$name" ] && hit=$have ;;
		esac
	done
	if [ -n "$hit" ]; then echo "$hit installed"; else echo "dpkg-query: no packages found matching $name" >&2; rc=1; fi
done
exit $rc
""",
    "dpkg": r"""#!/bin/sh
case $1 in
--print-architecture) echo amd64 ;;
--print-foreign-architectures) for a in $FAKE_FOREIGN; do echo "$a"; done ;;
*) echo "dpkg $*" >>"$FAKE_LOG" ;;
esac
""",
    "apt-get": r"""#!/bin/sh
echo "apt-get $*" >>"$FAKE_LOG"
""",
    # apt-cache show PKG: known when listed in FAKE_KNOWN ("*": all are)
    "apt-cache": r"""#!/bin/sh
for p; do last=$p; done
case " $FAKE_KNOWN " in *" * "* | *" $last "*) exit 0 ;; esac
exit 100
""",
    "id": r"""#!/bin/sh
echo "$FAKE_UID"
""",
}

BUILD_PKGS = ["gcc", "libc6-dev", "make", "pkg-config", "libcurl4-openssl-dev", "libcjson-dev"]


@pytest.fixture
def fake(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in FAKES.items():
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"

    def run(args, installed, uid=0, known="*", foreign="", cwd=None, cmd=None):
        env = {
            "PATH": f"{bindir}:/usr/bin:/bin",
            "FAKE_LOG": str(log),
            "FAKE_INSTALLED": " ".join(["dpkg:amd64", *installed]),
            "FAKE_UID": str(uid),
            "FAKE_KNOWN": known,
            "FAKE_FOREIGN": foreign,
        }
        proc = subprocess.run(cmd or ["sh", str(DEPS), *args], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=60)
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return proc, calls

    return run


def installed_for(*targets):
    names = subprocess.run(["sh", str(DEPS), "--list", *targets], capture_output=True,
                           text=True, check=True).stdout.split()
    return [n if ":" in n else f"{n}:amd64" for n in names]


def test_nothing_missing_installs_nothing(fake):
    proc, calls = fake(["build", "test", "demo"], installed_for("build", "test", "demo"))
    assert proc.returncode == 0, proc.stderr
    assert calls == [], "deps.sh ran apt-get or dpkg with everything installed"
    assert proc.stdout == "" and proc.stderr == ""


def test_all_present_is_one_dpkg_query(fake, tmp_path):
    proc, _ = fake(["test", "demo"], installed_for("test", "demo"))
    assert proc.returncode == 0, proc.stderr
    queries = (tmp_path / "calls.log.queries").read_text().splitlines()
    assert len(queries) == 1, queries


def test_not_root_prints_the_one_command_and_fails(fake):
    have = [p for p in installed_for("build") if not p.startswith(("libcjson-dev", "pkg-config"))]
    proc, calls = fake(["build"], have, uid=1000)
    assert proc.returncode != 0
    assert calls == [], "a user who is not root got apt-get run"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].endswith("run: sudo apt-get install -y --no-install-recommends "
                             "pkg-config libcjson-dev"), lines[0]


def test_root_installs_exactly_the_missing_packages_without_update(fake):
    have = [p for p in installed_for("test") if not p.startswith(("libcmocka-dev", "python3-yaml"))]
    proc, calls = fake(["test"], have)
    assert proc.returncode == 0, proc.stderr
    installs = [c for c in calls if c.startswith("apt-get") and " install " in c]
    assert len(installs) == 1, calls
    assert installs[0].split()[-2:] == ["libcmocka-dev", "python3-yaml"], installs
    assert "--no-install-recommends" in installs[0].split() and "-y" in installs[0].split()
    assert not any(" update" in c for c in calls), f"apt-get update without need: {calls}"


def test_root_updates_first_when_apt_does_not_know_a_package(fake):
    have = [p for p in installed_for("build") if not p.startswith("libcjson-dev")]
    proc, calls = fake(["build"], have, known="")
    assert proc.returncode == 0, proc.stderr
    assert len(calls) == 2, calls
    assert "update" in calls[0].split() and "install" not in calls[0].split(), calls
    assert "install" in calls[1].split() and calls[1].split()[-1] == "libcjson-dev", calls


def test_arm64_adds_the_architecture_then_updates(fake):
    have = [p for p in installed_for("static-amd64")]
    proc, calls = fake(["static-arm64"], have)
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == "dpkg --add-architecture arm64", calls
    assert calls[1].endswith(" update -qq"), calls
    assert calls[2].split()[-3:] == ["gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu",
                                     "musl-dev:arm64"], calls


def test_arm64_not_root_names_the_architecture_step(fake):
    proc, calls = fake(["static-arm64"], installed_for("static-amd64"), uid=1000)
    assert proc.returncode != 0 and calls == []
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert ("run: sudo dpkg --add-architecture arm64 && sudo apt-get update && "
            "sudo apt-get install -y --no-install-recommends ") in proc.stderr, proc.stderr


def test_dry_run_runs_nothing_even_as_root(fake):
    have = [p for p in installed_for("build") if not p.startswith("gcc")]
    proc, calls = fake(["--dry-run", "build"], have)
    assert proc.returncode != 0 and calls == []
    assert "would run: apt-get install -y --no-install-recommends gcc" in proc.stderr


def test_unknown_target_is_a_usage_error(fake):
    proc, calls = fake(["nosuchtarget"], [])
    assert proc.returncode == 2 and calls == []
    assert "unknown target 'nosuchtarget'" in proc.stderr


def test_make_stops_with_the_one_line_message_before_compiling(fake, tmp_path):
    """The Makefile's deps step runs before pkg-config or cc are looked at."""
    have = [p for p in installed_for("build") if not p.startswith("libcurl4-openssl-dev")]
    out = tmp_path / "out"
    proc, calls = fake([], have, uid=1000, cwd=REPO,
                       cmd=["make", "--no-print-directory", f"BUILD={out}", f"BIN={out}/x",
                            f"{out}/x"])
    assert proc.returncode != 0
    assert calls == []
    assert not out.exists(), "make built something although packages were missing"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "run: sudo apt-get install -y --no-install-recommends libcurl4-openssl-dev" in lines[0]


def test_deps_script_is_posix_sh():
    assert DEPS.read_text().startswith("#!/bin/sh\n")
    for shell in ("sh", "dash"):
        if any(os.access(os.path.join(d, shell), os.X_OK) for d in ("/bin", "/usr/bin")):
            subprocess.run([shell, "-n", str(DEPS)], check=True)
