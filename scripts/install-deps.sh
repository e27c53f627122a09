#!/usr/bin/env bash
# Installs the Debian packages Berth builds, runs and tests with; does nothing when all are present.
set -euo pipefail
packages=(
  # build
  meson ninja-build pkg-config g++ ccache
  libboost-dev libboost-system-dev libboost-context-dev libyaml-cpp-dev nlohmann-json3-dev libssl-dev librocksdb-dev doctest-dev libjemalloc-dev
  libarchive-dev libcurl4-openssl-dev
  # run: the node agent's OCI runtimes, CNI plugins and networking tools
  openssl ca-certificates iproute2 iptables runc crun containernetworking-plugins
  # tests: a local registry and the tools that build the busybox test image
  docker-registry umoci skopeo busybox-static
  # tests: the real Python client and pytest (for Debian's /usr/bin/python3), curl
  python3 python3-pytest python3-kubernetes python3-yaml curl
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
fi
if ! command -v kubectl >/dev/null; then
  echo "kubectl (v1.32) is expected on PATH; the end-to-end tests use it" >&2
fi
