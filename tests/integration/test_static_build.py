"""The static musl build (`make static`, scripts/build-static.sh) and the Dockerfile.

The binary checks run when build/resil-init-static exists (or the file named by
RESIL_STATIC_BIN); build it with `make static`. The Dockerfile checks always run.
"""

import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import helpers

REPO = Path(__file__).resolve().parents[2]
STATIC_BIN = Path(os.environ.get("RESIL_STATIC_BIN") or REPO / "build" / "resil-init-static")
# The product's budget: under 300 KB with libcurl and cJSON linked in
# (scripts/build-static.sh says where the bytes went).
MAX_SIZE = 300_000

PT_DYNAMIC = 2
PT_INTERP = 3
DT_NULL = 0
DT_NEEDED = 1


def static_bin() -> Path:
    if not STATIC_BIN.is_file():
        pytest.skip(
            f"{STATIC_BIN} not built: run `make static` (or set RESIL_STATIC_BIN) "
            "to test the static musl binary"
        )
    return STATIC_BIN


def elf_segments(path: Path):
    """(endian, is64, [(p_type, p_offset, p_filesz)]) from the ELF program headers."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file"
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        e_phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        e_phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    segments = []
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if is64:
            p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
                endian + "IIQQQQ", data, off
            )
        else:
            p_type, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from(
                endian + "IIIII", data, off
            )
        segments.append((p_type, p_offset, p_filesz))
    return data, endian, is64, segments


def needed_libraries(data, endian, is64, segments):
    """Number of DT_NEEDED entries in the dynamic segment (0 when there is none)."""
    count = 0
    for p_type, p_offset, p_filesz in segments:
        if p_type != PT_DYNAMIC:
            continue
        fmt, size = (endian + "qQ", 16) if is64 else (endian + "iI", 8)
        for off in range(p_offset, p_offset + p_filesz, size):
            tag, _val = struct.unpack_from(fmt, data, off)
            if tag == DT_NULL:
                break
            if tag == DT_NEEDED:
                count += 1
    return count


def test_static_binary_has_no_interpreter_or_shared_libraries():
    data, endian, is64, segments = elf_segments(static_bin())
    types = [t for t, _, _ in segments]
    assert PT_INTERP not in types, "the static binary has a PT_INTERP (dynamic loader)"
    assert needed_libraries(data, endian, is64, segments) == 0, "the static binary needs shared libraries"


def test_file_says_statically_linked():
    binary = static_bin()
    if shutil.which("file") is None:
        pytest.skip("`file` is not installed")
    out = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "statically linked" in out or "static-pie linked" in out, out
    assert "dynamically linked" not in out, out


def test_static_binary_is_small():
    size = static_bin().stat().st_size
    assert size < MAX_SIZE, f"{STATIC_BIN} is {size} bytes, over the {MAX_SIZE}-byte budget"


def test_version_runs_in_an_empty_chroot():
    binary = static_bin()
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    version = (REPO / "VERSION").read_text().strip()
    with tempfile.TemporaryDirectory(prefix="resil-chroot-") as root:
        shutil.copy2(binary, os.path.join(root, "resil-init"))

        def enter():
            os.chroot(root)
            os.chdir("/")

        # Nothing but the binary: no libc, no /etc, no /dev, no /proc.
        proc = subprocess.run(
            ["/resil-init", "--version"],
            preexec_fn=enter,
            env={},
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert proc.returncode == 0, f"rc={proc.returncode} stdout={proc.stdout!r} stderr={proc.stderr!r}"
    assert version in proc.stdout + proc.stderr, (proc.stdout, proc.stderr)


def resolvable_hostname():
    """This machine's name if it resolves to an IPv4 address (else None)."""
    name = socket.gethostname()
    if not name or name.lower().rstrip(".") == "localhost":
        return None  # curl answers "localhost" itself, without resolving
    try:
        socket.getaddrinfo(name, None, socket.AF_INET)
    except OSError:
        return None
    return name


