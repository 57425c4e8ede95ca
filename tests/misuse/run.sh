#!/bin/bash
# run.sh — run one misuse program and check how it ends.
#
#   run.sh abort  SOURCE CASE -- COMMAND...   must die by SIGABRT, and its
#                 first "kiln:" line on stderr must be the message expected
#                 for CASE in SOURCE;
#   run.sh report SOURCE CASE -- COMMAND...   must exit 0, and its "kiln:"
#                 lines must be exactly the messages expected for CASE (the
#                 leak report);
#   run.sh clean  SOURCE CASE -- COMMAND...   must exit 0 with no "kiln:"
#                 line at all (the program run without its bug).
#
# Expected messages live in the program's source, one per line:
#     EXPECT <case>: <message>
# written literally, with placeholders: @P@ any address (0x...), @N@ any
# number, @MOD@ any module name, @ANY@ any text, @L:NAME@ the number of the
# source line that carries the marker "@NAME" (so the expectations survive
# edits of the file).
# A case may have several EXPECT lines (matched in order).
set -u
mode=$1 source=$2 case=$3
shift 3
[ "$1" = "--" ] && shift

err=$(mktemp "${TMPDIR:-/tmp}/kiln-misuse.XXXXXX")
trap 'rm -f "$err"' EXIT
"$@" 2>"$err" >/dev/null
rc=$?

fail() {
  echo "FAIL ($case, $mode): $*"
  echo "--- stderr:"
  head -40 "$err"
  exit 1
}

# The literal expectation turned into an anchored extended regex.
to_regex() {
  local text=$1 regex marker line
  regex=$(printf '%s' "$text" | sed -e 's/[][\.*^$()+?{}|]/\\&/g')
  regex=${regex//@P@/0x[0-9a-f]+}
  regex=${regex//@MOD@/[A-Za-z0-9_.+-]+}
  regex=${regex//@N@/[0-9]+}
  regex=${regex//@ANY@/.*}
  while [[ $regex =~ @L:([A-Za-z0-9_]+)@ ]]; do
    marker=${BASH_REMATCH[1]}
    line=$(grep -n "@$marker\\b" "$source" | grep -v "EXPECT" | head -1 | cut -d: -f1)
    [ -n "$line" ] || { echo "FAIL: no line marked @$marker in $source"; exit 1; }
    regex=${regex//@L:$marker@/$line}
  done
  printf '^%s$' "$regex"
}

mapfile -t expected < <(sed -n "s/^.*EXPECT $case: //p" "$source")
mapfile -t got < <(grep '^kiln:' "$err")

case $mode in
  abort)
    [ "$rc" -eq 134 ] || fail "exit status $rc, expected 134 (SIGABRT)"
    [ ${#expected[@]} -ge 1 ] || fail "no EXPECT line for case $case in $source"
    [ ${#got[@]} -ge 1 ] || fail "no kiln: message on stderr"
    re=$(to_regex "${expected[0]}")
    [[ ${got[0]} =~ $re ]] || fail "message differs; expected /$re/, got: ${got[0]}"
    ;;
  report)
    [ "$rc" -eq 0 ] || fail "exit status $rc, expected 0"
    [ ${#got[@]} -eq ${#expected[@]} ] || fail "${#got[@]} kiln: lines, expected ${#expected[@]}"
    for i in "${!expected[@]}"; do
      re=$(to_regex "${expected[$i]}")
      [[ ${got[$i]} =~ $re ]] || fail "line $((i + 1)) differs; expected /$re/, got: ${got[$i]}"
    done
    ;;
  clean)
    [ "$rc" -eq 0 ] || fail "exit status $rc, expected 0"
    [ ${#got[@]} -eq 0 ] || fail "unexpected report: ${got[0]}"
    ;;
  *)
    echo "usage: $0 abort|report|clean SOURCE CASE -- COMMAND..."
    exit 2
    ;;
esac
echo "ok ($case, $mode)${got[0]:+: ${got[0]}}"
