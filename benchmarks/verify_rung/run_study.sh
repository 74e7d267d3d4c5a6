#!/usr/bin/env bash
# The verification rung's own fidelity on a reference subset, beside the first rung's on the
# same subset (docs/design.md, "The verification rung"). CPU-long (hours on 2 cores): run it with
#   nohup bash benchmarks/verify_rung/run_study.sh > runs/verify-study.log 2>&1 &
# It resumes: finished references are cached in each --out folder (nas fidelity's records).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
here=benchmarks/verify_rung
$PY -m nas.cli fidelity --refs $here/refs_subset.yaml --out runs/verify-study/rung1 --threads 2
$PY -m nas.cli fidelity --refs $here/refs_subset.yaml --config $here/rung2.yaml \
    --out runs/verify-study/rung2 --threads 2