@pytest.mark.parametrize("family", ["ipv4", "ipv6", "hostname"])
def test_health_check_works_with_the_static_libcurl(tmp_path, family):
    """The static libcurl is HTTP-only (no TLS) and cut down for size: the
    health check must still run, to an IPv4 and an IPv6 literal, and to a name
    that curl's resolver thread looks up (built without its socketpair, the
    thread's result is polled on curl's timer)."""
    binary = static_bin()
    sleep = shutil.which("sleep")
    if sleep is None:
        pytest.skip("no sleep(1) to run as the app")
    if family == "ipv6" and not helpers.ipv6_loopback_works():
        pytest.skip("no IPv6 loopback (::1) here")
    hostname = resolvable_hostname() if family == "hostname" else None
    if family == "hostname" and hostname is None:
        pytest.skip("this machine's hostname does not resolve")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if family == "ipv6" else socket.AF_INET

    host = {"ipv4": "127.0.0.1", "ipv6": "::1", "hostname": "0.0.0.0"}[family]
    server = Server((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state = tmp_path / "state"
    url_host = {"ipv4": host, "ipv6": f"[{host}]", "hostname": hostname}[family]
    url = f"http://{url_host}:{server.server_address[1]}/health"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESIL_")}
    proc = subprocess.Popen(
        [str(binary), "--health-url", url, "--health-interval", "200ms",
         "--state-dir", str(state), "--", sleep, "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    status = None
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            out = subprocess.run(
                [str(binary), "status", "--state-dir", str(state)],
                env=env, capture_output=True, text=True, timeout=10,
            ).stdout
            try:
                status = json.loads(out)
            except ValueError:
                status = None
            if status and status.get("health", {}).get("status") == "healthy":
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.terminate()
        _, err = proc.communicate(timeout=30)
        server.shutdown()
        server.server_close()
    assert status and status["health"]["status"] == "healthy", (
        f"no healthy verdict from the static binary; last status={status!r} stderr={err!r}"
    )
    assert status["health"]["last_http_status"] == 200, status


# --- Dockerfile ---------------------------------------------------------------


def dockerfile_stages():
    """[(from_line_words, [(INSTRUCTION, args)])] for each stage of the Dockerfile."""
    text = (REPO / "Dockerfile").read_text()
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    stages = []
    for line in logical:
        instr, _, args = line.partition(" ")
        instr, args = instr.upper(), args.strip()
        if instr == "FROM":
            stages.append((args.split(), []))
        elif instr in ("ARG", "#") and not stages:
            continue
        else:
            assert stages, f"instruction before the first FROM: {line}"
            stages[-1][1].append((instr, args))
    return stages


def stage_lineage(name):
    """(the image stage NAME is built on at the root, [names of NAME and the
    stages it is built FROM]) and all their instructions, root first."""
    named = {}
    for words, instructions in dockerfile_stages():
        words = [w for w in words if not w.startswith("--")]  # FROM [--platform=...] BASE AS NAME
        if len(words) == 3 and words[1].upper() == "AS":
            named[words[2]] = (words[0], instructions)
    lineage, instructions = [], []
    while name in named and name not in lineage:
        lineage.append(name)
        name, own = named[name]
        instructions = own + instructions
    return name, lineage, instructions


def test_dockerfile_build_stage_runs_build_static_sh():
    root, lineage, instructions = stage_lineage("build")
    assert lineage, "no `FROM ... AS build` stage in the Dockerfile"
    assert root == "debian:bookworm-slim", (root, lineage)
    runs = [args for instr, args in instructions if instr == "RUN"]
    full = [r for r in runs if "scripts/build-static.sh" in r and "--deps-only" not in r]
    assert full, f"the build stage never runs scripts/build-static.sh: {runs}"
    copies = [args for instr, args in instructions if instr == "COPY"]
    assert any(c.split()[0] == "." for c in copies), f"the build stage does not COPY the repo: {copies}"


def test_dockerfile_final_stage_is_scratch_with_only_the_binary():
    stages = dockerfile_stages()
    from_words, instructions = stages[-1]
    assert from_words[0] == "scratch", from_words
    copies = [args.split() for instr, args in instructions if instr == "COPY"]
    assert len(copies) == 1, copies
    assert copies[0][0].startswith("--from=") and copies[0][-1] == "/resil-init", copies
    assert "build" in stage_lineage(copies[0][0].split("=", 1)[1])[1], f"not the build stage's binary: {copies}"
    assert copies[0][1].endswith("build/resil-init-static"), copies
    entry = [args for instr, args in instructions if instr == "ENTRYPOINT"]
    assert len(entry) == 1 and json.loads(entry[0]) == ["/resil-init", "--"], entry


def test_dockerignore_excludes_build_output():
    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()]
    assert any(l.rstrip("/").lstrip("/") == "build" for l in lines), lines


def test_make_static_runs_the_same_script():
    makefile = (REPO / "Makefile").read_text()
    assert "sh scripts/build-static.sh" in makefile


def test_build_script_is_posix_sh():
    script = REPO / "scripts" / "build-static.sh"
    assert script.read_text().startswith("#!/bin/sh\n")
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            subprocess.run([shell, "-n", str(script)], check=True)
