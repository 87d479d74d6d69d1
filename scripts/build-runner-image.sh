#!/usr/bin/env bash
# Builds the pipeline runner image without a container registry:
# Debian bookworm (python3 + ca-certificates) via debootstrap, plus the `uv`
# binary taken from the uv wheel on PyPI, imported with `docker import`.
#
# Usage: scripts/build-runner-image.sh [IMAGE_TAG]   (default: fastflow-runner:latest)
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), UV_VERSION (default: newest)
set -euo pipefail

tag="${1:-fastflow-runner:latest}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
uv_spec="uv${UV_VERSION:+==$UV_VERSION}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }; }
need debootstrap "apt-get install -y debootstrap"
need docker "apt-get install -y docker.io"
need python3 "apt-get install -y python3 python3-pip"
[ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root" >&2; exit 1; }

work="$(mktemp -d /var/tmp/fastflow-runner.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

echo "==> debootstrap bookworm (python3, ca-certificates) from $mirror"
debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; echo "error: debootstrap failed (log above)" >&2; exit 1; }

echo "==> fetching $uv_spec wheel from PyPI"
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --python-version 3.11 --dest "$work/wheel" "$uv_spec"
wheel="$(ls "$work"/wheel/uv-*.whl | head -n1)"
python3 - "$wheel" "$root/usr/local/bin" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("/scripts/uv"):
            os.makedirs(dest, exist_ok=True)
            path = os.path.join(dest, "uv")
            with open(path, "wb") as f:
                f.write(z.read(name))
            os.chmod(path, 0o755)
            break
    else:
        sys.exit("error: no scripts/uv in " + wheel)
PY

echo "==> trimming image"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*

echo "==> docker import as $tag"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /app' \
  --change 'CMD ["python3"]' \
  - "$tag" >/dev/null
docker run --rm --network none "$tag" sh -c 'python3 --version && uv --version'
echo "==> built $tag"
