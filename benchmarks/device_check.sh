#!/usr/bin/env bash
# Issue #16's GPU figures in one command, for a session lent a GPU machine (the `device` tool).
# It fits one call (under 10 minutes) with the device time left to start the machine:
#   1. the side-by-side table at the paper configuration (C=16, 8 cells, 32x32; batch 64 and 256);
#   2. where a CUDA step's time goes (torch.profiler, nasviz and the official PC-DARTS code);
#   3. the 50-epoch PC-DARTS search on synthetic CIFAR-shaped data, timed end to end (stopped at
#      a time limit and projected from its epochs if it cannot finish in the call).
#
# Before the call, on this side: copy the official checkouts into official/ (ignored by git), e.g.
#   mkdir -p official && cp -r /tmp/pcdarts official/pcdarts && cp -r /tmp/darts official/darts
# then run it with carry=["official"] and the command `bash benchmarks/device_check.sh`.
# Everything lands in $OUT (the device tool's output folder) or /tmp/device_check.
# A dry run on the CPU (small settings, to check the script itself):
#   DEVICE=cpu BATCH="8" SEARCH="--preset smoke --images 256 --epochs 2" bash benchmarks/device_check.sh
set -u
OUT=${OUT:-/tmp/device_check}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-64 256}
SEARCH=${SEARCH:---time-limit 140}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # nasviz from this checkout, not installed
OFF="--official official/pcdarts --official-darts official/darts"
run() {  # run SECONDS NAME COMMAND...: time-limited, output in $OUT/NAME.txt, a line per step
  local limit=$1 name=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  echo "$name: rc $? in $((SECONDS - t0)) s"
  tail -n 12 "$OUT/$name.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } >"$OUT/gpu.txt"
cat "$OUT/gpu.txt"
run 180 compare_main python benchmarks/compare_official.py $OFF --device "$DEVICE" \
  --only "1st" "K=4" --batch $BATCH --repeats 1 --steps 12 --warmup 3 --json "$OUT/compare_main.json"
run 100 compare_other python benchmarks/compare_official.py $OFF --device "$DEVICE" \
  --only "2nd" "K=1" "K=2" "K=8" --batch ${BATCH%% *} --repeats 1 --steps 6 --warmup 2 --json "$OUT/compare_other.json"
run 40 profile_nasviz python benchmarks/profile_step.py --impl nasviz --case "PC-DARTS K=4" \
  --device "$DEVICE" --batch ${BATCH%% *} --steps 2
run 40 profile_official python benchmarks/profile_step.py --impl official $OFF \
  --case "PC-DARTS K=4" --device "$DEVICE" --batch ${BATCH%% *} --steps 2
run 190 search_time python benchmarks/search_time.py --method pc-darts --device "$DEVICE" \
  $SEARCH --json "$OUT/search_time.json"
