"""Generates a messy CSV in /tmp, cleans it with the standard library, and reports."""
import csv
import io
import os
import random
import statistics

random.seed(int(os.environ.get("SEED", "42")))
rows = []
for i in range(1000):
    value = random.gauss(100, 15)
    rows.append({"id": i, "value": "" if random.random() < 0.05 else f"{value:.2f}"})

buf = io.StringIO()
writer = csv.DictWriter(buf, fieldnames=["id", "value"])
writer.writeheader()
writer.writerows(rows)
with open("/tmp/raw.csv", "w") as f:
    f.write(buf.getvalue())

with open("/tmp/raw.csv") as f:
    values = [float(r["value"]) for r in csv.DictReader(f) if r["value"]]

print(f"rows read:      {len(rows)}")
print(f"rows kept:      {len(values)} (dropped {len(rows) - len(values)} empty)")
print(f"mean / stdev:   {statistics.mean(values):.2f} / {statistics.stdev(values):.2f}")
print(f"min / max:      {min(values):.2f} / {max(values):.2f}")
