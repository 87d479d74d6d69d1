"""Signs the benchmark scripts in: an ADMIN API token made with
`fastflow token create` (as an operator would, while the server runs), sent as
`Authorization: Bearer …` by urllib everywhere (an installed opener) and by the
scripts' own http.client and socket requests (`header()` / `header_line()`).
Child processes inherit it through FASTFLOW_TOKEN."""
import os
import subprocess
import urllib.request
import uuid


def sign_in(binary, env):
    """Makes a token for the server whose configuration is `env` and uses it from now on."""
    out = subprocess.run([binary, "token", "create", "--name", f"bench-{uuid.uuid4().hex[:12]}",
                          "--role", "admin"], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"fastflow token create failed: {out.stderr.strip()}")
    use(out.stdout.strip())


def use(token):
    os.environ["FASTFLOW_TOKEN"] = token
    opener = urllib.request.build_opener()
    opener.addheaders = [("Authorization", f"Bearer {token}")]
    urllib.request.install_opener(opener)


def header():
    token = os.environ.get("FASTFLOW_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def header_line():
    token = os.environ.get("FASTFLOW_TOKEN")
    return f"Authorization: Bearer {token}\r\n" if token else ""


if os.environ.get("FASTFLOW_TOKEN"):
    use(os.environ["FASTFLOW_TOKEN"])
