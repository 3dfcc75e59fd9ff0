"""The arm64 static binary (`make static ARCH=arm64`) and the release files
(`make dist`, scripts/dist.sh).

The binary checks run when build/resil-init-static-arm64 exists (or the file
named by RESIL_STATIC_ARM64_BIN); `make test-arm64` runs the behaviour suites
against it under qemu-user. The dist checks need both static binaries.
"""

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from test_static_build import MAX_SIZE, PT_INTERP, STATIC_BIN, elf_segments, needed_libraries

REPO = Path(__file__).resolve().parents[2]
ARM64_BIN = Path(os.environ.get("RESIL_STATIC_ARM64_BIN")
                 or REPO / "build" / "resil-init-static-arm64")
EM_AARCH64 = 183


def arm64_bin() -> Path:
    if not ARM64_BIN.is_file():
        pytest.skip(f"{ARM64_BIN} not built: run `make static ARCH=arm64`")
    return ARM64_BIN


def test_arm64_binary_is_aarch64_static_and_small():
    binary = arm64_bin()
    data, endian, is64, segments = elf_segments(binary)
    e_machine = int.from_bytes(data[18:20], "little" if endian == "<" else "big")
    assert is64 and e_machine == EM_AARCH64, f"e_machine={e_machine}, not aarch64"
    assert PT_INTERP not in [t for t, _, _ in segments], "the arm64 binary has a dynamic loader"
    assert needed_libraries(data, endian, is64, segments) == 0
    size = binary.stat().st_size
    assert size < MAX_SIZE, f"{binary} is {size} bytes, over the {MAX_SIZE}-byte budget"
    if shutil.which("file"):
        out = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True).stdout
        assert "ARM aarch64" in out and "statically linked" in out, out


def test_arm64_segments_load_on_64k_page_kernels():
    """-z norelro must not have cost the 64 KiB alignment arm64 kernels with
    16 or 64 KiB pages need: every PT_LOAD's offset and address agree mod 64 KiB."""
    binary = arm64_bin()
    data = binary.read_bytes()
    e_phoff = int.from_bytes(data[0x20:0x28], "little")
    e_phentsize = int.from_bytes(data[0x36:0x38], "little")
    e_phnum = int.from_bytes(data[0x38:0x3A], "little")
    loads = 0
    for i in range(e_phnum):
        ph = data[e_phoff + i * e_phentsize:e_phoff + (i + 1) * e_phentsize]
        if int.from_bytes(ph[0:4], "little") != 1:  # PT_LOAD
            continue
        loads += 1
        offset = int.from_bytes(ph[8:16], "little")
        vaddr = int.from_bytes(ph[16:24], "little")
        align = int.from_bytes(ph[48:56], "little")
        assert align >= 0x10000, f"PT_LOAD aligned to {align:#x}"
        assert offset % 0x10000 == vaddr % 0x10000, (hex(offset), hex(vaddr))
    assert loads >= 2


def test_arm64_version_runs_under_qemu():
    binary = arm64_bin()
    qemu = shutil.which("qemu-aarch64-static")
    if os.uname().machine == "aarch64":
        argv = [str(binary), "--version"]
    elif qemu:
        argv = [qemu, str(binary), "--version"]
    else:
        pytest.skip("not arm64 and no qemu-aarch64-static")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    version = (REPO / "VERSION").read_text().strip()
    assert proc.returncode == 0 and version in proc.stdout, (proc.returncode, proc.stdout, proc.stderr)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    for binary in (STATIC_BIN, ARM64_BIN):
        if not binary.is_file():
            pytest.skip(f"{binary} not built: `make dist` needs both static binaries")
    runs = []
    for n in range(2):
        out = tmp_path_factory.mktemp(f"dist{n}") / "dist"
        proc = subprocess.run(["sh", str(REPO / "scripts" / "dist.sh"), str(STATIC_BIN), str(ARM64_BIN)],
                              env=dict(os.environ, RESIL_DIST_DIR=str(out)), cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs.append(out)
    return runs


def test_dist_has_a_tarball_and_a_bare_binary_per_architecture(dist):
    out = dist[0]
    version = (REPO / "VERSION").read_text().strip()
    for arch, binary in (("amd64", STATIC_BIN), ("arm64", ARM64_BIN)):
        name = f"resil-init-{version}-linux-{arch}"
        bare = out / name
        assert sha256(bare) == sha256(binary) and os.access(bare, os.X_OK)
        with tarfile.open(out / f"{name}.tar.gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            assert set(members) == {name, f"{name}/resil-init", f"{name}/resil-init.1",
                                    f"{name}/README.md"}, sorted(members)
            exe = members[f"{name}/resil-init"]
            assert exe.mode & 0o111 and exe.uid == 0 and exe.gid == 0
            assert tar.extractfile(exe).read() == binary.read_bytes()
            assert tar.extractfile(members[f"{name}/resil-init.1"]).read() == \
                (REPO / "docs" / "resil-init.1").read_bytes()


def test_dist_sha256sums_check_and_cover_every_file(dist):
    out = dist[0]
    listed = {}
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name.lstrip("*")] = digest
    files = {p.name for p in out.iterdir() if p.name != "SHA256SUMS"}
    assert set(listed) == files
    for name, digest in listed.items():
        assert sha256(out / name) == digest, name
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, check=True)


def test_dist_is_reproducible(dist):
    first, second = dist
    assert (first / "SHA256SUMS").read_text() == (second / "SHA256SUMS").read_text()
