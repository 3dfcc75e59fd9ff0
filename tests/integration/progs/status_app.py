"""An app that asks its own resil-init for status and probe, from inside.

    status_app.py RESIL_INIT_BIN STATE_DIR OUT_DIR [--life SECONDS]

Waits (up to 5 s) for STATE_DIR/status.json, then runs `RESIL_INIT_BIN status
--state-dir STATE_DIR` and `... probe --state-dir STATE_DIR` and writes
OUT_DIR/report.json: {"my_pid", "status_rc", "status_stdout", "status_stderr",
"probe_rc", "probe_stderr"}. Then exits 0 as soon as OUT_DIR/app.exit exists.
"""

import json
import os
import subprocess
import sys
import time

bin_, state_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
life = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--life" else 30.0

deadline = time.monotonic() + 5
while not os.path.exists(os.path.join(state_dir, "status.json")) and time.monotonic() < deadline:
    time.sleep(0.005)
status = subprocess.run([bin_, "status", "--state-dir", state_dir], capture_output=True, text=True,
                        timeout=10)
probe = subprocess.run([bin_, "probe", "--state-dir", state_dir], capture_output=True, text=True,
                       timeout=10)
report = {"my_pid": os.getpid(), "status_rc": status.returncode, "status_stdout": status.stdout,
          "status_stderr": status.stderr, "probe_rc": probe.returncode,
          "probe_stderr": probe.stderr}
with open(os.path.join(out, "report.json.tmp"), "w") as f:
    json.dump(report, f)
os.rename(os.path.join(out, "report.json.tmp"), os.path.join(out, "report.json"))

deadline = time.monotonic() + life
while not os.path.exists(os.path.join(out, "app.exit")):
    if time.monotonic() > deadline:
        sys.exit(97)
    time.sleep(0.005)
sys.exit(0)
