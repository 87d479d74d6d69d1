# Installed by Fast-Flow into every run (mounted read-only at /opt/fastflow).
# Python imports this module at start-up, after uv has prepared the environment and
# just before /app/main.py runs: printing the run's marker here lets Fast-Flow
# measure the environment setup time. The marker line is not stored in the log.
import os
import sys

if sys.argv and sys.argv[0] == "/app/main.py":
    _marker = os.environ.get("FASTFLOW_SETUP_MARKER")
    if _marker:
        sys.stdout.write(_marker + "\n")
        sys.stdout.flush()
