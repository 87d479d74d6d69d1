"""Uses a third-party package from requirements.txt (installed by uv into the shared cache)."""
import json
import os

import six  # from requirements.txt

print(f"six {six.__version__} imported from {os.path.dirname(six.__file__)}")
rates = {"EUR": 1.0, "USD": 1.08, "CHF": 0.95}
amount = float(os.environ.get("AMOUNT", "100"))
for currency, rate in sorted(rates.items()):
    print(json.dumps({"currency": currency, "amount": round(amount * rate, 2)}))
