#!/bin/bash
# bench_modes.sh BUILD_DIR [ROUNDS] — the cost of the hardened and checking
# modes: a few of bench/'s workloads (their --quick sizes, 2 threads) under
# LD_PRELOAD of BUILD_DIR/libkiln.so, plain, KILN_SECURE=1 and KILN_CHECK=1;
# the median wall time of ROUNDS runs (default 3), and each mode's ratio to
# the fast mode with their geometric mean.  Build BUILD_DIR in Release.
set -u
build=${1:?usage: $0 BUILD_DIR [ROUNDS]}
rounds=${2:-3}
lib=$build/libkiln.so
bin=$build/bench/workloads
src=$(cd "$(dirname "$0")/../../bench" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-modes.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
awk 'BEGIN { srand(7); for (i = 0; i < 100000; i++) printf "%d %s line %d\n", int(rand() * 1e6), substr("qwertyuiopasdfghjkl", i % 19 + 1), i }' >"$tmp/lines"

workloads=(
  "larson|$bin/larson 2 4 50000 1000 8 1000"
  "xmalloc|$bin/xmalloc 1 5000 100 16 512"
  "cache-scratch|$bin/cache-scratch 2 100 8 20000"
  "mstress|$bin/mstress 2 4 25000 4000"
  "simple|$bin/simple 1 100 1000"
  "realloc|$bin/realloc-growth 2 100000 256 1048576"
  "large-blocks|$bin/large-blocks 2 30 4 1 32"
  "python|env PYTHONMALLOC=malloc python3 $src/programs/alloc_heavy.py 5000"
  "perl|perl $src/programs/wordfreq.pl $tmp/lines"
  "sort|env LC_ALL=C sort -o /dev/null $tmp/lines"
)
modes=("fast|" "secure|KILN_SECURE=1" "check|KILN_CHECK=1")

now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf "%-14s %9s %9s %9s %8s %8s\n" workload fast secure check secure/f check/f
sum_s=0 sum_c=0 n=0
for w in "${workloads[@]}"; do
  name=${w%%|*} cmd=${w#*|}
  declare -A t=()
  for m in "${modes[@]}"; do
    mode=${m%%|*} envs=${m#*|}
    times=()
    for ((r = 0; r < rounds; r++)); do
      start=$(now)
      env $envs LD_PRELOAD="$lib" $cmd >/dev/null 2>"$tmp/err" || { echo "$name ($mode) failed:"; head -5 "$tmp/err"; }
      times+=("$(echo "$(now) - $start" | bc -l)")
    done
    t[$mode]=$(printf '%s\n' "${times[@]}" | median)
  done
  rs=$(echo "${t[secure]} / ${t[fast]}" | bc -l) rc=$(echo "${t[check]} / ${t[fast]}" | bc -l)
  printf "%-14s %9.3f %9.3f %9.3f %8.2f %8.2f\n" "$name" "${t[fast]}" "${t[secure]}" "${t[check]}" "$rs" "$rc"
  sum_s=$(echo "$sum_s + l($rs)" | bc -l) sum_c=$(echo "$sum_c + l($rc)" | bc -l) n=$((n + 1))
  unset t
done
printf "%-14s %9s %9s %9s %8.2f %8.2f\n" "geomean" "" "" "" "$(echo "e($sum_s / $n)" | bc -l)" "$(echo "e($sum_c / $n)" | bc -l)"
