#!/usr/bin/env bash
# The GPU check, as run on a lent GPU machine (device tool), from the repo root:
#   bash scripts/gpu_check.sh OUT_DIR
# Needs, beside the working tree (prepared by scripts/gpu_prepare.sh, not committed):
#   .gpudata/site312.tar.xz  spaCy, thinc, transformers 4.53 and their needs for
#                            the machine's Python (its own torch and CUDA are used)
#   .gpudata/minilm_shape/   MiniLM-L6's config and tokenizer (no weights)
#   .gpudata/dev.spacy       CoNLL-2003 dev, from `spacy project run convert`
# Runs the GPU tests, then the peer benchmark on the GPU (fp16 with all systems,
# fp32 for long_ner and the floor) with a random-weight MiniLM-L6 pipeline.
set -u
out=${1:-/tmp/gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -f .gpudata/site312.tar.xz ]; then
    tar xJf .gpudata/site312.tar.xz -C /tmp
    python3 -m pip install -q --no-deps --no-index --target /tmp/site312 .gpudata/spacy_longner-*.whl
fi
export PYTHONPATH="$PWD:/tmp/site312"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch, spacy, thinc, transformers, cupy; print('torch', torch.__version__, 'spacy', spacy.__version__, 'thinc', thinc.__version__, 'transformers', transformers.__version__, 'cupy', cupy.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$out/gpu.txt"
timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -25 | tee "$out/gpu_tests.txt"
python3 scripts/random_pipeline.py .gpudata/minilm_shape /tmp/minilm_random 2>&1 | tail -1
timeout 240 python3 scripts/benchmark.py /tmp/minilm_random .gpudata/dev.spacy "$out/benchmark_gpu.json" --gpu --precision fp16 \
    --wordpiece-budget 65536 --batch-size 256 --memory-docs 20000 2>&1 | tail -12 | tee "$out/benchmark_gpu.txt"
timeout 90 python3 scripts/benchmark.py /tmp/minilm_random .gpudata/dev.spacy "$out/benchmark_gpu_fp32.json" --gpu --precision fp32 \
    --wordpiece-budget 65536 --batch-size 256 --systems long_ner floor --skip-extra 2>&1 | tail -6 | tee "$out/benchmark_gpu_fp32.txt"
