#!/usr/bin/env bash
# Kiln's whole test suite: the one command README.md and CI run.
#
#   scripts/test.sh            everything (about 15-25 minutes on 2 cores)
#   KILN_TEST_STAGES="unit asan" scripts/test.sh   only some stages
#
# Stages: unit (Release build + ctest: unit, API contract, threads, fork,
# real programs under LD_PRELOAD, misuse programs, spec, examples), asan
# (AddressSanitizer + UndefinedBehaviorSanitizer build of the cmocka tests),
# tsan (ThreadSanitizer build of the multi-threaded tests), valgrind
# (memcheck over the unit tests), models (spin), fuzz (libFuzzer, bounded),
# rust (cargo test of bindings/rust).  Each stage's log is in build-logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:${HOME:-/root}/.cargo/bin"
jobs=$(nproc 2>/dev/null || echo 2)
stages=${KILN_TEST_STAGES:-"unit asan tsan valgrind models fuzz rust"}
logs=$root/build-logs
mkdir -p "$logs"

if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh || exit 1; fi

passed=0 failed=0 failed_names=()
run_stage() {
  local name=$1; shift
  local start=$SECONDS
  printf '== %-9s ' "$name"
  if "$@" >"$logs/$name.log" 2>&1; then
    passed=$((passed + 1)); printf 'ok      (%ds)\n' $((SECONDS - start))
  else
    failed=$((failed + 1)); failed_names+=("$name"); printf 'FAILED  (%ds), last lines of build-logs/%s.log:\n' $((SECONDS - start)) "$name"
    tail -n 40 "$logs/$name.log" | sed 's/^/   | /'
  fi
}

configure_build() { # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j"$jobs"
}

stage_unit() {
  configure_build build -DCMAKE_BUILD_TYPE=Release &&
    (cd build && ctest --output-on-failure -j"$jobs" --timeout 600)
}
stage_asan() {
  configure_build build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DKILN_SANITIZE=address,undefined -DKILN_BUILD_BENCH=OFF &&
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --output-on-failure -j"$jobs" --timeout 600 -L cmocka)
}
stage_tsan() {
  configure_build build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DKILN_SANITIZE=thread -DKILN_BUILD_BENCH=OFF -DKILN_BUILD_EXAMPLES=OFF &&
    (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" ctest --output-on-failure -j"$jobs" --timeout 900 -L threads)
}
stage_valgrind() {
  # Every cmocka program runs under memcheck (CMake's emulator hook wraps
  # each test command); Kiln's own malloc stays in place (statically linked,
  # memcheck does not replace it), so memcheck checks Kiln's own accesses.
  # (The -DKILN_VALGRIND=ON build, whose client requests make memcheck track
  # the program's blocks, is tested by tests/misuse's valgrind case.)
  # KILN_TEST_LIGHT shrinks the heavy tests.
  configure_build build-valgrind -DCMAKE_BUILD_TYPE=Debug -DKILN_BUILD_BENCH=OFF \
    -DKILN_BUILD_EXAMPLES=OFF "-DCMAKE_CROSSCOMPILING_EMULATOR=valgrind;--error-exitcode=99;--leak-check=no;--quiet" &&
    (cd build-valgrind && KILN_TEST_LIGHT=1 ctest --output-on-failure -j"$jobs" --timeout 1800 -L cmocka -LE slow)
}
stage_models() { scripts/check-models.sh; }
stage_fuzz() { KILN_FUZZ_SECONDS=${KILN_FUZZ_SECONDS:-60} scripts/fuzz.sh; }
stage_rust() { (cd bindings/rust && cargo test --offline); }

for s in $stages; do
  case $s in
    unit|asan|tsan|valgrind|models|fuzz|rust) run_stage "$s" "stage_$s" ;;
    *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done
echo
[ "$failed" -gt 0 ] && echo "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
