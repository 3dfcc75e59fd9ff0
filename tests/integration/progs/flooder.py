"""Sends one signal to a pid as fast as it can, until killed.

    flooder.py PID SIGNAL_NUMBER

A full queue (EAGAIN) is not a reason to stop: the point is to keep it full.
"""

import os
import sys

pid, sig = int(sys.argv[1]), int(sys.argv[2])
kill = os.kill
while True:
    try:
        kill(pid, sig)
    except ProcessLookupError:
        sys.exit(0)
    except OSError:
        pass
