#!/usr/bin/env bash
# Provides, without a container registry, the images the Dockerfile and the compose
# stack start from, under the names they use:
#
#   debian:bookworm-slim          debootstrap --variant=minbase bookworm, trimmed like
#                                 the official slim image, `docker import`ed
#   rust:1-bookworm               that image + Debian's build tools and -dev libraries,
#                                 the host's Rust toolchain, and a copy of the host's
#                                 crate registry for this Cargo.lock (builds offline)
#   fastflow-socket-proxy:standin Debian's haproxy with scripts/socket-proxy-standin:
#                                 a TEST STAND-IN for tecnativa/docker-socket-proxy
#
# These are stand-ins for tests on machines without registry access (our CI).
# Production builds with the real rust and debian images and runs the real
# tecnativa/docker-socket-proxy (docker-compose.yaml).
#
# An image whose tag exists is kept (a real one pulled from a registry included),
# unless --force. The stand-in rust:1-bookworm is refreshed when Cargo.lock changed
# since it was built (its crate copy would miss new crates).
#
# Usage: scripts/build-base-images.sh [--force]
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        FASTFLOW_STANDIN_PROXY_IMAGE (default fastflow-socket-proxy:standin)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
slim_tag="debian:bookworm-slim"
rust_tag="rust:1-bookworm"
proxy_tag="${FASTFLOW_STANDIN_PROXY_IMAGE:-fastflow-socket-proxy:standin}"
label="org.fastflow.standin"
force=""
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }; }
need docker "apt-get install -y docker.io"
docker info >/dev/null 2>&1 || { echo "error: the Docker engine does not answer (is dockerd running?)" >&2; exit 1; }
have() { docker image inspect "$1" >/dev/null 2>&1; }
image_label() { docker image inspect "$1" --format "{{ index .Config.Labels \"$2\" }}" 2>/dev/null || true; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

work="$(mktemp -d /var/tmp/fastflow-base-images.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# --- debian:bookworm-slim -----------------------------------------------------
build_slim() {
  need debootstrap "apt-get install -y debootstrap"
  [ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root" >&2; exit 1; }
  local t0 rootfs="$work/slim"
  t0=$(date +%s)
  echo "==> $slim_tag: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; echo "error: debootstrap failed (log above)" >&2; exit 1; }

  # What the official slim image keeps out and how its apt is set up.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  # Plain http like the official image: apt checks the signatures itself.
  rm -f "$rootfs/etc/apt/sources.list"
  local base="${mirror%/debian}"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $base/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
         "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/* "$rootfs"/tmp/*
  find "$rootfs/usr/share/locale" -mindepth 1 ! -name locale.alias -delete 2>/dev/null || true
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"

  echo "==> $slim_tag: docker import"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL $label=debootstrap" \
    --change 'CMD ["bash"]' \
    - "$slim_tag" >/dev/null
  rm -rf "$rootfs"
  docker run --rm --network none "$slim_tag" sh -c '. /etc/os-release && echo "$PRETTY_NAME"' >/dev/null \
    || { echo "error: $slim_tag does not start" >&2; exit 1; }
  echo "==> built $slim_tag ($(elapsed "$t0"))"
}

# --- rust:1-bookworm -----------------------------------------------------------
lock_sum() { sha256sum "$root/Cargo.lock" | cut -d' ' -f1; }

build_rust() {
  need cargo "the host's Rust toolchain is copied into the image"
  need rustc "the host's Rust toolchain is copied into the image"
  local t0 ctx="$work/rust" sysroot version cargo_home lock
  t0=$(date +%s)
  sysroot="$(cd "$root" && rustc --print sysroot)"
  version="$(cd "$root" && rustc --version | cut -d' ' -f2)"
  cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  lock="$(lock_sum)"
  [ -x "$sysroot/bin/cargo" ] || { echo "error: no cargo in the toolchain $sysroot" >&2; exit 1; }

  echo "==> $rust_tag: crates of Cargo.lock (cargo fetch --locked on the host)"
  (cd "$root" && cargo fetch --locked --quiet) \
    || { echo "error: cargo fetch --locked failed: the stand-in image builds offline and needs every crate on the host first" >&2; exit 1; }
  [ -d "$cargo_home/registry/index" ] && [ -d "$cargo_home/registry/cache" ] \
    || { echo "error: no crate registry under $cargo_home/registry after cargo fetch" >&2; exit 1; }

  echo "==> $rust_tag: Rust $version from $sysroot"
  mkdir -p "$ctx/toolchain" "$ctx/registry"
  # Hard links where possible (same file system), a copy otherwise. No docs.
  local dir
  for dir in bin lib libexec etc; do
    [ -e "$sysroot/$dir" ] || continue
    cp -al "$sysroot/$dir" "$ctx/toolchain/" 2>/dev/null || cp -a "$sysroot/$dir" "$ctx/toolchain/"
  done
  for dir in index cache; do
    cp -al "$cargo_home/registry/$dir" "$ctx/registry/" 2>/dev/null || cp -a "$cargo_home/registry/$dir" "$ctx/registry/"
  done
  cat >"$ctx/Dockerfile" <<EOF
# Stand-in for the official rust:1-bookworm (built by scripts/build-base-images.sh).
FROM $slim_tag
# The official image is buildpack-deps:bookworm: build tools and, among others, these
# -dev libraries, which decide what the crates link to (libssh2 and libgit2 are not
# among them, so git2 builds its own, as there).
RUN apt-get update && apt-get install -y --no-install-recommends \\
      ca-certificates git build-essential pkg-config file xz-utils \\
      libssl-dev zlib1g-dev libsqlite3-dev libcurl4-openssl-dev \\
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$version
COPY toolchain/ /usr/local/cargo/
RUN cargo --version && rustc --version
# Last, so a new Cargo.lock only rebuilds this layer. No network in the build: the
# crates come from this copy.
COPY registry/ /usr/local/cargo/registry/
ENV CARGO_NET_OFFLINE=true
LABEL $label=host-toolchain $label.cargo-lock=$lock
EOF
  echo "==> $rust_tag: docker build"
  local previous
  previous="$(docker image inspect "$rust_tag" --format '{{.Id}}' 2>/dev/null || true)"
  docker build -t "$rust_tag" "$ctx" >"$work/rust-build.log" 2>&1 \
    || { tail -n 40 "$work/rust-build.log" >&2; echo "error: building $rust_tag failed (log above)" >&2; exit 1; }
  rm -rf "$ctx"
  # The stand-in it replaces (now untagged) would otherwise stay on the disk.
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect "$rust_tag" --format '{{.Id}}')" ]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
  fi
  echo "==> built $rust_tag ($(elapsed "$t0"))"
}

# --- fastflow-socket-proxy:standin ----------------------------------------------
build_proxy() {
  local t0
  t0=$(date +%s)
  echo "==> $proxy_tag: Debian haproxy + scripts/socket-proxy-standin (test stand-in for tecnativa/docker-socket-proxy)"
  local previous
  previous="$(docker image inspect "$proxy_tag" --format '{{.Id}}' 2>/dev/null || true)"
  docker build ${force:+--no-cache} -t "$proxy_tag" "$root/scripts/socket-proxy-standin" >"$work/proxy-build.log" 2>&1 \
    || { tail -n 40 "$work/proxy-build.log" >&2; echo "error: building $proxy_tag failed (log above)" >&2; exit 1; }
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect "$proxy_tag" --format '{{.Id}}')" ]; then
    docker rmi "$previous" >/dev/null 2>&1 || true
  fi
  echo "==> built $proxy_tag ($(elapsed "$t0"))"
}

if [ -n "$force" ] || ! have "$slim_tag"; then
  build_slim
else
  echo "==> $slim_tag is there ($(image_label "$slim_tag" "$label" | sed 's/^$/not a stand-in/')), kept"
fi

if [ -n "$force" ] || ! have "$rust_tag"; then
  build_rust
else
  kind="$(image_label "$rust_tag" "$label")"
  if [ -n "$kind" ] && [ "$(image_label "$rust_tag" "$label.cargo-lock")" != "$(lock_sum)" ]; then
    echo "==> $rust_tag is a stand-in built for another Cargo.lock: refreshing its crates"
    build_rust
  else
    echo "==> $rust_tag is there (${kind:-not a stand-in}), kept"
  fi
fi

# Always built: with Docker's layer cache this takes a second, and edits of the
# stand-in's configuration take effect.
build_proxy
