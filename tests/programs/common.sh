# common.sh — sourced by the tests/programs/*.sh scripts: run a real program
# three times, plain and with libkiln.so preloaded, and check that
#   1. the program's output and exit status are the same with and without Kiln,
#   2. with KILN_SHOW_STATS=1 Kiln's statistics appear on stderr with a
#      non-zero allocation count (Kiln really served the program).
# Usage (from a script):  . common.sh "$libkiln"; require prog...; run_workload
# where the script defines `workload`, run in a fresh directory $WORK/run
# (the same path every time, so outputs that mention it stay comparable).
# Exit status: 0 pass, 1 fail, 77 skip (a program is not installed).
set -u

KILN_LIB=${1:?usage: $0 path/to/libkiln.so}
if [ ! -f "$KILN_LIB" ]; then
  echo "FAIL: $KILN_LIB does not exist"
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-programs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The run must not depend on the user's configuration or locale.
export HOME="$WORK/home" LC_ALL=C TZ=UTC PYTHONHASHSEED=0
mkdir -p "$HOME"

require() {
  for prog in "$@"; do
    if ! command -v "$prog" >/dev/null 2>&1; then
      echo "SKIP: $prog is not installed"
      exit 77
    fi
  done
}

# run_one NAME [VAR=value...]: run `workload` in a fresh $WORK/run with the
# given environment; stdout -> $WORK/NAME.out, stderr -> $WORK/NAME.err,
# exit status -> $WORK/NAME.rc.
run_one() {
  local name=$1
  shift
  rm -rf "$WORK/run"
  mkdir -p "$WORK/run"
  (
    cd "$WORK/run" || exit 99
    for assignment in "$@"; do export "$assignment"; done
    workload
  ) >"$WORK/$name.out" 2>"$WORK/$name.err"
  echo $? >"$WORK/$name.rc"
}

run_workload() {
  run_one plain
  run_one kiln LD_PRELOAD="$KILN_LIB"
  run_one stats LD_PRELOAD="$KILN_LIB" KILN_SHOW_STATS=1
  local status=0
  if [ "$(cat "$WORK/plain.rc")" != 0 ]; then
    echo "FAIL: the workload fails even without Kiln (exit $(cat "$WORK/plain.rc")); stderr:"
    head -20 "$WORK/plain.err"
    return 1
  fi
  for run in kiln stats; do
    if [ "$(cat "$WORK/$run.rc")" != "$(cat "$WORK/plain.rc")" ]; then
      echo "FAIL ($run): exit status $(cat "$WORK/$run.rc") with Kiln, $(cat "$WORK/plain.rc") without; stderr:"
      head -20 "$WORK/$run.err"
      status=1
    fi
    if ! cmp -s "$WORK/plain.out" "$WORK/$run.out"; then
      echo "FAIL ($run): output differs with Kiln:"
      diff "$WORK/plain.out" "$WORK/$run.out" | head -20
      status=1
    fi
  done
  if grep -q "^kiln: statistics" "$WORK/plain.err" "$WORK/kiln.err"; then
    echo "FAIL: statistics printed without KILN_SHOW_STATS=1"
    status=1
  fi
  if ! grep -Eq "^ +allocations +[1-9][0-9]*$" "$WORK/stats.err"; then
    echo "FAIL: KILN_SHOW_STATS=1 printed no statistics with a non-zero allocation count; stderr:"
    head -20 "$WORK/stats.err"
    status=1
  else
    local n
    n=$(grep -c "^kiln: statistics" "$WORK/stats.err")
    echo "ok: same output ($(wc -c <"$WORK/plain.out") bytes) with and without Kiln; statistics from $n process(es), e.g.:"
    grep -E "^ +allocations" "$WORK/stats.err" | sort -t' ' -k2 -n | tail -1
  fi
  return $status
}
