#!/usr/bin/env bash
# Set-up (install + build), then every test through ctest. Extra arguments go to ctest,
# e.g. ./launch/test.sh -L unit   (quick subset) or -R energy.
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build
ctest --output-on-failure -j"${GREENTRAIN_TEST_JOBS:-2}" "$@"
