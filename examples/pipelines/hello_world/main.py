"""The smallest pipeline: prints a greeting and some facts about its environment."""
import os
import platform
import sys

print(f"Hello from Fast-Flow run {os.environ.get('FASTFLOW_RUN_ID', '?')}")
print(f"Python {platform.python_version()} on {platform.system()}")
print(f"GREETING={os.environ.get('GREETING', '(unset)')}")
print("warnings go to stderr", file=sys.stderr)
