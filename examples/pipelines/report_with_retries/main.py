"""Fails on purpose unless SHOULD_FAIL=false, to show failure handling and tracebacks."""
import os
import time

print("building report…")
for step in ("extract", "transform", "load"):
    print(f"step {step}: ok")
    time.sleep(0.2)

if os.environ.get("SHOULD_FAIL", "true") == "true":
    raise RuntimeError("upstream data missing (set SHOULD_FAIL=false to succeed)")
print("report done")
