#!/bin/sh
# fuzz.sh — build the libFuzzer target fuzz/fuzz_api.c with ASan + UBSan and
# run it for a bounded time.
#
#   scripts/fuzz.sh [SECONDS] [libFuzzer flags...]     default 60 s
#   (or KILN_FUZZ_SECONDS=n, as scripts/test.sh sets it)
#
# Builds in build-fuzz/ (KILN_FUZZ_BUILD to change) with clang and
# -DKILN_SANITIZE=address,undefined, which also turns KILN_OVERRIDE off: the
# sanitizer runtime keeps its own malloc and the target calls kiln_*.  The
# committed seeds (fuzz/corpus) and past crashes (fuzz/regressions) start the
# run; new interesting inputs go to fuzz/findings/corpus (git-ignored).  Any
# crash, leak or timeout found is copied to fuzz/regressions/ (commit it with
# the fix: ctest's spec_fuzz_replay replays it from then on) and the script
# exits 1.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-${KILN_FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
build=${KILN_FUZZ_BUILD:-build-fuzz}

command -v clang >/dev/null 2>&1 || { echo "fuzz.sh: clang not found" >&2; exit 2; }
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DKILN_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=OFF >"$build/fuzz-cmake.log" 2>&1 ||
  { cat "$build/fuzz-cmake.log"; exit 2; }
cmake --build "$build" --target fuzz_api -j2 >"$build/fuzz-build.log" 2>&1 ||
  { tail -40 "$build/fuzz-build.log"; exit 2; }

findings=fuzz/findings
mkdir -p "$findings/corpus" fuzz/regressions
before=$(ls "$findings" | grep -c -E '^(crash|leak|timeout|oom)-' || true)
status=0
# -timeout: one input may run 10 s (a hang is a bug); -rss_limit_mb: the
# model caps blocks at a few MiB, so 4 GiB means a leak.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$build/tests/fuzz_api" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$findings/" -print_final_stats=1 "$@" \
  "$findings/corpus" fuzz/corpus fuzz/regressions || status=$?

new=0
for f in "$findings"/crash-* "$findings"/leak-* "$findings"/timeout-* "$findings"/oom-*; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  if [ ! -f "fuzz/regressions/$name" ]; then
    cp "$f" "fuzz/regressions/$name"
    echo "fuzz.sh: new regression input fuzz/regressions/$name"
    new=$((new + 1))
  fi
done
if [ $status -ne 0 ] || [ $new -ne 0 ]; then
  echo "fuzz.sh: FAILED (libFuzzer status $status, $new new regression input(s); $before older findings)"
  exit 1
fi
echo "fuzz.sh: no failure in $secs s"
