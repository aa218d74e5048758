#!/usr/bin/env bash
# Installs what is missing (Debian packages), then configures and builds build/ (Release, -j2).
# Idempotent: quick when nothing changed. Options: --no-install (skip apt), --debug.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(cmake g++ make libtorch-dev libopenblas0-pthread libgloo-dev libopenmpi-dev openmpi-bin
          libzmq3-dev cppzmq-dev nlohmann-json3-dev libgtest-dev libglpk-dev libssl-dev libcli11-dev libcpp-httplib-dev libtbb-dev chromium ccache iproute2
          clang libclang-rt-14-dev)
install=1
build_type=Release
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --debug) build_type=Debug ;;
    *) echo "setup.sh: unknown option '$arg' (use --no-install, --debug)" >&2; exit 2 ;;
  esac
done

if [ "$install" = 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
jobs="${GREENTRAIN_JOBS:-2}"
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
fi
# Progress lines are hidden; warnings and errors are shown; the build's own status decides.
set +e
cmake --build build -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built target)|^Consolidate|^Scanning'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  echo "setup: the build failed (see the errors above)" >&2
  exit "$status"
fi
echo "setup: build/greentrain is ready"
