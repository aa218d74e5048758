#!/usr/bin/env bash
# Set-up (install + build), then the main job on the bundled default configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/setup.sh
exec ./build/greentrain demo "$@"
