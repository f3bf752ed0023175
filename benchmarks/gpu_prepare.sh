#!/usr/bin/env bash
# Prepare the GPU check (benchmarks/gpu_check.py) once, on this machine, for a GPU machine that has CUDA JAX and
# PyTorch but no Keras and no network: the wheels it lacks go to .whl/, MR and PTB to .gpu_data/ (both ignored
# by git through .git/info/exclude, and carried by the run). Prints the command to run there.
#   benchmarks/gpu_prepare.sh            # datasets from $DLTM_DATA_MIRROR, else ../shared/datasets
set -euo pipefail
cd "$(dirname "$0")/.."
mirror="${DLTM_DATA_MIRROR:-../shared/datasets}"
for p in /.whl/ /.gpu_data/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
rm -rf .whl .gpu_data && mkdir -p .whl .gpu_data/mr .gpu_data/ptb

# The GPU machine's Python is 3.12 (x86-64); the versions are this checkout's (requirements.lock).
pins=$(grep -iE '^(keras|namex|optree|ruamel\.yaml)==' requirements.lock)
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl $pins

cp "$mirror"/mr/rt-polarity.pos "$mirror"/mr/rt-polarity.neg .gpu_data/mr/
cp "$mirror"/ptb/ptb.train.txt "$mirror"/ptb/ptb.valid.txt "$mirror"/ptb/ptb.test.txt .gpu_data/ptb/
du -sh .whl .gpu_data
cat <<'RUN'
On the GPU machine (the device tool's `run`, with carry [".whl", ".gpu_data"] and timeout_s 600):
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site && nvidia-smi -L && PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --data .gpu_data --backend jax --budget 450 --out "$OUT/gpu_check.json"
Then copy the JSON to reports/gpu/<device>-<backend>-<date>.json and commit it (dvc repro report shows it).
RUN
