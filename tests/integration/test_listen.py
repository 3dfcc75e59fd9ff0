"""--listen (SPEC 7): sockets created once, handed to every start as fds 3..
with LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, kept open across restarts so
that no connection is refused, removed (unix paths) at exit; bad addresses and
ports in use are usage errors with nothing started."""

import os
import socket
import stat
import subprocess
import time

import pytest

from helpers import run_cmd, wait_for, wait_file
from listenlib import (ClientLoop, free_port, http_get, ipv6_loopback, listen_app, starts,
                       wait_starts)


def test_every_start_gets_the_sockets_at_3_and_up_in_order(init, tmp_path):
    log = tmp_path / "starts.jsonl"
    p4, p6 = free_port(), free_port(socket.AF_INET6, "::1") if ipv6_loopback() else None
    sock_path = tmp_path / "admin.sock"
    args = ["--listen", f"web=127.0.0.1:{p4}"]
    if p6:
        args += ["--listen", f"[::1]:{p6}"]
    # control.sock and the metrics listener are resil-init's own: never inherited.
    args += ["--listen", f"admin=unix:{sock_path}", "--restart", "on-failure",
             "--backoff", "100ms", "--state-dir", tmp_path / "state",
             "--metrics", f"127.0.0.1:{free_port()}", "--", *listen_app(log)]
    run = init(args)
    first = wait_starts(log, 1, run=run)[0]
    http_get(p4, "/crash")
    second = wait_starts(log, 2, run=run)[1]
    names = "web:listen:admin" if p6 else "web:admin"
    for rec in (first, second):
        count = 3 if p6 else 2
        assert rec["listen_fds"] == str(count)
        assert rec["listen_pid"] == str(rec["pid"])  # the app's own pid, set after fork
        assert rec["listen_fdnames"] == names
        # Nothing of resil-init's but the sockets, at 3, 4, ... in the order given.
        assert [fd for fd, _ in rec["fds"]] == list(range(3, 3 + count)), rec["fds"]
        assert all(target.startswith("socket:[") for _, target in rec["fds"])
        socks = rec["sockets"]
        assert socks[0][:2] == [3, socket.AF_INET] and socks[0][3] == ["127.0.0.1", p4]
        if p6:
            assert socks[1][:2] == [4, socket.AF_INET6] and socks[1][3][:2] == ["::1", p6]
        assert socks[-1][1] == socket.AF_UNIX and socks[-1][3] == str(sock_path)
        assert all(s[2] == socket.SOCK_STREAM and s[4] for s in socks)  # listening already
    # The very same sockets, not new ones bound again.
    assert first["fds"] == second["fds"]
    assert first["pid"] != second["pid"]


def test_port_alone_is_dual_stack_and_serves_both_families(init, tmp_path):
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    log = tmp_path / "starts.jsonl"
    port = free_port(socket.AF_INET6, "::")
    run = init(["--listen", port, "--", *listen_app(log)])
    rec = wait_starts(log, 1, run=run)[0]
    assert rec["sockets"][0][1] == socket.AF_INET6 and rec["sockets"][0][3][0] == "::"
    assert http_get(port, host="127.0.0.1") == str(rec["pid"]).encode()
    assert http_get(port, host="::1") == str(rec["pid"]).encode()


def test_unix_socket_replaces_a_stale_one_and_is_removed_at_exit(init, tmp_path):
    log = tmp_path / "starts.jsonl"
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound once, nobody listening: left over from an earlier run
    run = init(["--listen", f"unix:{path}", "--", *listen_app(log)])
    wait_starts(log, 1, run=run)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(path))
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert b"200 OK" in c.recv(4096)
    run.signal(15)
    assert run.wait() == 0, run.stderr_text()
    assert not path.exists()


def app_never_started(marker):
    return ["sh", "-c", f"touch {marker}; sleep 5"]


