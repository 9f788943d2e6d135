"""FPR's evaluation/Evaluate.py (evaluate -> eval_fn -> cosine_distance, mean_average_precision,
avg_cos_sim), unchanged, on our export-fpr folder, as evaluation/get_results.py calls it (one call
per species). Only the embedding model is replaced: extract_clipI_embeds embeds with one of our
embedders (the same vectors our eval gets), and CLIPProcessor hands it the pixels. Imports the
path does not use (albumentations, open_clip, carvekit, cars_classifier) are stubbed, and
sklearn's LabelEncoder (not installed here) by its documented behaviour (sorted unique classes,
index lookup). Then our eval on the same folder; prints both and the max abs difference.

usage (from the export folder): run_evaluate.py EMBEDDER [MODEL]"""
import os

REFS = os.environ.get("REFS", "/tmp/refs")  # the fetched reference repositories
import json, sys, types
from pathlib import Path
import numpy as np, torch
from transformers import CLIPModel, CLIPProcessor  # noqa: F401  (before stubs)

def stub(name, **attrs):
    module = types.ModuleType(name); module.__dict__.update(attrs); sys.modules[name] = module

class LabelEncoder:
    classes_ = np.array([])
    def fit(self, y): self.classes_ = np.unique(y); return self
    def transform(self, y): return np.searchsorted(self.classes_, y)
stub("sklearn"); stub("sklearn.preprocessing", LabelEncoder=LabelEncoder)
stub("albumentations", Compose=lambda *a, **k: None, Resize=lambda *a, **k: None, Normalize=lambda *a, **k: None)
stub("albumentations.pytorch"); stub("albumentations.pytorch.transforms", ToTensorV2=lambda *a, **k: None)
stub("open_clip"); stub("carvekit"); stub("carvekit.api"); stub("carvekit.api.high", HiInterface=None)
stub("cars_classifier", get_cars_transform=None, EfficientNetEmbedder=None)
sys.path.insert(0, REFS + "/OSU-MLB+Finer-Personalization-Rank/evaluation")
import Evaluate as E
from nearid_data.backend import build_backend
from nearid_data.evaluate.cache import EmbeddingCache
from nearid_data.vision.embedders import EMBEDDERS
from nearid_data.evaluate.protocols import Context, Options, run_protocol

spec = {"name": sys.argv[1], **({"model": sys.argv[2]} if len(sys.argv) > 2 else {})}
EMB = build_backend(EMBEDDERS, spec, where="embedder")

class Pixels:
    def __call__(self, images, return_tensors="pt"):
        return {"pixel_values": torch.from_numpy(np.asarray(images))[None]}
E.CLIPProcessor.from_pretrained = staticmethod(lambda tag: Pixels())

def extract(loader, device):  # the replaced model
    embeds, labels = [], []
    for batch in loader:
        embeds.append(EMB.embed([x.numpy().astype(np.uint8) for x in batch["image"]]))
        labels.extend(batch["label"].tolist())
    return np.concatenate(embeds), labels
E.extract_clipI_embeds = extract

import pandas as pd
theirs = {}
for species in pd.read_csv("train_data.csv")["species"].unique():
    mAP, cos = E.evaluate("train_data.csv", "gallery_data.csv", model_name="clip", batch_size=16,
                          device="cpu", species=species)
    theirs[species] = float(mAP)
doc, _ = run_protocol("fpr", Path("."), Context(EmbeddingCache(EMB, None), masked=False), Options())
ours = {g: r["map"] for g, r in doc["results"]["groups"].items()}
print(json.dumps({"theirs": theirs, "ours": ours}, indent=1))
print("max abs mAP difference:", max(abs(theirs[g] - ours[g]) for g in theirs))
