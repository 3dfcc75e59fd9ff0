"""App of the signal-forwarding benchmark (run under each init).

Blocks SIGUSR1 and waits for it with sigwaitinfo(), so no Python signal-handler
delay is in the measured window: on each receipt it writes the CLOCK_MONOTONIC
time in ns, one line, to stdout (a pipe read by bench.py). "ready" is written
once the mask is in place; the bench sends nothing before that. SIGTERM keeps
its default action, so the init's stop request ends the app.
"""

import os
import signal
import time

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.write(1, b"ready\n")
while True:
    signal.sigwaitinfo({signal.SIGUSR1})
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    os.write(1, b"%d\n" % t)
