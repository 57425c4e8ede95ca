#!/bin/bash
# git under Kiln, in a temporary repository: init, add, commit (fixed dates,
# so the hashes are the same in every run), log, diff, gc, fsck.
. "$(dirname "$0")/common.sh"
require git cksum

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=Kiln GIT_AUTHOR_EMAIL=kiln@example.org GIT_COMMITTER_NAME=Kiln
export GIT_COMMITTER_EMAIL=kiln@example.org
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"

workload() {
  git -c init.defaultBranch=main init -q repo && cd repo || return 1
  for i in $(seq 1 60); do
    mkdir -p "dir$((i % 10))"
    seq "$i" $((i * 50)) >"dir$((i % 10))/file$i.txt"
  done
  git add . && git commit -q -m "first: 60 files"
  for i in $(seq 1 60 | awk '$1 % 7 == 0'); do echo "change $i" >>"dir$((i % 10))/file$i.txt"; done
  git rm -q dir3/file3.txt
  git add -A && git commit -q -m "second: changes"
  git log --stat --format='%H %an %s' | cksum
  git log --oneline
  git diff --stat HEAD~1 HEAD | tail -1
  git show HEAD:dir7/file7.txt | tail -2
  git gc -q && git count-objects -v | grep -E '^(count|in-pack|packs)'
  git fsck --no-progress && echo fsck ok
  git rev-parse HEAD HEAD~1
}
run_workload
