#!/usr/bin/env bash
# Install what building, testing and benchmarking Kiln needs (Debian 12).
# Run as root; a no-op for packages already present.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev llvm
  libcmocka-dev libbenchmark-dev valgrind spin
  python3 procps time git perl gcc
  libjemalloc2 libjemalloc-dev libtcmalloc-minimal4 libgoogle-perftools-dev libmimalloc2.0 libmimalloc-dev
  redis-server redis-tools
)
# Rust: the machine's rustup toolchain if there is one, else Debian's.
export PATH="$PATH:${HOME:-/root}/.cargo/bin"
command -v cargo >/dev/null 2>&1 || packages+=(cargo rustc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
