#!/usr/bin/env bash
# Builds, then runs benchmarks. Each prints JSON lines with a baseline measured in the same run.
# Usage: ./launch/bench.sh [all|sim|comms|worker ...]
set -euo pipefail
cd "$(dirname "$0")/.."
./launch/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
what=("${@:-all}")
for w in "${what[@]}"; do
  for b in build/bench/bench_*; do
    name=$(basename "$b"); name=${name#bench_}
    if [ "$w" = all ] || [ "$w" = "$name" ]; then
      echo "== bench $name"
      "$b"
    fi
  done
done
