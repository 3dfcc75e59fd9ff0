"""An app that records the signals it receives, one name per line, in a file.

    sigrecorder.py --log FILE --ready FILE [--on-stop exit0|reraise|ignore]
                   [--child-log FILE] [--life SECONDS]

Handlers are installed before READY is written. Each delivery is recorded (a signal
sent twice is written twice). TERM and INT are recorded,
then (--on-stop) the app exits 0, dies of the same signal by re-raising it with
the default disposition, or keeps running. With --child-log the app first
forks a child in its own process group that records into that file (and exits
0 on TERM/INT); READY is written once both are set up. Both give up after
--life seconds (exit 97) so nothing outlives a broken test.
"""

import argparse
import os
import signal
import sys
import time

RECORDED = ["HUP", "INT", "QUIT", "USR1", "USR2", "TERM", "WINCH", "CONT", "URG", "ALRM", "TSTP",
            "TTIN", "TTOU", "RTMAX"]
STOP = {signal.SIGTERM, signal.SIGINT}

log_path = None
on_stop = "exit0"
wake_r = None


def watch_deliveries():
    """Every delivery of a handled signal writes one byte (its number) to the
    wakeup pipe, so repeated signals are counted even when Python runs the
    handler once for several of them."""
    global wake_r
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    old = signal.set_wakeup_fd(w)
    if old >= 0:
        os.close(old)
    if wake_r is not None:
        os.close(wake_r)
    wake_r = r


def delivered():
    try:
        return list(os.read(wake_r, 4096))
    except BlockingIOError:
        return []


def record(sig, frame):
    sigs = delivered()
    if not sigs:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, "".join(signal.Signals(s).name[3:] + "\n" for s in sigs).encode())
    os.close(fd)
    stop = [s for s in sigs if s in STOP]
    if not stop or on_stop == "ignore":
        return
    if on_stop == "reraise":
        signal.signal(stop[0], signal.SIG_DFL)
        os.kill(os.getpid(), stop[0])
        time.sleep(5)
        os._exit(98)
    os._exit(0)


def touch(path):
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)


def live(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(97)


def main():
    global log_path, on_stop
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--on-stop", choices=["exit0", "reraise", "ignore"], default="exit0")
    p.add_argument("--child-log")
    p.add_argument("--life", type=float, default=30.0)
    a = p.parse_args()
    log_path, on_stop = a.log, a.on_stop
    for name in RECORDED:
        signal.signal(getattr(signal, "SIG" + name), record)
    watch_deliveries()
    if a.child_log:
        child_ready = a.child_log + ".ready"
        pid = os.fork()
        if pid == 0:
            log_path, on_stop = a.child_log, "exit0"
            watch_deliveries()
            touch(child_ready)
            live(a.life)
        deadline = time.monotonic() + 10
        while not os.path.exists(child_ready) and time.monotonic() < deadline:
            time.sleep(0.005)
    touch(a.ready)
    sys.stdout.flush()
    live(a.life)


main()
