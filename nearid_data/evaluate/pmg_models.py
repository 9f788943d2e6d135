"""The learned models of the personalized generation benchmark's metrics, each loaded from a local
path or hub id; a missing one raises ``NearidError`` with the command that fetches it, so the
protocol reports that metric as skipped and runs the others.

- CLIP (CPS, CPIS, the aesthetic head's features): the ``clip`` embedder (transformers
  ``CLIPModel``) plus the model's tokenizer for text.
- HPSv2: a CLIP as HPSv2 defines its score, the cosine of the image and prompt embeddings
  (``image_features @ text_features.T`` of unit vectors, no logit scale), here on a transformers
  CLIP holding the HPSv2 weights (``pmg_hpsv2.py`` makes one from HPSv2's open_clip checkpoint).
- LAION aesthetic predictor: linear layers applied in order to the unit CLIP image embedding
  (the v1 head is one ``Linear(768, 1)``; the "improved" predictor is ``layers.{0,2,4,6,7}``
  Linear layers with dropout between and no activation), from its ``.pth`` state dict.
- LPIPS: the ``lpips`` package's network; its backbone's torchvision weights must be in the torch
  hub cache (it would otherwise download them).
- FLICKR verifier: a transformers image classifier whose labels are worker ids; the score is the
  sigmoid of the worker's logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from nearid_data.backend import build_backend, load_pretrained
from nearid_data.errors import NearidError
from nearid_data.optional import import_optional
from nearid_data.vision.inference import checkpoint_file

AESTHETIC_URL = (
    "https://github.com/christophschuhmann/improved-aesthetic-predictor/raw/main/"
    "sac+logos+ava1-l14-linearMSE.pth"
)
LPIPS_BACKBONES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


class ClipScorer:
    """Unit CLIP embeddings of images (the ``clip`` embedder) and of texts (same model)."""

    def __init__(self, model: str, *, device: str, batch_size: int) -> None:
        from nearid_data.vision.embedders import EMBEDDERS

        spec = {"name": "clip", "model": model, "batch_size": batch_size}
        self.embedder = build_backend(EMBEDDERS, spec, where="clip", device=device)
        transformers = import_optional("transformers", extra="models")
        self.tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, model)
        self.model_id = model

    def images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embedder.embed(images)  # type: ignore[no-any-return]

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        torch = import_optional("torch", extra="models")
        model = self.embedder.model
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        limit = model.config.text_config.max_position_embeddings
        inputs = {
            k: v[:, :limit].to(model.device)
            for k, v in tokens.items()
            if k in ("input_ids", "attention_mask")
        }
        with torch.inference_mode():
            out = model.get_text_features(**inputs)
        features = out if isinstance(out, torch.Tensor) else out.pooler_output
        vectors = features.float().cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_id, "weights_sha256": self.embedder.weights_sha256}


class AestheticHead:
    """The LAION aesthetic predictor: its linear layers, in order, on unit CLIP image embeddings."""

    def __init__(self, path: str) -> None:
        torch = import_optional("torch", extra="models")
        file = checkpoint_file(path, AESTHETIC_URL)
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for a file that is not a state dict
            raise NearidError(f"{file}: not a torch state dict ({exc})") from None
        self.layers = _linear_layers(state, file)
        self.path = str(file)

    @property
    def input_size(self) -> int:
        return int(self.layers[0][0].shape[1])

    def __call__(self, unit_embeddings: np.ndarray) -> np.ndarray:
        if unit_embeddings.shape[1] != self.input_size:
            raise NearidError(
                f"aesthetic head {self.path} takes {self.input_size}-d CLIP embeddings, the CLIP "
                f"model gives {unit_embeddings.shape[1]}-d (the LAION heads need ViT-L/14)"
            )
        x = unit_embeddings.astype(np.float64)
        for weight, bias in self.layers:
            x = x @ weight.T + bias
        return x[:, 0]  # type: ignore[no-any-return]


def _linear_layers(state: Any, file: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(state, dict):
        raise NearidError(f"{file}: expected a state dict, got {type(state).__name__}")
    prefixes = sorted(
        {name.rsplit(".", 1)[0] if "." in name else "" for name in state},
        key=lambda p: [int(part) if part.isdigit() else part for part in p.split(".")],
    )
    layers = []
    for prefix in prefixes:
        dot = f"{prefix}." if prefix else ""
        if f"{dot}weight" not in state or f"{dot}bias" not in state:
            raise NearidError(f"{file}: {prefix or 'the head'} has no weight and bias")
        weight = state[f"{dot}weight"].float().numpy().astype(np.float64)
        layers.append((weight, state[f"{dot}bias"].float().numpy().astype(np.float64)))
    for (w0, _), (w1, _) in pairwise(layers):
        if w0.shape[0] != w1.shape[1]:
            raise NearidError(f"{file}: layer shapes {w0.shape} and {w1.shape} do not chain")
    if not layers or layers[-1][0].shape[0] != 1:
        raise NearidError(f"{file}: the last layer must give one score")
    return layers


def load_lpips(net: str, device: str) -> Any:
    """The ``lpips`` package's LPIPS with its learned linear layers, if the backbone's
    torchvision weights are in the torch hub cache."""
    torch = import_optional("torch", extra="models")
    lpips = import_optional("lpips", extra="pmg")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[net]
    checkpoint_file(cached, f"https://download.pytorch.org/models/{LPIPS_BACKBONES[net]}")
    return lpips.LPIPS(net=net, verbose=False).to(device).eval()


class Verifier:
    """A FLICKR verifier: image classifier over worker ids; score = sigmoid(the worker's logit)."""

    def __init__(self, model: str, *, device: str) -> None:
        self.torch = import_optional("torch", extra="models")
        transformers = import_optional("transformers", extra="models")
        self.processor = load_pretrained(transformers.AutoImageProcessor.from_pretrained, model)
        classifier = load_pretrained(
            transformers.AutoModelForImageClassification.from_pretrained, model
        )
        self.model = classifier.to(device).eval()
        self.label_ids = {str(label): int(i) for i, label in self.model.config.id2label.items()}
        self.model_id = model

    def score(self, image: np.ndarray, worker: str) -> float | None:
        """None when the verifier does not know the worker."""
        if worker not in self.label_ids:
            return None
        batch = self.processor(images=[image], return_tensors="pt").to(self.model.device)
        with self.torch.inference_mode():
            logits = self.model(**batch).logits
        return float(self.torch.sigmoid(logits[0, self.label_ids[worker]]))
