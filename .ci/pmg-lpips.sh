#!/usr/bin/env bash
# Tests the LPIPS metric of eval --protocol pmg with the lpips package, and the HPSv2 conversion
# against open_clip, in their own venv (.venv-lpips).
#
# lpips builds its backbones with torchvision, and with torchvision installed transformers switches
# its image processors to torchvision backends, which would change what every other test runs; so
# the main venv has neither (nor open_clip, which needs torchvision too) and those tests skip there.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-lpips
python=$venv/bin/python
if ! "$python" -c "import lpips, open_clip, torchvision, transformers, skimage, pytest" 2>/dev/null; then
    python3 -m venv "$venv"
    "$python" -m pip install --quiet --upgrade pip
    "$python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 -e '.[models,pmg,dev]' open_clip_torch
fi

PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 \
    "$python" -m pytest tests/evaluate/test_pmg_metrics.py tests/evaluate/test_pmg_protocol.py \
    tests/evaluate/test_pmg_hpsv2.py \
    --import-mode=importlib -q
