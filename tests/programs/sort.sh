#!/bin/bash
# sort(1) under Kiln: in memory, numeric, and with a small buffer and two
# threads so that it merges temporary files.
. "$(dirname "$0")/common.sh"
require sort awk cksum

workload() {
  awk 'BEGIN { for (i = 1; i <= 150000; i++) printf "%d line-%d %s\n", (i * 7919) % 100003, i, substr("abcdefghijklmnopqrstuvwxyz", i % 26 + 1) }' >input
  sort input | cksum
  sort -n -k1,1 -k2,2 input | cksum
  sort -u -k3,3 input
  sort --parallel=2 -S 200K -T . -t- -k2,2n input | cksum
  sort -r input | head -3
}
run_workload
