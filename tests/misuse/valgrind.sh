#!/bin/bash
# valgrind.sh VALGRIND PROGRAM — memcheck must see Kiln's blocks: report the
# read after free, the read past the end, and the 77-byte leak.
set -u
valgrind=$1 program=$2
log=$(mktemp "${TMPDIR:-/tmp}/kiln-valgrind.XXXXXX")
trap 'rm -f "$log"' EXIT
# nouserintercepts: memcheck must not replace the program's own malloc (Kiln,
# linked in) with its own; it learns of Kiln's blocks from the client
# requests instead.
"$valgrind" --tool=memcheck --soname-synonyms=somalloc=nouserintercepts --leak-check=full \
  --error-exitcode=0 "$program" >/dev/null 2>"$log"
status=0
if grep -q "vgpreload_memcheck" "$log"; then
  echo "FAIL: memcheck's own malloc ran, not Kiln's"
  status=1
fi
grep -q "Invalid read of size 1" "$log" || { echo "FAIL: no invalid read reported"; status=1; }
grep -Eq "Address 0x[0-9a-f]+ is 5 bytes inside a block of size 33 free'd" "$log" ||
  { echo "FAIL: the use after free is not named"; status=1; }
grep -Eq "Address 0x[0-9a-f]+ is 4 bytes after a block of size 16 alloc'd" "$log" ||
  { echo "FAIL: the read past the end is not named"; status=1; }
grep -Eq "77 bytes in 1 blocks are definitely lost" "$log" || { echo "FAIL: the leak is not reported"; status=1; }
if [ $status -ne 0 ]; then
  echo "--- memcheck said:"
  head -80 "$log"
else
  echo "ok: memcheck reported the use after free, the overflow and the leak"
fi
exit $status
