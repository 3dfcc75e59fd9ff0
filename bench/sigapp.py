"""App of the signal-forwarding benchmarks (run under each init, or alone).

Default (the signal-latency section): blocks SIGUSR1 and waits for it with
sigwaitinfo(), so no Python signal-handler delay is in the measured window: on
each receipt it writes the CLOCK_MONOTONIC time in ns, one line, to stdout (a
pipe read by bench.py). "ready" is written once the mask is in place; the bench
sends nothing before that. SIGTERM keeps its default action, so the init's stop
request ends the app.

`--term` (the SIGTERM-forwarding section): the same with SIGTERM, once: the
time of its receipt is written and the app exits 0. Blocked, SIGTERM reaches
the app even when it is itself PID 1 (the section's baseline). Before "ready"
the app goes once through what it does at receipt (with a SIGUSR2 it raises
itself), so the interpreter's first-time page faults on that path, the same
under every init and alone but tens of µs each and noisy, fall outside the
measured window.
"""

import os
import signal
import sys
import time

if sys.argv[1:] == ["--term"]:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2})
    signal.raise_signal(signal.SIGUSR2)
    signal.sigwaitinfo({signal.SIGUSR2})
    _ = b"%d\n" % time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    os.write(1, b"ready\n")
    signal.sigwaitinfo({signal.SIGTERM})
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    os.write(1, b"%d\n" % t)
    sys.exit(0)

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.write(1, b"ready\n")
while True:
    signal.sigwaitinfo({signal.SIGUSR1})
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    os.write(1, b"%d\n" % t)
