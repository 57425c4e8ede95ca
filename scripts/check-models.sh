#!/bin/sh
# check-models.sh — model-check Kiln's concurrency protocols with spin.
#
#   scripts/check-models.sh              safety + liveness of every model
#   scripts/check-models.sh --mutants    also the deliberately broken variants,
#                                        each of which spin must FIND an error
#   scripts/check-models.sh --only NAME  one model (cross_thread_free,
#                                        abandon_reclaim, arena_bump,
#                                        pool_cache)
#   EXTRA_DEFINES="-DFOO" ...            extra cpp defines for every spin run
#
# Each check runs in a fresh temporary directory: spin -a generates pan.c,
# gcc compiles it, ./pan searches the whole state space.
#   safety:   gcc -DSAFETY, ./pan            (assertions, invalid end states)
#   liveness: spin -DLIVENESS (the model's ltl formula), ./pan -a -f
#             (acceptance cycles under weak fairness)
# A check fails when pan reports errors, or when the search was cut short
# (depth limit or memory), since a partial search proves nothing.
# Budget: about 80 s without --mutants on one idle core (pool_cache's safety
# search is 20 s of it, the rest mostly gcc on pan.c); --mutants adds 40 s.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
models="$here/tests/model"
mutants=0
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mutants) mutants=1 ;;
    --only) shift; only="${1:-}" ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "check-models.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

for tool in spin gcc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "check-models.sh: $tool not found (apt-get install spin)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-models.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT INT TERM
failures=0
checks=0

# run_check NAME MODEL KIND EXPECT DEFINES...
#   KIND: safety | liveness;  EXPECT: pass | fail (mutants must fail)
run_check() {
  name=$1 model=$2 kind=$3 expect=$4
  shift 4
  defines="$* ${EXTRA_DEFINES:-}"
  case "$only" in ""|"$model") ;; *) return 0 ;; esac
  checks=$((checks + 1))
  dir="$work/$name"
  mkdir -p "$dir"
  cp "$models/$model.pml" "$dir/"
  start=$(date +%s)
  if [ "$kind" = liveness ]; then
    spin_defs="-DLIVENESS $defines"; cc_defs="-DCOLLAPSE"; pan_args="-m1000000 -a -f"
  else
    spin_defs="$defines"; cc_defs="-DSAFETY -DCOLLAPSE"; pan_args="-m1000000"
  fi
  # shellcheck disable=SC2086
  if ! (cd "$dir" && spin $spin_defs -a "$model.pml" >spin.log 2>&1 &&
        gcc -O1 -w $cc_defs -DMEMLIM=2048 -o pan pan.c >cc.log 2>&1); then
    echo "FAIL  $name: spin/gcc failed"; cat "$dir/spin.log" "$dir/cc.log" 2>/dev/null | head -20
    failures=$((failures + 1)); return
  fi
  # shellcheck disable=SC2086
  (cd "$dir" && ./pan $pan_args >pan.log 2>&1)
  secs=$(( $(date +%s) - start ))
  errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$dir/pan.log" | tail -1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$dir/pan.log" | tail -1)
  truncated=0
  grep -q -e "max search depth too small" -e "out of memory" -e "search not completed" "$dir/pan.log" && truncated=1
  [ -z "$errors" ] && errors=unknown
  if [ "$expect" = pass ]; then
    if [ "$errors" = 0 ] && [ $truncated = 0 ]; then
      echo "ok    $name ($kind, ${states:-?} states, ${secs}s)"
      return
    fi
    echo "FAIL  $name ($kind): errors=$errors truncated=$truncated (${secs}s)"
    grep -e "pan:1" -e "violated" -e "acceptance cycle" -e "invalid end state" "$dir/pan.log" | head -5
    if ls "$dir"/*.trail >/dev/null 2>&1; then
      keep="${TMPDIR:-/tmp}/kiln-model-failed-$name"
      rm -rf "$keep" && cp -r "$dir" "$keep"
      echo "      counterexample, last steps (all: cd $keep && spin $spin_defs -t -p -g $model.pml):"
      # shellcheck disable=SC2086
      (cd "$dir" && spin $spin_defs -t -p "$model.pml" 2>&1 | grep -E '^ *[0-9]+:[[:space:]]+proc' |
        tail -25 | sed 's/^/      /')
    fi
    failures=$((failures + 1))
  else
    if [ "$errors" != 0 ] && [ "$errors" != unknown ]; then
      why=$(grep -e "pan:1" "$dir/pan.log" | head -1)
      echo "ok    $name (mutant caught: $why, ${secs}s)"
      return
    fi
    echo "FAIL  $name: the mutant was NOT caught (errors=$errors): the model cannot fail this way"
    failures=$((failures + 1))
  fi
}

run_check cross_thread_free.safety   cross_thread_free safety   pass
run_check cross_thread_free.liveness cross_thread_free liveness pass -DMAXSTEPS=4
run_check abandon_reclaim.safety     abandon_reclaim   safety   pass
run_check abandon_reclaim.liveness   abandon_reclaim   liveness pass -DNO_T2_BLOCKS
run_check arena_bump.safety.3x1      arena_bump        safety   pass -DNT=3 -DALLOCS=1
run_check arena_bump.safety.2x2      arena_bump        safety   pass -DNT=2 -DALLOCS=2
run_check arena_bump.liveness        arena_bump        liveness pass -DNT=2 -DALLOCS=2
run_check pool_cache.safety          pool_cache        safety   pass
run_check pool_cache.liveness        pool_cache        liveness pass -DNO_TRIM

if [ $mutants = 1 ]; then
  run_check mutant.plain_push      cross_thread_free safety fail -DMUTANT_PLAIN_PUSH
  run_check mutant.no_wait         cross_thread_free safety fail -DMUTANT_NO_WAIT
  run_check mutant.no_never        abandon_reclaim   safety fail -DMUTANT_NO_NEVER
  run_check mutant.no_abandon_free abandon_reclaim   safety fail -DMUTANT_NO_ABANDON_ON_FREE
  run_check mutant.plain_bump      arena_bump        safety fail -DMUTANT_PLAIN_BUMP
  run_check mutant.publish_early   arena_bump        safety fail -DMUTANT_PUBLISH_BEFORE_CARVE -DNT=2 -DALLOCS=2
  run_check mutant.no_heavy_fence  pool_cache        safety fail -DMUTANT_NO_HEAVY_FENCE
  run_check mutant.no_recheck      pool_cache        safety fail -DMUTANT_NO_RECHECK
  run_check mutant.shared_busy     pool_cache        safety fail -DMUTANT_SHARED_BUSY
fi

if [ $failures -ne 0 ]; then
  echo "check-models.sh: $failures of $checks checks FAILED"
  exit 1
fi
echo "check-models.sh: all $checks checks passed"
