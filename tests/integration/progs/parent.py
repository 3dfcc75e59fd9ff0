"""A parent for resil-init that a test can kill: runs the command given as its
child (stdio inherited), writes nothing, and lives until killed (or 30 s)."""

import subprocess
import sys
import time

child = subprocess.Popen(sys.argv[1:])
deadline = time.monotonic() + 30
while time.monotonic() < deadline and child.poll() is None:
    time.sleep(0.05)
sys.exit(0)