@pytest.mark.parametrize("addr,words", [
    ("99999", ["99999", "0-65535"]),
    ("localhost", ["localhost"]),
    ("::1:80", ["::1:80", "brackets"]),
    ("[::1]", ["[::1]"]),
    ("a:b=80", ["a:b=80"]),
    ("unix:", ["unix:"]),
    ("bad name=80", ["bad name=80"]),
])
def test_bad_addresses_are_usage_errors(tmp_path, addr, words):
    marker = tmp_path / "started"
    r = run_cmd(["--listen", addr, "--", *app_never_started(marker)])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "--listen" in lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    assert not marker.exists()


def test_port_in_use_is_a_usage_error_naming_it(tmp_path):
    marker = tmp_path / "started"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        r = run_cmd(["--listen", f"127.0.0.1:{port}", "--", *app_never_started(marker)])
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line
    assert f"127.0.0.1:{port}" in line and "Address already in use" in line, line
    assert not marker.exists()


def test_a_path_that_is_not_a_socket_is_refused_and_kept(tmp_path):
    marker = tmp_path / "started"
    path = tmp_path / "precious.txt"
    path.write_text("data")
    r = run_cmd(["--listen", f"unix:{path}", "--", *app_never_started(marker)])
    assert r.returncode == 2, r.stderr
    assert str(path) in r.stderr and "not a socket" in r.stderr
    assert path.read_text() == "data"
    assert not marker.exists()


def test_the_backlog_is_set(init, tmp_path):
    log = tmp_path / "starts.jsonl"
    port = free_port()
    run = init(["--listen", f"127.0.0.1:{port}", "--listen-backlog", "7", "--",
                *listen_app(log)])
    wait_starts(log, 1, run=run)
    # ss shows a listener's backlog as its Send-Q.
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "LISTEN" and out[2] == "7", out


def restart_cycle(run, log, port, state_dir, crashes, manual):
    """Crashes the app `crashes` times, then `resil-init restart` `manual` times,
    each time waiting for the next start."""
    n = len(starts(log))
    for _ in range(crashes):
        http_get(port, "/crash")
        n += 1
        wait_starts(log, n, run=run)
    for _ in range(manual):
        r = run_cmd(["restart", "--state-dir", state_dir], timeout=30)
        assert r.returncode == 0, r.stderr
        n += 1
        # Answered once the new app runs: its start is already there.
        assert len(starts(log)) >= n - 1
        wait_starts(log, n, run=run)
        assert starts(log)[n - 1]["reason"] == "manual"


def test_no_connection_is_refused_across_crashes_and_manual_restarts(init, tmp_path):
    log = tmp_path / "starts.jsonl"
    port = free_port()
    state = tmp_path / "state"
    run = init(["--listen", f"127.0.0.1:{port}", "--restart", "on-failure", "--backoff", "200ms",
                "--state-dir", state, "--", *listen_app(log)])
    wait_starts(log, 1, run=run)
    with ClientLoop(port) as client:
        wait_for(lambda: client.answered >= 5, 10, "the client's first answers")
        restart_cycle(run, log, port, state, crashes=3, manual=3)
        before = client.answered
        wait_for(lambda: client.answered > before + 5, 10, "answers from the last app")
    assert len(starts(log)) == 7
    assert client.refused == 0, f"{client.refused} refused, {client.answered} answered"
    assert client.failed == [], client.failed
    assert run.running()


def test_without_listen_restarts_refuse_connections(init, tmp_path):
    # The same loop, the app binding its port itself: the test above can fail.
    log = tmp_path / "starts.jsonl"
    port = free_port()
    run = init(["--restart", "on-failure", "--backoff", "200ms", "--state-dir", tmp_path / "s",
                "--", *listen_app(log, "--port", port)])
    wait_starts(log, 1, run=run)
    wait_for(lambda: _answers(port), 10, "the app to answer")
    with ClientLoop(port) as client:
        wait_for(lambda: client.answered >= 5, 10, "the client's first answers")
        restart_cycle(run, log, port, tmp_path / "s", crashes=3, manual=0)
        before = client.answered
        wait_for(lambda: client.answered > before + 5, 10, "answers from the last app")
    assert client.refused > 0


def _answers(port):
    try:
        http_get(port, timeout=1)
        return True
    except OSError:
        return False
