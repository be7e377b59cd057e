#!/usr/bin/env bash
# The GPU check, as run on a lent GPU machine (device tool), from the repo root:
#   bash benchmarks/gpu_check.sh OUT_DIR [minilm|seed]
# Each part fits one device call (10 minutes); 15 minutes of device
# time, starts included, hold about one part plus a start:
#   minilm (default): the GPU tests, then the peer benchmark with a
#                     random-weight MiniLM-L6 (fp16 all systems, fp32 long_ner
#                     and the floor; the first pass, then a warm one)
#   seed:             Longformer-large and ALBERT-xlarge at the seeds' sizes,
#                     random weights: inference (long_ner, the floor, the HF
#                     pipeline) on CoNLL dev documents in fp16 and bf16, and
#                     training steps on full-length windows (benchmarks/seed_speed.py)
# Needs, beside the working tree (prepared by benchmarks/gpu_prepare.sh, not committed):
#   .gpudata/site312.tar.xz  spaCy, thinc, transformers 4.53 and their needs for
#                            the machine's Python (its own torch and CUDA are used)
#   .gpudata/minilm_shape/   MiniLM-L6's config and tokenizer (no weights)
#   .gpudata/dev.spacy       CoNLL-2003 dev, from `spacy project run convert`
#   .gpudata/seed_shapes/    Longformer-large and ALBERT-xlarge configs and tokenizers
set -u
out=${1:-/tmp/gpu_out}
part=${2:-minilm}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if [ -f .gpudata/site312.tar.xz ]; then
    tar xJf .gpudata/site312.tar.xz -C /tmp
    python3 -m pip install -q --no-deps --no-index --target /tmp/site312 .gpudata/spacy_longner-*.whl
fi
export PYTHONPATH="$PWD:/tmp/site312"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch, spacy, thinc, transformers, cupy; print('torch', torch.__version__, 'spacy', spacy.__version__, 'thinc', thinc.__version__, 'transformers', transformers.__version__, 'cupy', cupy.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$out/gpu.txt"
if [ "$part" = seed ]; then
    timeout 540 python3 benchmarks/seed_speed.py run .gpudata/seed_shapes .gpudata/dev.spacy "$out/seed_speed.json" --gpu \
        --inputs documents --part-timeout 150 2>&1 | grep -v "^ *$" | tail -40 | tee "$out/seed_speed.txt"
    exit 0
fi
timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -25 | tee "$out/gpu_tests.txt"
python3 benchmarks/random_pipeline.py .gpudata/minilm_shape /tmp/minilm_random 2>&1 | tail -1
timeout 240 python3 benchmarks/benchmark.py /tmp/minilm_random .gpudata/dev.spacy "$out/benchmark_gpu.json" --gpu --precision fp16 \
    --wordpiece-budget 65536 --batch-size 256 --memory-docs 5000 --passes 2 2>&1 | tail -12 | tee "$out/benchmark_gpu.txt"
timeout 90 python3 benchmarks/benchmark.py /tmp/minilm_random .gpudata/dev.spacy "$out/benchmark_gpu_fp32.json" --gpu --precision fp32 \
    --wordpiece-budget 65536 --batch-size 256 --systems long_ner floor --skip-extra --passes 2 2>&1 | tail -6 | tee "$out/benchmark_gpu_fp32.txt"
