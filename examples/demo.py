#!/usr/bin/env python3
"""make demo: resil-init supervising examples/demo-app, driven through the whole
story: healthy -> crash -> restart -> hang -> unhealthy -> restart -> memory
pressure -> restart in emergency mode -> zero-downtime restarts (a client loop
through a crash and `resil-init restart`, none refused thanks to --listen) ->
the metrics -> SIGTERM -> graceful stop.

resil-init runs as PID 1 in a new PID namespace when we are root (unshare),
otherwise as a plain subreaper. Memory is read from a fake cgroup v2 directory
(--cgroup-root) so the demo can raise "memory pressure" without eating RAM.
Every wait has a deadline; whatever happens, everything started here is killed
by process group at the end."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("RESIL_INIT_BIN", os.path.join(ROOT, "build", "resil-init"))
APP = os.path.join(os.environ.get("RESIL_EXAMPLES", os.path.join(ROOT, "build", "examples")),
                   "demo-app")
MIB = 1024 * 1024
LIMIT = 256 * MIB

# The control requests go straight to 127.0.0.1, whatever http_proxy says.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def say(text):
    print(f"\n\033[1m== demo: {text}\033[0m" if sys.stdout.isatty() else f"\n== demo: {text}",
          flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class FakeCgroup:
    def __init__(self, path):
        self.path = path
        os.makedirs(path)
        write_atomic(os.path.join(path, "memory.max"), f"{LIMIT}\n")
        write_atomic(os.path.join(path, "memory.stat"), "anon 0\nfile 0\ninactive_file 0\n")
        write_atomic(os.path.join(path, "memory.events"),
                     "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
        self.set_usage(60 * MIB)

    def set_usage(self, nbytes):
        write_atomic(os.path.join(self.path, "memory.current"), f"{nbytes}\n")


class Demo:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="resil-demo-")
        self.state_dir = os.path.join(self.work, "state")
        self.cgroup = FakeCgroup(os.path.join(self.work, "cgroup"))
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc = None

    def command(self):
        opts = [
            "--restart", "on-failure", "--max-restarts", "10", "--backoff", "500ms:2s",
            "--grace", "3s",
            "--health-url", f"http://127.0.0.1:{self.port}/health",
            "--health-interval", "1s", "--health-timeout", "500ms", "--health-retries", "2",
            "--cgroup-root", self.cgroup.path, "--memory-interval", "500ms",
            "--memory-restart", "90%", "--memory-restart-for", "2s",
            "--emergency-env", "EMERGENCY_MODE=true",
            "--emergency-env", "DISABLE_WEBSOCKETS=true",
            "--state-dir", self.state_dir,
            # The port is bound once, by resil-init; demo-app serves it as fd 3.
            "--listen", f"127.0.0.1:{self.port}",
            "--metrics", f"127.0.0.1:{self.metrics_port}",
            "--termination-log", os.path.join(self.work, "termination-log"),
        ]
        cmd = [BIN] + opts + ["--", APP]
        if os.geteuid() == 0 and shutil.which("unshare"):
            probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                                   capture_output=True)
            if probe.returncode == 0:
                return ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"] + cmd, True
        return cmd, False

    def start(self):
        cmd, as_pid1 = self.command()
        say(f"starting resil-init {'as PID 1 (unshare)' if as_pid1 else 'as subreaper'} "
            f"over demo-app on port {self.port}")
        env = dict(os.environ, PORT=str(self.port))
        self.proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        self.init_pid = self.find_init_pid(as_pid1)

    def find_init_pid(self, as_pid1):
        if not as_pid1:
            return self.proc.pid
        deadline = time.monotonic() + 5
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        while time.monotonic() < deadline:
            try:
                kids = open(path).read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit("demo: resil-init did not start")

    def status(self):
        try:
            with open(os.path.join(self.state_dir, "status.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def wait_for(self, what, predicate, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st and predicate(st):
                return st
            if self.proc.poll() is not None:
                raise SystemExit(f"demo: resil-init exited early ({self.proc.returncode})")
            time.sleep(0.1)
        raise SystemExit(f"demo: timed out waiting for: {what}\nlast status: {self.status()}")

    def poke(self, path):
        try:
            OPENER.open(f"http://127.0.0.1:{self.port}{path}", timeout=2).read()
        except OSError:
            pass  # /crash and /hang may not answer in full

    def healthy_run(self, restarts):
        return lambda st: (st["app"]["restarts"] == restarts and st["app"]["state"] == "running"
                           and st["health"]["status"] == "healthy")

    def run(self):
        self.start()
        self.wait_for("the first healthy check", self.healthy_run(0))
        say("1. the app is healthy")

        say("2. the app crashes (GET /crash makes it exit 3)")
        self.poke("/crash")
        st = self.wait_for("a restart after the crash", self.healthy_run(1))
        say(f"   restarted after '{st['app']['last_exit']['reason']}', healthy again")

        say("3. the app hangs (GET /hang): health checks time out")
        self.poke("/hang")
        st = self.wait_for("a restart after unhealthy", self.healthy_run(2), timeout=20)
        say(f"   restarted after '{st['app']['last_exit']['reason']}', healthy again")

        say("4. memory pressure: the cgroup's working set rises to 240 of 256 MiB")
        self.cgroup.set_usage(240 * MIB)
        self.wait_for("a memory restart",
                      lambda st: st["app"]["last_exit"] and
                      st["app"]["last_exit"]["reason"] == "memory", timeout=20)
        self.cgroup.set_usage(80 * MIB)
        st = self.wait_for("the restart in emergency mode",
                           lambda st: self.healthy_run(3)(st) and st["app"]["emergency"])
        say("   restarted in EMERGENCY MODE (EMERGENCY_MODE=true DISABLE_WEBSOCKETS=true)")

        say("5. resil-init status")
        subprocess.run([BIN, "status", "--state-dir", self.state_dir], check=False)

        self.zero_downtime()

        say("7. the metrics (resil-init metrics; the same text is on GET /metrics)")
        out = subprocess.run([BIN, "metrics", "--state-dir", self.state_dir],
                             capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith(("resil_app_restarts_total", "resil_emergency", "resil_app_up")):
                print("   " + line, flush=True)

        say("8. SIGTERM to resil-init: graceful stop")
        os.kill(self.init_pid, signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        say(f"resil-init exited with {code}; termination log: "
            f"{open(os.path.join(self.work, 'termination-log')).read().strip()}")
        say("final status")
        subprocess.run([BIN, "status", "--state-dir", self.state_dir], check=False)
        say("done")
        return 0

    def zero_downtime(self):
        say("6. zero downtime: a client loop through a crash and a `resil-init restart`")
        counts = {"answered": 0, "refused": 0, "failed": 0}
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    OPENER.open(f"http://127.0.0.1:{self.port}/", timeout=10).read()
                    counts["answered"] += 1
                except ConnectionRefusedError:
                    counts["refused"] += 1
                except OSError as e:
                    if isinstance(getattr(e, "reason", None), ConnectionRefusedError):
                        counts["refused"] += 1
                    else:
                        counts["failed"] += 1
                time.sleep(0.01)

        loop = threading.Thread(target=client, daemon=True)
        loop.start()
        before = self.status()["app"]["restarts"]
        self.poke("/crash")
        self.wait_for("the restart after the crash", self.healthy_run(before + 1))
        subprocess.run([BIN, "restart", "--state-dir", self.state_dir], check=False)
        self.wait_for("the manual restart", self.healthy_run(before + 2))
        time.sleep(0.5)
        stop.set()
        loop.join(timeout=15)
        # --listen guarantees no refusal; a request the old app had already
        # accepted when it crashed or stopped is that app's to answer or lose.
        say(f"   {counts['answered']} requests answered, {counts['refused']} refused, "
            f"{counts['failed']} failed (taken by the app that went) across both restarts")

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        shutil.rmtree(self.work, ignore_errors=True)


def main():
    for path in (BIN, APP):
        if not os.access(path, os.X_OK):
            sys.exit(f"demo: {path} is missing: run `make` first")
    demo = Demo()
    try:
        return demo.run()
    finally:
        demo.cleanup()


if __name__ == "__main__":
    sys.exit(main())
