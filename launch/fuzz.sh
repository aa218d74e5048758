#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang++ into build-fuzz/ and runs each for a fixed time
# budget on a copy of its seed corpus (fuzz/corpus/<target>/, with fuzz/<target>.dict when present).
#
#   ./launch/fuzz.sh [--seconds N] [TARGET...]     (default: 10 s each, every target)
#
# TARGET is a name like fuzz_config or config. Exit status: 0 every target ran its budget without a
# crash, leak, timeout or out-of-memory; 1 one did (its log is shown and the input that broke it is
# kept in build-fuzz/artifacts/), or the build failed; 2 usage error; 77 skipped (clang++ or the
# libFuzzer runtime is missing: apt-get install clang libclang-rt-14-dev).
# Several invocations may run at once (ctest runs two): the build is serialised with flock.
# GREENTRAIN_FUZZ_ARGS adds libFuzzer flags (e.g. "-only_ascii=1"); GREENTRAIN_JOBS the build's -j (2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ALL=(fuzz_config fuzz_trace fuzz_frame fuzz_control fuzz_store_request fuzz_manifest)
seconds=10
targets=()
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds)
      [ $# -ge 2 ] || usage
      seconds=$2
      shift 2
      ;;
    --seconds=*) seconds=${1#--seconds=}; shift ;;
    -h|--help) usage ;;
    -*) echo "fuzz.sh: unknown option '$1'" >&2; usage ;;
    *)
      t=$1
      [[ "$t" == fuzz_* ]] || t="fuzz_$t"
      found=0
      for a in "${ALL[@]}"; do [ "$a" = "$t" ] && found=1; done
      if [ "$found" = 0 ]; then
        echo "fuzz.sh: unknown target '$1' (targets: ${ALL[*]})" >&2
        exit 2
      fi
      targets+=("$t")
      shift
      ;;
  esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: --seconds needs a positive whole number, got '$seconds'" >&2
  exit 2
fi
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

# --- Prerequisites: clang++ and a libFuzzer runtime that links (else skip, exit 77). ---
CXX=${GREENTRAIN_FUZZ_CXX:-clang++}
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "fuzz.sh: SKIP: $CXX not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 77
fi
if ! command -v cmake >/dev/null 2>&1; then
  echo "fuzz.sh: SKIP: cmake not found" >&2
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/gt-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  >"$work/probe.cc"
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$work/probe.cc" -o "$work/probe" >"$work/probe.log" 2>&1; then
  echo "fuzz.sh: SKIP: $CXX cannot link a libFuzzer target (is libclang-rt-14-dev installed?):" >&2
  sed -n '1,5p' "$work/probe.log" >&2
  exit 77
fi

# --- Build (one builder at a time; the others wait, then find it up to date). ---
build=$root/build-fuzz
mkdir -p "$build"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
jobs="${GREENTRAIN_JOBS:-2}"
build_all() {
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root/fuzz" -B "$build" -DCMAKE_CXX_COMPILER="$CXX" >"$work/configure.log" 2>&1 || {
      cat "$work/configure.log" >&2
      return 1
    }
  fi
  cmake --build "$build" -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built target)|^Consolidate|^Scanning'
  return "${PIPESTATUS[0]}"
}
status=0
if command -v flock >/dev/null 2>&1; then
  exec 9>"$build/.lock"
  flock 9
  build_all || status=$?
  flock -u 9
  exec 9>&-
else
  build_all || status=$?
fi
if [ "$status" != 0 ]; then
  echo "fuzz.sh: the fuzz targets did not build (see above)" >&2
  exit 1
fi

# --- Run each target for its budget. ---
export GREENTRAIN_LOG=error
failed=()
for t in "${targets[@]}"; do
  dir=$work/$t
  mkdir -p "$dir/corpus" "$dir/tmp"
  if [ -d "$root/fuzz/corpus/$t" ]; then cp -r "$root/fuzz/corpus/$t/." "$dir/corpus/"; fi
  args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$dir/")
  [ -f "$root/fuzz/$t.dict" ] && args+=(-dict="$root/fuzz/$t.dict")
  # shellcheck disable=SC2206  # extra libFuzzer flags, split on spaces
  [ -n "${GREENTRAIN_FUZZ_ARGS:-}" ] && args+=(${GREENTRAIN_FUZZ_ARGS})
  rc=0
  (cd "$dir" && TMPDIR="$dir/tmp" \
     ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}" \
     UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
     "$build/$t" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1) || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1 || true)
  cov=$( (grep -oE 'cov: [0-9]+' "$dir/log" || true) | tail -n 1 | sed 's/cov: //')
  if [ "$rc" = 0 ]; then
    echo "fuzz.sh: $t: ok, ${execs:-?} runs in ${seconds} s, cov: ${cov:-?}"
  else
    failed+=("$t")
    mkdir -p "$build/artifacts"
    kept=""
    for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
      [ -e "$a" ] || continue
      cp "$a" "$build/artifacts/$t-$(basename "$a")"
      kept+=" $build/artifacts/$t-$(basename "$a")"
    done
    echo "fuzz.sh: $t: FAILED (exit $rc); the end of its log:" >&2
    tail -n 60 "$dir/log" >&2
    [ -n "$kept" ] && echo "fuzz.sh: $t: input kept:$kept (reproduce: $build/$t FILE)" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} target(s) passed"
