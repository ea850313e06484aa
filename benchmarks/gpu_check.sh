#!/usr/bin/env bash
# The GPU checks of BENCHMARKS.md section 3 in one run, about 8 minutes on one H200: the gpu tests,
# the paper profile's cell stage on a FashionAI replica with the GPU's utilisation sampled, the
# training step (eager, CUDA graph; cuDNN's autotuner on and off; a rerun's weights), the
# jobs-per-GPU sweep, the test evaluation at FashionAI's size, exact scoring against a bare matmul +
# argsort, and the data paths. Two sections run only when named: torch.compile's step (about 2
# minutes, most of it compiling) and the jobs sweep under NVIDIA MPS (about 1 minute). Everything is written under one folder, ending with
# summary.json (the GPU's name, each section's status, time and utilisation, the headline figures).
#
#   benchmarks/gpu_check.sh [OUT]                 # OUT: the folder (default $OUT, else gpu-check)
#   GPU_CHECK_ONLY="tests cell" benchmarks/gpu_check.sh      # some sections only
#   GPU_CHECK_ONLY=compile benchmarks/gpu_check.sh           # the step under torch.compile
#   GPU_CHECK_ONLY=jobs_mps benchmarks/gpu_check.sh          # K jobs per GPU under MPS
#
# Needs CUDA, torch, torchvision, numpy, pandas, pyyaml, psutil and pytest; not mlflow or dvc.
set -u
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-${OUT:-gpu-check}}" && cd "${1:-${OUT:-gpu-check}}" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" AGMAN_NO_MLFLOW=1 PYTHONUNBUFFERED=1
scratch=$(mktemp -d)
export TMPDIR=$scratch
only=${GPU_CHECK_ONLY:-tests cell train_step jobs digests eval eval_map data_path}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c 'import torch, sys; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), sys.version)' \
  > "$out/versions.txt" 2>&1
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw --format=csv,noheader,nounits -lms 500 \
  > "$out/gpu_samples.csv" 2>/dev/null &
sampler=$!
trap 'kill $sampler 2>/dev/null; rm -rf "$scratch"' EXIT

wanted() { [[ " $only " == *" $1 "* ]]; }
section() {  # name, time limit (s), command...: output in <name>.log, times and status in sections.tsv
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s.%N)
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$start" "$(date +%s.%N)" "$rc" >> "$out/sections.tsv"
  awk -v n="$name" -v rc="$rc" -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%-24s rc %3s  %6.1f s\n", n, rc, b - a }'
}

wanted tests && section tests 180 python3 -m pytest tests/gpu -m gpu -q -p no:cacheprovider
if wanted cell; then
  python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import common, pathlib; common.plant_imagenet_weights(pathlib.Path('$scratch/torch'))"
  section replica 120 python3 benchmarks/replica.py fashionai --out "$scratch/replicas" --scale 0.05 --size 96
  TORCH_HOME=$scratch/torch section cell 240 python3 benchmarks/real_scale.py --replicas "$scratch/replicas" \
    --work "$scratch/work" --slots fashionai --cells fashionai-agman --set train.epochs=1 --set train.max_batches=400 \
    --set triplets.per_epoch=6400 --set data.num_workers=4
fi
wanted train_step && section train_step 120 python3 benchmarks/gpu_train_step.py --device cuda
wanted jobs && section jobs 180 python3 benchmarks/gpu_jobs.py --jobs 1 2 4 8 --seconds 5 --workers 2
wanted jobs_mps && section jobs_mps 150 python3 benchmarks/gpu_jobs.py --jobs 1 2 4 --seconds 5 --workers 2 --mps
if wanted digests; then
  for autotune in on off; do
    for run in 1 2; do
      section "digest_${autotune}_$run" 60 python3 benchmarks/gpu_train_step.py --device cuda --digest 30 --autotune "$autotune"
    done
  done
fi
wanted eval && section eval 120 python3 benchmarks/eval_split.py --device cuda --feeds host device \
  --batch-sizes 256 512 --repeats 2
wanted eval_map && section eval_map 90 python3 benchmarks/eval_map.py --device cuda --reference-queries 20 --repeats 5
wanted data_path && section data_path 120 python3 benchmarks/data_path.py --device cuda --images 150 --repeats 1 \
  --feed-workers 1 2 4 --feed-batches 40 --feed-passes 2
wanted compile && section compile 180 python3 benchmarks/gpu_train_step.py --device cuda \
  --settings eager_bf16_cl graphed_bf16_cl compiled_bf16_cl
kill $sampler 2>/dev/null
python3 benchmarks/gpu_summary.py "$out" > "$out/summary.json" && cat "$out/summary.json"
