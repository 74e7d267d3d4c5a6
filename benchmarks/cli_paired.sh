#!/usr/bin/env bash
# Paired timing of `nas pareto` and `nas export` on one run, two source trees interleaved ABAB
# (e.g. a `git worktree` of an older commit against this checkout), each on a fresh copy of the
# run. Prints "<side> <command> <wall s> <user s> <sys s>" per call; compare medians and the
# per-pair ratio. Run it on idle cores: a timing beside other work is noise.
#   bash benchmarks/cli_paired.sh BEFORE_TREE AFTER_TREE RUN_DIR [PAIRS] [PYTHON]
set -u
BEFORE=$1; AFTER=$2; RUN=$3; N=${4:-7}; PY=${5:-$(pwd)/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for _ in $(seq 1 "$N"); do
  for side in before after; do
    SRC=$BEFORE; [ "$side" = after ] && SRC=$AFTER
    rm -rf "$WORK/run" && cp -r "$RUN" "$WORK/run"
    rm -rf "$WORK/run/exports" "$WORK/run/report.html" "$WORK"/run/pareto_*
    (cd "$SRC" && /usr/bin/time -f "$side pareto %e %U %S" env PYTHONPATH="$SRC" "$PY" -m nas.cli \
      pareto "$WORK/run" --no-png 2>&1 >/dev/null | tail -1)
    (cd "$SRC" && /usr/bin/time -f "$side export %e %U %S" env PYTHONPATH="$SRC" "$PY" -m nas.cli \
      export "$WORK/run" --pick knee --no-onnx 2>&1 >/dev/null | tail -1)
  done
done
