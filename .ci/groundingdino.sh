#!/usr/bin/env bash
# Tests the groundingdino-py detector backend in its own venv (.venv-gdino).
#
# groundingdino-py 0.4.0 calls BertModel.get_extended_attention_mask, gone in transformers 5, so it
# cannot share the main venv. The package is pure Python (its deformable attention runs in PyTorch,
# no C++/CUDA build). It is installed without its declared dependencies: they pull opencv-python
# (a GUI build that clashes with opencv-python-headless over the cv2 module) and supervision, both
# used only by groundingdino.util.inference, which the backend does not import.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-gdino
python=$venv/bin/python
if ! "$python" -c "import groundingdino, torchvision, transformers, pytest" 2>/dev/null; then
    python3 -m venv "$venv"
    "$python" -m pip install --quiet --upgrade pip
    "$python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1 'transformers<5' \
        addict yapf timm pycocotools matplotlib numpy opencv-python-headless pillow pydantic pytest
    "$python" -m pip install --quiet --no-deps groundingdino-py==0.4.0
fi

# The repository goes on PYTHONPATH rather than being pip-installed into this venv.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 \
    "$python" -m pytest tests/segment/test_groundingdino_py.py --import-mode=importlib \
    --disable-warnings  # the package's own deprecation warnings, dozens per run
