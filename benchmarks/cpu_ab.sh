#!/bin/bash
# CPU time per step of two commits, alternating (benchmarks/cpu_steps.py in each).
# usage: bash benchmarks/cpu_ab.sh REV_A REV_B [rounds=2] [protocol=own]
# Each commit is checked out in a temporary worktree and warmed up (its kernels compile
# once); run from the repository with the project's venv first on PATH or as .venv.
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
py=${PYTHON:-$repo/.venv/bin/python}
tmp=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$tmp/a" 2>/dev/null || true;
      git -C "$repo" worktree remove --force "$tmp/b" 2>/dev/null || true; rm -rf "$tmp"' EXIT
git -C "$repo" worktree add -q --detach "$tmp/a" "$1"
git -C "$repo" worktree add -q --detach "$tmp/b" "$2"
script=$repo/benchmarks/cpu_steps.py
for side in a b; do  # warm-up: compile each tree's kernels once
  (cd "$tmp/$side" && PYTHONPATH=. "$py" "$script" --protocol "${4:-own}" --rounds 1 >/dev/null)
done
for _ in $(seq "${3:-2}"); do
  for side in a b; do
    rev=$([ $side = a ] && echo "$1" || echo "$2")
    echo "== $rev"
    (cd "$tmp/$side" && PYTHONPATH=. "$py" "$script" --protocol "${4:-own}")
  done
done
