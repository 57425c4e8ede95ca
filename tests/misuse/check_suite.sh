#!/bin/bash
# check_suite.sh — run a cmocka test program of the regular suite under the
# checking mode (KILN_CHECK=1 KILN_ON_ERROR=report, set by the caller) and
# fail on a false positive:
#   - any "kiln:" report while a test case runs that is not allowed to report
#     (only cases that commit misuse on purpose, listed in the allow file);
#   - any failed case not listed in the allow file (cases that assert what
#     only the fast mode does: usable size of malloc(0), statistics of bins,
#     memory returned at once; each listed with its reason);
#   - a crash, a hang (ctest's timeout), or no "[==========]" summary;
#   - an allow-file entry for a case the program does not run (a renamed or
#     removed case would otherwise leave an exemption nobody checks);
#   - a sanitizer's report (the sanitizer builds run test_threads through
#     this script too).
# Usage: check_suite.sh NAME ALLOW_FILE -- COMMAND...
set -u
name=$1 allow=$2
shift 2
[ "$1" = "--" ] && shift

out=$(mktemp "${TMPDIR:-/tmp}/kiln-check-suite.XXXXXX")
trap 'rm -f "$out"' EXIT
# Line-buffered stdout, so that reports (stderr, unbuffered) land after the
# "[ RUN ]" line of the case that caused them.
if command -v stdbuf >/dev/null; then
  stdbuf -oL "$@" >"$out" 2>&1
else
  "$@" >"$out" 2>&1
fi
rc=$?

allowed=" $(sed -n "s/^$name[[:space:]]\{1,\}\([A-Za-z0-9_]*\).*/\1/p" "$allow" | tr '\n' ' ') "
status=0
if [ "$rc" -gt 128 ]; then
  echo "FAIL: $name died by signal $((rc - 128))"
  status=1
fi
if ! grep -q '^\[==========\].*run\.' "$out"; then
  echo "FAIL: $name did not finish its tests"
  status=1
fi
# A sanitizer's report (the sanitizer builds run test_threads this way too,
# tests/CMakeLists.txt): some come after the summary, with an exit status
# that cmocka's count of failed cases could also have.
if grep -qE '^(==[0-9]+==ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|.*: runtime error: )' "$out"; then
  echo "FAIL: $name: a sanitizer reported an error"
  status=1
fi
# Allowed cases the program does not have.
for case in $allowed; do
  if ! grep -q "^\[ RUN      \] $case\$" "$out"; then
    echo "FAIL: $allow lists $name $case, which $name does not run"
    status=1
  fi
done
# Reports outside the allowed cases.
bad=$(awk -v allowed="$allowed" '
  /^\[ RUN      \] / { current = $4 }
  /^kiln: / { if (index(allowed, " " current " ") == 0) print "  in " current ": " $0 }' "$out")
if [ -n "$bad" ]; then
  echo "FAIL: false positive(s) of the checking mode:"
  echo "$bad" | head -20
  status=1
fi
# Failed cases outside the allowed ones.
for failed in $(sed -n 's/^\[  FAILED  \] \(test_[A-Za-z0-9_]*\)$/\1/p' "$out" | sort -u); do
  case $allowed in
    *" $failed "*) echo "allowed difference: $failed" ;;
    *) echo "FAIL: $failed fails under KILN_CHECK=1"; status=1 ;;
  esac
done
if [ $status -ne 0 ]; then
  echo "--- output (last 60 lines):"
  tail -60 "$out"
fi
[ $status -eq 0 ] && echo "ok: $name under KILN_CHECK=1: $(grep -c '^\[       OK \]' "$out") cases passed, no false report"
exit $status
